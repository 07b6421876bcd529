"""A DCU pod from discovery to its container's device nodes and vDCU config, over the real
protocols.

The node side runs hami's device plugin (node agent, gRPC plugin servers, allocator) against a
fake kubelet on real Unix sockets. The node is built in a temporary directory: `hy-smi` is a
script printing a recorded K100_AI table (and, for `--json`, per-card details in the key names
gpustack's rocm_smi detector reads; no such capture is recorded), with a /sys tree of Hygon DRM
nodes and a /dev/kfd. The scheduling engine decides from the node the agent registered, as the
scheduler's filter does.
"""

import json
import os
import stat
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hami_hygon import plugin

from hami_core.deviceplugin.node import DevicePluginNode
from hami_core.k8s.memory import MemoryCluster
from hami_core.nodelock import lock_node
from hami_core.plugins import VendorRegistry, load_vendors
from hami_core.scheduling.cache import UsageCache
from hami_core.scheduling.engine import Engine
from hami_core.testing.fake_kubelet import FakeKubelet

DATA = Path(__file__).parent / "data"
NODE = "dcu-node"
RESOURCE = "hygon.com/dcunum"
BUSES = ("0000:3d:00.0", "0000:40:00.0", "0000:b1:00.0", "0000:b4:00.0")


@pytest.fixture
def registry() -> VendorRegistry:
    return load_vendors(environ={}, entry_points_=[], plugins=[("hygon", plugin)])


@pytest.fixture
def cluster() -> MemoryCluster:
    cluster = MemoryCluster()
    cluster.create("nodes", {"metadata": {"name": NODE}, "status": {"capacity": {}}})
    return cluster


def build_node(root: Path) -> dict[str, Any]:
    """A K100_AI node under `root`: the tool, /sys and /dev; returns the `hygon:` config."""
    details = {
        f"card{i}": {
            "Device ID": "0x6210",
            "Card Series": "K100_AI",
            "Serial Number": f"TPXS32001607060{i}",
            "vram Total Memory (MiB)": "65520",
            "PCI Bus": BUSES[i].upper(),
        }
        for i in range(4)
    }
    (root / "details.json").write_text(json.dumps(details))
    tool = root / "hy-smi"
    tool.write_text(
        f"#!{sys.executable}\nimport sys\n"
        f"name = {str(root / 'details.json')!r} if '--json' in sys.argv "
        f"else {str(DATA / 'hy-smi-K100_AI-1.txt')!r}\n"
        "sys.stdout.write(open(name, encoding='utf-8').read())\n"
    )
    tool.chmod(tool.stat().st_mode | stat.S_IEXEC)
    sys_root, dev_root = root / "sys", root / "dev"
    (sys_root / "class" / "kfd").mkdir(parents=True)
    for i, bus in enumerate(BUSES):
        device = sys_root / "devices" / bus
        device.mkdir(parents=True)
        (device / "vendor").write_text("0x1d94\n")
        (device / "numa_node").write_text("0\n")
        for name in (f"card{i + 1}", f"renderD{128 + i}"):
            (sys_root / "class" / "drm" / name).mkdir(parents=True)
            os.symlink(device, sys_root / "class" / "drm" / name / "device")
    dev_root.mkdir()
    (dev_root / "kfd").write_text("")
    (dev_root / "mkfd").write_text("")
    return {
        "smiPath": str(tool),
        "sysRoot": str(sys_root),
        "devRoot": str(dev_root),
        "vdevDir": str(root / "vgpu"),
        "exporterVdevDir": str(root / "etc-vdev"),
    }


@pytest.fixture
def config(tmp_path: Path) -> dict[str, Any]:
    return {"hygon": build_node(tmp_path)}


@pytest.fixture
def kubelet(
    registry: VendorRegistry, cluster: MemoryCluster, config: dict[str, Any]
) -> Iterator[FakeKubelet]:
    # Unix socket paths are limited to 107 bytes: keep the plugin directory short.
    with (
        tempfile.TemporaryDirectory(prefix="dcu", dir="/tmp") as short,
        FakeKubelet(short) as fake,
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
            yield fake
        finally:
            node.stop()


def schedule_and_bind(
    registry: VendorRegistry,
    cluster: MemoryCluster,
    config: dict[str, Any],
    name: str,
    limits: dict[str, str],
) -> dict[str, str]:
    """What the scheduler does: filter against the registered node, patch, bind."""
    obj = {
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"containers": [{"name": "main", "resources": {"limits": limits}}]},
        "status": {"phase": "Pending"},
    }
    created = cluster.create("pods", obj, namespace="default")
    cache = UsageCache.rebuild(registry, config, [cluster.get_node(NODE)], cluster.list_pods())
    decision = Engine(registry, config, cache).schedule(obj, [NODE], time.time())
    assert decision.node == NODE, decision
    lock_node(cluster, NODE, "default", name)  # as the scheduler's bind does
    cluster.patch_pod_metadata(
        "default", name, annotations={**decision.annotations, "hami.io/bind-phase": "allocating"}
    )
    cluster.bind_pod("default", name, created["metadata"]["uid"], NODE)
    return dict(decision.annotations)


def ids_of(kubelet: FakeKubelet, cards: list[str]) -> list[str]:
    listed = [d.id for d in kubelet.devices(RESOURCE)]
    return [next(i for i in listed if i.rsplit("-", 1)[0] == card) for card in cards]


def chosen(annotations: dict[str, str]) -> list[str]:
    value = annotations["hami.io/dcu-devices-allocated"]
    return [part.split(",")[0] for part in value.replace(";", "").split(":") if part]


def test_a_registered_node_serves_a_vdcu_slice_and_whole_cards(
    registry: VendorRegistry,
    cluster: MemoryCluster,
    config: dict[str, Any],
    kubelet: FakeKubelet,
    tmp_path: Path,
) -> None:
    kubelet.wait_registered(RESOURCE)
    assert len(kubelet.wait_devices(RESOURCE)) == 4 * 4  # 4 DCUs, 4 sharers each
    register = cluster.get_node(NODE)["metadata"]["annotations"]["hami.io/node-dcu-register"]
    assert register.startswith("DCU-TPXS320016070600,4,65520,100,DCU-K100_AI,0,true,0,hami:")
    assert register.count(":") == 4

    # a quarter of one DCU: a vDCU slice
    decided = schedule_and_bind(
        registry,
        cluster,
        config,
        "slice",
        {RESOURCE: "1", "hygon.com/dcumem": "16384", "hygon.com/dcucores": "25"},
    )
    [card] = chosen(decided)
    index = int(card[-1])
    response = kubelet.allocate(RESOURCE, ids_of(kubelet, [card]))
    assert [(d.container_path, d.permissions) for d in response.devices] == [
        ("/dev/kfd", "rwm"),
        ("/dev/mkfd", "rwm"),
        (f"/dev/dri/card{index + 1}", "rw"),
        (f"/dev/dri/renderD{128 + index}", "rw"),
    ]
    mounts = {m.container_path: (m.host_path, m.read_only) for m in response.mounts}
    assert set(mounts) == {"/etc/vdev/docker", "/opt/hygondriver", "/opt/hyhal"}
    conf = Path(mounts["/etc/vdev/docker"][0]) / "vdev0.conf"
    assert conf.read_text().splitlines()[:5] == [
        f"PciBusId: {BUSES[index].upper()}",
        "cu_mask: 0x000000003fffffff",
        "cu_mask: 0x0000000000000000",
        "cu_count: 30",
        "mem: 16384 MiB",
    ]
    assert dict(response.envs) == {}
    annotations = cluster.get_pod("default", "slice")["metadata"]["annotations"]
    assert annotations["hami.io/bind-phase"] == "success"

    # two DCUs: whole cards, no vDCU config, never the card the slice is on
    decided = schedule_and_bind(
        registry, cluster, config, "whole", {RESOURCE: "2", "hygon.com/dcucores": "10"}
    )
    cards = chosen(decided)
    assert len(cards) == 2 and card not in cards
    assert all(
        ",65520,100:" in part + ":"
        for part in decided["hami.io/dcu-devices-allocated"].rstrip(";").split(":")
        if part
    )
    response = kubelet.allocate(RESOURCE, ids_of(kubelet, cards))
    assert len(response.devices) == 2 + 2 * 2 and len(response.mounts) == 0
    assert len(list((tmp_path / "vgpu").iterdir())) == 1
