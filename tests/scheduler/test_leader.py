"""Two scheduler replicas on one cluster: one Lease holder writes the node handshakes, both
answer filter and bind, and a follower takes over within one lease period."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest
from extender_kit import (
    GPU,
    GPUMEM,
    HANDSHAKE,
    KubeScheduler,
    annotations_of,
    eventually,
    fast_settings,
    gpu_node,
    running_scheduler,
    user_pod,
)

from hami_core.k8s.memory import MemoryCluster
from hami_core.plugins import VendorRegistry
from hami_core.scheduler import LeaderElector, SchedulerService

LEASE = 1.0
RETRY = 0.1


def written(service: SchedulerService) -> float:
    """Handshake stamps this replica wrote."""
    value = service.metrics.registry.get_sample_value("hami_scheduler_handshakes_written_total")
    return value or 0.0


@pytest.fixture
def replicas(
    cluster: MemoryCluster, registry: VendorRegistry
) -> Iterator[tuple[tuple[SchedulerService, str], tuple[SchedulerService, str]]]:
    cluster.add_node(gpu_node("node-a"))
    one = running_scheduler(
        cluster, registry, fast_settings(identity="one", lease_duration=LEASE, retry_period=RETRY)
    )
    two = running_scheduler(
        cluster, registry, fast_settings(identity="two", lease_duration=LEASE, retry_period=RETRY)
    )
    first = one.__enter__()
    second = two.__enter__()
    try:
        yield first, second
    finally:
        two.__exit__(None, None, None)
        one.__exit__(None, None, None)


def test_only_the_leader_writes_and_a_follower_takes_over_within_a_lease(
    cluster: MemoryCluster,
    replicas: tuple[tuple[SchedulerService, str], tuple[SchedulerService, str]],
) -> None:
    (one, _), (two, _) = replicas
    eventually(lambda: one.is_leader or two.is_leader, what="a leader")
    leader, follower = (one, two) if one.is_leader else (two, one)
    assert not follower.is_leader
    lease = cluster.get_lease("kube-system", "hami-scheduler-extender")["spec"]
    assert lease["holderIdentity"] == leader.settings.identity
    assert lease["leaseDurationSeconds"] == 1
    assert lease["renewTime"].endswith("Z") and "." in lease["renewTime"]

    stamp = eventually(
        lambda: annotations_of(cluster.get_node("node-a")).get(HANDSHAKE), what="a handshake"
    )
    assert stamp.startswith("Requesting_")
    time.sleep(3 * leader.settings.register_interval)  # several passes on both replicas
    assert written(leader) >= 1
    assert written(follower) == 0

    # the leader dies without handing the lease back
    leader.stop(release_lease=False)
    crashed = time.monotonic()
    eventually(lambda: follower.is_leader, timeout=3 * LEASE, what="the follower to lead")
    assert time.monotonic() - crashed <= LEASE + 3 * RETRY
    lease = cluster.get_lease("kube-system", "hami-scheduler-extender")["spec"]
    assert lease["holderIdentity"] == follower.settings.identity
    assert lease["leaseTransitions"] == 1

    # the new leader answers the node's next handshake need
    cluster.patch_node_metadata("node-a", annotations={HANDSHAKE: "Reported_2024-05-01 10:00:00"})
    eventually(
        lambda: annotations_of(cluster.get_node("node-a"))[HANDSHAKE].startswith("Requesting_"),
        what="the new leader's handshake",
    )
    assert written(follower) >= 1


def test_a_stopping_leader_hands_the_lease_over_at_once(
    replicas: tuple[tuple[SchedulerService, str], tuple[SchedulerService, str]],
) -> None:
    (one, _), (two, _) = replicas
    eventually(lambda: one.is_leader or two.is_leader, what="a leader")
    leader, follower = (one, two) if one.is_leader else (two, one)
    leader.stop()
    released = time.monotonic()
    eventually(lambda: follower.is_leader, what="the follower to lead")
    assert time.monotonic() - released < LEASE / 2


def test_followers_answer_filter_and_bind_too(
    cluster: MemoryCluster,
    replicas: tuple[tuple[SchedulerService, str], tuple[SchedulerService, str]],
) -> None:
    (one, url_one), (two, url_two) = replicas
    eventually(lambda: one.is_leader or two.is_leader, what="a leader")
    follower_url = url_two if one.is_leader else url_one
    with httpx.Client(base_url=follower_url) as http:
        scheduler = KubeScheduler(http)
        pod = cluster.add_pod(user_pod("p", {GPU: "1", GPUMEM: "1000"}))
        assert scheduler.filter(pod, ["node-a"])["NodeNames"] == ["node-a"]
        assert scheduler.bind(cluster.get_pod("default", "p"), "node-a") == {"Error": ""}
    # the leader's cache learns the decision from the pod watch
    leader = one if one.is_leader else two
    eventually(
        lambda: leader.cache.holding("default/p") is not None, what="the leader to count the pod"
    )


def test_expiry_is_judged_on_the_followers_own_clock(cluster: MemoryCluster) -> None:
    now = [100.0]
    a = LeaderElector(cluster, "ns", "lease", "a", lease_duration=1.0, retry_period=0.1)
    b = LeaderElector(
        cluster, "ns", "lease", "b", lease_duration=1.0, retry_period=0.1, monotonic=lambda: now[0]
    )
    assert a.try_acquire_or_renew() == "leader"
    assert b.try_acquire_or_renew() == "follower"
    first = cluster.get_lease("ns", "lease")["spec"]
    assert first["leaseTransitions"] == 0
    assert a.try_acquire_or_renew() == "leader"  # a renewal moves renewTime only
    renewed = cluster.get_lease("ns", "lease")["spec"]
    assert renewed["acquireTime"] == first["acquireTime"]
    assert renewed["renewTime"] >= first["renewTime"]

    now[0] += 0.9
    assert b.try_acquire_or_renew() == "follower"  # b saw the renewal change the record
    now[0] += 0.9
    assert b.try_acquire_or_renew() == "follower"  # 0.9 s since b saw the record change
    now[0] += 0.2
    assert b.try_acquire_or_renew() == "leader"
    taken = cluster.get_lease("ns", "lease")["spec"]
    assert (taken["holderIdentity"], taken["leaseTransitions"]) == ("b", 1)
    assert taken["acquireTime"] == taken["renewTime"]
    assert a.try_acquire_or_renew() == "follower"
