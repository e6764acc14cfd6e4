from django import template

from .. import text

register = template.Library()


@register.filter
def duration(ms):
    """A duration in ms as people read it (`22.0 ms`, `1.17 s`, `13 min 30 s`); `–` when unknown."""
    return text.duration(ms)


@register.filter
def has_state(run) -> bool:
    """The run's kind has a state over time (Profile.state): the run nav links /runs/<id>/state/."""
    from .. import kinds

    return kinds.profile(run).state is not None


@register.filter
def at(sequence, index):
    """sequence[index] in a template: the header of a row's nth cell (a table's data-label for its phone cards)."""
    try:
        return sequence[index]
    except (IndexError, KeyError, TypeError):
        return ""
