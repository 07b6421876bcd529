"""The NVIDIA settings of one node, resolved from the device config (pure).

Sources, later ones winning:

1. Defaults (HAMi's chart values: split 10, scaling 1, hook path `/usr/local`).
2. The process environment HAMi's device plugin reads: `HOOK_PATH`, `ENABLE_TOPOLOGY_SCORE`,
   `NODE_NAME` (passed in as a mapping; the plugin takes it from the binding).
3. The `nvidia:` section of the device config, with HAMi's keys (`deviceSplitCount`,
   `deviceMemoryScaling`, ...) plus hami's `hookPath`, `vgpuLockPath` (the host directory
   behind the container's `/tmp/vgpulock`) and `enableTopologyScore`, and Volcano's
   `gpuMemoryFactor` (MiB per memory unit under the Volcano protocol).
4. The per-node entry of a `nodeconfig` list (HAMi's device-plugin `config.json` shape, lowercase
   keys) whose `name` equals the node name (`nodeName` in the config, else `NODE_NAME`). The list
   may sit at the top level of the device config or inside `nvidia:`. As in HAMi (mergo with
   override), zero values in a node entry (`0`, `""`, `false`) leave the setting as it was.

Every bad value raises `ConfigError` naming the key and the problem.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from hami_core.errors import ConfigError
from hami_nvidia.spec import KEY

__all__ = [
    "CORE_POLICIES",
    "DEFAULT_HOOK_PATH",
    "OPERATING_MODES",
    "NvidiaSettings",
    "resolve_settings",
]

DEFAULT_HOOK_PATH = "/usr/local"
"""Where HAMi-core (`vgpu/libvgpu.so`, `vgpu/ld.so.preload`) lives on the host (chart default)."""

OPERATING_MODES = ("hami-core", "mig", "mps")
"""Node operating modes HAMi registers; the card's `mode` on the wire."""

CORE_POLICIES = ("default", "force", "disable")
"""Values of `gpuCorePolicy`; anything but `default` is passed to HAMi-core as env."""

_TRUE = frozenset({"1", "t", "T", "TRUE", "true", "True"})
_FALSE = frozenset({"0", "f", "F", "FALSE", "false", "False"})


@dataclass(frozen=True, slots=True)
class NvidiaSettings:
    """Everything the NVIDIA hooks read from configuration, for one node."""

    node_name: str = ""
    split_count: int = 10
    memory_scaling: float = 1.0
    core_scaling: float = 1.0
    preconfigured_memory_mib: int = 0
    libcuda_log_level: str = ""
    disable_core_limit: bool = False
    gpu_core_policy: str = "default"
    runtime_class_name: str = ""
    overwrite_env: bool = False
    operating_mode: str = "hami-core"
    filter_uuids: frozenset[str] = field(default_factory=frozenset)
    filter_indices: frozenset[int] = field(default_factory=frozenset)
    hook_path: str = DEFAULT_HOOK_PATH
    lock_dir: str = "/tmp/vgpulock"
    topology_score: bool = False
    gpu_memory_factor: int = 1

    def filtered(self, uuid: str, index: int) -> bool:
        """True when the node config says this card must not be registered."""
        return uuid in self.filter_uuids or index in self.filter_indices


def _bool(where: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip() in _TRUE:
        return True
    if isinstance(value, str) and value.strip() in _FALSE:
        return False
    raise ConfigError(f"{where}: expected true or false, got {value!r}")


def _number(where: str, value: Any) -> float:
    if isinstance(value, bool):
        raise ConfigError(f"{where}: expected a number, got {value!r}")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            pass
    raise ConfigError(f"{where}: expected a number, got {value!r}")


def _whole(where: str, value: Any, minimum: int) -> int:
    number = _number(where, value)
    if number != int(number) or number < minimum:
        raise ConfigError(f"{where}: expected a whole number >= {minimum}, got {value!r}")
    return int(number)


def _positive(where: str, value: Any) -> float:
    number = _number(where, value)
    if number <= 0:
        raise ConfigError(f"{where}: expected a number above 0, got {value!r}")
    return number


def _text(where: str, value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ConfigError(f"{where}: expected a string, got {value!r}")
    return str(value).strip()


def _choice(where: str, value: Any, allowed: tuple[str, ...]) -> str:
    text = _text(where, value)
    if text not in allowed:
        raise ConfigError(f"{where}: expected one of {', '.join(allowed)}, got {value!r}")
    return text


def _mapping(where: str, value: Any) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where}: expected a mapping, got {value!r}")
    return value


# (attribute, key in the `nvidia:` section, key in a nodeconfig entry, parser)
_FIELDS: tuple[tuple[str, str, str, str], ...] = (
    ("split_count", "deviceSplitCount", "devicesplitcount", "split"),
    ("memory_scaling", "deviceMemoryScaling", "devicememoryscaling", "positive"),
    ("core_scaling", "deviceCoreScaling", "devicecorescaling", "positive"),
    ("preconfigured_memory_mib", "preConfiguredDeviceMemory", "preconfigureddevicememory", "mib"),
    ("libcuda_log_level", "libCudaLogLevel", "libcudaloglevel", "text"),
    ("disable_core_limit", "disableCoreLimit", "disablecorelimit", "bool"),
    ("gpu_core_policy", "gpuCorePolicy", "gpucorepolicy", "policy"),
    ("runtime_class_name", "runtimeClassName", "runtimeclassname", "text"),
    ("overwrite_env", "overwriteEnv", "overwriteenv", "bool"),
    ("operating_mode", "operatingMode", "operatingmode", "mode"),
    ("hook_path", "hookPath", "hookpath", "path"),
    ("lock_dir", "vgpuLockPath", "vgpulockpath", "path"),
    ("topology_score", "enableTopologyScore", "enabletopologyscore", "bool"),
    ("gpu_memory_factor", "gpuMemoryFactor", "gpumemoryfactor", "split"),
)


def _parse(kind: str, where: str, value: Any) -> Any:
    if kind == "split":
        return _whole(where, value, 1)
    if kind == "positive":
        return _positive(where, value)
    if kind == "mib":
        return _whole(where, value, 0)
    if kind == "text":
        return _text(where, value)
    if kind == "bool":
        return _bool(where, value)
    if kind == "policy":
        return _choice(where, value, CORE_POLICIES)
    if kind == "mode":
        return _choice(where, value, OPERATING_MODES)
    if kind == "path":
        path = _text(where, value).rstrip("/")
        if not path.startswith("/"):
            raise ConfigError(f"{where}: expected an absolute path, got {value!r}")
        return path
    raise AssertionError(kind)  # pragma: no cover - the table above is closed


def _node_entries(config: Mapping[str, Any], section: Mapping[str, Any]) -> list[tuple[str, Any]]:
    found: list[tuple[str, Any]] = []
    for where, holder in (("nodeconfig", config), (f"{KEY}.nodeconfig", section)):
        entries = holder.get("nodeconfig")
        if entries is None:
            continue
        if not isinstance(entries, list):
            raise ConfigError(f"{where}: expected a list of node entries, got {entries!r}")
        found.extend((f"{where}[{i}]", e) for i, e in enumerate(entries))
    return found


def _filters(where: str, value: Any) -> tuple[frozenset[str], frozenset[int]]:
    spec = _mapping(where, value)
    uuids = spec.get("uuid") or []
    indices = spec.get("index") or []
    if not isinstance(uuids, list) or not all(isinstance(u, str) for u in uuids):
        raise ConfigError(f"{where}.uuid: expected a list of GPU UUIDs, got {uuids!r}")
    if not isinstance(indices, list):
        raise ConfigError(f"{where}.index: expected a list of card indices, got {indices!r}")
    parsed = frozenset(_whole(f"{where}.index", i, 0) for i in indices)
    return frozenset(u.strip() for u in uuids if u.strip()), parsed


def resolve_settings(config: Mapping[str, Any], env: Mapping[str, str]) -> NvidiaSettings:
    """The settings for this node from the whole device config and the process environment."""
    section = _mapping(KEY, config.get(KEY))
    values: dict[str, Any] = {}
    if env.get("HOOK_PATH"):
        values["hook_path"] = _parse("path", "HOOK_PATH", env["HOOK_PATH"])
    if env.get("ENABLE_TOPOLOGY_SCORE"):
        values["topology_score"] = _bool("ENABLE_TOPOLOGY_SCORE", env["ENABLE_TOPOLOGY_SCORE"])
    for attr, key, _, kind in _FIELDS:
        if section.get(key) is not None:
            values[attr] = _parse(kind, f"{KEY}.{key}", section[key])

    node_name = config.get("nodeName") or env.get("NODE_NAME") or ""
    if not isinstance(node_name, str):
        raise ConfigError(f"nodeName: expected a string, got {node_name!r}")
    values["node_name"] = node_name
    for where, entry in _node_entries(config, section):
        entry = _mapping(where, entry)
        if not node_name or entry.get("name") != node_name:
            continue
        for attr, _, key, kind in _FIELDS:
            value = entry.get(key)
            # HAMi merges node entries with mergo.WithOverride: zero values do not override.
            if value is None or value == "" or value is False or value == 0:
                continue
            values[attr] = _parse(kind, f"{where}.{key}", value)
        if entry.get("filterdevices") is not None:
            uuids, indices = _filters(f"{where}.filterdevices", entry["filterdevices"])
            values["filter_uuids"] = uuids
            values["filter_indices"] = indices
    return NvidiaSettings(**values)
