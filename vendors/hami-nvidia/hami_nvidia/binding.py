"""The only place that touches NVIDIA hardware: NVML (through `pynvml`), sysfs, host paths.

Everything here returns plain records of what the hardware said; turning them into hami devices,
register annotations and pair scores is done by the pure modules. Every function that talks to
NVML takes the `pynvml` module as an optional argument (`nvml`), so tests can hand in a fake
module object with the same functions; by default the real `pynvml` (distribution
`nvidia-ml-py`) is imported and loads `libnvidia-ml.so.1` through the dynamic loader.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import subprocess
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from hami_core.model import VendorUnavailable
from hami_nvidia.health import XidPolicy
from hami_nvidia.spec import KEY

__all__ = [
    "GpuRecord",
    "NvLink",
    "NvmlSnapshot",
    "XidWatcher",
    "hami_core_installed",
    "host_env",
    "license_present",
    "load_nvml",
    "normalize_bus_id",
    "nvidia_smi_query",
    "prepare_container_dirs",
    "read_gpus",
    "read_numa_node",
]

log = logging.getLogger(__name__)

_ENV_NAMES = ("NODE_NAME", "HOOK_PATH", "ENABLE_TOPOLOGY_SCORE", "DP_DISABLE_HEALTHCHECKS")


@dataclass(frozen=True, slots=True)
class NvLink:
    """One enabled NVLink of a GPU: the PCI bus id at its far end and what sits there."""

    remote_bus_id: str
    remote_is_switch: bool = False


@dataclass(frozen=True, slots=True)
class GpuRecord:
    """What NVML said about one GPU. `memory_bytes` is None when NVML answers NOT_SUPPORTED."""

    index: int
    uuid: str
    name: str
    memory_bytes: int | None
    bus_id: str
    numa: int
    mig_enabled: bool = False
    healthy: bool = True
    problem: str = ""
    nvlinks: tuple[NvLink, ...] = ()
    ancestors: Mapping[str, int] = field(default_factory=dict)
    """Peer UUID → NVML topology level of the closest common ancestor (0 board … 50 system)."""


@dataclass(frozen=True, slots=True)
class NvmlSnapshot:
    """The GPUs NVML listed, the ones it listed but could not read, and the driver version."""

    gpus: tuple[GpuRecord, ...]
    skipped: tuple[str, ...] = ()
    driver_version: str = ""


def load_nvml() -> Any:
    """The real `pynvml` module; `VendorUnavailable` when `nvidia-ml-py` is not installed."""
    try:
        import pynvml
    except ImportError as exc:  # pragma: no cover - nvidia-ml-py is a dependency
        raise VendorUnavailable(KEY, f"nvidia-ml-py is not installed ({exc})") from None
    return pynvml


def host_env() -> dict[str, str]:
    """The process environment variables HAMi's NVIDIA device plugin reads, where set."""
    return {name: os.environ[name] for name in _ENV_NAMES if name in os.environ}


def normalize_bus_id(raw: bytes | str) -> str:
    """NVML's `00000000:3B:00.0` as sysfs names it: `0000:3b:00.0`.

    Lowercased, and the 8-digit PCI domain shortened by its leading `0000` (HAMi strips that
    prefix unconditionally; hami leaves an already 4-digit domain alone instead of mangling it).
    """
    text = raw.decode("ascii", "replace") if isinstance(raw, bytes) else raw
    text = text.split("\x00", 1)[0].strip().lower()
    domain, colon, _ = text.partition(":")
    if colon and len(domain) == 8 and domain.startswith("0000"):
        text = text[4:]
    return text


def read_numa_node(bus_id: str, sysfs_root: str | Path = "/sys") -> int:
    """The NUMA node sysfs gives for this PCI device; 0 when negative or unreadable."""
    path = Path(sysfs_root) / "bus" / "pci" / "devices" / bus_id / "numa_node"
    try:
        value = int(path.read_text(encoding="ascii").strip())
    except (OSError, ValueError):
        return 0
    return max(0, value)


def _code(nvml: Any, exc: BaseException) -> int:
    value = getattr(exc, "value", None)
    return value if isinstance(value, int) else int(nvml.NVML_ERROR_UNKNOWN)


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__} ({exc})"


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _init(nvml: Any) -> None:
    try:
        nvml.nvmlInit()
    except nvml.NVMLError as exc:
        code = _code(nvml, exc)
        if code == nvml.NVML_ERROR_LIBRARY_NOT_FOUND:
            why = "libnvidia-ml.so.1 was not found (no NVIDIA driver on this node)"
        elif code == nvml.NVML_ERROR_DRIVER_NOT_LOADED:
            why = "the NVIDIA kernel driver is not loaded"
        else:
            why = f"nvmlInit failed: {exc}"
        raise VendorUnavailable(KEY, why) from None


@contextlib.contextmanager
def _session(nvml: Any) -> Iterator[None]:
    _init(nvml)
    try:
        yield
    finally:
        try:
            nvml.nvmlShutdown()
        except nvml.NVMLError as exc:  # pragma: no cover - nothing useful to do
            log.debug("nvmlShutdown failed: %s", exc)


def _nvlinks(nvml: Any, handle: Any) -> tuple[NvLink, ...]:
    skip = (nvml.NVML_ERROR_NOT_SUPPORTED, nvml.NVML_ERROR_INVALID_ARGUMENT)
    links: list[NvLink] = []
    for link in range(int(nvml.NVML_NVLINK_MAX_LINKS)):
        try:
            if nvml.nvmlDeviceGetNvLinkState(handle, link) != nvml.NVML_FEATURE_ENABLED:
                continue
            remote = nvml.nvmlDeviceGetNvLinkRemotePciInfo(handle, link)
        except nvml.NVMLError as exc:
            if _code(nvml, exc) in skip:
                continue
            log.warning("NVLink %d: %s; ignoring the rest of this GPU's links", link, exc)
            break
        remote_type = getattr(nvml, "nvmlDeviceGetNvLinkRemoteDeviceType", None)
        try:
            kind = None if remote_type is None else remote_type(handle, link)
        except nvml.NVMLError:
            kind = None  # an old driver: the link still counts when it reaches a GPU directly
        links.append(
            NvLink(
                remote_bus_id=normalize_bus_id(remote.busId),
                remote_is_switch=kind == nvml.NVML_NVLINK_DEVICE_TYPE_SWITCH,
            )
        )
    return tuple(links)


def _read_one(
    nvml: Any, i: int, handle: Any, uuid: str, sysfs_root: str | Path, topology: bool
) -> GpuRecord:
    problems: list[str] = []
    lost = nvml.NVML_ERROR_GPU_IS_LOST

    def ask(what: str, fn: Any, *args: Any) -> Any:
        try:
            return fn(*args)
        except nvml.NVMLError as exc:
            if _code(nvml, exc) == nvml.NVML_ERROR_NOT_SUPPORTED:
                return None
            problems.append(f"{what}: {_describe(exc)}")
            if _code(nvml, exc) == lost:
                raise
            return None

    name, memory, bus_id, mig, index = "", None, "", False, i
    with contextlib.suppress(nvml.NVMLError):
        got = ask("index", nvml.nvmlDeviceGetIndex, handle)
        index = i if got is None else int(got)
        raw_name = ask("name", nvml.nvmlDeviceGetName, handle)
        name = "" if raw_name is None else _text(raw_name)
        info = ask("memory", nvml.nvmlDeviceGetMemoryInfo, handle)
        memory = None if info is None else int(info.total)
        pci = ask("pci", nvml.nvmlDeviceGetPciInfo, handle)
        bus_id = "" if pci is None else normalize_bus_id(pci.busId)
        modes = ask("mig mode", nvml.nvmlDeviceGetMigMode, handle)
        mig = modes is not None and int(modes[0]) == nvml.NVML_DEVICE_MIG_ENABLE
    links = _nvlinks(nvml, handle) if topology and not problems else ()
    return GpuRecord(
        index=index,
        uuid=uuid,
        name=name,
        memory_bytes=memory,
        bus_id=bus_id,
        numa=read_numa_node(bus_id, sysfs_root) if bus_id else 0,
        mig_enabled=mig,
        healthy=not problems,
        problem="; ".join(problems),
        nvlinks=links,
    )


def _ancestors(nvml: Any, handles: list[tuple[Any, str]]) -> dict[str, dict[str, int]]:
    levels: dict[str, dict[str, int]] = {uuid: {} for _, uuid in handles}
    for a, (ha, ua) in enumerate(handles):
        for hb, ub in handles[a + 1 :]:
            try:
                level = int(nvml.nvmlDeviceGetTopologyCommonAncestor(ha, hb))
            except nvml.NVMLError as exc:
                log.debug("topology %s-%s: %s", ua, ub, exc)
                continue
            levels[ua][ub] = level
            levels[ub][ua] = level
    return levels


def read_gpus(
    nvml: Any | None = None,
    *,
    sysfs_root: str | Path = "/sys",
    topology: bool = False,
    xids: XidPolicy | None = None,
) -> NvmlSnapshot:
    """Ask NVML for every GPU on this node (and, with `topology`, how they are linked).

    A GPU whose handle or UUID cannot be read is listed in `skipped` with the reason; one that
    answers GPU_IS_LOST (or another error) on a later query comes back with `healthy=False`.
    With `xids`, pending XID critical-error events are drained without blocking and a critical
    one marks its GPU unhealthy. Raises `VendorUnavailable` when NVML cannot be initialised.
    """
    nvml = load_nvml() if nvml is None else nvml
    with _session(nvml):
        try:
            count = int(nvml.nvmlDeviceGetCount())
        except nvml.NVMLError as exc:
            raise VendorUnavailable(KEY, f"nvmlDeviceGetCount failed: {exc}") from None
        driver = ""
        with contextlib.suppress(nvml.NVMLError):
            driver = _text(nvml.nvmlSystemGetDriverVersion())
        skipped: list[str] = []
        handles: list[tuple[Any, str]] = []
        records: list[GpuRecord] = []
        for i in range(count):
            try:
                handle = nvml.nvmlDeviceGetHandleByIndex(i)
                uuid = _text(nvml.nvmlDeviceGetUUID(handle))
            except nvml.NVMLError as exc:
                skipped.append(f"GPU {i}: {_describe(exc)}")
                continue
            records.append(_read_one(nvml, i, handle, uuid, sysfs_root, topology))
            handles.append((handle, uuid))
        if topology:
            levels = _ancestors(nvml, handles)
            records = [replace(r, ancestors=levels.get(r.uuid, {})) for r in records]
        if xids is not None and xids.enabled:
            bad = XidWatcher(nvml, handles, xids).drain()
            records = [
                replace(r, healthy=False, problem=_join(r.problem, bad[r.uuid]))
                if r.uuid in bad
                else r
                for r in records
            ]
    return NvmlSnapshot(gpus=tuple(records), skipped=tuple(skipped), driver_version=driver)


def _join(a: str, b: str) -> str:
    return f"{a}; {b}" if a else b


class XidWatcher:
    """An NVML event set registered for XID critical errors on the given GPUs.

    `drain()` reads every pending event without blocking and names the GPUs with a critical
    XID. A watcher lives as long as NVML stays initialised by its owner; events that happened
    before it was created are not seen.
    """

    def __init__(self, nvml: Any, handles: list[tuple[Any, str]], policy: XidPolicy) -> None:
        self._nvml = nvml
        self._policy = policy
        self._uuids = [uuid for _, uuid in handles]
        self._set: Any = None
        try:
            self._set = nvml.nvmlEventSetCreate()
        except nvml.NVMLError as exc:
            log.info("XID health checks unavailable: %s", exc)
            return
        kind = nvml.nvmlEventTypeXidCriticalError
        for handle, uuid in handles:
            try:
                nvml.nvmlDeviceRegisterEvents(handle, kind, self._set)
            except nvml.NVMLError as exc:
                log.info("GPU %s: XID events unavailable: %s", uuid, exc)

    def drain(self, timeout_ms: int = 0) -> dict[str, str]:
        """GPU UUID → why it is unhealthy, for each critical XID pending now; frees the set."""
        nvml = self._nvml
        bad: dict[str, str] = {}
        if self._set is None:
            return bad
        try:
            for _ in range(1024):  # bounded: a storm of events must not stall discovery
                try:
                    data = nvml.nvmlEventSetWait(self._set, timeout_ms)
                except nvml.NVMLError as exc:
                    if _code(nvml, exc) != nvml.NVML_ERROR_TIMEOUT:
                        log.info("XID event wait failed: %s", exc)
                    break
                if not int(data.eventType) & int(nvml.nvmlEventTypeXidCriticalError):
                    continue
                xid = int(data.eventData)
                if not self._policy.is_critical(xid):
                    continue
                try:
                    targets = [_text(nvml.nvmlDeviceGetUUID(data.device))]
                except nvml.NVMLError:
                    targets = list(self._uuids)  # event without a readable device: all of them
                for uuid in targets:
                    bad[uuid] = f"XID {xid}"
        finally:
            with contextlib.suppress(nvml.NVMLError):
                nvml.nvmlEventSetFree(self._set)
            self._set = None
        return bad


def prepare_container_dirs(
    hook_path: str, pod_uid: str, container: str, lock_dir: str = "/tmp/vgpulock"
) -> list[str]:
    """Create the host directories one container's HAMi-core mounts need, as HAMi does.

    `<hook_path>/vgpu/containers/<podUID>_<container>` is removed and recreated mode 0777, and
    `lock_dir` (HAMi-core's `/tmp/vgpulock`) is created mode 0777. Returns the problems met
    (empty when all went well); never raises: a missing directory only degrades HAMi-core's
    shared cache, it must not fail the container.
    """
    problems: list[str] = []
    cache = Path(hook_path) / "vgpu" / "containers" / f"{pod_uid}_{container}"
    for path, fresh in ((cache, True), (Path(lock_dir), False)):
        try:
            if fresh:
                shutil.rmtree(path, ignore_errors=True)
            path.mkdir(mode=0o777, parents=True, exist_ok=True)
            path.chmod(0o777)
        except OSError as exc:
            problems.append(f"{path}: {exc.strerror or exc}")
    return problems


def hami_core_installed(hook_path: str) -> bool:
    """True when HAMi-core's `<hook_path>/vgpu/libvgpu.so` is on this host."""
    return (Path(hook_path) / "vgpu" / "libvgpu.so").is_file()


def license_present(hook_path: str) -> bool:
    """True when the host has `<hook_path>/vgpu/license` (HAMi then mounts the validator)."""
    return (Path(hook_path) / "vgpu" / "license").is_file()


def nvidia_smi_query(timeout_s: float = 60.0) -> str | None:
    """The text of `nvidia-smi -q`, or None when the tool is absent or fails."""
    tool = shutil.which("nvidia-smi")
    if tool is None:
        return None
    try:
        done = subprocess.run(
            [tool, "-q"], capture_output=True, text=True, timeout=timeout_s, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None
