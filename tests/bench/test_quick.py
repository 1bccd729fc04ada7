"""The benchmark suite's quick mode, run as CI runs it, so the suite does not rot.

It checks that a run completes and that every scenario produced its rows with positive
numbers for each of its columns. It never judges timings or ratios: on a shared machine
they say nothing about correctness.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from benchmarks.plan import QUICK
from benchmarks.results import DISTRIBUTION, PORTSIDE
from benchmarks.scenarios import SCENARIOS
from benchmarks.targets import TARGETS

pytestmark = pytest.mark.slow

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(900)
def test_quick_mode_measures_every_scenario(tmp_path: Path) -> None:
    out_json, out_md = tmp_path / "bench.json", tmp_path / "bench.md"
    done = subprocess.run(
        # One round: the test checks that every scenario measures, which one round shows.
        [sys.executable, "-m", "benchmarks", "run", "--quick", "--rounds", "1"]
        + ["--json", str(out_json), "--markdown", str(out_md)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=850,
    )
    assert done.returncode == 0, f"stdout:\n{done.stdout}\nstderr:\n{done.stderr[-5000:]}"
    report = json.loads(out_json.read_text())
    rows = {row["key"]: row for row in report["rows"]}
    for scenario in SCENARIOS:
        # Peak memory is reported per registry though no round measures it.
        columns = scenario.columns or (PORTSIDE, DISTRIBUTION)
        for row in scenario(QUICK).rows():
            assert row.key in rows, f"{scenario.name}: no row {row.key}"
            samples = rows[row.key]["samples"]
            for column in columns:
                assert samples.get(column), f"{row.key}: nothing measured for {column}"
                assert all(value > 0 for value in samples[column]), f"{row.key} {column}: {samples[column]}"
    assert {t["target"] + t["row"] for t in report["targets"]} == {t.text + t.row for t in TARGETS}
    assert all(t["met"] is not None for t in report["targets"]), report["targets"]
    table = out_md.read_text()
    assert "| scenario |" in table and "| machine limit |" in table
    assert "ratio P/D" in done.stdout
