"""The generic hooks give a plain shareable vendor (the example XPU) everything but discovery
and mounting: split, register, read back, requests, admission defaults, fit, decision, score."""

import json
from pathlib import Path

import pytest

from hami_core.model import (
    ContainerAllocation,
    ContainerDevice,
    Device,
    DeviceInfo,
    DeviceUsage,
    FitContext,
    NodeView,
    PodView,
    VendorUnavailable,
)
from hami_core.plugins import VendorRegistry, load_vendors

CONFIG = {"example": {"deviceSplitCount": 4, "deviceMemoryScaling": 1.5}}


@pytest.fixture
def registry() -> VendorRegistry:
    return load_vendors(environ={"HAMI_VENDORS": "example"})


def card(i: int) -> Device:
    return Device(vendor="example", uuid=f"XPU-{i}", index=i, model="XPU-1", memory_mib=16000)


def test_discover_reads_the_vendor_binding(
    registry: VendorRegistry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = registry.spec("example")
    listing = tmp_path / "cards.json"
    listing.write_text(json.dumps([{"uuid": "XPU-a", "model": "XPU-1", "memory_mib": 8192}]))
    monkeypatch.setenv("HAMI_EXAMPLE_DEVICES", str(listing))
    [found] = registry.hook.hami_discover(spec=spec, config={})
    assert (found.uuid, found.index, found.memory_mib) == ("XPU-a", 0, 8192)
    monkeypatch.delenv("HAMI_EXAMPLE_DEVICES")
    with pytest.raises(VendorUnavailable, match="example: unavailable"):
        registry.hook.hami_discover(spec=spec, config={})


def test_split_scales_memory_and_sets_the_split_count(registry: VendorRegistry) -> None:
    spec = registry.spec("example")
    info = registry.hook.hami_split(spec=spec, device=card(1), config=CONFIG)
    assert info == DeviceInfo(
        id="XPU-1",
        index=1,
        count=4,
        devmem=24000,
        devcore=100,
        type="XPU-1",
        mode="hami-core",
        health=True,
    )


def test_each_split_slot_is_advertised_to_kubelet(registry: VendorRegistry) -> None:
    spec = registry.spec("example")
    info = registry.hook.hami_split(spec=spec, device=card(0), config=CONFIG)
    assert registry.hook.hami_advertise(spec=spec, resource="example.com/xpu", device=info) == 4


def test_register_annotation_round_trips_through_the_node(registry: VendorRegistry) -> None:
    spec = registry.spec("example")
    infos = [registry.hook.hami_split(spec=spec, device=card(i), config={}) for i in range(2)]
    annotations = registry.hook.hami_annotate(spec=spec, devices=infos, config={})
    assert list(annotations) == ["hami.io/node-example-register"]
    assert annotations["hami.io/node-example-register"].startswith('[{"id":"XPU-0"')
    node = NodeView(name="n1", annotations=annotations)
    assert registry.hook.hami_read_node(spec=spec, node=node, config={}) == infos
    bare = NodeView(name="n2", annotations={})
    assert registry.hook.hami_read_node(spec=spec, node=bare, config={}) == []


def test_request_fit_and_decision_annotations(registry: VendorRegistry) -> None:
    spec = registry.spec("example")
    pod = PodView(namespace="ns", name="p", uid="u", annotations={})
    container = {
        "name": "main",
        "resources": {"limits": {"example.com/xpu": "1", "example.com/xpu-memory": "3000"}},
    }
    request = registry.hook.hami_request(
        spec=spec, container=container, index=0, init=False, pod=pod, config={}
    )
    assert (request.count, request.memory_mib) == (1, 3000)
    infos = [registry.hook.hami_split(spec=spec, device=card(i), config={}) for i in range(2)]
    devices = [DeviceUsage.from_info("example", i) for i in infos]
    ctx = FitContext(pod=pod, node=NodeView(name="n1", annotations={}))
    result = registry.hook.hami_allocate(spec=spec, request=request, devices=devices, context=ctx)
    assert result.ok
    [share] = result.devices
    assert (share.type, share.usedmem) == ("EXAMPLE", 3000)
    annotations = registry.hook.hami_pod_annotations(spec=spec, containers=[[share]], context=ctx)
    value = f"{share.uuid},EXAMPLE,3000,0:;"
    assert annotations == {
        "hami.io/example-devices-to-allocate": value,
        "hami.io/example-devices-allocated": value,
    }
    score = registry.hook.hami_score_node(
        spec=spec, devices=devices, containers=[[share]], context=ctx
    )
    assert score == 0.0


def test_admission_defaults_add_the_count_when_only_memory_is_asked(
    registry: VendorRegistry,
) -> None:
    spec = registry.spec("example")
    container = {"name": "c", "resources": {"limits": {"example.com/xpu-memory": "2048"}}}
    mutation = registry.hook.hami_mutate(spec=spec, container=container, pod={}, config={})
    assert mutation.uses_vendor
    assert mutation.limits.get("example.com/xpu") == "1"


def test_mount_names_the_devices_for_the_runtime(registry: VendorRegistry) -> None:
    allocation = ContainerAllocation(
        vendor="example",
        pod_namespace="ns",
        pod_name="p",
        pod_uid="u",
        container="c",
        devices=(ContainerDevice("XPU-0", "EXAMPLE", 3000, 0),),
    )
    spec = registry.hook.hami_mount(allocation=allocation)
    assert spec.envs == {"EXAMPLE_VISIBLE_DEVICES": "XPU-0", "EXAMPLE_MEMORY_LIMIT_0": "3000m"}
