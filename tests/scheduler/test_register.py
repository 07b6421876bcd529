"""The register loop's handshake pass (HAMi's CheckHealth, reference §1.6), on a usage cache fed
from an in-memory cluster."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from extender_kit import GPU, GPUMEM, HANDSHAKE, annotations_of, eventually, gpu_node, user_pod

from hami_core.k8s.memory import MemoryCluster
from hami_core.plugins import VendorRegistry
from hami_core.scheduler import RegisterLoop
from hami_core.scheduling.cache import UsageCache
from hami_core.scheduling.engine import Engine

NOW = datetime(2026, 5, 1, 10, 0, 0)


class Clock:
    """A settable wall clock for the loop."""

    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def loop_over(
    cluster: MemoryCluster, registry: VendorRegistry, clock: Clock, *, leader: bool = True
) -> tuple[RegisterLoop, UsageCache]:
    cache = UsageCache(registry)
    for node in cluster.list_nodes():
        cache.upsert_node(node)
    loop = RegisterLoop(cluster, cache, registry, is_leader=lambda: leader, now=clock)
    return loop, cache


def refresh(cluster: MemoryCluster, cache: UsageCache) -> None:
    """What the informer does on a node event."""
    for node in cluster.list_nodes():
        cache.upsert_node(node)


def test_the_leader_stamps_nodes_that_need_it_and_followers_write_nothing(
    cluster: MemoryCluster, registry: VendorRegistry, clock: Clock
) -> None:
    cluster.add_node(gpu_node("fresh"))
    cluster.add_node(gpu_node("reported", annotations={HANDSHAKE: "Reported 2026-05-01 09:59:50"}))
    cluster.add_node({"metadata": {"name": "cpu-only"}})

    follower, _ = loop_over(cluster, registry, clock, leader=False)
    assert follower.run_once().written == {}
    assert HANDSHAKE not in annotations_of(cluster.get_node("fresh"))

    leader, _ = loop_over(cluster, registry, clock)
    report = leader.run_once()
    assert report.written == {"fresh": [HANDSHAKE], "reported": [HANDSHAKE]}
    for name in ("fresh", "reported"):
        assert annotations_of(cluster.get_node(name))[HANDSHAKE] == "Requesting_2026-05-01 10:00:00"
    assert HANDSHAKE not in annotations_of(cluster.get_node("cpu-only"))

    refresh(cluster, leader.cache)
    clock.now += timedelta(seconds=30)
    assert leader.run_once().written == {}  # a young stamp waits


def test_a_vendor_whose_plugin_went_away_is_dropped_and_comes_back(
    cluster: MemoryCluster, registry: VendorRegistry, clock: Clock
) -> None:
    stamp = "Requesting_2026-05-01 09:58:00"  # two minutes old
    cluster.add_node(gpu_node("dead", annotations={HANDSHAKE: stamp}, allocatable=0))
    cluster.add_node(gpu_node("alive", annotations={HANDSHAKE: stamp}))
    loop, cache = loop_over(cluster, registry, clock)
    engine = Engine(registry, {}, cache)
    pod = user_pod("p", {GPU: "1", GPUMEM: "1000"})

    report = loop.run_once()
    assert report.unhealthy == [("dead", "tgpu")]
    assert report.written == {}  # the stale stamp stays: no fresh minute for dead cards
    decision = engine.schedule(pod, ["dead"], 0.0)
    assert decision.node is None and decision.failed["dead"] == "NodeInsufficientDevice"
    assert engine.schedule(pod, ["dead", "alive"], 0.0).node == "alive"
    assert annotations_of(cluster.get_node("dead"))[HANDSHAKE] == stamp

    # the device plugin is back: kubelet reports its devices as allocatable again
    node = cluster.get_node("dead")
    status = {**node["status"], "allocatable": {GPU: "8"}}
    cluster.update_status("nodes", "dead", status)
    refresh(cluster, cache)
    assert loop.run_once().recovered == [("dead", "tgpu")]
    assert engine.schedule(pod, ["dead"], 0.0).node == "dead"


def test_followers_apply_the_health_verdict_too(
    cluster: MemoryCluster, registry: VendorRegistry, clock: Clock
) -> None:
    stamp = "Requesting_2026-05-01 09:58:00"
    cluster.add_node(gpu_node("dead", annotations={HANDSHAKE: stamp}, allocatable=0))
    follower, cache = loop_over(cluster, registry, clock, leader=False)
    assert follower.run_once().unhealthy == [("dead", "tgpu")]
    with cache.locked():
        node = cache.node("dead")
        assert node is not None and node.unhealthy == {"tgpu"}


def test_the_loop_runs_on_its_own_and_on_demand(
    cluster: MemoryCluster, registry: VendorRegistry, clock: Clock
) -> None:
    cluster.add_node(gpu_node("n"))
    loop, _ = loop_over(cluster, registry, clock)
    loop.interval = 60.0
    loop.start()
    try:
        eventually(lambda: loop.passes >= 1, what="the first pass")
        passes = loop.passes
        loop.trigger()
        eventually(lambda: loop.passes > passes, what="a triggered pass")
    finally:
        loop.stop()
