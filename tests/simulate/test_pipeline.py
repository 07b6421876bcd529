"""The steps around the engine: kube-scheduler's own filters, other schedulers, a failed
Allocate, and the progress callback."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from hami_core.plugins import VendorRegistry
from hami_core.simulate import (
    PodOutcome,
    SimulationResult,
    Simulator,
    load_inventory,
    load_workloads,
    simulate,
)

CLUSTER = {
    "nodes": [
        {
            "name": "gpu-a",
            "labels": {"pool": "train"},
            "devices": [{"vendor": "nvidia", "model": "NVIDIA A10", "memory": 24576, "count": 2}],
        },
        {
            "name": "gpu-b",
            "labels": {"pool": "infer"},
            "devices": [{"vendor": "nvidia", "model": "NVIDIA A10", "memory": 24576, "count": 2}],
        },
        {
            "name": "mlu-a",
            "devices": [{"vendor": "cambricon", "model": "MLU370-X8", "memory": 24576}],
        },
        {
            "name": "dcu-a",
            "devices": [{"vendor": "hygon", "model": "DCU-Z999", "memory": 16384}],
        },
    ]
}


def pod(name: str, limits: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {"containers": [{"name": "c", "resources": {"limits": limits}}], **spec},
    }


def run(tmp_path: Path, registry: VendorRegistry, *pods: dict[str, Any]) -> SimulationResult:
    cluster = tmp_path / "cluster.yaml"
    cluster.write_text(yaml.safe_dump(CLUSTER))
    workload = tmp_path / "workload.yaml"
    workload.write_text(yaml.safe_dump_all(pods))
    return simulate(str(cluster), [str(workload)], registry=registry)


def by_name(result: SimulationResult) -> dict[str, PodOutcome]:
    return {p.name: p for p in result.pods}


def test_node_selector_narrows_the_candidates(tmp_path: Path, registry: VendorRegistry) -> None:
    gpu = {"nvidia.com/gpu": 1, "nvidia.com/gpumem": 1000}
    result = by_name(
        run(
            tmp_path,
            registry,
            pod("picky", gpu, nodeSelector={"pool": "infer"}),
            pod("nowhere", gpu, nodeSelector={"pool": "batch"}),
        )
    )
    assert result["picky"].node == "gpu-b"
    nowhere = result["nowhere"]
    assert nowhere.stage == "unschedulable"
    assert set(nowhere.failed.values()) == {"node(s) didn't match Pod's node affinity/selector"}


def test_kube_scheduler_counts_cambricon_vcore_itself(
    tmp_path: Path, registry: VendorRegistry
) -> None:
    whole = {"cambricon.com/vmlu": 1, "cambricon.com/mlu.smlu.vcore": 100}
    result = by_name(run(tmp_path, registry, pod("first", whole), pod("second", whole)))
    assert result["first"].node == "mlu-a"
    second = result["second"]
    assert second.stage == "unschedulable"
    assert second.failed["mlu-a"] == "Insufficient cambricon.com/mlu.smlu.vcore"
    assert second.failed["gpu-a"] == "Insufficient cambricon.com/mlu.smlu.vcore"


def test_a_cordoned_node_takes_nothing(tmp_path: Path, registry: VendorRegistry) -> None:
    snapshot = {
        "apiVersion": "v1",
        "kind": "List",
        "items": [
            {
                "apiVersion": "v1",
                "kind": "Node",
                "metadata": {
                    "name": "gpu-x",
                    "annotations": {
                        "hami.io/node-nvidia-register": '[{"id":"GPU-x","count":10,"devmem":'
                        '16384,"devcore":100,"type":"NVIDIA-Tesla T4","health":true}]'
                    },
                },
                "spec": {"unschedulable": True},
            }
        ],
    }
    inventory = tmp_path / "snapshot.yaml"
    inventory.write_text(yaml.safe_dump(snapshot))
    workload = tmp_path / "workload.yaml"
    workload.write_text(yaml.safe_dump(pod("p", {"nvidia.com/gpu": 1})))
    [outcome] = simulate(str(inventory), [str(workload)], registry=registry).pods
    assert outcome.failed == {"gpu-x": "node(s) were unschedulable"}


def test_pods_for_another_scheduler_are_left_alone(
    tmp_path: Path, registry: VendorRegistry
) -> None:
    result = by_name(
        run(tmp_path, registry, pod("other", {"nvidia.com/gpu": 1}, schedulerName="volcano"))
    )
    assert result["other"].stage == "skipped"
    assert result["other"].reason == "left to its own scheduler 'volcano'"


def test_a_refused_allocate_fails_the_pod_and_frees_its_card(
    tmp_path: Path, registry: VendorRegistry
) -> None:
    # A vDCU slice masks the card's compute units; for a model hami does not know, the
    # device plugin refuses the slice until the config names them.
    slice_ = {"hygon.com/dcunum": 1, "hygon.com/dcumem": 4096, "hygon.com/dcucores": 30}
    result = run(tmp_path, registry, pod("slice", slice_))
    [outcome] = result.pods
    assert (outcome.stage, outcome.node) == ("allocate-failed", "dcu-a")
    assert outcome.reason is not None
    assert outcome.reason.startswith("Allocate failed: ")
    assert "compute units unknown" in outcome.reason
    assert outcome.devices["DCU"][0][0].usedmem == 4096
    assert [c.used for c in result.nodes["dcu-a"]] == [0]


def test_a_cambricon_slice_is_simulated_without_an_smlu_instance(
    tmp_path: Path, registry: VendorRegistry
) -> None:
    slice_ = {"cambricon.com/vmlu": 1, "cambricon.com/mlu.smlu.vmemory": 8}
    [outcome] = run(tmp_path, registry, pod("slice", slice_)).pods
    assert (outcome.stage, outcome.node) == ("scheduled", "mlu-a")
    assert outcome.devices["MLU"][0][0].usedmem == 8 * 256


def test_progress_is_reported_after_each_pod(tmp_path: Path, registry: VendorRegistry) -> None:
    cluster = tmp_path / "cluster.yaml"
    cluster.write_text(yaml.safe_dump(CLUSTER))
    workload = tmp_path / "workload.yaml"
    workload.write_text(
        yaml.safe_dump_all(
            [pod(f"p{i}", {"nvidia.com/gpu": 1, "nvidia.com/gpumem": 100}) for i in range(3)]
        )
    )
    seen: list[str] = []
    simulator = Simulator(registry, {}, load_inventory(str(cluster), registry))
    simulator.run(load_workloads([str(workload)]), lambda outcome: seen.append(outcome.name))
    assert seen == ["p0", "p1", "p2"]
