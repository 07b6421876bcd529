"""Makes the scheduler test kit (`extender_kit`) importable and offers its fixtures."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from extender_kit import make_registry

from hami_core.k8s.memory import MemoryCluster
from hami_core.plugins import VendorRegistry
from hami_core.testing import FakeApiServer


@pytest.fixture
def registry() -> VendorRegistry:
    """The test vendors (`tgpu`, and `lockless` which takes no node lock)."""
    return make_registry()


@pytest.fixture
def cluster() -> MemoryCluster:
    """An empty in-memory cluster."""
    return MemoryCluster()


@pytest.fixture
def api() -> Iterator[FakeApiServer]:
    """A running fake apiserver over HTTP."""
    with FakeApiServer() as server:
        yield server
