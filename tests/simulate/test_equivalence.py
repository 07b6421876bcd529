"""`hami simulate` decides as the scheduler service does: the same snapshot and workload, once
through the simulator and once through the real service over HTTP (the apiserver's
AdmissionReview, kube-scheduler's filter and bind, the device plugin's Allocate), give the same
node, the same cards and shares, and the same per-node reasons for every pod."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import httpx
import jsonpatch
import yaml
from sim_kit import SNAPSHOT

from hami_core.deviceplugin.allocate import Allocator, pending_entries
from hami_core.plugins import VendorRegistry
from hami_core.protocol.keys import ASSIGNED_NODE
from hami_core.scheduler import SchedulerService, SchedulerSettings
from hami_core.simulate import load_inventory, load_workloads, simulate
from hami_core.testing import FakeApiServer

Obj = dict[str, Any]
Decision = tuple[str, str | None, Any]


def _limits(**values: int) -> Obj:
    return {"limits": {f"nvidia.com/{k}": v for k, v in values.items()}}


def _pod(name: str, annotations: dict[str, str] | None = None, **limits: int) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "team", "annotations": annotations or {}},
        "spec": {"containers": [{"name": "main", "image": "x", "resources": _limits(**limits)}]},
    }


WORKLOAD = [
    {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "infer", "namespace": "team"},
        "spec": {
            "replicas": 7,
            "template": {
                "spec": {
                    "containers": [
                        {
                            "name": "s",
                            "image": "x",
                            "resources": _limits(gpu=1, gpumem=6000, gpucores=30),
                        }
                    ]
                }
            },
        },
    },
    _pod("pair", gpu=2, gpumem=10000, gpucores=25),
    _pod("whole", gpu=1),
    _pod("spread-me", {"hami.io/node-scheduler-policy": "spread"}, gpu=1, gpumem=2000),
    _pod(
        "packed", {"hami.io/gpu-scheduler-policy": "binpack"}, **{"gpu": 1, "gpumem-percentage": 30}
    ),
    _pod("t4-only", {"nvidia.com/use-gputype": "T4"}, gpu=1, gpumem=12000),
    _pod("too-big", gpu=1, gpumem=50000),
    _pod("a100-only", {"nvidia.com/use-gputype": "A100"}, gpu=2, gpumem=30000),
    _pod("no-gpu-left", gpu=4),
]


def _review(pod: Obj) -> Obj:
    group = {"group": "", "version": "v1", "kind": "Pod"}
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": f"review-{pod['metadata']['name']}",
            "kind": group,
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "namespace": pod["metadata"]["namespace"],
            "operation": "CREATE",
            "object": pod,
        },
    }


def _devices(registry: VendorRegistry, pod: Obj) -> dict[str, list[list[tuple[str, int, int]]]]:
    annotations = pod["metadata"].get("annotations") or {}
    out = {}
    for spec in registry.specs():
        value = annotations.get(spec.annotations.allocated)
        if value is not None:
            out[spec.common_word] = [
                [(d.uuid, d.usedmem, d.usedcores) for d in c] for c in pending_entries(value)
            ]
    return out


def _through_the_service(
    http: httpx.Client, api: FakeApiServer, registry: VendorRegistry, pod: Obj, nodes: list[str]
) -> Decision:
    """One pod as the apiserver, kube-scheduler and the kubelet's device plugin drive it."""
    key = f"{pod['metadata']['namespace']}/{pod['metadata']['name']}"
    response = http.post("/webhook", json=_review(pod)).json()["response"]
    if not response["allowed"]:
        return key, None, response["status"]["message"]
    if "patch" in response:
        pod = jsonpatch.apply_patch(pod, json.loads(base64.b64decode(response["patch"])))
    namespace = pod["metadata"]["namespace"]
    created = api.state.create("pods", pod, namespace=namespace)
    name = created["metadata"]["name"]
    answer = http.post("/filter", json={"Pod": created, "Nodes": None, "NodeNames": nodes}).json()
    assert answer["Error"] == ""
    if not answer["NodeNames"]:
        return key, None, answer["FailedNodes"]
    [node] = answer["NodeNames"]
    decided = api.state.get_pod(namespace, name)
    assert decided["metadata"]["annotations"][ASSIGNED_NODE] == node
    bind = {
        "PodName": name,
        "PodNamespace": namespace,
        "PodUID": created["metadata"]["uid"],
        "Node": node,
    }
    assert http.post("/bind", json=bind).json() == {"Error": ""}
    allocator = Allocator(api.kube_cluster(request_timeout=5.0), registry, node)
    for spec in registry.specs():
        value = decided["metadata"]["annotations"].get(spec.annotations.allocated)
        for devices in pending_entries(value) if value else []:
            if devices:
                allocator.allocate(spec, [[f"{d.uuid}-{i}" for i, d in enumerate(devices)]])
    running = api.state.get_pod(namespace, name)
    api.state.update_status(
        "pods", name, {**running.get("status", {}), "phase": "Running"}, namespace=namespace
    )
    return key, node, _devices(registry, decided)


def test_simulate_and_the_scheduler_service_decide_alike(
    tmp_path: Path, registry: VendorRegistry
) -> None:
    workload = tmp_path / "workload.yaml"
    workload.write_text(yaml.safe_dump_all(WORKLOAD))
    simulated = simulate(SNAPSHOT, [str(workload)], registry=registry)
    expected: list[Decision] = []
    for p in simulated.pods:
        if p.stage == "scheduled":
            devices = {
                w: [[(d.uuid, d.usedmem, d.usedcores) for d in c] for c in cs]
                for w, cs in p.devices.items()
            }
            expected.append((p.key, p.node, devices))
        elif p.stage == "unschedulable":
            expected.append((p.key, None, dict(p.failed)))
        else:
            raise AssertionError(f"unexpected stage for {p.key}: {p.stage} ({p.reason})")
    assert sum(1 for _, node, _ in expected if node) >= 8
    assert sum(1 for _, node, _ in expected if node is None) >= 2

    inventory = load_inventory(SNAPSHOT, registry)
    nodes = sorted(n["metadata"]["name"] for n in inventory.nodes)
    served: list[Decision] = []
    with FakeApiServer() as api:
        for node in inventory.nodes:
            api.state.add_node(node)
        for running in inventory.pods:
            api.state.add_pod(running)
        cluster = api.kube_cluster(request_timeout=5.0, watch_timeout_seconds=30)
        service = SchedulerService(cluster, registry, {}, SchedulerSettings(identity="equivalence"))
        service.start()
        server = service.serve_in_thread()
        try:
            assert service.informer.wait_synced(10)
            with httpx.Client(base_url=server.url, timeout=10) as http:
                for item in load_workloads([str(workload)]):
                    served.append(_through_the_service(http, api, registry, item.pod, nodes))
        finally:
            server.stop()
            service.stop()
    assert served == expected
