"""Realistic demo runs of all three kinds, written as real files and imported with run_ingest.

`make run` calls `manage.py load_demo --once` so a first look shows real content: two DynoAI
runs of one dyno log with different settings (a diff pair), a multi-agent session and its
replay that diverges in round 3, and a gzipped study log. Deterministic for a given seed.
"""
from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import json
import random
import uuid
from dataclasses import dataclass
from pathlib import Path

from .kinds.dynoai import KPA_BINS, RPM_BINS


def _ms(t: dt.datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def write_dynoai(folder: Path, *, passes: int, clamp: float, seed: int = 7) -> Path:
    """A toolkit-shaped output folder: session_replay.json and manifest.json (with its sha256)."""
    rng = random.Random(seed)  # the same dyno log for every setting: only the tuning differs
    tune = random.Random(seed * 31 + passes)
    start = dt.datetime(2026, 3, 14, 9, 30, 12, 400000, tzinfo=dt.timezone.utc)
    t = start
    decisions = []

    def log(action, reason, values=None, cell=None, step_ms=0):
        nonlocal t
        t += dt.timedelta(milliseconds=step_ms)
        d = {"timestamp": _ms(t), "action": action, "reason": reason}
        if values is not None:
            d["values"] = values
        if cell is not None:
            d["cell"] = cell
        decisions.append(d)

    grid = {}
    for rpm in RPM_BINS[:9]:
        for kpa in KPA_BINS:
            bias = (rpm - 3000) / 1500 + (kpa - 65) / 40
            for cyl in "fr":
                for _ in range(3):
                    commanded = rng.choice([12.5, 13.0, 13.2])
                    measured = round(commanded * (1 + (bias + rng.gauss(0, 1.2)) / 100), 2)
                    err = round((measured - commanded) / commanded * 100, 2)
                    grid.setdefault((rpm, kpa), []).append(err)
                    log("AFR_CORRECTION", f"Accepted AFR error sample for {cyl} cylinder",
                        {"afr_error_pct": err, "weight": round(rng.uniform(20, 100), 1),
                         "afr_commanded": commanded, "afr_measured": measured},
                        {"rpm": rpm, "kpa": kpa, "cylinder": cyl}, step_ms=rng.choice([0, 0, 1]))
    log("SMOOTHING_START", f"Starting gradient-limited smoothing with {passes} passes, threshold=1.0%",
        {"passes": passes, "gradient_threshold": 1.0}, step_ms=2)
    for _ in range(passes * 4):
        r, c = tune.randrange(9), tune.randrange(5)
        original = round(sum(grid[(RPM_BINS[r], KPA_BINS[c])]) / 6, 2)
        smoothed = round(original * tune.uniform(0.4, 0.8), 2)
        blend = round(tune.uniform(0.5, 0.95), 3)
        log("GRADIENT_LIMITING", "High gradient detected, blending toward original value",
            {"gradient": round(tune.uniform(1.5, 4), 2), "threshold": 1.0, "blend_factor": blend,
             "original": original, "smoothed": smoothed, "result": round(smoothed + blend * (original - smoothed), 2)},
            {"rpm_index": r, "kpa_index": c}, step_ms=tune.choice([0, 1]))
    log("CLAMPING_START", f"Clamping VE corrections to +/- {clamp}%", {"limit": clamp}, step_ms=1)
    over = [(k, sum(v) / len(v) * 3) for k, v in grid.items() if abs(sum(v) / len(v) * 3) > clamp]
    if over:
        cells = [{"rpm_index": RPM_BINS.index(k[0]), "kpa_index": KPA_BINS.index(k[1]), "original": round(v, 2),
                  "clamped": clamp if v > 0 else -clamp} for k, v in over[:10]]
        log("CLAMPING_APPLIED", f"Clamped {len(over)} cells exceeding +/- {clamp}% limit",
            {"clamped_count": len(over), "cells": cells})
    log("ANOMALY_DETECTION_START", "Starting anomaly detection analysis", step_ms=3)
    for rpm, kpa in [(3500, 95), (4500, 35)]:
        log("ANOMALY_DETECTED", "Large VE change vs neighbors; could be data artifact or real airflow quirk.",
            {"type": "Spatial discontinuity", "score": rng.uniform(3, 6)}, {"rpm": rpm, "kpa": kpa}, step_ms=1)
    log("CONFIDENCE_SCORING_START", "Calculating tune confidence score", step_ms=1)
    log("CONFIDENCE_SCORING_COMPLETE", "Tune confidence: 82.5% (B)",
        {"overall_score": 82.5, "letter_grade": "B", "elapsed_ms": 3.21}, step_ms=2)

    run_id = start.strftime("%Y-%m-%dT%H-%M-%SZ-") + hashlib.sha256(f"{passes}{clamp}".encode()).hexdigest()[:6]
    doc = {"schema_version": "1.0", "run_id": run_id, "generated_at": _ms(t + dt.timedelta(milliseconds=5)),
           "total_decisions": len(decisions), "decisions": decisions}
    folder.mkdir(parents=True, exist_ok=True)
    replay = folder / "session_replay.json"
    replay.write_text(json.dumps(doc, indent=2, ensure_ascii=False), encoding="utf-8")
    data = replay.read_bytes()
    manifest = {
        "schema_id": "dynoai.manifest@1", "tool_version": "1.2", "run_id": run_id, "session_id": None,
        "status": {"code": "success", "message": "Run completed", "last_stage": "export"},
        "config": {"args": {"csv": "demo_dyno_pull.csv", "smooth_passes": passes, "clamp": clamp,
                            "weighting": "torque", "rear_bias": 0.0}},
        "outputs": [{"name": "session_replay.json", "path": "session_replay.json", "type": "json",
                     "schema": "session_replay", "rows": None, "cols": None, "size_bytes": len(data),
                     "sha256": hashlib.sha256(data).hexdigest(), "created": doc["generated_at"]}],
    }
    (folder / "manifest.json").write_text(json.dumps(manifest, separators=(",", ":")), encoding="utf-8")
    return replay


PARTY = [("player_01", "Enforcer Kael Dren", 27), ("player_02", "Drifter Sable", 22)]


def write_session(path: Path, *, seed: int = 11, diverge_round: int | None = None, day_offset: int = 0) -> Path:
    """A v1.0-shaped multi-agent session: setup, rounds of declarations and resolutions, debrief."""
    rng = random.Random(seed)
    session = str(uuid.UUID(int=rng.getrandbits(128)))
    t = dt.datetime(2026, 2, 3, 19, 4, 5, 120000) + dt.timedelta(days=day_offset)
    lines = []

    def ev(event_type, **fields):
        nonlocal t
        t += dt.timedelta(milliseconds=rng.randint(5, 900))
        lines.append(json.dumps({"event_type": event_type, "ts": t.isoformat(), "session": session, **fields}))

    ev("session_start", config={"session_name": "demo_depot_heist", "max_turns": 3, "party_size": 2,
                                "llm": {"model": "claude-sonnet-4-5", "temperature": 0.7}},
       random_seed=seed, git_commit="4f2c9ab", version="1.0.0")
    ev("scenario", scenario={"theme": "Corporate espionage", "location": "Freight depot 9",
                             "situation": "Recover the ledger before the auction", "void_level": 2})
    enemy = "enemy_grunt_5d1e2a90"
    ev("enemy_spawn", round=0, enemy_id=enemy, enemy_name="Depot Guard", template="grunt",
       stats={"health": 16, "max_health": 16, "soak": 8}, position="Far-Enemy", tactics="defensive_ranged")
    ev("clock_spawn", clock_name="Alarm", max_ticks=4, description="The depot goes on lockdown")
    hp = {pid: h for pid, _, h in PARTY}
    alarm, calls = 0, {}
    for rnd in range(1, 4):
        ev("round_start", round=rnd)
        ev("declaration_phase_start", round=rnd)
        for pid, name, _ in PARTY:
            calls[pid] = calls.get(pid, -1) + 1
            intent = rng.choice(["Slip past the guard post", "Hack the manifest terminal", "Draw fire from cover"])
            ev("llm_call", round=rnd, agent_id=pid, agent_type="player", call_sequence=calls[pid],
               prompt=[{"role": "system", "content": f"You are {name}."},
                       {"role": "user", "content": f"Round {rnd}. What do you do?"}],
               response=f"{intent}.\nI keep low and move fast.", model="claude-sonnet-4-5", temperature=0.7,
               tokens={"input": rng.randint(900, 1800), "output": rng.randint(80, 300)})
            ev("action_declaration", round=rnd, player_id=pid, character_name=name, initiative=rng.randint(8, 24),
               action={"intent": intent, "attribute": "Agility", "skill": "Stealth"})
        for pid, name, _ in PARTY:
            ev("adjudication_start", round=rnd, action_count=1)
            d20 = rng.randint(1, 20)
            if diverge_round is not None and rnd == diverge_round and pid == PARTY[0][0]:
                d20 = (d20 + 7) % 20 + 1
            total, dc = d20 + 15, 22
            alarm += total < dc
            ev("action_resolution", round=rnd, phase="adjudicate", agent=name, action="resolve",
               roll={"attr": "Agility", "attr_val": 4, "skill": "Stealth", "skill_val": 5, "d20": d20,
                     "total": total, "dc": dc, "margin": total - dc,
                     "tier": "good" if total >= dc else "failure", "success": total >= dc},
               clocks={"Alarm": f"{min(alarm, 4)}/4"}, effects=[])
            if total < dc:
                hp[pid] -= 3
        ev("round_synthesis", round=rnd, synthesis=f"Round {rnd}: the party presses deeper into the depot.")
        for pid, name, max_hp in PARTY:
            ev("character_state", round=rnd, character_id=pid, character_name=name, health=hp[pid],
               max_health=max_hp, wounds=0, void_score=rnd // 2, soulcredit=5 + rnd, position="Near-PC",
               conditions=[], is_defeated=False)
        ev("round_summary", round=rnd, actions_attempted=2, success_count=2 - 0, success_rate=1.0,
           average_margin=0.0, active_enemies=1)
    ev("enemy_defeat", round=3, enemy_id=enemy, enemy_name="Depot Guard", defeat_reason="escaped", rounds_survived=3)
    for pid, name, _ in PARTY:
        ev("mission_debrief", character=name, debrief=f"{name} made it out with the ledger.",
           final_state={"name": name, "void_score": 1, "soulcredit": 8})
    ev("session_end", final_state={"scene_clocks": {"Alarm": {"current": min(alarm, 4), "maximum": 4}}})
    path.write_text("\n".join(lines) + "\n", encoding="ascii")
    return path


def write_study(path: Path, *, seed: int = 5, events: int = 400) -> Path:
    """A gzipped Learning Observer study log: keystrokes into a doc, with periodic saves."""
    rng = random.Random(seed)
    user = "gc-" + "".join(rng.choice("0123456789") for _ in range(21))
    auth = {"providence": "gcu", "safe_user_id": user, "sec": "authenticated", "user_id": user}
    t = dt.datetime(2026, 1, 20, 14, 0, 0, 250000)
    text = "The industrial revolution changed how people worked and lived. "
    out, doc, typed, saves, k = [], "", "", 0, 0
    for i in range(events):
        t += dt.timedelta(milliseconds=rng.randint(60, 400) if i % 80 else rng.randint(20000, 90000))
        if i % 25 == 24:
            # Google Docs saves what was typed since the last save: insert it at the end (1-based), and
            # every third save retype the last three characters (a delete and an insert in one bundle).
            commands = [{"ty": "is", "ibi": len(doc) + 1, "s": typed}]
            doc, typed, saves = doc + typed, "", saves + 1
            if saves % 3 == 0 and len(doc) > 3:
                tail = doc[-3:]
                commands = [{"ty": "mlti", "mts": [*commands, {"ty": "ds", "si": len(doc) - 2, "ei": len(doc)},
                                                    {"ty": "is", "ibi": len(doc) - 2, "s": tail}]}]
            client = {"auth": auth, "bundles": [{"commands": commands}], "doc_id": "1DemoDoc",
                      "event": "google_docs_save", "rev": str(100 + i), "source": "org.mitros.writing_analytics",
                      "timestamp": int(t.timestamp() * 1000), "version": "1.0.0.2"}
        else:
            ch, k = text[k % len(text)], k + 1
            typed += ch
            client = {"auth": auth, "event": "keystroke", "event_type": "keystroke",
                      "keystroke": {"key": ch, "code": "Key" + ch.upper() if ch.isalpha() else "Space",
                                    "type": "keydown", "timeStamp": round(i * 180.5, 1)},
                      "object": {"id": "1DemoDoc", "title": "Essay draft", "tab_id": "t.0"},
                      "source": "org.mitros.writing_analytics", "version": "1.0.0.2"}
        event = {"client": client, "metadata": {"auth": auth, "source": "org.mitros.writing_analytics"},
                 "server": {"executable": "aio_webapp", "ip": "", "origin": "chrome-extension://demo",
                            "time": t.replace(tzinfo=dt.timezone.utc).timestamp()}}
        out.append(json.dumps(event, sort_keys=True) + "\t" + t.isoformat() + "\n")
    with gzip.open(path, "wt", encoding="ascii") as f:
        f.writelines(out)
    return path


def write_all(folder: Path) -> list[list[Path]]:
    """Every demo file, grouped as they should be imported (a replay with its manifest)."""
    a = write_dynoai(folder / "dyno_passes2_clamp7", passes=2, clamp=7.0)
    b = write_dynoai(folder / "dyno_passes4_clamp10", passes=4, clamp=10.0)
    s = write_session(folder / "session_demo_depot_heist.jsonl")
    r = write_session(folder / "session_demo_depot_heist_replay.jsonl", diverge_round=3, day_offset=1)
    study_name = "2026-01-20T14-00-00.250000-0000000003-gc-demo-4242.study.log.gz"
    st = write_study(folder / study_name)
    return [[a, a.parent / "manifest.json"], [b, b.parent / "manifest.json"], [s], [r], [st]]


# -- The tour: what each demo run shows, in one line, and its most telling page (the runs list) ----
DEMO_PREFIX = "demo/"  # load_demo's source names start so
DYNO_A, DYNO_B = "dyno_passes2_clamp7", "dyno_passes4_clamp10"
SESSION, SESSION_REPLAY = "session_demo_depot_heist.jsonl", "session_demo_depot_heist_replay.jsonl"
STUDY_SUFFIX = ".study.log.gz"
STORY_CELL = (3500, 95)  # sampled, smoothed and flagged by anomaly detection: a cell with a story


@dataclass(frozen=True)
class Stop:
    """One demo run on the tour: what it shows (one line) and where to look (a link and its words)."""

    run: object
    line: str
    url: str
    look: str


def tour(runs) -> list[Stop]:
    """The demo runs among `runs` (load_demo's, by their source names), each with its line and link,
    in the order a first look should take them. A run missing from `runs` drops its stop (or its link)."""
    by = {}
    for run in runs:
        name = run.source_name.removeprefix(DEMO_PREFIX)
        if run.source_name.startswith(DEMO_PREFIX):
            key = "study" if name.endswith(STUDY_SUFFIX) else name.split("/", 1)[0]
            by.setdefault(key, run)
    stops = []
    a, b = by.get(DYNO_A), by.get(DYNO_B)
    if a:
        rpm, kpa = STORY_CELL
        stops.append(Stop(a, f"A DynoAI tune of one dyno pull (2 smoothing passes, ±7% clamp): the {rpm} rpm / "
                          f"{kpa} kPa cell's story: its AFR samples, then the anomaly detection flagged there.",
                          f"/runs/{a.pk}/cells/story/?rpm={rpm}&kpa={kpa}", "Cell story"))
    if b:
        line = "The same dyno pull tuned with 4 passes and a ±10% clamp"
        if a:
            stops.append(Stop(b, line + ": the diff against the 2-pass tune opens where the settings first change a step.",
                              f"/diff/?a={a.pk}&b={b.pk}#divergence", "First divergence"))
        else:
            stops.append(Stop(b, line + ".", f"/runs/{b.pk}/cells/", "Cells"))
    s, r = by.get(SESSION), by.get(SESSION_REPLAY)
    if s:
        stops.append(Stop(s, "Two LLM agents play a three-round heist: the replay steps through each call, roll and "
                          "the Alarm clock.", f"/runs/{s.pk}/replay/", "Replay"))
    if r:
        if s:
            stops.append(Stop(r, "The same session replayed with one die changed in round 3: the diff opens at the "
                              "first divergence.", f"/diff/?a={s.pk}&b={r.pk}#divergence", "First divergence"))
        else:
            stops.append(Stop(r, "A replayed session.", f"/runs/{r.pk}/replay/", "Replay"))
    t = by.get("study")
    if t:
        stops.append(Stop(t, "A student's keystrokes in a Google Doc (Learning Observer): the replay types the "
                          "essay back, save by save.", f"/runs/{t.pk}/replay/?step={t.decision_count}", "Replay"))
    return stops
