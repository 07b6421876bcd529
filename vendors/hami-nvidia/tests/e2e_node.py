"""One NVIDIA node end to end, run as a script in a fresh interpreter by test_e2e.py.

The real `nvidia-ml-py` discovers whatever `libnvidia-ml.so.1` the dynamic loader finds (the
test points `LD_LIBRARY_PATH` at the compiled fake); hami's node agent registers the cards, its
device plugin serves `nvidia.com/gpu` to a fake kubelet over gRPC, and a pod the scheduler
placed (two containers sharing the first card) is allocated container by container.

Usage: python e2e_node.py '<device config as JSON>'   → prints a JSON report on stdout.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

from hami_nvidia import plugin

from hami_core.deviceplugin.node import DevicePluginNode
from hami_core.k8s.memory import MemoryCluster
from hami_core.nodelock import lock_node
from hami_core.plugins import load_vendors
from hami_core.protocol import ContainerDevice, encode_pod_devices
from hami_core.protocol.keys import ASSIGNED_NODE, BIND_PHASE, BIND_TIME, NODE_LOCK
from hami_core.testing.fake_kubelet import FakeKubelet

NODE = "gpu-node"
RESOURCE = "nvidia.com/gpu"


def container(name: str, **env: str) -> dict[str, Any]:
    """A container asking for one NVIDIA GPU."""
    return {
        "name": name,
        "image": "cuda",
        "resources": {"limits": {RESOURCE: "1"}},
        "env": [{"name": k, "value": v} for k, v in env.items()],
    }


def response(r: Any) -> dict[str, Any]:
    """A ContainerAllocateResponse as plain JSON."""
    return {
        "envs": dict(r.envs),
        "mounts": [[m.container_path, m.host_path, m.read_only] for m in r.mounts],
        "devices": [d.container_path for d in r.devices],
    }


def main(config: dict[str, Any]) -> dict[str, Any]:
    """Run the node, place and allocate the pod, and report what everyone saw."""
    cluster = MemoryCluster()
    cluster.add_node({"apiVersion": "v1", "kind": "Node", "metadata": {"name": NODE}})
    registry = load_vendors(environ={}, entry_points_=[], plugins=[("nvidia", plugin)])
    spec = registry.spec("nvidia")
    with FakeKubelet() as kubelet:
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
            kubelet.wait_registered(RESOURCE)
            listed = kubelet.wait_devices(RESOURCE, lambda ds: len(ds) == 30)
            first_card = sorted(d.id for d in listed)[0].rsplit("-", 1)[0]
            shares = [
                [ContainerDevice(first_card, spec.common_word, 3000, 30)],
                [ContainerDevice(first_card, spec.common_word, 5000, 30)],
            ]
            decision = encode_pod_devices(shares)
            assert spec.annotations.to_allocate is not None
            pod = cluster.add_pod(
                {
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "metadata": {
                        "name": "train",
                        "namespace": "default",
                        "annotations": {
                            ASSIGNED_NODE: NODE,
                            spec.annotations.to_allocate: decision,
                            spec.annotations.allocated: decision,
                        },
                    },
                    "spec": {
                        "nodeName": NODE,
                        "containers": [
                            container("main"),
                            container("sidecar", CUDA_DISABLE_CONTROL="true"),
                        ],
                    },
                    "status": {"phase": "Pending"},
                }
            )
            lock_node(cluster, NODE, "default", "train")
            cluster.patch_pod_metadata(
                "default",
                "train",
                annotations={BIND_PHASE: "allocating", BIND_TIME: str(int(time.time()))},
            )
            ids = [d.id for d in listed if d.id.startswith(first_card + "-")]
            first = kubelet.allocate(RESOURCE, ids[:1])
            second = kubelet.allocate(RESOURCE, ids[1:2])
            after = cluster.get_pod("default", "train")["metadata"]["annotations"]
            node_annotations = cluster.get_node(NODE)["metadata"].get("annotations") or {}
            return {
                "pod_uid": pod["metadata"]["uid"],
                "first_card": first_card,
                "kubelet_devices": [[d.id, d.healthy] for d in listed],
                "node_annotations": node_annotations,
                "responses": [response(first), response(second)],
                "bind_phase": after.get(BIND_PHASE),
                "locked": NODE_LOCK in node_annotations,
            }
        finally:
            node.stop()


if __name__ == "__main__":
    print(json.dumps(main(json.loads(sys.argv[1]))))
