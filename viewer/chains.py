"""Event chains: a decision's parent and children by the ids its values carry (v1.2 sessions:
`event_id`, `parent_event_id`, `correlation_id`). Read through the selector; the kind says the keys."""
from __future__ import annotations

from dataclasses import dataclass

from .selectors import decisions_with_value

MAX_CHILDREN = 20


@dataclass(frozen=True)
class Step:
    seq: int
    action: str


def chain(run, decision, *, id_key: str, parent_key: str, group_key: str) -> dict | None:
    """{"parent": Step | None, "children": [Step], "correlation": str} for a decision whose values
    carry `id_key`; None for one outside any chain."""
    values = decision.values if isinstance(decision.values, dict) else {}
    own, parent_id, group = values.get(id_key), values.get(parent_key), values.get(group_key)
    if not isinstance(own, str) or not own:
        return None
    parent = None
    if isinstance(parent_id, str) and parent_id:
        found = decisions_with_value(run=run, key=id_key, value=parent_id, limit=1).values_list("seq", "action")
        parent = next((Step(*row) for row in found), None)
    children = decisions_with_value(run=run, key=parent_key, value=own, limit=MAX_CHILDREN)
    return {
        "parent": parent,
        "parent_id": parent_id if isinstance(parent_id, str) else "",
        "children": [Step(*row) for row in children.values_list("seq", "action")],
        "correlation": group if isinstance(group, str) else "",
    }
