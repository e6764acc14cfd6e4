"""The cell story (issue 17.2): everything that happened to one cell, in file order, read here from the
files themselves and compared with GET /api/runs/{id}/cells/story and the story card."""

import json

import pytest
from django.test import Client

from viewer.ingest import Source, run_ingest
from viewer.models import ApiToken

pytestmark = pytest.mark.django_db

RUNS = "dynoai/runs"
FOLDERS = ("large200k_s2_c7", "large200k_s4_c10")
RPM_BINS = [1500, 2000, 2500, 3000, 3500, 4000, 4500, 5000, 5500, 6000, 6500]
KPA_BINS = [35, 50, 65, 80, 95]


def import_folder(samples_dir, user, folder):
    path = samples_dir / RUNS / folder
    sources = [Source(f"{folder}/{p.name}", path=p, group=folder) for p in sorted(path.iterdir())]
    return next(r.run for r in run_ingest(owner=user, sources=sources) if r.status == "imported")


def expected_story(replay_path, rpm, kpa, cylinder=None):
    """My own reading: (seq, action) of each decision whose cell is (rpm, kpa): by bins (AFR samples of
    the cylinder asked for, anomalies), by index (gradient limiting), or listed in values.cells (clamping)."""
    decisions = json.loads(replay_path.read_text())["decisions"]
    index = (RPM_BINS.index(rpm), KPA_BINS.index(kpa))
    out = []
    for seq, d in enumerate(decisions):
        cell, values = d.get("cell") or {}, d.get("values") or {}
        if cell.get("rpm") == rpm and cell.get("kpa") == kpa:
            if cylinder is None or "cylinder" not in cell or cell["cylinder"] == cylinder:
                out.append((seq, d["action"]))
        elif (cell.get("rpm_index"), cell.get("kpa_index")) == index or any(
            (e.get("rpm_index"), e.get("kpa_index")) == index for e in values.get("cells") or []
        ):
            out.append((seq, d["action"]))
    return out


@pytest.fixture
def api(user):
    return Client(headers={"Authorization": f"Bearer {ApiToken.issue(user)[1]}"})


def story(api, run, **params):
    response = api.get(f"/api/runs/{run.pk}/cells/story", params)
    assert response.status_code == 200, response.content
    return response.json()


@pytest.mark.parametrize("folder", FOLDERS)
def test_the_story_of_3500_65_lists_exactly_the_decisions_of_that_cell_in_file_order(
    samples_dir, user, api, folder
):
    run = import_folder(samples_dir, user, folder)
    expected = expected_story(samples_dir / RUNS / folder / "session_replay.json", 3500, 65)
    answer = story(api, run, rpm=3500, kpa=65)
    assert [(d["seq"], d["action"]) for d in answer["decisions"]] == expected
    actions = {a for _, a in expected}
    assert {"AFR_CORRECTION", "GRADIENT_LIMITING"} <= actions  # index-only gradient cell mapped to the bins
    # The final correction is the VE grid's, as the CSV writes it ('-1.11)
    assert answer["final"] == {"value": -1.11, "source": "VE_Correction_Delta_DYNO.csv", "seq": None}
    assert answer == story(api, run, rpm_index=4, kpa_index=2)


def test_the_story_of_3500_65_on_the_real_sample_and_its_final_from_the_last_decision(
    samples_dir, import_sample, api
):
    run = import_sample("dynoai/real_sample/session_replay.json", "dynoai/real_sample/manifest.json")
    expected = expected_story(samples_dir / "dynoai/real_sample/session_replay.json", 3500, 65)
    answer = story(api, run, rpm=3500, kpa=65)
    assert [(d["seq"], d["action"]) for d in answer["decisions"]] == expected
    assert expected  # the real sample has samples there
    last = [d for d in answer["decisions"] if d["action"] == "GRADIENT_LIMITING"]
    if last:  # no output grids kept: the last decision's result
        assert answer["final"] == {
            "value": last[-1]["result"],
            "source": "decision",
            "seq": last[-1]["seq"],
            "action": "GRADIENT_LIMITING",
        }
    else:
        assert answer["final"] is None


def test_a_cylinder_keeps_its_own_afr_samples_and_the_combined_grid_steps(samples_dir, user, api):
    run = import_folder(samples_dir, user, FOLDERS[0])
    path = samples_dir / RUNS / FOLDERS[0] / "session_replay.json"
    for cyl in ("f", "r"):
        answer = story(api, run, rpm=3500, kpa=65, cylinder=cyl)
        assert [(d["seq"], d["action"]) for d in answer["decisions"]] == expected_story(path, 3500, 65, cyl)
        assert {d["cylinder"] for d in answer["decisions"] if d["action"] == "AFR_CORRECTION"} == {cyl}


def test_the_story_carries_each_steps_values(samples_dir, user, api):
    run = import_folder(samples_dir, user, FOLDERS[0])
    afr, gradient = story(api, run, rpm=3500, kpa=65)["decisions"][0], None
    assert afr == {
        "seq": 33,
        "action": "AFR_CORRECTION",
        "stage": "AFR correction",
        "t_ms": afr["t_ms"],
        "cylinder": "f",
        "afr_error_pct": 1.52,
        "weight": 87.2,
        "afr_commanded": 12.71,
        "afr_measured": 12.52,
    }
    gradient = next(
        d for d in story(api, run, rpm=3500, kpa=65)["decisions"] if d["action"] == "GRADIENT_LIMITING"
    )
    assert (gradient["seq"], gradient["original"], gradient["smoothed"], gradient["result"]) == (
        337,
        -0.98,
        -1.69,
        -0.98,
    )
    # The clamped cell of this run: before -> after, and the limit from CLAMPING_START
    (clamp,) = [
        d for d in story(api, run, rpm=6500, kpa=95)["decisions"] if d["action"] == "CLAMPING_APPLIED"
    ]
    assert (clamp["seq"], clamp["original"], clamp["clamped"], clamp["limit"]) == (355, -9.86, -7.0, 7.0)


@pytest.mark.parametrize(
    "query, message",
    [
        ("rpm=x&kpa=65", "rpm: Enter a whole number."),
        ("rpm=3500", "kpa: give both rpm and kpa"),
        ("rpm_index=40&kpa_index=2", "rpm_index: [40, 2] is outside the standard 11 × 5 grid"),
        ("rpm=3500&kpa=65&cylinder=z", "cylinder: 'z' is not one of both, f, r"),
    ],
)
def test_a_bad_cell_is_a_400_naming_the_parameter(samples_dir, import_sample, api, query, message):
    run = import_sample("dynoai/real_sample/session_replay.json")
    response = api.get(f"/api/runs/{run.pk}/cells/story?{query}")
    assert response.status_code == 400 and response.json() == {"detail": message}


def test_a_kind_without_tuning_has_no_story_and_another_users_run_is_a_404(import_sample, api, other_user):
    session = import_sample("session/combat_session_sample.jsonl")
    assert api.get(f"/api/runs/{session.pk}/cells/story?rpm=1&kpa=2").status_code == 404
    foreign = import_sample("dynoai/real_sample/session_replay.json", owner=other_user)
    assert api.get(f"/api/runs/{foreign.pk}/cells/story?rpm=3500&kpa=65").status_code == 404


def test_a_long_story_card_lists_the_first_steps_of_each_action_and_counts_the_rest():
    from viewer.cell_story import compact

    steps = [{"seq": i, "action": "AFR_CORRECTION"} for i in range(40)] + [
        {"seq": 40, "action": "GRADIENT_LIMITING"}
    ]
    shown, left = compact(steps, per_action=30)
    assert [d["seq"] for d in shown] == [*range(30), 40] and left == {"AFR_CORRECTION": 10}
