"""Moore Threads pods through hami's scheduling engine, from node capacity to the decision."""

import json
import time
from pathlib import Path
from typing import Any

import pytest
from hami_mthreads import plugin

from hami_core.plugins import VendorRegistry, load_vendors
from hami_core.scheduling.cache import UsageCache
from hami_core.scheduling.engine import Engine
from hami_core.simulate import load_inventory, simulate


@pytest.fixture
def registry() -> VendorRegistry:
    return load_vendors(environ={}, entry_points_=[], plugins=[("mthreads", plugin)])


def node(name: str, cards: int) -> dict[str, Any]:
    """A node as the kubelet reports it with the MT device plugin: 16 core groups and 96 memory
    units (48 GiB) per S4000."""
    capacity = {
        "mthreads.com/sgpu-core": str(16 * cards),
        "mthreads.com/sgpu-memory": str(96 * cards),
    }
    return {"metadata": {"name": name}, "status": {"capacity": capacity, "allocatable": capacity}}


def pod(*containers: dict[str, str]) -> dict[str, Any]:
    return {
        "metadata": {"name": "p", "namespace": "default", "uid": "u"},
        "spec": {
            "containers": [
                {"name": f"c{i}", "resources": {"limits": limits}}
                for i, limits in enumerate(containers)
            ]
        },
    }


def test_both_containers_of_a_pod_land_on_one_card_with_the_mt_plugin_annotations(
    registry: VendorRegistry,
) -> None:
    cache = UsageCache.rebuild(registry, {}, [node("mt-1", 4)], [])
    engine = Engine(registry, {}, cache, gpu_policy="spread")
    share = {
        "mthreads.com/vgpu": "1",
        "mthreads.com/sgpu-memory": "8",
        "mthreads.com/sgpu-core": "4",
    }
    decision = engine.schedule(pod(share, share), ["mt-1"], time.time())
    assert decision.node == "mt-1", decision
    first, second = decision.pod_devices["mthreads"]
    assert [d.uuid for d in first] == [d.uuid for d in second]
    assert [(d.usedmem, d.usedcores) for d in first + second] == [(4096, 4), (4096, 4)]
    index = first[0].uuid.rsplit("-", 1)[1]
    assert decision.annotations["mthreads.com/gpu-index"] == index
    assert decision.annotations["mthreads.com/predicate-node"] == "mt-1"
    assert "hami.io/mthreads-vgpu-devices-to-allocate" not in decision.annotations
    assert decision.annotations["hami.io/mthreads-vgpu-devices-allocated"].count(":") == 2


def test_a_later_container_cannot_leave_the_cards_an_earlier_one_took_whole(
    registry: VendorRegistry,
) -> None:
    cache = UsageCache.rebuild(registry, {}, [node("mt-1", 4)], [])
    engine = Engine(registry, {}, cache)
    whole = {"mthreads.com/vgpu": "2"}
    share = {"mthreads.com/vgpu": "1", "mthreads.com/sgpu-memory": "8"}
    decision = engine.schedule(pod(whole, share), ["mt-1"], time.time())
    assert decision.node is None
    # the two cards the pod holds are full; the two free cards are not the pod's
    assert decision.failed == {"mt-1": "2/4 CardInsufficientMemory, 2/4 CardUuidMismatch"}


def test_an_sgpu_memory_value_outside_the_list_is_a_decision_error(
    registry: VendorRegistry,
) -> None:
    cache = UsageCache.rebuild(registry, {}, [node("mt-1", 1)], [])
    bad = {"mthreads.com/vgpu": "1", "mthreads.com/sgpu-memory": "6"}
    decision = Engine(registry, {}, cache).schedule(pod(bad), ["mt-1"], time.time())
    assert decision.node is None
    assert decision.error is not None and "2, 4, 8, 16, 32, 64, 96" in decision.error


def test_hami_simulate_derives_the_node_capacity_the_mt_plugin_would_advertise(
    registry: VendorRegistry, tmp_path: Path
) -> None:
    cards = {"vendor": "mthreads", "model": "MTT S4000", "memory": 49152, "count": 2}
    inventory = tmp_path / "cluster.yaml"
    inventory.write_text(json.dumps({"nodes": [{"name": "mt-1", "devices": [cards]}]}))
    loaded = load_inventory(str(inventory), registry)
    assert loaded.warnings == []
    [built] = loaded.nodes
    assert built["status"]["capacity"] == {
        "mthreads.com/sgpu-core": "32",
        "mthreads.com/sgpu-memory": "192",
    }
    share = {"mthreads.com/vgpu": "1", "mthreads.com/sgpu-memory": "8"}
    workload = tmp_path / "workload.yaml"
    workload.write_text(json.dumps({"apiVersion": "v1", "kind": "Pod", **pod(share)}))
    [outcome] = simulate(str(inventory), [str(workload)], registry=registry).pods
    assert (outcome.stage, outcome.node) == ("scheduled", "mt-1")
    [[chosen]] = outcome.devices["Mthreads"]
    assert (chosen.usedmem, chosen.uuid.startswith("mt-1-mthreads-")) == (4096, True)
    [container] = outcome.containers
    assert container.env["MTHREADS_VISIBLE_DEVICES"] == chosen.uuid.rsplit("-", 1)[1]
