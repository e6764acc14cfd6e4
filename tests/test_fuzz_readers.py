"""Hypothesis fuzzing of the three readers and of run_ingest: any bytes either import or are refused
with the one clear import error (ReadError / an "error" result naming the file), never another
exception, and whatever is read can be stored (no NUL, no lone surrogate, finite JSON numbers).
"""

import datetime as dt
import gzip
import io
import json
import math
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from viewer.readers.base import storable
from viewer.ingest import Source, _dumps, run_ingest
from viewer.models import Decision as DecisionRow
from viewer.models import Run
from viewer.readers import dynoai, session, study
from viewer.readers.base import Decision, Limits, ReadError, RunInfo
from helpers import strings_in

READERS = {"dynoai": dynoai, "session": session, "study": study}
# Small limits so the line-length and size checks are exercised too.
LIMITS = Limits(max_line_bytes=4096, max_decompressed_bytes=64 * 1024)
FUZZ = settings(
    max_examples=int(os.environ.get("REPLAYWEB_FUZZ_EXAMPLES", 150)),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
FUZZ_DB = settings(
    max_examples=int(os.environ.get("REPLAYWEB_FUZZ_EXAMPLES", 150)) // 4,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

# -- strategies --------------------------------------------------------------------------------

# Every code point, lone surrogates and NUL included (Hypothesis leaves surrogates out by default).
any_text = st.text(st.characters(exclude_categories=()), max_size=12)
nasty_text = st.one_of(
    any_text,
    st.sampled_from(
        [
            "",
            "\x00",
            "\ud800",
            "\udfff",
            "a\x00b",
            "\ud83d\ude00",
            "\u202eevil",
            "<script>x</script>",
            "=1+1",
            "\ufeff",
            "\r",
            "\n",
            "\t",
            "NaN",
            "2025-12-15T17:28:01.800Z",
            "2024-03-05T18:22:41",
        ]
    ),
)
leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    nasty_text,
)
json_value = st.recursive(
    leaf,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(nasty_text, inner, max_size=3)),
    max_leaves=12,
)
timestamp = st.one_of(
    st.just("2025-12-15T17:28:01.800Z"),
    st.just("2025-10-31T15:32:23.298583"),
    st.datetimes(timezones=st.one_of(st.none(), st.timezones())).map(lambda d: d.isoformat()),
    json_value,
)
cell = st.one_of(
    json_value,
    st.fixed_dictionaries(
        {}, optional={"rpm": leaf, "kpa": leaf, "cylinder": json_value, "rpm_index": leaf, "kpa_index": leaf}
    ),
)
dynoai_decision = st.one_of(
    json_value,
    st.fixed_dictionaries(
        {
            "action": st.one_of(
                st.sampled_from(["AFR_CORRECTION", "GRADIENT_LIMITING"]), nasty_text, json_value
            )
        },
        optional={
            "timestamp": timestamp,
            "reason": json_value,
            "values": st.one_of(
                json_value,
                st.dictionaries(
                    st.sampled_from(["afr_error_pct", "result", "score", "clamped_count"]) | nasty_text,
                    leaf,
                    max_size=3,
                ),
            ),
            "cell": cell,
        },
    ),
)
dynoai_doc = st.fixed_dictionaries(
    {"decisions": st.one_of(st.lists(dynoai_decision, max_size=4), json_value)},
    optional={
        "run_id": json_value,
        "schema_version": json_value,
        "generated_at": json_value,
        "total_decisions": leaf,
    },
)
session_event = st.fixed_dictionaries(
    {
        "event_type": st.one_of(
            st.sampled_from(["session_start", "round_start", "llm_call", "action_resolution"]),
            nasty_text,
            json_value,
        )
    },
    optional={
        "ts": timestamp,
        "session": json_value,
        "round": leaf,
        "agent_id": json_value,
        "prompt": json_value,
        "response": json_value,
        "tokens": json_value,
        "roll": json_value,
        "config": json_value,
        "random_seed": leaf,
        "narration": json_value,
    },
)
study_event = st.fixed_dictionaries(
    {
        "client": st.one_of(
            json_value,
            st.fixed_dictionaries(
                {"event": st.one_of(st.just("keystroke"), nasty_text, json_value)},
                optional={
                    "auth": st.one_of(
                        json_value,
                        st.fixed_dictionaries(
                            {},
                            optional={
                                "safe_user_id": json_value,
                                "user_id": json_value,
                                "providence": json_value,
                            },
                        ),
                    ),
                    "metadata": json_value,
                    "source": json_value,
                    "keystroke": json_value,
                },
            ),
        ),
    },
    optional={"server": json_value, "metadata": json_value},
)

# Well-formed records whose strings are hostile: these mostly import, so the storing is fuzzed too.
label_text = nasty_text.filter(lambda t: t != "")
good_dynoai_doc = st.fixed_dictionaries(
    {
        "run_id": nasty_text,
        "decisions": st.lists(
            st.fixed_dictionaries(
                {
                    "timestamp": st.just("2025-12-15T17:28:01.800Z"),
                    "action": label_text,
                    "reason": nasty_text,
                    "values": st.dictionaries(nasty_text, json_value, max_size=4),
                    "cell": st.fixed_dictionaries({"rpm": leaf, "kpa": leaf, "cylinder": nasty_text}),
                }
            ),
            min_size=1,
            max_size=4,
        ),
    }
)
good_session_event = st.fixed_dictionaries(
    {
        "event_type": st.one_of(
            st.sampled_from(["session_start", "round_start", "llm_call", "action_resolution"]), label_text
        ),
        "ts": st.just("2025-10-31T15:32:23.298583"),
        "session": nasty_text,
        "round": leaf,
        "agent_id": nasty_text,
        "prompt": st.lists(st.fixed_dictionaries({"role": nasty_text, "content": nasty_text}), max_size=2),
        "response": nasty_text,
        "config": st.dictionaries(nasty_text, json_value, max_size=3),
        "roll": st.fixed_dictionaries({"margin": leaf}),
        "tokens": st.fixed_dictionaries({"input": leaf}),
    }
)
good_study_event = st.fixed_dictionaries(
    {
        "client": st.fixed_dictionaries(
            {
                "event": label_text,
                "source": nasty_text,
                "auth": st.fixed_dictionaries({"safe_user_id": nasty_text, "user_id": nasty_text}),
                "metadata": st.fixed_dictionaries({"iso_ts": st.just("2024-03-05T18:22:41.111Z")}),
                "keystroke": st.dictionaries(nasty_text, json_value, max_size=3),
            }
        ),
        "server": st.fixed_dictionaries({"time": st.floats(1e9, 2e9)}),
    }
)


@st.composite
def encoded(draw, value):
    """A JSON value as bytes: ASCII-escaped or raw UTF-8 (a raw surrogate is then invalid UTF-8)."""
    ascii_only = draw(st.booleans())
    text = json.dumps(value, ensure_ascii=ascii_only, allow_nan=True, indent=draw(st.sampled_from([None, 2])))
    return text.encode("utf-8", "surrogatepass")


@st.composite
def jsonl(draw, events, suffix=st.just("")):
    lines = [
        draw(encoded(e)).replace(b"\n", b" ") + draw(suffix).encode("utf-8", "surrogatepass")
        for e in draw(st.lists(events, max_size=5))
    ]
    return draw(st.sampled_from([b"\n", b"\r\n"])).join(lines) + draw(st.sampled_from([b"", b"\n"]))


study_suffix = st.one_of(
    st.just("\t2024-03-05T18:22:41.123456"), st.just(""), nasty_text.map(lambda t: "\t" + t)
)


def sample_bytes(samples_dir, relpath, lines=None) -> bytes:
    data = (samples_dir / relpath).read_bytes()
    if relpath.endswith(".gz"):
        data = gzip.decompress(data)
    return b"".join(data.splitlines(keepends=True)[:lines]) if lines else data


@st.composite
def mutated(draw, original: bytes):
    """A real file damaged: truncated, bytes flipped, inserted or deleted, lines duplicated."""
    data = bytearray(original)
    for _ in range(draw(st.integers(1, 4))):
        if not data:
            break
        at = draw(st.integers(0, len(data) - 1))
        op = draw(st.sampled_from(["truncate", "flip", "insert", "delete", "dup"]))
        if op == "truncate":
            del data[at:]
        elif op == "flip":
            data[at] = draw(st.integers(0, 255))
        elif op == "insert":
            data[at:at] = draw(
                st.binary(min_size=1, max_size=8)
                | st.sampled_from(
                    [b"\\u0000", b"\\ud800", b"\x00", b"NaN", b"[", b"{", b'"', b"\n", b"\t", b"1e999"]
                )
            )
        elif op == "delete":
            del data[at : at + draw(st.integers(1, 16))]
        else:
            end = data.find(b"\n", at)
            start = data.rfind(b"\n", 0, at) + 1
            if end > 0:
                data[end + 1 : end + 1] = data[start : end + 1]
    return bytes(data)


# -- properties --------------------------------------------------------------------------------



def _no_constant(name):
    raise AssertionError(f"{name} would reach a JSON column")


def assert_storable(d: Decision, seq: int) -> None:
    assert d.seq == seq
    assert isinstance(d.action, str) and len(d.action) <= 500  # a study log may have client.event ""
    assert isinstance(d.reason, str) and isinstance(d.text, str) and isinstance(d.raw, str)
    assert isinstance(d.values, dict) and (d.cell is None or isinstance(d.cell, dict))
    assert d.ts is None or d.ts.utcoffset() == dt.timedelta(0)
    for field in ("rpm", "kpa", "rpm_index", "kpa_index", "round"):
        value = getattr(d, field)
        assert value is None or (
            isinstance(value, int) and not isinstance(value, bool) and -(2**31) <= value < 2**31
        )
    assert d.metric is None or math.isfinite(d.metric)
    fields = [d.action, d.reason, d.text, d.raw, d.agent or "", d.cylinder or ""]
    try:
        fields += [*strings_in(d.values), *strings_in(d.cell)]
        for value in (d.values, d.cell):  # as ingest writes them: strict JSON (jsonb has no NaN)
            json.loads(_dumps(value), parse_constant=_no_constant)
    except RecursionError:  # deeper than this walk goes; ingest stores it with json.dumps
        pass
    for text in fields:
        assert "\x00" not in text, f"NUL in {text!r}"
        text.encode("utf-8")  # no lone surrogate


def read_all(kind: str, data: bytes) -> tuple[list[Decision], RunInfo]:
    """Every decision, or ReadError; anything else fails the test."""
    info = RunInfo(kind=kind)
    decisions = list(READERS[kind].read(io.BytesIO(data), info, limits=LIMITS))
    for seq, d in enumerate(decisions):
        assert_storable(d, seq)
    for name in (
        "run_id",
        "schema_version",
        "generated_at",
        "session_id",
        "version",
        "git_commit",
        "source",
        "user_label",
    ):
        value = getattr(info, name)
        assert "\x00" not in value
        value.encode("utf-8")
    json.dumps(info.settings, allow_nan=False)
    return decisions, info


def reads_or_refuses(kind: str, data: bytes) -> None:
    try:
        read_all(kind, data)
    except ReadError as exc:
        assert exc.message and isinstance(exc.message, str)
        assert exc.line is None or exc.line >= 1


@FUZZ
@given(data=st.binary(max_size=2048))
@pytest.mark.parametrize("kind", READERS)
def test_any_bytes_are_read_or_refused_with_a_read_error(kind, data):
    reads_or_refuses(kind, data)


@FUZZ
@given(data=dynoai_doc.flatmap(encoded))
def test_any_dynoai_shaped_document_is_read_or_refused(data):
    reads_or_refuses("dynoai", data)


@FUZZ
@given(data=jsonl(session_event))
def test_any_session_shaped_log_is_read_or_refused(data):
    reads_or_refuses("session", data)


@FUZZ
@given(data=jsonl(study_event, study_suffix))
def test_any_study_shaped_log_is_read_or_refused(data):
    reads_or_refuses("study", data)


@pytest.mark.parametrize(
    "kind, relpath, lines",
    [
        ("dynoai", "hostile/xss_session_replay.json", None),
        ("session", "session/combat_session_sample.jsonl", 4),  # lines under LIMITS.max_line_bytes
        ("study", "study/2024-03-05T18-22-30.004512-0000000007-gc-104523-41233.study.log", 3),
    ],
)
def test_damaged_real_files_are_read_or_refused(samples_dir, kind, relpath, lines):
    original = sample_bytes(samples_dir, relpath, lines)
    assert read_all(kind, original)[0]  # undamaged, it reads

    @FUZZ
    @given(data=mutated(original))
    def damaged(data):
        reads_or_refuses(kind, data)

    damaged()


@pytest.mark.parametrize(
    "kind, text",
    [
        (
            "dynoai",
            '{"run_id": "r\\u0000\\ud800", "decisions": [{"timestamp": "2025-12-15T17:28:01.800Z", '
            '"action": "A\\u0000", "reason": "x\\ud800y", '
            '"values": {"k\\u0000": "v\\udfff", "n": [1, "\\u0000"]}, '
            '"cell": {"rpm": 2000, "kpa": 65, "cylinder": "f\\u0000"}}]}',
        ),
        (
            "session",
            '{"event_type": "session_start", "ts": "2025-10-31T15:32:23", "session": "s\\u0000", '
            '"config": {"n\\u0000": "\\ud800"}}\n'
            '{"event_type": "llm_call", "ts": "2025-10-31T15:32:24", "round": 1, "agent_id": "a\\u0000", '
            '"prompt": "p\\ud800", "response": "r\\u0000", "tokens": {"input": 1, "output": 2}}\n',
        ),
        (
            "study",
            '{"client": {"auth": {"safe_user_id": "gc-1\\u0000"}, '
            '"event": "key\\ud800", "source": "s\\u0000", '
            '"metadata": {"iso_ts": "2024-03-05T18:22:41.111Z"}}, "server": {"time": 1709662961.1}}'
            "\t2024-03-05T18:22:41.123456\n",
        ),
    ],
)
def test_nul_and_lone_surrogates_become_replacement_characters_and_raw_keeps_the_escapes(kind, text):
    decisions, info = read_all(kind, text.encode())
    stored = json.dumps(
        [[d.action, d.reason, d.text, d.agent, d.cylinder, d.values] for d in decisions], ensure_ascii=False
    )
    assert "\ufffd" in stored
    if kind != "study":  # study raw is rewritten by pseudonymization, escapes and all
        assert all(d.raw in text for d in decisions)
        assert any("\\u0000" in d.raw for d in decisions)


# -- through run_ingest and the database ---------------------------------------------------------

NAMES = {
    "dynoai": "session_replay.json",
    "session": "x_session.jsonl",
    "study": "2024-03-05T18-22-30.004512-0000000007-gc-1-2.study.log",
}
OTHER_NAMES = [
    "manifest.json",
    "notes.txt",
    "x.study.log.gz",
    "a\x00b.json",
    "../../etc/passwd",
    "<b>x</b>.json",
]


@st.composite
def any_file(draw, samples):
    kind = draw(st.sampled_from(["bytes", "dynoai", "session", "study", "mutated"]))
    good = draw(st.booleans())
    if kind == "bytes":
        data = draw(st.binary(max_size=1024))
    elif kind == "dynoai":
        data = draw((good_dynoai_doc if good else dynoai_doc).flatmap(encoded))
    elif kind == "session":
        data = draw(jsonl(good_session_event if good else session_event))
    elif kind == "study":
        data = draw(jsonl(good_study_event if good else study_event, study_suffix))
    else:
        kind, original = draw(st.sampled_from(samples))
        data = draw(mutated(original))
    name = NAMES.get(kind, "x.json")
    if draw(st.integers(0, 4)) == 0:
        name = draw(st.sampled_from(OTHER_NAMES + list(NAMES.values())))
    if draw(st.integers(0, 3)) == 0:
        data, name = gzip.compress(data), name + ".gz"
    return name, data


@pytest.mark.django_db
def test_any_file_is_imported_whole_or_refused_whole_by_run_ingest(samples_dir, user, settings):
    settings.REPLAYWEB_MAX_LINE_BYTES = LIMITS.max_line_bytes
    settings.REPLAYWEB_MAX_DECOMPRESSED_BYTES = LIMITS.max_decompressed_bytes
    samples = [
        ("dynoai", sample_bytes(samples_dir, "hostile/xss_session_replay.json")),
        ("session", sample_bytes(samples_dir, "session/combat_session_sample.jsonl", 4)),
        ("session", sample_bytes(samples_dir, "hostile/xss_session.jsonl")),
        (
            "study",
            sample_bytes(
                samples_dir, NAMES["study"].replace("gc-1-2", "gc-104523-41233").join(["study/", ""]), 3
            ),
        ),
    ]

    @FUZZ_DB
    @given(file=any_file(samples))
    def one_file(file):
        name, data = file
        before = set(Run.objects.values_list("pk", flat=True))
        decisions_before = DecisionRow.objects.count()
        [result] = run_ingest(owner=user, sources=[Source(name=name, fileobj=io.BytesIO(data))])
        assert result.status in ("imported", "duplicate", "error", "manifest"), result
        new = set(Run.objects.values_list("pk", flat=True)) - before
        if result.status == "imported":
            assert new == {result.run.pk}
            assert (
                DecisionRow.objects.filter(run=result.run).count()
                == result.count
                == result.run.decision_count
            )
        else:
            assert not new and DecisionRow.objects.count() == decisions_before  # nothing half-stored
        if result.status == "error":
            assert result.message.startswith(storable(name) + ":"), result.message  # NUL shown as U+FFFD

    one_file()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "kind, name, text",
    [
        (
            "dynoai",
            "nul_session_replay.json",
            '{"run_id": "r\\u0000", "decisions": [{"timestamp": "2025-12-15T17:28:01.800Z", '
            '"action": "A\\u0000B", '
            '"reason": "x\\u0000\\ud800", "values": {"k\\u0000": "v\\u0000"}, "cell": {"rpm": 1, "kpa": 2, '
            '"cylinder": "f\\u0000"}}]}',
        ),
        (
            "session",
            "nul_session.jsonl",
            '{"event_type": "session_start", "ts": "2025-01-01T00:00:00", "session": "s\\u0000", '
            '"config": {"a": "\\ud800"}}\n'
            '{"event_type": "llm_call\\u0000", "ts": "2025-01-01T00:00:01", "round": 1, '
            '"agent_id": "a\\udfff", '
            '"prompt": "p\\u0000", "response": "r", "tokens": {"input": 1, "output": 1}}\n',
        ),
        (
            "study",
            "2024-03-05T18-22-30.004512-0000000007-gc-1-2.study.log",
            '{"client": {"auth": {"safe_user_id": "gc-1\\u0000", "user_id": "gc-1"}, '
            '"event": "key\\u0000\\ud800", '
            '"metadata": {"iso_ts": "2024-03-05T18:22:41.111Z"}, "source": "s\\u0000"}, '
            '"server": {"time": 1709662961.1}}'
            "\t2024-03-05T18:22:41.123456\n",
        ),
    ],
)
def test_nul_and_lone_surrogates_import_on_this_database(user, kind, name, text):
    """PostgreSQL's text and jsonb refuse NUL; no driver encodes a lone surrogate (run on both databases)."""
    [result] = run_ingest(owner=user, sources=[Source(name=name, fileobj=io.BytesIO(text.encode()))])
    assert result.status == "imported", result.message
    rows = list(DecisionRow.objects.filter(run=result.run).order_by("seq"))
    assert (
        len(rows) == result.count == text.count("\n") + (0 if text.endswith("\n") else 1) or kind == "dynoai"
    )
    stored = json.dumps(
        [[r.action, r.reason, r.text, r.agent, r.cylinder, r.values] for r in rows], ensure_ascii=False
    )
    assert "\x00" not in stored and "\ufffd" in stored
    assert any("\\u0000" in r.raw for r in rows)
    assert DecisionRow.objects.filter(run=result.run, action__contains="\ufffd").exists() or kind != "session"


# -- names and header fields any database can store ---------------------------------------------


@pytest.mark.django_db
def test_a_header_longer_than_its_column_imports_on_every_database(user):
    """Run.schema_version and generated_at hold 100 characters: a longer value is cut to its column,
    as PostgreSQL (unlike SQLite) enforces varchar lengths."""
    text = json.dumps(
        {
            "schema_version": "v" * 150,
            "generated_at": "g" * 150,
            "decisions": [{"timestamp": "2025-12-15T17:28:01.800Z", "action": "A"}],
        }
    )
    [result] = run_ingest(
        owner=user, sources=[Source(name="long_session_replay.json", fileobj=io.BytesIO(text.encode()))]
    )
    assert result.status == "imported", result.message


@pytest.mark.django_db
def test_a_file_name_that_is_not_utf8_is_imported_or_refused_with_a_message(user, samples_dir):
    name = (b"caf\xe9_session_replay.json").decode("utf-8", "surrogateescape")  # what os.listdir gives
    data = (samples_dir / "dynoai/real_sample/session_replay.json").read_bytes()
    [result] = run_ingest(owner=user, sources=[Source(name=name, fileobj=io.BytesIO(data))])
    assert result.status in ("imported", "error")


# -- issue 14.1: inputs that raised something else than a ReadError ----------------------------

BIG_INT = "9" * 5000  # over Python's 4,300-digit limit for int <-> str
START = '{"event_type": "session_start", "ts": "2025-10-31T15:32:23", "session": "s1", "config": {}}\n'
STUDY_LINE = (
    '{"client": {"auth": {"safe_user_id": "gc-1"}, "event": "keystroke", '
    '"metadata": {"iso_ts": "2024-03-05T18:22:41.111Z"}}, "server": {"time": 1709662961.1}}'
)


def _dynoai(*decisions: str) -> str:
    return '{"run_id": "r1",\n"decisions": [\n' + ",\n".join(decisions) + "\n]}\n"


def _decision(ts="2025-12-15T17:28:01.800Z", values="{}") -> str:
    return f'{{"timestamp": "{ts}", "action": "A", "reason": "r", "values": {values}}}'


HOSTILE = [
    # (kind, name, text, line of the problem or None)
    ("dynoai", "big_int_session_replay.json", _dynoai(_decision(), _decision(values=f'{{"n": {BIG_INT}}}')), 4),
    ("dynoai", "big_int_header_session_replay.json", '{"run_id": ' + BIG_INT + ', "decisions": []}', 1),
    ("dynoai", "y10000_session_replay.json", _dynoai(_decision(), _decision(ts="9999-12-31T23:59:59-05:00")), 4),
    ("dynoai", "y0_session_replay.json", _dynoai(_decision(ts="0001-01-01T00:00:00+05:00")), 3),
    ("session", "big_int_session.jsonl", START + '{"event_type": "x", "ts": "2025-10-31T15:32:24", "n": ' + BIG_INT + "}\n", 2),
    ("session", "y10000_session.jsonl", START + '{"event_type": "x", "ts": "9999-12-31T23:59:59-05:00"}\n', 2),
    ("session", "y0_session.jsonl", START + '{"event_type": "x", "ts": "0001-01-01T00:00:00+05:00"}\n', 2),
    (
        # v1.0: the first llm_call measures an offset of ~9,998 years; shifting the next one overflows.
        "session",
        "offset_session.jsonl",
        '{"event_type": "session_start", "ts": "0001-01-02T00:00:00", "session": "s1", "config": {}}\n'
        '{"event_type": "llm_call", "ts": "9999-12-30T00:00:00", "agent_id": "a"}\n'
        '{"event_type": "x", "ts": "0001-01-02T00:00:01"}\n'
        '{"event_type": "llm_call", "ts": "0001-01-03T00:00:00", "agent_id": "a"}\n',
        None,
    ),
    ("study", "big-0000000007-gc-1-2.study.log", STUDY_LINE + "\t2024-03-05T18:22:41.1\n" + STUDY_LINE.replace("1709662961.1", BIG_INT) + "\n", 2),
    ("study", "y10000-0000000007-gc-1-2.study.log", STUDY_LINE.replace('"server": {"time": 1709662961.1}', '"x": 1') .replace("2024-03-05T18:22:41.111Z", "9999-12-31T23:59:59-05:00") + "\n", 1),
    ("study", "epoch-0000000007-gc-1-2.study.log", STUDY_LINE.replace("1709662961.1", "1e300") + "\n", 1),
]


READER_LEVEL = [h for h in HOSTILE if h[3] is not None]  # the offset case is caught by ingest, below


@pytest.mark.parametrize("kind, name, text, line", READER_LEVEL, ids=[h[1] for h in READER_LEVEL])
def test_hostile_numbers_and_times_are_read_errors_with_their_line(kind, name, text, line):
    with pytest.raises(ReadError) as caught:  # the default limits: the 5,000 digits are under the line limit
        list(READERS[kind].read(io.BytesIO(text.encode()), RunInfo(kind=kind), limits=Limits()))
    assert caught.value.line == line, (caught.value.line, caught.value.message)
    assert "line is longer" not in caught.value.message


@pytest.mark.django_db
@pytest.mark.parametrize("kind, name, text, line", HOSTILE, ids=[h[1] for h in HOSTILE])
def test_hostile_numbers_and_times_are_refused_by_run_ingest_naming_file_and_line(user, kind, name, text, line):
    [result] = run_ingest(owner=user, sources=[Source(name=name, fileobj=io.BytesIO(text.encode()))])
    if result.status == "imported":  # only a reader that copes is allowed to: never an exception
        assert line is None
        return
    assert result.status == "error" and result.message.startswith(f"{name}: "), result.message
    if line is not None:
        assert f"line {line}" in result.message, result.message
    assert not Run.objects.exists() and not DecisionRow.objects.exists()


GOOD_REPLAY = _dynoai(_decision(), _decision(ts="2025-12-15T17:28:02.800Z"))


def _deep(depth: int) -> str:
    return '{"schema_id": "dynoai.manifest/1", "run_id": "r1", "config": ' + "[" * depth + "]" * depth + "}"


@pytest.mark.django_db
@pytest.mark.parametrize(
    "manifest",
    [
        _deep(100_000),
        '{"run_id": "r1", "outputs": 5}',
        '{"run_id": "r1", "outputs": "session_replay.json"}',
        '{"run_id": ' + BIG_INT + ', "outputs": []}',
        '{"run_id": {"a": 1}, "outputs": [{"schema": "session_replay", "path": ["x"], "sha256": 5, "size_bytes": true}]}',
    ],
    ids=["deep", "outputs-5", "outputs-string", "big-int", "odd-types"],
)
def test_a_broken_manifest_is_its_own_result_line_and_the_replay_still_imports(user, manifest):
    results = run_ingest(owner=user, sources=[
        Source(name="manifest.json", fileobj=io.BytesIO(manifest.encode()), group="g"),
        Source(name="session_replay.json", fileobj=io.BytesIO(GOOD_REPLAY.encode()), group="g"),
    ])
    assert [r.status for r in results][1] == "imported", [r.message for r in results]
    assert results[0].status in ("error", "manifest")
    if results[0].status == "error":
        assert results[0].message.startswith("manifest.json: ")


BAD_FILES = [(name, text) for kind, name, text, line in HOSTILE if line is not None]


@pytest.mark.django_db
@pytest.mark.parametrize("bad_name, bad_text", BAD_FILES[:3] + BAD_FILES[-2:], ids=[b[0] for b in BAD_FILES[:3] + BAD_FILES[-2:]])
def test_an_upload_with_a_bad_file_answers_each_file_and_keeps_the_good_one(client_in, user, bad_name, bad_text):
    from django.core.files.uploadedfile import SimpleUploadedFile

    files = [
        SimpleUploadedFile("session_replay.json", GOOD_REPLAY.encode()),
        SimpleUploadedFile(bad_name, bad_text.encode()),
        SimpleUploadedFile("second_session.jsonl", (START + '{"event_type": "x", "ts": "2025-10-31T15:32:25"}\n').encode()),
    ]
    response = client_in.post("/api/runs", {"file": files})
    assert response.status_code == 202, response.content
    assert [j["status"] for j in response.json()["jobs"]] == ["done", "failed", "done"]
    results = [client_in.get(f"/api/jobs/{j['id']}").json()["results"][0] for j in response.json()["jobs"]]
    assert [r["status"] for r in results] == ["imported", "error", "imported"]
    assert results[1]["message"].startswith(f"{bad_name}: ")
    assert Run.objects.count() == 2
    assert DecisionRow.objects.count() == results[0]["count"] + results[2]["count"]

    Run.objects.all().delete()
    page = client_in.post("/upload/", {"files": [
        SimpleUploadedFile("session_replay.json", GOOD_REPLAY.encode()),
        SimpleUploadedFile(bad_name, bad_text.encode()),
    ]}, headers={"HX-Request": "true"})
    assert page.status_code == 202
    text = page.content.decode()
    assert "session_replay.json" in text and bad_name in text
    assert Run.objects.count() == 1
