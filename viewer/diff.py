"""Two runs compared: aligned decisions, what changed, and the first divergence.

Plain Python, no ORM and no request. The caller fetches each run's decisions through the
selectors, in file order, as tuples of the columns `fields()` names, and hands them to
`side_from_rows`; `diff_sides` does the rest.

Decisions are aligned by content, never by time. They are grouped by a key per kind:
    dynoai   (action, cell)
    session  (round, event_type, agent)
    study    (event type)
and each group's two sequences are aligned by edit distance (difflib.SequenceMatcher over each
decision's signature), so a dropped or repeated decision shifts nothing after it. Where a stretch
differs on both sides, its decisions are paired by a small dynamic programme on value distance:
a nudged decision pairs with its counterpart rather than with a neighbour.

Fields that differ between any two runs (timestamps, session and run ids, event ids, measured
elapsed times) are left out of the comparison unless `include_volatile` is set.
"""
from __future__ import annotations

import gc
import html
import math
import re
from bisect import bisect_left
from collections import Counter
from collections.abc import Iterable
from contextlib import contextmanager
from dataclasses import dataclass, field
from difflib import SequenceMatcher
from typing import Any

import orjson

SAME, CHANGED, ONLY_A, ONLY_B = "same", "changed", "only_a", "only_b"
STATUSES = (SAME, CHANGED, ONLY_A, ONLY_B)

# Keys (at any depth of a decision's values) whose values differ between any two runs.
VOLATILE_KEYS = frozenset({
    "timestamp", "ts", "iso_ts", "human_ts", "server_time", "generated_at",
    "session", "session_id", "run_id", "event_id", "parent_event_id", "correlation_id",
    "elapsed_ms",
})
_VOLATILE = re.compile(r'"(?:%s)"\s*:' % "|".join(sorted(map(re.escape, VOLATILE_KEYS))))

# What each kind's rows hold, in order. `values_text`, `cell_text` and `ts_text` are the JSON
# columns and the timestamp as text (the caller casts them; no JSON is decoded for equal rows).
_FIELDS = {
    "dynoai": ("seq", "action", "t_ms", "values_text", "reason", "cell_text"),
    "session": ("seq", "action", "t_ms", "values_text", "round", "agent"),
    "study": ("seq", "action", "t_ms", "values_text"),
}
MAX_DEPTH = 64  # deeper values compare as their JSON text
NEAR = 64  # _sync looks this far ahead before indexing the whole group
MATCHER_LIMIT = 40_000  # longer groups (both sides multiplied) align by _sync
PAIR_DP_LIMIT = 2500  # cells of the pairing table; a bigger unequal stretch pairs in order
GAP_COST = 0.6  # cost of leaving a decision unpaired; pairing costs its distance (0..1)
CONTEXT = 3

# DynoAI's grid (FORMATS.md 1.3), for cells given by index only.
RPM_BINS = [1500, 2000, 2500, 3000, 3500, 4000, 4500, 5000, 5500, 6000, 6500]
KPA_BINS = [35, 50, 65, 80, 95]


class _Missing:
    def __repr__(self):
        return "(absent)"


MISSING = _Missing()


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


def fields(kind: str, include_volatile: bool = False) -> tuple[str, ...]:
    """The columns `side_from_rows` expects for a run of `kind`, in order."""
    base = _FIELDS.get(kind, _FIELDS["study"])
    return base + ("ts_text",) if include_volatile else base


@dataclass(eq=False)
class Side:
    """One run's decisions as the diff reads them: parallel lists in file order."""

    kind: str
    include_volatile: bool
    seq: list[int] = field(default_factory=list)
    action: list[str] = field(default_factory=list)
    t_ms: list[float | None] = field(default_factory=list)
    values_text: list[str] = field(default_factory=list)
    reason: list[str] | None = None
    cell_text: list[str | None] | None = None
    round: list[int | None] | None = None
    agent: list[str | None] | None = None
    ts: list[str | None] | None = None
    key: list[str] = field(default_factory=list)  # the alignment key, as one string (not GC-tracked)
    sig: list[str] = field(default_factory=list)
    _leaves: dict[int, dict] = field(default_factory=dict, repr=False)

    def __len__(self) -> int:
        return len(self.seq)

    def values(self, i: int) -> Any:
        return _loads(self.values_text[i])

    def leaves(self, i: int) -> dict[str, Any]:
        """path -> leaf value of what is compared for decision i (cached)."""
        found = self._leaves.get(i)
        if found is None:
            found = {}
            if self.reason is not None:
                found["reason"] = self.reason[i]
            _flatten(self.values(i), "", found, 0, skip=() if self.include_volatile else VOLATILE_KEYS)
            if self.ts is not None:
                found["ts"] = self.ts[i]
            self._leaves[i] = found
        return found

    def where(self, i: int) -> str:
        """The decision's place in its run, as people say it (cell, round, agent)."""
        if self.cell_text is not None:
            return cell_label(self.cell_text[i])
        parts = []
        if self.round is not None and self.round[i] is not None:
            parts.append(f"round {self.round[i]}")
        if self.agent is not None and self.agent[i]:
            parts.append(str(self.agent[i]))
        return " · ".join(parts)

    def duration_ms(self) -> float | None:
        times = [t for t in self.t_ms if t is not None]
        return times[-1] - times[0] if times else None


def side_from_rows(
    kind: str, rows: Iterable[tuple], *, include_volatile: bool = False, align: str | None = None
) -> Side:
    """Read rows (columns as `fields(kind, include_volatile)`) into a Side.

    `align` is the kind whose key aligns the decisions (default `kind`); two runs of different
    kinds are aligned by action alone ("study").
    """
    kind = kind if kind in _FIELDS else "study"
    align = align or kind
    names = fields(kind, include_volatile)
    columns = list(zip(*rows)) or [()] * len(names)  # transposed: one list per column, at C speed
    col = {name: list(values) for name, values in zip(names, columns)}
    side = Side(kind=kind, include_volatile=include_volatile, seq=col["seq"], action=col["action"],
                t_ms=col["t_ms"], values_text=[vt if vt is not None else "{}" for vt in col["values_text"]])
    sig = side.values_text
    if not include_volatile:
        sig = _without_volatile(sig)
    if kind == "dynoai":
        side.reason = [r or "" for r in col["reason"]]
        side.cell_text = col["cell_text"]
        sig = [r + "\x00" + s for r, s in zip(side.reason, sig)]
        key = _keys(side.action, side.cell_text) if align == "dynoai" else side.action
    elif kind == "session":
        side.round, side.agent = col["round"], col["agent"]
        key = _keys(side.round, side.action, side.agent) if align == "session" else side.action
    else:
        key = side.action
    if include_volatile:
        side.ts = col["ts_text"]
        sig = [s + "\x00" + (t or "") for s, t in zip(sig, side.ts)]
    side.key = list(key)
    side.sig = sig if sig is not side.values_text else list(sig)
    return side


def _keys(*columns: list) -> list[str]:
    """One string per row joining the columns; None is kept apart from any text."""
    if len(columns) == 2:  # (action, cell_text): the DynoAI hot path
        return [a + "\x1f" + c if c is not None else a + "\x1f\x00" for a, c in zip(*columns)]
    return ["\x1f".join("\x00" if v is None else str(v) for v in values) for values in zip(*columns)]


def _without_volatile(texts: list[str], chunk: int = 512) -> list[str]:
    """The values texts with volatile keys removed (canonical JSON where there were any)."""
    out = texts
    search = _VOLATILE.search
    for start in range(0, len(texts), chunk):
        if not search("\n".join(texts[start : start + chunk])):
            continue  # most chunks of most runs: nothing to strip
        for i in range(start, min(start + chunk, len(texts))):
            if search(texts[i]):
                if out is texts:
                    out = list(texts)
                out[i] = _canonical(_strip(_loads(texts[i]), 0))
    return out


# --- the alignment -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Change:
    path: str
    old: Any
    new: Any
    delta: float | None


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


def _groups(keys: list[str]) -> dict[str, list[int]]:
    groups: dict[str, list[int]] = {}
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
                pos_a, pos_b = _positions(sa), _positions(sb)
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


def _positions(items: list) -> dict:
    out: dict = {}
    for n, item in enumerate(items):
        found = out.get(item)
        if found is None:
            out[item] = [n]
        else:
            found.append(n)
    return out


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


# --- comparing two decisions -------------------------------------------------------------------


def compare(old: dict[str, Any], new: dict[str, Any]) -> tuple[Change, ...]:
    """The leaf paths whose values differ, old -> new, with the numeric delta where both are numbers."""
    out = []
    for path, x in old.items():
        y = new.get(path, MISSING)
        if not same_value(x, y):
            out.append(Change(path, x, y, delta(x, y)))
    for path, y in new.items():
        if path not in old:
            out.append(Change(path, MISSING, y, None))
    return tuple(out)


def same_value(x: Any, y: Any) -> bool:
    if isinstance(x, bool) or isinstance(y, bool):
        return type(x) is type(y) and x == y
    if x is MISSING or y is MISSING:
        return x is y
    return x == y


def is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def delta(x: Any, y: Any) -> float | None:
    if is_number(x) and is_number(y):
        d = y - x
        return d if isinstance(d, int) else float(f"{d:.12g}")
    return None


def distance(x: dict[str, Any], y: dict[str, Any]) -> float:
    """0 (equal) .. 1 (nothing alike): the mean distance of their leaves."""
    paths = x.keys() | y.keys()
    if not paths:
        return 0.0
    total = 0.0
    for p in paths:
        u, v = x.get(p, MISSING), y.get(p, MISSING)
        if same_value(u, v):
            continue
        if is_number(u) and is_number(v):
            total += min(1.0, abs(u - v) / (abs(u) + abs(v)))
        else:
            total += 1.0
    return total / len(paths)


def _flatten(value: Any, prefix: str, out: dict, depth: int, skip=()) -> None:
    if isinstance(value, dict) and value:
        if depth >= MAX_DEPTH:
            out[prefix or "values"] = _canonical(value)
            return
        for k, v in value.items():
            if k in skip:
                continue
            _flatten(v, f"{prefix}.{k}" if prefix else str(k), out, depth + 1, skip)
    elif isinstance(value, list) and value:
        if depth >= MAX_DEPTH:
            out[prefix or "values"] = _canonical(value)
            return
        for n, v in enumerate(value):
            _flatten(v, f"{prefix}[{n}]", out, depth + 1, skip)
    elif prefix or value not in ({}, []):
        out[prefix or "values"] = value


def _strip(value: Any, depth: int) -> Any:
    if depth > MAX_DEPTH:
        return value
    if isinstance(value, dict):
        return {k: _strip(v, depth + 1) for k, v in value.items() if k not in VOLATILE_KEYS}
    if isinstance(value, list):
        return [_strip(v, depth + 1) for v in value]
    return value


def _loads(text: str | None) -> Any:
    if text is None:
        return None
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:  # deeper than orjson goes (or not JSON): compare the text
        return text


def _canonical(value: Any) -> str:
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
    except (TypeError, orjson.JSONEncodeError):  # nested deeper than orjson writes
        import json

        try:
            return json.dumps(value, sort_keys=True, ensure_ascii=False)
        except (RecursionError, ValueError, TypeError):
            return "(nested too deeply to show)"


# --- summaries, settings, cells ----------------------------------------------------------------


@dataclass(frozen=True)
class CountRow:
    label: str
    a: int
    b: int

    @property
    def delta(self) -> int:
        return self.b - self.a


def action_counts(a: Side, b: Side) -> list[CountRow]:
    """Decisions per action on each side, most frequent first (ties in order of appearance)."""
    ca, cb = Counter(a.action), Counter(b.action)
    order = list(dict.fromkeys([*ca, *cb]))
    order.sort(key=lambda act: -(ca[act] + cb[act]))
    return [CountRow(act, ca[act], cb[act]) for act in order]


@dataclass(frozen=True)
class SettingRow:
    path: str
    a: Any
    b: Any

    @property
    def changed(self) -> bool:
        return not same_value(self.a, self.b)

    @property
    def delta(self) -> float | None:
        return delta(self.a, self.b)


def run_settings(run) -> dict:
    """What a run was made with: manifest `config.args` for DynoAI; seed, version, commit and config
    for a session; source and version for a study log."""
    if run.kind == "dynoai":
        return dict(run.settings or {})
    if run.kind == "session":
        return {"random_seed": run.random_seed, "version": run.version or None,
                "git_commit": run.git_commit or None, "config": run.settings or {}}
    return {"source": run.source or None, "version": run.version or None}


def settings_diff(a: dict, b: dict) -> list[SettingRow]:
    """Every setting path on either side, in order of appearance; see SettingRow.changed."""
    fa, fb = {}, {}
    _flatten(a, "", fa, 0)
    _flatten(b, "", fb, 0)
    paths = list(dict.fromkeys([*fa, *fb]))
    return [SettingRow(p, fa.get(p, MISSING), fb.get(p, MISSING)) for p in paths]


HEAT_FINAL, HEAT_COUNT = "final", "count"
DIVERGING = [[0, "#2166ac"], [0.25, "#92c5de"], [0.5, "#f7f7f7"], [0.75, "#f4a582"], [1, "#b2182b"]]


def cell_heatmap(result: DiffResult, metric: str = HEAT_FINAL) -> dict | None:
    """A plotly heatmap of B − A per (rpm, kpa) cell, for DynoAI runs; None when there are no cells.

    `final`: the last correction logged for the cell (GRADIENT_LIMITING `result`, or a later
    CLAMPING_APPLIED `clamped`). `count`: decisions logged for the cell.
    """
    a, b = result.a, result.b
    if a.kind != "dynoai" or b.kind != "dynoai":
        return None
    per = [_cell_counts(a), _cell_counts(b)] if metric == HEAT_COUNT else [_final(a), _final(b)]
    cells = per[0].keys() | per[1].keys()
    if not cells:
        return None
    rpms = sorted({c[0] for c in cells})
    kpas = sorted({c[1] for c in cells})
    z, text = [], []
    what = "decisions" if metric == HEAT_COUNT else "final correction"
    for rpm in rpms:
        zr, tr = [], []
        for kpa in kpas:
            va, vb = per[0].get((rpm, kpa)), per[1].get((rpm, kpa))
            d = delta(va, vb) if va is not None and vb is not None else None
            zr.append(d)
            parts = [f"RPM {rpm} · KPA {kpa} ({what})",
                     f"A: {_num_text(va)}", f"B: {_num_text(vb)}"]
            if d is not None:
                parts.append(f"B − A: {d:+g}")
            tr.append("<br>".join(html.escape(p) for p in parts))
        z.append(zr)
        text.append(tr)
    limit = max((abs(v) for row in z for v in row if v is not None), default=0) or 1
    return {
        "data": [{
            "type": "heatmap", "x": [str(k) for k in kpas], "y": [str(r) for r in rpms], "z": z,
            "text": text, "hovertemplate": "%{text}<extra></extra>", "colorscale": DIVERGING,
            "zmin": -limit, "zmax": limit, "xgap": 2, "ygap": 2,
            "colorbar": {"title": {"text": "B − A"}},
        }],
        "layout": {
            "margin": {"l": 60, "r": 20, "t": 10, "b": 45}, "height": 420,
            "xaxis": {"title": {"text": "KPA"}, "type": "category"},
            "yaxis": {"title": {"text": "RPM"}, "type": "category"},
        },
    }


def _num_text(v) -> str:
    return "–" if v is None else f"{v:g}" if isinstance(v, float) else str(v)


def _cell_of(text: str | None) -> tuple[int, int] | None:
    """(rpm, kpa) of a cell given by bins or by indices into DynoAI's grid."""
    cell = _loads(text) if text else None
    if not isinstance(cell, dict):
        return None
    rpm, kpa = cell.get("rpm"), cell.get("kpa")
    if is_number(rpm) and is_number(kpa):
        return rpm, kpa
    return _bins(cell.get("rpm_index"), cell.get("kpa_index"))


def _bins(ri, ki) -> tuple[int, int] | None:
    if isinstance(ri, int) and isinstance(ki, int) and 0 <= ri < len(RPM_BINS) and 0 <= ki < len(KPA_BINS):
        if not isinstance(ri, bool) and not isinstance(ki, bool):
            return RPM_BINS[ri], KPA_BINS[ki]
    return None


def _cell_counts(side: Side) -> dict[tuple, int]:
    out: dict[tuple, int] = {}
    for text, n in Counter(side.cell_text).items():
        cell = _cell_of(text)
        if cell is not None:
            out[cell] = out.get(cell, 0) + n
    return out


def _final(side: Side) -> dict[tuple, float]:
    last: dict[tuple, tuple[int, float]] = {}  # cell -> (position, value)
    cells: dict[str | None, tuple | None] = {}
    for i, act in enumerate(side.action):
        if act == "GRADIENT_LIMITING":
            text = side.cell_text[i]
            cell = cells[text] if text in cells else cells.setdefault(text, _cell_of(text))
            values = side.values(i)
            if cell and isinstance(values, dict) and is_number(values.get("result")):
                last[cell] = (i, values["result"])
        elif act == "CLAMPING_APPLIED":
            values = side.values(i)
            for c in (values.get("cells") if isinstance(values, dict) else None) or []:
                cell = _bins(c.get("rpm_index"), c.get("kpa_index")) if isinstance(c, dict) else None
                if cell and is_number(c.get("clamped")):
                    last[cell] = (i, c["clamped"])
    return {cell: value for cell, (_, value) in last.items()}


def cell_label(text: str | None) -> str:
    """`RPM=2000 KPA=65 Cyl=f` / `RPM[0] KPA[1]`, as DynoAI's viewer writes cells."""
    cell = _loads(text) if text else None
    if not isinstance(cell, dict) or not cell:
        return ""
    parts = []
    for key, fmt in (("rpm", "RPM={}"), ("kpa", "KPA={}"), ("rpm_index", "RPM[{}]"),
                     ("kpa_index", "KPA[{}]"), ("cylinder", "Cyl={}")):
        if key in cell:
            parts.append(fmt.format(cell[key]))
    return " ".join(parts) if parts else _canonical(cell)


def value_text(value: Any, limit: int | None = None) -> str:
    """A leaf value as text for a table cell (JSON spelling; strings as they are)."""
    if value is MISSING:
        text = "(absent)"
    elif isinstance(value, str):
        text = value
    else:
        text = _canonical(value)
    if limit is not None and len(text) > limit:
        return text[: limit - 1] + "…"
    return text
