"""The chip catalogue and the `vnpus:` config: shipped defaults, overrides at hook time, chips
added through `HAMI_ASCEND_CONFIG`, and errors that name the chip and the field."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from hami_ascend import plugin
from hami_ascend.catalogue import SHIPPED
from hami_ascend.chips import parse_chip

from hami_core.errors import ConfigError
from hami_core.model import ContainerRequest, Device, DeviceInfo, PodView, VendorSpec
from hami_core.plugins import VendorRegistry, load_vendors

POD = PodView(namespace="ns", name="p", uid="u", annotations={})

# commonWord: chipName, allocatable, capacity, aiCore, aiCPU, vDevice count,
#             [(template, MiB, aiCore, aiCPU)]   -- the reference table, written out.
TABLE: dict[str, tuple[str, int, int, int, int, int, list[tuple[str, int, int, int]]]] = {
    "Ascend910A": (
        "910A", 32768, 32768, 30, 0, 15,
        [("vir02", 2184, 2, 0), ("vir04", 4369, 4, 0), ("vir08", 8738, 8, 0),
         ("vir16", 17476, 16, 0)],
    ),
    "Ascend910B2": (
        "910B2", 65536, 65536, 24, 6, 8,
        [("vir03_1c_8g", 8192, 3, 1), ("vir06_1c_16g", 16384, 6, 1),
         ("vir12_3c_32g", 32768, 12, 3)],
    ),
    "Ascend910B3": (
        "910B3", 65536, 65536, 20, 7, 4,
        [("vir05_1c_16g", 16384, 5, 1), ("vir10_3c_32g", 32768, 10, 3)],
    ),
    "Ascend910B4-1": (
        "910B4-1", 65536, 65536, 20, 7, 4,
        [("vir05_1c_16g", 16384, 5, 1), ("vir10_3c_32g", 32768, 10, 3)],
    ),
    "Ascend910B4": (
        "910B4", 32768, 32768, 20, 7, 4,
        [("vir05_1c_8g", 8192, 5, 1), ("vir10_3c_16g", 16384, 10, 3)],
    ),
    "Ascend310P": (
        "310P3", 21527, 24576, 8, 7, 7,
        [("vir01", 3072, 1, 1), ("vir02", 6144, 2, 2), ("vir04", 12288, 4, 4)],
    ),
    "Ascend910C": (
        "Ascend910", 65536, 65536, 20, 7, 4,
        [("vir05_1c_16g", 16384, 5, 1), ("vir10_3c_32g", 32768, 10, 3)],
    ),
}  # fmt: skip


def test_shipped_chips_match_the_reference_table() -> None:
    assert [c.common_word for c in SHIPPED.chips] == list(TABLE)
    assert SHIPPED.hami_vnpu_core is False
    for chip in SHIPPED.chips:
        name, allocatable, capacity, ai_core, ai_cpu, count, templates = TABLE[chip.common_word]
        assert (chip.chip_name, chip.memory_allocatable, chip.memory_capacity) == (
            name,
            allocatable,
            capacity,
        )
        assert (chip.ai_core, chip.ai_cpu, chip.vdevice_count) == (ai_core, ai_cpu, count)
        assert [(t.name, t.memory_mib, t.ai_core, t.ai_cpu) for t in chip.templates] == templates
        assert chip.super_pod == (chip.common_word == "Ascend910C")


def test_one_vendor_spec_per_chip(registry: VendorRegistry) -> None:
    specs = {s.key: s for s in registry.specs()}
    assert sorted(specs) == sorted(w.lower() for w in TABLE)
    b3 = specs["ascend910b3"]
    assert b3.common_word == "Ascend910B3"
    assert b3.resources.all() == (
        "huawei.com/Ascend910B3",
        "huawei.com/Ascend910B3-memory",
        "huawei.com/Ascend910B3-core",
    )
    assert b3.advertised == ("huawei.com/Ascend910B3",)
    assert set(b3.ignored_by_scheduler) == set(b3.resources.all())
    keys = b3.annotations
    assert (keys.node_register, keys.handshake) == (
        "hami.io/node-register-Ascend910B3",
        "hami.io/node-handshake-Ascend910B3",
    )
    assert (keys.to_allocate, keys.allocated) == (
        "hami.io/Ascend910B3-devices-to-allocate",
        "hami.io/Ascend910B3-devices-allocated",
    )
    assert (keys.use_uuid, keys.nouse_uuid) == (
        "hami.io/use-Ascend910B3-uuid",
        "hami.io/no-use-Ascend910B3-uuid",
    )
    assert (b3.register_format, b3.mounting, b3.multi_device) == ("json", "runtime", "whole")
    assert [(t.name, t.memory_mib) for t in b3.templates] == [
        ("vir05_1c_16g", 16384),
        ("vir10_3c_32g", 32768),
    ]
    assert specs["ascend910b4-1"].resources.count == "huawei.com/Ascend910B4-1"


def _entry(**changes: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "chipName": "910B3",
        "commonWord": "Ascend910B3",
        "resourceName": "huawei.com/Ascend910B3",
        "resourceMemoryName": "huawei.com/Ascend910B3-memory",
        "resourceCoreName": "huawei.com/Ascend910B3-core",
        "memoryAllocatable": 65536,
        "memoryCapacity": 65536,
        "aiCore": 20,
        "aiCPU": 7,
        "templates": [
            {"name": "vir05_1c_16g", "memory": 16384, "aiCore": 5, "aiCPU": 1},
            {"name": "vir10_3c_32g", "memory": 32768, "aiCore": 10, "aiCPU": 3},
        ],
    }
    entry.update(changes)
    return entry


def _template(**changes: Any) -> dict[str, Any]:
    template: dict[str, Any] = {"name": "vir05_1c_16g", "memory": 16384, "aiCore": 5, "aiCPU": 1}
    template.update(changes)
    return template


@pytest.mark.parametrize(
    ("templates", "message"),
    [
        ([_template(name="vir5c16g")], r"\[0\]: name: 'vir5c16g' is not a vNPU template"),
        ([_template(name="vir04_1c_16g")], r"'vir04_1c_16g' names 4 AI cores but aiCore is 5"),
        ([_template(name="vir05_2c_16g")], r"'vir05_2c_16g' names 2 AI CPUs but aiCPU is 1"),
        ([_template(name="vir05_1c_8g")], r"names 8 GiB \(8192 MiB\) but memory is 16384"),
        ([_template(memory="16G")], r"\[0\]: memory: expected a whole number >= 1, got '16G'"),
        ([_template(memory=0)], r"\[0\]: memory: expected a whole number >= 1, got 0"),
        (
            [_template(name="vir40_1c_64g", aiCore=40, memory=65536)],
            r"\[0\]: aiCore: 40 is more than the chip's aiCore 20",
        ),
        (
            [_template(name="vir05", memory=70000)],
            r"\[0\]: memory: 70000 MiB is more than the chip's memoryAllocatable 65536",
        ),
        ([_template(), _template()], r"templates: 'vir05_1c_16g' is listed twice"),
        (
            [_template(), _template(name="vir06", aiCore=6)],
            r"templates: 'vir06' and 'vir05_1c_16g' have the same memory 16384",
        ),
        ([{"memory": 16384, "aiCore": 5}], r"templates\[0\]: name: missing"),
        (["vir05"], r"templates\[0\]: expected a mapping"),
    ],
)
def test_wrong_templates_name_the_chip_and_the_field(templates: list[Any], message: str) -> None:
    with pytest.raises(ConfigError, match=r"vnpus\.configs\[3\] \(Ascend910B3\): .*" + message):
        parse_chip(_entry(templates=templates), "vnpus.configs[3]")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"memoryAllocatable": None}, "memoryAllocatable: missing"),
        ({"memoryCapacity": 1000}, "memoryCapacity: 1000 is less than memoryAllocatable 65536"),
        ({"aiCore": -1}, "aiCore: expected a whole number >= 1, got -1"),
        ({"commonWord": "Ascend 910B3"}, "commonWord: 'Ascend 910B3' must be letters"),
        ({"resourceName": "Ascend910B3"}, "resourceName: 'Ascend910B3' is not a domain-qualified"),
        ({"overwriteEnv": "sometimes"}, "overwriteEnv: expected true or false"),
        ({"templates": "vir05"}, "templates: expected a list"),
    ],
)
def test_wrong_chip_values_name_the_field(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_chip(_entry(**changes), "vnpus.configs[0]")


def _request(
    registry: VendorRegistry, spec: VendorSpec, memory: int, config: dict[str, Any]
) -> ContainerRequest:
    container = {
        "name": "main",
        "resources": {"limits": {spec.resources.count: "1", spec.resources.memory: str(memory)}},
    }
    answer = registry.hook.hami_request(
        spec=spec, container=container, index=0, init=False, pod=POD, config=config
    )
    assert isinstance(answer, ContainerRequest)
    return answer


def test_the_device_config_overrides_a_chips_templates_at_hook_time(
    registry: VendorRegistry, spec: Callable[[str], VendorSpec]
) -> None:
    b3 = spec("ascend910b3")
    only_large = _entry(
        templates=[_template(name="vir10_3c_32g", memory=32768, aiCore=10, aiCPU=3)]
    )
    config = {"vnpus": {"configs": [only_large]}}
    assert _request(registry, b3, 12288, {}).memory_mib == 16384
    assert _request(registry, b3, 12288, config).memory_mib == 32768
    device = Device(vendor=b3.key, uuid="npu-0", index=0, model="910B3", memory_mib=65536)
    split = registry.hook.hami_split(spec=b3, device=device, config=config)
    assert isinstance(split, DeviceInfo) and split.count == 2  # 65536 // 32768


def test_a_wrong_template_in_the_device_config_fails_the_hook_with_the_chip_named(
    registry: VendorRegistry, spec: Callable[[str], VendorSpec]
) -> None:
    config = {"vnpus": {"configs": [_entry(templates=[_template(name="vir05_1c_32g")])]}}
    with pytest.raises(
        ConfigError, match=r"vnpus\.configs\[0\] \(Ascend910B3\): templates\[0\]: name"
    ):
        _request(registry, spec("ascend910b3"), 12288, config)


def test_resource_names_cannot_change_after_load(
    registry: VendorRegistry, spec: Callable[[str], VendorSpec]
) -> None:
    config = {"vnpus": {"configs": [_entry(resourceName="huawei.com/npu")]}}
    with pytest.raises(ConfigError, match=r"resourceName: 'huawei\.com/npu' differs"):
        _request(registry, spec("ascend910b3"), 12288, config)


def _write(path: Path, configs: list[dict[str, Any]]) -> str:
    path.write_text(yaml.safe_dump({"vnpus": {"configs": configs}}), encoding="utf-8")
    return str(path)


def test_hami_ascend_config_adds_chips(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    new_chip = _entry(
        chipName="910B1",
        commonWord="Ascend910B1",
        resourceName="huawei.com/Ascend910B1",
        resourceMemoryName="huawei.com/Ascend910B1-memory",
        resourceCoreName="huawei.com/Ascend910B1-core",
        aiCore=24,
        templates=[_template(name="vir06_1c_16g", aiCore=6)],
    )
    path = _write(tmp_path / "device-config.yaml", [new_chip])
    monkeypatch.setenv("HAMI_ASCEND_CONFIG", path)
    registry = load_vendors(environ={}, entry_points_=[], plugins=[("ascend", plugin)])
    assert registry.errors == []
    assert [s.key for s in registry.specs()] == ["ascend910b1"]
    b1 = registry.spec("ascend910b1")
    assert b1.resources.count == "huawei.com/Ascend910B1"
    assert _request(registry, b1, 1000, {}).memory_mib == 16384


def test_a_broken_hami_ascend_config_is_reported_at_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _write(tmp_path / "bad.yaml", [_entry(templates=[_template(name="vir5")])])
    monkeypatch.setenv("HAMI_ASCEND_CONFIG", path)
    registry = load_vendors(environ={}, entry_points_=[], plugins=[("ascend", plugin)])
    assert registry.specs() == []
    (error,) = registry.errors
    assert "bad.yaml: vnpus.configs[0] (Ascend910B3): templates[0]: name: 'vir5'" in error.error
