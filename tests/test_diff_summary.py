"""viewer.diff_summary: the per-cell B − A heatmap of a diff."""
import json

import pytest

from viewer import diff, diff_summary, kinds

SPEC = kinds.profile("dynoai").diff


def gradient(seq, rpm_index, kpa_index, result):
    cell = json.dumps({"rpm_index": rpm_index, "kpa_index": kpa_index})
    return (seq, "GRADIENT_LIMITING", None, json.dumps({"result": result}), "limited", cell)


def heat(rows_a, rows_b, metric):
    result = diff.diff_sides(diff.side_from_rows(SPEC, rows_a), diff.side_from_rows(SPEC, rows_b))
    return diff_summary.cell_heatmap(result, metric)


def cell_texts(figure):
    """{(rpm, kPa): text} of every written cell."""
    grid = figure["data"][0]
    return {(y, x): t for y, row in zip(grid["y"], grid["text"]) for x, t in zip(grid["x"], row) if t}


def test_a_cell_only_one_run_corrected_says_which_run_instead_of_staying_blank():
    a = [gradient(0, 0, 0, 1.5), gradient(1, 1, 1, 2.0)]
    b = [gradient(0, 0, 0, 1.0), gradient(1, 2, 2, 3.0)]
    figure = heat(a, b, diff_summary.HEAT_FINAL)
    texts = cell_texts(figure)
    rpm, kpa = figure["data"][0]["y"], figure["data"][0]["x"]
    assert texts[(rpm[0], kpa[0])] == "-0.5"
    assert texts[(rpm[1], kpa[1])] == "A only"
    assert texts[(rpm[2], kpa[2])] == "B only"
    assert figure["data"][0]["z"][1][1] is None  # no B − A to colour: the cell stays blank


def test_decision_counts_count_a_cell_one_run_never_logged_as_zero():
    a = [gradient(0, 0, 0, 1.5), gradient(1, 0, 0, 1.6), gradient(2, 1, 1, 2.0)]
    b = [gradient(0, 0, 0, 1.0)]
    figure = heat(a, b, diff_summary.HEAT_COUNT)
    z = figure["data"][0]["z"]
    assert z[0][0] == -1 and z[1][1] == -1


def clamp(seq, *cells):
    values = {"cells": [{"rpm_index": r, "kpa_index": k, "original": 12.0, "clamped": c} for r, k, c in cells]}
    return (seq, "CLAMPING_APPLIED", None, json.dumps(values), "clamped", None)


def test_the_final_correction_is_the_last_number_logged_for_the_cell_however_the_run_is_read(monkeypatch):
    # A later gradient result, a later clamp (the later of two entries for one cell), and a last
    # gradient without a number, which leaves the value before it; read whole and a row at a time.
    a = [gradient(0, 0, 0, 1.0), gradient(1, 0, 0, 2.0), clamp(2, (1, 1, 9.0), (1, 1, 10.0)),
         gradient(3, 1, 1, 3.0), clamp(4, (1, 1, -10.0)), gradient(5, 2, 2, 4.0), gradient(6, 2, 2, "n/a")]
    b = [gradient(0, 0, 0, 0.0), gradient(1, 1, 1, 0.0), gradient(2, 2, 2, 0.0)]
    expected = {("1500", "35"): "-2", ("2000", "50"): "+10", ("2500", "65"): "-4"}  # B − A
    assert cell_texts(heat(a, b, diff_summary.HEAT_FINAL)) == expected
    monkeypatch.setattr("viewer.diff_side.CHUNK", 1)
    assert cell_texts(heat(a, b, diff_summary.HEAT_FINAL)) == expected


@pytest.mark.parametrize("metric, said", [(diff_summary.HEAT_FINAL, ["A only", "B only"]),
                                          (diff_summary.HEAT_COUNT, ["+1", "-1"])])
def test_a_cell_neither_run_logged_says_nothing(metric, said):
    # (0, 0) and (1, 1) span a rectangle: its other corners belong to neither run
    figure = heat([gradient(0, 0, 0, 1.0)], [gradient(0, 1, 1, 2.0)], metric)
    assert sorted(cell_texts(figure).values()) == said
    assert sum(z is None for row in figure["data"][0]["z"] for z in row) == 2 + (metric == diff_summary.HEAT_FINAL) * 2
