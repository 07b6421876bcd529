"""Scheduling MLUs: the capacity node model, 256 MiB units, fit rules and the sMLU decision."""

from collections.abc import Mapping

import pytest

from hami_core.model import (
    ContainerDevice,
    ContainerRequest,
    DeviceInfo,
    DeviceUsage,
    FitContext,
    FitResult,
    NodeView,
    PodView,
)
from hami_core.plugins import VendorRegistry, load_vendors
from hami_core.protocol import ProtocolError

VCORE, VMEM, VMLU = (
    "cambricon.com/mlu.smlu.vcore",
    "cambricon.com/mlu.smlu.vmemory",
    "cambricon.com/vmlu",
)
# Three MLU370-X4 cards as Cambricon's plugin advertises them (23308 // 256 = 91 units each).
NODE = NodeView(
    name="mlu-node-1",
    annotations={},
    capacity={VCORE: "300", VMEM: "273", "cpu": "64"},
    allocatable={VCORE: "300", VMEM: "273"},
)


@pytest.fixture
def registry() -> VendorRegistry:
    return load_vendors(environ={"HAMI_VENDORS": "cambricon"})


def read(registry: VendorRegistry, node: NodeView = NODE) -> list[DeviceInfo]:
    answer = registry.hook.hami_read_node(spec=registry.spec("cambricon"), node=node, config={})
    assert isinstance(answer, list)
    return answer


def cards(registry: VendorRegistry) -> list[DeviceUsage]:
    return [DeviceUsage.from_info("cambricon", i) for i in read(registry)]


def request(registry: VendorRegistry, limits: Mapping[str, str]) -> ContainerRequest:
    pod = PodView(namespace="ns", name="p", uid="u", annotations={})
    answer = registry.hook.hami_request(
        spec=registry.spec("cambricon"),
        container={"name": "main", "resources": {"limits": dict(limits)}},
        index=0,
        init=False,
        pod=pod,
        config={},
    )
    assert isinstance(answer, ContainerRequest)
    return answer


def fit(
    registry: VendorRegistry,
    limits: Mapping[str, str],
    devices: list[DeviceUsage],
    annotations: Mapping[str, str] | None = None,
) -> FitResult:
    pod = PodView(namespace="ns", name="p", uid="u", annotations=dict(annotations or {}))
    answer = registry.hook.hami_allocate(
        spec=registry.spec("cambricon"),
        request=request(registry, limits),
        devices=devices,
        context=FitContext(pod=pod, node=NODE),
    )
    assert isinstance(answer, FitResult)
    return answer


def test_cards_come_from_node_capacity_as_hami_builds_them(registry: VendorRegistry) -> None:
    assert read(registry) == [
        DeviceInfo(
            id=f"mlu-node-1-cambricon-mlu-{i}",
            index=i,
            count=100,
            devmem=23296,
            devcore=100,
            type="MLU",
            numa=0,
            health=True,
        )
        for i in range(3)
    ]


def test_capacity_edge_cases(registry: VendorRegistry) -> None:
    assert read(registry, NodeView(name="cpu-only", annotations={}, capacity={"cpu": "8"})) == []
    # HAMi rounds the card count up and divides memory by the vcore total
    odd = read(registry, NodeView(name="n", annotations={}, capacity={VCORE: "250", VMEM: "200"}))
    assert [(d.id, d.devmem) for d in odd] == [
        ("n-cambricon-mlu-0", 20480),
        ("n-cambricon-mlu-1", 20480),
        ("n-cambricon-mlu-2", 20480),
    ]
    with pytest.raises(ProtocolError, match=r"node bad: capacity cambricon.com/mlu.smlu.vcore"):
        read(registry, NodeView(name="bad", annotations={}, capacity={VCORE: "1.5"}))


def test_vmemory_is_counted_in_256_mib_units(registry: VendorRegistry) -> None:
    asked = request(registry, {VMLU: "1", VMEM: "4", VCORE: "10"})
    assert (asked.memory_mib, asked.memory_percent, asked.cores) == (1024, None, 10)
    result = fit(registry, {VMLU: "1", VMEM: "4", VCORE: "10"}, cards(registry))
    assert result.devices == (ContainerDevice("mlu-node-1-cambricon-mlu-2", "MLU", 1024, 10),)


def test_a_bare_vmlu_takes_a_whole_card_exclusively(registry: VendorRegistry) -> None:
    asked = request(registry, {VMLU: "1"})
    assert (asked.memory_percent, asked.cores) == (100, 100)
    devices = cards(registry)
    devices[2].take(ContainerDevice(devices[2].id, "MLU", 1024, 10))
    result = fit(registry, {VMLU: "1"}, devices)
    assert result.devices == (ContainerDevice("mlu-node-1-cambricon-mlu-1", "MLU", 23296, 100),)


def test_the_webhook_adds_no_vcore_limit(registry: VendorRegistry) -> None:
    mutation = registry.hook.hami_mutate(
        spec=registry.spec("cambricon"),
        container={"name": "c", "resources": {"limits": {VMLU: "2"}}},
        pod={},
        config={},
    )
    assert mutation.uses_vendor and mutation.limits == {}


def test_more_than_one_mlu_takes_whole_cards(registry: VendorRegistry) -> None:
    asked = request(registry, {VMLU: "2", VMEM: "8", VCORE: "20"})
    assert (asked.count, asked.memory_mib, asked.memory_percent, asked.cores) == (2, 0, 100, 100)
    result = fit(registry, {VMLU: "2", VMEM: "8", VCORE: "20"}, cards(registry))
    assert [(d.uuid, d.usedmem, d.usedcores) for d in result.devices] == [
        ("mlu-node-1-cambricon-mlu-2", 23296, 100),
        ("mlu-node-1-cambricon-mlu-1", 23296, 100),
    ]


def test_uuid_pins_use_the_schedulers_card_ids(registry: VendorRegistry) -> None:
    pinned = fit(
        registry,
        {VMLU: "1"},
        cards(registry),
        {"cambricon.com/use-gpuuuid": "mlu-node-1-cambricon-mlu-0"},
    )
    assert pinned.devices[0].uuid == "mlu-node-1-cambricon-mlu-0"
    avoided = fit(
        registry,
        {VMLU: "1"},
        cards(registry),
        {"cambricon.com/nouse-gpuuuid": "mlu-node-1-cambricon-mlu-2,mlu-node-1-cambricon-mlu-1"},
    )
    assert avoided.devices[0].uuid == "mlu-node-1-cambricon-mlu-0"
    # HAMi does not honour type pins for MLUs (every card's type is "MLU"): neither does hami
    typed = fit(registry, {VMLU: "1"}, cards(registry), {"cambricon.com/use-mlutype": "MLU590"})
    assert typed.ok


def test_the_decision_carries_the_smlu_profile_and_both_assigned_spellings(
    registry: VendorRegistry,
) -> None:
    pod = PodView(namespace="ns", name="p", uid="u", annotations={})
    shares = [[], [ContainerDevice("mlu-node-1-cambricon-mlu-2", "MLU", 5120, 10)]]
    written = registry.hook.hami_pod_annotations(
        spec=registry.spec("cambricon"), containers=shares, context=FitContext(pod=pod, node=NODE)
    )
    assert written == {
        "hami.io/cambricon-mlu-devices-to-allocate": ";mlu-node-1-cambricon-mlu-2,MLU,5120,10:;",
        "hami.io/cambricon-mlu-devices-allocated": ";mlu-node-1-cambricon-mlu-2,MLU,5120,10:;",
        "CAMBRICON_DSMLU_PROFILE": "2_10_20",
        "CAMBRICON_DSMLU_ASSIGNED": "false",
        "CAMBRICON_DSMLU_ASSIGHED": "false",
    }
