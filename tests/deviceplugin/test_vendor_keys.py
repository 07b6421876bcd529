"""What the device plugin tells vendor hooks about the node, and vendors whose pod and node keys
differ from HAMi's (Volcano's `volcano.sh/*` protocol has its own)."""

from __future__ import annotations

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

from hami_core.k8s.memory import MemoryCluster
from hami_core.nodelock import lock_node
from hami_core.protocol.keys import ASSIGNED_NODE, BIND_PHASE, BIND_TIME, NODE_LOCK
from hami_core.testing.fake_kubelet import FakeKubelet

RES = "example.com/testgpu"
KEYS = {
    "assigned_node": "example.com/node",
    "bind_phase": "example.com/bind-phase",
    "bind_time": "example.com/bind-time",
    "node_lock": "example.com/mutex.lock",
}


def test_hooks_are_told_the_node_they_run_on(cluster: MemoryCluster, gpu: TestGpu) -> None:
    with running_node(cluster, make_registry(gpu), config={"testgpu": {}}) as (_, kubelet):
        kubelet.wait_devices(RES)
        cluster.add_pod(
            scheduled_pod("p", {"testgpu": [[share(gpu, 0)]]}, containers=[container("c")])
        )
        bind(cluster, "p")
        kubelet.allocate(RES, ["x"])
    assert gpu.configs[0]["nodeName"] == NODE
    assert gpu.configs[0]["testgpu"] == {}
    assert gpu.mounts[0].config["nodeName"] == NODE


@pytest.fixture
def own_keys(cluster: MemoryCluster) -> Iterator[tuple[TestGpu, FakeKubelet]]:
    gpu = TestGpu(cards=[card("testgpu", i) for i in range(2)], keys=KEYS)
    with running_node(cluster, make_registry(gpu)) as (_, kubelet):
        kubelet.wait_devices(RES)
        yield gpu, kubelet


def test_a_vendor_with_its_own_keys_is_allocated_through_them(
    cluster: MemoryCluster, own_keys: tuple[TestGpu, FakeKubelet]
) -> None:
    gpu, kubelet = own_keys
    cluster.add_pod(
        scheduled_pod(
            "vc", {"testgpu": [[share(gpu, 1)]]}, containers=[container("c")], specs=[gpu.spec]
        )
    )
    bind(cluster, "vc", spec=gpu.spec)
    cluster.add_pod(
        {"metadata": {"name": "hami-holder", "namespace": NS}, "status": {"phase": "Pending"}}
    )
    lock_node(cluster, NODE, NS, "hami-holder")  # HAMi's lock, held by another pod

    answer = kubelet.allocate(RES, ["x"])
    assert answer.envs["TESTGPU_VISIBLE_DEVICES"] == gpu.cards[1].uuid
    after = pod_annotations(cluster, "vc")
    assert after[KEYS["bind_phase"]] == "success"
    assert not {ASSIGNED_NODE, BIND_PHASE, BIND_TIME} & set(after)
    notes = node_annotations(cluster)
    assert KEYS["node_lock"] not in notes
    assert notes[NODE_LOCK].endswith(",default,hami-holder")


def test_a_pod_carrying_only_hamis_keys_is_not_this_vendors(
    cluster: MemoryCluster, own_keys: tuple[TestGpu, FakeKubelet]
) -> None:
    gpu, kubelet = own_keys
    cluster.add_pod(
        scheduled_pod("hami", {"testgpu": [[share(gpu, 0)]]}, containers=[container("c")])
    )
    bind(cluster, "hami")  # HAMi's hami.io/vgpu-node and hami.io/bind-phase
    with pytest.raises(grpc.RpcError) as err:
        kubelet.allocate(RES, ["x"])
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    assert pod_annotations(cluster, "hami")[BIND_PHASE] == "allocating"
    assert gpu.mounts == []


def test_a_failure_marks_the_vendors_own_bind_phase_and_frees_its_lock(
    cluster: MemoryCluster, own_keys: tuple[TestGpu, FakeKubelet]
) -> None:
    gpu, kubelet = own_keys
    gpu.mount_error = "no driver"
    cluster.add_pod(
        scheduled_pod(
            "vc", {"testgpu": [[share(gpu, 0)]]}, containers=[container("c")], specs=[gpu.spec]
        )
    )
    bind(cluster, "vc", spec=gpu.spec)
    with pytest.raises(grpc.RpcError):
        kubelet.allocate(RES, ["x"])
    after = pod_annotations(cluster, "vc")
    assert after[KEYS["bind_phase"]] == "failed" and BIND_PHASE not in after
    assert KEYS["node_lock"] not in node_annotations(cluster)
