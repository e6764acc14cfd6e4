"""The runs list, upload and delete."""
from django.conf import settings
from django.core.exceptions import TooManyFilesSent
from django.http import HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from ..forms import UploadForm
from ..ingest import IngestResult, Source, run_ingest
from ..selectors import get_run_or_404, visible_runs


@require_GET
def run_list(request):
    return render(request, "viewer/runs.html", {"runs": visible_runs(request.user), "form": UploadForm()})


@require_POST
def upload(request):
    limit, setting = settings.REPLAYWEB_MAX_FILES_PER_UPLOAD, "REPLAYWEB_MAX_FILES_PER_UPLOAD"
    try:
        form = UploadForm(request.POST, request.FILES)
        too_many = len(request.FILES.getlist("files")) > limit
    except TooManyFilesSent:
        form, too_many = UploadForm(), True
        limit, setting = settings.DATA_UPLOAD_MAX_NUMBER_FILES, "DATA_UPLOAD_MAX_NUMBER_FILES"
    results = []
    if too_many:
        message = f"More than {limit:,} files in one upload ({setting}): nothing was imported; send fewer at a time."
        results = [IngestResult("upload", "error", message)]
    elif form.is_valid():
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
