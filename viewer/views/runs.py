"""The runs list, upload, rename and delete; a run's output files."""
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlencode, urlsplit

from django.conf import settings
from django.core.exceptions import TooManyFilesSent
from django.http import Http404, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import content_disposition_header
from django.contrib import messages
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from .. import demo, htmx, jobs
from ..forms import BULK_ACTIONS, RUNS_PAGE, BulkRunsForm, RunListForm, UploadForm
from ..htmx import vary_on_fragment
from ..models import ImportJob, Run, RunTag
from ..querystring import query_string
from ..ingest import IngestResult
from ..ingest import rename as rename_run
from ..outputs import output_file
from ..access import owned_run_or_404
from ..selectors import CursorGone, filtered_runs, get_run_or_404, run_owners, run_tags, runs_page, visible_runs


@dataclass
class Group:
    """Rows of the runs list: one run, or a sweep (the runs of one input, newest first)."""

    runs: list = field(default_factory=list)
    input_name: str = ""

    @property
    def sweep(self) -> bool:
        return len(self.runs) > 1

    @property
    def compare_url(self) -> str:
        return "/compare/?" + urlencode([("run", r.pk) for r in self.runs])


def sweeps(runs) -> list[Group]:
    """The runs in list order, those of one input (a DynoAI manifest's input.sha256) gathered into one
    group at the place of its newest run; a run without an input is a group of its own."""
    groups: list[Group] = []
    by_input: dict[str, Group] = {}
    for run in runs:
        sha, name = _input_of(run)
        group = by_input.get(sha) if sha else None
        if group is None:
            group = Group(input_name=name)
            groups.append(group)
            if sha:
                by_input[sha] = group
        group.runs.append(run)
    return groups


def _input_of(run) -> tuple[str, str]:
    """(sha256, file name) of the input the run was computed from, as its manifest says; ("", "") if none."""
    manifest = run.manifest if isinstance(run.manifest, dict) else {}
    failure = run.failure if isinstance(run.failure, dict) else {}
    found = manifest.get("input") or failure.get("input")
    if not isinstance(found, dict) or not isinstance(found.get("sha256"), str) or not found["sha256"]:
        return "", ""
    path = found.get("path") if isinstance(found.get("path"), str) else ""
    return found["sha256"].lower(), path.replace("\\", "/").rsplit("/", 1)[-1] or found["sha256"][:12]


def _list_context(user) -> dict:
    """The runs list's first page, unfiltered (an upload's answer, the jobs poll refreshing the table)."""
    return table_context(user, RunListForm()) | jobs_context(user)


def table_context(user, form: RunListForm) -> dict:
    """The runs table for a valid `form` (or a blank one): a page of runs, the cursor of the next, and
    what the list's empty states need to say."""
    form.is_valid()
    sort, filters = form.sort_key(), form.filters() if form.is_valid() else {}
    p = form.cleaned_data if form.is_valid() else {}
    try:
        runs, cursor = runs_page(user, sort=sort, after=p.get("after"), limit=p.get("limit") or RUNS_PAGE,
                                 **filters)
    except CursorGone as exc:
        form.add_error("after", str(exc))
        runs, cursor = [], None
    query = form.data if form.is_bound else {}
    # Runs of one input gather into a sweep only in the default order: another sort keeps each row in place.
    groups = sweeps(runs) if sort == "-created" else [Group(runs=[r]) for r in runs]
    return {
        "runs": runs, "groups": groups, "list_form": form, "filtered": bool(filters),
        "matching": filtered_runs(user, **filters).count() if filters else None,
        "next_url": query_string(query, set={"after": cursor}) if cursor else "",
        "first_url": query_string(query, remove=["after"]) if p.get("after") else "",
        "list_query": query_string(query, remove=["after"]),
        "any_runs": bool(runs) or visible_runs(user).exists(),
        "status_filter": p.get("status") or "",
    }


def jobs_context(user, since=None, status: str = "") -> dict:
    """The user's import jobs as the runs list shows them (each with its progress facts). The status
    filter covers them: `importing` shows the unfinished ones, `failed` every failed import (a failed
    import leaves no run, so its job is where it is listed), `ready` and `live` none."""
    jobs.reap()
    shown = jobs.visible_jobs(user)
    if status == "importing":
        shown = shown.filter(status__in=[ImportJob.Status.QUEUED, ImportJob.Status.RUNNING])
    elif status == "failed":
        shown = ImportJob.objects.filter(owner=user, status=ImportJob.Status.FAILED).order_by("-created", "-id")[:50]
    elif status:
        shown = ImportJob.objects.none()
    shown = list(shown)
    return {
        "jobs": [(job, jobs.facts(job)) for job in shown],
        "jobs_active": any(job.active for job in shown),
        "jobs_since": since or timezone.now().isoformat(),
    }


@require_GET
@vary_on_fragment
def run_list(request):
    # The filter form sends its empty fields too: the URL a user keeps and shares holds only those given.
    clean = reverse("runs") + query_string(request.GET)
    if not htmx.wants_fragment(request) and any(v == "" for _, values in request.GET.lists() for v in values):
        return HttpResponseRedirect(clean)
    form = RunListForm(request.GET)
    context = table_context(request.user, form)
    if htmx.fragment(request, TABLE_PART):
        response = render(request, TABLE_PART["run-table"], context, status=400 if form.errors else 200)
        response["HX-Push-Url"] = clean.removesuffix("?")
        return response
    context |= jobs_context(request.user, status=context["status_filter"]) | {
        "form": UploadForm(), "owners": run_owners(request.user), "tags": run_tags(request.user),
        "tour": [] if form.data else demo.tour(visible_runs(request.user).filter(source_name__startswith=demo.DEMO_PREFIX)),
    }
    return render(request, "viewer/runs.html", context, status=400 if form.errors else 200)


TABLE_PART = {"run-table": "viewer/_run_table.html"}


@require_http_methods(["GET", "POST"])
def bulk(request):
    """Tag, untag or delete the ticked runs (only the user's own). GET (the list's buttons without
    JavaScript: a GET form cannot carry the CSRF token) shows the runs and the POST form that does it;
    POST does it and goes back to the list as it was."""
    posted = request.method == "POST"
    form = BulkRunsForm(request.POST if posted else request.GET)
    valid = form.is_valid()
    ids = form.cleaned_data.get("run") or []
    runs = list(visible_runs(request.user).filter(owner=request.user, pk__in=ids))
    back = form.cleaned_data.get("next") if posted else _list_referer(request)
    if posted and valid and runs:
        messages.success(request, bulk_apply(runs, form.cleaned_data["do"], form.cleaned_data["tag"]))
        if request.htmx:
            return HttpResponse(status=204, headers={"HX-Redirect": back})
        return HttpResponseRedirect(back, status=303)
    if ids and not runs:  # as for one run: another user's runs and missing ones are a 404 alike
        raise Http404("No such run")
    do = form.cleaned_data.get("do") or ""
    context = {"bulk": form, "runs": runs, "not_yours": len(ids) - len(runs), "back": back or "/", "do": do,
               "action": BULK_ACTIONS.get(do, ""), "posted": posted, "tags": run_tags(request.user)}
    return render(request, "viewer/runs_bulk.html", context, status=400 if posted or not valid and "run" in form.errors else 200)


def _list_referer(request) -> str:
    """The runs list the user came from (its filters, from the Referer), else the list."""
    ref = urlsplit(request.headers.get("Referer", ""))
    if ref.netloc == request.get_host() and ref.path == reverse("runs"):
        return reverse("runs") + query_string(parse_qsl(ref.query), remove=["after"])
    return reverse("runs")


def bulk_apply(runs, do: str, tag: str = "") -> str:
    """Apply one bulk action to `runs` (already the user's own); answers what was done, in a sentence."""
    n = len(runs)
    noun = f"{n} run{'s' if n != 1 else ''}"
    if do == "delete":
        Run.objects.filter(pk__in=[r.pk for r in runs]).delete()
        return f"Deleted {noun}."
    if do == "tag":
        RunTag.objects.bulk_create([RunTag(run=r, name=tag) for r in runs], ignore_conflicts=True)
        return f"Tagged {noun} “{tag}”."
    removed, _ = RunTag.objects.filter(run__in=runs, name=tag).delete()
    return f"Removed the tag “{tag}” from {removed} run{'s' if removed != 1 else ''}."


@require_http_methods(["GET", "POST"])
def upload(request):
    if request.method == "GET":  # a reload of the page an upload answered, or a typed URL: the form is on the list
        return HttpResponseRedirect(reverse("runs"), status=303)
    limit, setting = settings.REPLAYWEB_MAX_FILES_PER_UPLOAD, "REPLAYWEB_MAX_FILES_PER_UPLOAD"
    try:
        form = UploadForm(request.POST, request.FILES)
        form.fields["files"].allow_empty_file = True  # an empty file gets its own result line, not a form error
        too_many = len(request.FILES.getlist("files")) > limit
    except TooManyFilesSent:
        form, too_many = UploadForm(), True
        limit, setting = settings.DATA_UPLOAD_MAX_NUMBER_FILES, "DATA_UPLOAD_MAX_NUMBER_FILES"
    refused, queued = [], []
    if too_many:
        message = f"More than {limit:,} files in one upload ({setting}): nothing was imported; send fewer at a time."
        refused = [IngestResult("upload", "error", message)]
    elif form.is_valid():
        uploads = [jobs.Upload(name=f.name, fileobj=f) for f in form.cleaned_data["files"]]
        queued, refused = jobs.submit(request.user, uploads, keep_user_ids=form.cleaned_data["keep_user_ids"])
    results = [jobs.line_of(r) for r in refused]
    context = _list_context(request.user) | {"form": form, "results": results, "queued": queued}
    template = "viewer/runs.html#upload-results" if request.htmx else "viewer/runs.html"
    status = 400 if form.errors or (refused and not queued) else 202 if queued else 200
    return render(request, template, context, status=status)


@require_POST
def delete(request, run_id):
    owned_run_or_404(request.user, run_id).delete()
    return HttpResponseRedirect(reverse("runs"))


@require_POST
def rename(request, run_id):
    run = owned_run_or_404(request.user, run_id)  # only the owner names a run, whoever else may see it
    try:
        rename_run(run, request.POST.get("name", ""))
    except ValueError as exc:
        return HttpResponse(f"name: {exc}", status=400, content_type="text/plain; charset=utf-8")
    return HttpResponseRedirect(request.POST.get("next") if request.POST.get("next") == f"/runs/{run.pk}/" else reverse("runs"))


@require_GET
def output(request, run_id, name):
    """One output file of the run, byte for byte as it was uploaded."""
    row = output_file(run=get_run_or_404(request.user, run_id), name=name)
    if row is None:
        raise Http404("No such output file")
    response = HttpResponse(bytes(row.data), content_type=_content_type(row.name))
    # a download, never a page: served as stored (nothing on the way, e.g. the bidi guard for pages, rewrites it)
    response["Content-Disposition"] = content_disposition_header(True, row.name)
    response["X-Content-Type-Options"] = "nosniff"
    return response


def _content_type(name: str) -> str:
    """Never HTML: a stored file is shown as text or JSON, or downloaded."""
    lower = name.lower()
    if lower.endswith(".json"):
        return "application/json"
    if lower.endswith((".csv", ".txt", ".log", ".md")):
        return "text/plain; charset=utf-8"
    return "application/octet-stream"
