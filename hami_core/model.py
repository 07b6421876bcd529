"""The data model shared by the vendor contract, the engine and the services.

Models that travel between vendors and the core are frozen pydantic models with validation that
names the bad field. Two hot-path records are plain slotted dataclasses instead: `DeviceUsage`
(mutable counters the usage cache and the fit loop update in place) and the wire records
`DeviceInfo` / `ContainerDevice` re-exported from `hami_core.protocol.types`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from hami_core.protocol import keys
from hami_core.protocol.types import ContainerDevice, DeviceInfo

__all__ = [
    "AnnotationKeys",
    "ContainerAllocation",
    "ContainerDevice",
    "ContainerRequest",
    "ContainerRuntimeSpec",
    "Device",
    "DeviceInfo",
    "DeviceNode",
    "DeviceUsage",
    "FitContext",
    "FitResult",
    "Mount",
    "Mounting",
    "MultiDeviceRule",
    "Mutation",
    "NodeView",
    "PodDevices",
    "PodView",
    "RegisterFormat",
    "ResourceNames",
    "Template",
    "VendorSpec",
    "VendorUnavailable",
]

Mounting = Literal["runtime", "builtin"]
"""`runtime`: a container runtime mounts the devices from env (NVIDIA, Ascend); `builtin`: the
device plugin lists device nodes itself (Hygon, Cambricon)."""

RegisterFormat = Literal["json", "legacy", "capacity", "custom"]
"""How a node publishes its devices: HAMi JSON annotation, legacy text annotation, synthesised
from `status.capacity` (Cambricon, Moore Threads, MetaX), or the vendor's own reader."""

MultiDeviceRule = Literal["shared", "whole"]
"""`shared`: each of several cards may be a slice; `whole`: a request for more than one card
takes whole cards, exclusively."""

PodDevices = dict[str, list[list[ContainerDevice]]]
"""Vendor key → one list of devices per container (init containers first, then app)."""

_FROZEN = ConfigDict(frozen=True, extra="forbid")


class ResourceNames(BaseModel):
    """The extended-resource names a vendor reads from container limits/requests."""

    model_config = _FROZEN

    count: str = Field(min_length=1)
    memory: str | None = None
    memory_percentage: str | None = None
    cores: str | None = None
    priority: str | None = None

    def all(self) -> tuple[str, ...]:
        """Every configured name, count first."""
        names = (self.count, self.memory, self.memory_percentage, self.cores, self.priority)
        return tuple(n for n in names if n)


class AnnotationKeys(BaseModel):
    """Where a vendor's node and pod annotations live (one table in docs/annotations.md)."""

    model_config = _FROZEN

    node_register: str | None = None
    handshake: str | None = None
    to_allocate: str | None = None
    allocated: str = Field(min_length=1)
    use_uuid: str | None = None
    nouse_uuid: str | None = None
    use_type: str | None = None
    nouse_type: str | None = None
    pair_scores: str | None = None
    extra: Mapping[str, str] = Field(
        default_factory=dict, description="vendor-specific keys by role, e.g. runtime_info"
    )
    pod_decisions: tuple[str, ...] = Field(
        default=(),
        description="other pod annotations only hami (scheduler or node side) writes, e.g. "
        "runtime info a mount hook reads; refused on new pods like `decision_keys()`",
    )
    numa_bind: str | None = Field(default=None, description="pod annotation asking one NUMA node")
    mode: str | None = Field(default=None, description="pod annotation naming allowed modes")
    assigned_node: str = Field(default=keys.ASSIGNED_NODE, min_length=1)
    bind_phase: str = Field(default=keys.BIND_PHASE, min_length=1)
    bind_time: str = Field(default=keys.BIND_TIME, min_length=1)
    node_lock: str = Field(default=keys.NODE_LOCK, min_length=1)

    def decision_keys(self) -> tuple[str, ...]:
        """The pod annotation keys only the scheduler may write for this vendor."""
        return tuple(k for k in (self.to_allocate, self.allocated) if k)


class Template(BaseModel):
    """A fixed slice size a card offers (Ascend vNPU templates)."""

    model_config = _FROZEN

    name: str = Field(min_length=1)
    memory_mib: int = Field(gt=0)
    cores: int = Field(ge=0)
    extras: Mapping[str, Any] = Field(default_factory=dict)


class VendorSpec(BaseModel):
    """What a vendor is: names, units, annotation keys, mounting and sharing rules."""

    model_config = _FROZEN

    key: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$", description="hami's vendor key")
    common_word: str = Field(min_length=1, description="HAMi's CommonWord, e.g. NVIDIA, DCU")
    display_name: str = ""
    resources: ResourceNames
    annotations: AnnotationKeys
    register_format: RegisterFormat
    mounting: Mounting
    advertised: tuple[str, ...] = Field(
        default=(), description="resource names the device plugin serves to kubelet"
    )
    ignored_by_scheduler: tuple[str, ...] = Field(
        default=(), description="managedResources kube-scheduler must not count itself"
    )
    memory_unit_mib: int = Field(default=1, gt=0)
    core_units: int = Field(default=100, gt=0, description="core units of one whole card")
    default_count: int = Field(default=1, ge=0)
    default_memory_mib: int = Field(default=0, ge=0)
    default_cores: int = Field(default=0, ge=0)
    exclusive_by_default: bool = Field(
        default=False, description="a count-only request takes all cores of each card"
    )
    multi_device: MultiDeviceRule = "shared"
    whole_card_only: bool = False
    one_device_per_pod: bool = Field(
        default=False, description="all containers of a pod share one card (Moore Threads)"
    )
    memory_values: tuple[int, ...] = Field(
        default=(), description="the only memory values (in memory units) a request may use"
    )
    node_lock: bool = True
    default_split: int = Field(default=10, gt=0)
    templates: tuple[Template, ...] = ()
    distribution: str = ""
    opt_in: bool = Field(
        default=False,
        description="load only when HAMI_VENDORS names this key (e.g. an alternative protocol)",
    )

    @model_validator(mode="after")
    def _check(self) -> VendorSpec:
        if self.register_format in ("json", "legacy") and not self.annotations.node_register:
            raise ValueError(
                f"vendor {self.key!r}: register_format {self.register_format!r} "
                "needs annotations.node_register"
            )
        return self

    def resource_names(self) -> tuple[str, ...]:
        """Every resource name this vendor claims (requests and kubelet-advertised)."""
        return tuple(dict.fromkeys((*self.resources.all(), *self.advertised)))


class Device(BaseModel):
    """A physical card found on a node by `hami_discover`."""

    model_config = _FROZEN

    vendor: str = Field(min_length=1)
    uuid: str = Field(min_length=1)
    index: int = Field(ge=0)
    model: str = Field(min_length=1)
    memory_mib: int = Field(ge=0)
    cores: int = Field(default=100, ge=0)
    numa: int = 0
    health: bool = True
    mode: str = "hami-core"
    paths: tuple[str, ...] = Field(default=(), description="device nodes of this card")
    extras: Mapping[str, Any] = Field(default_factory=dict)


@dataclass(slots=True)
class DeviceUsage:
    """One card as the scheduler sees it: totals from registration, counters from usage.

    Mutable on purpose: the usage cache and the fit loop update these counters in place.
    """

    id: str
    index: int
    type: str
    vendor: str
    count: int
    totalmem: int
    totalcore: int
    numa: int = 0
    health: bool = True
    mode: str = ""
    used: int = 0
    usedmem: int = 0
    usedcores: int = 0
    custominfo: Mapping[str, Any] | None = None
    score: float = 0.0

    @classmethod
    def from_info(cls, vendor: str, info: DeviceInfo) -> DeviceUsage:
        """A fresh, unused view of a registered card."""
        return cls(
            id=info.id,
            index=info.index,
            type=info.type,
            vendor=vendor,
            count=info.count,
            totalmem=info.devmem,
            totalcore=info.devcore,
            numa=info.numa,
            health=info.health,
            mode=info.mode,
            custominfo=info.custominfo,
        )

    def copy(self) -> DeviceUsage:
        """An independent copy (fit works on copies; the cache keeps the originals)."""
        return DeviceUsage(
            self.id,
            self.index,
            self.type,
            self.vendor,
            self.count,
            self.totalmem,
            self.totalcore,
            self.numa,
            self.health,
            self.mode,
            self.used,
            self.usedmem,
            self.usedcores,
            self.custominfo,
            self.score,
        )

    def take(self, share: ContainerDevice) -> None:
        """Count one more sharer with this share of memory and cores."""
        self.used += 1
        self.usedmem += share.usedmem
        self.usedcores += share.usedcores

    def give_back(self, share: ContainerDevice) -> None:
        """Undo `take` (never below zero)."""
        self.used = max(0, self.used - 1)
        self.usedmem = max(0, self.usedmem - share.usedmem)
        self.usedcores = max(0, self.usedcores - share.usedcores)


class ContainerRequest(BaseModel):
    """What one container asks of one vendor, in MiB and core units of one card.

    `memory_percent` is None when unset; when both are set, `memory_mib > 0` wins (as in HAMi).
    """

    model_config = _FROZEN

    vendor: str = Field(min_length=1)
    container: str = ""
    container_index: int = Field(default=0, ge=0)
    init: bool = False
    count: int = Field(ge=0)
    memory_mib: int = Field(default=0, ge=0)
    memory_percent: int | None = Field(default=None, ge=0, le=100)
    cores: int = Field(default=0, ge=0)
    extras: Mapping[str, Any] = Field(default_factory=dict)

    def memory_for(self, total_mib: int) -> int:
        """The MiB this request takes on a card with `total_mib` (explicit MiB, else percent)."""
        if self.memory_mib > 0:
            return self.memory_mib
        if self.memory_percent is not None:
            return total_mib * self.memory_percent // 100
        return 0


@dataclass(frozen=True, slots=True)
class PodView:
    """The parts of a pod the engine and vendors read (decoded once per scheduling call)."""

    namespace: str
    name: str
    uid: str
    annotations: Mapping[str, str]
    labels: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_obj(cls, pod: Mapping[str, Any]) -> PodView:
        """Build from a JSON-shaped Pod object."""
        meta = pod.get("metadata") or {}
        return cls(
            namespace=str(meta.get("namespace") or "default"),
            name=str(meta.get("name") or ""),
            uid=str(meta.get("uid") or ""),
            annotations=dict(meta.get("annotations") or {}),
            labels=dict(meta.get("labels") or {}),
        )


@dataclass(frozen=True, slots=True)
class NodeView:
    """The parts of a node the scheduler reads: annotations, labels, capacity, allocatable."""

    name: str
    annotations: Mapping[str, str]
    labels: Mapping[str, str] = field(default_factory=dict)
    capacity: Mapping[str, str] = field(default_factory=dict)
    allocatable: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_obj(cls, node: Mapping[str, Any]) -> NodeView:
        """Build from a JSON-shaped Node object."""
        meta = node.get("metadata") or {}
        status = node.get("status") or {}
        return cls(
            name=str(meta.get("name") or ""),
            annotations=dict(meta.get("annotations") or {}),
            labels=dict(meta.get("labels") or {}),
            capacity={k: str(v) for k, v in (status.get("capacity") or {}).items()},
            allocatable={k: str(v) for k, v in (status.get("allocatable") or {}).items()},
        )


@dataclass(frozen=True, slots=True)
class FitContext:
    """Everything `hami_allocate` may consult besides the request and the devices."""

    pod: PodView
    node: NodeView
    gpu_policy: tuple[str, ...] = ("spread",)
    pair_scores: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    pod_devices: PodDevices = field(default_factory=dict)
    config: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class FitResult:
    """One container's fit on one node for one vendor: the chosen shares, or counted reasons.

    `total` is the number of the vendor's devices considered (the `N` in `n/N Reason`).
    """

    devices: tuple[ContainerDevice, ...] = ()
    reasons: Mapping[str, int] = field(default_factory=dict)
    total: int = 0
    ok: bool = False

    @classmethod
    def fit(cls, devices: tuple[ContainerDevice, ...], total: int) -> FitResult:
        """A successful fit."""
        return cls(devices=devices, total=total, ok=True)

    @classmethod
    def fail(cls, reasons: Mapping[str, int], total: int) -> FitResult:
        """A failed fit with its reason counts."""
        return cls(reasons=dict(reasons), total=total, ok=False)


class Mount(BaseModel):
    """A bind mount into the container."""

    model_config = _FROZEN

    container_path: str = Field(min_length=1)
    host_path: str = Field(min_length=1)
    read_only: bool = True


class DeviceNode(BaseModel):
    """A device node made visible in the container."""

    model_config = _FROZEN

    container_path: str = Field(min_length=1)
    host_path: str = Field(min_length=1)
    permissions: str = Field(default="rw", pattern=r"^[rwm]{1,3}$")


class ContainerRuntimeSpec(BaseModel):
    """What the device plugin returns for one container (kubelet's ContainerAllocateResponse)."""

    model_config = _FROZEN

    envs: Mapping[str, str] = Field(default_factory=dict)
    mounts: tuple[Mount, ...] = ()
    devices: tuple[DeviceNode, ...] = ()
    cdi_devices: tuple[str, ...] = ()
    annotations: Mapping[str, str] = Field(default_factory=dict)


class ContainerAllocation(BaseModel):
    """One container's assigned devices, as the device plugin hands them to `hami_mount`."""

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    vendor: str = Field(min_length=1)
    pod_namespace: str
    pod_name: str
    pod_uid: str
    pod_annotations: Mapping[str, str] = Field(default_factory=dict)
    container: str
    container_env: Mapping[str, str] = Field(default_factory=dict)
    devices: tuple[ContainerDevice, ...]
    node_devices: tuple[Device, ...] = ()
    kubelet_ids: tuple[str, ...] = ()
    config: Mapping[str, Any] = Field(default_factory=dict)
    dry_run: bool = Field(
        default=False,
        description="simulation: describe the mounts but touch nothing on the host",
    )

    def physical(self, uuid: str) -> Device | None:
        """The discovered card with this UUID on this node, if the node agent found it."""
        for d in self.node_devices:
            if d.uuid == uuid:
                return d
        return None


class VendorUnavailable(Exception):
    """Raised by `hami_discover` when the vendor's library or tool is absent on this node."""

    def __init__(self, vendor: str, why: str) -> None:
        super().__init__(f"{vendor}: unavailable: {why}")
        self.vendor = vendor
        self.why = why


class Mutation(BaseModel):
    """Admission defaults for one container: what the webhook sets or adds.

    `limits` are set on the container (and mirrored into requests where the user set requests);
    `env` is appended where the container does not already define the name; `pod_annotations`
    are added to the pod; `runtime_class_name` is set when the pod has none.
    """

    model_config = _FROZEN

    limits: Mapping[str, str] = Field(default_factory=dict)
    env: Mapping[str, str] = Field(default_factory=dict)
    pod_annotations: Mapping[str, str] = Field(default_factory=dict)
    runtime_class_name: str | None = None
    uses_vendor: bool = False

    def is_empty(self) -> bool:
        """True when applying it would change nothing."""
        return not (self.limits or self.env or self.pod_annotations or self.runtime_class_name)
