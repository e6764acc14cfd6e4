"""Every read of runs and decisions goes through here."""
from __future__ import annotations

import datetime as dt
from functools import reduce
from operator import or_

from django.db import connection
from django.db.models import CharField, Func, QuerySet
from django.db.models import Q as Where
from django.db.models.fields.json import KeyTransform, compile_json_path
from django.db.models.lookups import In, IsNull
from django.http import Http404

from . import filters as F
from .models import Decision, Run


def visible_runs(user) -> QuerySet[Run]:
    """The runs `user` may see: their own."""
    if not user.is_authenticated:
        return Run.objects.none()
    return Run.objects.filter(owner=user).order_by("-created", "-id")


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
) -> QuerySet[Decision]:
    """The run's decisions that pass every filter, in file order. No paging: see decision_list."""
    qs = Decision.objects.filter(run=run)
    if action:
        qs = qs.filter(reduce(or_, (Where(action__icontains=a) for a in action)))
    if q:
        qs = qs.filter(Where(reason__icontains=q) | Where(text__icontains=q))
    exact = {"rpm": rpm, "kpa": kpa, "cylinder": cylinder, "rpm_index": rpm_index, "kpa_index": kpa_index,
             "round": round, "agent": agent}
    qs = qs.filter(**{k: val for k, val in exact.items() if val is not None and val != ""})
    ranges = {"rpm__gte": rpm_min, "rpm__lte": rpm_max, "kpa__gte": kpa_min, "kpa__lte": kpa_max,
              "round__gte": round_min, "round__lte": round_max, "ts__gte": since, "ts__lte": until}
    qs = qs.filter(**{k: val for k, val in ranges.items() if val is not None})
    if t_from is not None or t_to is not None:
        qs = _time_window(qs, run, t_from, t_to)
    for cond in v:
        qs = qs.filter(_value_condition(cond))
    return qs.order_by("run", "seq")


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
        return qs.none()
    if t_from is not None:
        qs = qs.filter(ts__gte=run.first_ts + dt.timedelta(milliseconds=t_from))
    if t_to is not None:
        # ts keeps microseconds; a window given in ms includes its whole last millisecond.
        qs = qs.filter(ts__lt=run.first_ts + dt.timedelta(milliseconds=t_to) + dt.timedelta(microseconds=1))
    return qs


class _JsonType(Func):
    """The JSON type of values at a path: 'integer'/'real'/'text'... (SQLite), 'number'/'string'... (PostgreSQL)."""

    def __init__(self, path: tuple[str, ...]):
        self.path = path
        super().__init__(output_field=CharField())

    def as_sql(self, compiler, connection, **extra):
        column = connection.ops.quote_name("values")
        table = connection.ops.quote_name(Decision._meta.db_table)
        if connection.vendor == "postgresql":
            return f"jsonb_typeof({table}.{column} #> %s)", [list(self.path)]
        return f"json_type({table}.{column}, %s)", [compile_json_path(list(self.path))]


NUMBER_TYPES = {"sqlite": ("integer", "real"), "postgresql": ("number",)}
STRING_TYPES = {"sqlite": ("text",), "postgresql": ("string",)}


def _value_condition(cond: F.ValueCondition) -> Where:
    expr = KeyTransform(cond.path[0], "values")
    for part in cond.path[1:]:
        expr = KeyTransform(part, expr)
    lookup = {"<": "lt", "<=": "lte", ">": "gt", ">=": "gte", "=": "exact", "!=": "exact"}[cond.op]
    types = (NUMBER_TYPES if cond.is_number else STRING_TYPES).get(connection.vendor, ("integer", "real"))
    type_ok = _type_in(cond.path, types)
    compare = expr.get_lookup(lookup)(expr, cond.value)
    if cond.op == "!=":
        return type_ok & ~Where(compare) | _present_with_other_type(cond.path, types)
    return type_ok & Where(compare)


def _type_in(path, types) -> Where:
    return Where(In(_JsonType(path), list(types)))


def _present_with_other_type(path, types) -> Where:
    present = Where(IsNull(_JsonType(path), False))
    return present & ~Where(In(_JsonType(path), list(types)))
