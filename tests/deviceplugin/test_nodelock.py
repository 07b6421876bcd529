"""The node lock: taken with a resourceVersion precondition, reentrant, broken when stale, and
released only by its holder — in memory and over HTTP with the real client."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from dp_kit import NODE, NS, node_annotations, node_obj

from hami_core.k8s.cluster import Cluster, Unavailable
from hami_core.k8s.kube import KubeCluster
from hami_core.k8s.memory import MemoryCluster
from hami_core.nodelock import (
    NodeLockContention,
    NodeLockError,
    lock_holder,
    lock_node,
    release_node_lock,
)
from hami_core.protocol import parse_node_lock
from hami_core.protocol.keys import NODE_LOCK
from hami_core.testing import FakeApiServer

T0 = datetime(2026, 5, 1, 10, 0, 0, tzinfo=UTC)


def _pod(name: str, phase: str = "Pending") -> dict[str, object]:
    return {
        "metadata": {"name": name, "namespace": NS},
        "spec": {"containers": [{"name": "c", "image": "x"}]},
        "status": {"phase": phase},
    }


def _holder(cluster: Cluster) -> tuple[str, str] | None:
    lock = lock_holder(cluster.get_node(NODE))
    return (lock.namespace, lock.name) if lock else None


def test_takes_a_free_lock_with_hamis_value(cluster: MemoryCluster) -> None:
    lock_node(cluster, NODE, NS, "p1", T0)
    assert node_annotations(cluster)[NODE_LOCK] == "2026-05-01T10:00:00Z,default,p1"


def test_is_reentrant_for_the_same_pod(cluster: MemoryCluster) -> None:
    lock_node(cluster, NODE, NS, "p1", T0)
    lock_node(cluster, NODE, NS, "p1", T0 + timedelta(seconds=10))
    assert _holder(cluster) == (NS, "p1")


def test_another_live_pod_meets_contention(cluster: MemoryCluster) -> None:
    cluster.add_pod(_pod("p1"))
    lock_node(cluster, NODE, NS, "p1", T0)
    with pytest.raises(NodeLockContention, match="node node-a has been locked within 0:05:00"):
        lock_node(cluster, NODE, NS, "p2", T0 + timedelta(minutes=4))
    assert _holder(cluster) == (NS, "p1")


def test_an_expired_lock_is_taken_over(cluster: MemoryCluster) -> None:
    cluster.add_pod(_pod("p1"))
    lock_node(cluster, NODE, NS, "p1", T0)
    lock_node(cluster, NODE, NS, "p2", T0 + timedelta(minutes=5, seconds=1))
    assert _holder(cluster) == (NS, "p2")


def test_the_timeout_is_configurable(cluster: MemoryCluster) -> None:
    cluster.add_pod(_pod("p1"))
    lock_node(cluster, NODE, NS, "p1", T0)
    with pytest.raises(NodeLockContention):
        lock_node(cluster, NODE, NS, "p2", T0 + timedelta(seconds=20), timeout=30)
    lock_node(cluster, NODE, NS, "p2", T0 + timedelta(seconds=31), timeout=30)
    assert _holder(cluster) == (NS, "p2")


@pytest.mark.parametrize("gone", ["deleted", "Failed", "Succeeded", "terminating"])
def test_a_lock_whose_holder_is_gone_is_taken_over(cluster: MemoryCluster, gone: str) -> None:
    if gone != "deleted":
        pod = _pod("p1", phase=gone if gone != "terminating" else "Pending")
        if gone == "terminating":
            pod["metadata"] = {
                "name": "p1",
                "namespace": NS,
                "deletionTimestamp": "2026-05-01T10:00:00Z",
            }
        cluster.add_pod(pod)
    lock_node(cluster, NODE, NS, "p1", T0)
    lock_node(cluster, NODE, NS, "p2", T0 + timedelta(seconds=1))
    assert _holder(cluster) == (NS, "p2")


def test_an_unreadable_lock_is_broken(cluster: MemoryCluster) -> None:
    cluster.patch_node_metadata(NODE, annotations={NODE_LOCK: "lock"})
    lock_node(cluster, NODE, NS, "p2", T0)
    assert _holder(cluster) == (NS, "p2")


def test_a_fresh_legacy_lock_blocks_and_an_old_one_does_not(cluster: MemoryCluster) -> None:
    cluster.patch_node_metadata(NODE, annotations={NODE_LOCK: "2026-05-01T10:00:00Z"})
    with pytest.raises(NodeLockContention, match="a legacy lock"):
        lock_node(cluster, NODE, NS, "p2", T0 + timedelta(minutes=1))
    lock_node(cluster, NODE, NS, "p2", T0 + timedelta(minutes=6))
    assert _holder(cluster) == (NS, "p2")


def test_a_missing_node_is_an_error_not_a_retry_loop(cluster: MemoryCluster) -> None:
    with pytest.raises(NodeLockError, match="node nowhere: cannot lock"):
        lock_node(cluster, "nowhere", NS, "p1", T0, sleep=lambda s: pytest.fail("slept"))


def test_release_removes_only_the_holders_lock(cluster: MemoryCluster) -> None:
    lock_node(cluster, NODE, NS, "p1", T0)
    assert release_node_lock(cluster, NODE, NS, "p2") is False
    assert _holder(cluster) == (NS, "p1")
    assert release_node_lock(cluster, NODE, NS, "p1") is True
    assert NODE_LOCK not in node_annotations(cluster)
    assert release_node_lock(cluster, NODE, NS, "p1") is False


def test_release_with_skip_owner_check_removes_any_lock(cluster: MemoryCluster) -> None:
    lock_node(cluster, NODE, NS, "p1", T0)
    assert release_node_lock(cluster, NODE, NS, "other", skip_owner_check=True) is True
    assert NODE_LOCK not in node_annotations(cluster)


def test_release_of_a_missing_node_is_a_no_op(cluster: MemoryCluster) -> None:
    assert release_node_lock(cluster, "nowhere", NS, "p1") is False


def test_release_never_removes_a_lock_replaced_after_it_was_read(cluster: MemoryCluster) -> None:
    lock_node(cluster, NODE, NS, "p1", T0)
    stale = cluster.get_node(NODE)
    cluster.patch_node_metadata(NODE, annotations={NODE_LOCK: "2026-05-01T10:09:00Z,default,p2"})
    assert release_node_lock(cluster, NODE, NS, "p1", current=stale) is False
    assert _holder(cluster) == (NS, "p2")


@pytest.fixture
def server() -> Iterator[FakeApiServer]:
    with FakeApiServer() as fake:
        fake.state.add_node(node_obj(NODE))
        yield fake


@pytest.fixture
def kube(server: FakeApiServer) -> Iterator[KubeCluster]:
    cluster = server.kube_cluster(request_timeout=5.0)
    yield cluster
    cluster.close()


def test_the_lock_patch_carries_the_resource_version(
    server: FakeApiServer, kube: KubeCluster
) -> None:
    lock_node(kube, NODE, NS, "p1", T0)
    patches = server.requests_matching("PATCH", r"/api/v1/nodes/node-a$")
    assert len(patches) == 1
    assert patches[0].body["metadata"]["resourceVersion"]
    assert parse_node_lock(node_annotations(kube)[NODE_LOCK]).held_by(NS, "p1")


def test_racing_pods_over_http_leave_exactly_one_holder(
    server: FakeApiServer, kube: KubeCluster
) -> None:
    for i in range(6):
        server.state.add_pod(_pod(f"p{i}"))
    outcomes: dict[str, str] = {}
    start = threading.Barrier(6)

    def take(name: str) -> None:
        start.wait()
        try:
            lock_node(kube, NODE, NS, name, backoff=0.001)
            outcomes[name] = "won"
        except NodeLockContention:
            outcomes[name] = "contention"

    threads = [threading.Thread(target=take, args=(f"p{i}",)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    winners = [n for n, o in outcomes.items() if o == "won"]
    assert len(outcomes) == 6
    assert len(winners) == 1
    assert _holder(kube) == (NS, winners[0])


def test_transient_apiserver_errors_are_retried(server: FakeApiServer, kube: KubeCluster) -> None:
    server.faults.fail_next("PATCH", r"/api/v1/nodes/node-a$", 500, count=2)
    lock_node(kube, NODE, NS, "p1", T0, backoff=0.001)
    assert _holder(kube) == (NS, "p1")


def test_a_persistently_failing_apiserver_ends_in_a_lock_error(cluster: MemoryCluster) -> None:
    class Down(MemoryCluster):
        def patch_node_metadata(self, *args: object, **kwargs: object) -> dict[str, object]:
            raise Unavailable("apiserver is down", status=503)

    down = Down()
    down.add_node(node_obj(NODE))
    slept: list[float] = []
    with pytest.raises(NodeLockError, match="after 3 attempts: apiserver is down"):
        lock_node(down, NODE, NS, "p1", T0, retries=3, sleep=slept.append)
    assert len(slept) == 2


def test_an_ownerless_legacy_lock_is_released_by_anyone_as_in_hami(
    cluster: MemoryCluster,
) -> None:
    cluster.patch_node_metadata(NODE, annotations={NODE_LOCK: "2026-05-01T10:00:00Z"})
    assert release_node_lock(cluster, NODE, NS, "p1") is True
    assert NODE_LOCK not in node_annotations(cluster)


def test_an_unreadable_lock_is_left_alone_on_release(cluster: MemoryCluster) -> None:
    cluster.patch_node_metadata(NODE, annotations={NODE_LOCK: "a,b"})
    assert release_node_lock(cluster, NODE, NS, "p1") is False
    assert lock_holder(cluster.get_node(NODE)) is None
    assert node_annotations(cluster)[NODE_LOCK] == "a,b"


def test_a_vendors_own_lock_key_is_taken_read_and_released_beside_hamis(
    cluster: MemoryCluster,
) -> None:
    volcano = "volcano.sh/mutex.lock"
    cluster.add_pod(_pod("hami-pod"))
    lock_node(cluster, NODE, NS, "hami-pod", T0)
    lock_node(cluster, NODE, NS, "vc-pod", T0, key=volcano)
    notes = node_annotations(cluster)
    assert notes[volcano] == "2026-05-01T10:00:00Z,default,vc-pod"
    held = lock_holder(cluster.get_node(NODE), volcano)
    assert held is not None and held.held_by(NS, "vc-pod")
    assert not release_node_lock(cluster, NODE, NS, "vc-pod")  # HAMi's lock is not its own
    assert release_node_lock(cluster, NODE, NS, "vc-pod", key=volcano)
    assert volcano not in node_annotations(cluster)
    assert _holder(cluster) == (NS, "hami-pod")


def test_volcanos_bare_time_lock_is_released_by_the_pod_it_was_taken_for(
    cluster: MemoryCluster,
) -> None:
    volcano = "volcano.sh/mutex.lock"
    cluster.patch_node_metadata(NODE, annotations={volcano: "2026-05-01T10:00:00Z"})
    assert release_node_lock(cluster, NODE, NS, "any", key=volcano)
    assert volcano not in node_annotations(cluster)
