"""What kubelet hands a container for its NVIDIA slice: HAMi's Allocate response (pure).

Mirrors HAMi's device plugin (`nvinternal/plugin/server.go`, hami-protocol.md §8.3): the
container runtime (nvidia-container-runtime) makes the GPUs named in `NVIDIA_VISIBLE_DEVICES`
visible; HAMi-core (`libvgpu.so`, preloaded through `/etc/ld.so.preload`) enforces the memory and
SM limits it reads from env. The host directories behind the read-write mounts are created by
`hami_nvidia.binding.prepare_container_dirs`, not here.
"""

from __future__ import annotations

from hami_core.model import ContainerAllocation, ContainerRuntimeSpec, Mount
from hami_nvidia.settings import NvidiaSettings
from hami_nvidia.spec import ENV_CORE_POLICY, ENV_DISABLE_CONTROL, ENV_VISIBLE_DEVICES

__all__ = ["VGPU_LOCK_DIR", "cache_dir", "runtime_spec", "uses_hami_core"]

VGPU_LOCK_DIR = "/tmp/vgpulock"
"""HAMi-core's cross-container lock directory, shared with the host."""

_GO_TRUE = frozenset({"1", "t", "T", "TRUE", "true", "True"})


def cache_dir(settings: NvidiaSettings, pod_uid: str, container: str) -> str:
    """The host directory that holds one container's HAMi-core shared cache."""
    return f"{settings.hook_path}/vgpu/containers/{pod_uid}_{container}"


def uses_hami_core(allocation: ContainerAllocation) -> bool:
    """False when a card of the allocation is in MIG mode (HAMi-core does not limit MIG)."""
    for share in allocation.devices:
        card = allocation.physical(share.uuid)
        if card is not None and card.mode == "mig":
            return False
    return True


def runtime_spec(
    allocation: ContainerAllocation,
    settings: NvidiaSettings,
    *,
    cache_id: str,
    license_present: bool = False,
) -> ContainerRuntimeSpec:
    """Env and mounts for one container, exactly as HAMi's NVIDIA device plugin returns them.

    `cache_id` names the shared-cache file (HAMi uses a fresh UUID4 per Allocate);
    `license_present` says whether the host has `<HOOK_PATH>/vgpu/license`.
    """
    uuids = list(dict.fromkeys(d.uuid for d in allocation.devices))
    envs: dict[str, str] = {ENV_VISIBLE_DEVICES: ",".join(uuids)}
    if not allocation.devices or not uses_hami_core(allocation):
        return ContainerRuntimeSpec(envs=envs)

    hook = settings.hook_path
    for i, share in enumerate(allocation.devices):
        envs[f"CUDA_DEVICE_MEMORY_LIMIT_{i}"] = f"{share.usedmem}m"
    envs["CUDA_DEVICE_SM_LIMIT"] = str(allocation.devices[0].usedcores)
    envs["CUDA_DEVICE_MEMORY_SHARED_CACHE"] = f"{hook}/vgpu/{cache_id}.cache"
    if settings.memory_scaling > 1:
        envs["CUDA_OVERSUBSCRIBE"] = "true"
    if settings.libcuda_log_level:
        envs["LIBCUDA_LOG_LEVEL"] = settings.libcuda_log_level
    if settings.disable_core_limit:
        envs[ENV_CORE_POLICY] = "disable"

    mounts = [
        Mount(
            container_path=f"{hook}/vgpu/libvgpu.so",
            host_path=f"{hook}/vgpu/libvgpu.so",
            read_only=True,
        ),
        Mount(
            container_path=f"{hook}/vgpu",
            host_path=cache_dir(settings, allocation.pod_uid, allocation.container),
            read_only=False,
        ),
        Mount(container_path=VGPU_LOCK_DIR, host_path=settings.lock_dir, read_only=False),
    ]
    if allocation.container_env.get(ENV_DISABLE_CONTROL, "") not in _GO_TRUE:
        mounts.append(
            Mount(
                container_path="/etc/ld.so.preload",
                host_path=f"{hook}/vgpu/ld.so.preload",
                read_only=True,
            )
        )
    if license_present:
        mounts.append(
            Mount(
                container_path="/tmp/license",
                host_path=f"{hook}/vgpu/license",
                read_only=True,
            )
        )
        mounts.append(
            Mount(
                container_path="/usr/bin/vgpuvalidator",
                host_path=f"{hook}/vgpu/vgpuvalidator",
                read_only=True,
            )
        )
    return ContainerRuntimeSpec(envs=envs, mounts=tuple(mounts))
