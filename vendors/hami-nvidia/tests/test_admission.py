"""NVIDIA's admission defaults, through the registry as the webhook calls them (§7.4)."""

from __future__ import annotations

from typing import Any

import pytest
from hami_nvidia import plugin

from hami_core.errors import AdmissionDenied
from hami_core.model import Mutation, VendorSpec
from hami_core.plugins import VendorRegistry, load_vendors


@pytest.fixture
def registry() -> VendorRegistry:
    return load_vendors(environ={}, entry_points_=[], plugins=[("nvidia", plugin)])


def mutate(
    registry: VendorRegistry, limits: dict[str, str], config: dict[str, Any] | None = None
) -> Mutation:
    spec: VendorSpec = registry.spec("nvidia")
    container = {"name": "main", "resources": {"limits": limits}}
    pod = {"metadata": {"name": "p"}, "spec": {"containers": [container]}}
    result = registry.hook.hami_mutate(spec=spec, container=container, pod=pod, config=config or {})
    assert isinstance(result, Mutation)
    return result


def test_a_count_only_request_becomes_exclusive(registry: VendorRegistry) -> None:
    m = mutate(registry, {"nvidia.com/gpu": "1"})
    assert m.uses_vendor and dict(m.limits) == {"nvidia.com/gpucores": "100"}
    assert dict(m.env) == {}


@pytest.mark.parametrize("value", ["0", "1"])
def test_priority_becomes_cuda_task_priority(registry: VendorRegistry, value: str) -> None:
    m = mutate(
        registry, {"nvidia.com/gpu": "1", "nvidia.com/gpumem": "1000", "nvidia.com/priority": value}
    )
    assert m.env["CUDA_TASK_PRIORITY"] == value


@pytest.mark.parametrize("value", ["2", "-1", "0.5"])
def test_other_priorities_are_refused_naming_the_value(
    registry: VendorRegistry, value: str
) -> None:
    with pytest.raises(AdmissionDenied, match=rf"nvidia.com/priority: {value} is not a priority"):
        mutate(registry, {"nvidia.com/gpu": "1", "nvidia.com/priority": value})


def test_core_policy_and_runtime_class_apply_to_gpu_containers(registry: VendorRegistry) -> None:
    config = {"nvidia": {"gpuCorePolicy": "force", "runtimeClassName": "nvidia"}}
    gpu = mutate(registry, {"nvidia.com/gpu": "1", "nvidia.com/gpumem": "1000"}, config)
    assert gpu.env["GPU_CORE_UTILIZATION_POLICY"] == "force"
    assert gpu.runtime_class_name == "nvidia"
    cpu = mutate(registry, {"cpu": "1"}, config)
    assert cpu.is_empty()


def test_overwrite_env_hides_gpus_from_containers_without_any(registry: VendorRegistry) -> None:
    config = {"nvidia": {"overwriteEnv": True}}
    assert dict(mutate(registry, {"cpu": "1"}, config).env) == {"NVIDIA_VISIBLE_DEVICES": "none"}
    gpu = mutate(registry, {"nvidia.com/gpu": "1"}, config)
    assert "NVIDIA_VISIBLE_DEVICES" not in gpu.env


def test_generic_checks_still_apply(registry: VendorRegistry) -> None:
    with pytest.raises(AdmissionDenied, match="gpumem-percentage"):
        mutate(registry, {"nvidia.com/gpu": "1", "nvidia.com/gpumem-percentage": "150"})
    m = mutate(registry, {"nvidia.com/gpumem": "2000"})
    assert dict(m.limits) == {"nvidia.com/gpu": "1"}
