"""Scheduling DCUs: a node registered by HAMi's DCU plugin, requests, fit, pins, decisions."""

from collections.abc import Mapping
from typing import Any

import pytest

from hami_core.model import (
    ContainerDevice,
    ContainerRequest,
    DeviceUsage,
    FitContext,
    FitResult,
    NodeView,
    PodView,
)
from hami_core.plugins import VendorRegistry, load_vendors

# What dcu-vgpu-device-plugin writes for two K100_AI cards and one Z100L (legacy 9-field form).
REGISTER = (
    "DCU-TPXS320016070600,4,65520,100,DCU-K100_AI,0,true,0,hami:"
    "DCU-TPXS320016070601,4,65520,100,DCU-K100_AI,0,true,1,hami:"
    "DCU-ZL0002,4,32752,100,DCU-Z100L,0,true,2,hami:"
)
NODE = NodeView(
    name="dcu-node-1",
    annotations={
        "hami.io/node-dcu-register": REGISTER,
        "hami.io/node-handshake-dcu": "Reported 2024-05-01 10:00:00.1 +0800 CST m=+30.0",
    },
)


@pytest.fixture
def registry() -> VendorRegistry:
    return load_vendors(environ={"HAMI_VENDORS": "hygon"})


def cards(registry: VendorRegistry) -> list[DeviceUsage]:
    infos = registry.hook.hami_read_node(spec=registry.spec("hygon"), node=NODE, config={})
    return [DeviceUsage.from_info("hygon", i) for i in infos]


def request(registry: VendorRegistry, limits: Mapping[str, str]) -> ContainerRequest:
    pod = PodView(namespace="ns", name="p", uid="u", annotations={})
    container = {"name": "main", "resources": {"limits": dict(limits)}}
    answer = registry.hook.hami_request(
        spec=registry.spec("hygon"), container=container, index=0, init=False, pod=pod, config={}
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
        spec=registry.spec("hygon"),
        request=request(registry, limits),
        devices=devices,
        context=FitContext(pod=pod, node=NODE),
    )
    assert isinstance(answer, FitResult)
    return answer


def test_a_node_registered_by_hamis_dcu_plugin_reads_back(registry: VendorRegistry) -> None:
    read = cards(registry)
    assert [(c.id, c.count, c.totalmem, c.totalcore, c.type, c.index) for c in read] == [
        ("DCU-TPXS320016070600", 4, 65520, 100, "DCU-K100_AI", 0),
        ("DCU-TPXS320016070601", 4, 65520, 100, "DCU-K100_AI", 1),
        ("DCU-ZL0002", 4, 32752, 100, "DCU-Z100L", 2),
    ]
    assert {c.mode for c in read} == {"hami"}


def test_memory_is_in_mib_and_cores_in_percent(registry: VendorRegistry) -> None:
    asked = request(
        registry, {"hygon.com/dcunum": "1", "hygon.com/dcumem": "8000", "hygon.com/dcucores": "30"}
    )
    assert (asked.count, asked.memory_mib, asked.memory_percent, asked.cores) == (1, 8000, None, 30)
    result = fit(
        registry,
        {"hygon.com/dcunum": "1", "hygon.com/dcumem": "8000", "hygon.com/dcucores": "30"},
        cards(registry),
    )
    assert result.devices == (ContainerDevice("DCU-ZL0002", "DCU", 8000, 30),)


def test_a_bare_dcunum_is_exclusive(registry: VendorRegistry) -> None:
    asked = request(registry, {"hygon.com/dcunum": "1"})
    assert (asked.memory_percent, asked.cores) == (100, 100)
    devices = cards(registry)
    devices[2].take(ContainerDevice("DCU-ZL0002", "DCU", 1000, 10))
    result = fit(registry, {"hygon.com/dcunum": "1"}, devices)
    assert result.devices == (ContainerDevice("DCU-TPXS320016070601", "DCU", 65520, 100),)
    # with only memory given, cores still default to 100: the card is not shared
    alone = fit(registry, {"hygon.com/dcunum": "1", "hygon.com/dcumem": "1000"}, devices)
    assert alone.devices[0].uuid != "DCU-ZL0002" and alone.devices[0].usedcores == 100


def test_the_webhook_makes_a_bare_dcunum_exclusive(registry: VendorRegistry) -> None:
    container: dict[str, Any] = {"name": "c", "resources": {"limits": {"hygon.com/dcunum": "1"}}}
    mutation = registry.hook.hami_mutate(
        spec=registry.spec("hygon"), container=container, pod={}, config={}
    )
    assert mutation.uses_vendor
    assert mutation.limits == {"hygon.com/dcucores": "100"}


def test_more_than_one_dcu_takes_whole_cards_whatever_was_asked(registry: VendorRegistry) -> None:
    limits = {"hygon.com/dcunum": "2", "hygon.com/dcumem": "2048", "hygon.com/dcucores": "10"}
    asked = request(registry, limits)
    assert (asked.count, asked.memory_mib, asked.memory_percent, asked.cores) == (2, 0, 100, 100)
    result = fit(registry, limits, cards(registry))
    assert result.devices == (
        ContainerDevice("DCU-ZL0002", "DCU", 32752, 100),
        ContainerDevice("DCU-TPXS320016070601", "DCU", 65520, 100),
    )
    devices = cards(registry)
    devices[0].take(ContainerDevice("DCU-TPXS320016070600", "DCU", 1024, 10))
    devices[1].take(ContainerDevice("DCU-TPXS320016070601", "DCU", 1024, 10))
    failed = fit(registry, limits, devices)
    assert not failed.ok
    assert failed.reasons == {
        "CardInsufficientMemory": 2,
        "AllocatedCardsInsufficientRequest": 1,
    }


def test_type_pins_match_a_substring_of_the_model(registry: VendorRegistry) -> None:
    limits = {"hygon.com/dcunum": "1", "hygon.com/dcumem": "1024", "hygon.com/dcucores": "10"}
    use = fit(registry, limits, cards(registry), {"hygon.com/use-dcutype": "k100_ai"})
    assert use.devices[0].uuid == "DCU-TPXS320016070601"
    avoid = fit(registry, limits, cards(registry), {"hygon.com/nouse-dcutype": "Z100L,DCU-K100"})
    assert not avoid.ok and avoid.reasons == {"CardTypeMismatch": 3}


def test_uuid_pins_name_exact_cards(registry: VendorRegistry) -> None:
    limits = {"hygon.com/dcunum": "1"}
    use = fit(registry, limits, cards(registry), {"hygon.com/use-gpuuuid": "DCU-TPXS320016070600"})
    assert use.devices[0].uuid == "DCU-TPXS320016070600"
    avoid = fit(
        registry,
        limits,
        cards(registry),
        {"hygon.com/nouse-gpuuuid": "DCU-ZL0002,DCU-TPXS320016070601"},
    )
    assert avoid.devices[0].uuid == "DCU-TPXS320016070600"
    assert fit(registry, limits, cards(registry), {"hygon.com/use-gpuuuid": "DCU-X"}).reasons == {
        "CardUuidMismatch": 3
    }


def test_four_containers_share_a_card_then_it_is_full(registry: VendorRegistry) -> None:
    limits = {"hygon.com/dcunum": "1", "hygon.com/dcumem": "1000", "hygon.com/dcucores": "10"}
    devices = cards(registry)[2:]
    for _ in range(4):
        [share] = fit(registry, limits, devices).devices
        devices[0].take(share)
    assert fit(registry, limits, devices).reasons == {"CardTimeSlicingExhausted": 1}


def test_the_decision_is_written_under_the_dcu_keys(registry: VendorRegistry) -> None:
    pod = PodView(namespace="ns", name="p", uid="u", annotations={})
    written = registry.hook.hami_pod_annotations(
        spec=registry.spec("hygon"),
        containers=[[], [ContainerDevice("DCU-ZL0002", "DCU", 8000, 30)]],
        context=FitContext(pod=pod, node=NODE),
    )
    assert written == {
        "hami.io/dcu-devices-to-allocate": ";DCU-ZL0002,DCU,8000,30:;",
        "hami.io/dcu-devices-allocated": ";DCU-ZL0002,DCU,8000,30:;",
    }
