"""The bench's table and JSON writer, and one tiny run of the suite. No timing is asserted."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench import report
from bench.report import Figure

ROOT = Path(__file__).resolve().parent.parent


def test_a_rate_ratio_is_ours_over_the_baseline_and_a_time_ratio_the_other_way_round():
    rate = Figure("import", "dynoai 200", "decisions/s", [30.0, 10.0, 20.0], "plain", [40.0, 50.0, 45.0],
                  target_kind="ratio", target=0.5)
    time = Figure("reads", "run page", "ms", [8.0, 12.0, 10.0], "raw SQL", [1.0, 3.0, 2.0],
                  target_kind="max", target=150)
    assert rate.median == 20.0 and rate.ratio == pytest.approx(20.0 / 45.0)
    assert rate.met is False
    assert time.ratio == pytest.approx(2.0 / 10.0)
    assert time.met is True


def test_a_figure_that_is_not_available_has_no_verdict():
    figure = Figure("diff", "diff of two runs", "ms", available=False, target_kind="max", target=2000,
                    note="not available: /diff/ answered 404")
    assert figure.met is None and figure.ratio is None
    assert "not available" in report.table([figure])


def test_the_table_shows_median_min_max_ratio_target_and_verdict():
    figures = [
        Figure("import", "session 200", "decisions/s", [900.0, 1100.0, 1000.0], "sqlite3 executemany",
               [1500.0, 1600.0, 1400.0], target_kind="ratio", target=0.5, note="parse-bound"),
        Figure("import", "session 200 peak RSS", "MB", [410.0], target_kind="max", target=300),
    ]
    text = report.table(figures)
    lines = text.splitlines()
    assert lines[0].split()[:2] == ["section", "measurement"]
    row = next(line for line in lines if "session 200 " in line and "RSS" not in line)
    assert "1,000 (900–1,100)" in row and "1,500 (1,400–1,600) sqlite3 executemany" in row
    assert f"{1000 / 1500:.2f}" in row and "ratio ≥ 0.5" in row and row.rstrip().endswith("met")
    rss = next(line for line in lines if "peak RSS" in line)
    assert "MISSED" in rss and "≤ 300 MB" in rss
    assert "import / session 200: parse-bound" in text
    markdown = report.markdown(figures)
    assert markdown.count("\n") == len(figures) + 1 and "**missed**" in markdown


def test_the_json_carries_every_figure_with_its_statistics(tmp_path):
    figures = [Figure("export", "export.csv", "rows/s", [3.0, 1.0, 2.0], "raw cursor", [4.0, 4.0],
                      target_kind="min", target=200_000)]
    out = tmp_path / "bench" / "latest.json"
    report.write_json(out, figures, settings={"sizes": [200]}, machine_info=report.machine("sqlite"))
    doc = json.loads(out.read_text())
    (figure,) = doc["figures"]
    assert doc["settings"] == {"sizes": [200]} and doc["machine"]["database"] == "sqlite"
    assert (figure["median"], figure["min"], figure["max"]) == (2.0, 1.0, 3.0)
    assert figure["baseline_median"] == 4.0 and figure["ratio"] == 0.5
    assert figure["met"] is False and figure["target_text"] == "≥ 200,000 rows/s"


@pytest.mark.slow
def test_a_tiny_bench_run_measures_every_kind_and_writes_its_json(tmp_path):
    out = tmp_path / "latest.json"
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REPLAYWEB_VAR_DIR")}
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "--sizes", "200", "--repeat", "1", "--sections", "import,reads,export",
         "--out", str(out), "--quiet"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    doc = json.loads(out.read_text())
    names = {(f["section"], f["name"]) for f in doc["figures"]}
    for kind in ("dynoai", "session", "study"):
        assert ("import", f"{kind} 200") in names and ("import", f"{kind} 200 peak RSS") in names
    rates = [f for f in doc["figures"] if f["section"] == "import" and f["unit"] == "decisions/s"]
    assert all(f["ratio"] is not None and f["samples"] for f in rates)
    assert any(f["section"] == "reads" for f in doc["figures"])
    assert "import" in proc.stdout and "ratio" in proc.stdout
