"""Every read of runs and decisions goes through here."""
from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from functools import reduce
from operator import or_

from django.db import connection, connections
from django.db.models import BooleanField, Count, ExpressionWrapper, Func, IntegerField, Max, Min, QuerySet, Value
from django.db.models import F as DbField
from django.db.models import Q as Where
from django.db.models.fields.json import compile_json_path
from django.db.models.functions import Lower, Substr
from django.db.models.sql.constants import MULTI
from django.http import Http404

from . import filters as F
from .models import Decision, Run, RunTag


def visible_runs(user) -> QuerySet[Run]:
    """The runs `user` may see: their own and those shared with them or their groups (viewer/access.py),
    once imported (a run being imported is the job's, not a page's). Someone without an account sees
    only the run of the public link they hold for this request (access.LinkVisitor)."""
    if not user.is_authenticated:
        granted = getattr(user, "granted_run_id", None)
        if granted is None:
            return Run.objects.none()
        return Run.objects.filter(pk=granted).exclude(status=Run.Status.IMPORTING)
    from .access import shared_run_ids

    mine_or_shared = Where(owner=user) | Where(pk__in=shared_run_ids(user))
    return Run.objects.filter(mine_or_shared).exclude(status=Run.Status.IMPORTING).order_by("-created", "-id")


def get_run_or_404(user, run_id) -> Run:
    """A run the user may see, or 404 (never 403: a foreign run's existence is not revealed)."""
    run = visible_runs(user).filter(pk=run_id).first()
    if run is None:
        raise Http404("No such run")
    return run


def filtered_decisions(
    *,
    run: Run,
    action: tuple[str, ...] = (),
    q: str = "",
    rpm: int | None = None,
    kpa: int | None = None,
    cylinder: str | None = None,
    rpm_index: int | None = None,
    kpa_index: int | None = None,
    round: int | None = None,
    agent: str | None = None,
    rpm_min: int | None = None,
    rpm_max: int | None = None,
    kpa_min: int | None = None,
    kpa_max: int | None = None,
    round_min: int | None = None,
    round_max: int | None = None,
    t_from: float | None = None,
    t_to: float | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    v: tuple[F.ValueCondition, ...] = (),
    model: str | None = None,
    agent_type: str | None = None,
    temperature: float | None = None,
    temperature_min: float | None = None,
    temperature_max: float | None = None,
    correlation_id: str | None = None,
    label: tuple[str, ...] = (),
    noted: bool | None = None,
) -> QuerySet[Decision]:
    """The run's decisions that pass every filter, in file order. No paging: see decision_list."""
    qs = Decision.objects.filter(run=run)
    if label or noted:
        from .notes import seqs_with  # notes are few: their seqs go in the query as a list

        seqs = sorted(seqs_with(run, label))
        qs = qs.filter(seq__in=seqs) if seqs else _nothing(qs)
    if action:
        names = actions_containing(run, action)
        if names is None:
            qs = qs.filter(reduce(or_, (Where(action__icontains=a) for a in action)))
        else:
            qs = qs.filter(action__in=names) if names else _nothing(qs)
    if q:
        qs = qs.filter(Where(reason__icontains=q) | Where(text__icontains=q))
    exact = {"rpm": rpm, "kpa": kpa, "cylinder": cylinder, "rpm_index": rpm_index, "kpa_index": kpa_index,
             "round": round}
    qs = qs.filter(**{k: val for k, val in exact.items() if val is not None and val != ""})
    if agent is not None and agent != "":
        qs = qs.filter(agent__in=agent_spellings(run, agent))
    ranges = {"rpm__gte": rpm_min, "rpm__lte": rpm_max, "kpa__gte": kpa_min, "kpa__lte": kpa_max,
              "round__gte": round_min, "round__lte": round_max, "ts__gte": since, "ts__lte": until}
    qs = qs.filter(**{k: val for k, val in ranges.items() if val is not None})
    if t_from is not None or t_to is not None:
        qs = _time_window(qs, run, t_from, t_to)
    keyed = {F.MODEL: model, F.AGENT_TYPE: agent_type, F.TEMPERATURE: temperature,
             F.TEMPERATURE_MIN: temperature_min, F.TEMPERATURE_MAX: temperature_max,
             F.CORRELATION_ID: correlation_id}
    for cond in (*v, *(_keyed_condition(name, val) for name, val in keyed.items() if val not in (None, ""))):
        qs = qs.filter(_value_condition(cond))
    # "run_id", not "run": ordering by the relation would follow Run.Meta.ordering and join viewer_run.
    return qs.order_by("run_id", "seq")


def agent_spellings(run: Run, agent: str) -> list[str]:
    """An agent as the filter takes it: its id, or its display name (the run's agents map), so
    `agent=player_02` and `agent=Ash Vex` find the same decisions."""
    ids = [i for i, name in (run.agents or {}).items() if name == agent]
    return [agent, *ids]


ACTIONS_SCANNED = 500  # distinct actions read to turn "action contains" into a list; more: a plain scan


def actions_containing(run: Run, needles: tuple[str, ...]) -> list[str] | None:
    """The run's distinct actions that contain one of `needles` (icontains, as the database reads it),
    or None when the run has more than ACTIONS_SCANNED of them.

    A substring can use no b-tree index, so `action contains` scanned every row of the run (1 s at 1M
    on PostgreSQL, issue 19). A run has few actions: read them off the (run, action) index by a loose
    index scan (one index probe each, a recursive CTE on both databases), test the needles against
    that short list with the database's own icontains, and filter `action IN (...)` on the index."""
    lhs = connection.ops.lookup_cast("icontains", "CharField") % "action"
    rhs = connection.operators["icontains"] % "%s"
    matches = " OR ".join(f"{lhs} {rhs}" for _ in needles)
    table = connection.ops.quote_name(Decision._meta.db_table)
    sql = f"""
        WITH RECURSIVE names(action) AS (
            SELECT MIN(action) FROM {table} WHERE run_id = %s
            UNION ALL
            SELECT (SELECT MIN(d.action) FROM {table} d WHERE d.run_id = %s AND d.action > names.action)
            FROM names WHERE names.action IS NOT NULL
        )
        SELECT action, CASE WHEN {matches} THEN 1 ELSE 0 END FROM names WHERE action IS NOT NULL LIMIT %s
    """
    patterns = [f"%{connection.ops.prep_for_like_query(n)}%" for n in needles]
    with connection.cursor() as cursor:
        cursor.execute(sql, [run.pk, run.pk, *patterns, ACTIONS_SCANNED + 1])
        rows = cursor.fetchall()
    if len(rows) > ACTIONS_SCANNED:
        return None
    return [name for name, hit in rows if hit]


def decision_list(*, run: Run, after: int | None = None, limit: int | None = None, **filters) -> QuerySet[Decision]:
    """filtered_decisions, from the keyset cursor `after` (a seq), at most `limit` of them."""
    qs = filtered_decisions(run=run, **filters)
    if after is not None:
        qs = qs.filter(seq__gt=after)
    if limit is not None:
        qs = qs[:limit]
    return qs


def _time_window(qs, run: Run, t_from, t_to):
    """t_from/t_to are ms since the run's first timestamp; query the indexed ts column."""
    if run.first_ts is None:
        return _nothing(qs)
    if t_from is not None:
        low = _shifted(run.first_ts, t_from)
        if low is _AFTER_ALL:
            return _nothing(qs)
        if low is not _BEFORE_ALL:
            qs = qs.filter(ts__gte=low)
    if t_to is not None:
        # ts keeps microseconds; a window given in ms includes its whole last millisecond.
        high = _shifted(run.first_ts, t_to, dt.timedelta(microseconds=1))
        if high is _BEFORE_ALL:
            return _nothing(qs)
        if high is not _AFTER_ALL:
            qs = qs.filter(ts__lt=high)
    return qs


def _nothing(qs):
    """No decision, as SQL that still compiles: `qs.none()` raises EmptyResultSet when it is
    made a subquery (_select_over). A seq is never negative."""
    return qs.filter(seq__lt=0)


_BEFORE_ALL, _AFTER_ALL = object(), object()


def _shifted(start: dt.datetime, ms: float, extra: dt.timedelta = dt.timedelta(0)):
    """start + ms (+ extra), or _BEFORE_ALL / _AFTER_ALL when that is outside the years 1 to 9999
    (the form bounds t_from/t_to by the span of the calendar; a run may begin near either end)."""
    try:
        return start + dt.timedelta(milliseconds=ms) + extra
    except OverflowError:
        return _AFTER_ALL if ms > 0 else _BEFORE_ALL


class _ValueTest(Func):
    """The SQL test for one `v` condition on the `values` JSON column, for SQLite and PostgreSQL.

    A condition matches only values of its own JSON type (a number condition never matches the
    string "12"); `!=` matches a present key whose value is of another type or differs. CASE keeps
    PostgreSQL from casting a non-number to numeric (AND does not fix the evaluation order).
    """

    conditional = True
    output_field = BooleanField()

    def __init__(self, cond: F.ValueCondition):
        self.cond = cond
        super().__init__(DbField("values"))

    def as_sql(self, compiler, connection, **extra):
        column, column_params = compiler.compile(self.source_expressions[0])
        cond, postgres = self.cond, connection.vendor == "postgresql"
        if postgres:
            path = list(cond.path)
            type_sql, text_sql = f"jsonb_typeof({column} #> %s)", f"({column} #>> %s)"
        else:
            path = compile_json_path(list(cond.path))
            type_sql, text_sql = f"json_type({column}, %s)", f"json_extract({column}, %s)"
        type_params = text_params = [*column_params, path]
        if cond.json_type == "null":
            same_sql, same_params = f"{type_sql} = 'null'", type_params
        elif cond.json_type == "bool" and not postgres:
            same_sql, same_params = f"{type_sql} = '{'true' if cond.value else 'false'}'", type_params
        elif cond.json_type == "bool":
            same_sql = f"({type_sql} = 'boolean' AND {text_sql} = '{'true' if cond.value else 'false'}')"
            same_params = [*type_params, *text_params]
        else:
            types = ", ".join(f"'{t}'" for t in (_PG_TYPES if postgres else _SQLITE_TYPES)[cond.json_type])
            cast = "::numeric" if postgres and cond.json_type == "number" else ""
            op = "=" if cond.op == "!=" else cond.op
            same_sql = f"CASE WHEN {type_sql} IN ({types}) THEN {text_sql}{cast} END {op} %s"
            same_params = [*type_params, *text_params, cond.value]
        if cond.op == "!=":
            sql = f"({type_sql} IS NOT NULL AND NOT COALESCE({same_sql}, FALSE))"
            return sql, [*type_params, *same_params]
        return f"COALESCE({same_sql}, FALSE)", same_params


_SQLITE_TYPES = {
    "number": ("integer", "real"), "string": ("text",), "bool": ("true", "false"), "null": ("null",),
}
_PG_TYPES = {"number": ("number",), "string": ("string",), "bool": ("boolean",), "null": ("null",)}


def _value_condition(cond: F.ValueCondition) -> _ValueTest:
    return _ValueTest(cond)


def _keyed_condition(name: str, value) -> F.ValueCondition:
    """`model=gpt-5-mini` is `v=model="gpt-5-mini"`: the string as given, never read as a number."""
    key, op = F.VALUE_KEYS[name]
    return F.ValueCondition((key,), op, value)


def value_counts(qs: QuerySet[Decision], key: str) -> list[tuple]:
    """(value, count) of the top-level `key` of the values of `qs`'s decisions that have it (any type)."""
    rows = (qs.order_by().filter(**{f"values__{key}__isnull": False})
            .values_list(f"values__{key}").annotate(n=Count("pk")))
    return list(rows)


def decisions_with_value(*, run: Run, key: str, value, limit: int = 50) -> QuerySet[Decision]:
    """The run's decisions whose values hold `key` = `value` (a string), in file order."""
    cond = F.ValueCondition((key,), "=", value)
    return filtered_decisions(run=run, v=(cond,))[:limit]



# -- Reads for the run page (issue 3): neighbours and aggregates over filtered_decisions ------------
# Each aggregates over the SQL of filtered_decisions(), so the summary, chart and facets count
# exactly the decisions the table lists.


def has_decision(*, run: Run, seq: int) -> bool:
    return Decision.objects.filter(run=run, seq=seq).exists()


def get_decision_or_404(*, run: Run, seq: int) -> Decision:
    decision = Decision.objects.filter(run=run, seq=seq).first()
    if decision is None:
        raise Http404("No such decision")
    return decision


def neighbours(*, run: Run, seq: int, **filters) -> tuple[int | None, int | None]:
    """The seqs of the matching decisions just before and just after `seq` (which need not match)."""
    qs = filtered_decisions(run=run, **filters).values_list("seq", flat=True)
    if not unindexed(filters):
        return qs.filter(seq__lt=seq).reverse().first(), qs.filter(seq__gt=seq).first()
    following = first_rows(qs.filter(seq__gt=seq), run=run, n=1, filters=filters, after=seq)
    return _last_before(qs.reverse(), seq), (following[0] if following else None)


def previous_t_ms(*, run: Run, seq: int, **filters) -> float | None:
    """t_ms of the matching decision just before `seq`: the gap of a page's first row."""
    qs = filtered_decisions(run=run, **filters).reverse().values_list("t_ms", flat=True)
    return _last_before(qs, seq) if unindexed(filters) else qs.filter(seq__lt=seq).first()


def _last_before(qs: QuerySet, seq: int):
    """The first of qs (in reverse seq order) below `seq`, read in windows of seqs going back from it, as
    first_rows reads forward."""
    high, width = seq, WINDOW
    while True:
        low = high - width
        found = list((qs.filter(seq__gte=low, seq__lt=high) if low > 0 else qs.filter(seq__lt=high))[:1])
        if found or low <= 0:
            return found[0] if found else None
        high, width = low, width * GROWTH


# Filters no index answers: a substring of the texts, a test of the values' JSON.
UNINDEXED = ("q", "v", "model", "agent_type", "temperature", "temperature_min", "temperature_max", "correlation_id")
WINDOW = 8192  # seqs a page under such a filter reads at once
GROWTH = 8  # each next window this many times wider


def unindexed(filters: dict) -> bool:
    """Whether the filters hold one that no index answers (the database tests it row by row)."""
    return any(filters.get(name) not in (None, "", ()) for name in UNINDEXED)


def first_rows(qs: QuerySet, *, run: Run, n: int, filters: dict, after: int | None = None) -> list:
    """The first n of qs (the run's decisions that pass `filters`, in seq order, after `after`).

    Under an unindexed filter, read a window of seqs at a time, each GROWTH times wider than
    the last, the last one open-ended. PostgreSQL's planner cannot tell how many rows a substring keeps,
    guesses a handful, and so scans the whole run and sorts what matched (0.8 s at 1M decisions) where
    the first page of a common word lies in the run's first few hundred rows; a window of seqs keeps
    it on the (run, seq) index. A rare word reads the run in a few windows, no slower than the scan."""
    if not unindexed(filters):
        return list(qs[:n])
    found: list = []
    low, width = (-1 if after is None else after), WINDOW
    while True:
        high = low + width
        last = high >= run.decision_count  # open above: a live run may have grown since it was read
        part = qs.filter(seq__gt=low) if last else qs.filter(seq__gt=low, seq__lte=high)
        found += part[: n - len(found)]
        if len(found) >= n or last:
            return found
        low, width = high, width * GROWTH


def _select_over(qs: QuerySet, columns: tuple[str, ...], sql: str, params=()) -> list[tuple]:
    """Run `sql`, in which `{f}` stands for the queryset as a derived table of `columns`;
    `params` fill the `%s` of `sql`, in order, around the queryset's own."""
    inner, inner_params = qs.order_by().values(*columns).query.sql_with_params()
    head, tail = sql.split("{f}")
    before = head.count("%s")
    with connection.cursor() as cursor:
        cursor.execute(f"{head}({inner}) AS f{tail}", [*params[:before], *inner_params, *params[before:]])
        return cursor.fetchall()


def action_stats(*, run: Run, **filters) -> list[tuple[str, int, int, float]]:
    """(action, count, first seq, ms spent) per action of the matching decisions, in first-appearance order.

    A decision spends the time to the next matching decision; steps back in time (out-of-order
    timestamps) count as 0, and a decision without a time spends none.
    """
    rows = _select_over(
        filtered_decisions(run=run, **filters),
        ("seq", "action", "t_ms"),
        "SELECT action, COUNT(*), MIN(seq), SUM(CASE WHEN gap > 0 THEN gap ELSE 0 END) FROM ("
        "SELECT seq, action, LEAD(t_ms) OVER (ORDER BY seq) - t_ms AS gap FROM {f}"
        ") AS g GROUP BY action ORDER BY MIN(seq)",
    )
    return [(action, n, first, float(spent or 0)) for action, n, first, spent in rows]


def largest_gaps(*, run: Run, n: int = 5, **filters) -> list[tuple[float, int, str, int, str]]:
    """The `n` largest steps in time between consecutive matching decisions, largest first:
    (gap ms, seq before, action before, seq after, action after); ties in file order."""
    rows = _select_over(
        filtered_decisions(run=run, **filters),
        ("seq", "action", "t_ms"),
        "SELECT gap, prev_seq, prev_action, seq, action FROM ("
        "SELECT seq, action, t_ms - LAG(t_ms) OVER w AS gap, LAG(seq) OVER w AS prev_seq, "
        "LAG(action) OVER w AS prev_action FROM {f} WINDOW w AS (ORDER BY seq)"
        ") AS g WHERE gap > 0 ORDER BY gap DESC, seq LIMIT %s",
        [n],
    )
    return [(float(gap), before, before_action, seq, action) for gap, before, before_action, seq, action in rows]


def time_range(*, run: Run, **filters) -> tuple[float | None, float | None]:
    """The smallest and largest t_ms of the matching decisions (None, None when none has a time)."""
    found = filtered_decisions(run=run, **filters).aggregate(low=Min("t_ms"), high=Max("t_ms"))
    return found["low"], found["high"]


def time_bins(*, run: Run, start: float, width: float, **filters) -> list[tuple[str, int, int]]:
    """(action, bin, count) for the matching decisions that have a time; bin k holds
    start + k*width <= t_ms < start + (k+1)*width. Computed in SQL: a 1M-decision run stays light."""
    floor = "FLOOR" if connection.vendor == "postgresql" else ""  # SQLite's CAST truncates; t >= start
    rows = _select_over(
        filtered_decisions(run=run, **filters).filter(t_ms__gte=start),
        ("action", "t_ms"),
        f"SELECT action, CAST({floor}((t_ms - %s) / %s) AS INTEGER) AS b, COUNT(*) FROM {{f}} "
        "GROUP BY action, b ORDER BY b, action",
        [start, width],
    )
    return [(action, int(b), n) for action, b, n in rows]


def seq_range(*, run: Run, **filters) -> tuple[int | None, int | None]:
    """The first and last seq of the matching decisions."""
    found = filtered_decisions(run=run, **filters).order_by().aggregate(low=Min("seq"), high=Max("seq"))
    return found["low"], found["high"]


def seq_bins(*, run: Run, start: int, width: int, **filters) -> list[dict]:
    """{action, b, n, t_low, t_high} per action and bin of `width` consecutive seqs from `start`, in SQL."""
    b = ExpressionWrapper((DbField("seq") - Value(start)) / Value(width), output_field=IntegerField())
    qs = filtered_decisions(run=run, **filters).order_by().annotate(b=b).values("action", "b")
    return list(qs.annotate(n=Count("pk"), t_low=Min("t_ms"), t_high=Max("t_ms")).order_by("b", "action"))


def chart_points(*, run: Run, limit: int, **filters) -> list[tuple]:
    """(seq, t_ms, ts, action, reason cut to 200 characters) of the first `limit` matching decisions."""
    qs = filtered_decisions(run=run, **filters).annotate(short=Substr("reason", 1, 200))
    return list(qs.values_list("seq", "t_ms", "ts", "action", "short")[:limit])


def run_actions(*, run: Run) -> list[str]:
    """The run's distinct actions, sorted (a scan of the (run, action) index)."""
    actions = Decision.objects.filter(run=run).order_by("action").values_list("action", flat=True)
    return list(actions.distinct())


def action_counts(qs: QuerySet[Decision]) -> list[tuple[str, int]]:
    """(action, count) of a filtered_decisions() set, in first-appearance order."""
    rows = qs.order_by().values("action").annotate(n=Count("pk"), first=Min("seq")).order_by("first")
    return [(r["action"], r["n"]) for r in rows]


# -- The runs list (issue 20): search, filters, sort and keyset paging over visible_runs ---------
# The page, its htmx fragment and GET /api/runs all read runs_page(); RunListForm parses the URL.
# `after` is the id of the last run of the previous page: its sort value is looked up, so the
# cursor stays one run id (the API's) whatever the sort, and paging is stable under any sort.

RUN_SORT_FIELDS = {
    "-created": ("created", True), "created": ("created", False),
    "name": ("name", False), "-name": ("name", True),
    "-decisions": ("decision_count", True), "decisions": ("decision_count", False),
}


class CursorGone(ValueError):
    """`after` names no run of this list (deleted since, or never one of the user's)."""


def filtered_runs(
    user,
    *,
    q: str | None = None,
    kind: str | None = None,
    tag: str | None = None,
    owner: str | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    status: str | None = None,
) -> QuerySet[Run]:
    """The user's visible runs that pass every filter; `until` is exclusive. A status the runs list
    shows only as import jobs (importing) matches no run: a run being imported has no page yet."""
    qs = visible_runs(user)
    if q:
        qs = qs.filter(Where(name__icontains=q) | Where(run_id__icontains=q) | Where(session_id__icontains=q)
                       | Where(source_name__icontains=q))
    if kind:
        qs = qs.filter(kind=kind)
    if tag:
        qs = qs.filter(pk__in=RunTag.objects.filter(name=tag).values("run_id"))
    if owner:
        qs = qs.filter(owner__username=owner)
    if since:
        qs = qs.filter(created__gte=since)
    if until:
        qs = qs.filter(created__lt=until)
    if status:
        qs = qs.filter(status=status)
    return qs


def runs_page(user, *, sort: str = "-created", after: int | None = None, limit: int = 50,
              **filters) -> tuple[list[Run], int | None]:
    """One page of filtered_runs in `sort` order (the run id breaks ties), from the keyset cursor
    `after` (a run id), with each run's tags. Returns (runs, the cursor of the next page or None)."""
    field, descending = RUN_SORT_FIELDS[sort]
    key = Lower(field) if field == "name" else DbField(field)
    qs = filtered_runs(user, **filters).annotate(sort_key=key)
    if after is not None:
        last = visible_runs(user).filter(pk=after).annotate(sort_key=key).values_list("sort_key", flat=True)
        if not last:
            raise CursorGone(f"run {after} is not in this list (deleted?): start again from the first page")
        value = last[0]
        beyond = "lt" if descending else "gt"
        qs = qs.filter(Where(**{f"sort_key__{beyond}": value}) | Where(sort_key=value, **{f"pk__{beyond}": after}))
    order = ("-sort_key", "-pk") if descending else ("sort_key", "pk")
    runs = list(qs.order_by(*order).select_related("owner").prefetch_related("tags")[: limit + 1])
    more = len(runs) > limit
    runs = runs[:limit]
    return runs, runs[-1].pk if more else None


def run_owners(user) -> list[str]:
    """The usernames owning the runs the user can see (the owner filter's choices)."""
    return list(visible_runs(user).order_by("owner__username").values_list("owner__username", flat=True).distinct())


def run_tags(user) -> list[tuple[str, int]]:
    """(tag, how many of the user's visible runs carry it), by name."""
    rows = RunTag.objects.filter(run__in=visible_runs(user).order_by().values("pk")).values("name")
    return [(r["name"], r["n"]) for r in rows.annotate(n=Count("pk")).order_by("name")]


def row_batches(qs: QuerySet, fields: tuple[str, ...], size: int) -> Iterator[list[tuple]]:
    """qs.values_list(*fields) as the cursor's fetchmany(size) gives it, a list of rows per fetch:
    what .iterator(chunk_size=size) reads (a server-side cursor on PostgreSQL), without its Python
    step per row."""
    compiler = qs.values_list(*fields).query.get_compiler(qs.db)
    server_side = not connections[qs.db].settings_dict.get("DISABLE_SERVER_SIDE_CURSORS")  # as iterator() reads it
    batches = compiler.execute_sql(MULTI, chunked_fetch=server_side, chunk_size=size)
    converters = compiler.get_converters([col for col, _, _ in compiler.select])
    for batch in batches:
        yield list(compiler.apply_converters(batch, converters)) if converters else batch
