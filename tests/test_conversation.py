"""An llm_call as a chat (issue 16.3): viewer/conversation.py and the decision page."""
import json
import re

import pytest

from viewer import conversation, display

DEBT = "session/session_debt_auction_ambush.jsonl"


@pytest.mark.parametrize("text, needle", [
    ("<script>alert(1)</script>", "&lt;script&gt;"),
    ("<img src=x onerror=alert(1)>", "&lt;img"),
    ("[click](javascript:alert(1))", "[click](javascript:alert(1))"),
    ('<a href="javascript:x">a</a>', "&lt;a href"),
    ("![logo](http://example.com/x.png)", '<a href="http://example.com/x.png" rel="noopener noreferrer nofollow">logo</a>'),
])
def test_markdown_from_a_log_can_add_no_markup_script_or_fetch(text, needle):
    html = conversation.markdown(text)
    assert needle in html
    assert "<script" not in html and "<img" not in html
    assert not re.search(r"<a\s[^>]*href=\"javascript", html)


def test_markdown_is_rendered_with_links_made_safe():
    html = conversation.markdown("# Tactical decision\n\n**Shift** to `cover`\n\n- a\n- b\n\n[docs](https://example.com)")
    assert "<h1>Tactical decision</h1>" in html and "<strong>Shift</strong>" in html and "<code>cover</code>" in html
    assert "<li>a</li>" in html
    assert re.search(r'<a href="https://example.com" rel="noopener noreferrer nofollow">docs</a>', html)


def test_a_long_text_is_collapsed_to_its_first_lines_and_a_short_one_is_not():
    long = conversation.turn("system", "\n".join(f"line {i}" for i in range(40)))
    assert long.long and long.lines == 40 and long.hidden_lines == 34
    assert long.preview == "\n".join(f"line {i}" for i in range(6))
    one_line = conversation.turn("user", "x" * 5000)
    assert one_line.long and len(one_line.preview) == conversation.PREVIEW_LINE_CHARS
    short = conversation.turn("response", "Done.")
    assert not short.long and short.preview == ""


def test_the_chat_is_the_prompt_messages_then_the_response():
    call = display.llm_call({"event_type": "llm_call", "prompt": [{"role": "system", "content": "S"},
                             {"role": "user", "content": "U"}], "response": "R"})
    assert [(t.role, t.text) for t in conversation.chat(call)] == [("system", "S"), ("user", "U"), ("response", "R")]


def longest_llm_call(path) -> tuple[int, dict]:
    """(seq, event) of the file's longest llm_call line (seq counts lines from 0)."""
    lines = path.read_text().splitlines()
    seq = max((i for i, line in enumerate(lines) if '"event_type": "llm_call"' in line), key=lambda i: len(lines[i]))
    return seq, json.loads(lines[seq])


@pytest.mark.django_db
def test_each_text_of_the_longest_call_is_shown_once_and_the_json_is_one_click_away(
    client_in, import_sample, samples_dir
):
    run = import_sample(DEBT)
    seq, event = longest_llm_call(samples_dir / DEBT)
    page = client_in.get(f"/runs/{run.pk}/decisions/{seq}/").content.decode()
    system = event["prompt"][0]["content"]
    assert len(system) > 30_000
    # Rendered once (as markdown), kept once as written for Copy, once in the closed JSON: no more.
    head = system.splitlines()[0].lstrip("# ").strip()
    assert head and page.count(head) <= 4, page.count(head)
    assert 'class="tree"' in page and '<span class="k">prompt</span>' not in page
    assert '<span class="k">response</span>' not in page and '<span class="k">model</span>' in page
    assert '<details class="raw-json"><summary>Show the JSON' in page
    assert page.count('<details class="long">') >= 2  # the system prompt and the user message are collapsed
    assert f'data-copy="turn-{seq}-1"' in page


@pytest.mark.django_db
def test_a_hostile_prompt_shows_as_text_in_the_chat(client_in, import_sample):
    run = import_sample("hostile/xss_session.jsonl")
    seqs = [d.seq for d in run.decisions.filter(action="llm_call")]
    assert seqs
    for seq in seqs:
        page = client_in.get(f"/runs/{run.pk}/decisions/{seq}/").content.decode()
        assert "<script>alert" not in page and "<img src=x" not in page and "<svg onload" not in page


@pytest.mark.django_db
def test_a_decision_that_is_not_an_llm_call_keeps_its_json_open_and_its_values(client_in, import_sample):
    run = import_sample(DEBT)
    page = client_in.get(f"/runs/{run.pk}/decisions/0/").content.decode()  # session_start
    assert "raw-json" not in page and 'class="turn' not in page and '<pre class="json"' in page
