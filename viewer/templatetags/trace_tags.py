"""Template helpers of the trace page: whether a run's kind offers one, an agent's display name."""

from django import template

from .. import kinds

register = template.Library()


@register.filter
def has_trace(run) -> bool:
    """The run's kind has a trace (Profile.trace)."""
    return kinds.profile(run).trace is not None


@register.filter
def agent_name(agent, names) -> str:
    """`player_02 · Ash Vex`, or the id alone when the log gives no other name."""
    name = (names or {}).get(agent)
    return f"{agent} · {name}" if name and name != agent else (agent or "")
