"""The runs list, upload, rename and delete; a run's output files."""
from dataclasses import dataclass, field
from urllib.parse import urlencode

from django.conf import settings
from django.core.exceptions import TooManyFilesSent
from django.http import Http404, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import content_disposition_header
from django.views.decorators.http import require_GET, require_POST

from .. import jobs
from ..forms import UploadForm
from ..ingest import IngestResult
from ..ingest import rename as rename_run
from ..outputs import output_file
from ..selectors import get_run_or_404, visible_runs


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
    runs = list(visible_runs(user))
    return {"runs": runs, "groups": sweeps(runs)} | jobs_context(user)


def jobs_context(user, since=None) -> dict:
    """The user's import jobs as the runs list shows them (each with its progress facts)."""
    jobs.reap()
    shown = list(jobs.visible_jobs(user))
    return {
        "jobs": [(job, jobs.facts(job)) for job in shown],
        "jobs_active": any(job.active for job in shown),
        "jobs_since": since or timezone.now().isoformat(),
    }


@require_GET
def run_list(request):
    return render(request, "viewer/runs.html", _list_context(request.user) | {"form": UploadForm()})


@require_POST
def upload(request):
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
    get_run_or_404(request.user, run_id).delete()
    return HttpResponseRedirect(reverse("runs"))


@require_POST
def rename(request, run_id):
    run = get_run_or_404(request.user, run_id)
    if run.owner_id != request.user.pk:  # only the owner names a run, whoever else may see it
        raise Http404("No such run")
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
