"""HAMi's dialect of the contract and hami-nvidia's `Allocate` answer agree exactly."""

from __future__ import annotations

import pytest
from hami_nvidia.mount import runtime_spec
from hami_nvidia.settings import NvidiaSettings

from hami_core.contract import ContainerTarget, GpuShare, HamiCoreSettings, hami_edits
from hami_core.model import ContainerAllocation, ContainerDevice

CARDS = (
    ContainerDevice(uuid="GPU-1", type="NVIDIA", usedmem=5000, usedcores=40),
    ContainerDevice(uuid="GPU-2", type="NVIDIA", usedmem=5000, usedcores=40),
)


@pytest.mark.parametrize(
    ("nvidia", "core", "env", "license_present"),
    [
        (NvidiaSettings(), HamiCoreSettings(), {}, False),
        (
            NvidiaSettings(
                hook_path="/opt/hami",
                lock_dir="/run/vgpulock",
                libcuda_log_level="0",
                memory_scaling=2.0,
                disable_core_limit=True,
            ),
            HamiCoreSettings(
                hook_path="/opt/hami",
                lock_dir="/run/vgpulock",
                log_level="0",
                memory_scaling=2.0,
                disable_core_limit=True,
                license_present=True,
            ),
            {"CUDA_DISABLE_CONTROL": "true"},
            True,
        ),
    ],
)
def test_same_env_and_mounts_as_the_nvidia_device_plugin(
    nvidia: NvidiaSettings,
    core: HamiCoreSettings,
    env: dict[str, str],
    license_present: bool,
) -> None:
    allocation = ContainerAllocation(
        vendor="nvidia",
        pod_namespace="default",
        pod_name="p",
        pod_uid="uid-1",
        container="main",
        container_env=env,
        devices=CARDS,
    )
    plugin = runtime_spec(allocation, nvidia, cache_id="c1", license_present=license_present)
    contract = hami_edits(
        [GpuShare.from_container_device(d) for d in CARDS],
        ContainerTarget("uid-1", "main", env=env),
        core,
        cache_id="c1",
    )
    assert contract == plugin
    assert list(contract.envs) == list(plugin.envs)
