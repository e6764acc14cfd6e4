"""Two long texts compared word by word, side by side (issue 16.7): a changed prompt or response
reads as a code review shows a change.

difflib.SequenceMatcher pairs the texts' lines first, then the words (and the spaces between them)
within each stretch of lines that differs, so a long prompt costs a line diff plus the words of what
changed. The result is plain data: each side's lines as segments marked same, deleted (only in A)
or inserted (only in B); templates escape every segment, nothing here makes HTML.

A long text is shown as an excerpt: the changed lines with a line of context either side (or its
first lines, where that side has no change of its own), long unchanged stretches clipped, and what
was left out counted. The whole marked text comes with it when it is not too long for a page.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from difflib import SequenceMatcher

SAME, DEL, INS, CLIP = "", "del", "ins", "clip"
TOKENS = re.compile(r"\w+|\s+|[^\w\s]")  # words, runs of space, single punctuation marks
WORD_PAIRS = 4_000_000  # words(A) × words(B) of one changed stretch compared word by word; beyond, as blocks
SHORT_LINES, SHORT_CHARS = 12, 1500  # a text within both is shown whole, never clipped
CONTEXT = 1  # unchanged lines shown either side of a changed one
FIRST_LINES = 6  # a side without a change of its own shows its first lines
EXCERPT_LINES = 40  # at most this many lines in an excerpt
LINE_CHARS = 240  # an unchanged line is clipped to this; an unchanged run in a changed line keeps its ends
KEEP = 100
MARKED_CHARS = 1000  # a longer changed run in an excerpt keeps its ends, the middle counted
WHOLE_CHARS = 60_000  # a longer text is not repeated whole in the page (the decision page has it)


@dataclass(frozen=True, slots=True)
class Segment:
    text: str
    mark: str = SAME  # SAME, DEL (only in A), INS (only in B), CLIP (a stretch left out: "…")


@dataclass(slots=True)
class Line:
    number: int  # 1-based; 0 for a gap
    segments: list[Segment] = field(default_factory=list)
    gap: int = 0  # a gap: this many lines left out

    @property
    def changed(self) -> bool:
        return any(s.mark in (DEL, INS) for s in self.segments)


@dataclass
class TextSide:
    chars: int
    lines: int
    excerpt: list[Line]  # what is shown first
    whole: list[Line] | None  # the whole text marked, where the excerpt leaves some out and it fits a page
    shortened: bool  # the excerpt leaves something out

    @property
    def full(self) -> list[Line] | None:
        """The whole text marked; None where it is too long for a page."""
        return self.whole if self.shortened else self.excerpt


@dataclass
class TextDiff:
    a: TextSide
    b: TextSide
    deleted: int  # words only in A
    inserted: int  # words only in B

    @property
    def expandable(self) -> bool:
        return self.a.whole is not None or self.b.whole is not None


def is_text_path(path: str, texts: tuple[str, ...]) -> bool:
    """Whether a changed leaf is one of `texts` or lies under one (`prompt` covers `prompt[1].content`)."""
    return any(path == t or path.startswith((t + "[", t + ".")) for t in texts)


def text_diff(old: str, new: str) -> TextDiff:
    """`old` (A) and `new` (B) marked word by word, each as an excerpt and, where it fits, whole."""
    la, lb = old.splitlines(keepends=True), new.splitlines(keepends=True)
    sa: list[Segment] = []
    sb: list[Segment] = []
    counts = [0, 0]
    for tag, i1, i2, j1, j2 in SequenceMatcher(None, la, lb, autojunk=False).get_opcodes():
        x, y = "".join(la[i1:i2]), "".join(lb[j1:j2])
        if tag == "equal":
            sa.append(Segment(x))
            sb.append(Segment(y))
        elif tag == "replace":
            _words(x, y, sa, sb, counts)
        else:
            _block(x, y, sa, sb, counts)
    return TextDiff(_side(old, sa), _side(new, sb), deleted=counts[0], inserted=counts[1])


def _block(x: str, y: str, sa: list, sb: list, counts: list) -> None:
    if x:
        sa.append(Segment(x, DEL))
        counts[0] += _word_count(x)
    if y:
        sb.append(Segment(y, INS))
        counts[1] += _word_count(y)


def _word_count(text: str) -> int:
    return sum(1 for t in TOKENS.findall(text) if not t.isspace())


def _words(x: str, y: str, sa: list, sb: list, counts: list) -> None:
    tx, ty = TOKENS.findall(x), TOKENS.findall(y)
    lo = 0  # the words both stretches start and end with need no matcher
    while lo < len(tx) and lo < len(ty) and tx[lo] == ty[lo]:
        lo += 1
    hi = 0
    while hi < len(tx) - lo and hi < len(ty) - lo and tx[-1 - hi] == ty[-1 - hi]:
        hi += 1
    mx, my = tx[lo : len(tx) - hi], ty[lo : len(ty) - hi]
    if lo:
        sa.append(Segment("".join(tx[:lo])))
        sb.append(Segment("".join(ty[:lo])))
    if len(mx) * len(my) > WORD_PAIRS:
        _block("".join(mx), "".join(my), sa, sb, counts)
    else:
        for tag, i1, i2, j1, j2 in SequenceMatcher(None, mx, my, autojunk=False).get_opcodes():
            u, v = "".join(mx[i1:i2]), "".join(my[j1:j2])
            if tag == "equal":
                sa.append(Segment(u))
                sb.append(Segment(v))
            else:
                _block(u, v, sa, sb, counts)
    if hi:
        sa.append(Segment("".join(tx[len(tx) - hi :])))
        sb.append(Segment("".join(ty[len(ty) - hi :])))


def _lines(segments: list[Segment]) -> list[Line]:
    """The segments cut at line ends (the line break itself is dropped), neighbours of one mark merged."""
    lines = [Line(1)]
    for seg in segments:
        for piece in seg.text.splitlines(keepends=True):
            text = piece.rstrip("\r\n")
            if text:
                line = lines[-1].segments
                if line and line[-1].mark == seg.mark:
                    line[-1] = Segment(line[-1].text + text, seg.mark)
                else:
                    line.append(Segment(text, seg.mark))
            if text != piece:
                lines.append(Line(len(lines) + 1))
    if len(lines) > 1 and not lines[-1].segments:
        lines.pop()  # the text ended with a line break
    return lines


def _side(text: str, segments: list[Segment]) -> TextSide:
    lines = _lines(segments)
    if len(lines) <= SHORT_LINES and len(text) <= SHORT_CHARS:
        return TextSide(len(text), len(lines), lines, None, False)
    changed = [n for n, line in enumerate(lines) if line.changed]
    if changed:
        near = {k for n in changed for k in range(n - CONTEXT, n + CONTEXT + 1)}
        keep = sorted(k for k in near if 0 <= k < len(lines))
    else:
        keep = list(range(min(FIRST_LINES, len(lines))))
    keep = keep[:EXCERPT_LINES]
    excerpt: list[Line] = []
    shortened = False
    last = -1
    for k in keep:
        if k > last + 1:
            excerpt.append(Line(0, gap=k - last - 1))
        line = lines[k]
        clipped = _clip(line)
        shortened = shortened or clipped is not line
        excerpt.append(clipped)
        last = k
    if last < len(lines) - 1:
        excerpt.append(Line(0, gap=len(lines) - 1 - last))
    shortened = shortened or any(line.gap for line in excerpt)
    whole = lines if shortened and len(text) <= WHOLE_CHARS else None
    return TextSide(len(text), len(lines), excerpt, whole, shortened)


def _clip(line: Line) -> Line:
    """The line with its long runs cut down: an unchanged line to its start, an unchanged run
    beside a change to the ends that touch it, a long changed run to its two ends."""
    if not line.changed:
        text = "".join(s.text for s in line.segments)
        if len(text) <= LINE_CHARS:
            return line
        return Line(line.number, [Segment(text[: LINE_CHARS - 1]), Segment("…", CLIP)])
    out: list[Segment] = []
    last = len(line.segments) - 1
    for n, seg in enumerate(line.segments):
        if seg.mark != SAME and len(seg.text) > MARKED_CHARS:
            left = len(seg.text) - 2 * KEEP
            middle = Segment(f" … {left:,} characters … ", CLIP)
            out += [Segment(seg.text[:KEEP], seg.mark), middle, Segment(seg.text[-KEEP:], seg.mark)]
        elif seg.mark != SAME or len(seg.text) <= 2 * KEEP + 20:
            out.append(seg)
        elif n == 0:
            out += [Segment("…", CLIP), Segment(seg.text[-KEEP:])]
        elif n == last:
            out += [Segment(seg.text[:KEEP]), Segment("…", CLIP)]
        else:
            out += [Segment(seg.text[:KEEP]), Segment(" … ", CLIP), Segment(seg.text[-KEEP:])]
    return line if len(out) == len(line.segments) else Line(line.number, out)
