"""The audit trail as a PDF (issue 20.5): the HTML audit trail (viewer/audit.py) printed on the
server, the same document with the same filters, through its own print style (A4 landscape).

The printer is WeasyPrint, a maintained pure-Python HTML/CSS-to-PDF library whose one system
dependency, Pango, is on Debian by default; it installs with `pip install -r requirements.txt`
(`make install`, CI) and runs in the worker's own process. Debian's Chromium in print mode was the
other candidate: it prints the same pages, but it is a browser the server would have to start per
request, and `make run` users would need it installed; the browser tests keep it as a test tool only.

Nothing is fetched: the audit is self-contained, and the fetcher WeasyPrint is given refuses every
URL (a note's link stays a link in the PDF, it is never followed). Bidi controls are made visible
as on every HTML face (middleware.inert_html) before the text is laid out. A PDF is laid out whole
in memory, so its size is bounded: MAX_DECISIONS (see its comment); a bigger selection is refused
with a message asking for a filter, and the HTML audit trail, which streams, has no such limit.
"""
from __future__ import annotations

from collections.abc import Iterable

import weasyprint  # loads Pango: this module is imported only when a PDF is asked for
from weasyprint.urls import URLFetcher

from . import exports
from .middleware import inert_html
from .selectors import decision_list

CONTENT_TYPE = "application/pdf"
# At most this many decisions in one PDF. A PDF is laid out whole, in one worker thread holding the
# GIL. Measured here (2 cores) on a session's decisions with their LLM calls, the heaviest kind:
# 25 in 1.7 s (7 pages), 500 in 22 s and 280 MB (102 pages), 1,000 in 45 s and 460 MB, 2,000 in
# 100 s and 770 MB. 500 is about a hundred pages, more than anyone signs page by page, and keeps a
# worker busy well under a minute. Bigger audits: filter first, or print the streamed HTML.
MAX_DECISIONS = 500


class TooBig(ValueError):
    """A selection over MAX_DECISIONS decisions; the message says what to do."""


def check_size(count: int) -> None:
    if count > MAX_DECISIONS:
        raise TooBig(
            f"A PDF audit trail holds at most {MAX_DECISIONS:,} decisions and these filters select {count:,}: "
            "narrow the filters (an action, a round, a range of seq with after= and limit=) or download the "
            "HTML audit trail, which has no limit and prints from a browser."
        )


def audit_pdf(run, form, *, words=None, now=None) -> bytes:
    """The audit trail of `run` filtered by `form` (valid), as a PDF; TooBig over MAX_DECISIONS."""
    check_size(decision_list(run=run, **form.filters(), **form.paging()).count())
    return render(exports.export_chunks(run, "html", form, words=words, now=now))


def render(chunks: Iterable[str]) -> bytes:
    """The HTML audit trail's chunks as a PDF."""
    html = inert_html("".join(chunks).encode()).decode()
    return weasyprint.HTML(string=html, base_url=None, url_fetcher=NoFetch()).write_pdf()


class NoFetch(URLFetcher):
    """A WeasyPrint URL fetcher that fetches nothing: the audit trail has no external resource."""

    def fetch(self, url, headers=None):
        raise ValueError(f"the audit trail fetches nothing ({url[:80]})")
