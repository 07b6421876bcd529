"""An Iluvatar pod from discovery to its container's device nodes, over the real protocols.

The node side runs hami's device plugin (node agent, gRPC plugin servers, allocator) against a
fake kubelet on real Unix sockets; `ixsmi` is a script printing a recorded BI-V150 table; the
scheduling engine decides from the node the agent registered, as the scheduler's filter does.
"""

import os
import stat
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hami_iluvatar import plugin
from hami_iluvatar.parse_ixsmi import parse_ixsmi

from hami_core.deviceplugin.node import DevicePluginNode
from hami_core.k8s.memory import MemoryCluster
from hami_core.nodelock import lock_node
from hami_core.plugins import VendorRegistry, load_vendors
from hami_core.scheduling.cache import UsageCache
from hami_core.scheduling.engine import Engine
from hami_core.testing.fake_kubelet import FakeKubelet

DATA = Path(__file__).parent / "data"
NODE = "ix-node"
RESOURCE = "iluvatar.ai/BI-V150-vgpu"


@pytest.fixture
def registry() -> VendorRegistry:
    return load_vendors(environ={}, entry_points_=[], plugins=[("iluvatar", plugin)])


@pytest.fixture
def cluster() -> MemoryCluster:
    cluster = MemoryCluster()
    cluster.create("nodes", {"metadata": {"name": NODE}, "status": {"capacity": {}}})
    return cluster


@pytest.fixture
def node_side(
    registry: VendorRegistry,
    cluster: MemoryCluster,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[FakeKubelet]:
    tools = tmp_path / "bin"
    tools.mkdir()
    ixsmi = tools / "ixsmi"
    ixsmi.write_text(f"#!/bin/sh\ncat {DATA / 'ixsmi-BI-V150-1.txt'}\n")
    ixsmi.chmod(ixsmi.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", str(tools) + os.pathsep + os.environ.get("PATH", ""))
    # Unix socket paths are limited to 107 bytes: keep the plugin directory short.
    with (
        tempfile.TemporaryDirectory(prefix="ix", dir="/tmp") as short,
        FakeKubelet(short) as kubelet,
    ):
        plugin_dir = Path(short)
        node = DevicePluginNode(
            cluster, registry, NODE, plugin_dir=plugin_dir, interval=3600, health_interval=3600
        )
        node.start()
        try:
            yield kubelet
        finally:
            node.stop()


def pod(name: str, limits: dict[str, str]) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"containers": [{"name": "main", "resources": {"limits": limits}}]},
        "status": {"phase": "Pending"},
    }


def schedule_and_bind(
    registry: VendorRegistry, cluster: MemoryCluster, obj: dict[str, Any]
) -> dict[str, Any]:
    """What the scheduler does: filter against the registered node, patch, bind."""
    created = cluster.create("pods", obj, namespace="default")
    cache = UsageCache.rebuild(registry, {}, [cluster.get_node(NODE)], cluster.list_pods())
    decision = Engine(registry, {}, cache).schedule(obj, [NODE], time.time())
    assert decision.node == NODE, decision
    name = obj["metadata"]["name"]
    lock_node(cluster, NODE, "default", name)  # as the scheduler's bind does
    cluster.patch_pod_metadata(
        "default", name, annotations={**decision.annotations, "hami.io/bind-phase": "allocating"}
    )
    cluster.bind_pod("default", name, created["metadata"]["uid"], NODE)
    return decision.annotations


def test_two_whole_cards_reach_the_container_as_renumbered_device_nodes(
    registry: VendorRegistry, cluster: MemoryCluster, node_side: FakeKubelet
) -> None:
    kubelet = node_side
    kubelet.wait_registered(RESOURCE)
    listed = kubelet.wait_devices(RESOURCE)
    assert len(listed) == 16 * 10  # 16 chips, 10 slots each
    register = cluster.get_node(NODE)["metadata"]["annotations"]["hami.io/node-BI-V150-register"]
    assert register.startswith("IX-00000000-13-00.0,10,32768,100,BI-V150,0,true,0,")
    assert "hami.io/node-MR-V100-register" not in cluster.get_node(NODE)["metadata"]["annotations"]

    decided = schedule_and_bind(registry, cluster, pod("train", {RESOURCE: "2"}))
    chosen = decided["hami.io/BI-V150-devices-allocated"]
    cards = [part.split(",")[0] for part in chosen.rstrip(";").split(":") if part]
    assert len(cards) == 2 and all(",32768,100" in p for p in chosen.split(":")[:2])

    response = kubelet.allocate(RESOURCE, [f"{card}-0" for card in cards])
    table = parse_ixsmi((DATA / "ixsmi-BI-V150-1.txt").read_text(encoding="utf-8"))
    by_card = {f"IX-{c.bus_id.replace(':', '-')}": c.index for c in table.cards}
    assert [(d.host_path, d.container_path) for d in response.devices] == [
        (f"/dev/iluvatar{by_card[cards[0]]}", "/dev/iluvatar0"),
        (f"/dev/iluvatar{by_card[cards[1]]}", "/dev/iluvatar1"),
        ("/dev/itrctl", "/dev/itrctl"),
    ]
    assert response.envs["IX_VISIBLE_DEVICES"] == ",".join(cards)
    annotations = cluster.get_pod("default", "train")["metadata"]["annotations"]
    assert annotations["hami.io/bind-phase"] == "success"
