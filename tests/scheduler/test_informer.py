"""The informer keeps the usage cache right through watch drops, relists and odd pods, over the
real client against the fake apiserver."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from extender_kit import (
    ALLOCATED,
    GPU,
    GPUMEM,
    TO_ALLOCATE,
    card_id,
    eventually,
    gpu_node,
    user_pod,
)

from hami_core.k8s.kube import KubeCluster
from hami_core.nodelock import release_node_lock
from hami_core.plugins import VendorRegistry
from hami_core.protocol import ContainerDevice
from hami_core.protocol.keys import ASSIGNED_NODE, NODE_LOCK
from hami_core.scheduler import Informer
from hami_core.scheduler.decisions import decision_keys
from hami_core.scheduling.cache import UsageCache
from hami_core.testing import FakeApiServer


@pytest.fixture
def kube(api: FakeApiServer) -> Iterator[KubeCluster]:
    cluster = api.kube_cluster(request_timeout=5.0, watch_timeout_seconds=30)
    yield cluster
    cluster.close()


def start(kube: KubeCluster, registry: VendorRegistry, **kwargs: object) -> Informer:
    cache = UsageCache(registry)
    informer = Informer(kube, cache, decision_keys=decision_keys(registry.specs()), **kwargs)  # type: ignore[arg-type]
    informer.start()
    assert informer.wait_synced(5)
    return informer


def used_memory(cache: UsageCache, node: str) -> int:
    with cache.locked():
        state = cache.node(node)
        return sum(d.usedmem for d in state.all_cards()) if state is not None else -1


def running_pod(
    name: str, node: str, mem: int, *, bound_to: str | None = None
) -> dict[str, object]:
    value = f"{card_id(node, 0)},TGPU,{mem},0:;"
    pod = user_pod(
        name,
        {GPU: "1", GPUMEM: str(mem)},
        annotations={ASSIGNED_NODE: node, ALLOCATED: value, TO_ALLOCATE: ""},
    )
    pod["spec"]["nodeName"] = bound_to or node
    return pod


def test_pods_and_nodes_flow_into_the_cache_across_dropped_watches(
    api: FakeApiServer, kube: KubeCluster, registry: VendorRegistry
) -> None:
    added: list[str] = []
    api.state.add_node(gpu_node("node-a"))
    api.state.add_pod(running_pod("one", "node-a", 1000))
    informer = start(kube, registry, on_node_added=added.append)
    try:
        cache = informer.cache
        assert used_memory(cache, "node-a") == 1000
        assert added == ["node-a"]

        eventually(lambda: api.open_watches == 2, what="both watches to be open")
        assert api.faults.drop_watches() == 2
        api.state.add_node(gpu_node("node-b"))
        api.state.add_pod(running_pod("two", "node-b", 3000))
        eventually(lambda: used_memory(cache, "node-b") == 3000, what="node-b's pod")
        assert added == ["node-a", "node-b"]
        assert [p["metadata"]["name"] for p in informer.assigned_pods(["node-b"])] == ["two"]

        api.state.delete_pod("default", "one")
        eventually(lambda: used_memory(cache, "node-a") == 0, what="the deleted pod to go")
        api.state.delete_node("node-b")
        eventually(lambda: cache.node("node-b") is None, what="the deleted node to go")
    finally:
        informer.stop()


def test_the_informer_relists_every_resync_period(
    api: FakeApiServer, kube: KubeCluster, registry: VendorRegistry
) -> None:
    api.state.add_node(gpu_node("node-a"))
    informer = start(kube, registry, resync_period=0.2)
    try:
        relists = informer.relists
        eventually(lambda: informer.relists >= relists + 4, what="periodic relists")
    finally:
        informer.stop()


def test_a_relist_forgets_what_vanished_while_the_watch_was_down(
    api: FakeApiServer, kube: KubeCluster, registry: VendorRegistry
) -> None:
    api.state.add_node(gpu_node("node-a"))
    api.state.add_pod(running_pod("one", "node-a", 1000))
    informer = start(kube, registry)
    try:
        eventually(lambda: api.open_watches == 2, what="both watches to be open")
        api.faults.fail_next("GET", r"/api/v1/pods$", status=503, count=1000)
        api.faults.drop_watches()
        api.state.delete_pod("default", "one")
        api.state.compact()  # the DELETED event is gone from the history: only a relist sees it
        assert used_memory(informer.cache, "node-a") == 1000
        api.faults.clear()
        eventually(lambda: used_memory(informer.cache, "node-a") == 0, what="the relist")
    finally:
        informer.stop()


def test_a_decision_contradicted_by_the_binding_is_not_counted(
    api: FakeApiServer, kube: KubeCluster, registry: VendorRegistry
) -> None:
    api.state.add_node(gpu_node("node-a"))
    api.state.add_node(gpu_node("node-b"))
    # claims node-a's card, but runs on node-b: hami never writes that pair
    api.state.add_pod(running_pod("liar", "node-a", 5000, bound_to="node-b"))
    api.state.add_pod(running_pod("honest", "node-a", 1000))
    informer = start(kube, registry)
    try:
        assert used_memory(informer.cache, "node-a") == 1000
        assert used_memory(informer.cache, "node-b") == 0
    finally:
        informer.stop()


def test_a_relist_drops_the_reservation_of_a_pod_that_is_gone(
    api: FakeApiServer, kube: KubeCluster, registry: VendorRegistry
) -> None:
    api.state.add_node(gpu_node("node-a"))
    informer = start(kube, registry)
    try:
        share = ContainerDevice(card_id("node-a", 0), "TGPU", 2000, 0)
        # filter reserved for a pod this replica never saw, deleted while its watch was down
        informer.cache.reserve("default/ghost", "node-a", {"tgpu": [[share]]}, time.time())
        informer.cache.reserve("default/young", "node-a", {"tgpu": [[share]]}, time.time())
        api.state.add_pod(user_pod("young", {GPU: "1"}))  # exists, just not listed yet
        assert used_memory(informer.cache, "node-a") == 4000
        informer.resync()
        eventually(lambda: used_memory(informer.cache, "node-a") == 2000, what="the relist")
        assert list(informer.cache.reservations()) == ["default/young"]
    finally:
        informer.stop()


def test_a_node_lock_whose_holder_is_deleted_or_fails_is_released(
    api: FakeApiServer, kube: KubeCluster, registry: VendorRegistry
) -> None:
    def locked_node(name: str, holder: str) -> dict[str, object]:
        return gpu_node(name, annotations={NODE_LOCK: f"2026-11-30T10:00:00Z,default,{holder}"})

    def lock(node: str) -> str | None:
        annotations = api.state.get_node(node)["metadata"].get("annotations") or {}
        value = annotations.get(NODE_LOCK)
        return value if isinstance(value, str) else None

    api.state.add_node(locked_node("node-a", "deleted"))
    api.state.add_node(locked_node("node-b", "failing"))
    api.state.add_node(locked_node("node-c", "someone-else"))
    for pod, node in (("deleted", "node-a"), ("failing", "node-b"), ("bystander", "node-c")):
        api.state.add_pod(running_pod(pod, node, 1000))

    def release(node: str, namespace: str, name: str) -> None:
        release_node_lock(kube, node, namespace, name)

    informer = start(kube, registry, on_lock_orphaned=release)
    try:
        api.state.delete_pod("default", "deleted")
        api.state.update_status("pods", "failing", {"phase": "Failed"}, namespace="default")
        api.state.delete_pod("default", "bystander")  # holds no lock: node-c's stays
        eventually(lambda: lock("node-a") is None, what="the deleted holder's lock to go")
        eventually(lambda: lock("node-b") is None, what="the failed holder's lock to go")
        assert lock("node-c") == "2026-11-30T10:00:00Z,default,someone-else"
    finally:
        informer.stop()


def test_a_writer_can_wait_for_the_pod_watch_to_show_its_own_write(
    api: FakeApiServer, kube: KubeCluster, registry: VendorRegistry
) -> None:
    api.state.add_node(gpu_node("node-a"))
    api.state.add_pod(user_pod("mine", {GPU: "1", GPUMEM: "1000"}))
    informer = start(kube, registry)
    try:
        written = kube.patch_pod_metadata("default", "mine", annotations={"note": "1"})
        version = written["metadata"]["resourceVersion"]
        assert informer.wait_pods_seen(version, 5.0)
        # a version the stream has passed is seen at once; one from the future is not
        assert informer.wait_pods_seen("1", 0)
        started = time.monotonic()
        assert not informer.wait_pods_seen(str(int(version) + 1000), 0.2)
        assert time.monotonic() - started >= 0.2
        assert not informer.wait_pods_seen("not-a-number", 5.0)  # opaque: no wait at all
    finally:
        informer.stop()
    assert not informer.wait_pods_seen(str(int(version) + 1000), 5.0)  # stopped: no wait


def test_stamps_that_change_no_usage_leave_the_cache_as_a_fresh_list_would(
    api: FakeApiServer, kube: KubeCluster, registry: VendorRegistry
) -> None:
    api.state.add_node(gpu_node("node-a"))
    api.state.add_pod(running_pod("one", "node-a", 1000))
    informer = start(kube, registry)
    try:
        cache = informer.cache
        for phase in ("allocating", "success"):  # the bind and the device plugin's stamps
            written = kube.patch_pod_metadata(
                "default", "one", annotations={"hami.io/bind-phase": phase}
            )
            assert informer.wait_pods_seen(written["metadata"]["resourceVersion"], 5.0)
            assert used_memory(cache, "node-a") == 1000
        # a change usage does read still arrives after them
        value = f"{card_id('node-a', 0)},TGPU,2500,0:;"
        written = kube.patch_pod_metadata("default", "one", annotations={ALLOCATED: value})
        assert informer.wait_pods_seen(written["metadata"]["resourceVersion"], 5.0)
        assert used_memory(cache, "node-a") == 2500
        rebuilt = UsageCache.rebuild(registry, {}, kube.list_nodes(), kube.list_pods())
        assert cache.snapshot() == rebuilt.snapshot()
        [trimmed] = informer.assigned_pods(["node-a"])
        assert trimmed["metadata"]["annotations"][ALLOCATED] == value
    finally:
        informer.stop()


def test_a_writer_waiting_for_the_pod_watch_is_let_go_when_the_informer_stops(
    api: FakeApiServer, kube: KubeCluster, registry: VendorRegistry
) -> None:
    api.state.add_node(gpu_node("node-a"))
    informer = start(kube, registry)
    answer: list[bool] = []
    waiter = threading.Thread(target=lambda: answer.append(informer.wait_pods_seen("999999", 30)))
    waiter.start()
    time.sleep(0.1)
    started = time.monotonic()
    informer.stop()
    waiter.join(5)
    assert answer == [False]
    assert time.monotonic() - started < 5
