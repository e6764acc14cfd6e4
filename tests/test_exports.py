"""viewer.exports: the csv, txt, html, json and jsonl writers."""
import csv
import io
import json
from html.parser import HTMLParser

import pytest
from django.http import QueryDict
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from viewer import audit
from viewer import exports, kinds, notes, text
from viewer.filters import DecisionFilterForm
from viewer.ingest import Source, run_ingest
from viewer.models import Decision, Run

pytestmark = pytest.mark.django_db

REAL = "dynoai/real_sample/session_replay.json"
MANIFEST = "dynoai/real_sample/manifest.json"
LARGE = ("dynoai/runs/large200k_s2_c7", "dynoai/runs/large200k_s4_c10")
SESSION = "session/combat_session_sample.jsonl"
HOSTILE = ("hostile/xss_session_replay.json", "hostile/xss_session.jsonl")
NUMERIC_COLUMNS = {"seq", "elapsed_ms", "rpm", "kpa", "rpm_index", "kpa_index", "round"}
FORMULA_CHARS = ("=", "+", "-", "@", "\t", "\r")


def export(run, fmt, query=""):
    form = DecisionFilterForm(QueryDict(query))
    assert form.is_valid(), form.errors
    return "".join(exports.export_chunks(run, fmt, form, raw_is_decision=kinds.profile(run).raw_is_decision))


def csv_rows(text):
    return list(csv.DictReader(io.StringIO(text, newline="")))


# -- txt: DynoAI's replay viewer, byte for byte ----------------------------------------------------


def test_txt_export_with_action_gradient_is_the_real_viewers_gradient_decisions_file(
    import_sample, samples_dir
):
    run = import_sample(REAL, MANIFEST)
    expected = (samples_dir / "dynoai/real_sample/gradient_decisions.txt").read_bytes()
    assert export(run, "txt", "action=gradient").encode() == expected


@pytest.mark.parametrize("folder", LARGE)
def test_txt_export_with_action_afr_is_the_real_viewers_export_file(import_sample, samples_dir, folder):
    run = import_sample(f"{folder}/session_replay.json")
    expected = (samples_dir / folder / "expected_export_afr.txt").read_bytes()
    assert export(run, "txt", "action=afr").encode() == expected


@pytest.mark.parametrize("folder", LARGE)
@pytest.mark.parametrize(
    "expected_file, query",
    [("expected_timeline.txt", ""), ("expected_action_gradient.txt", "action=gradient")],
)
def test_txt_export_is_what_the_viewer_prints_without_prints_final_newline(
    import_sample, samples_dir, folder, expected_file, query
):
    run = import_sample(f"{folder}/session_replay.json")
    printed = (samples_dir / folder / expected_file).read_bytes()
    assert export(run, "txt", query).encode() + b"\n" == printed


def test_txt_export_keeps_the_float_and_int_distinction_as_written(import_sample):
    run = import_sample(REAL)
    text = export(run, "txt", "action=smoothing")
    assert "    passes: 2\n" in text  # an int as written
    assert "    gradient_threshold: 1.000" in text  # 1.0 as written: a float


def test_txt_export_of_nothing_matching_is_the_viewers_no_match_line(import_sample):
    run = import_sample(REAL)
    assert export(run, "txt", "action=no-such-action") == "No decisions match the filter criteria."


# -- csv ------------------------------------------------------------------------------------------


def test_csv_export_has_the_header_and_a_row_per_decision_in_file_order(import_sample, samples_dir):
    run = import_sample(REAL)
    doc = json.loads((samples_dir / REAL).read_text())
    rows = csv_rows(export(run, "csv"))
    assert list(rows[0]) == list(exports.CSV_HEADER)
    assert [int(r["seq"]) for r in rows] == list(range(len(doc["decisions"])))
    for row, d in zip(rows, doc["decisions"]):
        assert row["timestamp"] == d["timestamp"]
        assert row["action"] == d["action"]
        assert row["reason"] == d["reason"]
        assert json.loads(row["values"]) == d.get("values", {})
        cell = d.get("cell", {})
        assert row["rpm"] == str(cell.get("rpm", ""))
        assert row["kpa_index"] == str(cell.get("kpa_index", ""))
        assert row["cylinder"] == str(cell.get("cylinder", ""))


def test_csv_export_uses_crlf_row_ends_as_rfc_4180_says(import_sample):
    run = import_sample(REAL)
    text = export(run, "csv", "limit=3")
    assert text.count("\r\n") == 4 and text.endswith("\r\n")


def test_csv_export_honours_the_filters(import_sample, samples_dir):
    run = import_sample(REAL)
    doc = json.loads((samples_dir / REAL).read_text())
    expected = [
        i for i, d in enumerate(doc["decisions"])
        if "AFR" in d["action"] and d.get("cell", {}).get("rpm", 0) >= 3000 and d["cell"]["kpa"] <= 80
        and "r cylinder" in d["reason"] and d["values"]["afr_error_pct"] < 0
    ]
    rows = csv_rows(export(run, "csv", "action=afr&rpm_min=3000&kpa_max=80&q=r+cylinder&v=afr_error_pct<0"))
    assert [int(r["seq"]) for r in rows] == expected
    assert expected


@pytest.mark.parametrize("sample", HOSTILE)
def test_csv_of_hostile_samples_has_no_cell_that_starts_a_formula(import_sample, sample):
    run = import_sample(sample)
    rows = csv_rows(export(run, "csv"))
    assert len(rows) == run.decision_count
    neutralized = 0
    for row in rows:
        for column, cell in row.items():
            if column in NUMERIC_COLUMNS and cell:
                float(cell)  # a typed number from a numeric column (perhaps negative), never a formula
                continue
            assert not cell.startswith(FORMULA_CHARS), (column, cell)
            neutralized += cell.startswith("'")
    assert neutralized  # the samples do hold formulas


def test_csv_neutralizes_formulas_with_a_quote_and_keeps_the_text(import_sample, samples_dir):
    run = import_sample("hostile/xss_session_replay.json")
    doc = json.loads((samples_dir / "hostile/xss_session_replay.json").read_text())
    rows = csv_rows(export(run, "csv"))
    for row, d in zip(rows, doc["decisions"]):
        for column in ("action", "reason"):
            expected = d[column]
            if expected.startswith(FORMULA_CHARS):
                expected = "'" + expected
            assert row[column] == expected  # quotes, commas and newlines survive RFC 4180 quoting


@pytest.mark.parametrize(
    "text, expected",
    [
        ("2025-12-15 17:28:01.803000", "2025-12-15T17:28:01.803Z"),  # SQLite
        ("2025-10-31 15:32:37.680566", "2025-10-31T15:32:37.680566Z"),
        ("2025-12-15 17:28:01", "2025-12-15T17:28:01.000Z"),
        ("2025-12-15 17:28:01.803+00", "2025-12-15T17:28:01.803Z"),  # PostgreSQL
        ("2025-12-15 17:28:01.5+00:00", "2025-12-15T17:28:01.500Z"),
        (None, ""),
    ],
)
def test_database_timestamp_text_becomes_iso_utc(text, expected):
    assert exports.db_instant(text) == expected


def test_csv_timestamps_are_the_stored_instants(import_sample):
    run = import_sample("session/combat_session_sample.jsonl")  # microseconds, and llm_call zone shifts
    rows = csv_rows(export(run, "csv"))
    stored = Decision.objects.filter(run=run).order_by("seq").values_list("ts", flat=True)
    assert [r["timestamp"] for r in rows] == [ts.strftime("%Y-%m-%dT%H:%M:%S.%fZ") for ts in stored]


_CELL_TEXT = st.text(st.sampled_from([*"ab ,;\"'=+-@\t\r\n", "é", "😀", "\\"]), max_size=12)
_DECISION = st.fixed_dictionaries({
    "action": _CELL_TEXT, "reason": _CELL_TEXT, "cylinder": st.none() | _CELL_TEXT, "agent": st.none() | _CELL_TEXT,
    "t_ms": st.none() | st.floats(-1e9, 1e12, allow_nan=False) | st.sampled_from([0.1 + 0.2, 1234.5675, 2.0005, -0.0]),
    "rpm": st.none() | st.integers(-10**9, 10**9), "round": st.none() | st.integers(0, 99),
    "values": st.dictionaries(_CELL_TEXT, _CELL_TEXT | st.integers(), max_size=2),
    "microsecond": st.sampled_from([0, 803000, 123456]),
})


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(decisions=st.lists(_DECISION, min_size=1, max_size=6))
def test_csv_lines_are_what_a_csv_writer_writes_for_the_stored_cells(user, decisions):
    """The database writes most of each line: every byte must still be csv.writer's, for texts with
    commas, quotes, line breaks and formula starts, missing cells, and floats Python rounds its own way."""
    import datetime as dt

    from django.db.models import TextField
    from django.db.models.functions import Cast

    run = Run.objects.create(owner=user, name="cells", kind="session", source_name="cells.jsonl", size=1,
                             sha256=f"{Run.objects.count() + 1:064d}")
    start = dt.datetime(2025, 12, 15, 17, 28, 1, tzinfo=dt.timezone.utc)
    Decision.objects.bulk_create([
        Decision(run=run, seq=seq, raw="{}", ts=start.replace(microsecond=d["microsecond"]) + dt.timedelta(seconds=seq),
                 **{k: v for k, v in d.items() if k != "microsecond"})
        for seq, d in enumerate(decisions)
    ])
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(exports.CSV_HEADER)
    stored = Decision.objects.filter(run=run).annotate(values_text=Cast("values", TextField())).order_by("seq")
    for d in stored:
        def cell(text):
            return None if text is None else ("'" + text if text[:1] in FORMULA_CHARS else text)

        ts = d.ts.astimezone(dt.timezone.utc)
        instant = ts.strftime("%Y-%m-%dT%H:%M:%S.") + (f"{ts.microsecond:06d}" if ts.microsecond % 1000 else
                                                       f"{ts.microsecond // 1000:03d}") + "Z"
        writer.writerow([d.seq, instant, None if d.t_ms is None else round(d.t_ms, 3), cell(d.action),
                         cell(d.reason), d.rpm, d.kpa, cell(d.cylinder), d.rpm_index, d.kpa_index, d.round,
                         cell(d.agent), cell(d.values_text), "", ""])
    assert export(run, "csv") == out.getvalue()
    run.delete()


def test_csv_keeps_negative_numbers_in_numeric_columns_usable():
    assert exports._ms(-3.2) == -3.2
    assert exports.neutralize("-3.2") == "'-3.2"  # the same text in a text column is neutralized


# -- html -----------------------------------------------------------------------------------------

ALLOWED_TAGS = {
    "html", "head", "meta", "title", "style", "body", "header", "h1", "h2", "p", "strong", "section", "dl",
    "dt", "dd", "code", "span", "ul", "li", "table", "thead", "tbody", "tr", "th", "td", "a", "pre", "footer",
}


class _Markup(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags, self.attrs, self.ids = [], [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attrs.extend((tag, k, v) for k, v in attrs)
        self.ids.extend(v for k, v in attrs if k == "id")


@pytest.mark.parametrize("sample", HOSTILE)
def test_html_export_of_hostile_samples_has_no_live_markup(import_sample, sample):
    run = import_sample(sample)
    page = export(run, "html")
    parser = _Markup()
    parser.feed(page)
    assert set(parser.tags) <= ALLOWED_TAGS
    for tag, name, value in parser.attrs:
        assert not name.startswith("on"), (tag, name, value)
        if name == "href":
            assert value.startswith("#seq-"), value
    assert "<script" not in page.lower()
    assert "&lt;script&gt;" in page
    assert "{{ 7*7 }}" in page or sample.endswith(".jsonl")  # template syntax is text, not evaluated


def test_html_export_is_an_audit_trail_with_metadata_filters_count_summary_and_anchors(
    import_sample, samples_dir
):
    run = import_sample(REAL, MANIFEST)
    doc = json.loads((samples_dir / REAL).read_text())
    matching = [i for i, d in enumerate(doc["decisions"]) if "GRAD" in d["action"] or "SMOOTH" in d["action"]]
    page = export(run, "html", "action=grad&action=smooth")
    parser = _Markup()
    parser.feed(page)
    assert [i for i in parser.ids if i.startswith("seq-")] == [f"seq-{i}" for i in matching]
    assert run.sha256 in page
    assert "does not match" in page and "CRLF" in page  # the manifest check and its reason
    assert "Decisions where action contains “grad” or “smooth”." in page
    assert f"<strong>{len(matching)}</strong> decisions of {len(doc['decisions'])}" in page
    assert "<td>GRADIENT_LIMITING</td><td class=\"num\">18</td>" in page
    assert "<script" not in page and "src=" not in page  # self-contained


def test_html_row_count_equals_the_csv_row_count(import_sample):
    run = import_sample("session/combat_session_sample.jsonl")
    query = "round_min=1&after=3&limit=20"
    parser = _Markup()
    parser.feed(export(run, "html", query))
    rows = csv_rows(export(run, "csv", query))
    assert len([i for i in parser.ids if i.startswith("seq-")]) == len(rows) == 20


# -- json and jsonl -------------------------------------------------------------------------------


def test_unfiltered_json_export_of_a_dynoai_run_is_the_imported_file_byte_for_byte(
    import_sample, samples_dir
):
    run = import_sample(REAL)
    assert export(run, "json").encode() == (samples_dir / REAL).read_bytes()


def test_json_export_keeps_nan_as_written(import_sample):
    run = import_sample("odd/nan_values_session_replay.json")
    text = export(run, "json")
    assert '"afr_error_pct": NaN' in text
    assert json.loads(text)["total_decisions"] == 2


def test_json_export_declares_the_matching_total(import_sample):
    run = import_sample(REAL)
    doc = json.loads(export(run, "json", "action=gradient"))
    assert doc["total_decisions"] == len(doc["decisions"]) == 18
    assert doc["run_id"] == "2025-12-15T17-28-01Z-e46826"


def test_json_export_of_nothing_is_an_empty_decisions_list(import_sample):
    run = import_sample(REAL)
    doc = json.loads(export(run, "json", "action=nothing-matches"))
    assert doc["decisions"] == [] and doc["total_decisions"] == 0


def test_jsonl_export_of_a_session_is_its_lines_byte_for_byte(import_sample, samples_dir):
    run = import_sample("session/combat_session_sample.jsonl")
    assert export(run, "jsonl").encode() == (samples_dir / "session/combat_session_sample.jsonl").read_bytes()


def test_jsonl_export_of_a_dynoai_run_is_one_compact_decision_per_line(import_sample, samples_dir):
    run = import_sample(REAL)
    doc = json.loads((samples_dir / REAL).read_text())
    lines = export(run, "jsonl").splitlines()
    assert [json.loads(line) for line in lines] == doc["decisions"]
    assert '"limit":10.0' in export(run, "jsonl", "action=CLAMPING_START")


# Re-import: the property. Fields a reader derives from a line's neighbours (the round inherited
# from a round_start, the llm_call zone shift, t_ms, line, seq) are compared only for whole-run
# exports; a filtered export keeps the decision's own fields.
OWN_FIELDS = ("action", "reason", "values", "cell", "rpm", "kpa", "cylinder", "rpm_index", "kpa_index")
LINE_FIELDS = OWN_FIELDS + ("agent", "metric", "text", "raw")
CONTEXT_FIELDS = ("seq", "line", "ts", "t_ms", "round")
SAMPLES = (
    REAL,
    "dynoai/runs/large200k_s4_c10/session_replay.json",
    "hostile/xss_session_replay.json",
    "odd/nan_values_session_replay.json",
    "session/combat_session_sample.jsonl",
    "hostile/xss_session.jsonl",
    "study/2024-03-05T18-40-02.114002-0000000008-gc-104523-41233.study.log.gz",
)


def _reimport(owner, text, name):
    source = Source(name=name, fileobj=io.BytesIO(text.encode()))
    [result] = run_ingest(owner=owner, sources=[source], keep_user_ids=True)
    assert result.status == "imported", result.message
    return result.run


def _fields(run, fields, seqs=None):
    qs = Decision.objects.filter(run=run).order_by("seq")
    if seqs is not None:
        qs = qs.filter(seq__in=seqs)
    return list(qs.values_list(*fields))


def _as_ids(rows, fields, run):
    """A session's agents as ids: a filtered subset may lack the lines that pair a character's display
    name with its id (issue 13: a character is one agent), so its copy can name an actor by name."""
    if "agent" not in fields:
        return rows
    i, ids = fields.index("agent"), {name: agent for agent, name in run.agents.items()}
    return [row[:i] + (ids.get(row[i], row[i]),) + row[i + 1:] for row in rows]


@st.composite
def _queries(draw):
    parts = []
    if draw(st.booleans()):
        action = draw(st.sampled_from(["a", "E", "grad", "call", "round", "key", "AFR", "_"]))
        parts.append(f"action={action}")
    if draw(st.booleans()):
        parts.append(f"after={draw(st.integers(-1, 50))}")
    if draw(st.booleans()):
        parts.append(f"limit={draw(st.integers(1, 40))}")
    return "&".join(parts)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sample=st.sampled_from(SAMPLES), query=_queries(), fmt=st.sampled_from(["json", "jsonl"]))
def test_json_and_jsonl_exports_reimport_to_identical_decisions(
    import_sample, other_user, sample, query, fmt
):
    run = import_sample(sample)
    if fmt == "jsonl" and kinds.profile(run).raw_is_decision:
        return  # DynoAI has no line format: its jsonl is for tools, not for re-import
    form = DecisionFilterForm(QueryDict(query))
    assert form.is_valid()
    matching = exports.decision_list(run=run, **form.filters(), **form.paging())
    seqs = list(matching.values_list("seq", flat=True))
    text = export(run, fmt, query)
    if not seqs:
        return
    copy = _reimport(other_user, text, f"export.{fmt}")
    try:
        # JSON gives a DynoAI-shaped document: for sessions and study logs it keeps each decision's
        # time, action, reason, values and cell; JSONL (their own lines) and DynoAI JSON keep everything.
        lossless = fmt == "jsonl" or kinds.profile(run).raw_is_decision
        fields = LINE_FIELDS if lossless else OWN_FIELDS + ("ts",)
        assert _as_ids(_fields(copy, fields), fields, run) == _fields(run, fields, seqs)
        if not query and lossless:
            assert _fields(copy, CONTEXT_FIELDS) == _fields(run, CONTEXT_FIELDS)
            assert copy.decision_count == run.decision_count
    finally:
        copy.delete()


def test_json_export_of_a_whole_session_reimports_with_the_same_times(import_sample, other_user):
    run = import_sample("session/session_debt_auction_ambush.jsonl")
    copy = _reimport(other_user, export(run, "json"), "copy.json")
    assert copy.kind == "dynoai"
    fields = OWN_FIELDS + ("seq", "ts", "t_ms")
    assert _fields(copy, fields) == _fields(run, fields)


def test_deleted_run_comes_back_identical_from_its_json_export(import_sample, user):
    run = import_sample("hostile/xss_session_replay.json")
    before = _fields(run, LINE_FIELDS + CONTEXT_FIELDS)
    text = export(run, "json")
    run.delete()
    again = _reimport(user, text, "xss_session_replay.json")
    assert _fields(again, LINE_FIELDS + CONTEXT_FIELDS) == before


# -- names ----------------------------------------------------------------------------------------


def test_export_filenames_are_the_run_name_reduced_to_safe_characters(import_sample):
    run = import_sample("hostile/xss_session_replay.json")
    form = DecisionFilterForm(QueryDict(""))
    form.is_valid()
    run.name = "2025-12-15T17-28-01Z-e46826 · smooth_passes 4, clamp 10"  # as a DynoAI run is named
    assert exports.export_filename(run, "csv", form) == "2025-12-15T17-28-01Z-e46826_smooth_passes_4_clamp_10_decisions.csv"
    run.name = '<script>alert("x")</script>/../../etc/passwd'
    name = exports.export_filename(run, "html", form)
    assert name.endswith("_decisions.html")
    assert "/" not in name and "<" not in name and not name.startswith(".")


def test_a_sessions_jsonl_with_round_max_is_named_as_a_session_replay(import_sample):
    run = import_sample("session/combat_session_sample.jsonl")
    form = DecisionFilterForm(QueryDict("round_max=1"))
    form.is_valid()
    name = exports.export_filename(run, "jsonl", form, replay_file=kinds.profile(run).replay_file)
    assert name == f"session_{run.session_id}_replay.jsonl"


# -- html: in proportion ----------------------------------------------------------------------------

DEBT = "session/session_debt_auction_ambush.jsonl"


class _Texts(HTMLParser):
    """The text of each element, one entry per text node."""

    def __init__(self):
        super().__init__()
        self.texts = []

    def handle_data(self, data):
        self.texts.append(data)


def long_strings(value, out):
    if isinstance(value, str) and len(value) > audit.LONG_TEXT:
        out.append(value)
    elif isinstance(value, dict):
        for v in value.values():
            long_strings(v, out)
    elif isinstance(value, list):
        for v in value:
            long_strings(v, out)
    return out


def test_the_audit_trail_shows_long_texts_collapsed_with_their_length_and_where_the_whole_text_is(
    import_sample, samples_dir
):
    run = import_sample(DEBT)
    events = [json.loads(line) for line in (samples_dir / DEBT).read_text().splitlines()]
    texts = [t for e in events for t in long_strings(e, [])]
    page = export(run, "html")
    parser = _Texts()
    parser.feed(page)
    assert len(page.encode()) < 300_000  # the file is 800 KB, 600 KB of it prompts and responses
    assert max(len(t) for t in parser.texts) <= audit.VALUES_CHARS + 1
    assert not [t for t in texts if t in page]  # no long text whole
    system_prompt = events[10]["prompt"][0]["content"]
    assert len(system_prompt) == 34_842
    assert "<code>prompt[0].content</code>: 34,842 characters" in page
    where = f"/runs/{run.pk}/export.json or export.jsonl"
    assert f"The whole texts: seq 10 in the JSON export ({where})" in page
    assert system_prompt.splitlines()[0] in page  # its first lines


def test_the_json_exports_still_hold_every_long_text_whole(import_sample, samples_dir):
    run = import_sample(DEBT)
    events = [json.loads(line) for line in (samples_dir / DEBT).read_text().splitlines()]
    decisions = json.loads(export(run, "json"))["decisions"]
    assert decisions[10]["values"]["prompt"][0]["content"] == events[10]["prompt"][0]["content"]
    assert [json.loads(line) for line in export(run, "jsonl").splitlines()] == events


def test_the_audit_trail_reads_durations_and_elapsed_times_as_people_do(import_sample):
    run = import_sample("session/combat_session_sample.jsonl")
    last = Decision.objects.filter(run=run).order_by("-seq").first()
    page = export(run, "html")
    assert f"<dt>Duration</dt><dd>{text.duration(run.duration_ms)}</dd>" in page and " ms</dd>" not in page
    assert '<th class="num">Elapsed</th>' in page and "+ms" not in page
    row = page[page.index(f'<tr id="seq-{last.seq}">'):]
    assert f'<td class="num">{text.clock(last.t_ms)}</td>' in row[: row.index("</tr>")]
    assert text.clock(last.t_ms).count(":") or text.clock(last.t_ms).endswith(" s")  # not raw ms


# -- notes (issue 20.2) ---------------------------------------------------------------------------


def test_csv_gives_each_decision_its_notes_and_labels_neutralized(import_sample, user):
    run = import_sample(REAL)
    user.username = "=cmd"  # an author's name could start a formula too
    user.save()
    first = run.decisions.order_by("seq").values_list("seq", flat=True)[1]
    notes.add(run, user, seq=first, text="+1 looks off", labels=["suspect", "regression"])
    notes.add(run, user, seq=first, text="checked", labels=["suspect"])
    rows = csv_rows(export(run, "csv", "limit=3"))
    assert [(r["notes"], r["labels"]) for r in rows] == [
        ("", ""), ("'=cmd: +1 looks off | =cmd: checked", "suspect,regression"), ("", "")]
    assert [r["seq"] for r in csv_rows(export(run, "csv", "label=regression"))] == [str(first)]


def test_json_adds_notes_to_the_noted_decisions_and_keeps_every_other_byte(import_sample, user):
    run = import_sample(REAL)
    before = export(run, "json")
    note = notes.add(run, user, seq=run.decisions.order_by("seq")[2].seq, text="look *here*", labels=["suspect"])
    notes.add(run, user, text="the whole run", labels=["ok"])
    after = export(run, "json")
    doc = json.loads(after)
    assert doc["run_notes"][0]["text"] == "the whole run"
    assert doc["decisions"][2]["notes"] == [notes.as_dict(note)]
    assert "notes" not in doc["decisions"][1]
    doc["decisions"][2].pop("notes")
    del doc["run_notes"]
    assert doc == json.loads(before)


def test_jsonl_splices_notes_into_the_noted_lines_only(import_sample, user):
    run = import_sample(SESSION)
    before = export(run, "jsonl").splitlines()
    notes.add(run, user, seq=run.decisions.order_by("seq")[0].seq, labels=["ok"])
    after = export(run, "jsonl").splitlines()
    assert after[1:] == before[1:]
    line = json.loads(after[0])
    assert line.pop("notes")[0]["labels"] == ["ok"] and line == json.loads(before[0])
    assert after[0].startswith(before[0].rstrip()[:-1])  # the original text, then the notes


@pytest.mark.parametrize("text, expected", [
    ('{"a": 1}', '{"a": 1, "notes": []}'),
    ("{}\r", '{ "notes": []}\r'),
    ("[1, 2]", "[1, 2]"),
    ("not json", "not json"),
])
def test_with_notes_splices_into_a_json_object_and_leaves_anything_else(text, expected):
    assert exports.with_notes(text, []) == expected
