"""Vendors that serve several resources to the kubelet: each card is listed per resource as the
vendor's `hami_advertise` says, and a container's devices are handed out once, by the call for
its primary resource, whatever order the kubelet calls its resources in."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest
from dp_kit import (
    MEMORY_UNIT_MIB,
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

from hami_core.deviceplugin.allocate import Allocator
from hami_core.deviceplugin.node import DevicePluginNode
from hami_core.k8s.memory import MemoryCluster
from hami_core.protocol.keys import BIND_PHASE, NODE_LOCK
from hami_core.testing.fake_kubelet import FakeKubelet

COUNT, MEM, CORES = "example.com/testgpu", "example.com/testgpu-mem", "example.com/testgpu-cores"
TO_ALLOCATE = "hami.io/testgpu-devices-to-allocate"
Node = tuple[DevicePluginNode, FakeKubelet]


def _gpu(*advertised: str) -> TestGpu:
    return TestGpu(cards=[card("testgpu", i) for i in range(2)], advertised=advertised)


@pytest.fixture
def mlu_like(cluster: MemoryCluster) -> Iterator[tuple[TestGpu, FakeKubelet]]:
    """Memory and cores served, the count not (Cambricon's shape)."""
    gpu = _gpu(MEM, CORES)
    with running_node(cluster, make_registry(gpu)) as (_, kubelet):
        kubelet.wait_registered(MEM)
        kubelet.wait_registered(CORES)
        yield gpu, kubelet


@pytest.fixture
def volcano_like(cluster: MemoryCluster) -> Iterator[tuple[TestGpu, FakeKubelet]]:
    """Count, memory and cores served (Volcano's shape)."""
    gpu = _gpu(COUNT, MEM, CORES)
    config = {"testgpu": {"enableGetPreferredAllocation": True}}
    with running_node(cluster, make_registry(gpu), config=config) as (_, kubelet):
        for resource in (COUNT, MEM, CORES):
            kubelet.wait_registered(resource)
        yield gpu, kubelet


def _ids(kubelet: FakeKubelet, resource: str, n: int) -> list[str]:
    return [d.id for d in kubelet.wait_devices(resource)][:n]


def _rv(cluster: MemoryCluster, name: str) -> str:
    return str(cluster.get_pod(NS, name)["metadata"]["resourceVersion"])


def test_each_resource_lists_the_units_the_vendor_advertises(
    volcano_like: tuple[TestGpu, FakeKubelet],
) -> None:
    gpu, kubelet = volcano_like
    per_card_memory = gpu.cards[0].memory_mib // MEMORY_UNIT_MIB
    count = kubelet.wait_devices(COUNT, lambda ds: len(ds) == 2 * 4)
    memory = kubelet.wait_devices(MEM, lambda ds: len(ds) == 2 * per_card_memory)
    cores = kubelet.wait_devices(CORES, lambda ds: len(ds) == 2 * 100)
    first = gpu.cards[0].uuid
    assert [d.id for d in count][:4] == [f"{first}-{k}" for k in range(4)]
    assert memory[0].id == f"{first}-memory-0" and memory[-1].id.endswith("-memory-15")
    assert cores[0].id == f"{first}-core-0" and cores[-1].id.endswith("-core-99")
    # preferred allocation steers the kubelet to cards: offered for the count resource only
    assert kubelet.options(COUNT).get_preferred_allocation_available is True
    assert kubelet.options(MEM).get_preferred_allocation_available is False


@pytest.mark.parametrize("order", [(MEM, CORES), (CORES, MEM)])
def test_a_container_asking_two_resources_is_mounted_and_popped_once(
    cluster: MemoryCluster, mlu_like: tuple[TestGpu, FakeKubelet], order: tuple[str, str]
) -> None:
    gpu, kubelet = mlu_like
    asks = {MEM: 4, CORES: 30}
    cluster.add_pod(
        scheduled_pod(
            "infer",
            {"testgpu": [[share(gpu, 1, mem=4 * MEMORY_UNIT_MIB, cores=30)]]},
            containers=[container("main", "testgpu", limits=asks)],
        )
    )
    bind(cluster, "infer")
    patched: list[str] = []
    first, second = order
    answer = kubelet.allocate(first, _ids(kubelet, first, asks[first]))
    patched.append(_rv(cluster, "infer"))
    later = kubelet.allocate(second, _ids(kubelet, second, asks[second]))
    patched.append(_rv(cluster, "infer"))

    full, empty = (answer, later) if first == MEM else (later, answer)  # memory is primary
    assert full.envs["TESTGPU_VISIBLE_DEVICES"] == gpu.cards[1].uuid
    assert [d.host_path for d in full.devices] == ["/dev/testgpu1"]
    assert (dict(empty.envs), list(empty.mounts), list(empty.devices)) == ({}, [], [])
    assert len(gpu.mounts) == 1
    assert patched[0] != patched[1] if first == CORES else patched[0] == patched[1]
    after = pod_annotations(cluster, "infer")
    assert (after[TO_ALLOCATE], after[BIND_PHASE]) == (";", "success")
    assert NODE_LOCK not in node_annotations(cluster)


def test_the_count_call_pops_and_the_unit_calls_around_it_answer_empty(
    cluster: MemoryCluster, volcano_like: tuple[TestGpu, FakeKubelet]
) -> None:
    gpu, kubelet = volcano_like
    cluster.add_pod(
        scheduled_pod(
            "train",
            {
                "testgpu": [
                    [share(gpu, 0, mem=2 * MEMORY_UNIT_MIB, cores=20)],
                    [share(gpu, 1, mem=3 * MEMORY_UNIT_MIB, cores=50)],
                ]
            },
            containers=[
                container("a", "testgpu", limits={MEM: 2, CORES: 20}),
                container("b", "testgpu", limits={MEM: 3, CORES: 50}),
            ],
        )
    )
    bind(cluster, "train")
    answers = [
        kubelet.allocate(MEM, _ids(kubelet, MEM, 2)),  # before its container's count call
        kubelet.allocate(COUNT, _ids(kubelet, COUNT, 1)),
        kubelet.allocate(CORES, _ids(kubelet, CORES, 20)),  # after it
        kubelet.allocate(CORES, _ids(kubelet, CORES, 50)),
        kubelet.allocate(COUNT, _ids(kubelet, COUNT, 1)),
        kubelet.allocate(MEM, _ids(kubelet, MEM, 3)),
    ]
    containers = [a.envs.get("TESTGPU_CONTAINER") for a in answers]
    assert containers == [None, "a", None, None, "b", None]
    assert [m.container for m in gpu.mounts] == ["a", "b"]
    assert pod_annotations(cluster, "train")[BIND_PHASE] == "success"


def test_a_container_without_the_count_is_popped_by_its_memory_call(
    cluster: MemoryCluster, volcano_like: tuple[TestGpu, FakeKubelet]
) -> None:
    gpu, kubelet = volcano_like
    cluster.add_pod(
        scheduled_pod(
            "mem-only",
            {"testgpu": [[share(gpu, 0, mem=5 * MEMORY_UNIT_MIB)]]},
            containers=[container("main", limits={MEM: 5})],
        )
    )
    bind(cluster, "mem-only")
    answer = kubelet.allocate(MEM, _ids(kubelet, MEM, 5))
    assert answer.envs["TESTGPU_MEMORY_LIMIT_0"] == f"{5 * MEMORY_UNIT_MIB}m"
    assert pod_annotations(cluster, "mem-only")[BIND_PHASE] == "success"


def test_entries_no_kubelet_call_will_pop_are_cleared_on_the_way(
    cluster: MemoryCluster, mlu_like: tuple[TestGpu, FakeKubelet]
) -> None:
    gpu, kubelet = mlu_like
    cluster.add_pod(
        scheduled_pod(
            "mixed",
            {"testgpu": [[share(gpu, 0, mem=16384, cores=100)], [share(gpu, 1, mem=2048)]]},
            containers=[
                container("whole", "testgpu"),  # asks only the (unserved) count
                container("slice", "testgpu", limits={MEM: 2}),
            ],
        )
    )
    bind(cluster, "mixed")
    answer = kubelet.allocate(MEM, _ids(kubelet, MEM, 2))
    assert (answer.envs["TESTGPU_CONTAINER"], answer.envs["TESTGPU_VISIBLE_DEVICES"]) == (
        "slice",
        gpu.cards[1].uuid,
    )
    after = pod_annotations(cluster, "mixed")
    assert (after[TO_ALLOCATE], after[BIND_PHASE]) == (";;", "success")


def test_a_unit_call_that_fits_no_container_fails_the_pod(
    cluster: MemoryCluster, mlu_like: tuple[TestGpu, FakeKubelet]
) -> None:
    gpu, kubelet = mlu_like
    cluster.add_pod(
        scheduled_pod(
            "odd",
            {"testgpu": [[share(gpu, 0, mem=4096, cores=30)]]},
            containers=[container("main", "testgpu", limits={MEM: 4, CORES: 30})],
        )
    )
    bind(cluster, "odd")
    with pytest.raises(grpc.RpcError) as err:
        kubelet.allocate(CORES, _ids(kubelet, CORES, 40))
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "kubelet asks for 40 example.com/testgpu-cores" in str(err.value.details())
    assert "container 'main' asks for 30" in str(err.value.details())
    assert pod_annotations(cluster, "odd")[BIND_PHASE] == "failed"
    assert gpu.mounts == []


def test_a_primary_call_with_the_wrong_quantity_fails_the_pod(
    cluster: MemoryCluster, mlu_like: tuple[TestGpu, FakeKubelet]
) -> None:
    gpu, kubelet = mlu_like
    cluster.add_pod(
        scheduled_pod(
            "short",
            {"testgpu": [[share(gpu, 0, mem=4096, cores=30)]]},
            containers=[container("main", "testgpu", limits={MEM: 4, CORES: 30})],
        )
    )
    bind(cluster, "short")
    with pytest.raises(grpc.RpcError) as err:
        kubelet.allocate(MEM, _ids(kubelet, MEM, 3))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "kubelet asks for 3 example.com/testgpu-mem, container 'main' asks for 4" in str(
        err.value.details()
    )
    assert pod_annotations(cluster, "short")[BIND_PHASE] == "failed"
    assert gpu.mounts == []


def test_the_memory_of_a_popped_container_lasts_only_the_window(
    cluster: MemoryCluster,
) -> None:
    gpu = _gpu(MEM, CORES)
    now = [100.0]
    allocator = Allocator(
        cluster, make_registry(gpu), "node-a", secondary_window=5.0, clock=lambda: now[0]
    )
    cluster.add_pod(
        scheduled_pod(
            "pair",
            {"testgpu": [[share(gpu, 0, mem=2048, cores=10)], [share(gpu, 1, mem=3072)]]},
            containers=[
                container("a", "testgpu", limits={MEM: 2, CORES: 10}),
                container("b", "testgpu", limits={MEM: 3, CORES: 10}),
            ],
        )
    )
    bind(cluster, "pair")
    spec = gpu.spec
    [full] = allocator.allocate(spec, [["m"] * 2], MEM)
    assert full.envs["TESTGPU_CONTAINER"] == "a"
    now[0] += 6.0  # container a's cores call comes too late to be recognised as a's
    [empty] = allocator.allocate(spec, [["c"] * 10], CORES)
    assert empty.envs == {}  # taken as b's cores call, which comes before b's memory call
    assert pod_annotations(cluster, "pair")[TO_ALLOCATE].count(",TESTGPU,") == 1
    [second] = allocator.allocate(spec, [["m"] * 3], MEM)
    assert second.envs["TESTGPU_CONTAINER"] == "b"
