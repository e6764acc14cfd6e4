"""A run as a trace (issue 16.1): session → round → agent turn → events, each LLM call a generation
under the turn it served, and the calls as spans on one lane per agent. A kind whose decisions are
spans with parents (OpenTelemetry, issue 22) gives its own tree instead: `TraceSpec.spans`.

A plain service over selector output, built in one pass over the run's decisions in file order. The
kind says how its events make turns (a `TraceSpec`, its profile's `trace`); nothing here knows a log
kind. A node is named by a decision's seq (`?node=<seq>`): a round by its opening event, a turn by
the event that defines it, an event or a call by its own.

A call's span runs from the event logged before it (what asked for it; events logged once a call has
returned do not count) to the call's own log time: derived from the log, which has no latency of its
own, as the LLM panel's "slowest calls" are.
"""
from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.db.models.fields.json import KT

from .charts import time_ticks
from .selectors import filtered_decisions
from .text import duration
from .text import plot_text as esc

SETUP, END = "Setup", "End"
SLOW_FACTOR = 2  # a call waited this many times the run's median wait: it stands out
REASON_CHARS = 140


@dataclass(frozen=True)
class Turn:
    """An action that makes a turn: its label, whose calls serve it (None: the event's own agent's;
    a word: the calls whose `agent_type` it is) and whether its call is logged before it (the event
    records the answer: a declaration) or after it (the event opens the turn: an adjudication)."""

    label: str
    whose: str | None = None
    subject: str = ""  # the agent a turn was about (an adjudication's player), when not its own
    call_first: bool = True


@dataclass(frozen=True)
class TraceSpec:
    """How a kind's events make a trace: `call` the action of an LLM call; `round_start` opens a round;
    `turns` the actions that make a turn; `closes` what ends a turn opened by its event; `after_call`
    what is logged once a call has returned (not what asked for it); `closing` the session's own
    events after its rounds; `type_labels` a turn's label when its call's agent_type is one of these
    (an enemy's declaration is its tactics). Fields of a call are dotted paths in `values`."""

    call: str
    round_start: str = ""
    turns: dict[str, Turn] = field(default_factory=dict)
    closes: tuple[str, ...] = ()
    after_call: tuple[str, ...] = ()
    closing: tuple[str, ...] = ()
    type_labels: dict[str, str] = field(default_factory=dict)
    # The kind's LlmSpec (viewer/tokens.py): where a call's model, tokens and agent_type are, and what
    # its `round` is called; read from there, so the tokens page and the trace never disagree.
    llm: Any = None
    # A kind of spans: `spans(raw) -> (span id, parent span id or "")` reads a decision's own record;
    # the tree is then the spans' own (roots at the top), a decision's `metric` its duration (ms), and
    # `calls` the further actions that are LLM calls. `flat`: the fields above are keys of `values`
    # with dots in them (`gen_ai.usage.input_tokens`), not paths.
    spans: Callable[[str], tuple[str, str]] | None = None
    calls: tuple[str, ...] = ()
    flat: bool = False
    # What the page says: the tree's shape, how the lanes' bars are measured, what `round` is.
    intro: str = "Session → round → agent turn → events; each LLM call sits under the turn it served."
    lanes_note: str = ("Each bar runs from the event before the call (the turn asking) to the call's own log time: "
                       "derived from the log, which has no latency of its own.")

    @property
    def model(self) -> str:
        return self.llm.model if self.llm else "model"

    @property
    def input(self) -> str:
        return self.llm.input if self.llm else "tokens.input"

    @property
    def output(self) -> str:
        return self.llm.output if self.llm else "tokens.output"

    @property
    def agent_type(self) -> str:
        return self.llm.agent_type if self.llm else "agent_type"

    @property
    def round_word(self) -> str:
        return self.llm.round_word if self.llm else "Round"


@dataclass(eq=False)
class Node:
    role: str  # "round" | "turn" | "event" | "call" | "span"
    seq: int
    label: str
    agent: str = ""
    action: str = ""
    reason: str = ""
    round: int | None = None
    t_ms: float | None = None
    children: list[Node] = field(default_factory=list)
    parent: Node | None = field(default=None, repr=False)
    # a call's
    model: str = ""
    agent_type: str = ""
    input: int = 0
    output: int = 0
    start_ms: float | None = None
    slow: bool = False
    # a turn's, while it is built
    whose: str | None = None
    subject: str = ""  # the agent a turn was about (an adjudication's player), when not its own
    open: bool = False  # <details open>: on the selected node's path
    selected: bool = False
    facts: list[tuple[str, str]] = field(default_factory=list)  # a span's own: name, duration, ids

    @property
    def wait_ms(self) -> float | None:
        if self.start_ms is None or self.t_ms is None:
            return None
        return self.t_ms - self.start_ms

    @property
    def wait(self) -> str:
        return duration(self.wait_ms) if self.wait_ms is not None else ""

    @property
    def calls(self) -> list[Node]:
        return [n for n in self.walk() if n.role == "call"]

    @property
    def tokens(self) -> int:
        return sum(c.input + c.output for c in self.calls)

    def add(self, child: Node) -> Node:
        child.parent = self
        self.children.append(child)
        return child

    def walk(self):
        for child in self.children:
            yield child
            yield from child.walk()


@dataclass
class Trace:
    rounds: list[Node]  # the setup, each round, the end: the tree's top level
    calls: list[Node]  # every call, in file order
    nodes: dict[int, Node]  # seq -> the deepest node of that seq (an event, a call)
    agents: list[str]  # agents of the calls, in order of first call

    def select(self, seq: int | None) -> Node | None:
        """Mark the node of `seq` selected and open its ancestors; None when no node has that seq."""
        node = self.nodes.get(seq) if seq is not None else None
        if node is None:
            return None
        node.selected = True
        up = node
        while up is not None:
            up.open = True
            up = up.parent
        return node


def _rows(run, spec: TraceSpec, *more: str):
    """The run's decisions in file order, a call's fields read in the database (not its prompt)."""
    def path(dotted: str) -> KT:
        return KT("values__" + (dotted if spec.flat else dotted.replace(".", "__")))

    return (
        filtered_decisions(run=run)
        .annotate(_model=path(spec.model), _in=path(spec.input), _out=path(spec.output),
                  _type=path(spec.agent_type))
        .values_list("seq", "action", "agent", "round", "t_ms", "reason", "_model", "_in", "_out", "_type", *more)
        .iterator(chunk_size=2000)
    )


def _int(text: Any) -> int:
    try:
        return max(int(float(text)), 0)
    except (TypeError, ValueError, OverflowError):
        return 0


def _short(text: str) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= REASON_CHARS else text[: REASON_CHARS - 1] + "…"


def build(*, run, spec: TraceSpec, names: dict | None = None) -> Trace:
    """The run's trace, in one pass over its decisions."""
    if spec.spans is not None:
        return assemble_spans(_rows(run, spec, "metric", "raw"), spec=spec)
    return assemble(_rows(run, spec), spec=spec, names=names)


SPAN_PATH = " › "  # how a span kind's reason writes the names of its ancestors before its own


def assemble_spans(rows, *, spec: TraceSpec) -> Trace:
    """The tree of spans: each under its parent (by `spec.spans(raw)`), a span whose parent is not in
    the run at the top, children in start order. `rows` as `assemble`'s, then duration (ms) and raw.
    A call's bar runs from its start to its end (`start_ms`, `t_ms`): the span's own times."""
    roots: list[Node] = []
    calls: list[Node] = []
    nodes: dict[int, Node] = {}
    agents: dict[str, None] = {}
    by_id: dict[str, Node] = {}
    pending: list[tuple[Node, str]] = []
    for seq, action, agent, round_, t_ms, reason, model, in_, out, _type, took, raw in rows:
        own, parent = spec.spans(raw)
        name = (reason or "").rpartition(SPAN_PATH)[2]
        node = Node("span", seq, name or action, agent=agent or "", action=action, round=round_, t_ms=t_ms)
        node.facts = [("Span", name), ("Duration", duration(took) if took is not None else ""), ("Span id", own)]
        if parent:
            node.facts.append(("Parent span", parent))
        if action == spec.call or action in spec.calls:
            node.role = "call"
            node.model, node.input, node.output = model or "", _int(in_), _int(out)
            if t_ms is not None:
                node.start_ms, node.t_ms = t_ms, t_ms + (took or 0.0)
            calls.append(node)
            agents.setdefault(agent or "unknown", None)
        nodes[seq] = node
        if own:
            by_id.setdefault(own, node)
        pending.append((node, parent))
    for node, parent in pending:  # a parent may start after its child (clock skew): link at the end
        up = by_id.get(parent) if parent else None
        if up is not None and up is not node and not _is_under(up, node):
            up.add(node)
        else:
            roots.append(node)
    _mark_slow(calls)
    return Trace(rounds=roots, calls=calls, nodes=nodes, agents=list(agents))


def _is_under(node: Node, ancestor: Node) -> bool:
    up = node
    while up is not None:
        if up is ancestor:
            return True
        up = up.parent
    return False


def assemble(rows, *, spec: TraceSpec, names: dict | None = None) -> Trace:
    """The trace of `rows` (seq, action, agent, round, t_ms, reason, model, input, output, agent_type)
    in file order. Pure: the tests give it rows of their own."""
    names = names or {}
    rounds: list[Node] = []
    calls: list[Node] = []
    nodes: dict[int, Node] = {}
    agents: dict[str, None] = {}
    current: Node | None = None  # the round (or setup, or end) events go into
    open_turn: Node | None = None  # a turn opened by its event, until what closes it
    waiting: list[Node] = []  # calls logged before the turn they serve, not yet claimed
    asked_ms: float | None = None  # the time of the last event that could have asked for a call

    def group(label: str, seq: int, round_: int | None) -> Node:
        node = Node("round", seq, label, round=round_)
        rounds.append(node)
        return node

    for seq, action, agent, round_, t_ms, reason, model, in_, out, agent_type in rows:
        agent = agent or ""
        event = Node("event", seq, action, agent=agent, action=action, reason=_short(reason), round=round_,
                     t_ms=t_ms)
        nodes[seq] = event
        if action == spec.round_start:
            current, open_turn, waiting = group(f"Round {round_}" if round_ is not None else "Round", seq, round_), None, []
            current.add(event)
        elif action in spec.closing and current is not None and current.label != END and any(
            r.label.startswith("Round") for r in rounds
        ):
            current, open_turn, waiting = group(END, seq, None), None, []
            current.add(event)
        else:
            if current is None:
                current = group(SETUP, seq, round_)
            if action == spec.call:
                event.role = "call"
                event.model, event.agent_type = model or "", agent_type or ""
                event.input, event.output = _int(in_), _int(out)
                event.start_ms = asked_ms
                calls.append(event)
                agents.setdefault(agent or "unknown", None)
                if open_turn is not None and _serves(open_turn, event):
                    open_turn.add(event)
                    _own(open_turn, event, spec)
                else:
                    # A turn of its own until the event it served claims it (a declaration, a synthesis).
                    turn = current.add(Node("turn", seq, "call", agent=agent, round=round_, t_ms=t_ms))
                    turn.add(event)
                    waiting.append(turn)
            elif action in spec.turns:
                rule = spec.turns[action]
                whose = rule.whose
                if rule.call_first:
                    turn = _claim(waiting, agent if whose is None else None, whose)
                    if turn is None:
                        turn = current.add(Node("turn", seq, rule.label, agent=agent, round=round_, t_ms=t_ms))
                    else:
                        turn.label = rule.label
                        _own(turn, turn.children[0], spec)
                    turn.seq, turn.action, turn.reason = seq, action, event.reason
                    turn.add(event)
                    if not turn.agent:
                        turn.agent = agent
                    open_turn = None
                else:
                    open_turn = current.add(Node("turn", seq, rule.label, agent="" if whose else agent,
                                                 action=action, reason=event.reason, round=round_, t_ms=t_ms,
                                                 whose=whose))
                    open_turn.add(event)
            elif open_turn is not None:
                open_turn.add(event)
                if action in spec.closes:
                    open_turn.reason = open_turn.reason or event.reason
                    if agent and agent != open_turn.agent:
                        open_turn.subject = agent  # whose action the DM adjudicated
                    open_turn = None
            else:
                current.add(event)
        if action not in spec.after_call and t_ms is not None:
            asked_ms = t_ms
    _mark_slow(calls)
    return Trace(rounds=rounds, calls=calls, nodes=nodes, agents=list(agents))


def _serves(turn: Node, call: Node) -> bool:
    if turn.whose is not None:
        return call.agent_type == turn.whose or (not call.agent_type and call.agent == turn.agent)
    return call.agent == turn.agent


def _own(turn: Node, call: Node, spec: TraceSpec) -> None:
    """The turn is its call's agent's; an agent type with a label of its own names the turn."""
    turn.agent = turn.agent or call.agent
    if call.agent_type in spec.type_labels:
        turn.label = spec.type_labels[call.agent_type]


def _claim(waiting: list[Node], agent: str | None, whose: str | None) -> Node | None:
    """The latest waiting call of the agent (or of the agent type `whose`), taken off the list."""
    for i in range(len(waiting) - 1, -1, -1):
        call = waiting[i].children[0]
        if (whose is not None and call.agent_type == whose) or (agent and call.agent == agent):
            return waiting.pop(i)
    return None


def _mark_slow(calls: list[Node]) -> None:
    waits = [c.wait_ms for c in calls if c.wait_ms is not None]
    if len(waits) < 3:
        return
    bar = SLOW_FACTOR * statistics.median(waits)
    for c in calls:
        c.slow = c.wait_ms is not None and c.wait_ms > bar


def _turn_text(turn: Node | None, names: dict) -> str:
    if turn is None:
        return ""
    return f"{turn.label} of {names.get(turn.subject) or turn.subject}" if turn.subject else turn.label


# -- the lanes: one per agent, a call a span --------------------------------------------------------
LANE_HEIGHT = 34


def lanes_figure(trace: Trace, *, names: dict | None = None, link: str = "?node=") -> dict:
    """A plotly figure: one lane per agent, each call a bar from when its turn asked to its log time.
    Hover names the agent, the model and the tokens; `customdata` is the node's URL."""
    names = names or {}
    spans = [c for c in trace.calls if c.wait_ms is not None]
    lanes = [a for a in trace.agents if any((c.agent or "unknown") == a for c in spans)]

    def lane(agent: str) -> str:
        name = names.get(agent)
        return esc(f"{agent} · {name}" if isinstance(name, str) and name and name != agent else agent)

    traces = []
    for slow in (False, True):
        group = [c for c in spans if c.slow == slow]
        if not group:
            continue
        traces.append({
            "type": "bar", "orientation": "h", "name": "slow call" if slow else "call",
            "base": [round(c.start_ms, 3) for c in group],
            "x": [round(max(c.wait_ms, 1.0), 3) for c in group],
            "y": [lane(c.agent or "unknown") for c in group],
            "customdata": [f"{link}{c.seq}" for c in group],
            "text": [
                f"<b>{lane(c.agent or 'unknown')}</b> · #{c.seq}<br>{esc(_turn_text(c.parent, names))}"
                f"{' · round ' + str(c.round) if c.round is not None else ''}<br>"
                f"model {esc(c.model or 'unknown')}<br>tokens {c.input:,} in · {c.output:,} out<br>"
                + (f"took {esc(c.wait)}" if c.facts else f"waited {esc(c.wait)} (derived from the log)")
                for c in group
            ],
            "hovertemplate": "%{text}<extra></extra>",
            "textposition": "none",
            "marker": {"color": "#c2410c" if slow else "#4f6bed", "line": {"width": 0}},
        })
    xs = [c.start_ms for c in spans] + [c.t_ms for c in spans]
    xaxis = {"title": {"text": "time since the run's first event (from the log's times)"}, "zeroline": False}
    if xs:
        xaxis.update(time_ticks(min(xs), max(xs)))
    return {
        "data": traces,
        "layout": {
            "height": max(150, 80 + LANE_HEIGHT * len(lanes)),
            "margin": {"l": 150, "r": 16, "t": 8, "b": 46},
            "barmode": "overlay",
            "bargap": 0.35,
            "xaxis": xaxis,
            "yaxis": {"type": "category", "categoryorder": "array", "categoryarray": [lane(a) for a in reversed(lanes)],
                      "fixedrange": True, "automargin": True},
            "showlegend": False,
            "hovermode": "closest",
            "plot_bgcolor": "#fff",
            "paper_bgcolor": "#fff",
        },
        "config": {"displaylogo": False, "responsive": True, "doubleClick": "autosize", "showTips": False,
                   "modeBarButtonsToRemove": ["lasso2d", "select2d", "toImage"]},
        "meta": {"calls": len(spans), "slow": sum(c.slow for c in spans)},
    }
