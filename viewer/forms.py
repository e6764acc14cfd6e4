from django import forms

from .filters import ParameterForm


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    """Several files under one name, as Django's docs show for <input multiple>."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("widget", MultipleFileInput(attrs={"multiple": True}))
        super().__init__(*args, **kwargs)

    def clean(self, data, initial=None):
        single = super().clean
        if isinstance(data, (list, tuple)):
            return [single(d, initial) for d in data]
        return [single(data, initial)]


class UploadForm(forms.Form):
    files = MultipleFileField(label="Log files")
    keep_user_ids = forms.BooleanField(
        required=False, label="Keep real user ids (study logs are pseudonymized by default)"
    )


# -- replay: where to open, and the player's frames (/runs/<id>/replay/, its frames/, the API) ----------
MAX_FRAMES = 200  # frames one request may ask for
MAX_FRAME_SPAN = 20_000  # decisions one frames request may fold (count x stride)


def parse_time(text: str) -> float:
    """A time since the run's start, in ms: "1:02.5" (m:ss), "1:00:00", "12s", "800ms" or plain ms."""
    text = text.strip().lower()
    try:
        if ":" in text:
            seconds = 0.0
            for part in text.split(":"):
                seconds = seconds * 60 + float(part)
            value = seconds * 1000
        elif text.endswith("ms"):
            value = float(text[:-2])
        elif text.endswith("s"):
            value = float(text[:-1]) * 1000
        else:
            value = float(text)
    except ValueError:
        raise forms.ValidationError(
            "%(t)r is not a time such as 1:02.5, 12s or 800ms", params={"t": text[:40]}) from None
    if value != value or abs(value) == float("inf"):
        raise forms.ValidationError("not a finite time")
    return value


class StepForm(ParameterForm):
    """`step` (decisions folded) or `t` (a time since the start: the last step at or before it)."""

    step = forms.IntegerField(required=False, min_value=0, max_value=2**31 - 1)
    t = forms.CharField(required=False, max_length=40, label="Time since the start")

    def clean_t(self):
        text = self.cleaned_data["t"]
        return parse_time(text) if text.strip() else None



class FramesForm(StepForm):
    """`start` (a step), or `t` (a time: the frames then start `back` steps before the step at t)."""

    start = forms.IntegerField(required=False, min_value=0, max_value=2**31 - 1)
    back = forms.IntegerField(required=False, min_value=0, max_value=MAX_FRAMES)
    count = forms.IntegerField(required=False, min_value=1, max_value=MAX_FRAMES)
    stride = forms.IntegerField(required=False, min_value=1, max_value=MAX_FRAME_SPAN)


# -- diff: the two runs and how to compare them (/diff/, its exports; the API has its own schema) ------
from .diff_summary import HEAT_COUNT, HEAT_FINAL

A, B, RUN, ROWS, VOLATILE, HEAT, START = "a", "b", "run", "rows", "volatile", "heat", "start"
ROWS_DIFF, ROWS_ALL = "diff", "all"
MAX_RUN_ID = 2**63 - 1


class DiffForm(ParameterForm):
    """The diff's own parameters; the decision filters are DecisionFilterForm's."""

    a = forms.IntegerField(required=False, min_value=1, max_value=MAX_RUN_ID)
    b = forms.IntegerField(required=False, min_value=1, max_value=MAX_RUN_ID)
    rows = forms.ChoiceField(
        required=False, choices=[(ROWS_DIFF, "Only differences"), (ROWS_ALL, "All decisions")]
    )
    volatile = forms.BooleanField(required=False, label="Also compare timestamps and ids")
    heat = forms.ChoiceField(
        required=False, choices=[(HEAT_FINAL, "Final correction"), (HEAT_COUNT, "Decision count")]
    )
    start = forms.IntegerField(required=False, min_value=0, max_value=10**9)

    def clean(self):
        data = super().clean()
        data[ROWS] = data.get(ROWS) or ROWS_DIFF
        data[START] = data.get(START) or 0
        return data



MAX_CELL_MS = 10 * 365 * 86_400_000  # a cell's start and width, in ms: ten years (no bucket is wider)


def _cell_int():
    return forms.IntegerField(required=False, min_value=-(2**31), max_value=2**31 - 1)


class CellOptionsForm(ParameterForm):
    """The cells page's own parameters (the decision filters are DecisionFilterForm's): `metric`,
    `cyl` (the kind's cylinder choice, when it has one) and the selected cell (`cell_*`, the kind's
    `cell_keys`: its drilldown). `spec` is the kind's cells.CellsSpec, `metrics` those on offer."""

    metric = forms.CharField(required=False, max_length=600)
    cyl = forms.ChoiceField(required=False)
    cell_rpm = _cell_int()
    cell_kpa = _cell_int()
    cell_round = _cell_int()
    cell_agent = forms.CharField(required=False, max_length=500, strip=False)
    cell_action = forms.CharField(required=False, max_length=500, strip=False)
    cell_t = forms.FloatField(required=False, min_value=-MAX_CELL_MS, max_value=MAX_CELL_MS)
    cell_w = forms.IntegerField(required=False, min_value=1, max_value=MAX_CELL_MS)

    def __init__(self, data, *, spec, metrics: list):
        super().__init__(data)
        self.spec = spec
        self.metrics = metrics
        self.fields["cyl"].choices = list((spec.cylinders or {"both": "all"}).items())

    def clean_metric(self):
        key = self.cleaned_data.get("metric") or ""
        if key and key not in {m.key for m in self.metrics}:
            raise forms.ValidationError("%(key)r is not a metric of this run", params={"key": key[:100]})
        return key or self.metrics[0].key

    def clean_cyl(self):
        return self.cleaned_data.get("cyl") or "both"

    def clean(self):
        data = super().clean()
        names = self.spec.cell_keys
        given = [n for n in names if data.get(n) not in (None, "")]
        if given and len(given) != len(names) and not any(n in self.errors for n in names):
            missing = [n for n in names if n not in given]
            self.add_error(missing[0], f"a cell needs {', '.join(names)}")
        return data

    def cell_key(self) -> dict | None:
        """The selected cell's key (as in cell_grid's cells), or None."""
        key = {n: self.cleaned_data.get(n) for n in self.spec.cell_keys}
        return key if all(v not in (None, "") for v in key.values()) else None

