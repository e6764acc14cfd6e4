"""viewer.diff_report: two runs compared as one report, whichever way their decisions are read."""
import threading

import pytest

from viewer import diff_report, kinds
from viewer.diff_report import side_by_side

DYNO_A = ("dynoai/runs/large200k_s2_c7/session_replay.json", "dynoai/runs/large200k_s2_c7/manifest.json")
DYNO_B = ("dynoai/runs/large200k_s4_c10/session_replay.json", "dynoai/runs/large200k_s4_c10/manifest.json")


def report(a, b, **options):
    return diff_report.diff_report(a, kinds.profile(a), b, kinds.profile(b), filters={}, **options)


def what_it_shows(r) -> tuple:
    rows = r.result.rows
    return (bytes(rows.status), list(rows.a), list(rows.b), rows.changes, r.counts, r.result.divergence,
            r.heatmap, r.result.a.finals, r.result.b.finals)


@pytest.mark.django_db(transaction=True)  # run B is read on a connection of its own: it must see the runs
def test_runs_read_side_by_side_give_the_report_read_one_after_the_other(import_sample, monkeypatch):
    a, b = import_sample(*DYNO_A), import_sample(*DYNO_B)
    apart = what_it_shows(report(a, b))
    threads = []
    read = diff_report._side

    def side(run, *args):
        threads.append((run.pk, threading.current_thread().name))
        return read(run, *args)

    monkeypatch.setattr(diff_report, "SIDE_BY_SIDE", 0)
    monkeypatch.setattr(diff_report, "_side", side)
    assert what_it_shows(report(a, b)) == apart
    assert sorted(threads) == sorted([(a.pk, threading.current_thread().name), (b.pk, "diff-side-b")])


def test_an_error_reading_run_b_is_raised_here_once_run_a_is_read():
    read_a_done = threading.Event()

    def read_b():
        raise LookupError("run B's rows could not be read")

    def read_a():
        read_a_done.set()
        return "A"

    with pytest.raises(LookupError, match="run B's rows"):
        side_by_side(read_a, read_b)
    assert read_a_done.is_set() and not any(t.name == "diff-side-b" for t in threading.enumerate())
