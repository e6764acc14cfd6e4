"""viewer.pipeline: a big file read in a second process while the importing one writes stores exactly
what one process stores, and fails, or is cancelled, exactly as one process does."""
import multiprocessing
import threading
from pathlib import Path

import pytest

from viewer import pipeline
from viewer.ingest import Source, Stop, run_ingest
from viewer.models import Decision, Run

pytestmark = pytest.mark.django_db

OTLP = Path(__file__).parent / "data" / "otlp"
SAMPLES = [
    "dynoai/real_sample/session_replay.json",
    "session/session_debt_auction_ambush.jsonl",
    "study/2024-03-05T18-40-02.114002-0000000008-gc-104523-41233.study.log.gz",
    "hostile/xss_session.jsonl",
    "odd/nan_values_session_replay.json",
]
COLUMNS = [f.name for f in Decision._meta.fields if f.name not in ("id", "run")]
FACTS = ("kind", "decision_count", "first_ts", "last_ts", "duration_ms", "session_id", "run_id", "agents",
         "settings", "warnings", "name", "sha256")


@pytest.fixture(autouse=True)
def forks(monkeypatch) -> list[bool]:
    """Whether each import read in a second process (so that no test passes by reading in one). Idle
    threads other tests of the suite left behind (test_load's) would make every import read in one."""
    monkeypatch.setattr(pipeline, "_alone", lambda: True)
    seen, usable = [], pipeline.usable
    monkeypatch.setattr(pipeline, "usable", lambda size: seen.append(usable(size)) or seen[-1])
    return seen


def imported(user, path: Path, *, pipe: bool, settings, name=None, **kw):
    settings.REPLAYWEB_IMPORT_PIPELINE_BYTES = 1 if pipe else 0
    settings.REPLAYWEB_IMPORT_SLICE = 7  # slices that cut the child's batches anywhere
    (result,) = run_ingest(owner=user, sources=[Source(name or path.name, path=path)], **kw)
    return result


def stored(run: Run) -> tuple:
    rows = list(Decision.objects.filter(run=run).order_by("seq").values_list(*COLUMNS))
    return [getattr(run, f) for f in FACTS], rows


@pytest.mark.parametrize("sample", [*SAMPLES, "otlp"])
def test_a_file_read_in_a_second_process_stores_what_one_process_stores(samples_dir, user, settings, forks,
                                                                         sample):
    path = OTLP / "two_traces.jsonl" if sample == "otlp" else samples_dir / sample
    # real ids kept: a study log's pseudonyms are drawn at random on each import
    one = imported(user, path, pipe=False, settings=settings, keep_user_ids=True)
    assert one.status == "imported", one.message
    before = stored(one.run)
    one.run.delete()
    two = imported(user, path, pipe=True, settings=settings, keep_user_ids=True)
    assert forks == [False, True]
    assert two.status == "imported" and two.message == one.message
    assert stored(two.run) == before


@pytest.mark.parametrize("sample", ["bad/broken_line_3_session.jsonl", "bad/truncated_session_replay.json",
                                    "bad/missing_action_session_replay.json", "bad/truncated.study.log.gz",
                                    "hostile/deep_and_huge_session_replay.json"])
def test_a_bad_file_read_in_a_second_process_is_refused_with_the_same_words_and_nothing_stored(
        samples_dir, user, settings, forks, sample):
    one = imported(user, samples_dir / sample, pipe=False, settings=settings)
    two = imported(user, samples_dir / sample, pipe=True, settings=settings)
    assert one.status == two.status == "error"
    assert forks == [False, True] or "gz" in sample  # a truncated gzip is refused by its check, before any reading
    assert two.message == one.message
    assert not Run.objects.exists() and not Decision.objects.exists()
    assert multiprocessing.active_children() == []


def test_a_cancelled_import_stops_the_reading_process_and_stores_nothing(samples_dir, user, settings, forks):
    def cancel(progress):
        if progress.decisions:
            raise Stop

    with pytest.raises(Stop):
        imported(user, samples_dir / "session/session_debt_auction_ambush.jsonl", pipe=True, settings=settings,
                 progress=cancel)
    assert forks == [True]
    assert not Run.objects.exists() and not Decision.objects.exists()
    assert multiprocessing.active_children() == []
    assert [t for t in threading.enumerate() if t.name == "import-pipe"] == []


def test_only_a_big_enough_file_is_read_in_two_and_never_beside_another_thread(settings, monkeypatch):
    settings.REPLAYWEB_IMPORT_PIPELINE_BYTES = 1000
    assert pipeline.usable(1000) and not pipeline.usable(999)
    settings.REPLAYWEB_IMPORT_PIPELINE_BYTES = 0
    assert not pipeline.usable(10**9)
    monkeypatch.undo()  # the real test of threads
    stop = threading.Event()
    other = threading.Thread(target=stop.wait)
    other.start()
    try:
        assert not pipeline._alone()  # forking a threaded process can copy a lock another thread holds
    finally:
        stop.set()
        other.join()


def test_a_copy_line_escapes_what_postgresql_copy_text_would_misread():
    import datetime as dt

    from viewer.writer import copy_line

    row = (7, None, "a\\b\tc\nd\re", float("inf"), float("nan"), 0.1 + 0.2, "é😀",
           dt.datetime(2025, 12, 15, 17, 28, 1, 803000, tzinfo=dt.timezone.utc))
    assert copy_line(row) == ("7\t\\N\ta\\\\b\\tc\\nd\\re\tinf\tnan\t0.30000000000000004\té😀\t"
                              "2025-12-15T17:28:01.803000+00:00\n").encode()
