"""Two runs compared: aligned decisions, what changed, and the first divergence.

Plain Python, no ORM and no request. The caller fetches each run's decisions through the
selectors, in file order, as tuples of the columns `fields(spec)` names, and hands them to
`side_from_rows`; `diff_sides` does the rest.

What differs by log kind is the kind's `DiffSpec` (built in `viewer/kinds/<kind>.py`): the
columns read besides the values, the alignment key, what else is compared, where a decision sits,
the settings and the per-cell heatmap. Decisions are aligned by content, never by time. They are
grouped by the spec's key (DynoAI: action and cell; sessions: round, event type and agent; study
logs: event type; two runs of different kinds: action alone, `BY_ACTION`), and each group's two
sequences are aligned by edit distance (difflib.SequenceMatcher over each decision's signature),
so a dropped or repeated decision shifts nothing after it. Where a stretch differs on both sides,
its decisions are paired by a small dynamic programme on value distance: a nudged decision pairs
with its counterpart rather than with a neighbour.

Fields that differ between any two runs (timestamps, session and run ids, event ids, measured
elapsed times) are left out of the comparison unless `include_volatile` is set.
"""
from __future__ import annotations

import gc
import math
from array import array
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from difflib import SequenceMatcher
from typing import Any

from .diff_side import BASE, BY_ACTION, Side, fields, side_from_rows, text_fields  # noqa: F401 (re-exported)
from .diff_values import Change, compare, distance

SAME, CHANGED, ONLY_A, ONLY_B = "same", "changed", "only_a", "only_b"
STATUSES = (SAME, CHANGED, ONLY_A, ONLY_B)
NEAR = 64  # _sync looks this far ahead before indexing the whole group
MATCHER_LIMIT = 40_000  # longer groups (both sides multiplied) align by _sync
PAIR_DP_LIMIT = 2500  # cells of the pairing table; a bigger unequal stretch pairs in order
GAP_COST = 0.6  # cost of leaving a decision unpaired; pairing costs its distance (0..1)
CONTEXT = 3


@dataclass(frozen=True)
class CellDelta:
    """A kind whose decisions sit on a grid of (row, column) bins: the per-cell B − A heatmap.

    `column`: the side's column holding each decision's cell (JSON text); `cell_of(text)`: its
    (row bin, column bin), or None; `finals(rows, last)`: fold (action, cell text, values text) rows
    into `last`, {cell: the last value the run logged for it}; the side does it as it reads the run,
    stretch by stretch in seq order (`Side.finals`). The notes say what each metric counts, under
    the heatmap."""

    column: str
    cell_of: Callable[[str | None], tuple | None]
    finals: Callable[[Iterable[tuple], dict], None]
    final_note: str = ""
    count_note: str = ""


def _no_settings(run) -> dict:
    return {}


@dataclass(frozen=True)
class DiffSpec:
    """What a kind's diff reads and how (built in each `viewer/kinds/<kind>.py`, `# -- diff`).

    columns: read besides `BASE`, in order (their Decision names; `cell_text` is the cell as JSON
    text). key: the columns whose values group decisions for alignment. compared: columns compared
    as leaves of their own besides the values (text: DynoAI's reason). where(columns, run): the
    decision's place as people say it, from its columns (name -> value) and its run (None where
    the side was read without one). settings(run): what the run was made with; settings_source
    says where they come from, settings_missing what to do when neither run has any. filters: the
    diff page's own filter inputs (parameter, label, input type). texts: the values' long texts
    (a path and what lies under it: `prompt` covers `prompt[1].content`), shown when changed side
    by side with their words marked (viewer/diff_text.py)."""

    columns: tuple[str, ...] = ()
    key: tuple[str, ...] = BY_ACTION
    compared: tuple[str, ...] = ()
    where: Callable[[Mapping[str, Any], Any], str] | None = None
    settings: Callable[[Any], dict] = _no_settings
    settings_source: str = "settings"
    settings_missing: str = ""
    filters: tuple[tuple[str, str, str], ...] = ()
    cells: CellDelta | None = None
    texts: tuple[str, ...] = ()


GENERIC = DiffSpec()  # a kind without a spec of its own


@contextmanager
def gc_paused():
    """Pause the cyclic garbage collector while fetching and diffing a large pair.

    Building hundreds of thousands of small tuples and strings sets off full collections that
    traverse every live object again and again (more than half of the time for 100k decisions);
    the diff makes no reference cycles, so nothing is lost by collecting afterwards.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


# --- the alignment -----------------------------------------------------------------------------

SAME_CODE, CHANGED_CODE, ONLY_A_CODE, ONLY_B_CODE = range(4)  # a row's status, as STATUSES[code]
BATCH = 4096  # decisions whose values are compared per batch (their texts read together)
SLICE = 65_536  # positions copied at once while laying the rows out


@dataclass(slots=True)
class Row:
    """One aligned pair, or a decision found on one side only. `a`, `b` index the sides."""

    status: str
    a: int | None
    b: int | None
    changes: tuple[Change, ...] = ()


class Rows(Sequence):
    """The aligned rows in order, each a `Row` made when asked for: a status byte and two indices a
    row (a million Row objects would not fit in the memory a diff may take). `index`: a view of
    some of them (the differences)."""

    def __init__(self, status: bytearray, a: array, b: array, changes: dict[int, tuple], index=None):
        self.status, self.a, self.b, self.changes, self.index = status, a, b, changes, index

    def __len__(self) -> int:
        return len(self.status) if self.index is None else len(self.index)

    def row(self, k: int) -> Row:
        """Row k of all the rows (whatever the view)."""
        i, j = self.a[k], self.b[k]
        return Row(STATUSES[self.status[k]], i if i >= 0 else None, j if j >= 0 else None,
                   self.changes.get(k, ()))

    def __getitem__(self, k):
        if isinstance(k, slice):
            return [self[x] for x in range(*k.indices(len(self)))]
        if k < 0:
            k += len(self)
        if not 0 <= k < len(self):
            raise IndexError(k)
        return self.row(k if self.index is None else self.index[k])

    def __iter__(self):
        return (self.row(k) for k in (range(len(self.status)) if self.index is None else self.index))

    def differences(self) -> Rows:
        """The rows whose status is not same, as a view."""
        status = self.status
        return Rows(status, self.a, self.b, self.changes,
                    array("q", [k for k in range(len(status)) if status[k]]))


@dataclass
class Divergence:
    """The first position k (0-based, in each side's file order) where the runs differ."""

    position: int
    a: int | None  # index k on side A, or None where A has ended
    b: int | None
    row_a: Row | None  # A[k]'s row (its pairing and changes)
    row_b: Row | None
    context_a: list[int]  # indices around k on each side
    context_b: list[int]


@dataclass
class DiffResult:
    a: Side
    b: Side
    rows: Rows
    counts: dict[str, int]
    divergence: Divergence | None
    row_of_a: array  # index into rows for each A decision
    row_of_b: array

    @property
    def identical(self) -> bool:
        return self.counts[SAME] == len(self.rows)

    def status_a(self, i: int) -> str:
        return STATUSES[self.rows.status[self.row_of_a[i]]]

    def status_b(self, j: int) -> str:
        return STATUSES[self.rows.status[self.row_of_b[j]]]

    def differences(self) -> list[Row]:
        return list(self.rows.differences())


def diff_sides(a: Side, b: Side) -> DiffResult:
    """Align a and b (each key group by content), compare the values of the pairs whose signatures
    differ, and lay the rows out in A's order with B's extra decisions after their predecessor."""
    partner_a = array("q", [-1]) * len(a)
    partner_b = array("q", [-1]) * len(b)
    stretches: list[tuple[array, array]] = []  # unequal stretches, paired once their values are read
    groups_b = b.key.positions()
    for key, ia in a.key.positions().items():
        ib = groups_b.pop(key, None)
        if ib is not None:
            for xs, ys in _align(a, b, ia, ib, stretches):
                for i, j in zip(xs, ys):
                    partner_a[i], partner_b[j] = j, i
    del groups_b
    for batch in _batches(stretches, lambda s: len(s[0]) + len(s[1])):
        a.read(i for xs, _ in batch for i in xs)
        b.read(j for _, ys in batch for j in ys)
        for xs, ys in batch:
            for i, j in _pair(a, b, xs, ys):
                if i is not None and j is not None:
                    partner_a[i], partner_b[j] = j, i
    changes = _changes(a, b, partner_a)
    result = _layout(a, b, partner_a, partner_b, changes)
    result.divergence = _divergence(result, partner_a)
    return result


def _batches(items: list, size: Callable[[Any], int]):
    """items in batches of about BATCH decisions."""
    batch, n = [], 0
    for item in items:
        batch.append(item)
        n += size(item)
        if n >= BATCH:
            yield batch
            batch, n = [], 0
    if batch:
        yield batch


def _changes(a: Side, b: Side, partner_a: array) -> dict[int, tuple[Change, ...]]:
    """A index -> the changes of each pair whose signatures differ (and whose values do)."""
    sig_a, sig_b = a.sig, b.sig
    pairs = [(i, j) for i, j in enumerate(partner_a) if j >= 0 and sig_a[i] != sig_b[j]]
    changes = {}
    for batch in _batches(pairs, lambda p: 2):
        a.read(i for i, _ in batch)
        b.read(j for _, j in batch)
        for i, j in batch:
            found = compare(a.leaves(i), b.leaves(j))
            if found:
                changes[i] = found
    a.forget()
    b.forget()
    return changes


def _layout(a: Side, b: Side, partner_a: array, partner_b: array, changes: dict) -> DiffResult:
    """The rows in A's order; decisions only in B follow the A decision paired with their nearest
    paired predecessor in B. Built a stretch of A at a time (the unpaired are found at C speed)."""
    la, lb = len(a), len(b)
    after: dict[int, list[int]] = {}
    anchor, prev = -1, -2
    for j in _unpaired(partner_b):
        if j - 1 != prev:  # B[j - 1] is paired (or j is B's first)
            anchor = partner_b[j - 1] if j else -1
        after.setdefault(anchor, []).append(j)
        prev = j
    total = la + sum(map(len, after.values()))
    status = bytearray(total)  # SAME_CODE, until found otherwise
    ra, rb = array("q", [-1]) * total, array("q", [-1]) * total
    row_of_a, row_of_b = array("q", [0]) * la, array("q", [0]) * lb
    k = 0  # the next row

    placed: list[tuple[int, list[int]]] = []  # (the row of the first, B's unpaired decisions)

    def only_b(js):
        placed.append((k, js))
        status[k : k + len(js)] = bytes((ONLY_B_CODE,)) * len(js)
        rb[k : k + len(js)] = array("q", js)
        return k + len(js)

    k = only_b(after.get(-1, ()))
    start = 0
    for anchor in sorted({i for i in after if i >= 0} | {la - 1}):
        end = anchor + 1  # A's start..anchor, then the B decisions after the anchor
        for lo in range(start, end, SLICE):  # in slices: a whole run's copy would double the arrays
            hi = min(end, lo + SLICE)
            ra[k : k + hi - lo] = array("q", range(lo, hi))
            rb[k : k + hi - lo] = partner_a[lo:hi]
            row_of_a[lo:hi] = array("q", range(k, k + hi - lo))
            k += hi - lo
        if anchor >= 0 and anchor in after:
            k = only_b(after[anchor])
        start = end
    for i in _unpaired(partner_a):
        status[row_of_a[i]] = ONLY_A_CODE
    row_changes = {}
    for i, found in changes.items():
        row_changes[row_of_a[i]] = found
        status[row_of_a[i]] = CHANGED_CODE
    for lo in range(0, lb if la else 0, SLICE):  # B's paired decisions: the row of their partner
        hi = min(lb, lo + SLICE)
        row_of_b[lo:hi] = array("q", map(row_of_a.__getitem__, partner_b[lo:hi]))  # (-1: set below)
    for first, js in placed:
        for n, j in enumerate(js):
            row_of_b[j] = first + n
    counts = {name: status.count(code) for code, name in enumerate(STATUSES)}
    return DiffResult(a, b, Rows(status, ra, rb, row_changes), counts, None, row_of_a, row_of_b)


def _unpaired(partner: array):
    """The positions holding -1, in order (found by array.index, at C speed)."""
    i = -1
    while True:
        try:
            i = partner.index(-1, i + 1)
        except ValueError:
            return
        yield i


def _align(a: Side, b: Side, ia: array, ib: array, stretches: list):
    """Yield the paired stretches (xs, ys) of one key group, xs[k] paired with ys[k]; unequal
    stretches to pair by value distance go to `stretches` (decisions left unpaired are found on
    one side only)."""
    sa = list(map(a.sig.__getitem__, ia))
    sb = list(map(b.sig.__getitem__, ib))
    if sa == sb:
        yield ia, ib
        return
    lo, n, m = 0, len(sa), len(sb)
    while lo < n and lo < m and sa[lo] == sb[lo]:
        lo += 1
    hi_a, hi_b = n, m
    while hi_a > lo and hi_b > lo and sa[hi_a - 1] == sb[hi_b - 1]:
        hi_a -= 1
        hi_b -= 1
    yield ia[:lo], ib[:lo]
    ma, mb = sa[lo:hi_a], sb[lo:hi_b]
    if len(ma) * len(mb) <= MATCHER_LIMIT:
        opcodes = SequenceMatcher(None, ma, mb, autojunk=False).get_opcodes()
    else:
        opcodes = _sync(ma, mb)
    for tag, i1, i2, j1, j2 in opcodes:
        xs, ys = ia[lo + i1 : lo + i2], ib[lo + j1 : lo + j2]
        if tag == "equal" or len(xs) == len(ys) == 1 or len(xs) * len(ys) > PAIR_DP_LIMIT:
            yield xs, ys  # equal, one each, or too big to weigh: paired in order
        elif xs and ys:
            stretches.append((xs, ys))
    yield ia[hi_a:], ib[hi_b:]


def _sync(sa: list, sb: list) -> list[tuple[str, int, int, int, int]]:
    """Opcodes as SequenceMatcher.get_opcodes gives them, found in one forward pass.

    For long groups, where SequenceMatcher's repeated longest-match searches cost too much.
    At each mismatch it skips to the nearer resynchronisation: the next place A's decision
    appears in B (B inserted the ones between) or B's appears in A (A had extra ones); when
    neither reappears the two are an unequal pair. On sparse differences (the usual case:
    a rerun, a replay, one setting changed) this is the minimal edit script.
    """
    n, m = len(sa), len(sb)
    ops: list[tuple[str, int, int, int, int]] = []
    pos_a = pos_b = None  # built only when a resynchronisation is not found nearby
    i = j = 0
    ui = uj = -1  # start of the pending unequal stretch
    while i < n and j < m:
        if sa[i] == sb[j]:
            if ui >= 0:
                ops.append(("replace", ui, i, uj, j))
                ui = -1
            si, sj = i, j
            while i < n and j < m and sa[i] == sb[j]:
                i += 1
                j += 1
            ops.append(("equal", si, i, sj, j))
            continue
        if ui < 0:
            ui, uj = i, j
        na = _find(sa, sb[j], i + 1, n)
        nb = _find(sb, sa[i], j + 1, m)
        if na < 0 and nb < 0 and (i + NEAR < n or j + NEAR < m):
            if pos_a is None:
                pos_a, pos_b = _Where(sa), _Where(sb)
            na = pos_a.next(sb[j], i + 1)
            nb = pos_b.next(sa[i], j + 1)
        if na < 0 and nb < 0:
            i += 1
            j += 1
        elif nb < 0 or (na >= 0 and na - i <= nb - j):
            i = na
        else:
            j = nb
    if i < n or j < m or ui >= 0:
        ops.append(("replace", ui if ui >= 0 else i, n, uj if ui >= 0 else j, m))
    return ops


def _find(items: list, item, lo: int, n: int) -> int:
    """The first position of item in items[lo : lo + NEAR], or -1 (list.index runs at C speed)."""
    try:
        return items.index(item, lo, min(n, lo + NEAR))
    except ValueError:
        return -1


class _Where:
    """Where each item of a sequence is next found: its first and last positions (two dicts built
    at C speed), and a C-speed search between them for items found more than once."""

    def __init__(self, items: list):
        n = len(items)
        self.items = items
        self.first = dict(zip(reversed(items), range(n - 1, -1, -1)))
        self.last = dict(zip(items, range(n)))

    def next(self, item, lo: int) -> int:
        """The first position >= lo of item, or -1."""
        first = self.first.get(item)
        if first is None:
            return -1
        if first >= lo:
            return first
        last = self.last[item]
        return self.items.index(item, lo, last + 1) if last >= lo else -1


def _pair(a: Side, b: Side, xs: list[int], ys: list[int]):
    """Pair two unequal stretches: the cheapest alignment where a pair costs its distance."""
    n, m = len(xs), len(ys)
    if n == m == 1:
        yield xs[0], ys[0]
        return
    if n * m > PAIR_DP_LIMIT:
        yield from zip(xs, ys)
        yield from ((i, None) for i in xs[m:])
        yield from ((None, j) for j in ys[n:])
        return
    cost = [[0.0] * (m + 1) for _ in range(n + 1)]
    for i in range(1, n + 1):
        cost[i][0] = i * GAP_COST
    for j in range(1, m + 1):
        cost[0][j] = j * GAP_COST
    for i in range(1, n + 1):
        la = a.leaves(xs[i - 1])
        for j in range(1, m + 1):
            cost[i][j] = min(
                cost[i - 1][j - 1] + distance(la, b.leaves(ys[j - 1])),
                cost[i - 1][j] + GAP_COST,
                cost[i][j - 1] + GAP_COST,
            )
    out = []
    i, j = n, m
    while i or j:
        if i and j and math.isclose(
            cost[i][j], cost[i - 1][j - 1] + distance(a.leaves(xs[i - 1]), b.leaves(ys[j - 1]))
        ):
            out.append((xs[i - 1], ys[j - 1]))
            i, j = i - 1, j - 1
        elif i and (not j or math.isclose(cost[i][j], cost[i - 1][j] + GAP_COST)):
            out.append((xs[i - 1], None))
            i -= 1
        else:
            out.append((None, ys[j - 1]))
            j -= 1
    yield from reversed(out)


def _divergence(result: DiffResult, partner_a: array) -> Divergence | None:
    la, lb = len(result.a), len(result.b)
    rows, row_of_a, row_of_b = result.rows, result.row_of_a, result.row_of_b
    status = rows.status
    k = 0
    for k in range(min(la, lb)):
        if partner_a[k] != k or status[row_of_a[k]] != SAME_CODE:
            break
    else:
        k = min(la, lb)
        if la == lb:
            return None
    row_a = rows.row(row_of_a[k]) if k < la else None
    row_b = rows.row(row_of_b[k]) if k < lb else None
    if row_a is not None and row_b is not None and row_of_a[k] == row_of_b[k]:
        row_b = row_a  # one row: the pair of A[k] and B[k]
    return Divergence(
        position=k,
        a=k if k < la else None,
        b=k if k < lb else None,
        row_a=row_a,
        row_b=row_b,
        context_a=list(range(max(0, k - CONTEXT), min(la, k + CONTEXT + 1))),
        context_b=list(range(max(0, k - CONTEXT), min(lb, k + CONTEXT + 1))),
    )


