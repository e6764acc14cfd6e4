"""Compare N runs (issue 17.4): /compare/?run=A&run=B... and GET /api/compare, on the two runs of
dynoai/runs/ (each imported with its whole folder) and the real sample."""

import json
from collections import Counter

import pytest
from django.test import Client

from viewer.ingest import Source, run_ingest
from viewer.models import ApiToken

pytestmark = pytest.mark.django_db

RUNS = "dynoai/runs"
FOLDERS = ("large200k_s2_c7", "large200k_s4_c10")


def import_folder(samples_dir, user, folder):
    path = samples_dir / RUNS / folder
    sources = [Source(f"{folder}/{p.name}", path=p, group=folder) for p in sorted(path.iterdir())]
    return next(r.run for r in run_ingest(owner=user, sources=sources) if r.status == "imported")


@pytest.fixture
def sweep(samples_dir, user):
    return [import_folder(samples_dir, user, folder) for folder in FOLDERS]


@pytest.fixture
def api(user):
    return Client(headers={"Authorization": f"Bearer {ApiToken.issue(user)[1]}"})


def outcomes_read_here(replay_path):
    """By my own reading of the file: counts by action, distinct cells clamped and gradient-limited."""
    decisions = json.loads(replay_path.read_text())["decisions"]
    by_action = Counter(d["action"] for d in decisions)
    clamped = {
        (e["rpm_index"], e["kpa_index"])
        for d in decisions
        if d["action"] == "CLAMPING_APPLIED"
        for e in d["values"]["cells"]
    }
    gradient = {
        (d["cell"]["rpm_index"], d["cell"]["kpa_index"])
        for d in decisions
        if d["action"] == "GRADIENT_LIMITING"
    }
    confidence = [d["values"] for d in decisions if d["action"] == "CONFIDENCE_SCORING_COMPLETE"]
    return {
        "by_action": dict(by_action),
        "cells_clamped": len(clamped),
        "cells_gradient_limited": len(gradient),
        "anomalies": by_action["ANOMALY_DETECTED"],
        "confidence": {k: confidence[-1][k] for k in ("overall_score", "letter_grade")}
        if confidence
        else None,
    }


def test_the_two_sample_runs_differ_in_smooth_passes_and_clamp_only_with_outcomes_as_their_decisions(
    samples_dir, sweep, api
):
    a, b = sweep
    answer = api.get(f"/api/compare?run={a.pk}&run={b.pk}").json()
    assert answer["runs"] == [a.pk, b.pk]
    assert answer["settings"]["differ"] == {"smooth_passes": [2, 4], "clamp": [7.0, 10.0]}
    assert "outdir" not in answer["settings"]["same"] and answer["settings"]["same"]["weighting"] == "torque"
    for run, folder in zip(sweep, FOLDERS):
        expected = outcomes_read_here(samples_dir / RUNS / folder / "session_replay.json")
        assert answer["outcomes"][str(run.pk)] == expected
    assert (
        answer["outcomes"][str(a.pk)]["cells_clamped"] == 1
        and answer["outcomes"][str(b.pk)]["cells_clamped"] == 0
    )
    # The cell that differs most across the two: the one clamped at 7 but not at 10 (its grid values)
    assert answer["cell"] == {"rpm": 6500, "kpa": 95, "values": [-7.0, -9.86]}


def test_the_compare_page_highlights_the_differing_settings_against_outcomes_and_links_each_pair(
    sweep, client_in
):
    a, b = sweep
    response = client_in.get(f"/compare/?run={a.pk}&run={b.pk}")
    assert response.status_code == 200
    page = response.content.decode()
    assert (
        '<tr class="differ"><th scope="row" class="mono">smooth_passes</th><td class="num">2</td><td class="num">4</td>'
        in page
    )
    assert (
        '<tr class="differ"><th scope="row" class="mono">clamp</th><td class="num">7.0</td><td class="num">10.0</td>'
        in page
    )
    assert "Settings that differ (2)" in page
    assert f'href="/diff/?a={a.pk}&amp;b={b.pk}"' in page
    assert page.count('class="multiple-plot"') == 2  # small multiples of the correction grid
    figures = [
        json.loads(part.split(">", 1)[1].split("</script>")[0])
        for part in page.split('<script id="multiple-figure-')[1:]
    ]
    scales = {(f["figure"]["data"][0]["zmin"], f["figure"]["data"][0]["zmax"]) for f in figures}
    assert len(scales) == 1  # one colour scale
    assert "RPM 6500 × kPa 95 across the runs" in page


def test_a_wider_sweep_of_three_and_a_run_without_settings(sweep, import_sample, api):
    real = import_sample("dynoai/real_sample/session_replay.json")
    ids = [r.pk for r in (*sweep, real)]
    answer = api.get("/api/compare?" + "&".join(f"run={i}" for i in ids)).json()
    assert answer["settings"]["not_recorded"] == [real.pk]
    assert answer["settings"]["differ"] == {"smooth_passes": [2, 4, None], "clamp": [7.0, 10.0, None]}
    assert answer["outcomes"][str(real.pk)]["by_action"]["AFR_CORRECTION"] == 98
    assert answer["grids"][2]["source"].startswith(
        "decisions"
    )  # no output files: what its decisions establish


@pytest.mark.parametrize(
    "query, message",
    [
        ("", "run: give 2 to 12 runs (run=A&run=B...), not 0"),
        ("run=1", "run: give 2 to 12 runs (run=A&run=B...), not 1"),
        ("run=1&run=1", "run: a run is given twice"),
        ("run=x&run=2", "run: 'x' is not a run id"),
        ("&".join(f"run={i}" for i in range(1, 14)), "run: give 2 to 12 runs (run=A&run=B...), not 13"),
    ],
)
def test_a_bad_run_list_is_a_400_naming_it(api, client_in, query, message):
    response = api.get(f"/api/compare?{query}")
    assert response.status_code == 400 and response.json() == {"detail": message}
    assert client_in.get(f"/compare/?{query}").status_code == (200 if not query else 400)


def test_another_users_run_is_a_404_and_a_kind_without_tuning_a_400(sweep, import_sample, api, other_user):
    foreign = import_sample("dynoai/real_sample/session_replay.json", owner=other_user)
    assert api.get(f"/api/compare?run={sweep[0].pk}&run={foreign.pk}").status_code == 404
    session = import_sample("session/combat_session_sample.jsonl")
    response = api.get(f"/api/compare?run={sweep[0].pk}&run={session.pk}")
    assert response.status_code == 400 and "has no tuning outcomes" in response.json()["detail"]


@pytest.mark.parametrize("cell, message", [("rpm=3500", "kpa: give rpm and kpa together to pick a cell"),
                                           ("kpa=65", "rpm: give rpm and kpa together to pick a cell")])
def test_half_a_cell_is_a_400_naming_what_is_missing(api, cell, message):
    response = api.get(f"/api/compare?run=1&run=2&{cell}")
    assert response.status_code == 400 and response.json() == {"detail": message}
