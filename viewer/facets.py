"""Facets beside the run page's filters: counts per action, cylinder, round and agent (Datasette-style).

Each facet counts the decisions that pass every current filter except its own parameter, so
its other values stay visible: a click adds a value (`action`, repeatable and OR-ed) or
switches to it (the exact-match parameters), and a click on a selected value removes it.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from django.db.models import Count
from django.http import QueryDict

from . import filters as F
from .display import Colours, agent_label, colour
from .models import Run
from .selectors import filtered_decisions, value_counts

SHOWN = 12  # values per facet; the rest are behind "n more values", up to MORE_SHOWN of them
MORE_SHOWN = 200


@dataclass
class FacetValue:
    value: str | int | None
    count: int
    selected: bool = False
    # The parameter's values once this one is toggled: a list for `action`, else the value or None.
    toggled: list[str] | str | int | None = None
    href: str = ""
    colour: str = ""
    substring: bool = False  # an `action` value matched as a substring, not an action's name
    label: str = ""  # how the value reads ("player_02 · Ash Vex"); the value itself when empty


@dataclass
class Facet:
    name: str
    label: str
    values: list[FacetValue] = field(default_factory=list)
    more_values: int = 0
    more_count: int = 0
    more: list[FacetValue] = field(default_factory=list)  # the first MORE_SHOWN of those, shown on demand


def facets_for(
    *, run: Run, filters: dict, facets: tuple[tuple[str, str], ...] = ((F.ACTION, "Action"),), shown: int = SHOWN
) -> list[Facet]:
    """The `facets` (parameter, label: the run kind's) under `filters` (as DecisionFilterForm.filters()
    gives them)."""
    out = []
    for name, label in facets:
        counts = _counts(run, name, {k: v for k, v in filters.items() if k != name})
        if name == F.ROUND:
            counts.sort(key=lambda vc: (vc[0] is None, vc[0] if vc[0] is not None else 0))
        if (not counts or counts == [(None, counts[0][1])]) and name not in filters:
            continue  # the run has no such values: no facet
        facet = Facet(name, label, [_value(name, value, n, filters) for value, n in counts[:shown]])
        facet.values += _selected_but_missing(name, facet.values, counts, filters)
        rest = counts[shown:]
        facet.more_values, facet.more_count = len(rest), sum(n for _, n in rest)
        facet.more = [_value(name, value, n, filters) for value, n in rest[:MORE_SHOWN]]
        out.append(facet)
    return out


def _counts(run: Run, name: str, filters: dict) -> list[tuple]:
    if name in F.VALUE_KEYS:  # a key of the values (model, agent_type...): the decisions that have it
        qs = value_counts(filtered_decisions(run=run, **filters), F.VALUE_KEYS[name][0])
        qs = [(v if v is None or isinstance(v, (str, int, float)) else str(v), n) for v, n in qs]
    else:
        qs = filtered_decisions(run=run, **filters).order_by().values_list(name).annotate(n=Count("pk"))
    return sorted(qs, key=lambda vc: (-vc[1], vc[0] is None, str(vc[0])))


def _value(name: str, value, count: int, filters: dict) -> FacetValue:
    if value is None:
        return FacetValue(None, count)  # no parameter selects "no value": shown, not clickable
    if name == F.ACTION:
        current = list(filters.get(F.ACTION, ()))
        selected = any(a.lower() == value.lower() for a in current)
        toggled = [a for a in current if a.lower() != value.lower()] if selected else [*current, value]
        return FacetValue(value, count, selected, toggled)
    selected = filters.get(name) == value
    return FacetValue(value, count, selected, None if selected else value)


def _selected_but_missing(
    name: str, listed: list[FacetValue], counts: list[tuple], filters: dict
) -> list[FacetValue]:
    """Selected values not listed (no count under the other filters, or an action substring such
    as `gradient`): still listed, so a click removes them. A substring counts the actions it finds."""
    chosen = filters.get(name)
    if chosen is None:
        return []
    if name == F.ACTION:
        seen = {str(fv.value).lower() for fv in listed if fv.value is not None}
        missing = []
        for a in chosen:
            if a.lower() not in seen:
                found = sum(n for value, n in counts if value is not None and a.lower() in value.lower())
                missing.append(_value(name, a, found, filters))
                missing[-1].substring = True
        return missing
    if any(fv.value == chosen for fv in listed):
        return []
    return [_value(name, chosen, 0, filters)]


def link_facets(
    facets: list[Facet], query: QueryDict, colours: Colours | None = None, agents: dict | None = None
) -> list[Facet]:
    """Give each clickable value the querystring that toggles it (from the current `query`), each
    action its colour and each agent its display name (`agents`: id -> name)."""
    for facet in facets:
        for fv in [*facet.values, *facet.more]:
            if fv.value is not None:
                fv.href = toggle_query(query, facet.name, fv.toggled)
                if facet.name == F.ACTION:
                    fv.colour = colour(fv.value, colours)
                elif facet.name == F.AGENT:
                    fv.label = agent_label(fv.value, agents)
    return facets


def toggle_query(query: QueryDict, name: str, values) -> str:
    """`query` with parameter `name` set to `values` (a list, a single value or None) and no cursor."""
    params = query.copy()
    params.pop(F.AFTER, None)
    if values is None or values == []:
        params.pop(name, None)
    elif isinstance(values, list):
        params.setlist(name, [str(v) for v in values])
    else:
        params[name] = str(values)
    return "?" + params.urlencode() if params else "?"
