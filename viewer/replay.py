"""Step-through replay: the state of a run as of any step. Plain Python: no Django, no ORM, no request.

A decision is a dict (or any object with the normalized decision's attributes: seq, t_ms, action,
reason, values, cell, rpm, kpa, cylinder, rpm_index, kpa_index, round, agent). Step N is the state
after folding the first N decisions of the (filtered) run: step 0 is the empty state, step N
shows decision N (1-based) as the current one.

Per log kind a Reducer folds one decision into a state (a JSON-able dict). `build_index` makes one
pass and keeps a Checkpoint every `every` decisions plus the scrubber's markers; a Replay then
answers `state_at(step)` from the nearest checkpoint at or before the step and at most `every`
further decisions, fetched through a `load(after_seq, limit)` callable. The view layer stores the
checkpoints in the database and loads decisions through the selectors; tests use MemoryReplay.
"""
from __future__ import annotations

import bisect
import copy
import html
import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson

CHECKPOINT_EVERY = 1000
MARKER_BINS = 400  # at most this many marker positions per category on the scrubber
# Bump when a reducer's state changes shape: stored checkpoints of older versions are then rebuilt.
REDUCER_VERSION = 2

FIELDS = ("seq", "ts", "t_ms", "action", "reason", "values", "cell", "rpm", "kpa", "cylinder",
          "rpm_index", "kpa_index", "round", "agent", "metric")

# DynoAI's bins (dynoai/constants.py): cells written as bin values keep them; index-only cells
# (GRADIENT_LIMITING, CLAMPING_APPLIED) are placed with these (FORMATS.md 1.3).
RPM_BINS = (1500, 2000, 2500, 3000, 3500, 4000, 4500, 5000, 5500, 6000, 6500)
KPA_BINS = (35, 50, 65, 80, 95)


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
        return _finite(copy.deepcopy(state))


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def _number(value: Any) -> float | int | None:
    """A finite int or float, else None (bools are not numbers here)."""
    kind = type(value)
    if kind is float:
        return value if math.isfinite(value) else None
    if kind is int:
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):  # subclasses
        return _number(float(value)) if isinstance(value, float) else int(value)
    return None


def _dict(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def _text(value: Any) -> str:
    return "" if value is None else value if isinstance(value, str) else str(value)


def _bump(counter: dict, key: str, by: int = 1) -> None:
    counter[key] = counter.get(key, 0) + by


# --- reducers --------------------------------------------------------------------------------


class Reducer:
    """Counts by action; the base of the per-kind reducers and the one used for unknown kinds."""

    kind = "generic"

    def initial(self) -> dict:
        return {"counts": {}, "round": None}

    def fold(self, state: dict, d: dict) -> None:
        _bump(state["counts"], d["action"])

    def marker(self, d: dict) -> str | None:
        """The scrubber marker category of a notable decision, or None."""
        return None


def cell_label(value: Any, index: Any, bins: tuple[int, ...]) -> str | None:
    """A grid row/column label: the bin value as written, else the bin of the index, else "[i]"."""
    if _number(value) is not None:
        return _text(int(value) if float(value).is_integer() else value)
    if isinstance(index, int) and not isinstance(index, bool):
        return str(bins[index]) if 0 <= index < len(bins) else f"[{index}]"
    return None


class DynoReducer(Reducer):
    """DynoAI: the cells touched so far, counts by action, the current stage."""

    kind = "dynoai"
    STAGES = {
        "AFR_CORRECTION": "AFR correction",
        "SMOOTHING_START": "smoothing",
        "GRADIENT_LIMITING": "smoothing",
        "CLAMPING_START": "clamping",
        "CLAMPING_APPLIED": "clamping",
        "ANOMALY_DETECTION_START": "anomaly detection",
        "ANOMALY_DETECTED": "anomaly detection",
        "CONFIDENCE_SCORING_START": "confidence scoring",
        "CONFIDENCE_SCORING_COMPLETE": "confidence scoring",
    }
    MARKERS = {"ANOMALY_DETECTED": "anomaly", "CLAMPING_APPLIED": "clamp"}

    def initial(self) -> dict:
        return {"counts": {}, "stage": None, "cells": {}, "confidence": None, "round": None}

    def fold(self, state: dict, d: dict) -> None:
        action = d["action"]
        _bump(state["counts"], action)
        state["stage"] = self.STAGES.get(action, state["stage"])
        values = _dict(d.get("values"))
        if action == "AFR_CORRECTION":
            cell = self._cell(state, d.get("rpm"), d.get("kpa"), None, None)
            if cell is not None:
                cell["afr_error_pct"] = _number(values.get("afr_error_pct"))
                cell["weight"] = _number(values.get("weight"))
                cell["cylinder"] = d.get("cylinder")
                cell["samples"] = cell.get("samples", 0) + 1
        elif action == "GRADIENT_LIMITING":
            cell = self._cell(state, None, None, d.get("rpm_index"), d.get("kpa_index"))
            if cell is not None:
                for key in ("result", "gradient", "original", "smoothed"):
                    cell[key] = _number(values.get(key))
        elif action == "ANOMALY_DETECTION_START":
            # A new detection pass: the flags of the last one no longer describe the grid.
            for cell in state["cells"].values():
                cell.pop("anomaly", None)
                cell.pop("anomaly_score", None)
        elif action == "CLAMPING_APPLIED":
            cells = values.get("cells")
            for item in cells if isinstance(cells, list) else ():
                item = _dict(item)
                cell = self._cell(state, None, None, item.get("rpm_index"), item.get("kpa_index"))
                if cell is not None:
                    cell["clamped"] = _number(item.get("clamped"))
                    cell["unclamped"] = _number(item.get("original"))
        elif action == "ANOMALY_DETECTED":
            cell = self._cell(state, d.get("rpm"), d.get("kpa"), d.get("rpm_index"), d.get("kpa_index"))
            if cell is not None:
                cell["anomaly"] = True
                cell["anomaly_score"] = _number(values.get("score"))
        elif action == "CONFIDENCE_SCORING_COMPLETE":
            state["confidence"] = {k: values.get(k) for k in ("overall_score", "letter_grade")}

    def __init__(self):
        self._keys: dict[tuple, tuple | None] = {}  # (rpm, kpa, rpm_index, kpa_index) -> (key, row, col)

    def _cell(self, state: dict, rpm, kpa, rpm_index, kpa_index) -> dict | None:
        where = (rpm, kpa, rpm_index, kpa_index)
        try:
            found = self._keys.get(where, False)
        except TypeError:  # a list or dict where a coordinate should be
            where, found = None, False
        if found is False:
            row = cell_label(rpm, rpm_index, RPM_BINS)
            col = cell_label(kpa, kpa_index, KPA_BINS)
            found = None if row is None or col is None else (f"{row}|{col}", row, col)
            if where is not None and len(self._keys) < 100_000:
                self._keys[where] = found
        if found is None:
            return None
        key, row, col = found
        cell = state["cells"].get(key)
        if cell is None:
            cell = state["cells"][key] = {"rpm": row, "kpa": col}
        return cell

    def marker(self, d: dict) -> str | None:
        return self.MARKERS.get(d["action"])


CHARACTER_FIELDS = ("character_name", "health", "max_health", "wounds", "void_score", "soulcredit",
                    "position", "conditions", "is_defeated")


def parse_clock(text: Any) -> tuple[Any, Any]:
    """"3/8" -> (3, 8); anything else -> (text, None)."""
    if isinstance(text, str) and "/" in text:
        cur, _, top = text.partition("/")
        try:
            return int(cur), int(top)
        except ValueError:
            pass
    return text, None


class SessionReducer(Reducer):
    """Multi-agent sessions: round, characters, enemies present, clocks, LLM use per agent."""

    kind = "session"
    HANDLERS = {name: "_" + name for name in (
        "character_state", "enemy_spawn", "enemy_defeat", "combat_action", "clock_spawn", "action_resolution",
        "llm_call", "session_error", "session_end")}

    def initial(self) -> dict:
        return {"counts": {}, "round": None, "characters": {}, "enemies": {}, "defeated": [], "clocks": {},
                "agents": {}, "last_roll": None, "errors": 0, "ended": False}

    def fold(self, state: dict, d: dict) -> None:
        action = d["action"]
        _bump(state["counts"], action)
        if d.get("round") is not None:
            state["round"] = d["round"]
        v = _dict(d.get("values"))
        handler = self.HANDLERS.get(action)
        if handler is not None:
            getattr(self, handler)(state, v, d)

    def _character_state(self, state, v, d):
        key = _text(v.get("character_id") or v.get("character_name"))
        state["characters"][key] = {f: v.get(f) for f in CHARACTER_FIELDS}

    def _enemy_spawn(self, state, v, d):
        stats = _dict(v.get("stats"))
        key = _text(v.get("enemy_id") or v.get("enemy_name"))
        state["enemies"][key] = {
            "name": _text(v.get("enemy_name")), "template": _text(v.get("template")),
            "health": stats.get("health"), "max_health": stats.get("max_health"),
            "position": v.get("position"), "count": v.get("count", stats.get("unit_count")),
            "status": None, "since_round": d.get("round"),
        }

    def _enemy_defeat(self, state, v, d):
        key = _text(v.get("enemy_id") or v.get("enemy_name"))
        gone = state["enemies"].pop(key, None) or {}
        state["defeated"].append({"id": key, "name": _text(v.get("enemy_name") or gone.get("name")),
                                  "reason": _text(v.get("defeat_reason")), "round": d.get("round")})

    def _combat_action(self, state, v, d):
        key = _text(_dict(v.get("defender")).get("id"))
        after = v.get("defender_state_after")
        enemy = state["enemies"].get(key)
        if enemy is not None and isinstance(after, dict):
            for f in ("health", "max_health"):
                if after.get(f) is not None:
                    enemy[f] = after[f]
            enemy["status"] = after.get("status")

    def _clock_spawn(self, state, v, d):
        name = _text(v.get("clock_name"))
        state["clocks"][name] = {"cur": v.get("current_ticks", 0), "max": v.get("max_ticks"),
                                 "description": _text(v.get("description"))}

    def _action_resolution(self, state, v, d):
        clocks = v.get("clocks")
        if isinstance(clocks, dict):
            # Each resolution lists the scene's clocks as they now stand; a scene pivot drops old ones.
            old = state["clocks"]
            state["clocks"] = {}
            for name, text in clocks.items():
                cur, top = parse_clock(text)
                state["clocks"][name] = {"cur": cur, "max": top,
                                         "description": _dict(old.get(name)).get("description", "")}
        roll = _dict(v.get("roll"))
        state["last_roll"] = {
            "agent": _text(v.get("agent")), "action": _text(v.get("action"))[:200],
            **{k: roll.get(k) for k in ("d20", "total", "dc", "margin", "tier", "success")},
        }

    def _llm_call(self, state, v, d):
        key = _text(v.get("agent_id") or d.get("agent") or "unknown")
        tokens = _dict(v.get("tokens"))
        agent = state["agents"].setdefault(key, {"type": _text(v.get("agent_type")), "calls": 0,
                                                 "input": 0, "output": 0})
        agent["calls"] += 1
        for f in ("input", "output"):
            n = _number(tokens.get(f))
            if n is not None:
                agent[f] += n

    def _session_error(self, state, v, d):
        state["errors"] += 1

    def _session_end(self, state, v, d):
        state["ended"] = True
        clocks = _dict(_dict(v.get("final_state")).get("scene_clocks"))
        for name, c in clocks.items():
            c = _dict(c)
            clock = state["clocks"].setdefault(name, {"description": ""})
            clock["cur"], clock["max"] = c.get("current"), c.get("maximum")

    def marker(self, d: dict) -> str | None:
        action = d["action"]
        if action == "action_resolution":
            roll = _dict(_dict(d.get("values")).get("roll"))
            return "failed roll" if roll.get("success") is False else None
        if action in ("session_error", "pydantic_validation_failure"):
            return "error"
        if action == "enemy_defeat":
            return "defeat"
        return None


class StudyReducer(Reducer):
    """Learning Observer study logs: events by type, keystrokes, current document, active time."""

    kind = "study"
    IDLE_MS = 60_000  # a gap longer than this is idle, not active time

    def initial(self) -> dict:
        return {"counts": {}, "round": None, "keystrokes": 0, "document": None, "documents": {},
                "active_ms": 0.0, "last_t_ms": None, "user": None}

    def fold(self, state: dict, d: dict) -> None:
        action = d["action"]
        _bump(state["counts"], action)
        v = _dict(d.get("values"))
        if action == "keystroke":
            state["keystrokes"] += 1
        obj = _dict(v.get("object"))
        doc_id = _text(obj.get("id") or v.get("doc_id"))
        if doc_id:
            title = _text(obj.get("title")) or _dict(state["documents"].get(doc_id)).get("title", "")
            state["document"] = {"id": doc_id, "title": title}
            doc = state["documents"].setdefault(doc_id, {"title": title, "events": 0})
            doc["title"] = title
            doc["events"] += 1
        t = d.get("t_ms")
        if t is not None:
            last = state["last_t_ms"]
            if last is not None and 0 < t - last <= self.IDLE_MS:
                state["active_ms"] += t - last
            state["last_t_ms"] = t if last is None else max(last, t)
        if d.get("agent"):
            state["user"] = d["agent"]


REDUCERS: dict[str, type[Reducer]] = {"dynoai": DynoReducer, "session": SessionReducer, "study": StudyReducer}


def reducer_for(kind: str) -> Reducer:
    return REDUCERS.get(kind, Reducer)()


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

    kind: str
    every: int
    total: int = 0
    t_first: float | None = None
    t_last: float | None = None
    markers: list = field(default_factory=list)  # [step, category, count]: the first step of each bin
    checkpoints: list[Checkpoint] = field(default_factory=list)


def build_index(kind: str, decisions: Iterable, *, every: int = CHECKPOINT_EVERY, total: int | None = None,
                on_checkpoint: Callable[[Checkpoint], None] | None = None) -> Index:
    """One pass over the decisions, in order. With `on_checkpoint`, checkpoints are handed over as
    they are made instead of being kept (a 1M-decision run then needs no list of 1,000 states)."""
    reducer = reducer_for(kind)
    index = Index(kind=kind, every=every)
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

    def __init__(self, *, kind: str, total: int, every: int, load: Loader,
                 checkpoint_before: Callable[[int], Checkpoint],
                 checkpoint_by_time: Callable[[float], Checkpoint] | None = None):
        self.kind = kind
        self.total = total
        self.every = every
        self.reducer = reducer_for(kind)
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

    def __init__(self, kind: str, decisions: Iterable, *, every: int = CHECKPOINT_EVERY):
        self.decisions = [as_dict(d) for d in decisions]
        self.index = build_index(kind, self.decisions, every=every)
        self._position = {d["seq"]: i for i, d in enumerate(self.decisions)}
        steps = [c.step for c in self.index.checkpoints]
        times = [c.t_ms if c.t_ms is not None else -math.inf for c in self.index.checkpoints]
        cps = self.index.checkpoints

        def load(after, limit):
            begin = 0 if after is None else self._position[after] + 1
            return self.decisions[begin : begin + limit]

        super().__init__(
            kind=kind, total=self.index.total, every=every, load=load,
            checkpoint_before=lambda step: cps[bisect.bisect_right(steps, step) - 1],
            checkpoint_by_time=lambda t: cps[max(0, bisect.bisect_right(times, t) - 1)],
        )


def step_by_step(kind: str, decisions: Iterable, steps: int) -> dict:
    """The state after folding the first `steps` decisions one at a time (the reference for tests)."""
    reducer = reducer_for(kind)
    state = reducer.initial()
    for i, d in enumerate(decisions):
        if i >= steps:
            break
        reducer.fold(state, as_dict(d))
    return copy_state(state)


# --- presentation helpers (pure) -------------------------------------------------------------

LAYERS = {
    "afr_error_pct": "AFR error %",
    "result": "Gradient-limited result",
    "clamped": "Clamped value",
    "anomaly_score": "Anomaly score",
    "weight": "Weight",
}


def _axis(labels: Iterable[str], bins: tuple[int, ...]) -> list[str]:
    """Row/column labels: every standard bin, plus any other label seen, in numeric order."""
    seen = set(labels) | {str(b) for b in bins}

    def key(label: str):
        try:
            return (0, float(label.strip("[]")) if not label.startswith("[") else math.inf, label)
        except ValueError:
            return (1, math.inf, label)

    return sorted(seen, key=key)


def dyno_grid(state: dict) -> dict:
    """The heatmap data of a DynoAI state: axes, one z matrix per layer, anomaly flags, hover text.

    Hover text is HTML-escaped here: plotly renders it as HTML."""
    cells = state.get("cells", {})
    rows = _axis((c["rpm"] for c in cells.values()), RPM_BINS)
    cols = _axis((c["kpa"] for c in cells.values()), KPA_BINS)
    z = {layer: [[None] * len(cols) for _ in rows] for layer in LAYERS}
    text = [[""] * len(cols) for _ in rows]
    anomalies = []
    row_at = {r: i for i, r in enumerate(rows)}
    col_at = {c: j for j, c in enumerate(cols)}
    for cell in cells.values():
        i, j = row_at[cell["rpm"]], col_at[cell["kpa"]]
        for layer in LAYERS:
            z[layer][i][j] = cell.get(layer)
        if cell.get("anomaly"):
            anomalies.append([i, j])
        text[i][j] = "<br>".join(_hover_lines(cell))
    return {"rows": rows, "cols": cols, "z": z, "text": text, "anomalies": anomalies}


def _hover_lines(cell: dict) -> list[str]:
    e = html.escape
    lines = [f"RPM {e(cell['rpm'])} · kPa {e(cell['kpa'])}"]
    if cell.get("afr_error_pct") is not None:
        lines.append(f"AFR error {cell['afr_error_pct']:+.2f}% · weight {_fmt(cell.get('weight'))}"
                     f" ({e(_text(cell.get('cylinder')))}, {cell.get('samples', 0)} samples)")
    if cell.get("result") is not None:
        lines.append(f"gradient-limited {_fmt(cell.get('original'))} → {_fmt(cell['result'])}"
                     f" (gradient {_fmt(cell.get('gradient'))})")
    if cell.get("clamped") is not None:
        lines.append(f"clamped {_fmt(cell.get('unclamped'))} → {_fmt(cell['clamped'])}")
    if cell.get("anomaly"):
        lines.append(f"⚠ anomaly, score {_fmt(cell.get('anomaly_score'))}")
    return lines


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"
    return html.escape(_text(value)) if value is not None else "–"


def counts_sorted(counts: dict) -> list[tuple[str, int]]:
    """Counts by action, most frequent first; ties keep first-appearance order."""
    return sorted(counts.items(), key=lambda kv: -kv[1])
