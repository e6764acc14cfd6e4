"""viewer.audit: the audit trail a reviewer signs off (issue 20.5), as HTML."""
import re

import pytest
from django.db import connection
from django.http import QueryDict
from django.test.utils import CaptureQueriesContext
from django.utils.html import escape

from viewer import audit, exports, kinds, notes
from viewer.filters import DecisionFilterForm
from viewer.ingest import Source, run_ingest

pytestmark = pytest.mark.django_db

SESSION = "session/combat_session_sample.jsonl"
DEBT = "session/session_debt_auction_ambush.jsonl"
REAL = "dynoai/real_sample/session_replay.json"
FOLDER = "dynoai/runs/large200k_s2_c7"


def page(run, query=""):
    form = DecisionFilterForm(QueryDict(query))
    assert form.is_valid(), form.errors
    kind = kinds.profile(run)
    return "".join(exports.export_chunks(run, "html", form, raw_is_decision=kind.raw_is_decision, words=kind.words))


def header(html):
    """The decisions table's header row."""
    start = html.index('<table class="decisions">')
    return html[start: html.index("</thead>", start)]


def decision(html, seq):
    """The <tbody> of one decision: its row and its values-and-notes line."""
    start = html.index(f'<tr id="seq-{seq}">')
    return html[start: html.index("</tbody>", start)]


def test_each_output_file_is_listed_with_its_size_sha256_and_check(samples_dir, user, tmp_path):
    folder = samples_dir / FOLDER
    edited = (folder / "VE_Correction_Delta_DYNO.csv").read_bytes().replace(b"5.75", b"9.99")
    (tmp_path / "VE_Correction_Delta_DYNO.csv").write_bytes(edited)
    sources = [Source(n, path=folder / n, group="g") for n in ("session_replay.json", "manifest.json", "Coverage_Front.csv")]
    sources.append(Source("VE_Correction_Delta_DYNO.csv", path=tmp_path / "VE_Correction_Delta_DYNO.csv", group="g"))
    run = next(r.run for r in run_ingest(owner=user, sources=sources) if r.status == "imported")
    html = page(run, "limit=3")
    rows = {o.name: o for o in run.output_files()}
    for name, status in (("Coverage_Front.csv", "matched"), ("VE_Correction_Delta_DYNO.csv", "differs"),
                         ("Diagnostics_Report.txt", "missing")):
        row = html[html.index(f'<td class="mono">{name}</td>'):]
        row = row[: row.index("</tr>")]
        assert f'<span class="{"ok" if status == "matched" else "warn"}">{status}</span>' in row, name
        assert (rows[name].sha256 or rows[name].expected_sha256) in row
        if rows[name].size is not None:
            assert f'<td class="num">{rows[name].size}</td>' in row
    assert "sha256 cffb54e49ab8… expected" in html  # why the edited file differs


@pytest.mark.parametrize("sample, zone", [(SESSION, "log's local time"), (REAL, "UTC")])
def test_the_time_column_says_the_kinds_time_zone_and_no_time_claims_another(import_sample, sample, zone):
    run = import_sample(sample)
    html = page(run, "limit=5")
    assert f"<th>Time ({escape(zone)})</th>" in header(html)
    assert not re.search(r'<td class="mono">[0-9-]+ [0-9:.]+Z</td>', html)
    assert re.search(r'<td class="mono">\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3,6}</td>', html)


def test_notes_sit_beside_their_decisions_and_the_runs_and_cells_notes_have_their_places(import_sample, user):
    run = import_sample(SESSION)
    notes.add(run, user, seq=3, text="Check **this** roll <script>alert(1)</script>", labels=["suspect", "ok"])
    notes.add(run, user, text="Signed off for the *combat* test.", labels=["ok"])
    notes.add(run, user, cell="round 2 · red_1", text="A cell worth a look")
    html = page(run)
    row = decision(html, 3)
    assert "<strong>this</strong>" in row and "<script>" not in html and "&lt;script&gt;" in row
    assert f"by <strong>{user.get_username()}</strong>" in row
    assert '<span class="label">suspect</span> <span class="label">ok</span>' in row
    assert "Check" not in decision(html, 2) + decision(html, 4)
    top = html[html.index('<section id="run-notes">'): html.index("<h2>Run</h2>")]
    assert "<em>combat</em>" in top
    cells = html[html.index('<section id="cell-notes">'): html.index("<h2>Decisions</h2>")]
    assert "A cell worth a look" in cells and "round 2 · red_1" in cells
    assert "<dt>Notes</dt><dd>1 on these decisions, 1 on the run, 1 on cells</dd>" in html


def test_a_filter_leaves_out_the_notes_of_decisions_it_leaves_out(import_sample, user):
    run = import_sample(SESSION)
    notes.add(run, user, seq=3, text="on three")
    html = page(run, "after=3&limit=5")
    assert "on three" not in html and "<dt>Notes</dt><dd>0 on these decisions" in html


def test_notes_are_read_once_per_batch_of_decisions_not_once_per_decision(import_sample, user):
    run = import_sample(DEBT)
    for seq in range(0, 120, 3):
        notes.add(run, user, seq=seq, text=f"note {seq}")
    counts = []
    for limit in (5, 100):
        with CaptureQueriesContext(connection) as queries:
            html = page(run, f"limit={limit}")
        counts.append(len(queries))
        assert html.count('<li class="note">') == len(range(0, limit, 3))
    assert counts[0] == counts[1]


def test_settings_read_a_key_a_line_and_a_long_value_shows_its_start_and_length(import_sample):
    run = import_sample(DEBT)
    html = page(run, "limit=1")
    assert "<h2>Session config</h2>" in html  # the kind's word for them
    assert '<dt class="mono">max_turns</dt><dd class="mono">5</dd>' in html
    agents = [v for k, v in audit.settings_list(run.settings) if k == "agents"][0]
    assert agents.endswith(" characters)") and len(agents) < audit.LONG_TEXT
    assert '"max_turns": 5,\n' not in html  # no indented JSON pages


def test_columns_that_no_decision_of_the_export_fills_are_left_out(import_sample):
    session, dynoai = import_sample(SESSION), import_sample(REAL)
    head = header(page(session, "limit=5"))
    assert "<th>Reason</th>" in head and 'Round</th>' in head and "Agent</th>" in head and "Cell</th>" not in head
    head = header(page(dynoai, "limit=5"))
    assert "Cell</th>" in head and "Round</th>" not in head and "Agent</th>" not in head
    assert "<th>Action</th>" in head  # DynoAI's word for an action


def test_each_decision_is_a_row_and_a_line_of_values_across_the_table(import_sample):
    run = import_sample(SESSION)
    html = page(run, "limit=3")
    width = len(re.findall(r"<th[ >]", header(html)))
    more = re.findall(r'<tr class="more"><td colspan="(\d+)">', html)
    assert more and set(more) == {str(width)}
