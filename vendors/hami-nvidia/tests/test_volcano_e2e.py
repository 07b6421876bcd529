"""A Volcano vGPU node end to end: NVML (faked at the binding) → hami's node agent and device
plugins over gRPC to a fake kubelet → a pod decided by Volcano's scheduler, through the real
Kubernetes client against a fake apiserver over HTTP.

The pod carries exactly what Volcano's `deviceshare` plugin writes (`volcano.sh/vgpu-node`,
`volcano.sh/vgpu-time`, `volcano.sh/vgpu-ids-new`, `volcano.sh/devices-to-allocate` in HAMi's
`uuid,NVIDIA,mem,cores:` encoding with memory in `gpuMemoryFactor` units, `volcano.sh/bind-phase:
allocating`, `volcano.sh/bind-time`) and the node carries its bare-time `volcano.sh/mutex.lock`.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hami_nvidia import binding, plugin
from hami_nvidia.spec import VOLCANO_SPEC
from hami_nvidia.volcano import decode_volcano_devices

from hami_core.deviceplugin.node import DevicePluginNode
from hami_core.k8s.kube import KubeCluster
from hami_core.plugins import load_vendors
from hami_core.testing import FakeApiServer
from hami_core.testing.fake_kubelet import FakeKubelet

NODE = "vgpu-node"
NUMBER, MEMORY, CORES = VOLCANO_SPEC.advertised
KEYS = VOLCANO_SPEC.annotations
FACTOR = 256


def _node_annotations(cluster: KubeCluster) -> dict[str, str]:
    return dict(cluster.get_node(NODE)["metadata"].get("annotations") or {})


@pytest.fixture
def volcano_node(
    v100: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[FakeApiServer, KubeCluster, DevicePluginNode, FakeKubelet]]:
    monkeypatch.setattr(binding, "load_nvml", lambda: v100)
    for name in ("NODE_NAME", "HOOK_PATH", "ENABLE_TOPOLOGY_SCORE", "DP_DISABLE_HEALTHCHECKS"):
        monkeypatch.delenv(name, raising=False)
    hook = tmp_path / "hook"
    (hook / "vgpu").mkdir(parents=True)
    (hook / "vgpu" / "libvgpu.so").write_bytes(b"\x7fELF")
    config: dict[str, Any] = {
        "nvidia": {
            "gpuMemoryFactor": FACTOR,
            "hookPath": str(hook),
            "vgpuLockPath": str(tmp_path / "vgpulock"),
        },
        # a per-node override, found through the node name the device plugin passes on
        "nodeconfig": [{"name": NODE, "devicesplitcount": 4}],
    }
    registry = load_vendors(
        environ={"HAMI_VENDORS": "nvidia-volcano"}, entry_points_=[], plugins=[("nvidia", plugin)]
    )
    with FakeApiServer() as api, FakeKubelet() as kubelet:
        api.state.add_node({"apiVersion": "v1", "kind": "Node", "metadata": {"name": NODE}})
        cluster = api.kube_cluster(request_timeout=5.0)
        node = DevicePluginNode(
            cluster,
            registry,
            NODE,
            config=config,
            plugin_dir=kubelet.plugin_dir,
            interval=1.0,
            health_interval=0.1,
            poll=0.05,
        )
        node.start()
        try:
            yield api, cluster, node, kubelet
        finally:
            node.stop()
            cluster.close()


def _volcano_pod(card: str) -> dict[str, Any]:
    """A pod after Volcano's scheduler allocated it: a sidecar without GPU, then `main`."""
    now = str(int(time.time()))
    decision = f"{card},NVIDIA,12,30:"  # 12 x 256 MiB, 30 % of the SMs
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "vgpu-job",
            "namespace": "default",
            "annotations": {
                KEYS.assigned_node: NODE,
                "volcano.sh/vgpu-time": now,
                KEYS.allocated: decision,
                str(KEYS.to_allocate): decision,
                KEYS.bind_phase: "allocating",
                KEYS.bind_time: now,
            },
        },
        "spec": {
            "schedulerName": "volcano",
            "nodeName": NODE,
            "containers": [
                {"name": "sidecar", "image": "busybox"},
                {
                    "name": "main",
                    "image": "cuda",
                    "resources": {"limits": {NUMBER: "1", MEMORY: "12", CORES: "30"}},
                },
            ],
        },
        "status": {"phase": "Pending"},
    }


def test_a_volcano_pod_is_allocated_with_hami_core_and_the_volcano_lock_released(
    volcano_node: tuple[FakeApiServer, KubeCluster, DevicePluginNode, FakeKubelet],
    v100: Any,
    tmp_path: Path,
) -> None:
    api, cluster, node, kubelet = volcano_node
    for resource in (NUMBER, MEMORY, CORES):
        kubelet.wait_registered(resource)

    # what the kubelet lists: 4 slots (the node override), 32768 / 256 memory units, 100 cores
    numbers = kubelet.wait_devices(NUMBER, lambda ds: len(ds) == 2 * 4)
    memory = kubelet.wait_devices(MEMORY, lambda ds: len(ds) == 2 * 128)
    cores = kubelet.wait_devices(CORES, lambda ds: len(ds) == 2 * 100)
    card = numbers[0].id.rsplit("-", 1)[0]
    assert memory[0].id == f"{card}-memory-0" and cores[0].id == f"{card}-core-0"

    # what Volcano's scheduler reads: its register text and a handshake answer, no hami.io keys
    notes = _node_annotations(cluster)
    cards = decode_volcano_devices(notes["volcano.sh/node-vgpu-register"])
    assert [(c.id, c.count, c.devmem, c.type, c.health, c.mode) for c in cards] == [
        (gpu.uuid, 4, 128, "NVIDIA-Tesla V100-PCIE-32GB", True, "hami-core") for gpu in v100.gpus
    ]
    assert notes["volcano.sh/node-vgpu-handshake"].startswith("Reported_")
    assert not [k for k in notes if k.startswith("hami.io/")]
    cluster.patch_node_metadata(
        NODE, annotations={"volcano.sh/node-vgpu-handshake": "Requesting_2026.05.01 10:00:00"}
    )
    node.agent.refresh(verify=True)  # the scheduler asked: the agent answers again
    assert _node_annotations(cluster)["volcano.sh/node-vgpu-handshake"].startswith("Reported_")

    # Volcano's scheduler decides and binds under its own lock (a bare RFC 3339 time)
    api.state.add_pod(_volcano_pod(card))
    lock = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    cluster.patch_node_metadata(NODE, annotations={KEYS.node_lock: lock})

    # the kubelet calls each resource of the container, in no particular order
    mine = [d.id for d in memory if d.id.startswith(card)]
    by_memory = kubelet.allocate(MEMORY, mine[:12])
    by_number = kubelet.allocate(NUMBER, [numbers[0].id])
    by_cores = kubelet.allocate(CORES, [d.id for d in cores if d.id.startswith(card)][:30])

    for empty in (by_memory, by_cores):
        assert (dict(empty.envs), list(empty.mounts)) == ({}, [])
    envs = dict(by_number.envs)
    assert envs.pop("CUDA_DEVICE_MEMORY_SHARED_CACHE").startswith(f"{tmp_path}/hook/vgpu/")
    assert envs == {
        "NVIDIA_VISIBLE_DEVICES": card,
        "CUDA_DEVICE_MEMORY_LIMIT_0": f"{12 * FACTOR}m",
        "CUDA_DEVICE_SM_LIMIT": "30",
    }
    uid = api.state.get_pod("default", "vgpu-job")["metadata"]["uid"]
    hook = tmp_path / "hook"
    assert [(m.container_path, m.host_path) for m in by_number.mounts] == [
        (f"{hook}/vgpu/libvgpu.so", f"{hook}/vgpu/libvgpu.so"),
        (f"{hook}/vgpu", f"{hook}/vgpu/containers/{uid}_main"),
        ("/tmp/vgpulock", str(tmp_path / "vgpulock")),
        ("/etc/ld.so.preload", f"{hook}/vgpu/ld.so.preload"),
    ]
    assert (hook / "vgpu" / "containers" / f"{uid}_main").is_dir()

    after = api.state.get_pod("default", "vgpu-job")["metadata"]["annotations"]
    assert after[KEYS.bind_phase] == "success"
    assert "NVIDIA" not in after[str(KEYS.to_allocate)]
    assert not [k for k in after if k.startswith("hami.io/")]
    assert KEYS.node_lock not in _node_annotations(cluster)
