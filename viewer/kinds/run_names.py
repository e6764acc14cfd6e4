"""What each kind calls a run, from what the run says about itself (Profile.run_name).

Each function takes the run (its header fields already filled) and the reader's RunInfo (None when
a run is named again later, e.g. when its manifest arrives) and returns a name, or "" to keep the
file name. The file name itself stays in Run.source_name.
"""
from __future__ import annotations

import re

from ..diff_values import same_value

SEP = " · "

# The DynoAI toolkit's CLI defaults (tools/ai_tuner_toolkit_dyno_v1_2.py, `main`): a run is named by
# the settings it changed. Paths and report text are left out: they differ on every run.
DYNOAI_DEFAULTS = {
    "weighting": "torque",
    "smooth_passes": 2,
    "clamp": 7.0,
    "rear_bias": 0.0,
    "rear_rule_deg": 2.0,
    "hot_extra": -1.0,
    "decel_management": False,
    "decel_severity": "medium",
    "decel_rpm_min": 1500,
    "decel_rpm_max": 5500,
    "balance_cylinders": False,
    "balance_mode": "equalize",
    "balance_max_correction": 3.0,
    "generate_report": False,
}
MAX_SETTINGS = 4


def dynoai(run, info) -> str:
    """`<run_id> · smooth_passes 4, clamp 10`, or `<run_id> · toolkit defaults` when a manifest says so."""
    if not run.run_id:
        return ""
    settings = run.settings if isinstance(run.settings, dict) else {}
    changed = [
        f"{key} {_value(settings[key])}"
        for key, default in DYNOAI_DEFAULTS.items()
        if key in settings and not same_value(settings[key], default)
    ]
    if len(changed) > MAX_SETTINGS:
        changed = changed[:MAX_SETTINGS] + [f"+{len(changed) - MAX_SETTINGS} more"]
    if changed:
        return run.run_id + SEP + ", ".join(changed)
    return run.run_id + SEP + "toolkit defaults" if settings else run.run_id


def session(run, info) -> str:
    """`<config.session_name> · <first 8 of the session id>`."""
    config = run.settings if isinstance(run.settings, dict) else {}
    name = config.get("session_name")
    name = name.strip() if isinstance(name, str) else ""
    short = re.sub(r"[^0-9A-Za-z]", "", run.session_id or "")[:8]
    if name and short:
        return name + SEP + short
    return name or (f"session {short}" if short else "")


def study(run, info) -> str:
    """`<user pseudonym> · <date of the first event>` (the real user id only if ids were kept)."""
    user = run.user_label or ""
    day = run.first_ts.date().isoformat() if run.first_ts else ""
    return SEP.join(part for part in (user, day) if part)


def _value(value) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)[:40]
