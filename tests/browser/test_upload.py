"""Uploading several files on the runs page: drag and drop, the file picker, progress, per-file results."""

import base64
import gzip
import json
import mimetypes

import pytest

from viewer.models import Run

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

DROP = """([files, selector]) => {
  const dt = new DataTransfer();
  for (const f of files) {
    const bytes = Uint8Array.from(atob(f.b64), (c) => c.charCodeAt(0));
    dt.items.add(new File([bytes], f.name, {type: f.type}));
  }
  const zone = document.querySelector(selector);
  for (const type of ["dragenter", "dragover", "drop"]) {
    zone.dispatchEvent(new DragEvent(type, {dataTransfer: dt, bubbles: true, cancelable: true}));
  }
}"""

# Records what the progress bar showed at each upload progress event (after upload.js updated it).
RECORD_PROGRESS = """() => {
  window.__progress = [];
  document.getElementById("upload-form").addEventListener("htmx:xhr:progress", () => {
    const bar = document.getElementById("upload-progress");
    window.__progress.push({hidden: bar.hidden, value: bar.value,
                            text: document.getElementById("upload-percent").textContent});
  });
}"""


def expected_count(path) -> int:
    """Decisions in a sample, counted without the app: the DynoAI list, or the non-blank lines."""
    data = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    if path.name.endswith(".json"):
        return len(json.loads(data)["decisions"])
    return sum(1 for line in data.decode().splitlines() if line.strip())


def payload(path) -> dict:
    return {
        "name": path.name,
        "type": mimetypes.guess_type(path.name)[0] or "application/octet-stream",
        "b64": base64.b64encode(path.read_bytes()).decode(),
    }


def slow_uploads(context, page, bytes_per_second: int) -> None:
    """Throttle the page's uploads so the progress bar has time to show."""
    cdp = context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send(
        "Network.emulateNetworkConditions",
        {
            "offline": False,
            "latency": 0,
            "downloadThroughput": -1,
            "uploadThroughput": bytes_per_second,
        },
    )


def result_lines(page) -> dict[str, tuple[str, str]]:
    """{file name: (status badge, line text)} from the jobs' result lines under Imports (the suite runs
    jobs where they are queued, so they have ended when the upload answers)."""
    lines = {}
    for li in page.locator("#jobs li.result").all():
        text = li.inner_text()
        status = li.locator(".badge").inner_text().strip()
        name = text.split(status, 1)[1].strip().split(":", 1)[0].strip()
        lines[name] = (status, text)
    return lines


def test_dropping_several_files_imports_each_with_progress_and_a_line_per_file(
    page, context, samples_dir, browser_user, shot
):
    replay = samples_dir / "dynoai/real_sample/session_replay.json"
    manifest = samples_dir / "dynoai/real_sample/manifest.json"
    session = samples_dir / "session/combat_session_sample.jsonl"
    study = samples_dir / "study/2024-03-05T18-40-02.114002-0000000008-gc-104523-41233.study.log.gz"
    files = [replay, manifest, session, study]
    page.goto("/")
    page.evaluate(RECORD_PROGRESS)
    slow_uploads(context, page, 200 * 1024)  # the drop is ~320 KB: over a second of progress
    with page.expect_response(lambda r: r.url.endswith("/upload/")) as answer:
        page.evaluate(DROP, [[payload(p) for p in files], "#dropzone"])
    assert answer.value.status == 202  # queued
    page.locator("#jobs li.result").first.wait_for()
    shot(page, "results")

    progress = page.evaluate("window.__progress")
    assert progress, "no upload progress was reported"
    shown = [p for p in progress if not p["hidden"]]
    assert shown and all(0 <= p["value"] <= 100 for p in shown)
    assert any(p["value"] < 100 and p["text"].startswith("Uploading") for p in shown), progress
    assert shown[-1]["value"] == 100 and shown[-1]["text"] == "Queueing…"
    assert page.locator("#upload-progress").is_hidden()  # hidden again once the answer came

    lines = result_lines(page)
    # The study log's line shows the run under its pseudonymized name, never the real user id.
    study_line = next(name for name in lines if name.endswith(".study.log.gz"))
    assert "gc-104523" not in study_line
    lines[study.name] = lines.pop(study_line)
    assert set(lines) == {p.name for p in files}
    assert lines["manifest.json"][0] == "manifest"
    for path, kind in ((replay, "dynoai"), (session, "session"), (study, "study")):
        status, text = lines[path.name]
        count = expected_count(path)
        assert status == "imported" and f"{count} decision" in text, text
        assert Run.objects.get(owner=browser_user, kind=kind).decision_count == count
    # The runs table below was refreshed with the new runs.
    assert page.locator("#run-table tbody tr").count() == 3
    # each line names the file and links the run it became, under the run's own name
    page.locator("#jobs li.result.imported", has_text="session_replay.json").locator("a").click()
    page.wait_for_url("**/runs/*/")
    assert page.locator("h1").first.is_visible()


def test_the_file_picker_uploads_several_files_and_names_a_refused_one(page, samples_dir, browser_user, shot):
    good = [
        samples_dir / "session/session_debt_auction_ambush.jsonl",
        samples_dir / "study/2024-03-05T18-22-30.004512-0000000007-gc-104523-41233.study.log",
    ]
    bad = samples_dir / "bad/broken_line_3_session.jsonl"
    page.goto("/")
    page.set_input_files("#upload-form input[type=file]", [str(p) for p in [*good, bad]])
    assert "3 files" in page.locator("#chosen").inner_text()
    with page.expect_response(lambda r: r.url.endswith("/upload/")) as answer:
        page.click("#upload-form button[type=submit]")
    assert answer.value.status == 202  # three jobs: one failed, two imported
    page.locator("#jobs li.result").nth(2).wait_for()
    shot(page, "results")
    lines = result_lines(page)
    for path in good:
        status, text = lines[next(n for n in lines if n.startswith(path.name[:20]))]
        assert status == "imported" and f"{expected_count(path)} decision" in text, text
    status, text = lines[bad.name]
    assert status == "error" and "line 3" in text
    assert Run.objects.filter(owner=browser_user).count() == 2
    assert page.locator("#chosen").inner_text() == ""  # the picker was cleared for the next upload


def test_a_file_that_fails_its_job_still_shows_its_reason(page, watch, samples_dir):
    bad = samples_dir / "bad/not_json_session_replay.json"
    page.goto("/")
    page.set_input_files("#upload-form input[type=file]", str(bad))
    with page.expect_response(lambda r: r.url.endswith("/upload/")) as answer:
        page.click("#upload-form button[type=submit]")
    assert answer.value.status == 202
    line = page.locator("#jobs li.job.failed li.result.error")
    line.wait_for(timeout=5000)
    assert bad.name in line.inner_text()
    assert not Run.objects.exists()
    watch.check()
