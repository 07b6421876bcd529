"""Moore Threads rules, exercised through the hook relay as scheduler and node agent call them."""

import os
import stat
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from hami_mthreads import plugin
from hami_mthreads.mount import MountError
from hami_mthreads.spec import SPEC

from hami_core.errors import AdmissionDenied, RequestError
from hami_core.model import (
    ContainerAllocation,
    ContainerDevice,
    ContainerRequest,
    DeviceInfo,
    DeviceUsage,
    FitContext,
    NodeView,
    PodView,
    VendorUnavailable,
)
from hami_core.plugins import VendorRegistry, load_vendors
from hami_core.protocol.errors import ProtocolError

DATA = Path(__file__).parent / "data"
POD = PodView(namespace="ns", name="p", uid="u", annotations={})


@pytest.fixture
def registry() -> VendorRegistry:
    return load_vendors(environ={}, entry_points_=[], plugins=[("mthreads", plugin)])


def container(limits: dict[str, str], name: str = "main") -> dict[str, Any]:
    return {"name": name, "resources": {"limits": limits}}


def request(registry: VendorRegistry, limits: dict[str, str]) -> Any:
    return registry.hook.hami_request(
        spec=SPEC, container=container(limits), index=0, init=False, pod=POD, config={}
    )


def mutate(registry: VendorRegistry, limits: dict[str, str]) -> Any:
    return registry.hook.hami_mutate(spec=SPEC, container=container(limits), pod={}, config={})


def test_spec_names_hamis_resources_and_keys(registry: VendorRegistry) -> None:
    spec = registry.spec("mthreads")
    assert spec.resources.all() == (
        "mthreads.com/vgpu",
        "mthreads.com/sgpu-memory",
        "mthreads.com/sgpu-core",
    )
    assert spec.ignored_by_scheduler == ("mthreads.com/vgpu",)
    assert spec.annotations.decision_keys() == ("hami.io/mthreads-vgpu-devices-allocated",)
    assert (spec.annotations.use_uuid, spec.annotations.nouse_uuid) == (
        "mthreads.ai/use-gpuuuid",
        "mthreads.ai/nouse-gpuuuid",
    )
    assert (spec.memory_unit_mib, spec.core_units, spec.node_lock) == (512, 16, False)


def test_sgpu_memory_4_reserves_2048_mib(registry: VendorRegistry) -> None:
    got = request(
        registry,
        {"mthreads.com/vgpu": "1", "mthreads.com/sgpu-memory": "4", "mthreads.com/sgpu-core": "2"},
    )
    assert (got.count, got.memory_mib, got.cores) == (1, 2048, 2)
    ctx = FitContext(pod=POD, node=NodeView(name="n", annotations={}))
    fit = registry.hook.hami_allocate(spec=SPEC, request=got, devices=cards(1), context=ctx)
    assert [(d.uuid, d.usedmem, d.usedcores) for d in fit.devices] == [("n-mthreads-0", 2048, 2)]


def test_sgpu_memory_6_is_refused_with_the_allowed_values(registry: VendorRegistry) -> None:
    limits = {"mthreads.com/vgpu": "1", "mthreads.com/sgpu-memory": "6"}
    with pytest.raises(
        RequestError, match=r"sgpu-memory: 6 is not allowed.*2, 4, 8, 16, 32, 64, 96"
    ):
        request(registry, limits)
    with pytest.raises(
        AdmissionDenied,
        match=r"sGPU memory request value is invalid, valid values are \[2, 4, 8, 16, 32, 64, 96\]",
    ):
        mutate(registry, limits)


def test_one_card_without_memory_is_a_whole_card(registry: VendorRegistry) -> None:
    got = request(registry, {"mthreads.com/vgpu": "1", "mthreads.com/sgpu-core": "4"})
    assert (got.memory_percent, got.cores) == (100, 16)
    assert mutate(registry, {"mthreads.com/vgpu": "1"}).limits == {
        "mthreads.com/sgpu-core": "16",
        "mthreads.com/sgpu-memory": "96",
    }


def test_several_cards_are_whole_cards_before_and_after_the_webhook(
    registry: VendorRegistry,
) -> None:
    m = mutate(registry, {"mthreads.com/vgpu": "2"})
    assert m.limits == {"mthreads.com/sgpu-core": "32", "mthreads.com/sgpu-memory": "192"}
    assert m.pod_annotations == {"mthreads.com/request-gpu-num": "2"}
    mutated = {"mthreads.com/vgpu": "2", **m.limits}
    got = request(registry, mutated)
    assert (got.count, got.memory_percent, got.cores) == (2, 100, 16)


def test_webhook_refuses_a_zero_count_and_leaves_other_containers(
    registry: VendorRegistry,
) -> None:
    with pytest.raises(AdmissionDenied, match=r"mthreads.com/vgpu must be a whole number greater"):
        mutate(registry, {"mthreads.com/vgpu": "0"})
    untouched = mutate(registry, {"nvidia.com/gpu": "1"})
    assert untouched.is_empty() and not untouched.uses_vendor
    valid = mutate(registry, {"mthreads.com/vgpu": "1", "mthreads.com/sgpu-memory": "8"})
    assert valid.uses_vendor and valid.limits == {}


def test_cards_come_from_node_capacity(registry: VendorRegistry) -> None:
    node = NodeView(
        name="mt-1",
        annotations={},
        capacity={"mthreads.com/sgpu-core": "32", "mthreads.com/sgpu-memory": "192"},
    )
    read = registry.hook.hami_read_node(spec=SPEC, node=node, config={})
    assert [(c.id, c.index, c.count, c.devmem, c.devcore, c.type) for c in read] == [
        ("mt-1-mthreads-0", 0, 100, 49152, 16, "Mthreads"),
        ("mt-1-mthreads-1", 1, 100, 49152, 16, "Mthreads"),
    ]
    bare = NodeView(name="cpu", annotations={}, capacity={"cpu": "8"})
    assert registry.hook.hami_read_node(spec=SPEC, node=bare, config={}) == []
    broken = NodeView(name="x", annotations={}, capacity={"mthreads.com/sgpu-core": "lots"})
    with pytest.raises(ProtocolError, match=r"mthreads\.com/sgpu-core"):
        registry.hook.hami_read_node(spec=SPEC, node=broken, config={})


def test_advertised_units_are_what_the_mt_plugin_offers_and_read_back_as_the_same_cards(
    registry: VendorRegistry,
) -> None:
    s4000 = DeviceInfo(id="mt-uuid-0", count=100, devmem=49152, devcore=16, type="Mthreads")
    s80 = DeviceInfo(id="mt-uuid-1", count=100, devmem=16384, devcore=16, type="Mthreads")

    def advertise(resource: str, card: DeviceInfo) -> int:
        answer = registry.hook.hami_advertise(spec=SPEC, resource=resource, device=card)
        assert isinstance(answer, int)
        return answer

    assert advertise("mthreads.com/sgpu-core", s4000) == 16
    assert advertise("mthreads.com/sgpu-memory", s4000) == 96
    assert advertise("mthreads.com/sgpu-memory", s80) == 32
    assert plugin.hami_advertise(SPEC, "mthreads.com/vgpu", s4000) is None  # not the MT plugin's
    capacity = {
        r: str(advertise(r, s4000) * 2)
        for r in ("mthreads.com/sgpu-core", "mthreads.com/sgpu-memory")
    }
    node = NodeView(name="mt-1", annotations={}, capacity=capacity)
    read = registry.hook.hami_read_node(spec=SPEC, node=node, config={})
    assert [(c.id, c.devmem, c.devcore) for c in read] == [
        ("mt-1-mthreads-0", 49152, 16),
        ("mt-1-mthreads-1", 49152, 16),
    ]


def cards(n: int) -> list[DeviceUsage]:
    return [
        DeviceUsage(
            id=f"n-mthreads-{i}",
            index=i,
            type="Mthreads",
            vendor="mthreads",
            count=100,
            totalmem=49152,
            totalcore=16,
        )
        for i in range(n)
    ]


def test_all_containers_of_a_pod_share_the_first_containers_card(
    registry: VendorRegistry,
) -> None:
    first = ContainerDevice("n-mthreads-0", "Mthreads", 2048, 2)
    ctx = FitContext(
        pod=POD, node=NodeView(name="n", annotations={}), pod_devices={"mthreads": [[first]]}
    )
    req = ContainerRequest(vendor="mthreads", count=1, memory_mib=4096, cores=4)
    got = registry.hook.hami_allocate(spec=SPEC, request=req, devices=cards(3), context=ctx)
    assert [d.uuid for d in got.devices] == ["n-mthreads-0"]
    full = cards(3)
    full[0].usedcores = 16
    refused = registry.hook.hami_allocate(spec=SPEC, request=req, devices=full, context=ctx)
    assert not refused.ok
    assert refused.reasons == {"CardUuidMismatch": 2, "CardInsufficientCore": 1}


def test_a_whole_card_is_exclusive(registry: VendorRegistry) -> None:
    req = request(registry, {"mthreads.com/vgpu": "1"})
    busy = cards(1)
    busy[0].used, busy[0].usedmem = 1, 0
    ctx = FitContext(pod=POD, node=NodeView(name="n", annotations={}))
    got = registry.hook.hami_allocate(spec=SPEC, request=req, devices=busy, context=ctx)
    assert not got.ok and got.reasons == {"ExclusiveDeviceAllocateConflict": 1}


def test_decision_carries_only_the_allocated_key_and_the_mt_plugin_annotations(
    registry: VendorRegistry,
) -> None:
    ctx = FitContext(pod=POD, node=NodeView(name="mt-7", annotations={}))
    chosen = [[], [ContainerDevice("mt-7-mthreads-1", "Mthreads", 2048, 2)]]
    got = registry.hook.hami_pod_annotations(spec=SPEC, containers=chosen, context=ctx)
    assert set(got) == {
        "hami.io/mthreads-vgpu-devices-allocated",
        "mthreads.com/gpu-index",
        "mthreads.com/predicate-node",
        "mthreads.com/predicate-time",
    }
    assert got["hami.io/mthreads-vgpu-devices-allocated"] == ";mt-7-mthreads-1,Mthreads,2048,2:;"
    assert got["mthreads.com/gpu-index"] == "1"
    assert got["mthreads.com/predicate-node"] == "mt-7"
    assert got["mthreads.com/predicate-time"].isdigit()


def allocation(*uuids: str) -> ContainerAllocation:
    return ContainerAllocation(
        vendor="mthreads",
        pod_namespace="ns",
        pod_name="p",
        pod_uid="u",
        container="main",
        devices=tuple(ContainerDevice(u, "Mthreads", 2048, 2) for u in uuids),
    )


def test_mount_names_cards_by_index_for_the_mthreads_runtime(registry: VendorRegistry) -> None:
    got = registry.hook.hami_mount(allocation=allocation("mt-7-mthreads-1", "mt-7-mthreads-0"))
    assert got.envs == {"MTHREADS_VISIBLE_DEVICES": "1,0"}
    assert got.devices == ()
    with pytest.raises(MountError, match="GPU-x"):
        registry.hook.hami_mount(allocation=allocation("GPU-x"))


def fake_pymtml(*, init_error: Exception | None = None) -> SimpleNamespace:
    """A stand-in for the `pymtml` module: two 48 GiB S4000 cards."""
    names = ["MTT S4000", "MTT S4000"]

    def init() -> None:
        if init_error is not None:
            raise init_error

    @contextmanager
    def memory_context(device: int) -> Iterator[int]:
        yield device

    def gpu_path(device: int) -> str:
        return f"/dev/mtgpu.{device}"

    def render_path(device: int) -> str:
        raise RuntimeError("Not Supported")

    return SimpleNamespace(
        mtmlLibraryInit=init,
        mtmlLibraryShutDown=lambda: None,
        mtmlLibraryCountDevice=lambda: len(names),
        mtmlLibraryInitDeviceByIndex=lambda i: i,
        mtmlDeviceGetIndex=lambda d: d,
        mtmlDeviceGetName=lambda d: names[d],
        mtmlDeviceGetUUID=lambda d: f"mt-uuid-{d}",
        mtmlDeviceGetPciInfo=lambda d: SimpleNamespace(sbdf=f"0000:0{d + 8}:00.0".encode()),
        mtmlMemoryContext=memory_context,
        mtmlMemoryGetTotal=lambda m: 48 * 1024**3,
        mtmlMemoryGetUsed=lambda m: 1024**3,
        mtmlDeviceGetGpuPath=gpu_path,
        mtmlDeviceGetPrimaryPath=lambda d: f"/dev/dri/card{d}",
        mtmlDeviceGetRenderPath=render_path,
    )


def test_discovery_reads_mtml_through_pymtml(
    registry: VendorRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "pymtml", fake_pymtml())
    found = registry.hook.hami_discover(spec=SPEC, config={})
    assert [(d.uuid, d.index, d.model, d.memory_mib, d.cores) for d in found] == [
        ("mt-uuid-0", 0, "MTT S4000", 49152, 16),
        ("mt-uuid-1", 1, "MTT S4000", 49152, 16),
    ]
    assert found[1].paths == ("/dev/mtgpu.1", "/dev/dri/card1")
    assert found[1].extras["bus_id"] == "0000:09:00.0"
    info = registry.hook.hami_split(spec=SPEC, device=found[0], config={})
    assert (info.count, info.devmem, info.devcore, info.type) == (100, 49152, 16, "Mthreads")


def install_gmi(tmp_path: Path, script: str, monkeypatch: pytest.MonkeyPatch) -> None:
    tool = tmp_path / "mthreads-gmi"
    tool.write_text("#!/bin/sh\n" + script)
    tool.chmod(tool.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", str(tmp_path) + os.pathsep + os.environ.get("PATH", ""))


def test_without_the_mtml_library_discovery_falls_back_to_mthreads_gmi(
    registry: VendorRegistry, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    missing = OSError("Failed to load MTML library on Linux. Tried: libmtml.so.2, libmtml.so")
    monkeypatch.setitem(sys.modules, "pymtml", fake_pymtml(init_error=missing))
    install_gmi(tmp_path, f"cat {DATA / 'mthreads-gmi-MTT_S4000-1.txt'}\n", monkeypatch)
    (card,) = registry.hook.hami_discover(spec=SPEC, config={})
    assert (card.uuid, card.model, card.memory_mib) == ("MT-00000000-08-00.0", "MTT S4000", 32768)
    assert card.extras["memory_used_mib"] == 44302


def test_neither_mtml_nor_mthreads_gmi_makes_the_vendor_unavailable(
    registry: VendorRegistry, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, "pymtml", None)  # import fails
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(VendorUnavailable, match=r"pymtml.*not installed.*mthreads-gmi not found"):
        registry.hook.hami_discover(spec=SPEC, config={})
    install_gmi(tmp_path, "echo 'no device' >&2\nexit 2\n", monkeypatch)
    with pytest.raises(VendorUnavailable, match="mthreads-gmi exited 2: no device"):
        registry.hook.hami_discover(spec=SPEC, config={})


def test_the_unavailable_reason_is_one_line_even_when_the_tool_prints_several(
    registry: VendorRegistry, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, "pymtml", None)
    install_gmi(
        tmp_path, "printf 'open /dev/mtgpu.0:\\n  no such device\\n' >&2\nexit 1\n", monkeypatch
    )
    with pytest.raises(VendorUnavailable) as raised:
        registry.hook.hami_discover(spec=SPEC, config={})
    why = raised.value.why
    assert "\n" not in why and "\n" not in str(raised.value)
    assert why.endswith("mthreads-gmi exited 1: open /dev/mtgpu.0: no such device")
