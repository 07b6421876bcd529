"""What one container gets at Allocate: HAMi's env and mounts (hami-protocol.md §8.3)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from hami_nvidia import plugin
from hami_nvidia.mount import runtime_spec
from hami_nvidia.settings import NvidiaSettings, resolve_settings

from hami_core.model import ContainerAllocation, ContainerDevice, Device, Mount

A = "GPU-aaaaaaaa-0000-4000-8000-000000000001"
B = "GPU-bbbbbbbb-0000-4000-8000-000000000002"


def allocation(
    shares: list[tuple[str, int, int]],
    *,
    env: Mapping[str, str] | None = None,
    config: Mapping[str, Any] | None = None,
    modes: Mapping[str, str] | None = None,
) -> ContainerAllocation:
    modes = modes or {}
    cards = tuple(
        Device(
            vendor="nvidia",
            uuid=u,
            index=i,
            model="NVIDIA A100-SXM4-80GB",
            memory_mib=81920,
            mode=modes.get(u, "hami-core"),
        )
        for i, u in enumerate((A, B))
    )
    return ContainerAllocation(
        vendor="nvidia",
        pod_namespace="default",
        pod_name="trainer",
        pod_uid="7f3c-uid",
        container="main",
        container_env=dict(env or {}),
        devices=tuple(ContainerDevice(u, "NVIDIA", mem, cores) for u, mem, cores in shares),
        node_devices=cards,
        kubelet_ids=tuple(f"{u}-{i}" for i, (u, _, _) in enumerate(shares)),
        config=dict(config or {}),
    )


def test_two_cards_get_hamis_env_and_mounts() -> None:
    spec = runtime_spec(allocation([(A, 3000, 30), (B, 5000, 30)]), NvidiaSettings(), cache_id="c1")
    assert dict(spec.envs) == {
        "NVIDIA_VISIBLE_DEVICES": f"{A},{B}",
        "CUDA_DEVICE_MEMORY_LIMIT_0": "3000m",
        "CUDA_DEVICE_MEMORY_LIMIT_1": "5000m",
        "CUDA_DEVICE_SM_LIMIT": "30",
        "CUDA_DEVICE_MEMORY_SHARED_CACHE": "/usr/local/vgpu/c1.cache",
    }
    assert spec.mounts == (
        Mount(
            container_path="/usr/local/vgpu/libvgpu.so",
            host_path="/usr/local/vgpu/libvgpu.so",
            read_only=True,
        ),
        Mount(
            container_path="/usr/local/vgpu",
            host_path="/usr/local/vgpu/containers/7f3c-uid_main",
            read_only=False,
        ),
        Mount(container_path="/tmp/vgpulock", host_path="/tmp/vgpulock", read_only=False),
        Mount(
            container_path="/etc/ld.so.preload",
            host_path="/usr/local/vgpu/ld.so.preload",
            read_only=True,
        ),
    )
    assert spec.devices == () and spec.cdi_devices == ()


def test_config_switches_add_their_env() -> None:
    settings = resolve_settings(
        {
            "nvidia": {
                "deviceMemoryScaling": 2,
                "libCudaLogLevel": "4",
                "disableCoreLimit": True,
                "hookPath": "/opt/hami",
            }
        },
        {},
    )
    spec = runtime_spec(allocation([(A, 1024, 0)]), settings, cache_id="x")
    assert spec.envs["CUDA_OVERSUBSCRIBE"] == "true"
    assert spec.envs["LIBCUDA_LOG_LEVEL"] == "4"
    assert spec.envs["GPU_CORE_UTILIZATION_POLICY"] == "disable"
    assert spec.envs["CUDA_DEVICE_MEMORY_SHARED_CACHE"] == "/opt/hami/vgpu/x.cache"
    assert spec.mounts[1].host_path == "/opt/hami/vgpu/containers/7f3c-uid_main"


@pytest.mark.parametrize(
    ("value", "preloaded"), [("true", False), ("1", False), ("false", True), ("yes", True)]
)
def test_cuda_disable_control_true_skips_the_preload(value: str, preloaded: bool) -> None:
    spec = runtime_spec(
        allocation([(A, 1024, 0)], env={"CUDA_DISABLE_CONTROL": value}),
        NvidiaSettings(),
        cache_id="x",
    )
    paths = [m.container_path for m in spec.mounts]
    assert ("/etc/ld.so.preload" in paths) is preloaded
    assert "/tmp/vgpulock" in paths


def test_a_license_on_the_host_mounts_the_validator() -> None:
    spec = runtime_spec(
        allocation([(A, 1, 0)]), NvidiaSettings(), cache_id="x", license_present=True
    )
    assert [(m.container_path, m.host_path) for m in spec.mounts[-2:]] == [
        ("/tmp/license", "/usr/local/vgpu/license"),
        ("/usr/bin/vgpuvalidator", "/usr/local/vgpu/vgpuvalidator"),
    ]


def test_a_mig_card_gets_only_the_runtime_env() -> None:
    spec = runtime_spec(
        allocation([(A, 81920, 100)], modes={A: "mig"}), NvidiaSettings(), cache_id="x"
    )
    assert dict(spec.envs) == {"NVIDIA_VISIBLE_DEVICES": A} and spec.mounts == ()


def test_the_hook_uses_a_fresh_cache_file_per_allocate(tmp_path: Path) -> None:
    config = {"nvidia": {"hookPath": str(tmp_path)}}
    first = plugin.hami_mount(allocation([(A, 3000, 30)], config=config))
    second = plugin.hami_mount(allocation([(A, 3000, 30)], config=config))
    assert first is not None and second is not None
    pattern = re.compile(rf"^{re.escape(str(tmp_path))}/vgpu/[0-9a-f-]{{36}}\.cache$")
    caches = {s.envs["CUDA_DEVICE_MEMORY_SHARED_CACHE"] for s in (first, second)}
    assert len(caches) == 2 and all(pattern.match(c) for c in caches)


def test_a_dry_run_names_the_cache_file_after_the_container_and_touches_nothing(
    tmp_path: Path,
) -> None:
    (tmp_path / "vgpu").mkdir()
    (tmp_path / "vgpu" / "libvgpu.so").write_text("")
    config = {"nvidia": {"hookPath": str(tmp_path)}}
    dry = allocation([(A, 3000, 30)], config=config).model_copy(update={"dry_run": True})
    first, second = plugin.hami_mount(dry), plugin.hami_mount(dry)
    assert first is not None and second is not None
    cache = first.envs["CUDA_DEVICE_MEMORY_SHARED_CACHE"]
    assert cache == second.envs["CUDA_DEVICE_MEMORY_SHARED_CACHE"]
    assert cache.startswith(f"{tmp_path}/vgpu/") and cache.endswith(".cache")
    assert not (tmp_path / "vgpu" / "containers").exists()


def test_the_hook_answers_none_for_other_vendors() -> None:
    other = allocation([(A, 1, 0)]).model_copy(update={"vendor": "hygon"})
    assert plugin.hami_mount(other) is None


def test_the_hook_prepares_host_dirs_only_where_hami_core_is_installed(tmp_path: Path) -> None:
    config = {"nvidia": {"hookPath": str(tmp_path), "vgpuLockPath": str(tmp_path / "lock")}}
    cache = tmp_path / "vgpu" / "containers" / "7f3c-uid_main"
    plugin.hami_mount(allocation([(A, 3000, 30)], config=config))
    assert not cache.exists() and not (tmp_path / "lock").exists()
    (tmp_path / "vgpu").mkdir()
    (tmp_path / "vgpu" / "libvgpu.so").write_bytes(b"")
    spec = plugin.hami_mount(allocation([(A, 3000, 30)], config=config))
    assert spec is not None
    assert cache.is_dir() and (tmp_path / "lock").is_dir()
    assert (str(tmp_path / "lock"), "/tmp/vgpulock") in [
        (m.host_path, m.container_path) for m in spec.mounts
    ]
