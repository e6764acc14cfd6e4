"""An LLM call read as a chat (issue 16.3): its prompt messages and its response, markdown rendered
safely, long texts collapsed to their first lines.

Markdown is rendered by markdown-it-py (CommonMark, raw HTML off: a `<script>` in a prompt stays
text) and the result cleaned by nh3 (an allow-list of tags and attributes, http/https/mailto links
only), so a log string can never add markup or script to a page.
"""
from __future__ import annotations

from dataclasses import dataclass

import nh3
from django.utils.safestring import SafeString, mark_safe
from markdown_it import MarkdownIt

PREVIEW_LINES = 6  # a long text shows this many of its first lines until expanded
PREVIEW_LINE_CHARS = 240
LONG_LINES = 12  # a text longer than this (in lines or characters) is collapsed
LONG_CHARS = 1500

# No images: `![alt](url)` reads as "!" and a link, so the page fetches nothing a log names.
_MD = MarkdownIt("commonmark", {"html": False, "linkify": False}).enable(["table", "strikethrough"]).disable("image")
TAGS = {
    "p", "br", "hr", "h1", "h2", "h3", "h4", "h5", "h6", "strong", "em", "s", "del", "code", "pre",
    "blockquote", "ul", "ol", "li", "a", "table", "thead", "tbody", "tr", "th", "td",
}
ATTRIBUTES = {"a": {"href", "title"}, "ol": {"start"}, "th": {"style"}, "td": {"style"}, "code": {"class"}}


def markdown(text: str) -> SafeString:
    """`text` as HTML that is safe to put in a page."""
    html = _MD.render(text)
    clean = nh3.clean(
        html, tags=TAGS, attributes=ATTRIBUTES, url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer nofollow", filter_style_properties={"text-align"},
    )
    return mark_safe(clean)  # cleaned by nh3 just above


@dataclass
class Turn:
    """One text of the chat: who said it, its length, and its first lines when it is long."""

    role: str
    text: str
    chars: int
    lines: int
    long: bool
    preview: str  # the first lines, plain text ("" when the text is short and shown whole)
    hidden_lines: int

    @property
    def html(self) -> SafeString:
        return markdown(self.text)


def turn(role: str, text: str) -> Turn:
    lines = text.splitlines() or [""]
    long = len(lines) > LONG_LINES or len(text) > LONG_CHARS
    head = [line if len(line) <= PREVIEW_LINE_CHARS else line[: PREVIEW_LINE_CHARS - 1] + "…"
            for line in lines[:PREVIEW_LINES]]
    return Turn(role=role, text=text, chars=len(text), lines=len(lines), long=long,
                preview="\n".join(head) if long else "", hidden_lines=max(len(lines) - PREVIEW_LINES, 0))


def chat(call) -> list[Turn]:
    """The turns of an LLM call (display.LlmCall): its prompt messages, then its response."""
    if call is None:
        return []
    turns = [turn(m.role, m.content) for m in call.messages]
    turns.append(turn("response", call.response))
    return turns
