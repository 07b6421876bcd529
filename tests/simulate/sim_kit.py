"""Paths of the shipped examples and the shape of the in-process command line (for the tests)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
CLUSTER = str(EXAMPLES / "cluster.yaml")
WORKLOAD = str(EXAMPLES / "workload.yaml")
SNAPSHOT = str(EXAMPLES / "snapshot.yaml")

Cli = Callable[..., tuple[int, str, str]]
"""`cli("simulate", ...)` → (exit status, stdout, stderr)."""
