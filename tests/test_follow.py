"""Following a log while it is written (import_logs --follow): the run is live and grows, its end
(session_end) or a quiet file ends it, a half-written line waits for its newline, and the run page
polls while the run is live and not after.

A writer thread appends to a temporary log while the follow runs in the test's own thread: the
progress callback, called after each stored slice, looks at the database (through the ORM and the
run page) at moments the writer is made to wait for, so nothing depends on timing. `transaction=True`:
the follow commits for real, as it does for the pages of another process.
"""
import io
import threading
import time
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from viewer.follow import follow_file
from viewer.ingest import Source, run_ingest
from viewer.models import Decision, Run
from viewer.readers.streams import FollowStream
from viewer.selectors import visible_runs

SESSION = "session/combat_session_sample.jsonl"  # 44 lines, the last a session_end
FAST = {"poll": 0.02, "every": 0.3}  # look at the file every 20 ms, store every 0.3 s (a catch-up is one slice)


@pytest.fixture
def lines(samples_dir) -> list[bytes]:
    return (samples_dir / SESSION).read_bytes().splitlines(keepends=True)


@pytest.fixture
def log(tmp_path) -> Path:
    return tmp_path / "session_live.jsonl"


def writer(path: Path, *parts: bytes, after: threading.Event | None = None) -> threading.Thread:
    """A thread that appends `parts` to the log (flushing each), once `after` is set."""

    def write():
        if after is not None:
            assert after.wait(20), "the follow never stored a slice"
        for part in parts:
            with open(path, "ab") as f:
                f.write(part)
            time.sleep(0.005)

    thread = threading.Thread(target=write, daemon=True)
    thread.start()
    return thread


class Watch:
    """A progress callback that notes the stored run (status, count, listed?) and the page at each
    slice, and sets `stored` after the first."""

    def __init__(self, user, client=None):
        self.user, self.client = user, client
        self.seen, self.pages = [], []
        self.stored = threading.Event()

    def __call__(self, p):
        run = Run.objects.get(pk=p.run_id)
        self.seen.append((run.status, run.decision_count, visible_runs(self.user).filter(pk=run.pk).exists()))
        if self.client is not None and not self.stored.is_set():
            self.pages.append(self.client.get(f"/runs/{run.pk}/").content.decode())
        self.stored.set()


@pytest.mark.django_db(transaction=True)
def test_a_followed_log_is_a_live_run_listed_and_growing_while_it_is_written(log, lines, user, client_in):
    log.write_bytes(b"".join(lines[:10]))
    watch = Watch(user, client_in)
    thread = writer(log, *lines[10:], after=watch.stored)  # the rest only once the first slice is seen
    result = follow_file(owner=user, path=log, quiet=10, progress=watch, **FAST)
    thread.join()
    assert watch.seen[0] == ("live", 10, True)
    counts = [count for _, count, _ in watch.seen]
    assert counts == sorted(counts) and counts[-1] == 44 and len(counts) > 1
    assert 'id="live-badge"' in watch.pages[0] and "live · 10 decisions so far" in watch.pages[0]
    run = Run.objects.get(pk=result.run.pk)
    assert (result.status, run.status, run.decision_count) == ("imported", "ready", 44)
    assert run.name.startswith("combat_scenario_test") and not any("Following" in w for w in run.warnings)


@pytest.mark.django_db(transaction=True)
def test_session_end_ends_the_follow_without_waiting_for_the_file_to_go_quiet(log, lines, user):
    log.write_bytes(b"".join(lines))
    started = time.monotonic()
    result = follow_file(owner=user, path=log, quiet=30, **FAST)
    assert time.monotonic() - started < 10
    assert result.run.status == "ready" and result.count == 44
    assert not any("Following" in w for w in result.warnings)


@pytest.mark.django_db(transaction=True)
def test_a_followed_log_stores_what_an_import_of_the_finished_file_stores(log, lines, user, other_user, samples_dir):
    log.write_bytes(b"".join(lines[:20]))
    watch = Watch(user)
    thread = writer(log, *lines[20:], after=watch.stored)
    followed = follow_file(owner=user, path=log, quiet=10, progress=watch, **FAST).run
    thread.join()
    imported = run_ingest(owner=other_user, sources=[Source("x.jsonl", path=samples_dir / SESSION)])[0].run
    fields = ("seq", "line", "ts", "t_ms", "action", "reason", "values", "round", "agent", "metric", "raw")
    assert list(Decision.objects.filter(run=followed).order_by("seq").values_list(*fields)) == list(
        Decision.objects.filter(run=imported).order_by("seq").values_list(*fields))
    followed.refresh_from_db()
    imported.refresh_from_db()
    for attr in ("sha256", "size", "decision_count", "first_ts", "last_ts", "duration_ms", "agents", "settings",
                 "session_id", "name", "warnings"):
        assert getattr(followed, attr) == getattr(imported, attr), attr


@pytest.mark.django_db(transaction=True)
def test_a_quiet_file_ends_the_follow_and_the_run_says_it_stopped_before_session_end(log, lines, user):
    log.write_bytes(b"".join(lines[:-1]))
    result = follow_file(owner=user, path=log, quiet=0.3, **FAST)
    assert result.run.status == "ready" and result.count == 43
    assert "Following stopped before session_end: the file was quiet for 0.3 s." in result.warnings


@pytest.mark.django_db(transaction=True)
def test_the_follower_says_it_is_alive_while_the_file_is_quiet(log, lines, user, monkeypatch):
    monkeypatch.setattr("viewer.follow.LIVE_BEAT_SECONDS", 0.1)
    log.write_bytes(b"".join(lines[:-1]))
    first_seen = []
    result = follow_file(owner=user, path=log, quiet=1.5, progress=lambda p: first_seen.append(
        Run.objects.get(pk=p.run_id).live_seen), **FAST)
    assert first_seen[0] is not None and result.run.status == "ready"
    # stored once at the start, then quiet for 1.5 s: the beats moved live_seen on
    assert (Run.objects.get(pk=result.run.pk).live_seen - first_seen[0]).total_seconds() >= 0.5


@pytest.mark.django_db(transaction=True)
def test_a_log_kind_without_an_end_event_just_ends_when_quiet(tmp_path, samples_dir, user):
    study = tmp_path / "2024-03-05T18-22-30.004512-0000000007-gc-104523-41233.study.log"
    study.write_bytes((samples_dir / "study" / study.name).read_bytes())
    result = follow_file(owner=user, path=study, quiet=0.3, **FAST)
    assert result.run.status == "ready" and result.count == 1500
    assert not any("Following" in w for w in result.warnings)
    assert "104523" not in result.run.name + result.run.source_name  # pseudonymized as on import


@pytest.mark.django_db(transaction=True)
def test_a_half_written_last_line_is_not_read_until_its_newline_arrives(log, lines, user):
    half = len(lines[5]) // 2
    log.write_bytes(b"".join(lines[:5]) + lines[5][:half])  # line 6 is an 8 KB llm_call
    watch = Watch(user)
    thread = writer(log, lines[5][half:], *lines[6:], after=watch.stored)
    result = follow_file(owner=user, path=log, quiet=10, progress=watch, **FAST)
    thread.join()
    assert watch.seen[0] == ("live", 5, True)
    assert result.status == "imported" and result.count == 44
    assert Decision.objects.get(run=result.run, seq=5).raw == lines[5].decode().rstrip("\n")


@pytest.mark.django_db(transaction=True)
def test_an_unfinished_line_when_the_file_goes_quiet_is_left_out_with_a_warning(log, lines, user):
    log.write_bytes(b"".join(lines[:10]) + lines[10][:100])
    result = follow_file(owner=user, path=log, quiet=0.3, **FAST)
    assert result.run.status == "ready" and result.count == 10
    assert "The last line was unfinished (100 bytes without a newline) and was not read." in result.warnings
    assert result.run.size == len(b"".join(lines[:10]))


@pytest.mark.django_db(transaction=True)
def test_ctrl_c_stops_the_follow_and_keeps_the_run_as_far_as_it_was_stored(log, lines, user):
    log.write_bytes(b"".join(lines[:10]))

    def interrupt(p):
        raise KeyboardInterrupt

    result = follow_file(owner=user, path=log, quiet=10, progress=interrupt, **FAST)
    run = Run.objects.get(pk=result.run.pk)
    assert (result.status, run.status, run.decision_count) == ("imported", "ready", 10)
    assert Decision.objects.filter(run=run).count() == 10
    assert "Following stopped before session_end (interrupted): the run holds the decisions stored by then." in run.warnings


@pytest.mark.django_db(transaction=True)
def test_a_line_that_cannot_be_read_refuses_the_file_and_deletes_the_live_run(log, lines, user):
    log.write_bytes(b"".join(lines[:10]))
    watch = Watch(user)
    thread = writer(log, b"{not json\n", after=watch.stored)
    result = follow_file(owner=user, path=log, quiet=10, progress=watch, **FAST)
    thread.join()
    assert watch.seen[0] == ("live", 10, True)
    assert result.status == "error" and "line 11: invalid JSON" in result.message
    assert not Run.objects.exists() and not Decision.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_nothing_arriving_at_all_stores_nothing(log, user):
    log.write_bytes(b"")
    result = follow_file(owner=user, path=log, quiet=0.2, **FAST)
    assert result.status == "error" and "no whole line arrived in 0.2 s" in result.message
    assert not Run.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_log_imported_whole_already_is_a_duplicate_not_followed_again(log, lines, user):
    log.write_bytes(b"".join(lines))
    first = follow_file(owner=user, path=log, quiet=5, **FAST)
    again = follow_file(owner=user, path=log, quiet=5, **FAST)
    assert again.status == "duplicate" and again.run.pk == first.run.pk and Run.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_dynoai_replay_is_written_whole_and_cannot_be_followed(tmp_path, samples_dir, user):
    replay = tmp_path / "session_replay.json"
    replay.write_bytes((samples_dir / "dynoai/real_sample/session_replay.json").read_bytes())
    result = follow_file(owner=user, path=replay, quiet=1, **FAST)
    assert result.status == "error" and "is written whole, not a line at a time, so it cannot be followed" in result.message
    assert not Run.objects.exists()


# --- the stream under the reader ------------------------------------------------------------------


def test_the_follow_stream_waits_at_the_end_of_the_file_for_the_rest_of_a_line(tmp_path):
    path = tmp_path / "log.jsonl"
    path.write_bytes(b'{"a": 1}\n{"b": ')
    now, arrivals = [0.0], [b"2}\n", b'{"c": 3}\n']

    def sleep(seconds):  # the writer appends while the stream waits
        now[0] += seconds
        if arrivals:
            with open(path, "ab") as f:
                f.write(arrivals.pop(0))

    with open(path, "rb", buffering=0) as f:
        raw = FollowStream(f, quiet=5, poll=1, clock=lambda: now[0], sleep=sleep)
        stream = io.BufferedReader(raw)
        assert [stream.readline() for _ in range(4)] == [b'{"a": 1}\n', b'{"b": 2}\n', b'{"c": 3}\n', b""]
    assert raw.stopped == "quiet" and now[0] >= 5 and raw.delivered == path.stat().st_size


def test_the_follow_stream_told_to_finish_reads_what_is_there_and_ends_without_waiting(tmp_path):
    path = tmp_path / "log.jsonl"
    path.write_bytes(b'{"a": 1}\n{"end": 1}\n{"after": 1}\n{"unfinish')
    with open(path, "rb", buffering=0) as f:
        raw = FollowStream(f, quiet=60, sleep=lambda s: pytest.fail("waited"))
        stream = io.BufferedReader(raw)
        assert stream.readline() == b'{"a": 1}\n'
        raw.finish()
        assert stream.read() == b'{"end": 1}\n{"after": 1}\n'
    assert raw.stopped == "end" and raw.withheld == len(b'{"unfinish')


def test_the_follow_stream_stops_at_its_size_limit_on_a_whole_line(tmp_path):
    path = tmp_path / "log.jsonl"
    path.write_bytes(b'{"a": 1}\n{"b": 2}\n{"c": 3}\n')
    with open(path, "rb", buffering=0) as f:
        raw = FollowStream(f, quiet=60, limit=22, sleep=lambda s: pytest.fail("waited"))
        assert io.BufferedReader(raw).read() == b'{"a": 1}\n{"b": 2}\n'
    assert raw.stopped == "limit" and raw.withheld == 4


# --- the command ----------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_import_logs_follow_says_where_the_live_run_is_and_how_it_ended(log, lines, user):
    log.write_bytes(b"".join(lines[:-1]))
    out, err = io.StringIO(), io.StringIO()
    call_command("import_logs", "--follow", str(log), "--quiet", "0.5", "--user", "alice", stdout=out, stderr=err)
    run = Run.objects.get()
    assert out.getvalue().startswith(f"live       session_live.jsonl: run {run.pk} (/runs/{run.pk}/)")
    assert f"imported   session_live.jsonl: 43 decisions (run {run.pk}: combat_scenario_test" in out.getvalue()
    assert "warning: Following stopped before session_end: the file was quiet for 0.5 s." in out.getvalue()


@pytest.mark.django_db
@pytest.mark.parametrize("args, message", [
    (["--follow", "a.jsonl", "b.jsonl"], "--follow takes one log file"),
    (["--follow", "."], "--follow takes one log file"),
    (["--follow", "{log}", "--quiet", "0"], "--quiet takes a number of seconds above 0"),
    (["{log}", "--quiet", "5"], "--quiet goes with --follow"),
])
def test_import_logs_follow_takes_one_file_and_a_positive_quiet_time(args, message, log, user, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    log.write_text("{}\n")
    with pytest.raises(CommandError, match=message):
        call_command("import_logs", *[a.format(log=log) for a in args], "--user", "alice")


# --- the run page while the run is live -----------------------------------------------------------


@pytest.fixture
def live_run(import_sample):
    run = import_sample(SESSION)
    Run.objects.filter(pk=run.pk).update(status=Run.Status.LIVE)
    return run


def fragment(client, url, target):
    return client.get(url, headers={"HX-Request": "true", "HX-Target": target})


@pytest.mark.django_db
def test_a_live_run_page_shows_live_and_polls_its_badge_chart_and_newest_rows(client_in, live_run):
    page = client_in.get(f"/runs/{live_run.pk}/").content.decode()
    assert "live · 44 decisions so far" in page
    assert page.count('hx-trigger="every 2s"') == 2 and 'hx-trigger="click, every 2s"' in page  # badge, chart; rows
    assert '<a href="?after=43" hx-get="?after=43" hx-target="#load-more"' in page  # a real link too


@pytest.mark.django_db
def test_a_live_run_whose_follower_was_not_heard_from_is_settled_ready_with_a_warning(client_in, live_run, settings):
    import datetime as dt

    from django.utils import timezone

    settings.REPLAYWEB_JOB_STALE_SECONDS = 60
    fresh = Run.objects.create(owner=live_run.owner, name="still growing", kind="session", source_name="g.jsonl",
                               size=1, sha256="live-fresh", status=Run.Status.LIVE, live_seen=timezone.now())
    Run.objects.filter(pk=live_run.pk).update(live_seen=timezone.now() - dt.timedelta(minutes=5))
    client_in.get("/")  # the runs list reaps what stopped processes left behind
    run = Run.objects.get(pk=live_run.pk)
    assert run.status == Run.Status.READY
    assert "Following stopped without an end" in run.warnings[-1] and "44 decisions stored by then" in run.warnings[-1]
    assert Run.objects.get(pk=fresh.pk).status == Run.Status.LIVE
    page = client_in.get(f"/runs/{run.pk}/").content.decode()
    assert "live · " not in page and "every 2s" not in page


@pytest.mark.django_db
def test_a_run_no_longer_live_shows_no_badge_and_polls_nothing(client_in, live_run):
    Run.objects.filter(pk=live_run.pk).update(status=Run.Status.READY)
    page = client_in.get(f"/runs/{live_run.pk}/").content.decode()
    assert "live-badge" not in page and "every 2s" not in page and "appear here as they arrive" not in page


@pytest.mark.django_db
def test_the_polled_last_row_brings_the_newer_decisions_then_stops_once_the_run_has_ended(client_in, live_run):
    url = f"/runs/{live_run.pk}/?after=40"
    answer = fragment(client_in, url, "load-more").content.decode()
    assert answer.count('<tr class="row"') == 3 and 'hx-get="?after=43"' in answer and "every 2s" in answer
    quiet = fragment(client_in, f"/runs/{live_run.pk}/?after=43", "load-more").content.decode()
    assert '<tr class="row"' not in quiet and 'hx-get="?after=43"' in quiet  # nothing new yet: it polls on
    Run.objects.filter(pk=live_run.pk).update(status=Run.Status.READY)
    ended = fragment(client_in, f"/runs/{live_run.pk}/?after=43", "load-more")
    assert ended.status_code == 200 and ended.content.decode().strip() == ""  # the row goes, and its polling


@pytest.mark.django_db
def test_the_polled_badge_and_chart_stop_polling_once_the_run_has_ended(client_in, live_run):
    badge = fragment(client_in, f"/runs/{live_run.pk}/", "live-badge").content.decode()
    chart = fragment(client_in, f"/runs/{live_run.pk}/", "chart").content.decode()
    assert "live · 44 decisions so far" in badge and "every 2s" in badge and "every 2s" in chart
    Run.objects.filter(pk=live_run.pk).update(status=Run.Status.READY)
    badge = fragment(client_in, f"/runs/{live_run.pk}/", "live-badge").content.decode()
    chart = fragment(client_in, f"/runs/{live_run.pk}/", "chart").content.decode()
    assert "ended" in badge and f'<a href="/runs/{live_run.pk}/">reload</a>' in badge
    assert "hx-trigger" not in badge and "every 2s" not in chart
