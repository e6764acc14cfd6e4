"""One cell's story (issue 17.2): the parameters that name a cell, parsed once for the page and the
API, and the one call that tells the story through the kind's TuningSpec (viewer/tuning.py)."""

from __future__ import annotations

from django import forms

from .filters import ParameterForm, _int
from .tuning import CellError, TuningSpec

CELL_PARAMS = ("rpm", "kpa", "cylinder", "rpm_index", "kpa_index")


class StoryForm(ParameterForm):
    """rpm + kpa, or rpm_index + kpa_index; cylinder one of the kind's (default: both)."""

    rpm = _int()
    kpa = _int()
    rpm_index = _int()
    kpa_index = _int()
    cylinder = forms.CharField(required=False, max_length=20)

    def __init__(self, data, *, spec: TuningSpec):
        super().__init__(data)
        self.spec = spec

    def clean_cylinder(self):
        value = self.cleaned_data.get("cylinder") or "both"
        if self.spec.cylinders and value not in self.spec.cylinders:
            raise forms.ValidationError(
                "%(v)r is not one of %(choices)s",
                params={"v": value[:20], "choices": ", ".join(self.spec.cylinders)},
            )
        return value

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        try:
            data["cell"] = self.spec.locate(
                **{k: data.get(k) for k in ("rpm", "kpa", "rpm_index", "kpa_index")}
            )
        except CellError as exc:
            name, _, message = str(exc).partition(": ")
            self.add_error(name if name in CELL_PARAMS else None, message or str(exc))
        return data


def cell_story(*, spec: TuningSpec, run, form: StoryForm) -> dict:
    """The story of the valid form's cell."""
    rpm, kpa = form.cleaned_data["cell"]
    return spec.story(run, rpm=rpm, kpa=kpa, cylinder=form.cleaned_data["cylinder"])


PER_ACTION = 30  # a story card lists at most this many steps of one action (a long log repeats samples)


def compact(decisions: list[dict], *, per_action: int = PER_ACTION) -> tuple[list[dict], dict[str, int]]:
    """The steps a card lists (the first `per_action` of each action, in file order) and how many of
    each action it leaves out; the API answers them all."""
    seen: dict[str, int] = {}
    shown, left = [], {}
    for d in decisions:
        n = seen[d["action"]] = seen.get(d["action"], 0) + 1
        if n <= per_action:
            shown.append(d)
        else:
            left[d["action"]] = left.get(d["action"], 0) + 1
    return shown, left
