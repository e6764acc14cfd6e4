"""What makes a log kind a kind, registered once (STYLE.md 13).

Each module here (`dynoai`, `session`, `study`) builds one Profile and registers it. Views, the
API and commands call `profile(run)` once and hand the pieces to the engines (facets, summary,
cells, replay, diff, exports, display), which take them as arguments and never import this
package. A new log kind is one reader and one module that calls `register(Profile(...))`.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Column:
    """A kind's own column in the decision table: header, the Row attribute it shows, its CSS class."""

    label: str
    field: str
    css: str = ""

    @property
    def numeric(self) -> bool:
        return "num" in self.css.split()


@dataclass(frozen=True)
class Words:
    """What the kind's pages call things."""

    action: str = "Event"  # the `action` column: DynoAI's action, a session's event type...
    agent: str = "Agent"
    settings: str = "Settings"  # the summary's settings block
    q_hint: str = "reason"  # what the `q` filter searches, after "Text"
    action_example: str = ""  # placeholders of the filter form
    value_example: str = ""
    empty: str = ""  # said after "This run has no decisions" (why a run can be empty)
    align: str = "action"  # how its diff aligns decisions, as a phrase
    time_zone: str = "UTC"  # what a time column's header says its times are: "Time (UTC)"


@dataclass(frozen=True)
class Profile:
    name: str  # the stored Run.kind
    label: str  # "DynoAI session replay"
    reader: str  # module path of its reader: read(stream, info, *, limits, keep_user_ids)
    words: Words = field(default_factory=Words)
    # Detection: `sniff(head: bytes, name: str) -> bool`. None: readers.detect.kind_of decides
    # (the built-in kinds); a registered kind with its own sniff is asked first.
    sniff: Callable[[bytes, str], bool] | None = None
    # Ingest: whether a manifest.json beside the file checks it; the run's display name.
    uses_manifest: bool = False
    # In a folder walk, whether a file of this kind is a log, not a report beside one: (name, head text).
    is_log: Callable[[str, str], bool] | None = None
    display_name: Callable[[str, Any, bool], str] | None = None  # (file name, RunInfo, keep_user_ids)
    # Following a log while it is written (import_logs --follow): whether its file grows a line per
    # decision (a document written whole at the end cannot be followed), and the actions (normalized,
    # as its reader names them) that end it; without one, a followed log ends when it goes quiet.
    line_log: bool = False
    end_actions: tuple[str, ...] = ()
    # What the run calls itself, for lists and titles: dotted path of `(run, info) -> str` (info may be
    # None: a run named again later); "" keeps the file name. The file name stays in Run.source_name.
    run_name: str = ""
    # The run page: filter inputs shown first, table columns, facets (parameter, label).
    filter_fields: tuple[str, ...] = ()
    columns: tuple[Column, ...] = ()
    facets: tuple[tuple[str, str], ...] = (("action", "Event"),)
    summary_facts: Callable[[Any], list] | None = None  # run -> [summary.Fact]
    # A decision's record as shown and downloaded.
    record_json: Callable[[str], str] | None = None  # raw -> the record's JSON text
    written_values: Callable[[Any, Any], Any] | None = None  # (record, stored values) -> values
    raw_suffix: Callable[[str], str] | None = None  # raw -> text after the record (a server time)
    # Exports. `raw_is_decision`: `raw` is the decision's own JSON text (DynoAI), so the text,
    # json and jsonl exports give it back as written; otherwise they build it from the columns
    # (json) or give back the raw line (jsonl).
    raw_is_decision: bool = False
    replay_file: Callable[[Any], str | None] | None = None  # run -> the jsonl name of a replay export
    # The faces' own specs, each defined by its engine: cells, replay, diff.
    cells: Any = None
    replay: Any = None
    diff: Any = None
    llm: Any = None  # tokens.LlmSpec: where its LLM calls are (tokens, cost, replay kit); None: it has none
    tuning: Any = None  # tuning.TuningSpec: cell story, result tables, compare of runs; None: none
    trace: Any = None  # trace.TraceSpec: its trace page (rounds, turns, calls, lanes per agent); None: none
    # A decision's place in its event chain: `(run, decision) -> {"parent", "children", "correlation"}`
    # (chains.Step or None, [chains.Step], the correlation id or ""), or None for a decision outside
    # any chain; the decision page shows it. None: the kind has no chains.
    chain: Callable[[Any, Any], dict | None] | None = None
    state: Any = None  # state.StateSpec: /runs/<id>/state/, quantities over rounds; None: no state page
    timeline: Any = None  # charts.Lanes: the run page's chart in lanes by stage, its default axis; None: by action, time
    # The OTLP export (viewer/otlp.py): `raw -> {"resource", "scope", "span"}` where a decision's raw is
    # an OpenTelemetry span as read (the trace kind), given back as it was; None: built from the columns.
    otlp_record: Callable[[str], dict] | None = None


PROFILES: dict[str, Profile] = {}


def register(p: Profile) -> Profile:
    PROFILES[p.name] = p
    return p


def unregister(name: str) -> None:
    PROFILES.pop(name, None)


def profile(run_or_kind) -> Profile:
    """The profile of a run (or of a kind's name); a kind no longer registered reads as generic."""
    name = getattr(run_or_kind, "kind", run_or_kind)
    load_builtins()
    return PROFILES.get(name) or PROFILES["session"]


def sniff(head: bytes, name: str) -> str | None:
    """The kind (or "manifest") of a file from its first bytes and its name."""
    load_builtins()
    for p in reversed(PROFILES.values()):
        if p.sniff is not None and p.sniff(head, name):
            return p.name
    from ..readers.detect import kind_of

    return kind_of(head, name)


def choices() -> list[tuple[str, str]]:
    load_builtins()
    return [(p.name, p.label) for p in PROFILES.values()]


BUILTINS = ("dynoai", "session", "study", "trace")


def load_builtins() -> None:
    if not all(name in PROFILES for name in BUILTINS):
        from . import dynoai, otel, session, study  # noqa: F401  (each registers itself; otel is "trace")
