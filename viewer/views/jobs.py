"""Import jobs on the runs list: the progress fragment htmx polls, and cancel."""
import datetime as dt

from django.http import Http404, HttpResponseRedirect, QueryDict
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.views.decorators.http import require_GET, require_POST

from .. import jobs
from ..models import ImportJob
from ..forms import RunListForm
from ..querystring import query_string
from .runs import jobs_context, table_context


@require_GET
def job_list(request):
    """The jobs section (polled while a job is unfinished). When a job has finished since the last
    poll (`since`), the runs table comes along out of band, so the new run appears without a reload."""
    if not request.htmx:
        return HttpResponseRedirect(reverse("runs") + "#jobs")
    try:
        since = parse_datetime(request.GET.get("since", "")[:40])
    except ValueError:  # a well-formed but impossible date: treat as no date
        since = None
    if since is not None and timezone.is_naive(since):  # the page sends an aware time; a hand-made URL may not
        since = timezone.make_aware(since, dt.timezone.utc)
    # The runs list the poll came from (its filters, in `list`): the jobs and the table it refreshes follow them.
    listing = RunListForm(QueryDict(request.GET.get("list", "")[:4000]))
    status = (listing.cleaned_data.get("status") or "") if listing.is_valid() else ""
    context = jobs_context(request.user, since=timezone.now().isoformat(), status=status)
    context["list_query"] = query_string(listing.data)
    finished = since is not None and ImportJob.objects.filter(owner=request.user, finished__gte=since).exists()
    if finished:
        context |= table_context(request.user, listing) | {"runs_oob": True}
    return render(request, "viewer/runs.html#jobs", context)


@require_POST
def cancel(request, job_id):
    job = ImportJob.objects.filter(owner=request.user, pk=job_id).first()
    if job is None:
        raise Http404("No such job")
    jobs.cancel(job)
    if request.htmx:
        return render(request, "viewer/runs.html#jobs", jobs_context(request.user, since=timezone.now().isoformat()))
    return HttpResponseRedirect(reverse("runs") + "#jobs")
