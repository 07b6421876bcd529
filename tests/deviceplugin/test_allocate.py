"""Allocate over gRPC, as the kubelet calls it: each container gets its own pod's devices, and
when the pod cannot be named for sure nothing changes."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import grpc
import pytest
from dp_kit import (
    NODE,
    NS,
    TestGpu,
    bind,
    card,
    container,
    make_registry,
    node_annotations,
    pod_annotations,
    running_node,
    scheduled_pod,
    share,
)

from hami_core.deviceplugin.node import DevicePluginNode
from hami_core.k8s.memory import MemoryCluster
from hami_core.nodelock import lock_node
from hami_core.protocol.keys import BIND_PHASE, NODE_LOCK
from hami_core.testing.fake_kubelet import FakeKubelet

RES = "example.com/testgpu"
TO_ALLOCATE = "hami.io/testgpu-devices-to-allocate"


@pytest.fixture
def node(cluster: MemoryCluster, gpu: TestGpu) -> Iterator[tuple[DevicePluginNode, FakeKubelet]]:
    with running_node(cluster, make_registry(gpu)) as (dp, kubelet):
        kubelet.wait_registered(RES)
        kubelet.wait_devices(RES, lambda devs: len(devs) == 16)
        yield dp, kubelet


def _ids(kubelet: FakeKubelet, n: int) -> list[str]:
    return [d.id for d in kubelet.devices(RES)][:n]


def _visible(response: object) -> str:
    return response.envs["TESTGPU_VISIBLE_DEVICES"]  # type: ignore[attr-defined,no-any-return]


def _details(error: grpc.RpcError) -> str:
    return str(error.details())


def _snapshot(cluster: MemoryCluster) -> dict[str, str]:
    pods = cluster.list_pods()
    return {p["metadata"]["name"]: p["metadata"]["resourceVersion"] for p in pods}


def test_four_pending_pods_each_get_their_own_devices(
    cluster: MemoryCluster, gpu: TestGpu, node: tuple[DevicePluginNode, FakeKubelet]
) -> None:
    _, kubelet = node
    wanted = {}
    for n in (1, 2, 3, 4):
        cards = [share(gpu, i, mem=1000 * n) for i in range(n)]
        cluster.add_pod(
            scheduled_pod(
                f"pod{n}", {"testgpu": [cards]}, containers=[container("main", "testgpu", n)]
            )
        )
        bind(cluster, f"pod{n}", lock=False)
        wanted[f"pod{n}"] = ",".join(c.uuid for c in cards)
    for n in (3, 1, 4, 2):  # the kubelet starts them in any order
        # each holds the node lock while it starts (as when its bind ran last); the others
        # wait, asking other device counts, so they cannot be meant
        lock_node(cluster, NODE, NS, f"pod{n}")
        response = kubelet.allocate(RES, _ids(kubelet, n))
        assert _visible(response) == wanted[f"pod{n}"]
        assert response.envs["TESTGPU_MEMORY_LIMIT_0"] == f"{1000 * n}m"
        assert pod_annotations(cluster, f"pod{n}")[BIND_PHASE] == "success"


def test_a_pod_that_does_not_hold_the_node_lock_is_never_served(
    cluster: MemoryCluster, gpu: TestGpu, node: tuple[DevicePluginNode, FakeKubelet]
) -> None:
    _, kubelet = node
    cluster.add_pod(
        scheduled_pod(
            "p0", {"testgpu": [[share(gpu, 0)]]}, containers=[container("main", "testgpu")]
        )
    )
    bind(cluster, "p0", lock=False)  # bound without the scheduler's bind: no node lock
    before = _snapshot(cluster)
    with pytest.raises(grpc.RpcError) as err:
        kubelet.allocate(RES, _ids(kubelet, 1))
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "pod default/p0 does not hold the node lock" in _details(err.value)
    assert _snapshot(cluster) == before

    bind(cluster, "p0")  # the scheduler's bind takes the lock: now it is served
    assert _visible(kubelet.allocate(RES, _ids(kubelet, 1))) == gpu.cards[0].uuid
    assert NODE_LOCK not in node_annotations(cluster)


def test_the_lock_holder_is_served_and_the_rest_wait(
    cluster: MemoryCluster, gpu: TestGpu, node: tuple[DevicePluginNode, FakeKubelet]
) -> None:
    _, kubelet = node
    for i in range(4):
        # p2 asks one card; the others (whose locks expired) ask two, so they cannot be meant
        shares = [share(gpu, i)] if i == 2 else [share(gpu, i), share(gpu, (i + 1) % 4)]
        cluster.add_pod(
            scheduled_pod(f"p{i}", {"testgpu": [shares]}, containers=[container("main", "testgpu")])
        )
        bind(cluster, f"p{i}", lock=False)
    bind(cluster, "p2")  # the scheduler's bind holds the node lock for p2
    assert _visible(kubelet.allocate(RES, _ids(kubelet, 1))) == gpu.cards[2].uuid
    assert pod_annotations(cluster, "p2")[BIND_PHASE] == "success"
    assert NODE_LOCK not in node_annotations(cluster)

    before = _snapshot(cluster)
    with pytest.raises(grpc.RpcError) as err:
        kubelet.allocate(RES, _ids(kubelet, 1))
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "3 pods wait for [1] device(s)" in _details(err.value)
    assert "refusing to guess" in _details(err.value)
    assert _snapshot(cluster) == before


def test_a_pod_of_another_node_is_never_served(
    cluster: MemoryCluster, gpu: TestGpu, node: tuple[DevicePluginNode, FakeKubelet]
) -> None:
    _, kubelet = node
    cluster.add_pod(
        scheduled_pod(
            "elsewhere",
            {"testgpu": [[share(gpu, 0)]]},
            containers=[container("main", "testgpu")],
            assigned="node-b",
        )
    )
    bind(cluster, "elsewhere", node=NODE, lock=False)
    before = _snapshot(cluster)
    with pytest.raises(grpc.RpcError) as err:
        kubelet.allocate(RES, _ids(kubelet, 1))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    assert "no pod bound to this node is waiting" in _details(err.value)
    assert _snapshot(cluster) == before
    assert gpu.mounts == []


def test_count_mismatch_fails_the_pod_and_releases_its_lock_only(
    cluster: MemoryCluster, gpu: TestGpu, node: tuple[DevicePluginNode, FakeKubelet]
) -> None:
    _, kubelet = node
    cluster.add_pod(
        scheduled_pod(
            "two",
            {"testgpu": [[share(gpu, 0), share(gpu, 1)]]},
            containers=[container("main", "testgpu", 2)],
        )
    )
    cluster.add_pod(
        scheduled_pod("bystander", {"testgpu": [[share(gpu, 3)]]}, containers=[container("c")])
    )
    bind(cluster, "two")
    bystander = cluster.get_pod(NS, "bystander")["metadata"]["resourceVersion"]
    with pytest.raises(grpc.RpcError) as err:
        kubelet.allocate(RES, _ids(kubelet, 3))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "pod default/two: device number not matched" in _details(err.value)
    assert "kubelet asks for 3" in _details(err.value)
    after = pod_annotations(cluster, "two")
    assert after[BIND_PHASE] == "failed"
    assert after[TO_ALLOCATE] == after["hami.io/testgpu-devices-allocated"]
    assert NODE_LOCK not in node_annotations(cluster)
    assert cluster.get_pod(NS, "bystander")["metadata"]["resourceVersion"] == bystander


def test_a_malformed_decision_fails_that_pod_and_touches_nothing_else(
    cluster: MemoryCluster, gpu: TestGpu, node: tuple[DevicePluginNode, FakeKubelet]
) -> None:
    _, kubelet = node
    pod = scheduled_pod("bad", {"testgpu": [[share(gpu, 0)]]}, containers=[container("c")])
    pod["metadata"]["annotations"][TO_ALLOCATE] = "TESTGPU-0000,TESTGPU,lots,0:;"
    cluster.add_pod(pod)
    cluster.add_pod(
        scheduled_pod("other", {"testgpu": [[share(gpu, 1)]]}, containers=[container("c")])
    )
    bind(cluster, "bad")
    other = cluster.get_pod(NS, "other")["metadata"]["resourceVersion"]
    with pytest.raises(grpc.RpcError) as err:
        kubelet.allocate(RES, _ids(kubelet, 1))
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert f"annotation {TO_ALLOCATE}: invalid memory field" in _details(err.value)
    assert pod_annotations(cluster, "bad")[BIND_PHASE] == "failed"
    assert pod_annotations(cluster, "bad")[TO_ALLOCATE] == "TESTGPU-0000,TESTGPU,lots,0:;"
    assert NODE_LOCK not in node_annotations(cluster)
    assert cluster.get_pod(NS, "other")["metadata"]["resourceVersion"] == other
    assert gpu.mounts == []


@pytest.mark.parametrize("end", ["deleted", "failed"])
def test_a_pod_gone_while_allocating_never_leaks_its_devices(
    cluster: MemoryCluster, gpu: TestGpu, node: tuple[DevicePluginNode, FakeKubelet], end: str
) -> None:
    _, kubelet = node
    cluster.add_pod(
        scheduled_pod("gone", {"testgpu": [[share(gpu, 0)]]}, containers=[container("c")])
    )
    bind(cluster, "gone")
    if end == "deleted":
        cluster.delete_pod(NS, "gone")
    else:
        cluster.update_status("pods", "gone", {"phase": "Failed"}, namespace=NS)
    with pytest.raises(grpc.RpcError) as err:
        kubelet.allocate(RES, _ids(kubelet, 1))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND

    cluster.add_pod(
        scheduled_pod("next", {"testgpu": [[share(gpu, 3)]]}, containers=[container("c")])
    )
    bind(cluster, "next")  # the lock of the gone pod is broken by the next bind
    assert _visible(kubelet.allocate(RES, _ids(kubelet, 1))) == gpu.cards[3].uuid
    assert [a.pod_name for a in gpu.mounts] == ["next"]


def test_a_failing_mount_hook_fails_the_pod_with_the_reason(
    cluster: MemoryCluster, gpu: TestGpu, node: tuple[DevicePluginNode, FakeKubelet]
) -> None:
    _, kubelet = node
    gpu.mount_error = "driver library not loaded"
    cluster.add_pod(
        scheduled_pod("p", {"testgpu": [[share(gpu, 0)]]}, containers=[container("c", "testgpu")])
    )
    bind(cluster, "p")
    with pytest.raises(grpc.RpcError) as err:
        kubelet.allocate(RES, _ids(kubelet, 1))
    assert err.value.code() == grpc.StatusCode.INTERNAL
    assert "testgpu mount failed: RuntimeError: driver library not loaded" in _details(err.value)
    assert pod_annotations(cluster, "p")[BIND_PHASE] == "failed"
    assert NODE_LOCK not in node_annotations(cluster)


def test_a_pod_part_way_through_is_finished_before_look_alikes(
    cluster: MemoryCluster, gpu: TestGpu, node: tuple[DevicePluginNode, FakeKubelet]
) -> None:
    _, kubelet = node
    cluster.add_pod(
        scheduled_pod(
            "two-containers",
            {"testgpu": [[share(gpu, 0)], [share(gpu, 1)]]},
            containers=[container("a", "testgpu"), container("b", "testgpu")],
        )
    )
    bind(cluster, "two-containers")
    first = kubelet.allocate(RES, _ids(kubelet, 1))
    assert first.envs["TESTGPU_CONTAINER"] == "a"
    # a look-alike appears (bound without the lock, as a Go scheduler without locking might)
    cluster.add_pod(
        scheduled_pod("look-alike", {"testgpu": [[share(gpu, 2)]]}, containers=[container("c")])
    )
    bind(cluster, "look-alike", lock=False)
    second = kubelet.allocate(RES, _ids(kubelet, 1))
    assert (second.envs["TESTGPU_CONTAINER"], _visible(second)) == ("b", gpu.cards[1].uuid)
    assert pod_annotations(cluster, "look-alike")[BIND_PHASE] == "allocating"


def test_concurrent_calls_for_two_containers_never_hand_out_one_entry_twice(
    cluster: MemoryCluster, gpu: TestGpu, node: tuple[DevicePluginNode, FakeKubelet]
) -> None:
    _, kubelet = node
    cluster.add_pod(
        scheduled_pod(
            "pair",
            {"testgpu": [[share(gpu, 0)], [share(gpu, 1)]]},
            containers=[container("a", "testgpu"), container("b", "testgpu")],
        )
    )
    bind(cluster, "pair")
    seen: list[str] = []
    threads = [
        threading.Thread(target=lambda: seen.append(_visible(kubelet.allocate(RES, ["x"]))))
        for _ in range(2)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert sorted(seen) == [gpu.cards[0].uuid, gpu.cards[1].uuid]
    assert pod_annotations(cluster, "pair")[BIND_PHASE] == "success"


def test_success_waits_for_every_vendor_of_the_pod(cluster: MemoryCluster, gpu: TestGpu) -> None:
    other = TestGpu(key="othergpu", cards=[card("othergpu", 0)])
    with running_node(cluster, make_registry(gpu, other)) as (_, kubelet):
        kubelet.wait_registered("example.com/othergpu")
        kubelet.wait_devices(RES)
        cluster.add_pod(
            scheduled_pod(
                "both",
                {"testgpu": [[share(gpu, 0)]], "othergpu": [[share(other, 0)]]},
                containers=[container("c", "testgpu"), container("d", "othergpu")],
            )
        )
        bind(cluster, "both")
        kubelet.allocate(RES, _ids(kubelet, 1))
        assert pod_annotations(cluster, "both")[BIND_PHASE] == "allocating"
        assert node_annotations(cluster)[NODE_LOCK].endswith(",default,both")
        response = kubelet.allocate("example.com/othergpu", ["OTHERGPU-0000-0"])
        assert response.envs["OTHERGPU_CONTAINER"] == "d"
        assert pod_annotations(cluster, "both")[BIND_PHASE] == "success"
        assert NODE_LOCK not in node_annotations(cluster)


def test_hamis_compact_decisions_map_to_the_containers_that_asked(
    cluster: MemoryCluster, gpu: TestGpu, node: tuple[DevicePluginNode, FakeKubelet]
) -> None:
    _, kubelet = node
    # HAMi's Go scheduler writes entries only for the containers that asked for the vendor
    pod = scheduled_pod(
        "compact",
        {"testgpu": [[share(gpu, 0)], [share(gpu, 2)]]},
        init_containers=[container("init")],
        containers=[container("web"), container("a", "testgpu"), container("b", "testgpu")],
    )
    cluster.add_pod(pod)
    bind(cluster, "compact")
    names = [kubelet.allocate(RES, ["x"]).envs["TESTGPU_CONTAINER"] for _ in range(2)]
    assert names == ["a", "b"]
    assert all(len(m.node_devices) == 4 for m in gpu.mounts)  # what the agent discovered
    assert pod_annotations(cluster, "compact")[TO_ALLOCATE] == ";;"


def test_several_containers_in_one_call_get_one_response_each_in_order(
    cluster: MemoryCluster, gpu: TestGpu, node: tuple[DevicePluginNode, FakeKubelet]
) -> None:
    _, kubelet = node
    cluster.add_pod(
        scheduled_pod(
            "pair",
            {"testgpu": [[share(gpu, 0), share(gpu, 1)], [share(gpu, 3)]]},
            containers=[container("a", "testgpu", 2), container("b", "testgpu")],
        )
    )
    bind(cluster, "pair")
    response = kubelet.allocate_containers(RES, [["x", "y"], ["z"]])
    assert [r.envs["TESTGPU_VISIBLE_DEVICES"] for r in response.container_responses] == [
        f"{gpu.cards[0].uuid},{gpu.cards[1].uuid}",
        gpu.cards[3].uuid,
    ]
    assert pod_annotations(cluster, "pair")[BIND_PHASE] == "success"
