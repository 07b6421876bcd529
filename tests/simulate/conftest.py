"""Fixtures for `hami simulate`: the installed vendors, the example files, and the command line."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from sim_kit import CLUSTER, WORKLOAD, Cli

from hami_core.cli import main
from hami_core.plugins import VendorRegistry, load_vendors
from hami_core.simulate import SimulationResult, simulate


@pytest.fixture(scope="session")
def registry() -> VendorRegistry:
    """Every installed vendor, whatever HAMI_VENDORS says in the environment."""
    return load_vendors(environ={})


@pytest.fixture(scope="session")
def example(registry: VendorRegistry) -> SimulationResult:
    """examples/workload.yaml scheduled on examples/cluster.yaml (once per session)."""
    return simulate(CLUSTER, [WORKLOAD], registry=registry)


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Cli:
    """Run `hami ...` in-process: returns (exit status, stdout, stderr)."""
    monkeypatch.delenv("HAMI_VENDORS", raising=False)
    monkeypatch.delenv("HAMI_DISABLED_VENDORS", raising=False)

    def run(*args: str) -> tuple[int, str, str]:
        code = main(list(args))
        out, err = capsys.readouterr()
        return code, out, err

    return run
