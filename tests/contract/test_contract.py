"""The HAMi-core container contract through its public functions."""

from __future__ import annotations

from typing import Any

import pytest

from hami_core.contract import (
    DEVICE_ALLOCATED,
    ContainerTarget,
    ContractError,
    GpuShare,
    HamiCoreSettings,
    KoordinatorGpu,
    decode_device_allocated,
    edits_json,
    encode_device_allocated,
    format_limit_mib,
    hami_edits,
    koordinator_edits,
    koordinator_pod_metadata,
    memory_ratio,
    parse_limit,
    settings_from_device_config,
    shares_from_device_allocated,
)
from hami_core.protocol.types import ContainerDevice

POD = "6a1f2e3d-4c5b-4a69-8877-665544332211"
TARGET = ContainerTarget(POD, "app")


def share(uuid: str = "GPU-1", mem: int = 4096, cores: int = 25, **kw: Any) -> GpuShare:
    return GpuShare(uuid=uuid, memory_mib=mem, cores=cores, **kw)


def mounts(edits: dict[str, Any]) -> dict[str, str]:
    return {m["container_path"]: m["host_path"] for m in edits["mounts"]}


# ---------------------------------------------------------------- HAMi's dialect


def test_hami_edits_from_a_scheduler_assignment() -> None:
    assigned = ContainerDevice(uuid="GPU-a", type="NVIDIA", usedmem=3000, usedcores=30)
    edits = edits_json(hami_edits([GpuShare.from_container_device(assigned)], TARGET))
    assert edits["env"]["NVIDIA_VISIBLE_DEVICES"] == "GPU-a"
    assert edits["env"]["CUDA_DEVICE_MEMORY_LIMIT_0"] == "3000m"
    assert edits["env"]["CUDA_DEVICE_SM_LIMIT"] == "30"
    assert mounts(edits)["/usr/local/vgpu"] == f"/usr/local/vgpu/containers/{POD}_app"
    assert mounts(edits)["/etc/ld.so.preload"] == "/usr/local/vgpu/ld.so.preload"


def test_hami_sm_limit_is_the_first_cards_cores() -> None:
    edits = hami_edits([share("GPU-1", cores=20), share("GPU-2", cores=70)], TARGET)
    assert edits.envs["CUDA_DEVICE_SM_LIMIT"] == "20"
    assert edits.envs["NVIDIA_VISIBLE_DEVICES"] == "GPU-1,GPU-2"


@pytest.mark.parametrize("value", ["1", "t", "TRUE", "true", "True"])
def test_cuda_disable_control_skips_the_preload(value: str) -> None:
    target = ContainerTarget(POD, "app", env={"CUDA_DISABLE_CONTROL": value})
    assert "/etc/ld.so.preload" not in mounts(edits_json(hami_edits([share()], target)))


def test_cuda_disable_control_false_keeps_the_preload() -> None:
    target = ContainerTarget(POD, "app", env={"CUDA_DISABLE_CONTROL": "no"})
    assert "/etc/ld.so.preload" in mounts(edits_json(hami_edits([share()], target)))


def test_hami_edits_refuse_no_cards_and_a_card_twice() -> None:
    with pytest.raises(ContractError, match="at least one card"):
        hami_edits([], TARGET)
    with pytest.raises(ContractError, match=r"devices\[1\]: card GPU-1 is named twice"):
        hami_edits([share(), share()], TARGET)
    with pytest.raises(ContractError, match=r"devices\[0\]: expected a GpuShare"):
        hami_edits([{"uuid": "GPU-1"}], TARGET)  # type: ignore[list-item]


@pytest.mark.parametrize("cache_id", ["", "../x", "a/b", ".."])
def test_cache_id_must_be_a_file_name(cache_id: str) -> None:
    with pytest.raises(ContractError, match="cache_id"):
        hami_edits([share()], TARGET, cache_id=cache_id)


# ---------------------------------------------------------------- inputs


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"uuid": ""}, "device uuid"),
        ({"uuid": "GPU-1,GPU-2"}, "commas"),
        ({"mem": -1}, "memory_mib"),
        ({"cores": 101}, "cores"),
        ({"cores": True}, "cores"),
        ({"minor": -1}, "minor"),
        ({"total_memory_mib": 0}, "total_memory_mib"),
    ],
)
def test_bad_share_names_the_field(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(ContractError, match=field):
        share(**kwargs)


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (("", "app"), "pod_uid"),
        ((POD, "../etc"), "container"),
        ((POD, "."), "container"),
    ],
)
def test_bad_target_names_the_field(args: tuple[str, str], field: str) -> None:
    with pytest.raises(ContractError, match=field):
        ContainerTarget(*args)


@pytest.mark.parametrize("priority", [2, -1, True])
def test_only_two_task_priorities(priority: int) -> None:
    with pytest.raises(ContractError, match="0 \\(high\\) and 1 \\(low\\)"):
        ContainerTarget(POD, "app", task_priority=priority)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"hook_path": "usr/local"}, "hook_path"),
        ({"lock_dir": "/tmp/../etc"}, "lock_dir"),
        ({"log_level": "debug"}, "log_level"),
        ({"memory_scaling": 0}, "memory_scaling"),
        ({"library_version": "../x"}, "library_version"),
        ({"monitor": "yes"}, "monitor"),
    ],
)
def test_bad_settings_name_the_field(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(ContractError, match=field):
        HamiCoreSettings(**kwargs)


def test_settings_from_hamis_device_config() -> None:
    config = {
        "nvidia": {
            "libCudaLogLevel": 0,
            "deviceMemoryScaling": "1.5",
            "disableCoreLimit": "true",
            "vgpuLockPath": "/run/vgpulock/",
        }
    }
    settings = settings_from_device_config(config, {"HOOK_PATH": "/opt/hami"})
    assert settings == HamiCoreSettings(
        hook_path="/opt/hami",
        lock_dir="/run/vgpulock",
        log_level="0",
        memory_scaling=1.5,
        disable_core_limit=True,
    )
    assert settings_from_device_config({}) == HamiCoreSettings()
    explicit = settings_from_device_config({"nvidia": {"hookPath": "/srv"}}, {"HOOK_PATH": "/x"})
    assert explicit.hook_path == "/srv"


@pytest.mark.parametrize(
    ("config", "field"),
    [
        ({"nvidia": []}, "nvidia"),
        ({"nvidia": {"disableCoreLimit": "maybe"}}, "nvidia.disableCoreLimit"),
        ({"nvidia": {"deviceMemoryScaling": "lots"}}, "nvidia.deviceMemoryScaling"),
        ({"nvidia": {"libCudaLogLevel": [1]}}, "nvidia.libCudaLogLevel"),
        ({"nvidia": {"hookPath": "relative"}}, "nvidia: hook_path"),
    ],
)
def test_bad_device_config_names_the_key(config: dict[str, Any], field: str) -> None:
    with pytest.raises(ContractError, match=field):
        settings_from_device_config(config)


# ---------------------------------------------------------------- limits


@pytest.mark.parametrize(
    ("text", "expected"), [("1g", 1 << 30), ("1024M", 1 << 30), ("7", 7), (" 2k ", 2048)]
)
def test_parse_limit(text: str, expected: int) -> None:
    assert parse_limit(text) == expected


@pytest.mark.parametrize("text", ["", "1.5g", "1gb", "-1m", "0x10", "m"])
def test_parse_limit_refuses_what_hami_core_cannot_read(text: str) -> None:
    with pytest.raises(ContractError, match="memory limit"):
        parse_limit(text)


def test_format_limit_round_trips() -> None:
    assert parse_limit(format_limit_mib(3000)) == 3000 * 1024 * 1024
    with pytest.raises(ContractError):
        format_limit_mib(-1)


# ---------------------------------------------------------------- Koordinator's dialect


def test_memory_ratio_rounds_down_so_a_partial_card_stays_limited() -> None:
    assert memory_ratio(share(mem=16383, total_memory_mib=16384)) == 99
    assert memory_ratio(share(mem=16384, total_memory_mib=16384)) == 100
    with pytest.raises(ContractError, match="total_memory_mib"):
        memory_ratio(share())
    with pytest.raises(ContractError, match="exceeds"):
        memory_ratio(share(mem=9, total_memory_mib=8))


def test_koordinator_needs_minor_numbers() -> None:
    with pytest.raises(ContractError, match="minor is needed"):
        koordinator_edits([share(total_memory_mib=8192)], TARGET)


def test_koordinator_refuses_unequal_cards() -> None:
    cards = [
        share("GPU-1", 2048, 25, minor=0, total_memory_mib=8192),
        share("GPU-2", 4096, 25, minor=1, total_memory_mib=8192),
    ]
    with pytest.raises(ContractError, match="one memory limit"):
        koordinator_edits(cards, TARGET)


def test_koordinator_refuses_repeated_minors() -> None:
    cards = [
        share("GPU-1", minor=0, total_memory_mib=8192),
        share("GPU-2", minor=0, total_memory_mib=8192),
    ]
    with pytest.raises(ContractError, match="minor numbers repeat"):
        koordinator_pod_metadata(cards)


def test_device_allocated_round_trips_and_drives_the_same_edits() -> None:
    cards = [
        share("GPU-1", 6144, 40, minor=2, total_memory_mib=24576),
        share("GPU-2", 6144, 40, minor=5, total_memory_mib=24576),
    ]
    annotation = koordinator_pod_metadata(cards, "n1").annotations[DEVICE_ALLOCATED]
    gpus = decode_device_allocated(annotation)
    assert gpus == (
        KoordinatorGpu(minor=2, core=40, memory_bytes=6144 << 20, memory_ratio=25),
        KoordinatorGpu(minor=5, core=40, memory_bytes=6144 << 20, memory_ratio=25),
    )
    assert encode_device_allocated(gpus) == annotation
    assert koordinator_edits(gpus, TARGET) == koordinator_edits(cards, TARGET)
    again = shares_from_device_allocated(annotation, {2: "GPU-1", 5: "GPU-2"}, {2: 24576, 5: 24576})
    assert list(again) == cards


def test_device_allocated_reads_any_quantity_and_ignores_other_device_types() -> None:
    text = (
        '{"gpu":[{"minor":0,"resources":{"koordinator.sh/gpu-core":"100",'
        '"koordinator.sh/gpu-memory":"16Gi","koordinator.sh/gpu-memory-ratio":"100"}}],'
        '"rdma":[{"minor":1}]}'
    )
    assert decode_device_allocated(text) == (
        KoordinatorGpu(minor=0, core=100, memory_bytes=16 << 30, memory_ratio=100),
    )


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("not json", "not JSON"),
        ("[]", "JSON object"),
        ('{"gpu": {}}', "gpu: expected a list"),
        ('{"gpu": [1]}', r"gpu\[0\]: expected an object"),
        ('{"gpu": [{"minor": -1}]}', "minor"),
        ('{"gpu": [{"minor": 0, "resources": {}}]}', "koordinator.sh/gpu-core is missing"),
        (
            '{"gpu":[{"minor":0,"resources":{"koordinator.sh/gpu-core":"half",'
            '"koordinator.sh/gpu-memory":"1Gi","koordinator.sh/gpu-memory-ratio":"5"}}]}',
            "gpu-core",
        ),
        (
            '{"gpu":[{"minor":0,"resources":{"koordinator.sh/gpu-core":"50",'
            '"koordinator.sh/gpu-memory":"1Gi","koordinator.sh/gpu-memory-ratio":"500"}}]}',
            "memory_ratio",
        ),
    ],
)
def test_bad_device_allocated_names_the_annotation_and_field(text: str, problem: str) -> None:
    with pytest.raises(ContractError, match=problem) as caught:
        decode_device_allocated(text)
    assert DEVICE_ALLOCATED in str(caught.value)


def test_unknown_minor_is_refused_when_mapping_back_to_cards() -> None:
    text = encode_device_allocated([KoordinatorGpu(3, 50, 1 << 30, 50)])
    with pytest.raises(ContractError, match="minor 3 is not on this node"):
        shares_from_device_allocated(text, {0: "GPU-0"}, {0: 2048})
