"""An Ascend 910B3 pod from admission to the container's environment, with every hami part for
real: the node agent runs a stand-in `npu-smi` (printing a recorded 8 x 910B3 output),
registers the node and serves the device plugin to a fake kubelet over gRPC; the webhook hook
rounds the pod's memory; the scheduling engine places it; the kubelet's `Allocate` returns the
env the Ascend runtime reads."""

from __future__ import annotations

import json
import stat
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hami_ascend import plugin

from hami_core.deviceplugin.agent import NodeAgent
from hami_core.deviceplugin.allocate import Allocator
from hami_core.deviceplugin.manager import PluginManager
from hami_core.k8s import MemoryCluster
from hami_core.model import Mutation
from hami_core.nodelock import lock_node
from hami_core.plugins import VendorRegistry, load_vendors
from hami_core.scheduling.cache import UsageCache
from hami_core.scheduling.engine import Engine
from hami_core.testing.fake_kubelet import FakeKubelet

DATA = Path(__file__).parent / "data"
NODE = "npu-node-1"
RESOURCE = "huawei.com/Ascend910B3"
MEMORY = "huawei.com/Ascend910B3-memory"


@dataclass
class Cluster:
    api: MemoryCluster
    registry: VendorRegistry
    config: dict[str, Any]
    kubelet: FakeKubelet
    agent: NodeAgent


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    tool = tmp_path / "npu-smi"
    tool.write_text(f'#!/bin/sh\ncat "{DATA / "npu-smi-info-910B3-1.txt"}"\n', encoding="utf-8")
    tool.chmod(tool.stat().st_mode | stat.S_IXUSR)
    config: dict[str, Any] = {"vnpus": {"npuSmiPath": str(tool)}}
    registry = load_vendors(environ={}, entry_points_=[], plugins=[("ascend", plugin)])
    api = MemoryCluster()
    api.add_node({"metadata": {"name": NODE}})
    kubelet = FakeKubelet().start()  # its own short temp dir: socket paths must stay < 108 chars
    holder: list[NodeAgent] = []
    allocator = Allocator(
        api, registry, NODE, config=config, node_devices=lambda key: holder[0].devices(key)
    )
    plugins = PluginManager(allocator, plugin_dir=kubelet.plugin_dir)
    agent = NodeAgent(api, registry, NODE, config=config, plugins=plugins)
    holder.append(agent)
    try:
        yield Cluster(api, registry, config, kubelet, agent)
    finally:
        plugins.stop()
        kubelet.stop()


def _admit(c: Cluster, pod: dict[str, Any]) -> dict[str, Any]:
    """What the webhook does with the vendor's answer: set the limits (and requests)."""
    for container in pod["spec"]["containers"]:
        for spec in c.registry.specs():
            mutation = c.registry.hook.hami_mutate(
                spec=spec, container=container, pod=pod, config=c.config
            )
            assert isinstance(mutation, Mutation)
            container["resources"]["limits"].update(mutation.limits)
    return pod


def test_a_910b3_pod_asking_12_gib_runs_on_the_16_gib_template(cluster: Cluster) -> None:
    c = cluster
    states = c.agent.refresh()
    assert states["ascend910b3"].ok and len(states["ascend910b3"].devices) == 8
    node = c.api.get_node(NODE)
    register = json.loads(node["metadata"]["annotations"]["hami.io/node-register-Ascend910B3"])
    assert len(register) == 8 and {d["count"] for d in register} == {4}
    c.kubelet.wait_registered(RESOURCE)
    ids = c.kubelet.wait_devices(RESOURCE, lambda ds: len(ds) == 32)  # 8 NPUs x 4 vNPUs

    pod = _admit(
        c,
        {
            "metadata": {"name": "train", "namespace": "ml", "uid": "uid-train"},
            "spec": {
                "containers": [
                    {"name": "main", "resources": {"limits": {RESOURCE: "1", MEMORY: "12288"}}}
                ]
            },
        },
    )
    assert pod["spec"]["containers"][0]["resources"]["limits"][MEMORY] == "16384"

    cache = UsageCache.rebuild(c.registry, c.config, [c.api.get_node(NODE)], [])
    decision = Engine(c.registry, c.config, cache).schedule(pod, [NODE], time.time())
    assert decision.node == NODE, decision.failed
    (share,) = decision.pod_devices["ascend910b3"][0]
    assert share.usedmem == 16384
    annotations = decision.annotations
    assert json.loads(annotations["huawei.com/Ascend910B3"]) == [
        {"UUID": share.uuid, "temp": "vir05_1c_16g", "memory": 16384}
    ]
    assert (
        annotations["hami.io/Ascend910B3-devices-to-allocate"]
        == f"{share.uuid},Ascend910B3,16384,0:;"
    )

    pod["metadata"]["annotations"] = {**annotations, "hami.io/bind-phase": "allocating"}
    pod["spec"]["nodeName"] = NODE
    c.api.add_pod(pod)
    lock_node(c.api, NODE, "ml", "train")  # as the scheduler's bind does

    kubelet_id = next(d.id for d in ids if d.id.startswith(share.uuid))
    response = c.kubelet.allocate(RESOURCE, [kubelet_id])
    phy = next(d.extras["phy_id"] for d in c.agent.devices("ascend910b3") if d.uuid == share.uuid)
    assert dict(response.envs) == {
        "ASCEND_VISIBLE_DEVICES": str(phy),
        "ASCEND_VNPU_SPECS": "vir05_1c_16g",
    }
    assert list(response.devices) == [] and list(response.mounts) == []
    done = c.api.get_pod("ml", "train")["metadata"]["annotations"]
    assert done["hami.io/bind-phase"] == "success"
    assert done["hami.io/Ascend910B3-devices-to-allocate"] == ";"
