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
from bisect import bisect_left
from collections.abc import Callable, Iterable, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from difflib import SequenceMatcher
from typing import Any

from .diff_values import (
    VOLATILE,
    VOLATILE_KEYS,
    Change,
    canonical,
    compare,
    distance,
    flatten,
    loads,
    strip_volatile,
)

SAME, CHANGED, ONLY_A, ONLY_B = "same", "changed", "only_a", "only_b"
STATUSES = (SAME, CHANGED, ONLY_A, ONLY_B)
BASE = ("seq", "action", "t_ms", "values_text")  # every side's first columns
BY_ACTION = ("action",)  # the key of two runs of different kinds
NEAR = 64  # _sync looks this far ahead before indexing the whole group
MATCHER_LIMIT = 40_000  # longer groups (both sides multiplied) align by _sync
PAIR_DP_LIMIT = 2500  # cells of the pairing table; a bigger unequal stretch pairs in order
GAP_COST = 0.6  # cost of leaving a decision unpaired; pairing costs its distance (0..1)
CONTEXT = 3


@dataclass(frozen=True)
class CellDelta:
    """A kind whose decisions sit on a grid of (row, column) bins: the per-cell B − A heatmap.

    `column`: the side's column holding each decision's cell (JSON text); `cell_of(text)`: its
    (row bin, column bin), or None; `finals(side)`: {cell: the last value the run logged for it}.
    The notes say what each metric counts, under the heatmap."""

    column: str
    cell_of: Callable[[str | None], tuple | None]
    finals: Callable[[Side], dict[tuple, float]]
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


def fields(spec: DiffSpec, include_volatile: bool = False) -> tuple[str, ...]:
    """The columns `side_from_rows` expects for a run of `spec`'s kind, in order."""
    return BASE + spec.columns + (("ts_text",) if include_volatile else ())


@dataclass(eq=False)
class Side:
    """One run's decisions as the diff reads them: parallel lists in file order."""

    spec: DiffSpec
    include_volatile: bool
    run: Any = None  # the run the decisions come from (handed to spec.where)
    seq: list[int] = field(default_factory=list)
    action: list[str] = field(default_factory=list)
    t_ms: list[float | None] = field(default_factory=list)
    values_text: list[str] = field(default_factory=list)
    columns: dict[str, list] = field(default_factory=dict)  # the spec's columns
    ts: list[str | None] | None = None
    key: list[str] = field(default_factory=list)  # the alignment key, as one string (not GC-tracked)
    sig: list[str] = field(default_factory=list)
    _leaves: dict[int, dict] = field(default_factory=dict, repr=False)

    def __len__(self) -> int:
        return len(self.seq)

    def column(self, name: str) -> list | None:
        """One of the spec's columns (None where the kind does not read it)."""
        return self.columns.get(name)

    def values(self, i: int) -> Any:
        return loads(self.values_text[i])

    def leaves(self, i: int) -> dict[str, Any]:
        """path -> leaf value of what is compared for decision i (cached)."""
        found = self._leaves.get(i)
        if found is None:
            found = {name: self.columns[name][i] for name in self.spec.compared}
            flatten(self.values(i), "", found, 0, skip=() if self.include_volatile else VOLATILE_KEYS)
            if self.ts is not None:
                found["ts"] = self.ts[i]
            self._leaves[i] = found
        return found

    def where(self, i: int) -> str:
        """The decision's place in its run, as people say it (cell, round, agent)."""
        if self.spec.where is None:
            return ""
        return self.spec.where({name: self.columns[name][i] for name in self.spec.columns}, self.run)

    def duration_ms(self) -> float | None:
        times = [t for t in self.t_ms if t is not None]
        return times[-1] - times[0] if times else None


def side_from_rows(
    spec: DiffSpec,
    rows: Iterable[tuple],
    *,
    include_volatile: bool = False,
    key: tuple[str, ...] | None = None,
    run: Any = None,
) -> Side:
    """Read rows (columns as `fields(spec, include_volatile)`) into a Side of `run`.

    `key`: the columns aligning the decisions (default the spec's); two runs of different kinds
    are aligned by action alone (`BY_ACTION`).
    """
    names = fields(spec, include_volatile)
    columns = list(zip(*rows)) or [()] * len(names)  # transposed: one list per column, at C speed
    col = {name: list(values) for name, values in zip(names, columns)}
    side = Side(spec=spec, include_volatile=include_volatile, run=run, seq=col["seq"], action=col["action"],
                t_ms=col["t_ms"], values_text=[vt if vt is not None else "{}" for vt in col["values_text"]])
    for name in spec.columns:
        side.columns[name] = col[name]
    sig = side.values_text
    if not include_volatile:
        sig = _without_volatile(sig)
    for name in spec.compared:  # text columns (None reads as "")
        side.columns[name] = [v or "" for v in col[name]]
        sig = [v + "\x00" + s for v, s in zip(side.columns[name], sig)]
    key = key or spec.key
    if key == BY_ACTION:
        side.key = side.action
    elif len(key) == 2 and key[0] == "action":  # DynoAI's (action, cell): the hot path
        cells = col[key[1]]  # text or None
        side.key = [a + "\x1f" + c if c is not None else a + "\x1f\x00" for a, c in zip(side.action, cells)]
    else:
        side.key = _keys(*(col[name] for name in key))
    if include_volatile:
        side.ts = col["ts_text"]
        sig = [s + "\x00" + (t or "") for s, t in zip(sig, side.ts)]
    side.sig = sig if sig is not side.values_text else list(sig)
    return side


def _keys(*columns: list) -> list[str]:
    """One string per row joining the columns; None is kept apart from any text."""
    return ["\x1f".join("\x00" if v is None else str(v) for v in values) for values in zip(*columns)]


def _without_volatile(texts: list[str], chunk: int = 512) -> list[str]:
    """The values texts with volatile keys removed (canonical JSON where there were any)."""
    out = texts
    search = VOLATILE.search
    for start in range(0, len(texts), chunk):
        if not search("\n".join(texts[start : start + chunk])):
            continue  # most chunks of most runs: nothing to strip
        for i in range(start, min(start + chunk, len(texts))):
            if search(texts[i]):
                if out is texts:
                    out = list(texts)
                out[i] = canonical(strip_volatile(loads(texts[i])))
    return out


# --- the alignment -----------------------------------------------------------------------------


@dataclass(slots=True)
class Row:
    """One aligned pair, or a decision found on one side only. `a`, `b` index the sides."""

    status: str
    a: int | None
    b: int | None
    changes: tuple[Change, ...] = ()


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
    rows: list[Row]
    counts: dict[str, int]
    divergence: Divergence | None
    row_of_a: list[int]  # index into rows for each A decision
    row_of_b: list[int]

    @property
    def identical(self) -> bool:
        return self.counts[SAME] == len(self.rows)

    def status_a(self, i: int) -> str:
        return self.rows[self.row_of_a[i]].status

    def status_b(self, j: int) -> str:
        return self.rows[self.row_of_b[j]].status

    def differences(self) -> list[Row]:
        return [r for r in self.rows if r.status != SAME]


def diff_sides(a: Side, b: Side) -> DiffResult:
    partner_a = [-1] * len(a)
    partner_b = [-1] * len(b)
    changes: dict[int, tuple[Change, ...]] = {}  # A index -> changes of a changed pair
    groups_b = _groups(b.key)
    everywhere = (set(a.sig), set(b.sig))
    for key, ia in _groups(a.key).items():
        ib = groups_b.pop(key, [])
        for i, j in _align(a, b, ia, ib, everywhere):
            if i is not None and j is not None:
                partner_a[i], partner_b[j] = j, i
                if a.sig[i] != b.sig[j]:
                    found = compare(a.leaves(i), b.leaves(j))
                    if found:
                        changes[i] = found

    rows: list[Row] = []
    row_of_a = [0] * len(a)
    row_of_b = [0] * len(b)
    counts = dict.fromkeys(STATUSES, 0)
    # Decisions only in B follow the A decision paired with their nearest paired predecessor in B.
    after: dict[int, list[int]] = {}
    anchor = -1
    for j, i in enumerate(partner_b):
        if i >= 0:
            anchor = i
        else:
            after.setdefault(anchor, []).append(j)

    def only_b(js):
        for j in js:
            row_of_b[j] = len(rows)
            rows.append(Row(ONLY_B, None, j))
        counts[ONLY_B] += len(js)

    only_b(after.get(-1, ()))
    for i, j in enumerate(partner_a):
        row_of_a[i] = len(rows)
        if j < 0:
            rows.append(Row(ONLY_A, i, None))
            counts[ONLY_A] += 1
        else:
            row_of_b[j] = len(rows)
            found = changes.get(i)
            rows.append(Row(CHANGED, i, j, found) if found else Row(SAME, i, j))
            counts[CHANGED if found else SAME] += 1
        if i in after:
            only_b(after[i])
    result = DiffResult(a, b, rows, counts, None, row_of_a, row_of_b)
    result.divergence = _divergence(result, partner_a)
    return result


def _groups(keys: list) -> dict:
    """item -> the positions where it appears, in order."""
    groups: dict = {}
    for i, k in enumerate(keys):
        g = groups.get(k)
        if g is None:
            groups[k] = [i]
        else:
            g.append(i)
    return groups


def _align(a: Side, b: Side, ia: list[int], ib: list[int], everywhere: tuple[set, set]):
    """Yield (i, j), (i, None) or (None, j) for one key group, in order."""
    sa = list(map(a.sig.__getitem__, ia))
    sb = list(map(b.sig.__getitem__, ib))
    if sa == sb:
        yield from zip(ia, ib)
        return
    lo, n, m = 0, len(sa), len(sb)
    while lo < n and lo < m and sa[lo] == sb[lo]:
        lo += 1
    hi_a, hi_b = n, m
    while hi_a > lo and hi_b > lo and sa[hi_a - 1] == sb[hi_b - 1]:
        hi_a -= 1
        hi_b -= 1
    yield from zip(ia[:lo], ib[:lo])
    ma, mb = sa[lo:hi_a], sb[lo:hi_b]
    if len(ma) * len(mb) <= MATCHER_LIMIT:
        opcodes = SequenceMatcher(None, ma, mb, autojunk=False).get_opcodes()
    else:
        opcodes = _sync(ma, mb, everywhere)
    for tag, i1, i2, j1, j2 in opcodes:
        xs, ys = ia[lo + i1 : lo + i2], ib[lo + j1 : lo + j2]
        if tag == "equal":
            yield from zip(xs, ys)
        elif not ys:
            yield from ((i, None) for i in xs)
        elif not xs:
            yield from ((None, j) for j in ys)
        else:
            yield from _pair(a, b, xs, ys)
    yield from zip(ia[hi_a:], ib[hi_b:])


def _sync(sa: list, sb: list, everywhere: tuple[set, set]) -> list[tuple[str, int, int, int, int]]:
    """Opcodes as SequenceMatcher.get_opcodes gives them, found in one forward pass.

    For long groups, where SequenceMatcher's repeated longest-match searches cost too much.
    At each mismatch it skips to the nearer resynchronisation: the next place A's decision
    appears in B (B inserted the ones between) or B's appears in A (A had extra ones); when
    neither reappears the two are an unequal pair. On sparse differences (the usual case:
    a rerun, a replay, one setting changed) this is the minimal edit script.
    """
    n, m = len(sa), len(sb)
    ops: list[tuple[str, int, int, int, int]] = []
    in_a, in_b = everywhere  # every signature of each run: most changed decisions appear nowhere else
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
        if na < 0 and nb < 0 and (i + NEAR < n or j + NEAR < m) and (sb[j] in in_a or sa[i] in in_b):
            if pos_a is None:
                pos_a, pos_b = _groups(sa), _groups(sb)
            na = _next(pos_a.get(sb[j]), i + 1)
            nb = _next(pos_b.get(sa[i]), j + 1)
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


def _next(positions: list[int] | None, lo: int) -> int:
    """The first position >= lo, or -1."""
    if not positions:
        return -1
    if positions[0] >= lo:
        return positions[0]
    k = bisect_left(positions, lo)
    return positions[k] if k < len(positions) else -1


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


def _divergence(result: DiffResult, partner_a: list[int]) -> Divergence | None:
    la, lb = len(result.a), len(result.b)
    rows, row_of_a, row_of_b = result.rows, result.row_of_a, result.row_of_b
    k = 0
    for k in range(min(la, lb)):
        if partner_a[k] != k or rows[row_of_a[k]].status != SAME:
            break
    else:
        k = min(la, lb)
        if la == lb:
            return None
    return Divergence(
        position=k,
        a=k if k < la else None,
        b=k if k < lb else None,
        row_a=rows[row_of_a[k]] if k < la else None,
        row_b=rows[row_of_b[k]] if k < lb else None,
        context_a=list(range(max(0, k - CONTEXT), min(la, k + CONTEXT + 1))),
        context_b=list(range(max(0, k - CONTEXT), min(lb, k + CONTEXT + 1))),
    )


