"""NVIDIA GPUs under Volcano's vGPU protocol: the opt-in spec, the register codec, units,
handshake and what a container gets."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from pathlib import Path

import pytest
from hami_nvidia import plugin
from hami_nvidia.settings import resolve_settings
from hami_nvidia.spec import KEY, VOLCANO_KEY, VOLCANO_SPEC
from hami_nvidia.volcano import (
    decode_volcano_devices,
    encode_volcano_devices,
    handshake_value,
    scaled_allocation,
    volcano_device_info,
    volcano_units,
)

from hami_core.errors import ConfigError
from hami_core.model import ContainerAllocation, ContainerDevice, Device, DeviceInfo, NodeView
from hami_core.plugins import load_vendors
from hami_core.protocol import ProtocolError

V100 = "GPU-v1000000-0000-0000-0000-000000000000"
A100 = "GPU-a1000000-0000-0000-0000-000000000001"
NUMBER, MEMORY, CORES = VOLCANO_SPEC.advertised


def _card(
    uuid: str = V100, *, model: str = "Tesla V100-PCIE-32GB", mode: str = "hami-core"
) -> Device:
    return Device(vendor=VOLCANO_KEY, uuid=uuid, index=0, model=model, memory_mib=32768, mode=mode)


def test_the_volcano_spec_loads_only_when_named() -> None:
    plugins = [("nvidia", plugin)]
    default = load_vendors(environ={}, entry_points_=[], plugins=plugins)
    assert [s.key for s in default.specs()] == [KEY]
    named = load_vendors(environ={"HAMI_VENDORS": VOLCANO_KEY}, entry_points_=[], plugins=plugins)
    assert [s.key for s in named.specs()] == [VOLCANO_KEY]
    served = named.vendor_for_resource("volcano.sh/vgpu-memory")
    assert served is not None and served.key == VOLCANO_KEY
    assert named.vendor_for_resource("nvidia.com/gpu") is None


def test_volcanos_register_text_round_trips() -> None:
    cards = [
        DeviceInfo(V100, 10, 32768, 100, "NVIDIA-Tesla V100-PCIE-32GB", 0, 0, "hami-core", True),
        DeviceInfo(A100, 4, 320, 100, "NVIDIA-NVIDIA A100-SXM4-80GB", 1, 0, "hami-core", False),
    ]
    text = encode_volcano_devices(cards)
    assert text == (
        f"{V100},10,32768,NVIDIA-Tesla V100-PCIE-32GB,true,hami-core:"
        f"{A100},4,320,NVIDIA-NVIDIA A100-SXM4-80GB,false,hami-core:"
    )
    assert decode_volcano_devices(text) == cards
    assert encode_volcano_devices([]) == "" and decode_volcano_devices("") == []


def test_an_older_plugins_five_field_cards_read_with_no_mode() -> None:
    [card] = decode_volcano_devices(f"{V100},10,32768,NVIDIA-Tesla V100,True:")
    assert (card.id, card.count, card.devmem, card.mode, card.health) == (
        V100,
        10,
        32768,
        "",
        True,
    )


@pytest.mark.parametrize(
    ("value", "field"),
    [
        (f"{V100},10,32768,NVIDIA-T4:", "card"),
        (f"{V100},ten,32768,NVIDIA-T4,true,hami-core:", "count"),
        (f"{V100},10,-1,NVIDIA-T4,true,hami-core:", "devmem"),
        (f"{V100},10,32768,NVIDIA-T4,yes,hami-core:", "health"),
    ],
)
def test_unreadable_register_text_names_the_card_and_field(value: str, field: str) -> None:
    with pytest.raises(ProtocolError) as err:
        decode_volcano_devices(value)
    assert err.value.field == field
    assert V100 in str(err.value)


def test_writing_a_separator_into_the_register_text_is_refused() -> None:
    with pytest.raises(ProtocolError, match="type must not contain"):
        encode_volcano_devices([DeviceInfo(V100, 1, 1, 100, "odd:type", health=True)])


def test_a_malformed_node_is_reported_with_the_annotation() -> None:
    node = NodeView("n", {"volcano.sh/node-vgpu-register": f"{V100},x,1,T,true,m:"})
    with pytest.raises(ProtocolError, match=r"annotation volcano\.sh/node-vgpu-register"):
        plugin.hami_read_node(spec=VOLCANO_SPEC, node=node, config={})
    assert plugin.hami_read_node(spec=VOLCANO_SPEC, node=NodeView("n", {}), config={}) == []


def test_memory_travels_in_gpu_memory_factor_units() -> None:
    settings = resolve_settings({"nvidia": {"gpuMemoryFactor": 256, "deviceSplitCount": 4}}, {})
    info = volcano_device_info(_card(), settings)
    assert (info.count, info.devmem, info.devcore, info.type) == (
        4,
        128,
        100,
        "NVIDIA-Tesla V100-PCIE-32GB",
    )
    assert volcano_units(VOLCANO_SPEC, NUMBER, info) == 4
    assert volcano_units(VOLCANO_SPEC, MEMORY, info) == 128
    assert volcano_units(VOLCANO_SPEC, CORES, info) == 100
    assert volcano_units(VOLCANO_SPEC, "volcano.sh/vgpu-memory-percentage", info) is None
    scaled = resolve_settings({"nvidia": {"deviceCoreScaling": 2}}, {})
    assert volcano_units(VOLCANO_SPEC, CORES, volcano_device_info(_card(), scaled)) == 200


def test_a_mig_card_is_offered_whole_and_never_in_volcanos_mig_mode() -> None:
    info = volcano_device_info(_card(mode="mig"), resolve_settings({}, {}))
    assert (info.count, info.mode) == (1, "hami-core")


def test_the_gpu_memory_factor_must_be_a_whole_number() -> None:
    with pytest.raises(ConfigError, match=r"nvidia\.gpuMemoryFactor"):
        resolve_settings({"nvidia": {"gpuMemoryFactor": 0}}, {})
    assert resolve_settings({}, {}).gpu_memory_factor == 1


def test_the_handshake_answer_changes_at_most_every_30_seconds() -> None:
    assert handshake_value(datetime(2026, 5, 1, 10, 0, 29, 999)) == "Reported_2026-05-01 10:00:00"
    assert handshake_value(datetime(2026, 5, 1, 10, 0, 30)) == "Reported_2026-05-01 10:00:30"


def test_annotate_writes_the_register_text_and_the_handshake() -> None:
    info = volcano_device_info(_card(), resolve_settings({}, {}))
    notes = plugin.hami_annotate(spec=VOLCANO_SPEC, devices=[info], config={})
    assert notes is not None
    assert decode_volcano_devices(notes["volcano.sh/node-vgpu-register"]) == [info]
    assert notes["volcano.sh/node-vgpu-handshake"].startswith("Reported_")


def _allocation(uuid: str, usedmem: int, config: Mapping[str, object]) -> ContainerAllocation:
    return ContainerAllocation(
        vendor=VOLCANO_KEY,
        pod_namespace="default",
        pod_name="p",
        pod_uid="uid-1",
        container="main",
        devices=(ContainerDevice(uuid, "NVIDIA", usedmem, 30),),
        node_devices=(_card(),),
        config=config,
    )


def test_a_container_gets_hami_cores_env_with_memory_in_mib(tmp_path: Path) -> None:
    config = {"nvidia": {"gpuMemoryFactor": 256, "hookPath": str(tmp_path)}}
    answer = plugin.hami_mount(allocation=_allocation(V100, 12, config))
    assert answer is not None
    assert answer.envs["NVIDIA_VISIBLE_DEVICES"] == V100
    assert answer.envs["CUDA_DEVICE_MEMORY_LIMIT_0"] == "3072m"
    assert answer.envs["CUDA_DEVICE_SM_LIMIT"] == "30"
    assert f"{tmp_path}/vgpu/libvgpu.so" in [m.container_path for m in answer.mounts]
    assert scaled_allocation(_allocation(V100, 12, {}), 1).devices[0].usedmem == 12


def test_a_dynamic_mig_decision_is_refused() -> None:
    with pytest.raises(ValueError, match="dynamic MIG"):
        plugin.hami_mount(allocation=_allocation(f"{V100}[3g.40gb-0]", 1, {}))
