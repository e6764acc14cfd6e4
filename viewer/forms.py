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



# -- the runs list: search, filters, sort and keyset paging (/, GET /api/runs) ---------------------
import datetime as dt

from django.utils import timezone

from .models import kind_choices

RUNS_PAGE = 50  # runs on a page of the list (the API's default is its own)
MAX_RUNS_LIMIT = 1000
TAG_MAX = 50
# The sorts (selectors.RUN_SORT_FIELDS says what each orders by); the run id breaks ties.
SORT_LABELS = {"-created": "Newest first", "created": "Oldest first", "name": "Name A–Z", "-name": "Name Z–A",
               "-decisions": "Most decisions", "decisions": "Fewest decisions"}
# The list's statuses: a run's own (ready, live, failed: the tool's run failed) and an import's
# (importing: a job still queued or running; failed also takes failed imports, which leave no run).
RUN_STATUSES = {"ready": "Ready", "live": "Live (still being written)", "importing": "Importing",
                "failed": "Failed"}
RUN_LIST_FILTERS = ("q", "kind", "tag", "owner", "since", "until", "status")


def clean_tag(text: str) -> str:
    """A tag as stored: trimmed, inner spaces collapsed, at most TAG_MAX characters."""
    tag = " ".join((text or "").split())
    if not tag:
        raise forms.ValidationError("give a tag")
    if len(tag) > TAG_MAX:
        raise forms.ValidationError("a tag is at most %(n)d characters", params={"n": TAG_MAX})
    return tag


class RunListForm(ParameterForm):
    """The runs list's parameters (the page and GET /api/runs): runs_page() takes `form.filters()`."""

    q = forms.CharField(required=False, max_length=500, label="Search",
                        help_text="name, run id, session id or file name")
    kind = forms.ChoiceField(required=False, label="Kind")
    tag = forms.CharField(required=False, max_length=TAG_MAX, label="Tag")
    owner = forms.CharField(required=False, max_length=150, label="Owner")
    since = forms.DateField(required=False, label="Imported from")
    until = forms.DateField(required=False, label="Imported until")
    status = forms.ChoiceField(required=False, choices=[("", "Any status"), *RUN_STATUSES.items()], label="Status")
    sort = forms.ChoiceField(required=False, choices=list(SORT_LABELS.items()), label="Sort")
    after = forms.IntegerField(required=False, min_value=1, max_value=MAX_RUN_ID,
                               help_text="a run id: the runs after it in this sort (keyset)")
    limit = forms.IntegerField(required=False, min_value=1, max_value=MAX_RUNS_LIMIT)

    def __init__(self, data=None, *args, **kwargs):
        from django.http import QueryDict

        super().__init__(data if data is not None else QueryDict(), *args, **kwargs)
        self.fields["kind"].choices = [("", "Any kind"), *kind_choices()]

    def clean_tag(self):
        text = self.cleaned_data["tag"]
        return clean_tag(text) if text.strip() else ""

    def clean(self):
        data = super().clean()
        since, until = data.get("since"), data.get("until")
        if since and until and since > until:
            self.add_error("until", "is before “Imported from”")
        return data

    def filters(self) -> dict:
        """The given filters as runs_page()'s keyword arguments (dates as the instants they start and end)."""
        data = self.cleaned_data
        found = {name: data[name] for name in ("q", "kind", "tag", "owner", "status") if data.get(name)}
        found["q"] = found.get("q", "").strip() or None
        if data.get("since"):
            found["since"] = _day_start(data["since"])
        if data.get("until"):
            found["until"] = _day_start(data["until"] + dt.timedelta(days=1))
        return {k: v for k, v in found.items() if v}

    def sort_key(self) -> str:
        return self.cleaned_data.get("sort") or "-created"


def _day_start(day: dt.date) -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(day, dt.time.min))


BULK_ACTIONS = {"tag": "Tag", "untag": "Remove tag", "delete": "Delete"}
MAX_BULK = 1000


class RunIdsField(forms.Field):
    """Run ids, the parameter repeated (`run=3&run=7`): the ticked checkboxes."""

    widget = forms.MultipleHiddenInput
    default_error_messages = {"required": "tick at least one run", "invalid": "%(value)r is not a run id",
                              "too_many": "at most %(n)d runs at once"}

    def to_python(self, value):
        values = value if isinstance(value, (list, tuple)) else [value] if value else []
        ids = []
        for v in values:
            text = str(v).strip()
            if not text.isdigit() or not 0 < int(text) <= MAX_RUN_ID:
                raise forms.ValidationError(self.error_messages["invalid"], code="invalid", params={"value": text[:20]})
            ids.append(int(text))
        if len(ids) > MAX_BULK:
            raise forms.ValidationError(self.error_messages["too_many"], code="too_many", params={"n": MAX_BULK})
        return list(dict.fromkeys(ids))


class BulkRunsForm(ParameterForm):
    """The runs list's bulk actions: `do` on the ticked runs (`run`, repeatable); `tag` for tag/untag;
    `next`, the list's querystring to go back to."""

    do = forms.ChoiceField(choices=list(BULK_ACTIONS.items()))
    run = RunIdsField()
    tag = forms.CharField(required=False, max_length=TAG_MAX)
    next = forms.CharField(required=False, max_length=4000)

    def clean(self):
        data = super().clean()
        if data.get("do") in ("tag", "untag"):
            try:
                data["tag"] = clean_tag(data.get("tag", ""))
            except forms.ValidationError as exc:
                self.add_error("tag", exc)
        nxt = data.get("next") or ""
        data["next"] = nxt if nxt.startswith("/?") or nxt == "/" else "/"
        return data


MAX_SEQ = 2**31 - 1


class NoteForm(forms.Form):
    """A note as the pages post it (views/notes.py): where it goes (a decision's `seq`, a cell's key, or
    neither: the run), its text and its labels (ticked `label` boxes and a comma-separated `labels`).
    notes.add checks the rest (labels' shape, the text's length, that the decision exists)."""

    seq = forms.IntegerField(required=False, min_value=0, max_value=MAX_SEQ)
    cell = forms.CharField(required=False)
    text = forms.CharField(required=False, strip=False)
    label = forms.MultipleChoiceField(required=False)  # any word: notes.clean_labels judges it
    labels = forms.CharField(required=False, strip=False)

    def __init__(self, data, *args, **kwargs):
        super().__init__(data, *args, **kwargs)
        self.fields["label"].valid_value = lambda value: True

    def clean_cell(self) -> str:
        return self.cleaned_data["cell"].strip()[:200]

    def all_labels(self) -> list[str]:
        return [*self.cleaned_data["label"], *self.cleaned_data["labels"].split(",")]
