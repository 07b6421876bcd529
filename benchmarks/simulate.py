"""`hami simulate` at cluster scale, against the bare scheduling engine in the same run.

Builds an inventory of N nodes with G NVIDIA A100-80GB cards each (the shorthand, offered
through the installed NVIDIA vendor plugin) and a workload of P pods in four shapes (small
shares, half cards, whole cards by the webhook's exclusive default, two-card shares), then:

* simulate: `hami simulate`'s pipeline — read both files, then every pod through the
  scheduler's webhook, the extender's filter over all N nodes and bind, and the device
  plugin's Allocate, against a `MemoryCluster`;
* baseline: only what any placement needs — `Engine.schedule(..., reserve=True)` over the same
  nodes for the same pods, with the decision fed back to the usage cache.

Prints the time of each, the pods placed by each, and the ratio simulate / baseline (what the
services' own admission, bind and Allocate code costs on top of the placement itself).

Run: `python benchmarks/simulate.py [--nodes 1000] [--cards 8] [--pods 10000]`.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from typing import Any

import yaml

from hami_core.plugins import VendorRegistry, load_vendors
from hami_core.scheduler.decisions import decision_keys, usage_view
from hami_core.scheduling.cache import UsageCache
from hami_core.scheduling.engine import Engine
from hami_core.simulate import Simulator, load_inventory, load_workloads

SHAPES: tuple[tuple[str, float, dict[str, int]], ...] = (
    ("infer", 0.60, {"nvidia.com/gpu": 1, "nvidia.com/gpumem": 8000, "nvidia.com/gpucores": 10}),
    ("half", 0.25, {"nvidia.com/gpu": 1, "nvidia.com/gpumem": 40000, "nvidia.com/gpucores": 50}),
    ("whole", 0.10, {"nvidia.com/gpu": 1}),
    ("pair", 0.05, {"nvidia.com/gpu": 2, "nvidia.com/gpumem": 20000, "nvidia.com/gpucores": 25}),
)


def inventory(nodes: int, cards: int) -> dict[str, Any]:
    """N identical nodes of `cards` A100-80GB, spread over four zones."""
    return {
        "nodes": [
            {
                "name": f"gpu-{i:04d}",
                "labels": {"topology.kubernetes.io/zone": f"zone-{i % 4}"},
                "devices": [
                    {
                        "vendor": "nvidia",
                        "model": "NVIDIA A100-SXM4-80GB",
                        "memory": 81920,
                        "count": cards,
                    }
                ],
            }
            for i in range(nodes)
        ]
    }


def workload(pods: int) -> list[dict[str, Any]]:
    """One Deployment per shape, replicas in the shape's share of `pods`."""
    out = []
    left = pods
    for i, (name, share, limits) in enumerate(SHAPES):
        replicas = left if i == len(SHAPES) - 1 else round(pods * share)
        left -= replicas
        out.append(
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": name, "namespace": "bench"},
                "spec": {
                    "replicas": replicas,
                    "template": {
                        "spec": {
                            "containers": [
                                {"name": "main", "image": "x", "resources": {"limits": limits}}
                            ]
                        }
                    },
                },
            }
        )
    return out


def run_simulate(registry: VendorRegistry, inv_path: str, wl_path: str) -> tuple[float, int]:
    """Seconds for the whole pipeline (files read included) and the pods it placed."""
    started = time.perf_counter()
    inv = load_inventory(inv_path, registry)
    pods = load_workloads([wl_path])
    result = Simulator(registry, {}, inv).run(pods)
    elapsed = time.perf_counter() - started
    return elapsed, result.counts().get("scheduled", 0)


def run_baseline(registry: VendorRegistry, inv_path: str, wl_path: str) -> tuple[float, int]:
    """Seconds for placement alone (engine + usage cache) and the pods it placed."""
    inv = load_inventory(inv_path, registry)
    pods = load_workloads([wl_path])
    started = time.perf_counter()
    cache = UsageCache(registry, {})
    for node in inv.nodes:
        cache.upsert_node(node)
    engine = Engine(registry, {}, cache)
    keys = decision_keys(registry.specs())
    names = sorted(n["metadata"]["name"] for n in inv.nodes)
    placed = 0
    now = 1_735_689_600.0
    for item in pods:
        now += 1
        decision = engine.schedule(item.pod, names, now, reserve=True)
        if decision.node is None:
            continue
        placed += 1
        pod = dict(item.pod)
        pod["metadata"] = {**pod["metadata"], "annotations": decision.annotations}
        pod["spec"] = {**pod["spec"], "nodeName": decision.node}
        pod["status"] = {"phase": "Running"}
        cache.upsert_pod(usage_view(pod, keys))
    return time.perf_counter() - started, placed


def main(argv: list[str] | None = None) -> int:
    """Run both and print the comparison."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--cards", type=int, default=8)
    parser.add_argument("--pods", type=int, default=10000)
    args = parser.parse_args(argv)
    registry = load_vendors(environ={})
    if "nvidia" not in registry.vendors:
        print("the hami-nvidia vendor is not installed", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        inv_path = os.path.join(tmp, "cluster.yaml")
        wl_path = os.path.join(tmp, "workload.yaml")
        with open(inv_path, "w", encoding="utf-8") as f:
            yaml.safe_dump(inventory(args.nodes, args.cards), f)
        with open(wl_path, "w", encoding="utf-8") as f:
            yaml.safe_dump_all(workload(args.pods), f)
        print(
            f"cluster: {args.nodes} nodes x {args.cards} A100-80GB; workload: {args.pods} pods",
            flush=True,
        )
        sim_s, sim_placed = run_simulate(registry, inv_path, wl_path)
        print(
            f"simulate: {sim_s:8.1f} s  {sim_placed} pods placed  "
            f"({sim_s / max(1, args.pods) * 1000:.2f} ms per pod)",
            flush=True,
        )
        base_s, base_placed = run_baseline(registry, inv_path, wl_path)
        print(
            f"baseline: {base_s:8.1f} s  {base_placed} pods placed  "
            f"({base_s / max(1, args.pods) * 1000:.2f} ms per pod, engine + cache only)",
            flush=True,
        )
    print(f"ratio simulate / baseline: {sim_s / base_s:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
