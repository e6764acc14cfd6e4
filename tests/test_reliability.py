"""An import interrupted by a database error leaves no run and no decisions.

Faults at each point of an import: the run's first insert and its final update (raised at the
driver boundary, connection.execute_wrapper), and the first or a later batch of decisions (raised
by the database itself: a trigger, since PostgreSQL's COPY bypasses Django's cursor wrappers).
Transactional tests: the import's own transaction commits or rolls back for real, as in
production (not a savepoint inside the test's transaction).
"""

import contextlib

import pytest
from django.db import OperationalError, connection

from viewer.ingest import Source, run_ingest
from viewer.models import Decision, Run

SAMPLE = "session/session_debt_auction_ambush.jsonl"  # 123 events: several batches of 10


@contextlib.contextmanager
def fail_on(statement: str, nth: int):
    """The nth SQL statement starting with `statement` raises an OperationalError."""
    seen = [0]

    def wrapper(execute, sql, params, many, context):
        if sql.lstrip().upper().startswith(statement):
            seen[0] += 1
            if seen[0] == nth:
                raise OperationalError("disk I/O error (injected)")
        return execute(sql, params, many, context)

    with connection.execute_wrapper(wrapper):
        yield seen


@contextlib.contextmanager
def decision_fails(seq: int):
    """The database refuses every decision with this seq (a trigger), however it is inserted."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "CREATE FUNCTION qg_injected_fault() RETURNS trigger AS $$ BEGIN "
                "RAISE EXCEPTION 'disk I/O error (injected)'; END $$ LANGUAGE plpgsql"
            )
            cursor.execute(
                f"CREATE TRIGGER qg_injected_fault BEFORE INSERT ON viewer_decision FOR EACH ROW "
                f"WHEN (NEW.seq = {seq}) EXECUTE FUNCTION qg_injected_fault()"
            )
        else:
            cursor.execute(
                f"CREATE TRIGGER qg_injected_fault BEFORE INSERT ON viewer_decision WHEN NEW.seq = {seq} "
                "BEGIN SELECT RAISE(ABORT, 'disk I/O error (injected)'); END"
            )
    try:
        yield [1]
    finally:
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                cursor.execute("DROP TRIGGER qg_injected_fault ON viewer_decision")
                cursor.execute("DROP FUNCTION qg_injected_fault()")
            else:
                cursor.execute("DROP TRIGGER qg_injected_fault")


FAULTS = {
    "creating the run": lambda: fail_on('INSERT INTO "VIEWER_RUN"', 1),
    "the first decision batch": lambda: decision_fails(0),
    "a later decision batch": lambda: decision_fails(45),
    "the last decision": lambda: decision_fails(122),
    "the run's final update": lambda: fail_on('UPDATE "VIEWER_RUN"', 1),
}


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("where", FAULTS)
def test_a_database_error_anywhere_in_an_import_leaves_nothing_behind(samples_dir, user, settings, where):
    settings.REPLAYWEB_INSERT_BATCH = 10
    with FAULTS[where]() as seen:
        [result] = run_ingest(owner=user, sources=[Source(name="s.jsonl", path=samples_dir / SAMPLE)])
    assert seen[0] >= 1, f"the import never reached {where}: the fault was not injected"
    assert result.status == "error" and "s.jsonl" in result.message and "nothing was stored" in result.message
    assert not Run.objects.exists() and not Decision.objects.exists()
    # The connection is usable afterwards, and the same file then imports whole.
    [again] = run_ingest(owner=user, sources=[Source(name="s.jsonl", path=samples_dir / SAMPLE)])
    assert again.status == "imported" and Decision.objects.filter(run=again.run).count() == 123


@pytest.mark.django_db(transaction=True)
def test_a_database_error_during_an_upload_is_a_message_not_a_500(client, user, samples_dir, settings):
    settings.REPLAYWEB_INSERT_BATCH = 10
    client.force_login(user)
    with (
        decision_fails(100),
        open(samples_dir / SAMPLE, "rb") as f,
        open(samples_dir / "session/combat_session_sample.jsonl", "rb") as g,
    ):
        response = client.post("/upload/", {"files": [f, g]}, headers={"HX-Request": "true"})
    assert response.status_code == 202  # queued (and, in the suite, imported on the spot), never a 500
    text = response.content.decode()
    assert "session_debt_auction_ambush.jsonl" in text and "nothing was stored" in text
    assert Decision.objects.count() == Run.objects.get().decision_count == 44  # only the combat sample


READER_FAULTS = {
    "ValueError": ValueError("Exceeds the limit (4300 digits) for integer string conversion"),
    "OverflowError": OverflowError("date value out of range"),
    "RecursionError": RecursionError("maximum recursion depth exceeded"),
    "TypeError": TypeError("'int' object is not iterable"),
    "KeyError": KeyError("surprise"),
}


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("fault", READER_FAULTS)
def test_any_error_a_reader_raises_mid_file_is_that_files_refusal_and_leaves_nothing(
    samples_dir, user, settings, monkeypatch, fault
):
    """Issue 14.1: the file before it stays imported (committed), the failing one is rolled back
    and named with the last line read, the one after it still imports: no exception escapes."""
    from viewer.readers import session

    settings.REPLAYWEB_INSERT_BATCH = 10
    real_read = session.read

    def failing_read(stream, info, **kwargs):
        for d in real_read(stream, info, **kwargs):
            if d.seq == 60 and info.session_id and "debt" in stream_name[0]:
                raise READER_FAULTS[fault]
            yield d

    stream_name = [""]
    sources = [Source(name=n, path=samples_dir / p) for n, p in (
        ("combat.jsonl", "session/combat_session_sample.jsonl"),
        ("debt.jsonl", SAMPLE),
        ("study.log", "study/2024-03-05T18-22-30.004512-0000000007-gc-104523-41233.study.log"),
    )]
    real_open = Source.open

    def tracking_open(self):
        stream_name[0] = self.name
        return real_open(self)

    monkeypatch.setattr(Source, "open", tracking_open)
    monkeypatch.setattr(session, "read", failing_read)
    results = run_ingest(owner=user, sources=sources)
    assert [r.status for r in results] == ["imported", "error", "imported"], [r.message for r in results]
    assert results[1].message.startswith("debt.jsonl: ") and "nothing was stored" in results[1].message
    assert "after line" in results[1].message
    assert sorted(Run.objects.values_list("pk", flat=True)) == sorted([results[0].run.pk, results[2].run.pk])
    assert Decision.objects.count() == results[0].count + results[2].count
