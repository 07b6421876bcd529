"""What the device plugin returns for one Ascend container (reference §3.7), pure.

Hard slicing: `ASCEND_VISIBLE_DEVICES=<physical ids>` and, when the share is a template,
`ASCEND_VNPU_SPECS=<template>`. The Ascend container runtime (MindCluster
`ascend-docker-runtime`, usually through RuntimeClass `ascend`) reads both, creates the vNPU and
adds `/dev/davinci<N>`, `/dev/davinci_manager`, `/dev/devmm_svm`, `/dev/hisi_hdc` and the driver
mounts; the plugin lists no device nodes itself.

Soft slicing (`huawei.com/vnpu-mode: hami-core`): the same visible devices plus HAMi's vNPU-core
limiter: driver and `npu-smi` mounts, the limiter directory and its `ld.so.preload`, the shared
region, a per-container shared-memory directory, and `NPU_MEM_QUOTA`, `NPU_PRIORITY`,
`NPU_GLOBAL_SHM_PATH`, `NPU_LOCAL_SHM_PATH`.
"""

from __future__ import annotations

from hami_ascend.chips import ChipConfig
from hami_ascend.runtime_info import RuntimeInfo, decode_runtime_info
from hami_ascend.spec import AscendKeys
from hami_core.errors import HamiError
from hami_core.model import ContainerAllocation, ContainerRuntimeSpec, Mount

__all__ = [
    "HOOK_PATH",
    "VISIBLE_DEVICES_ENV",
    "VNPU_SPECS_ENV",
    "MountError",
    "physical_ids",
    "runtime_spec",
]

VISIBLE_DEVICES_ENV = "ASCEND_VISIBLE_DEVICES"
VNPU_SPECS_ENV = "ASCEND_VNPU_SPECS"
HOOK_PATH = "/usr/local/hami-vnpu-core"
"""Host directory of HAMi's vNPU-core limiter (the Go plugin's `HOOK_PATH` default)."""

_DRIVER_PATHS = (
    "/usr/local/bin/npu-smi",
    "/etc/ascend_install.info",
    "/usr/local/Ascend/driver/lib64/driver",
    "/usr/local/Ascend/driver/version.info",
)


class MountError(HamiError):
    """An allocation names an NPU this node's discovery did not find."""


def physical_ids(allocation: ContainerAllocation) -> list[int]:
    """The physical id (`/dev/davinci<N>`) of each allocated NPU, from the discovered devices.

    Raises `MountError` naming the UUID when a device was not discovered on this node.
    """
    ids: list[int] = []
    for share in allocation.devices:
        device = allocation.physical(share.uuid)
        if device is None:
            raise MountError(
                f"{allocation.vendor}: NPU {share.uuid!r} allocated to "
                f"{allocation.pod_namespace}/{allocation.pod_name} container "
                f"{allocation.container!r} is not on this node"
            )
        phy = device.extras.get("phy_id", device.index)
        ids.append(int(phy))
    return ids


def _infos(allocation: ContainerAllocation, keys: AscendKeys) -> dict[str, RuntimeInfo]:
    value = allocation.pod_annotations.get(keys.runtime_info)
    if not value:
        return {}
    return {i.uuid: i for i in decode_runtime_info(value, keys.runtime_info) if i.uuid}


def _soft_mounts(allocation: ContainerAllocation) -> tuple[Mount, ...]:
    mounts = [Mount(container_path=p, host_path=p, read_only=True) for p in _DRIVER_PATHS]
    mounts += [
        Mount(container_path="/hami-vnpu-core", host_path=HOOK_PATH, read_only=True),
        Mount(
            container_path="/etc/ld.so.preload",
            host_path=f"{HOOK_PATH}/ld.so.preload",
            read_only=True,
        ),
        Mount(
            container_path="/hami-shared-region",
            host_path="/usr/local/hami-shared-region",
            read_only=False,
        ),
        Mount(
            container_path="/hami-vnpu-shmem",
            host_path=f"{HOOK_PATH}/containers/{allocation.pod_uid}_{allocation.container}",
            read_only=False,
        ),
    ]
    return tuple(mounts)


def runtime_spec(
    chip: ChipConfig, allocation: ContainerAllocation, keys: AscendKeys, soft: bool
) -> ContainerRuntimeSpec:
    """The env and mounts for one container's NPUs (module docstring).

    The template comes from the pod's `huawei.com/<commonWord>` annotation, else it is the
    template whose memory equals the share's. Raises `MountError` for an NPU not on this node
    and `ProtocolError` for a malformed runtime-info annotation.
    """
    ids = physical_ids(allocation)
    infos = _infos(allocation, keys)
    envs = {VISIBLE_DEVICES_ENV: ",".join(str(i) for i in ids)}
    if soft:
        first = allocation.devices[0] if allocation.devices else None
        if first is not None:
            info = infos.get(first.uuid)
            memory = info.memory if info and info.memory is not None else first.usedmem
            core = info.core if info and info.core is not None else first.usedcores
            if memory:
                envs["NPU_MEM_QUOTA"] = str(memory)
            envs["NPU_PRIORITY"] = str(core)
        if ids:
            envs["NPU_GLOBAL_SHM_PATH"] = f"/hami-shared-region/{ids[0]}_global_registry"
        envs["NPU_LOCAL_SHM_PATH"] = "/hami-vnpu-shmem/vnpu_local_shmem"
        return ContainerRuntimeSpec(envs=envs, mounts=_soft_mounts(allocation))
    for share in allocation.devices:
        template = _template(chip, share.usedmem, infos.get(share.uuid))
        if template:
            envs[VNPU_SPECS_ENV] = template
            break
    return ContainerRuntimeSpec(envs=envs)


def _template(chip: ChipConfig, usedmem: int, info: RuntimeInfo | None) -> str | None:
    if info is not None:
        return info.temp
    for t in chip.templates:
        if t.memory_mib == usedmem:
            return t.name
    return None
