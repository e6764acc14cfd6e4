"""The runs list, upload and delete."""
from django.http import HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from ..forms import UploadForm
from ..ingest import Source, run_ingest
from ..selectors import get_run_or_404, visible_runs


@require_GET
def run_list(request):
    return render(request, "viewer/runs.html", {"runs": visible_runs(request.user), "form": UploadForm()})


@require_POST
def upload(request):
    form = UploadForm(request.POST, request.FILES)
    results = []
    if form.is_valid():
        sources = [Source(name=f.name, fileobj=f, group="upload") for f in form.cleaned_data["files"]]
        results = run_ingest(
            owner=request.user, sources=sources, keep_user_ids=form.cleaned_data["keep_user_ids"]
        )
    context = {"runs": visible_runs(request.user), "form": form, "results": results}
    template = "viewer/runs.html#upload-results" if request.htmx else "viewer/runs.html"
    status = 400 if form.errors or (results and all(r.failed for r in results)) else 200
    return render(request, template, context, status=status)


@require_POST
def delete(request, run_id):
    get_run_or_404(request.user, run_id).delete()
    return HttpResponseRedirect(reverse("runs"))
