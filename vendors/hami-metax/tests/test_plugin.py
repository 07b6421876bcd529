"""MetaX whole-card rules, exercised through the hook relay as the services call them."""

import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest
from hami_metax import binding, plugin
from hami_metax.mount import MountError
from hami_metax.spec import SPEC

from hami_core.errors import ConfigError, RequestError
from hami_core.model import (
    ContainerAllocation,
    ContainerDevice,
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
    return load_vendors(environ={}, entry_points_=[], plugins=[("metax", plugin)])


def request(registry: VendorRegistry, limits: dict[str, str], config: Any = None) -> Any:
    return registry.hook.hami_request(
        spec=SPEC,
        container={"name": "main", "resources": {"limits": limits}},
        index=0,
        init=False,
        pod=POD,
        config=config or {},
    )


def test_spec_is_hamis_metax_gpu(registry: VendorRegistry) -> None:
    spec = registry.spec("metax")
    assert (spec.common_word, spec.resources.all()) == ("Metax-GPU", ("metax-tech.com/gpu",))
    assert spec.annotations.decision_keys() == (
        "hami.io/metax-gpu-devices-to-allocate",
        "hami.io/metax-gpu-devices-allocated",
    )
    assert (spec.register_format, spec.node_lock, spec.whole_card_only) == (
        "capacity",
        False,
        True,
    )


def test_cards_are_always_whole(registry: VendorRegistry) -> None:
    got = request(registry, {"metax-tech.com/gpu": "2"})
    assert (got.count, got.memory_percent, got.cores) == (2, 100, 100)
    assert request(registry, {"nvidia.com/gpu": "1"}).count == 0


def test_a_memory_or_core_share_beside_whole_cards_is_refused(registry: VendorRegistry) -> None:
    with pytest.raises(RequestError, match=r"metax-tech\.com/vmemory: MetaX cards are allocated"):
        request(registry, {"metax-tech.com/gpu": "1", "metax-tech.com/vmemory": "4"})
    with pytest.raises(RequestError, match=r"metax-tech\.com/vcore"):
        request(registry, {"metax-tech.com/gpu": "1", "metax-tech.com/vcore": "50"})
    renamed = {"metax": {"resourceVCoreName": "example.com/metax-cores"}}
    with pytest.raises(RequestError, match=r"example\.com/metax-cores"):
        request(registry, {"metax-tech.com/gpu": "1", "example.com/metax-cores": "5"}, renamed)


def test_cards_come_from_node_capacity(registry: VendorRegistry) -> None:
    node = NodeView(name="mx-1", annotations={}, capacity={"metax-tech.com/gpu": "3"})
    read = registry.hook.hami_read_node(spec=SPEC, node=node, config={})
    assert [(c.id, c.index, c.count, c.devmem, c.devcore, c.type) for c in read] == [
        (f"mx-1-metax-{i}", i, 1, 65536, 100, "Metax-GPU") for i in range(3)
    ]
    bare = NodeView(name="cpu", annotations={}, capacity={"cpu": "8"})
    assert registry.hook.hami_read_node(spec=SPEC, node=bare, config={}) == []
    broken = NodeView(name="x", annotations={}, capacity={"metax-tech.com/gpu": "2.5"})
    with pytest.raises(ProtocolError, match=r"metax-tech\.com/gpu: expected a whole number"):
        registry.hook.hami_read_node(spec=SPEC, node=broken, config={})


def cards(n: int) -> list[DeviceUsage]:
    return [
        DeviceUsage(
            id=f"mx-1-metax-{i}",
            index=i,
            type="Metax-GPU",
            vendor="metax",
            count=1,
            totalmem=65536,
            totalcore=100,
        )
        for i in range(n)
    ]


def test_a_second_container_must_use_the_pods_card_which_is_already_whole(
    registry: VendorRegistry,
) -> None:
    req = request(registry, {"metax-tech.com/gpu": "1"})
    node = NodeView(name="mx-1", annotations={})
    first = registry.hook.hami_allocate(
        spec=SPEC, request=req, devices=cards(4), context=FitContext(pod=POD, node=node)
    )
    assert [d.uuid for d in first.devices] == ["mx-1-metax-3"]
    after = cards(4)
    after[3].take(first.devices[0])
    ctx = FitContext(pod=POD, node=node, pod_devices={"metax": [list(first.devices)]})
    second = registry.hook.hami_allocate(spec=SPEC, request=req, devices=after, context=ctx)
    assert not second.ok
    assert second.reasons == {"CardTimeSlicingExhausted": 1, "CardUuidMismatch": 3}


def score(registry: VendorRegistry, annotations: dict[str, str], policy: str, n: int) -> float:
    pod = PodView(
        namespace="ns",
        name="p",
        uid="u",
        annotations={"hami.io/node-scheduler-policy": policy} if policy else {},
    )
    chosen = [[ContainerDevice(f"mx-1-metax-{i}", "Metax-GPU", 65536, 100) for i in range(n)]]
    ctx = FitContext(pod=pod, node=NodeView(name="mx-1", annotations=annotations))
    result: float = registry.hook.hami_score_node(
        spec=SPEC, devices=cards(8), containers=chosen, context=ctx
    )
    return result


def test_node_score_follows_metax_topology_annotations(registry: VendorRegistry) -> None:
    topo = {
        "metax-tech.com/gpu.topology.losses": json.dumps({"1": 0, "2": 10, "4": 40}),
        "metax-tech.com/gpu.topology.scores": json.dumps({"1": 0, "2": 90, "4": 60}),
    }
    assert score(registry, topo, "binpack", 2) == 1990
    assert score(registry, topo, "", 4) == 1960  # binpack is HAMi's default node policy
    # the engine subtracts vendor terms under spread: HAMi's 2000 - scores[n], negated
    assert score(registry, topo, "spread", 2) == -1910
    assert score(registry, topo, "spread", 2) > score(registry, topo, "spread", 4)
    assert score(registry, topo, "binpack", 3) == 2000  # no entry for 3 cards: loss 0
    assert score(registry, {}, "binpack", 2) == 0
    garbled = {"metax-tech.com/gpu.topology.losses": "{not json"}
    assert score(registry, garbled, "binpack", 1) == 2000


def test_mount_gives_mxcd_and_each_cards_dri_nodes(
    registry: VendorRegistry, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    discovered = discover(registry, monkeypatch, tmp_path)
    allocation = ContainerAllocation(
        vendor="metax",
        pod_namespace="ns",
        pod_name="p",
        pod_uid="u",
        container="main",
        devices=(
            ContainerDevice("mx-1-metax-1", "Metax-GPU", 65536, 100),
            ContainerDevice("mx-1-metax-6", "Metax-GPU", 65536, 100),
        ),
        node_devices=tuple(discovered),
    )
    got = registry.hook.hami_mount(allocation=allocation)
    assert [(d.host_path, d.container_path) for d in got.devices] == [
        ("/dev/mxcd", "/dev/mxcd"),
        ("/dev/dri/card2", "/dev/dri/card2"),
        ("/dev/dri/renderD130", "/dev/dri/renderD130"),
        ("/dev/dri/card6", "/dev/dri/card6"),
        ("/dev/dri/renderD134", "/dev/dri/renderD134"),
    ]
    assert got.envs == {}
    extra = allocation.model_copy(
        update={"config": {"metax": {"controlDevices": ["/dev/mxcd", "/dev/infiniband"]}}}
    )
    nodes = [d.host_path for d in registry.hook.hami_mount(allocation=extra).devices]
    assert nodes[:3] == ["/dev/mxcd", "/dev/infiniband", "/dev/dri/card2"]
    with pytest.raises(ConfigError, match=r"metax\.controlDevices"):
        registry.hook.hami_mount(
            allocation=allocation.model_copy(update={"config": {"metax": {"controlDevices": 1}}})
        )
    stranger = allocation.model_copy(
        update={"devices": (ContainerDevice("GPU-x", "Metax-GPU", 1, 1),)}
    )
    with pytest.raises(MountError, match="GPU-x"):
        registry.hook.hami_mount(allocation=stranger)


def discover(
    registry: VendorRegistry, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> list[Any]:
    """Discovery with `mx-smi` printing a recorded table and a sysfs tree in which card 1 sits
    behind DRM minor 2 (so sysfs, not the index, must decide) and card 3 is on NUMA node 1."""
    bin_dir, sysfs = tmp_path / "bin", tmp_path / "sys"
    bin_dir.mkdir()
    tool = bin_dir / "mx-smi"
    tool.write_text(f"#!/bin/sh\ncat {DATA / 'mx-smi-C500-2.txt'}\n")
    tool.chmod(tool.stat().st_mode | stat.S_IXUSR)
    for bus, names in {"0000:0f:00.0": ("card2", "renderD130")}.items():
        for name in names:
            (sysfs / bus / "drm" / name).mkdir(parents=True)
    (sysfs / "0000:12:00.0").mkdir(parents=True)
    (sysfs / "0000:12:00.0" / "numa_node").write_text("1\n")
    monkeypatch.setenv("PATH", str(bin_dir) + os.pathsep + os.environ.get("PATH", ""))
    monkeypatch.setattr(binding, "SYSFS_PCI", sysfs)
    found: list[Any] = registry.hook.hami_discover(spec=SPEC, config={})
    return found


def test_discovery_reads_mx_smi_and_sysfs(
    registry: VendorRegistry, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    found = discover(registry, monkeypatch, tmp_path)
    assert [d.uuid for d in found][:2] == ["MX-0000-0e-00.0", "MX-0000-0f-00.0"]
    assert {d.model for d in found} == {"MetaX C500"} and len(found) == 8
    assert found[1].paths == ("/dev/dri/card2", "/dev/dri/renderD130")
    assert found[0].paths == ("/dev/dri/card0", "/dev/dri/renderD128")
    assert [d.numa for d in found][2:4] == [0, 1]
    info = registry.hook.hami_split(spec=SPEC, device=found[0], config={})
    assert (info.count, info.devmem, info.devcore, info.type) == (1, 65536, 100, "Metax-GPU")


def test_missing_or_failing_mx_smi_makes_the_vendor_unavailable(
    registry: VendorRegistry, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(VendorUnavailable, match="mx-smi not found"):
        registry.hook.hami_discover(spec=SPEC, config={})
    tool = tmp_path / "mx-smi"
    tool.write_text("#!/bin/sh\necho 'mx-smi: no device found'\nexit 0\n")
    tool.chmod(tool.stat().st_mode | stat.S_IXUSR)
    with pytest.raises(VendorUnavailable, match="no GPU table"):
        registry.hook.hami_discover(spec=SPEC, config={})
