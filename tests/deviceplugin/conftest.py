"""Makes the device-plugin test kit (`dp_kit`) importable and offers the common fixtures."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from dp_kit import NODE, TestGpu, card, node_obj

from hami_core.k8s.memory import MemoryCluster


@pytest.fixture
def gpu() -> TestGpu:
    """The test vendor with four cards (the last on NUMA node 1)."""
    return TestGpu(cards=[card("testgpu", i, numa=i // 2) for i in range(4)])


@pytest.fixture
def cluster() -> Iterator[MemoryCluster]:
    """An in-memory cluster holding this node and another."""
    mem = MemoryCluster()
    mem.add_node(node_obj(NODE))
    mem.add_node(node_obj("node-b"))
    yield mem
