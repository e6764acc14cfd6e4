"""N runs side by side (issue 17.4): the one compare report the page and the API render.

Runs are given with their kind's TuningSpec (viewer/tuning.py); this module never asks a kind. The
settings are split into those that differ across the runs and those all share; each run's outcomes
are the spec's; the correction grids are drawn as small multiples on one colour scale; one cell's
value is read across the runs. Plain data in and out: no request here.
"""

from __future__ import annotations

from django import forms

from . import heatmap, kinds
from .diff_values import same_value
from .filters import ListField, ParameterForm
from .selectors import get_run_or_404

RUN = "run"
CELL_RPM, CELL_KPA = "rpm", "kpa"
MIN_RUNS, MAX_RUNS = 2, 12
MISSING = None  # a setting a run does not record


def _run_id(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise forms.ValidationError("%(v)r is not a run id", params={"v": text[:30]}) from None
    if not 1 <= value <= 2**63 - 1:
        raise forms.ValidationError("%(v)r is not a run id", params={"v": text[:30]})
    return value


class CompareForm(ParameterForm):
    run = ListField(item=_run_id)
    rpm = forms.IntegerField(required=False, min_value=-(2**31), max_value=2**31 - 1)
    kpa = forms.IntegerField(required=False, min_value=-(2**31), max_value=2**31 - 1)

    def clean_run(self):
        runs = self.cleaned_data["run"]
        if len(set(runs)) != len(runs):
            raise forms.ValidationError("a run is given twice")
        if not MIN_RUNS <= len(runs) <= MAX_RUNS:
            raise forms.ValidationError(
                f"give {MIN_RUNS} to {MAX_RUNS} runs (run=A&run=B...), not {len(runs)}"
            )
        return runs

    def clean(self):
        """A cell is an RPM and a kPa: one without the other names no cell, and says so."""
        data = super().clean()
        rpm, kpa = data.get(CELL_RPM), data.get(CELL_KPA)
        if (rpm is None) != (kpa is None) and not ({CELL_RPM, CELL_KPA} & set(self.errors)):
            missing = CELL_KPA if kpa is None else CELL_RPM
            self.add_error(missing, f"give {CELL_RPM} and {CELL_KPA} together to pick a cell")
        return data


def split_settings(settings: list[dict]) -> tuple[dict, dict]:
    """({name: [value per run]} for the settings that differ, {name: value} for those all share).
    A run that records no settings at all (a replay imported without its manifest) is left out of the
    comparison: its values are None, and it makes no setting differ."""
    recorded = [s for s in settings if s]
    names = list(dict.fromkeys(name for s in recorded for name in s))
    differ, same = {}, {}
    for name in names:
        values = [s.get(name, MISSING) for s in recorded]
        if all(name in s for s in recorded) and all(same_value(values[0], v) for v in values[1:]):
            same[name] = values[0]
        else:
            differ[name] = [s.get(name, MISSING) if s else MISSING for s in settings]
    return differ, same


def compare(*, runs: list, specs: list, cell: tuple | None = None) -> dict:
    """The report of `runs` (each with its TuningSpec in `specs`): settings, outcomes, correction grids,
    one cell across the runs (`cell` = (rpm, kpa); default the cell whose value varies most)."""
    settings = [spec.settings(run) for run, spec in zip(runs, specs)]
    differ, same = split_settings(settings)
    outcomes = {run.pk: spec.outcomes(run) for run, spec in zip(runs, specs)}
    grids = [spec.correction(run) for run, spec in zip(runs, specs)]
    if cell is None:
        cell = _most_varied(grids)
    return {
        "runs": [run.pk for run in runs],
        "settings": {
            "differ": differ,
            "same": same,
            "not_recorded": [r.pk for r, s in zip(runs, settings) if not s],
        },
        "outcomes": outcomes,
        "grids": grids,
        "cell": {"rpm": cell[0], "kpa": cell[1], "values": [_value(g, *cell) for g in grids]}
        if cell
        else None,
        "pairs": [(a.pk, b.pk) for i, a in enumerate(runs) for b in runs[i + 1 :]],
    }


def _value(grid: dict | None, rpm, kpa):
    if grid is None:
        return None
    try:
        return grid["values"][list(grid["rows"]).index(rpm)][list(grid["cols"]).index(kpa)]
    except (ValueError, IndexError):
        return None


def _most_varied(grids: list) -> tuple | None:
    cells = {(r, k) for g in grids if g for r in g["rows"] for k in g["cols"]}
    best, spread = None, -1.0
    for rpm, kpa in sorted(cells, key=lambda c: (str(c[0]), str(c[1]))):
        values = [v for v in (_value(g, rpm, kpa) for g in grids) if isinstance(v, (int, float))]
        if values and max(values) - min(values) > spread:
            best, spread = (rpm, kpa), max(values) - min(values)
    return best


def small_multiples(grids: list, *, titles: list[str], value_title: str, cell: tuple | None = None) -> list:
    """One heatmap figure per grid (None: that run has none), all on one symmetric colour scale."""
    values = [v for g in grids if g for row in g["values"] for v in row if isinstance(v, (int, float))]
    bound = max((abs(v) for v in values), default=1.0) or 1.0
    out = []
    for grid, title in zip(grids, titles):
        if grid is None:
            out.append(None)
            continue
        rows, cols = [str(r) for r in grid["rows"]], [str(c) for c in grid["cols"]]
        selected = None
        if cell and cell[0] in grid["rows"] and cell[1] in grid["cols"]:
            selected = (list(grid["rows"]).index(cell[0]), list(grid["cols"]).index(cell[1]))
        text = [["" if v is None else f"{v:+.2f}" for v in row] for row in grid["values"]]
        fig = heatmap.figure(
            rows=rows,
            columns=cols,
            z=grid["values"],
            text=text,
            value_title=value_title,
            diverging=True,
            selected=selected,
            height=360,
        )
        fig["data"][0].update(zmin=-bound, zmax=bound, zmid=0, showscale=all(o is None for o in out))
        fig["data"][0]["textfont"] = {"size": 9}
        fig["layout"]["margin"]["t"] = 10
        out.append({"figure": fig, "title": title, "source": grid["source"]})
    return out


def compared_runs(user, ids: list[int]) -> tuple[list, list]:
    """The runs (each the user's, or a 404) and their TuningSpecs; ValueError for a run without one."""
    runs = [get_run_or_404(user, run_id) for run_id in ids]
    specs = [kinds.profile(run).tuning for run in runs]
    for run, spec in zip(runs, specs):
        if spec is None:
            raise ValueError(f"run {run.pk} is a {kinds.profile(run).label}: its kind has no tuning outcomes")
    return runs, specs
