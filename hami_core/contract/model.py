"""The plain values the contract takes and gives, with validation that names the bad field."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from hami_core.errors import HamiError
from hami_core.model import ContainerRuntimeSpec
from hami_core.protocol.types import ContainerDevice

__all__ = [
    "ContainerTarget",
    "ContractError",
    "GpuShare",
    "HamiCoreSettings",
    "PodMetadata",
    "edits_json",
    "settings_from_device_config",
]

_LOG_LEVEL = re.compile(r"[0-9]?")
_TRUE = frozenset({"1", "t", "T", "TRUE", "true", "True"})
_FALSE = frozenset({"0", "f", "F", "FALSE", "false", "False"})


class ContractError(HamiError, ValueError):
    """An input the contract cannot turn into container edits; the message names the field."""


def _whole(where: str, value: Any, low: int, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ContractError(f"{where}: expected a whole number, got {value!r}")
    if value < low or (high is not None and value > high):
        bounds = f">= {low}" if high is None else f"in {low}..{high}"
        raise ContractError(f"{where}: expected a number {bounds}, got {value!r}")
    return value


def _path_part(where: str, value: Any) -> str:
    """A value that becomes one component of a host path: never empty, `/`, `.` or `..`."""
    if not isinstance(value, str) or not value:
        raise ContractError(f"{where}: expected a non-empty string, got {value!r}")
    if "/" in value or value in (".", "..") or "\x00" in value:
        raise ContractError(f"{where}: {value!r} cannot be part of a host path")
    return value


def _absolute(where: str, value: Any) -> str:
    if not isinstance(value, str) or not value.startswith("/") or "\x00" in value:
        raise ContractError(f"{where}: expected an absolute path, got {value!r}")
    parts = value.split("/")
    if ".." in parts:
        raise ContractError(f"{where}: {value!r} must not contain '..'")
    return value.rstrip("/") or "/"


@dataclass(frozen=True, slots=True)
class GpuShare:
    """One card's share for one container: `memory_mib` of its memory, `cores` % of its SMs.

    `minor` is the card's device minor number (`/dev/nvidia<minor>`) and `total_memory_mib` its
    whole memory; only the Koordinator dialect needs them.
    """

    uuid: str
    memory_mib: int
    cores: int
    minor: int | None = None
    total_memory_mib: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.uuid, str) or not self.uuid.strip():
            raise ContractError(f"device uuid: expected a non-empty string, got {self.uuid!r}")
        if "," in self.uuid or self.uuid != self.uuid.strip():
            raise ContractError(f"device uuid {self.uuid!r}: must not hold commas or spaces")
        _whole(f"device {self.uuid}: memory_mib", self.memory_mib, 0)
        _whole(f"device {self.uuid}: cores", self.cores, 0, 100)
        if self.minor is not None:
            _whole(f"device {self.uuid}: minor", self.minor, 0)
        if self.total_memory_mib is not None:
            _whole(f"device {self.uuid}: total_memory_mib", self.total_memory_mib, 1)

    @classmethod
    def from_container_device(
        cls,
        device: ContainerDevice,
        *,
        minor: int | None = None,
        total_memory_mib: int | None = None,
    ) -> GpuShare:
        """The share HAMi's scheduler assigned (`uuid,NVIDIA,usedmem,usedcores`)."""
        return cls(
            uuid=device.uuid,
            memory_mib=device.usedmem,
            cores=device.usedcores,
            minor=minor,
            total_memory_mib=total_memory_mib,
        )

    def to_json(self) -> dict[str, Any]:
        """The share as a JSON object (the golden vectors' `input.devices` items)."""
        return {
            "uuid": self.uuid,
            "memory_mib": self.memory_mib,
            "cores": self.cores,
            "minor": self.minor,
            "total_memory_mib": self.total_memory_mib,
        }


@dataclass(frozen=True, slots=True)
class ContainerTarget:
    """Which container the edits are for, and what it asked for itself.

    `env` is the container's own env from the pod spec (`CUDA_DISABLE_CONTROL=true` opts out of
    `/etc/ld.so.preload`); `task_priority` is its `nvidia.com/priority` (0 high, 1 low), if any.
    """

    pod_uid: str
    container: str
    env: Mapping[str, str] = field(default_factory=dict)
    task_priority: int | None = None

    def __post_init__(self) -> None:
        _path_part("pod_uid", self.pod_uid)
        _path_part("container", self.container)
        if not isinstance(self.env, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in self.env.items()
        ):
            raise ContractError(f"container {self.container}: env: expected str → str")
        if self.task_priority is not None and (
            isinstance(self.task_priority, bool) or self.task_priority not in (0, 1)
        ):
            raise ContractError(
                f"container {self.container}: task_priority: {self.task_priority!r} is not a "
                "priority; HAMi-core knows 0 (high) and 1 (low)"
            )

    @property
    def slot(self) -> str:
        """`<podUID>_<container>`: the name of its host cache directory."""
        return f"{self.pod_uid}_{self.container}"

    @property
    def disables_control(self) -> bool:
        """Whether its env sets `CUDA_DISABLE_CONTROL` to a Go-ParseBool true value."""
        return self.env.get("CUDA_DISABLE_CONTROL", "") in _TRUE

    def to_json(self) -> dict[str, Any]:
        """The target as a JSON object (the golden vectors' `input.container`)."""
        return {
            "pod_uid": self.pod_uid,
            "container": self.container,
            "env": dict(self.env),
            "task_priority": self.task_priority,
        }


@dataclass(frozen=True, slots=True)
class HamiCoreSettings:
    """Where HAMi-core lives on the node and how it is tuned (HAMi's chart defaults).

    `hook_path` holds `vgpu/libvgpu.so` and `vgpu/ld.so.preload` (HAMi's `HOOK_PATH`);
    `lock_dir` is the host directory behind the container's `/tmp/vgpulock`;
    `library_version`, when set, mounts the host's `libvgpu.so.<version>`; `log_level` is
    `LIBCUDA_LOG_LEVEL` (`0` errors only ... `4` debug, empty: HAMi-core's default);
    `memory_scaling` > 1 turns on oversubscription; `disable_core_limit` turns the SM limit off;
    `license_present` mounts `vgpu/license` and `vgpu/vgpuvalidator`; `monitor` (Koordinator's
    `HamiCoreVGPUMonitor` gate) gives each container its own cache dir for vGPUmonitor.
    """

    hook_path: str = "/usr/local"
    lock_dir: str = "/tmp/vgpulock"
    library_version: str = ""
    log_level: str = ""
    memory_scaling: float = 1.0
    disable_core_limit: bool = False
    license_present: bool = False
    monitor: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "hook_path", _absolute("hook_path", self.hook_path))
        object.__setattr__(self, "lock_dir", _absolute("lock_dir", self.lock_dir))
        if not isinstance(self.library_version, str) or "/" in self.library_version:
            raise ContractError(
                f"library_version: expected a version string, got {self.library_version!r}"
            )
        if not isinstance(self.log_level, str) or not _LOG_LEVEL.fullmatch(self.log_level):
            raise ContractError(
                f"log_level: expected a digit (0 errors, 1 warnings, 3 info, 4 debug) or empty, "
                f"got {self.log_level!r}"
            )
        scaling = self.memory_scaling
        if isinstance(scaling, bool) or not isinstance(scaling, int | float) or not scaling > 0:
            raise ContractError(f"memory_scaling: expected a number above 0, got {scaling!r}")
        for name in ("disable_core_limit", "license_present", "monitor"):
            if not isinstance(getattr(self, name), bool):
                raise ContractError(f"{name}: expected true or false, got {getattr(self, name)!r}")

    @property
    def library_dir(self) -> str:
        """`<hook_path>/vgpu`: HAMi-core's directory (Koordinator: HAMICoreLibraryDirectoryPath)."""
        return f"{self.hook_path}/vgpu" if self.hook_path != "/" else "/vgpu"

    def to_json(self) -> dict[str, Any]:
        """The settings as a JSON object (the golden vectors' `input.settings`)."""
        return {
            "hook_path": self.hook_path,
            "lock_dir": self.lock_dir,
            "library_version": self.library_version,
            "log_level": self.log_level,
            "memory_scaling": self.memory_scaling,
            "disable_core_limit": self.disable_core_limit,
            "license_present": self.license_present,
            "monitor": self.monitor,
        }


@dataclass(frozen=True, slots=True)
class PodMetadata:
    """Pod labels and annotations a dialect needs besides the container edits."""

    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """`{"labels": {...}, "annotations": {...}}`."""
        return {"labels": dict(self.labels), "annotations": dict(self.annotations)}


def edits_json(spec: ContainerRuntimeSpec) -> dict[str, Any]:
    """Container edits as the golden vectors spell them: env, mounts, device nodes, in order."""
    return {
        "env": dict(spec.envs),
        "mounts": [
            {"container_path": m.container_path, "host_path": m.host_path, "read_only": m.read_only}
            for m in spec.mounts
        ],
        "devices": [
            {
                "container_path": d.container_path,
                "host_path": d.host_path,
                "permissions": d.permissions,
            }
            for d in spec.devices
        ],
    }


def _config_bool(where: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip() in _TRUE | _FALSE:
        return value.strip() in _TRUE
    raise ContractError(f"{where}: expected true or false, got {value!r}")


def _config_number(where: str, value: Any) -> float:
    if isinstance(value, bool):
        raise ContractError(f"{where}: expected a number, got {value!r}")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            pass
    raise ContractError(f"{where}: expected a number, got {value!r}")


def settings_from_device_config(
    config: Mapping[str, Any],
    env: Mapping[str, str] | None = None,
    *,
    section: str = "nvidia",
) -> HamiCoreSettings:
    """The settings from HAMi's `device-config.yaml` (`nvidia:` section) and the process env.

    Keys: `libCudaLogLevel`, `deviceMemoryScaling`, `disableCoreLimit` (HAMi's) and `hookPath`,
    `vgpuLockPath` (hami's); env `HOOK_PATH` applies when the config names no `hookPath`.
    """
    if not isinstance(config, Mapping):
        raise ContractError(f"device config: expected a mapping, got {config!r}")
    raw = config.get(section)
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise ContractError(f"{section}: expected a mapping, got {raw!r}")
    values: dict[str, Any] = {}
    if env and env.get("HOOK_PATH"):
        values["hook_path"] = env["HOOK_PATH"]
    if raw.get("hookPath") is not None:
        values["hook_path"] = raw["hookPath"]
    if raw.get("vgpuLockPath") is not None:
        values["lock_dir"] = raw["vgpuLockPath"]
    if raw.get("libCudaLogLevel") is not None:
        level = raw["libCudaLogLevel"]
        if isinstance(level, bool) or not isinstance(level, str | int):
            raise ContractError(f"{section}.libCudaLogLevel: expected a digit, got {level!r}")
        values["log_level"] = str(level).strip()
    if raw.get("deviceMemoryScaling") is not None:
        values["memory_scaling"] = _config_number(
            f"{section}.deviceMemoryScaling", raw["deviceMemoryScaling"]
        )
    if raw.get("disableCoreLimit") is not None:
        values["disable_core_limit"] = _config_bool(
            f"{section}.disableCoreLimit", raw["disableCoreLimit"]
        )
    try:
        return HamiCoreSettings(**values)
    except ContractError as exc:
        raise ContractError(f"{section}: {exc}") from None
