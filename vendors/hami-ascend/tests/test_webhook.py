"""The Ascend admission rules through `hami_mutate`, as the webhook calls it per container."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from hami_core.errors import AdmissionDenied
from hami_core.model import Mutation, VendorSpec
from hami_core.plugins import VendorRegistry

SOFT_POD = {"metadata": {"annotations": {"huawei.com/vnpu-mode": "hami-core"}}}
PLAIN_POD: dict[str, Any] = {"metadata": {"name": "p"}}


def _container(**limits: str) -> dict[str, Any]:
    return {"name": "main", "resources": {"limits": limits}}


def _mutate(
    registry: VendorRegistry,
    spec: VendorSpec,
    container: dict[str, Any],
    pod: dict[str, Any] = PLAIN_POD,
    config: dict[str, Any] | None = None,
) -> Mutation:
    answer = registry.hook.hami_mutate(spec=spec, container=container, pod=pod, config=config or {})
    assert isinstance(answer, Mutation)
    return answer


B3 = "huawei.com/Ascend910B3"
B3_MEM = "huawei.com/Ascend910B3-memory"
B3_CORE = "huawei.com/Ascend910B3-core"


def test_12_gib_is_written_back_as_the_16_gib_template(
    registry: VendorRegistry, spec: Callable[[str], VendorSpec]
) -> None:
    mutation = _mutate(registry, spec("ascend910b3"), _container(**{B3: "1", B3_MEM: "12288"}))
    assert mutation.uses_vendor
    assert mutation.limits == {B3_MEM: "16384"}
    assert mutation.runtime_class_name is None


def test_several_npus_with_a_slice_size_are_refused(
    registry: VendorRegistry, spec: Callable[[str], VendorSpec]
) -> None:
    with pytest.raises(AdmissionDenied, match="vNPU templates apply to a single NPU"):
        _mutate(registry, spec("ascend910b3"), _container(**{B3: "2", B3_MEM: "16384"}))
    whole = _mutate(registry, spec("ascend910b3"), _container(**{B3: "2"}))
    assert whole.limits == {B3_MEM: "65536"}


def test_core_without_soft_slicing_is_refused(
    registry: VendorRegistry, spec: Callable[[str], VendorSpec]
) -> None:
    with pytest.raises(AdmissionDenied, match="hami-core"):
        _mutate(registry, spec("ascend910b3"), _container(**{B3: "1", B3_CORE: "30"}))


def test_soft_slicing_keeps_the_exact_memory(
    registry: VendorRegistry, spec: Callable[[str], VendorSpec]
) -> None:
    container = _container(**{B3: "2", B3_MEM: "12288", B3_CORE: "30"})
    mutation = _mutate(registry, spec("ascend910b3"), container, SOFT_POD)
    assert mutation.limits == {B3_MEM: "12288"}


def test_910c_rounds_one_npu_up_to_a_module(
    registry: VendorRegistry, spec: Callable[[str], VendorSpec]
) -> None:
    c = spec("ascend910c")
    assert _mutate(registry, c, _container(**{"huawei.com/Ascend910C": "1"})).limits == {
        "huawei.com/Ascend910C": "2",
        "huawei.com/Ascend910C-memory": "65536",
    }
    assert _mutate(registry, c, _container(**{"huawei.com/Ascend910C": "4"})).limits == {
        "huawei.com/Ascend910C-memory": "65536"
    }
    with pytest.raises(AdmissionDenied, match="ask for 1 or an even number, got 3"):
        _mutate(registry, c, _container(**{"huawei.com/Ascend910C": "3"}))


def test_runtime_class_and_overwrite_env_come_from_the_device_config(
    registry: VendorRegistry, spec: Callable[[str], VendorSpec]
) -> None:
    b3 = spec("ascend910b3")
    entry = {
        "chipName": "910B3",
        "commonWord": "Ascend910B3",
        "memoryAllocatable": 65536,
        "aiCore": 20,
        "aiCPU": 7,
        "runtimeClassName": "ascend",
        "overwriteEnv": True,
        "templates": [{"name": "vir05_1c_16g", "memory": 16384, "aiCore": 5, "aiCPU": 1}],
    }
    config = {"vnpus": {"configs": [entry]}}
    asked = _mutate(registry, b3, _container(**{B3: "1"}), config=config)
    assert asked.runtime_class_name == "ascend"
    assert asked.env == {}
    cpu_only = _mutate(registry, b3, _container(cpu="1"), config=config)
    assert cpu_only.env == {"ASCEND_VISIBLE_DEVICES": ""} and not cpu_only.uses_vendor
    other_chip = _mutate(registry, b3, _container(**{"huawei.com/Ascend310P": "1"}), config=config)
    assert other_chip.is_empty()


def test_containers_without_npus_are_left_alone(
    registry: VendorRegistry, spec: Callable[[str], VendorSpec]
) -> None:
    mutation = _mutate(registry, spec("ascend910b3"), _container(cpu="2"))
    assert mutation.is_empty() and not mutation.uses_vendor


def test_a_bad_quantity_is_refused_naming_the_resource(
    registry: VendorRegistry, spec: Callable[[str], VendorSpec]
) -> None:
    with pytest.raises(AdmissionDenied, match=B3_MEM):
        _mutate(registry, spec("ascend910b3"), _container(**{B3: "1", B3_MEM: "lots"}))
