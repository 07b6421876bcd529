"""From NVML answers to registered cards: HAMi's register rules (hami-protocol.md §1.3)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from hami_nvidia import binding
from hami_nvidia.discovery import device_info, devices_from, type_name
from hami_nvidia.parse_smi import parse_smi_query
from hami_nvidia.settings import NvidiaSettings, resolve_settings


@pytest.mark.parametrize(
    ("model", "wire"),
    [
        ("Tesla V100-PCIE-32GB", "NVIDIA-Tesla V100-PCIE-32GB"),
        ("NVIDIA A100-SXM4-40GB", "NVIDIA A100-SXM4-40GB"),
        ("NVIDIA-H20", "NVIDIA-H20"),
    ],
)
def test_type_gets_the_nvidia_prefix_unless_it_has_it(model: str, wire: str) -> None:
    assert type_name(model) == wire


def test_v100_host_registers_like_hamis_device_plugin(v100: Any) -> None:
    devices = devices_from(binding.read_gpus(v100, sysfs_root="/x"), NvidiaSettings())
    infos = [device_info(d, NvidiaSettings()) for d in devices]
    assert [
        (i.id, i.index, i.count, i.devmem, i.devcore, i.type, i.mode, i.health) for i in infos
    ] == [
        (devices[0].uuid, 0, 10, 32768, 100, "NVIDIA-Tesla V100-PCIE-32GB", "hami-core", True),
        (devices[1].uuid, 1, 10, 32768, 100, "NVIDIA-Tesla V100-PCIE-32GB", "hami-core", True),
    ]
    assert infos[0].custominfo is None  # no topology asked, no links carried


def test_scaling_truncates_like_go(v100: Any) -> None:
    settings = resolve_settings(
        {"nvidia": {"deviceSplitCount": 3, "deviceMemoryScaling": 1.3, "deviceCoreScaling": 0.29}},
        {},
    )
    device = devices_from(binding.read_gpus(v100, sysfs_root="/x"), settings)[0]
    info = device_info(device, settings)
    # int32(32768 * 1.3) = 42598 (42598.4 truncated); int32(0.29 * 100) = 28 (28.999...).
    assert (info.count, info.devmem, info.devcore) == (3, 42598, 28)


def test_memory_nvml_cannot_report_uses_the_preconfigured_value_or_skips_the_card(
    fakes: SimpleNamespace,
) -> None:
    def host() -> object:
        return fakes.FakeNvml(
            [
                fakes.FakeGpu(uuid="GPU-gb10", name="NVIDIA GB10", memory_bytes=None, bus=1),
                fakes.FakeGpu(uuid="GPU-l4", name="NVIDIA L4", memory_bytes=24 * fakes.GIB, bus=2),
            ]
        )

    skipped = devices_from(binding.read_gpus(host(), sysfs_root="/x"), NvidiaSettings())
    assert [d.uuid for d in skipped] == ["GPU-l4"]
    settings = resolve_settings({"nvidia": {"preConfiguredDeviceMemory": 119808}}, {})
    kept = devices_from(binding.read_gpus(host(), sysfs_root="/x"), settings)
    assert [(d.uuid, d.memory_mib) for d in kept] == [("GPU-gb10", 119808), ("GPU-l4", 24576)]


def test_filterdevices_of_this_node_are_not_registered(a100: Any) -> None:
    settings = resolve_settings(
        {
            "nodeconfig": [
                {"name": "n1", "filterdevices": {"uuid": [a100.gpus[0].uuid], "index": [3]}}
            ]
        },
        {"NODE_NAME": "n1"},
    )
    devices = devices_from(binding.read_gpus(a100, sysfs_root="/x"), settings)
    assert [d.index for d in devices] == [1, 2]


def test_mig_cards_keep_their_mode_and_are_offered_whole(fakes: SimpleNamespace) -> None:
    nvml = fakes.FakeNvml(
        [
            fakes.FakeGpu(
                uuid="GPU-mig",
                name="NVIDIA A100-SXM4-40GB",
                memory_bytes=40 * fakes.GIB,
                bus=1,
                mig=True,
            ),
            fakes.FakeGpu(
                uuid="GPU-std", name="NVIDIA A100-SXM4-40GB", memory_bytes=40 * fakes.GIB, bus=2
            ),
        ]
    )
    settings = resolve_settings({"nvidia": {"deviceSplitCount": 4, "deviceMemoryScaling": 2}}, {})
    mig, std = (
        device_info(d, settings)
        for d in devices_from(binding.read_gpus(nvml, sysfs_root="/x"), settings)
    )
    assert (mig.mode, mig.count, mig.devmem, mig.devcore) == ("mig", 1, 40960, 100)
    assert (std.mode, std.count, std.devmem, std.devcore) == ("hami-core", 4, 81920, 100)


@pytest.mark.parametrize(("mode", "card_mode"), [("mps", "mps"), ("mig", "hami-core")])
def test_the_node_operating_mode_is_the_card_mode(v100: Any, mode: str, card_mode: str) -> None:
    settings = resolve_settings(
        {"nodeconfig": [{"name": "n", "operatingmode": mode}]}, {"NODE_NAME": "n"}
    )
    devices = devices_from(binding.read_gpus(v100, sysfs_root="/x"), settings)
    assert {d.mode for d in devices} == {card_mode}


def test_unhealthy_cards_are_registered_unhealthy(a100: Any) -> None:
    a100.gpus[3].lost = True
    devices = devices_from(binding.read_gpus(a100, sysfs_root="/x"), NvidiaSettings())
    assert [d.health for d in devices] == [True, True, True, False]
    assert devices[3].extras["problem"].startswith("index: NVMLError_GpuIsLost")
    sick = device_info(devices[3], NvidiaSettings())
    assert (sick.health, sick.devmem) == (False, 0)


def test_an_h100_node_as_recorded_by_nvidia_smi_registers_the_same_cards(
    fakes: SimpleNamespace,
) -> None:
    """NVML fake built from a real `nvidia-smi -q` capture; discovery must agree with it."""
    recorded = parse_smi_query((fakes.DATA / "nvidia-smi-q-H100-1.txt").read_text())
    nvml = fakes.FakeNvml(
        [
            fakes.FakeGpu(
                uuid=g.uuid,
                name=g.name,
                memory_bytes=(g.memory_mib or 0) * 1024 * 1024,
                bus=int(g.bus_id.split(":")[1], 16),
                mig=g.mig_current == "Enabled",
            )
            for g in recorded
        ]
    )
    devices = devices_from(binding.read_gpus(nvml, sysfs_root="/x"), NvidiaSettings())
    infos = [device_info(d, NvidiaSettings()) for d in devices]
    assert [(i.id, i.type, i.devmem) for i in infos] == [
        (g.uuid, g.name, g.memory_mib) for g in recorded
    ]
    assert [d.extras["busId"] for d in devices] == [g.bus_id.lower()[4:] for g in recorded]
