"""A fake `pynvml` module for the binding's tests, and the hosts it can pretend to be.

`FakeNvml` has the functions, constants and error type of `pynvml` (the constants and
`NVMLError` are the real ones, so error codes map to the same subclasses) and answers from a
list of `FakeGpu`s. It checks that every call happens between `nvmlInit` and `nvmlShutdown`.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pynvml
import pytest

DATA = Path(__file__).parent / "data"

GIB = 1024**3


@dataclass
class FakeGpu:
    """One GPU as the fake NVML describes it."""

    uuid: str
    name: str
    memory_bytes: int | None  # None: NVML answers NOT_SUPPORTED
    bus: int
    mig: bool | None = False  # None: MIG mode NOT_SUPPORTED
    nvlinks: list[tuple[int, bool]] = field(default_factory=list)
    """Enabled links: (bus of the far end, far end is an NVSwitch)."""
    lost: bool = False  # answers GPU_IS_LOST after its UUID was read
    gone: bool = False  # its handle cannot be obtained

    @property
    def bus_id(self) -> str:
        return f"00000000:{self.bus:02X}:00.0"


class FakeNvml:
    """A stand-in for the `pynvml` module (only what hami_nvidia.binding calls)."""

    def __init__(
        self,
        gpus: Iterable[FakeGpu],
        *,
        ancestors: Callable[[int, int], int] | None = None,
        events: Iterable[tuple[int, int]] = (),
        library: bool = True,
    ) -> None:
        for name in dir(pynvml):
            if name.startswith(("NVML_", "nvmlEventType")):
                setattr(self, name, getattr(pynvml, name))
        self.NVMLError = pynvml.NVMLError
        self.gpus = list(gpus)
        self.ancestors = ancestors or (lambda a, b: pynvml.NVML_TOPOLOGY_NODE)
        self.events = list(events)  # (gpu index, xid), delivered once
        self.library = library
        self.live = 0
        self.inits = 0

    # -- internals
    def _fail(self, code: int) -> None:
        raise pynvml.NVMLError(code)

    def _gpu(self, handle: Any) -> FakeGpu:
        if self.live <= 0:
            self._fail(pynvml.NVML_ERROR_UNINITIALIZED)
        gpu: FakeGpu = self.gpus[handle.index]
        return gpu

    def _alive(self, handle: Any) -> FakeGpu:
        gpu = self._gpu(handle)
        if gpu.lost:
            self._fail(pynvml.NVML_ERROR_GPU_IS_LOST)
        return gpu

    # -- library
    def nvmlInit(self) -> None:
        if not self.library:
            self._fail(pynvml.NVML_ERROR_LIBRARY_NOT_FOUND)
        self.live += 1
        self.inits += 1

    def nvmlShutdown(self) -> None:
        if self.live <= 0:
            self._fail(pynvml.NVML_ERROR_UNINITIALIZED)
        self.live -= 1

    def nvmlSystemGetDriverVersion(self) -> str:
        return "550.54.15"

    def nvmlDeviceGetCount(self) -> int:
        if self.live <= 0:
            self._fail(pynvml.NVML_ERROR_UNINITIALIZED)
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> Any:
        if self.live <= 0:
            self._fail(pynvml.NVML_ERROR_UNINITIALIZED)
        if index >= len(self.gpus):
            self._fail(pynvml.NVML_ERROR_INVALID_ARGUMENT)
        if self.gpus[index].gone:
            self._fail(pynvml.NVML_ERROR_GPU_IS_LOST)
        return SimpleNamespace(index=index)

    # -- device queries
    def nvmlDeviceGetUUID(self, handle: Any) -> str:
        return self._gpu(handle).uuid

    def nvmlDeviceGetIndex(self, handle: Any) -> int:
        self._alive(handle)
        return int(handle.index)

    def nvmlDeviceGetName(self, handle: Any) -> str:
        return self._alive(handle).name

    def nvmlDeviceGetMemoryInfo(self, handle: Any) -> Any:
        gpu = self._alive(handle)
        if gpu.memory_bytes is None:
            self._fail(pynvml.NVML_ERROR_NOT_SUPPORTED)
        return SimpleNamespace(total=gpu.memory_bytes, free=gpu.memory_bytes, used=0)

    def nvmlDeviceGetPciInfo(self, handle: Any) -> Any:
        return SimpleNamespace(busId=self._alive(handle).bus_id.encode())

    def nvmlDeviceGetMigMode(self, handle: Any) -> list[int]:
        gpu = self._alive(handle)
        if gpu.mig is None:
            self._fail(pynvml.NVML_ERROR_NOT_SUPPORTED)
        mode = pynvml.NVML_DEVICE_MIG_ENABLE if gpu.mig else pynvml.NVML_DEVICE_MIG_DISABLE
        return [mode, mode]

    def nvmlDeviceGetTopologyCommonAncestor(self, a: Any, b: Any) -> int:
        self._alive(a)
        self._alive(b)
        return int(self.ancestors(a.index, b.index))

    def nvmlDeviceGetNvLinkState(self, handle: Any, link: int) -> int:
        gpu = self._alive(handle)
        if not gpu.nvlinks:
            self._fail(pynvml.NVML_ERROR_NOT_SUPPORTED)
        if link >= 18:
            self._fail(pynvml.NVML_ERROR_INVALID_ARGUMENT)
        enabled = link < len(gpu.nvlinks)
        return int(pynvml.NVML_FEATURE_ENABLED if enabled else pynvml.NVML_FEATURE_DISABLED)

    def nvmlDeviceGetNvLinkRemotePciInfo(self, handle: Any, link: int) -> Any:
        bus, _ = self._alive(handle).nvlinks[link]
        return SimpleNamespace(busId=f"00000000:{bus:02X}:00.0".encode())

    def nvmlDeviceGetNvLinkRemoteDeviceType(self, handle: Any, link: int) -> int:
        _, switch = self._alive(handle).nvlinks[link]
        if switch:
            return int(pynvml.NVML_NVLINK_DEVICE_TYPE_SWITCH)
        return int(pynvml.NVML_NVLINK_DEVICE_TYPE_GPU)

    # -- events
    def nvmlEventSetCreate(self) -> Any:
        if self.live <= 0:
            self._fail(pynvml.NVML_ERROR_UNINITIALIZED)
        return SimpleNamespace(registered=set(), freed=False)

    def nvmlDeviceRegisterEvents(self, handle: Any, kinds: int, event_set: Any) -> None:
        self._alive(handle)
        if kinds & pynvml.nvmlEventTypeXidCriticalError:
            event_set.registered.add(handle.index)

    def nvmlEventSetWait(self, event_set: Any, timeout_ms: int) -> Any:
        while self.events:
            index, xid = self.events.pop(0)
            if index in event_set.registered:
                return SimpleNamespace(
                    device=SimpleNamespace(index=index),
                    eventType=pynvml.nvmlEventTypeXidCriticalError,
                    eventData=xid,
                )
        self._fail(pynvml.NVML_ERROR_TIMEOUT)

    def nvmlEventSetFree(self, event_set: Any) -> None:
        event_set.freed = True


# -- hosts ------------------------------------------------------------------------------------

A100_BUSES = (0x07, 0x0F, 0x47, 0x4E)
"""Four A100 80 GB: 0<->1 and 2<->3 by 4 NVLinks each, 1<->2 by one; CPU sockets 0,0,1,1."""


def a100_host() -> FakeNvml:
    """A 4x A100-SXM4-80GB node with NVLink pairs (0,1), (2,3) and a single link (1,2)."""
    b = A100_BUSES
    links: list[list[tuple[int, bool]]] = [
        [(b[1], False)] * 4,
        [(b[0], False)] * 4 + [(b[2], False)],
        [(b[3], False)] * 4 + [(b[1], False)],
        [(b[2], False)] * 4,
    ]
    gpus = [
        FakeGpu(
            uuid=f"GPU-a100000{i}-1111-2222-3333-44444444444{i}",
            name="NVIDIA A100-SXM4-80GB",
            memory_bytes=80 * GIB,
            bus=b[i],
            nvlinks=links[i],
        )
        for i in range(4)
    ]

    def ancestor(a: int, c: int) -> int:
        same_cpu = (a < 2) == (c < 2)
        return int(pynvml.NVML_TOPOLOGY_NODE if same_cpu else pynvml.NVML_TOPOLOGY_SYSTEM)

    return FakeNvml(gpus, ancestors=ancestor)


def v100_host() -> FakeNvml:
    """Two PCIe V100 32 GB: no NVLink, no MIG, behind one host bridge."""
    gpus = [
        FakeGpu(
            uuid=f"GPU-v1000000-0000-0000-0000-00000000000{i}",
            name="Tesla V100-PCIE-32GB",
            memory_bytes=32 * GIB,
            bus=0x3B + i,
            mig=None,
        )
        for i in range(2)
    ]
    return FakeNvml(gpus, ancestors=lambda a, c: int(pynvml.NVML_TOPOLOGY_HOSTBRIDGE))


@pytest.fixture
def sysfs(tmp_path: Path) -> Callable[[dict[str, str]], Path]:
    """Write `numa_node` files (bus id → content) under a fake sysfs root; returns the root."""

    def make(numa: dict[str, str]) -> Path:
        for bus_id, content in numa.items():
            node = tmp_path / "sys" / "bus" / "pci" / "devices" / bus_id
            node.mkdir(parents=True, exist_ok=True)
            (node / "numa_node").write_text(content)
        return tmp_path / "sys"

    return make


@pytest.fixture(scope="session")
def fake_libnvml(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory holding `libnvidia-ml.so.1` built from `data/fake_nvml.c` with `cc`."""
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        pytest.skip("no C compiler (cc) to build the fake libnvidia-ml.so.1")
    out = tmp_path_factory.mktemp("fake-nvml")
    subprocess.run(
        [
            compiler,
            "-shared",
            "-fPIC",
            "-o",
            str(out / "libnvidia-ml.so.1"),
            str(DATA / "fake_nvml.c"),
        ],
        check=True,
        capture_output=True,
    )
    return out


@pytest.fixture
def a100() -> FakeNvml:
    """The 4x A100 80 GB NVLink host (see `a100_host`)."""
    return a100_host()


@pytest.fixture
def v100() -> FakeNvml:
    """The 2x V100 PCIe host (see `v100_host`)."""
    return v100_host()


@pytest.fixture
def fakes() -> SimpleNamespace:
    """The fake's building blocks, for tests that describe their own host."""
    return SimpleNamespace(FakeNvml=FakeNvml, FakeGpu=FakeGpu, GIB=GIB, DATA=DATA)
