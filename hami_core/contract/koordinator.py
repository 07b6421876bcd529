"""Koordinator's dialect: what koordlet injects for a pod that asks for HAMi-core isolation.

kubernetes-interfaces.md §5.2 (Koordinator ≥ 1.7, `apis/extension/device_share.go` and the
koordlet GPU runtime hook): koord-scheduler writes `scheduling.koordinator.sh/device-allocated`
(cards by minor number with their core %, memory and memory ratio); for a pod labelled
`koordinator.sh/gpu-isolation-provider: HAMi-core`, koordlet makes the cards visible by minor,
adds their device nodes and, only when a card's memory ratio is below 100, preloads HAMi-core
with one byte-valued memory limit and one SM limit for all cards.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from hami_core.contract.hami import VGPU_LOCK_DIR, checked_devices
from hami_core.contract.model import (
    ContainerTarget,
    ContractError,
    GpuShare,
    HamiCoreSettings,
    PodMetadata,
    _whole,
)
from hami_core.contract.units import MIB
from hami_core.model import ContainerRuntimeSpec, DeviceNode, Mount
from hami_core.quantity import QuantityError, as_exact_int

__all__ = [
    "CONTROL_DEVICES",
    "DEVICE_ALLOCATED",
    "GPU_CORE",
    "GPU_MEMORY",
    "GPU_MEMORY_RATIO",
    "GPU_SHARED",
    "ISOLATION_PROVIDER",
    "ISOLATION_PROVIDER_HAMI_CORE",
    "VGPU_NODE_LABEL",
    "KoordinatorGpu",
    "decode_device_allocated",
    "encode_device_allocated",
    "koordinator_allocation",
    "koordinator_edits",
    "koordinator_pod_metadata",
    "memory_ratio",
    "shares_from_device_allocated",
]

ISOLATION_PROVIDER = "koordinator.sh/gpu-isolation-provider"
"""Pod label that selects the GPU isolation provider."""

ISOLATION_PROVIDER_HAMI_CORE = "HAMi-core"
"""Its value for HAMi-core; koordlet compares it case-sensitively (`hami-core` does nothing)."""

DEVICE_ALLOCATED = "scheduling.koordinator.sh/device-allocated"
"""Pod annotation where koord-scheduler records the cards it chose."""

VGPU_NODE_LABEL = "hami.io/vgpu-node"
"""Pod label (value: node name) by which HAMi's vGPUmonitor finds the pods of its node."""

GPU_SHARED = "koordinator.sh/gpu.shared"
GPU_CORE = "koordinator.sh/gpu-core"
GPU_MEMORY = "koordinator.sh/gpu-memory"
GPU_MEMORY_RATIO = "koordinator.sh/gpu-memory-ratio"

CONTROL_DEVICES = ("/dev/nvidiactl", "/dev/nvidia-uvm", "/dev/nvidia-uvm-tools")
"""Device nodes every GPU container gets besides its cards' `/dev/nvidia<minor>`."""


@dataclass(frozen=True, slots=True)
class KoordinatorGpu:
    """One card of a `device-allocated` annotation: its minor, core %, memory and memory %."""

    minor: int
    core: int
    memory_bytes: int
    memory_ratio: int

    def __post_init__(self) -> None:
        _whole("minor", self.minor, 0)
        _whole(f"gpu {self.minor}: core", self.core, 0, 100)
        _whole(f"gpu {self.minor}: memory_bytes", self.memory_bytes, 0)
        _whole(f"gpu {self.minor}: memory_ratio", self.memory_ratio, 0, 100)

    def resources(self) -> dict[str, str]:
        """The card's `resources` map as Koordinator writes it (keys sorted, as Go does)."""
        memory = self.memory_bytes
        text = f"{memory // MIB}Mi" if memory % MIB == 0 else str(memory)
        return {
            GPU_CORE: str(self.core),
            GPU_MEMORY: text,
            GPU_MEMORY_RATIO: str(self.memory_ratio),
        }


def memory_ratio(share: GpuShare) -> int:
    """The share's memory as a whole percent of its card, rounded down (so any share smaller
    than the card stays below 100 and keeps its HAMi-core limit)."""
    total = share.total_memory_mib
    if total is None:
        raise ContractError(f"device {share.uuid}: total_memory_mib is needed for the memory ratio")
    if share.memory_mib > total:
        raise ContractError(
            f"device {share.uuid}: memory_mib {share.memory_mib} exceeds the card's {total} MiB"
        )
    return share.memory_mib * 100 // total


def koordinator_allocation(devices: Sequence[GpuShare]) -> tuple[KoordinatorGpu, ...]:
    """The shares as Koordinator's cards (each needs `minor` and `total_memory_mib`)."""
    return _distinct(_allocation(devices))


def _distinct(gpus: Sequence[KoordinatorGpu]) -> tuple[KoordinatorGpu, ...]:
    minors = [g.minor for g in gpus]
    if len(set(minors)) != len(minors):
        raise ContractError(f"devices: minor numbers repeat: {minors}")
    return tuple(gpus)


def _allocation(devices: Sequence[object]) -> list[KoordinatorGpu]:
    gpus = []
    for i, share in enumerate(checked_devices(devices)):
        if share.minor is None:
            raise ContractError(f"devices[{i}] ({share.uuid}): minor is needed by Koordinator")
        gpus.append(
            KoordinatorGpu(
                minor=share.minor,
                core=share.cores,
                memory_bytes=share.memory_mib * MIB,
                memory_ratio=memory_ratio(share),
            )
        )
    return gpus


def encode_device_allocated(gpus: Sequence[KoordinatorGpu]) -> str:
    """The `scheduling.koordinator.sh/device-allocated` value: compact JSON, as Go writes it."""
    doc = {"gpu": [{"minor": g.minor, "resources": g.resources()} for g in gpus]}
    return json.dumps(doc, separators=(",", ":"))


def _field(where: str, resources: dict[str, Any], key: str) -> int:
    raw = resources.get(key)
    if raw is None:
        raise ContractError(f"{where}: {key} is missing")
    try:
        value = as_exact_int(raw)
    except QuantityError as exc:
        raise ContractError(f"{where}: {key}: {exc}") from None
    if value is None:
        raise ContractError(f"{where}: {key}: {raw!r} is not a whole number")
    return value


def decode_device_allocated(text: str) -> tuple[KoordinatorGpu, ...]:
    """The GPU cards of a `device-allocated` value; other device types are ignored.

    Raises `ContractError` naming the annotation, the card and the field.
    """
    where = DEVICE_ALLOCATED
    if not isinstance(text, str):
        raise ContractError(f"{where}: expected a string, got {text!r}")
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise ContractError(f"{where}: not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise ContractError(f"{where}: expected a JSON object of device types")
    items = doc.get("gpu")
    if items is None:
        items = []
    if not isinstance(items, list):
        raise ContractError(f"{where}: gpu: expected a list, got {items!r}")
    gpus = []
    for i, item in enumerate(items):
        at = f"{where}: gpu[{i}]"
        if not isinstance(item, dict):
            raise ContractError(f"{at}: expected an object, got {item!r}")
        minor = item.get("minor", 0)  # Go omits nothing here, but a zero minor may be absent
        if isinstance(minor, bool) or not isinstance(minor, int) or minor < 0:
            raise ContractError(f"{at}: minor: expected a whole number >= 0, got {minor!r}")
        resources = item.get("resources")
        if resources is None:
            resources = {}
        if not isinstance(resources, dict):
            raise ContractError(f"{at}: resources: expected an object, got {resources!r}")
        try:
            gpus.append(
                KoordinatorGpu(
                    minor=minor,
                    core=_field(at, resources, GPU_CORE),
                    memory_bytes=_field(at, resources, GPU_MEMORY),
                    memory_ratio=_field(at, resources, GPU_MEMORY_RATIO),
                )
            )
        except ContractError as exc:
            raise ContractError(f"{at}: {exc}") from None
    return tuple(gpus)


def shares_from_device_allocated(
    text: str, uuid_of_minor: dict[int, str], total_memory_mib_of_minor: dict[int, int]
) -> tuple[GpuShare, ...]:
    """The shares a `device-allocated` value grants, given the node's cards by minor number."""
    shares = []
    for gpu in decode_device_allocated(text):
        if gpu.minor not in uuid_of_minor or gpu.minor not in total_memory_mib_of_minor:
            raise ContractError(f"{DEVICE_ALLOCATED}: gpu minor {gpu.minor} is not on this node")
        if gpu.memory_bytes % MIB:
            raise ContractError(
                f"{DEVICE_ALLOCATED}: gpu minor {gpu.minor}: memory {gpu.memory_bytes} bytes is "
                "not a whole number of MiB"
            )
        shares.append(
            GpuShare(
                uuid=uuid_of_minor[gpu.minor],
                memory_mib=gpu.memory_bytes // MIB,
                cores=gpu.core,
                minor=gpu.minor,
                total_memory_mib=total_memory_mib_of_minor[gpu.minor],
            )
        )
    return tuple(shares)


def koordinator_pod_metadata(
    devices: Sequence[GpuShare], node_name: str | None = None
) -> PodMetadata:
    """The pod's isolation-provider label, the `hami.io/vgpu-node` label (when the node is
    known) and the `device-allocated` annotation for these cards."""
    labels = {ISOLATION_PROVIDER: ISOLATION_PROVIDER_HAMI_CORE}
    if node_name is not None:
        if not isinstance(node_name, str) or not node_name:
            raise ContractError(f"node_name: expected a non-empty string, got {node_name!r}")
        labels[VGPU_NODE_LABEL] = node_name
    annotation = encode_device_allocated(koordinator_allocation(devices))
    return PodMetadata(labels=labels, annotations={DEVICE_ALLOCATED: annotation})


def _uniform(gpus: Sequence[KoordinatorGpu]) -> KoordinatorGpu:
    first = gpus[0]
    for gpu in gpus[1:]:
        if (gpu.memory_bytes, gpu.core) != (first.memory_bytes, first.core):
            raise ContractError(
                "devices: Koordinator's dialect has one memory limit and one core limit for all "
                f"cards, but minor {gpu.minor} differs from minor {first.minor}"
            )
    return first


def koordinator_edits(
    devices: Sequence[GpuShare] | Sequence[KoordinatorGpu],
    container: ContainerTarget,
    settings: HamiCoreSettings | None = None,
) -> ContainerRuntimeSpec:
    """The env, mounts and device nodes koordlet injects into one container.

    `devices` are the container's shares (with `minor` and `total_memory_mib`) or the cards of
    a decoded `device-allocated` annotation. Raises `ContractError` naming the field.
    """
    settings = settings if settings is not None else HamiCoreSettings()
    given = [d for d in devices if isinstance(d, KoordinatorGpu)]
    if given and len(given) == len(devices):
        gpus = _distinct(given)
    else:
        gpus = _distinct(_allocation(devices))

    envs = {"NVIDIA_VISIBLE_DEVICES": ",".join(str(g.minor) for g in gpus)}
    nodes = [
        DeviceNode(container_path=path, host_path=path, permissions="rwm")
        for path in (*(f"/dev/nvidia{g.minor}" for g in gpus), *CONTROL_DEVICES)
    ]
    mounts: list[Mount] = []
    if any(g.memory_ratio < 100 for g in gpus):
        limit = _uniform(gpus)
        lib = settings.library_dir
        envs["CUDA_DEVICE_MEMORY_LIMIT"] = str(limit.memory_bytes)
        envs["CUDA_DEVICE_SM_LIMIT"] = str(limit.core)
        envs["LD_PRELOAD"] = f"{lib}/libvgpu.so"
        if settings.monitor:
            envs["CUDA_DEVICE_MEMORY_SHARED_CACHE"] = f"{lib}/{container.slot}.cache"
            mounts.append(
                Mount(
                    container_path=lib,
                    host_path=f"{lib}/containers/{container.slot}",
                    read_only=False,
                )
            )
        mounts.append(
            Mount(container_path=f"{lib}/libvgpu.so", host_path=f"{lib}/libvgpu.so", read_only=True)
        )
        mounts.append(
            Mount(container_path=VGPU_LOCK_DIR, host_path=settings.lock_dir, read_only=False)
        )
    return ContainerRuntimeSpec(envs=envs, mounts=tuple(mounts), devices=tuple(nodes))
