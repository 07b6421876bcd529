"""The extender benchmark runs end to end at a tiny size (its figures are not checked here:
speed is measured by `benchmarks/extender.py` itself, never by a test)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_extender_benchmark_runs_both_series_and_states_the_goal() -> None:
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "extender.py"),
            *("--nodes", "20", "--running", "20", "--pods", "15", "--repeat", "1"),
            *("--warmup", "5", "--candidates", "5"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("cluster: 20 nodes x 8 GPUs, 20 running pods; 5 warm-up pods")
    assert any(line.strip().startswith("baseline (direct calls):") for line in lines)
    assert any(line.strip().startswith("http (uvicorn):") for line in lines)
    assert lines[-1].startswith("goal: >= 500 pods/s over HTTP at 20 nodes: ")
