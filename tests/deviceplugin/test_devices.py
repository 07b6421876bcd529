"""How cards are offered to the kubelet: replica IDs, health, NUMA, and preferred picks."""

from __future__ import annotations

from dp_kit import spec_for

from hami_core.deviceplugin.devices import (
    KubeletDevice,
    card_of,
    kubelet_devices,
    preferred_ids,
    replica_ids,
    resource_kind,
)
from hami_core.model import DeviceInfo


def _info(uuid: str, count: int, *, numa: int = 0, health: bool = True) -> DeviceInfo:
    return DeviceInfo(
        id=uuid, count=count, devmem=16384, devcore=100, type="T", numa=numa, health=health
    )


def test_each_card_is_offered_as_split_count_replicas() -> None:
    assert replica_ids(_info("GPU-a", 3)) == ["GPU-a-0", "GPU-a-1", "GPU-a-2"]


def test_health_and_numa_travel_with_every_replica() -> None:
    infos = [_info("GPU-a", 2, numa=0), _info("GPU-b", 2, numa=1, health=False)]
    assert kubelet_devices(infos, numa=True) == (
        KubeletDevice("GPU-a-0", True, 0),
        KubeletDevice("GPU-a-1", True, 0),
        KubeletDevice("GPU-b-0", False, 1),
        KubeletDevice("GPU-b-1", False, 1),
    )
    assert {d.numa for d in kubelet_devices(infos)} == {None}


def test_card_of_strips_only_the_replica_suffix() -> None:
    assert card_of("GPU-8a1c-77e2-3") == "GPU-8a1c-77e2"
    assert card_of("GPU-8a1c-77e2-12") == "GPU-8a1c-77e2"
    assert card_of("plain") == "plain"


def test_unit_resources_name_their_unit_in_every_id() -> None:
    info = _info("GPU-a", 10)
    assert replica_ids(info, 3, kind="memory") == [
        "GPU-a-memory-0",
        "GPU-a-memory-1",
        "GPU-a-memory-2",
    ]
    assert replica_ids(info, 2, kind="core") == ["GPU-a-core-0", "GPU-a-core-1"]
    assert replica_ids(info, 0, kind="core") == []
    assert card_of("GPU-8a1c-77e2-memory-41", "memory") == "GPU-8a1c-77e2"
    assert card_of("GPU-8a1c-77e2-41", "memory") == "GPU-8a1c-77e2-41"  # not a memory ID


def test_each_resource_of_a_vendor_has_its_own_id_word() -> None:
    spec = spec_for("testgpu")
    assert resource_kind(spec, "example.com/testgpu") == ""
    assert resource_kind(spec, "example.com/testgpu-mem") == "memory"
    assert resource_kind(spec, "example.com/testgpu-cores") == "core"
    assert resource_kind(spec, "example.com/mlu370.smlu.vcore") == "mlu370-smlu-vcore"


def test_cards_may_offer_different_numbers_of_units() -> None:
    infos = [_info("GPU-a", 4), _info("GPU-b", 4, health=False)]
    listed = kubelet_devices(infos, counts=[2, 1], kind="memory")
    assert listed == (
        KubeletDevice("GPU-a-memory-0", True),
        KubeletDevice("GPU-a-memory-1", True),
        KubeletDevice("GPU-b-memory-0", False),
    )


def test_preferred_ids_pick_the_chosen_cards_first() -> None:
    available = [f"{c}-{k}" for c in ("A", "B", "C") for k in range(3)]
    assert preferred_ids(available, [], 2, ["C", "A"]) == ["C-0", "A-0"]


def test_preferred_ids_keep_must_include_and_spread_the_rest() -> None:
    available = [f"{c}-{k}" for c in ("A", "B", "C") for k in range(2)]
    assert preferred_ids(available, ["B-1"], 3) == ["B-1", "A-0", "C-0"]


def test_preferred_ids_fall_back_to_more_replicas_of_used_cards() -> None:
    available = ["A-0", "A-1", "A-2"]
    assert preferred_ids(available, [], 2, ["Z"]) == ["A-0", "A-1"]
