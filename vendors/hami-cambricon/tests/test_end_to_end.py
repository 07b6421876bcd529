"""An MLU pod from discovery to the scheduler's dynamic-sMLU decision, over the real protocols.

The node side runs hami's device plugin (node agent, gRPC plugin servers, allocator) against a
fake kubelet on real Unix sockets; `cnmon` is a script printing a recorded MLU370-X8 table. The
node registers no annotation: the scheduler reads the node's capacity, which the kubelet fills
from what the plugins advertise. The scheduling engine decides as the scheduler's filter does.
"""

import stat
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hami_cambricon import plugin

from hami_core.deviceplugin.node import DevicePluginNode
from hami_core.k8s.memory import MemoryCluster
from hami_core.model import ContainerAllocation, ContainerRuntimeSpec
from hami_core.nodelock import lock_node
from hami_core.plugins import VendorRegistry, load_vendors
from hami_core.protocol import decode_pod_devices
from hami_core.protocol.keys import BIND_PHASE, NODE_LOCK
from hami_core.scheduling.cache import UsageCache
from hami_core.scheduling.engine import Engine
from hami_core.testing.fake_kubelet import FakeKubelet

DATA = Path(__file__).parent / "data"
NODE = "mlu-node"
VCORE, VMEM, VMLU = (
    "cambricon.com/mlu.smlu.vcore",
    "cambricon.com/mlu.smlu.vmemory",
    "cambricon.com/vmlu",
)


@pytest.fixture
def registry() -> VendorRegistry:
    return load_vendors(environ={}, entry_points_=[], plugins=[("cambricon", plugin)])


@pytest.fixture
def cluster() -> MemoryCluster:
    cluster = MemoryCluster()
    cluster.create("nodes", {"metadata": {"name": NODE}, "status": {"capacity": {}}})
    return cluster


@pytest.fixture
def config(tmp_path: Path) -> dict[str, Any]:
    tool = tmp_path / "cnmon"
    tool.write_text(
        f"#!{sys.executable}\nimport sys\n"
        f"sys.stdout.write(open({str(DATA / 'cnmon-MLU370-X8-1.txt')!r}).read())\n"
    )
    tool.chmod(tool.stat().st_mode | stat.S_IEXEC)
    dev = tmp_path / "dev"
    dev.mkdir()
    for name in (
        "cambricon_ctl",
        "cambricon_dev0",
        "cambricon_dev1",
        "cambricon_ipcm0",
        "cambricon_ipcm1",
    ):
        (dev / name).write_text("")
    return {"cambricon": {"cnmonPath": str(tool), "devRoot": str(dev)}}


@pytest.fixture
def node_side(
    registry: VendorRegistry, cluster: MemoryCluster, config: dict[str, Any]
) -> Iterator[tuple[DevicePluginNode, FakeKubelet]]:
    # Unix socket paths are limited to 107 bytes: keep the plugin directory short.
    with (
        tempfile.TemporaryDirectory(prefix="mlu", dir="/tmp") as short,
        FakeKubelet(short) as kubelet,
    ):
        node = DevicePluginNode(
            cluster,
            registry,
            NODE,
            config=config,
            plugin_dir=short,
            interval=3600,
            health_interval=3600,
        )
        node.start()
        try:
            yield node, kubelet
        finally:
            node.stop()


def test_the_node_advertises_vcore_and_the_scheduler_writes_the_smlu_profile(
    registry: VendorRegistry,
    cluster: MemoryCluster,
    config: dict[str, Any],
    node_side: tuple[DevicePluginNode, FakeKubelet],
) -> None:
    node, kubelet = node_side
    for resource in (VCORE, VMEM):
        kubelet.wait_registered(resource)
    assert len(kubelet.wait_devices(VCORE)) == 2 * 100  # two cards, 100 vcore units each
    annotations = cluster.get_node(NODE)["metadata"].get("annotations") or {}
    assert not [k for k in annotations if "cambricon" in k or "MLU" in k]

    # the kubelet's capacity: vcore as listed; vmemory as Cambricon's plugin advertises it
    # with --min-dsmlu-unit=256 (23374 MiB // 256 = 91 units per card)
    cluster.update_status(
        "nodes", NODE, {"capacity": {VCORE: str(len(kubelet.devices(VCORE))), VMEM: "182"}}
    )
    obj = {
        "metadata": {"name": "infer", "namespace": "default"},
        "spec": {
            "containers": [
                {"name": "main", "resources": {"limits": {VMLU: "1", VMEM: "20", VCORE: "10"}}}
            ]
        },
        "status": {"phase": "Pending"},
    }
    cluster.create("pods", obj, namespace="default")
    cache = UsageCache.rebuild(registry, config, [cluster.get_node(NODE)], cluster.list_pods())
    decision = Engine(registry, config, cache).schedule(obj, [NODE], time.time())
    assert decision.node == NODE, decision
    written = dict(decision.annotations)
    value = written["hami.io/cambricon-mlu-devices-allocated"]
    assert value in (f"{NODE}-cambricon-mlu-{i},MLU,5120,10:;" for i in (0, 1))
    slot = value.split(",")[0][-1]
    assert written["CAMBRICON_DSMLU_PROFILE"] == f"{slot}_10_20"
    assert written["CAMBRICON_DSMLU_ASSIGNED"] == written["CAMBRICON_DSMLU_ASSIGHED"] == "false"

    # what Allocate hands the container once Cambricon's plugin recorded the sMLU instance
    [[share]] = decode_pod_devices(value)[:1]
    answer = registry.hook.hami_mount(
        allocation=ContainerAllocation(
            vendor="cambricon",
            pod_namespace="default",
            pod_name="infer",
            pod_uid="uid",
            pod_annotations={**written, "CAMBRICON_DSMLU_PROFILE_INSTANCE": f"1_{slot}_{slot}_1"},
            container="main",
            devices=(share,),
            node_devices=node.agent.devices("cambricon"),
            config=config,
        )
    )
    assert isinstance(answer, ContainerRuntimeSpec)
    assert [d.container_path for d in answer.devices] == [
        "/dev/cambricon_ctl",
        f"/dev/cambricon_dev{slot}",
        f"/dev/cambricon_ipcm{slot}",
        f"/dev/cambricon-caps/cap_dev{slot}_mi1",
    ]


def test_a_pod_asking_vcore_and_vmemory_gets_its_mlu_once_and_is_popped_once(
    registry: VendorRegistry,
    cluster: MemoryCluster,
    config: dict[str, Any],
    node_side: tuple[DevicePluginNode, FakeKubelet],
) -> None:
    _, kubelet = node_side
    for resource in (VCORE, VMEM):
        kubelet.wait_registered(resource)
    vcore_ids = [d.id for d in kubelet.wait_devices(VCORE)]
    vmem_ids = [d.id for d in kubelet.wait_devices(VMEM)]
    assert len(vmem_ids) == 2 * (23374 // 256)  # memory / 256 per card, not the split count
    assert vcore_ids[0].rsplit("-", 2)[1] == "core" and vmem_ids[0].rsplit("-", 2)[1] == "memory"
    cluster.update_status("nodes", NODE, {"capacity": {VCORE: "200", VMEM: "182"}})

    # the scheduler decides and binds (node lock, bind-phase), as hami's extender does
    obj = {
        "metadata": {"name": "infer", "namespace": "default"},
        "spec": {
            "containers": [
                {"name": "main", "resources": {"limits": {VMLU: "1", VMEM: "20", VCORE: "10"}}}
            ]
        },
        "status": {"phase": "Pending"},
    }
    created = cluster.create("pods", obj, namespace="default")
    cache = UsageCache.rebuild(registry, config, [cluster.get_node(NODE)], cluster.list_pods())
    decision = Engine(registry, config, cache).schedule(obj, [NODE], time.time())
    assert decision.node == NODE, decision
    slot = decision.annotations["CAMBRICON_DSMLU_PROFILE"].split("_")[0]
    instance = {"CAMBRICON_DSMLU_PROFILE_INSTANCE": f"1_{slot}_{slot}_1"}  # Cambricon's plugin
    cluster.patch_pod_metadata("default", "infer", annotations={**decision.annotations, **instance})
    lock_node(cluster, NODE, "default", "infer")
    cluster.patch_pod_metadata("default", "infer", annotations={BIND_PHASE: "allocating"})
    cluster.bind_pod("default", "infer", created["metadata"]["uid"], NODE)
    before = cluster.get_pod("default", "infer")["metadata"]["resourceVersion"]

    # the kubelet calls both resources of the container: vcore first here
    by_vcore = kubelet.allocate(VCORE, vcore_ids[:10])
    assert cluster.get_pod("default", "infer")["metadata"]["resourceVersion"] == before
    by_vmem = kubelet.allocate(VMEM, vmem_ids[:20])

    assert (list(by_vcore.devices), dict(by_vcore.envs)) == ([], {})
    assert [d.container_path for d in by_vmem.devices] == [
        "/dev/cambricon_ctl",
        f"/dev/cambricon_dev{slot}",
        f"/dev/cambricon_ipcm{slot}",
        f"/dev/cambricon-caps/cap_dev{slot}_mi1",
    ]
    after = cluster.get_pod("default", "infer")["metadata"]["annotations"]
    assert after["hami.io/cambricon-mlu-devices-to-allocate"] == ";"  # popped, once
    assert after[BIND_PHASE] == "success"
    assert NODE_LOCK not in (cluster.get_node(NODE)["metadata"].get("annotations") or {})
