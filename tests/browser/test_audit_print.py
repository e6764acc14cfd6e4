"""The audit trail printed, in Chromium's print emulation: a reason keeps a readable width (issue 20.5)."""
import pytest
from django.http import QueryDict

from viewer import exports, kinds
from viewer.filters import DecisionFilterForm

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

A4_LANDSCAPE_PRINTABLE = 1047  # CSS px: 297 mm less the 10 mm margins each side, at 96 px an inch

# Per reason cell: its share of the table's width, and how many characters it holds a line.
MEASURE = """() => {
  const table = document.querySelector("table.decisions");
  return [...table.querySelectorAll("td.reason")].filter(td => td.textContent.length > 30).map(td => {
    const range = document.createRange();
    range.selectNodeContents(td);
    const lines = new Set([...range.getClientRects()].map(r => Math.round(r.top))).size;
    return {share: td.getBoundingClientRect().width / table.getBoundingClientRect().width,
            chars: td.textContent.length, perLine: td.textContent.length / lines, text: td.textContent.slice(0, 40)};
  });
}"""


def audit_html(run, query):
    form = DecisionFilterForm(QueryDict(query))
    assert form.is_valid()
    kind = kinds.profile(run)
    return "".join(exports.export_chunks(run, "html", form, raw_is_decision=kind.raw_is_decision, words=kind.words))


@pytest.mark.parametrize("sample", ["session/session_debt_auction_ambush.jsonl", "dynoai/real_sample/session_replay.json"])
def test_printed_on_a4_no_reason_is_squeezed_into_a_few_characters_a_line(context, import_sample, browser_user, sample):
    run = import_sample(sample, owner=browser_user)
    page = context.new_page()
    page.set_viewport_size({"width": A4_LANDSCAPE_PRINTABLE, "height": 740})
    page.emulate_media(media="print")
    page.set_content(audit_html(run, "limit=60"))
    cells = page.evaluate(MEASURE)
    assert cells, "no long reason to measure"
    for cell in cells:
        assert cell["share"] >= 0.25, cell
        assert cell["perLine"] >= min(40, cell["chars"]), cell
