"""One run's decisions as the diff reads them: compact columns in file order, texts on demand.

Plain Python, no ORM and no request. `side_from_rows` reads rows (the columns `fields(spec)`
names, in file order) a chunk at a time into a `Side`: each decision's seq, action, alignment key
and a hash of what is compared (its signature), with the spec's short columns (a cell, a round,
an agent) as codes into their distinct values (`Coded`). That is about 25 bytes a decision, so two
runs of a million decisions each align in about 250 MB, the process included.

The long texts (values, DynoAI's reason, timestamps) are kept only when the caller gives no
`load`: a side read from the database drops them and reads them again, a block at a time, for
the decisions whose values are compared or shown (`load(first seq, last seq, seqs, actions)`
yields the rows `text_fields` names of the seqs from first to last, or of those listed, or of
those of the actions listed).
"""
from __future__ import annotations

from array import array
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

from .diff_values import VOLATILE, VOLATILE_KEYS, canonical, flatten, loads, strip_volatile

BASE = ("seq", "action", "t_ms", "values_text")  # every side's first columns
BY_ACTION = ("action",)  # the key of two runs of different kinds
CHUNK = 5000  # rows read at once
BLOCK = 2048  # decisions whose texts are read at once when one is asked for
HELD = 32_768  # texts (and flattened values) a side read from the database holds at once
QUOTED_KEYS = tuple(f'"{key}"' for key in VOLATILE_KEYS)
SEQS = 900  # seqs per query when the texts read lie far apart


def fields(spec, include_volatile: bool = False) -> tuple[str, ...]:
    """The columns `side_from_rows` expects for a run of `spec`'s kind, in order."""
    return BASE + spec.columns + (("ts_text",) if include_volatile else ())


def text_fields(spec, include_volatile: bool = False) -> tuple[str, ...]:
    """The columns `Side.load` yields: seq, then each decision's texts (values, compared, ts)."""
    return ("seq", "values_text", *spec.compared) + (("ts_text",) if include_volatile else ())


class Coded(Sequence):
    """A column of few distinct values (an action, a cell, a key), indexed like a list: one code a
    decision (2 bytes, 4 past 65,536 values) and the values once."""

    def __init__(self):
        self.codes, self.values, self._code = array("H"), [], {}

    def extend(self, items: Sequence) -> None:
        code = self._code
        for value in set(items).difference(code):
            code[value] = len(self.values)
            self.values.append(value)
        if len(self.values) > 0xFFFF and self.codes.typecode == "H":
            self.codes = array("I", self.codes)
        self.codes.extend(map(code.__getitem__, items))

    def __len__(self) -> int:
        return len(self.codes)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return list(map(self.values.__getitem__, self.codes[i]))
        return self.values[self.codes[i]]

    def __iter__(self):
        return map(self.values.__getitem__, self.codes)

    def positions(self) -> dict:
        """value -> the positions holding it, in order (an array of them)."""
        groups: dict = defaultdict(_positions)
        for i, c in enumerate(self.codes):
            groups[c].append(i)
        return {self.values[c]: found for c, found in groups.items()}


def _positions() -> array:
    return array("q")


class Texts:
    """One of a side's texts, indexed like a list (read on demand)."""

    def __init__(self, side: Side, k: int):
        self.side, self.k = side, k

    def __len__(self) -> int:
        return len(self.side)

    def __getitem__(self, i: int):
        return self.side.text(i, self.k)


@dataclass(eq=False)
class Side:
    """One run's decisions as the diff reads them: parallel columns in file order."""

    spec: Any
    include_volatile: bool
    run: Any = None  # the run the decisions come from (handed to spec.where)
    load: Callable[..., Iterable[tuple]] | None = None  # (first, last, seqs, actions) -> text_fields rows
    seq: array = field(default_factory=lambda: array("q"))
    action: Coded = field(default_factory=Coded)
    t_first: float | None = None  # the first and last elapsed times logged
    t_last: float | None = None
    columns: dict[str, Coded] = field(default_factory=dict)  # the spec's short columns
    key: Coded = field(default_factory=Coded)  # the alignment key (one string joining its columns)
    # hash of what is compared: equal hashes pass for equal decisions (64 bits: two different ones
    # agree once in 2**64, against a handful of million pairs per diff)
    sig: array = field(default_factory=lambda: array("q"))
    held: list[list] | None = None  # without `load`: every decision's texts (values, compared, ts)
    finals: dict = field(default_factory=dict)  # the kind's grid: {cell: last value logged} (CellDelta)
    _texts: dict[int, tuple] = field(default_factory=dict, repr=False)  # i -> its row (text_fields)
    _hot: set[int] = field(default_factory=set, repr=False)  # the actions (codes) whose texts were asked
    _leaves: dict[int, dict] = field(default_factory=dict, repr=False)

    def __len__(self) -> int:
        return len(self.seq)

    def _text_index(self, name: str) -> int | None:
        names = text_fields(self.spec, self.include_volatile)
        return names.index(name) - 1 if name in names else None

    def column(self, name: str) -> Coded | list | Texts | None:
        """One of the spec's columns (None where the kind does not read it)."""
        if name in self.columns:
            return self.columns[name]
        if name in self.spec.compared:
            k = self._text_index(name)
            return self.held[k] if self.held is not None else Texts(self, k)
        return None

    @property
    def values_text(self) -> list | Texts:
        return self.held[0] if self.held is not None else Texts(self, 0)

    @property
    def ts(self) -> list | Texts | None:
        if not self.include_volatile:
            return None
        k = self._text_index("ts_text")
        return self.held[k] if self.held is not None else Texts(self, k)

    def texts(self, i: int) -> tuple:
        """Decision i's texts (values, compared columns, ts), read when not held: with the next
        decisions of its action (those a figure over one action reads next)."""
        if self.held is not None:
            return tuple(h[i] for h in self.held)
        row = self._row(i)
        if None in row:  # texts read as NULL: no values, no reason
            n = len(self.spec.compared)
            return ("{}" if row[1] is None else row[1], *("" if v is None else v for v in row[2 : 2 + n]),
                    *row[2 + n :])
        return row[1:]

    def text(self, i: int, k: int):
        """Decision i's text k (as `texts(i)[k]`)."""
        if self.held is not None:
            return self.held[k][i]
        value = self._row(i)[k + 1]
        if value is None and k <= len(self.spec.compared):
            return "" if k else "{}"
        return value

    def _row(self, i: int) -> tuple:
        """The row read for decision i: seq, then its texts as the database holds them."""
        row = self._texts.get(i)
        if row is None:
            self._read_action(i)
            row = self._texts[i]
        return row

    def _read_action(self, i: int) -> None:
        """Read decision i's texts with those of the next BLOCK decisions of its action, and of the
        other actions asked for so far in that stretch (a figure over two actions reads them in one
        pass)."""
        codes = self.action.codes
        code, end, n = codes[i], i, 1
        self._hot.add(code)
        try:
            while n < BLOCK:
                end = codes.index(code, end + 1)  # at C speed
                n += 1
        except ValueError:
            pass
        hot = self._hot
        wanted = [k for k in range(i, end + 1) if codes[k] in hot]
        if len(self._texts) + len(wanted) > HELD:
            self._texts.clear()
        actions = [self.action.values[c] for c in hot]
        rows = list(self.load(self.seq[i], self.seq[end], None, actions))
        if len(rows) == len(wanted):  # those actions' rows in the range, in order: one for each
            self._texts.update(zip(wanted, rows))
        else:
            self.read(wanted)

    def read(self, indices: Iterable[int]) -> None:
        """Read the texts of these decisions at once (a range of seqs where they lie close together,
        else a list of seqs per query), dropping the texts read before: a side holds a few blocks."""
        if self.held is not None:
            return
        wanted = sorted(set(indices))
        if not wanted:
            return
        if len(self._texts) + len(wanted) > HELD:
            self._texts.clear()
        seq, texts = self.seq, self._texts
        lo, hi = wanted[0], wanted[-1]
        if len(wanted) * 2 > hi - lo + 1:  # dense: the whole range, each row at its position
            rows = list(self.load(seq[lo], seq[hi], None, None))
            if len(rows) == hi - lo + 1:
                texts.update(zip(range(lo, hi + 1), rows))
                return
            at = {seq[k]: k for k in range(lo, hi + 1)}
            texts.update((at[row[0]], row) for row in rows if row[0] in at)
            return
        for start in range(0, len(wanted), SEQS):
            part = wanted[start : start + SEQS]
            at = {seq[k]: k for k in part}
            texts.update((at[row[0]], row) for row in self.load(seq[part[0]], seq[part[-1]], list(at), None))

    def values(self, i: int) -> Any:
        return loads(self.text(i, 0))

    def leaves(self, i: int) -> dict[str, Any]:
        """path -> leaf value of what is compared for decision i (cached)."""
        found = self._leaves.get(i)
        if found is None:
            texts = self.texts(i)
            found = dict(zip(self.spec.compared, texts[1:]))
            flatten(loads(texts[0]), "", found, 0, skip=() if self.include_volatile else VOLATILE_KEYS)
            if self.include_volatile:
                found["ts"] = texts[-1]
            if self.held is None and len(self._leaves) >= HELD:
                self._leaves.clear()
            self._leaves[i] = found
        return found

    def forget(self) -> None:
        """Drop the texts and flattened values read so far (they are read again when needed)."""
        if self.held is None:
            self._texts.clear()
        self._leaves.clear()

    def where(self, i: int) -> str:
        """The decision's place in its run, as people say it (cell, round, agent)."""
        if self.spec.where is None:
            return ""
        return self.spec.where({name: self.column(name)[i] for name in self.spec.columns}, self.run)

    def duration_ms(self) -> float | None:
        return self.t_last - self.t_first if self.t_first is not None else None


def side_from_rows(
    spec,
    rows: Iterable[tuple],
    *,
    include_volatile: bool = False,
    key: tuple[str, ...] | None = None,
    run: Any = None,
    load: Callable[..., Iterable[tuple]] | None = None,
) -> Side:
    """Read rows (columns as `fields(spec, include_volatile)`) into a Side of `run`.

    `key`: the columns aligning the decisions (default the spec's); two runs of different kinds
    are aligned by action alone (`BY_ACTION`). `load`: where the texts can be read again (then
    they are not kept); without it the side holds them.
    """
    names = fields(spec, include_volatile)
    at = {name: k for k, name in enumerate(names)}
    key = key or spec.key
    short = [name for name in spec.columns if name not in spec.compared]
    side = Side(spec=spec, include_volatile=include_volatile, run=run, load=load,
                columns={name: Coded() for name in short})
    if load is None:
        side.held = [[] for _ in text_fields(spec, include_volatile)[1:]]
    # the heatmap's finals, folded as the rows go by; runs of two kinds (aligned by action) have no common grid
    grid = spec.cells if spec.cells is not None and spec.cells.column in at and key != BY_ACTION else None
    rows = iter(rows)
    while chunk := list(islice(rows, CHUNK)):
        col = list(zip(*chunk))  # transposed: one tuple per column, at C speed
        side.seq.extend(col[0])
        side.action.extend(col[1])
        times = [t for t in col[at["t_ms"]] if t is not None]
        if times:
            side.t_first = times[0] if side.t_first is None else side.t_first
            side.t_last = times[-1]
        for name in short:
            side.columns[name].extend(col[at[name]])
        values = [vt if vt is not None else "{}" for vt in col[at["values_text"]]]
        if grid is not None:
            grid.finals(zip(col[1], col[at[grid.column]], values), side.finals)
        compared = [[v or "" for v in col[at[name]]] for name in spec.compared]
        ts = [col[at["ts_text"]]] if include_volatile else []
        if side.held is not None:
            for held, texts in zip(side.held, (values, *compared, *ts)):
                held += texts
        sig = values if include_volatile else _without_volatile(values)
        stamps = [[t or "" for t in ts[0]]] if ts else []
        side.sig.extend(map(hash, zip(*compared, sig, *stamps)) if compared or ts else map(hash, sig))
        if key != BY_ACTION:
            side.key.extend(_keys(*(col[at[name]] for name in key), action=key[0] == "action"))
    if key == BY_ACTION:
        side.key = side.action
    return side


def _keys(*columns, action: bool = False) -> list[str]:
    """One string per row joining the columns; None is kept apart from any text."""
    if action and len(columns) == 2:  # DynoAI's (action, cell): the hot path
        return [a + "\x1f" + c if c is not None else a + "\x1f\x00" for a, c in zip(*columns)]
    return ["\x1f".join("\x00" if v is None else str(v) for v in values) for values in zip(*columns)]


def _without_volatile(texts: list[str], chunk: int = 512) -> list[str]:
    """The values texts with volatile keys removed (canonical JSON where there were any)."""
    out = texts
    search = VOLATILE.search
    for start in range(0, len(texts), chunk):
        joined = "\n".join(texts[start : start + chunk])
        if not any(key in joined for key in QUOTED_KEYS) or not search(joined):
            continue  # most chunks of most runs: nothing to strip (substring tests are quicker)
        for i in range(start, min(start + chunk, len(texts))):
            if search(texts[i]):
                if out is texts:
                    out = list(texts)
                out[i] = canonical(strip_volatile(loads(texts[i])))
    return out
