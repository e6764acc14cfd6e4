"""Template helpers of the tuning pages (issue 17): whether a run's kind has them, the link to a cell's
story from the cells drilldown, and numbers as text.number writes them."""

from django import template

from .. import kinds, text
from ..querystring import query_string

register = template.Library()


@register.filter
def has_tuning(run) -> bool:
    """The run's kind has a cell story and result tables (Profile.tuning)."""
    return kinds.profile(run).tuning is not None


@register.simple_tag
def story_url(run, query) -> str:
    """The story of the drilled-down cell (the cells page's cell parameters and cylinder), or ""."""
    profile = kinds.profile(run)
    if profile.tuning is None or profile.cells is None:
        return ""
    rpm, kpa = (query.get(key) for key in profile.cells.cell_keys)
    if not rpm or not kpa:
        return ""
    cylinder = query.get("cyl") or None
    return f"/runs/{run.pk}/cells/story/" + query_string(set={"rpm": rpm, "kpa": kpa, "cylinder": cylinder})


@register.filter
def num(value, digits=None):
    """12,345 and -1.11; `–` for none."""
    return text.number(value, None if digits in (None, "") else int(digits))


@register.filter
def signed(value, digits=2):
    """+1.52 / -0.98 (a correction or an error), `–` for none."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return text.DASH
    return f"{value:+.{int(digits)}f}"


@register.filter
def item(mapping, key):
    """mapping[key] in a template ({{ outcomes|item:run.pk }})."""
    try:
        return mapping[key]
    except (KeyError, IndexError, TypeError):
        return None
