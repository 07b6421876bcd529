"""A MetaX pod from discovery to its container's device nodes, over the real protocols.

The node side runs hami's device plugin against a fake kubelet on real Unix sockets, with
`mx-smi` a script printing a recorded C500 table; the node's capacity is what a kubelet reports
from the plugin's device list; the scheduling engine chooses nodes as the scheduler's filter does.
"""

import json
import os
import stat
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hami_metax import plugin

from hami_core.deviceplugin.node import DevicePluginNode
from hami_core.k8s.memory import MemoryCluster
from hami_core.plugins import VendorRegistry, load_vendors
from hami_core.scheduling.cache import UsageCache
from hami_core.scheduling.engine import Engine
from hami_core.testing.fake_kubelet import FakeKubelet

DATA = Path(__file__).parent / "data"
NODE = "mx-node"
RESOURCE = "metax-tech.com/gpu"


@pytest.fixture
def registry() -> VendorRegistry:
    return load_vendors(environ={}, entry_points_=[], plugins=[("metax", plugin)])


def node_obj(name: str, cards: int, annotations: dict[str, str] | None = None) -> dict[str, Any]:
    capacity = {RESOURCE: str(cards)} if cards else {}
    return {
        "metadata": {"name": name, "annotations": annotations or {}},
        "status": {"capacity": capacity, "allocatable": capacity},
    }


def pod(name: str, limits: dict[str, str], **annotations: str) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": "default", "annotations": annotations},
        "spec": {"containers": [{"name": "main", "resources": {"limits": limits}}]},
        "status": {"phase": "Pending"},
    }


@pytest.fixture
def node_side(
    registry: VendorRegistry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[MemoryCluster, FakeKubelet]]:
    tools = tmp_path / "bin"
    tools.mkdir()
    mxsmi = tools / "mx-smi"
    mxsmi.write_text(f"#!/bin/sh\ncat {DATA / 'mx-smi-MXC500-1.txt'}\n")
    mxsmi.chmod(mxsmi.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", str(tools) + os.pathsep + os.environ.get("PATH", ""))
    cluster = MemoryCluster()
    cluster.create("nodes", node_obj(NODE, 0))
    # Unix socket paths are limited to 107 bytes: keep the plugin directory short.
    with tempfile.TemporaryDirectory(prefix="mx", dir="/tmp") as short, FakeKubelet(short) as kb:
        node = DevicePluginNode(
            cluster, registry, NODE, plugin_dir=short, interval=3600, health_interval=3600
        )
        node.start()
        try:
            yield cluster, kb
        finally:
            node.stop()


def test_a_two_card_pod_gets_mxcd_and_the_chosen_cards_dri_nodes(
    registry: VendorRegistry, node_side: tuple[MemoryCluster, FakeKubelet]
) -> None:
    cluster, kubelet = node_side
    kubelet.wait_registered(RESOURCE)
    listed = kubelet.wait_devices(RESOURCE)
    assert len(listed) == 4  # four MXC500, one kubelet device each (whole cards)
    # The kubelet reports the plugin's devices as node capacity; the scheduler reads that.
    cluster.update_status("nodes", NODE, node_obj(NODE, len(listed))["status"])

    created = cluster.create("pods", pod("infer", {RESOURCE: "2"}), namespace="default")
    cache = UsageCache.rebuild(registry, {}, [cluster.get_node(NODE)], [])
    decision = Engine(registry, {}, cache).schedule(created, [NODE], time.time())
    assert decision.node == NODE, decision
    chosen = decision.pod_devices["metax"][0]
    assert sorted(d.uuid for d in chosen) == ["mx-node-metax-2", "mx-node-metax-3"]
    cluster.patch_pod_metadata(
        "default",
        "infer",
        annotations={**decision.annotations, "hami.io/bind-phase": "allocating"},
    )
    cluster.bind_pod("default", "infer", created["metadata"]["uid"], NODE)

    response = kubelet.allocate(RESOURCE, [d.id for d in listed[:2]])
    indexes = [int(d.uuid.rsplit("-", 1)[1]) for d in chosen]
    expected = ["/dev/mxcd"]
    for i in indexes:  # no sysfs DRM entries here: hami's default naming by index
        expected += [f"/dev/dri/card{i}", f"/dev/dri/renderD{128 + i}"]
    assert [d.host_path for d in response.devices] == expected
    assert [d.container_path for d in response.devices] == expected
    done = cluster.get_pod("default", "infer")["metadata"]["annotations"]
    assert done["hami.io/bind-phase"] == "success"


def test_the_engine_follows_metax_topology_annotations_between_nodes(
    registry: VendorRegistry,
) -> None:
    def topo(kind: str, two_cards: int) -> dict[str, str]:
        return {f"metax-tech.com/gpu.topology.{kind}": json.dumps({"1": 0, "2": two_cards})}

    spread_nodes = [node_obj("a", 8, topo("scores", 10)), node_obj("b", 8, topo("scores", 90))]
    engine = Engine(registry, {}, UsageCache.rebuild(registry, {}, spread_nodes, []))
    spread = pod("s", {RESOURCE: "2"}, **{"hami.io/node-scheduler-policy": "spread"})
    assert engine.schedule(spread, ["a", "b"], time.time()).node == "b"  # best topology score

    binpack_nodes = [node_obj("a", 8, topo("losses", 0)), node_obj("b", 8, topo("losses", 50))]
    engine = Engine(registry, {}, UsageCache.rebuild(registry, {}, binpack_nodes, []))
    binpack = pod("b", {RESOURCE: "2"}, **{"hami.io/node-scheduler-policy": "binpack"})
    assert engine.schedule(binpack, ["a", "b"], time.time()).node == "a"  # least topology loss
