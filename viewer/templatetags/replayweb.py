from django import template

from ..dynoai_text import format_duration

register = template.Library()


@register.filter
def duration(ms):
    """A duration in ms as DynoAI's CLI prints it (`22.0ms`, `1.17s`); `–` when unknown."""
    return "–" if ms is None else format_duration(ms)
