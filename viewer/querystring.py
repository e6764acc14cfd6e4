"""The one querystring builder (after Django admin's ChangeList.get_query_string).

`query_string(query, set={...}, remove=[...])` keeps every other parameter of `query` (a QueryDict
or a list of pairs) with its repeated values, replaces or removes the named ones, drops empty
values, and answers "?a=1&b=2" (or "?" for none). Templates use Django's `{% querystring %}`.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from urllib.parse import urlencode


def pairs(query, *, keep: Iterable[str] | None = None, drop: Iterable[str] = ()) -> list[tuple[str, str]]:
    """The non-empty (name, value) pairs of `query`, only `keep` (all when None), without `drop`."""
    keep = None if keep is None else set(keep)
    drop = set(drop)
    if hasattr(query, "lists"):
        items = [(name, value) for name, values in query.lists() for value in values]
    else:
        items = list(query)
    return [(n, v) for n, v in items if (keep is None or n in keep) and n not in drop and v != ""]


def query_string(
    query=(), *, set: Mapping | None = None, remove: Iterable[str] = (), keep: Iterable[str] | None = None
) -> str:
    """`query` with `set`'s names replaced (a list or tuple value repeats the parameter; None
    removes it) and `remove`'s names removed, as "?..." ("?" when nothing is left)."""
    set = dict(set or {})
    out = pairs(query, keep=keep, drop=[*remove, *set])
    for name, value in set.items():
        for v in value if isinstance(value, (list, tuple)) else [value]:
            if v is not None and v != "":
                out.append((name, _text(v)))
    return "?" + urlencode(out)


def _text(value) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
