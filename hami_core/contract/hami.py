"""HAMi's dialect: the env and mounts HAMi's NVIDIA device plugin returns from `Allocate`.

hami-protocol.md §8.3 (HAMi `nvinternal/plugin/server.go`): the NVIDIA container runtime makes
the cards in `NVIDIA_VISIBLE_DEVICES` visible; HAMi-core, preloaded through
`/etc/ld.so.preload`, reads the limits from env and shares state with other containers through
the cache file and `/tmp/vgpulock`.
"""

from __future__ import annotations

from collections.abc import Sequence

from hami_core.contract.model import (
    ContainerTarget,
    ContractError,
    GpuShare,
    HamiCoreSettings,
    _path_part,
)
from hami_core.contract.units import format_limit_mib
from hami_core.model import ContainerRuntimeSpec, Mount

__all__ = ["VGPU_LOCK_DIR", "checked_devices", "hami_edits"]

VGPU_LOCK_DIR = "/tmp/vgpulock"
"""HAMi-core's lock directory inside the container, shared with the host."""


def checked_devices(devices: Sequence[object]) -> tuple[GpuShare, ...]:
    """The shares, refusing an empty list and a card named twice (a container never gets two
    slots of one card)."""
    if isinstance(devices, str | bytes) or not isinstance(devices, Sequence):
        raise ContractError(f"devices: expected a list of cards, got {devices!r}")
    if not devices:
        raise ContractError("devices: a container with HAMi-core limits needs at least one card")
    shares: list[GpuShare] = []
    for i, share in enumerate(devices):
        if not isinstance(share, GpuShare):
            raise ContractError(f"devices[{i}]: expected a GpuShare, got {share!r}")
        if any(s.uuid == share.uuid for s in shares):
            raise ContractError(f"devices[{i}]: card {share.uuid} is named twice")
        shares.append(share)
    return tuple(shares)


def hami_edits(
    devices: Sequence[GpuShare],
    container: ContainerTarget,
    settings: HamiCoreSettings | None = None,
    *,
    cache_id: str | None = None,
) -> ContainerRuntimeSpec:
    """The container's env and mounts exactly as HAMi's device plugin writes them.

    `cache_id` names the shared-cache file `<hook>/vgpu/<cache_id>.cache` (HAMi draws a fresh
    UUID4 per `Allocate`; the default `<podUID>_<container>` is stable across restarts).
    Raises `ContractError` naming the field for bad input.
    """
    settings = settings if settings is not None else HamiCoreSettings()
    shares = checked_devices(devices)
    cache = container.slot if cache_id is None else _path_part("cache_id", cache_id)
    lib = settings.library_dir

    envs: dict[str, str] = {"NVIDIA_VISIBLE_DEVICES": ",".join(s.uuid for s in shares)}
    for i, share in enumerate(shares):
        envs[f"CUDA_DEVICE_MEMORY_LIMIT_{i}"] = format_limit_mib(share.memory_mib)
    envs["CUDA_DEVICE_SM_LIMIT"] = str(shares[0].cores)
    envs["CUDA_DEVICE_MEMORY_SHARED_CACHE"] = f"{lib}/{cache}.cache"
    if settings.memory_scaling > 1:
        envs["CUDA_OVERSUBSCRIBE"] = "true"
    if settings.log_level:
        envs["LIBCUDA_LOG_LEVEL"] = settings.log_level
    if settings.disable_core_limit:
        envs["GPU_CORE_UTILIZATION_POLICY"] = "disable"
    if container.task_priority is not None:
        envs["CUDA_TASK_PRIORITY"] = str(container.task_priority)

    library = "libvgpu.so" + (f".{settings.library_version}" if settings.library_version else "")
    mounts = [
        Mount(container_path=f"{lib}/libvgpu.so", host_path=f"{lib}/{library}", read_only=True),
        Mount(
            container_path=lib,
            host_path=f"{lib}/containers/{container.slot}",
            read_only=False,
        ),
        Mount(container_path=VGPU_LOCK_DIR, host_path=settings.lock_dir, read_only=False),
    ]
    if not container.disables_control:
        mounts.append(
            Mount(
                container_path="/etc/ld.so.preload",
                host_path=f"{lib}/ld.so.preload",
                read_only=True,
            )
        )
    if settings.license_present:
        mounts.append(
            Mount(container_path="/tmp/license", host_path=f"{lib}/license", read_only=True)
        )
        mounts.append(
            Mount(
                container_path="/usr/bin/vgpuvalidator",
                host_path=f"{lib}/vgpuvalidator",
                read_only=True,
            )
        )
    return ContainerRuntimeSpec(envs=envs, mounts=tuple(mounts))
