"""Step-through replay: the state of a run as of any step. Plain Python: no Django, no ORM, no request.

A decision is a dict (or any object with the normalized decision's attributes: seq, t_ms, action,
reason, values, cell, rpm, kpa, cylinder, rpm_index, kpa_index, round, agent). Step N is the state
after folding the first N decisions of the (filtered) run: step 0 is the empty state, step N
shows decision N (1-based) as the current one.

A Reducer folds one decision into a state (a JSON-able dict); each log kind brings its own in a
ReplaySpec (built in viewer/kinds/<kind>.py; this module never asks which kind a run is).
`build_index` makes one pass and keeps a Checkpoint every `every` decisions plus the scrubber's
markers; a Replay then answers `state_at(step)` from the nearest checkpoint at or before the step
and at most `every` further decisions, fetched through a `load(after_seq, limit)` callable.
viewer/replay_store.py stores the checkpoints in the database and loads decisions through the
selectors; tests use MemoryReplay.
"""
from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson

from .readers.base import json_safe  # NaN and infinities become None, for the checkpoints' JSON column

CHECKPOINT_EVERY = 1000
MARKER_BINS = 400  # at most this many marker positions per category on the scrubber
# Bump when a reducer's state changes shape: stored checkpoints of older versions are then rebuilt.
REDUCER_VERSION = 6  # 6: study bursts; 5: study state rebuilds each document's text and writing process (4: session v1.2 states)

FIELDS = ("seq", "ts", "t_ms", "action", "reason", "values", "cell", "rpm", "kpa", "cylinder",
          "rpm_index", "kpa_index", "round", "agent", "metric")


def as_dict(d: Any) -> dict:
    """A decision as a dict of the normalized fields (missing ones are None)."""
    if isinstance(d, dict):
        return d
    return {name: getattr(d, name, None) for name in FIELDS}


def copy_state(state: dict) -> dict:
    """A deep, JSON-safe copy (NaN and infinities become None, as a JSON column needs)."""
    try:
        return orjson.loads(orjson.dumps(state))
    except TypeError:  # integers beyond 64 bits: slow path
        return json_safe(state)  # new dicts and lists all the way down


# Small readers of hostile values, for the reducers (the replay sections of viewer/kinds/*.py).


def number(value: Any) -> float | int | None:
    """A finite int or float, else None (bools are not numbers here)."""
    cls = type(value)
    if cls is float:
        return value if math.isfinite(value) else None
    if cls is int:
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):  # subclasses
        return number(float(value)) if isinstance(value, float) else int(value)
    return None


def mapping(value: Any) -> dict:
    """`value` if it is a dict, else an empty one."""
    return value if isinstance(value, dict) else {}


def text(value: Any) -> str:
    return "" if value is None else value if isinstance(value, str) else str(value)


def bump(counter: dict, key: str, by: int = 1) -> None:
    counter[key] = counter.get(key, 0) + by


# --- what a kind brings ------------------------------------------------------------------------


class Reducer:
    """Counts by action: the base of the kinds' reducers, and the reducer of a kind without one."""

    def initial(self) -> dict:
        return {"counts": {}, "round": None}

    def fold(self, state: dict, d: dict) -> None:
        bump(state["counts"], d["action"])

    def marker(self, d: dict) -> str | None:
        """The scrubber marker category of a notable decision (one of the spec's `markers`), or None."""
        return None


@dataclass(frozen=True)
class ReplaySpec:
    """What a kind's replay needs beyond this engine; each kind module builds one (its REPLAY)."""

    reducer: Callable[[], Reducer] = Reducer  # makes a fresh reducer
    # A template holding the partials "state" (the state panel's body) and "filters" (the kind's
    # own filter inputs beside action and q, named in `filters`).
    template: str = "viewer/kinds/generic_replay.html"
    filters: tuple[str, ...] = ()
    context: Callable[[dict], dict] | None = None  # state -> what the "state" partial reads
    # The state's heatmap: state -> {rows, cols, z: {layer: rows x cols}, text, anomalies}; its layers.
    grid: Callable[[dict], dict] | None = None
    layers: tuple[tuple[str, str], ...] = ()  # (key in z, label)
    markers: tuple[str, ...] = ()  # the marker categories its reducer gives, in legend order
    rounds: bool = False  # decisions come in rounds: rows and the clock show them; export to a round


GENERIC = ReplaySpec()


def reducer_for(spec: ReplaySpec | None) -> Reducer:
    """A fresh reducer of the spec (the generic one for None)."""
    return (spec or GENERIC).reducer()


# --- checkpoints and the replay engine -------------------------------------------------------


@dataclass(slots=True)
class Checkpoint:
    step: int  # decisions folded into `state`
    seq: int | None  # seq of the last folded decision: the cursor for the rest (None at step 0)
    t_ms: float | None  # the latest t_ms folded so far (a running maximum, for jumps by time)
    state: dict


@dataclass
class Index:
    """What one pass over a run learns: its length, times, scrubber markers and the checkpoints."""

    every: int
    total: int = 0
    t_first: float | None = None
    t_last: float | None = None
    markers: list = field(default_factory=list)  # [step, category, count]: the first step of each bin
    checkpoints: list[Checkpoint] = field(default_factory=list)


def build_index(reducer: Reducer, decisions: Iterable, *, every: int = CHECKPOINT_EVERY,
                on_checkpoint: Callable[[Checkpoint], None] | None = None) -> Index:
    """One pass over the decisions, in order. With `on_checkpoint`, checkpoints are handed over as
    they are made instead of being kept (a 1M-decision run then needs no list of 1,000 states)."""
    index = Index(every=every)
    state = reducer.initial()
    emit = on_checkpoint or index.checkpoints.append
    emit(Checkpoint(0, None, None, copy_state(state)))
    notable: list[tuple[int, str]] = []
    step, seq, t_max = 0, None, None
    for d in decisions:
        d = as_dict(d)
        reducer.fold(state, d)
        step += 1
        seq = d["seq"]
        t = d.get("t_ms")
        if t is not None:
            if index.t_first is None:
                index.t_first = t
            t_max = t if t_max is None else max(t_max, t)
        category = reducer.marker(d)
        if category:
            notable.append((step, category))
        if step % every == 0:
            emit(Checkpoint(step, seq, t_max, copy_state(state)))
    index.total = step
    index.t_last = t_max
    index.markers = bin_markers(notable, step)
    return index


def bin_markers(notable: list[tuple[int, str]], total: int, bins: int = MARKER_BINS) -> list:
    """[[step, category, count]]: per category, the first notable step of each of `bins` equal spans."""
    out: dict[tuple[str, int], list] = {}
    width = max(1, math.ceil(total / bins)) if total else 1
    for step, category in notable:
        key = (category, (step - 1) // width)
        if key in out:
            out[key][2] += 1
        else:
            out[key] = [step, category, 1]
    return sorted(out.values())


Loader = Callable[[int | None, int], Iterable]  # (after this seq, at most this many) -> decisions in order


@dataclass(slots=True)
class Frame:
    """The state as of `step`, with the decision just folded (None at step 0)."""

    step: int
    decision: dict | None
    state: dict


class Replay:
    """State at any step from checkpoints plus at most `every` folds.

    `checkpoint_before(step)` gives the latest checkpoint at or before `step`;
    `checkpoint_by_time(t_ms)` the latest whose t_ms is at most t_ms (or step 0's);
    `load(after_seq, limit)` the decisions after a seq (after=None: from the start).
    """

    def __init__(self, *, reducer: Reducer, total: int, every: int, load: Loader,
                 checkpoint_before: Callable[[int], Checkpoint],
                 checkpoint_by_time: Callable[[float], Checkpoint] | None = None):
        self.reducer = reducer
        self.total = total
        self.every = every
        self._load = load
        self._checkpoint_before = checkpoint_before
        self._checkpoint_by_time = checkpoint_by_time

    def clamp(self, step: int) -> int:
        return max(0, min(self.total, step))

    def _rows(self, checkpoint: Checkpoint, count: int) -> Iterator[dict]:
        if count <= 0:
            return iter(())
        return (as_dict(d) for d in self._load(checkpoint.seq, count))

    def state_at(self, step: int) -> dict:
        return self.frame(step).state

    def frame(self, step: int) -> Frame:
        return self.frames(step, 1)[0]

    def frames(self, start: int, count: int, stride: int = 1) -> list[Frame]:
        """States at start, start+stride, ... (count of them, within the run): one load from the
        checkpoint at or before `start`, folding up to the last frame."""
        start = self.clamp(start)
        stride = max(1, stride)
        wanted = [s for s in range(start, start + count * stride, stride) if s <= self.total][:count]
        wanted = wanted or [start]
        # From the checkpoint before start-1, so that the decision at `start` is folded (and known).
        cp = self._checkpoint_before(max(0, start - 1))
        state = copy_state(cp.state)
        step, last = cp.step, None
        out = []
        pending = iter(wanted)
        target = next(pending)
        if step == target:
            out.append(Frame(step, None, copy_state(state)))
            target = next(pending, None)
        if target is not None:
            for d in self._rows(cp, wanted[-1] - step):
                self.reducer.fold(state, d)
                step += 1
                last = d
                if step == target:
                    out.append(Frame(step, last, copy_state(state)))
                    target = next(pending, None)
                    if target is None:
                        break
        return out

    def window(self, step: int, before: int, after: int) -> tuple[Frame, list[tuple[int, dict]]]:
        """The frame at `step` and the (step, decision) rows from step-before to step+after, from
        one load: the checkpoint at or before the first row, then at most every+before+after rows."""
        step = self.clamp(step)
        first, last = max(1, step - before), min(self.total, step + after)
        cp = self._checkpoint_before(min(step, first - 1))
        state = copy_state(cp.state)
        n, current, rows = cp.step, None, []
        for d in self._rows(cp, max(step, last) - n):
            n += 1
            if n <= step:
                self.reducer.fold(state, d)
                current = d
            if n >= first:
                rows.append((n, d))
        return Frame(step, current, state), rows

    def rows(self, first: int, last: int) -> list[tuple[int, dict]]:
        """(step, decision) for steps first..last (1-based, inclusive), with no folding."""
        first, last = max(1, first), min(self.total, last)
        if first > last:
            return []
        cp = self._checkpoint_before(first - 1)
        out = []
        step = cp.step
        for d in self._rows(cp, last - cp.step):
            step += 1
            if step >= first:
                out.append((step, d))
        return out

    def step_at_time(self, t_ms: float) -> int:
        """The last step whose decision (and every one before it) is at or before t_ms."""
        if self._checkpoint_by_time is None:
            raise ValueError("this replay has no time index")
        cp = self._checkpoint_by_time(t_ms)
        step = cp.step
        t_max = cp.t_ms
        for d in self._rows(cp, min(self.every, self.total - step)):
            t = d.get("t_ms")
            if t is not None:
                t_max = t if t_max is None else max(t_max, t)
            if t_max is not None and t_max > t_ms:
                break
            step += 1
        return step


class MemoryReplay(Replay):
    """A replay over a list of decisions held in memory (tests, small runs, the command line)."""

    def __init__(self, reducer: Reducer, decisions: Iterable, *, every: int = CHECKPOINT_EVERY):
        self.decisions = [as_dict(d) for d in decisions]
        self.index = build_index(reducer, self.decisions, every=every)
        self._position = {d["seq"]: i for i, d in enumerate(self.decisions)}
        steps = [c.step for c in self.index.checkpoints]
        times = [c.t_ms if c.t_ms is not None else -math.inf for c in self.index.checkpoints]
        cps = self.index.checkpoints

        def load(after, limit):
            begin = 0 if after is None else self._position[after] + 1
            return self.decisions[begin : begin + limit]

        super().__init__(
            reducer=reducer, total=self.index.total, every=every, load=load,
            checkpoint_before=lambda step: cps[bisect.bisect_right(steps, step) - 1],
            checkpoint_by_time=lambda t: cps[max(0, bisect.bisect_right(times, t) - 1)],
        )


def step_by_step(reducer: Reducer, decisions: Iterable, steps: int) -> dict:
    """The state after folding the first `steps` decisions one at a time (the reference for tests)."""
    state = reducer.initial()
    for i, d in enumerate(decisions):
        if i >= steps:
            break
        reducer.fold(state, as_dict(d))
    return copy_state(state)


# --- presentation helpers (pure) -------------------------------------------------------------


def counts_sorted(counts: dict) -> list[tuple[str, int]]:
    """Counts by action, most frequent first; ties keep first-appearance order."""
    return sorted(counts.items(), key=lambda kv: -kv[1])


def pct(value: Any, top: Any) -> float | None:
    """value / top as a percentage within 0..100 (a bar's width), or None."""
    try:
        return max(0.0, min(100.0, 100.0 * float(value) / float(top))) if top else None
    except (TypeError, ValueError):
        return None
