from django import template

from .. import text

register = template.Library()


@register.filter
def duration(ms):
    """A duration in ms as people read it (`22.0 ms`, `1.17 s`, `13 min 30 s`); `–` when unknown."""
    return text.duration(ms)
