"""The engine end to end: requests → per-node fit → scores → one decision."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pytest
from sched_kit import (
    NVIDIA,
    STEPS,
    SpecPlugin,
    container,
    make_registry,
    node,
    nvidia_node,
    pod,
)

from hami_core import hookimpl
from hami_core.model import ContainerDevice, DeviceUsage, FitContext, VendorSpec
from hami_core.plugins import VendorRegistry, load_vendors
from hami_core.protocol import ProtocolError, decode_pod_devices
from hami_core.scheduling.cache import UsageCache
from hami_core.scheduling.engine import Decision, Engine

GPU1 = {"nvidia.com/gpu": "1"}


def engine(registry: VendorRegistry, nodes: Sequence[dict[str, Any]], **kw: Any) -> Engine:
    cache = UsageCache.rebuild(registry, {}, nodes, [])
    return Engine(registry, {}, cache, **kw)


def gpu_pod(
    name: str = "p", annotations: dict[str, str] | None = None, **limits: str
) -> dict[str, Any]:
    wanted = {"nvidia.com/" + k.replace("_", "-"): v for k, v in limits.items()} or GPU1
    return pod(name, [container("main", wanted)], annotations=annotations)


def test_a_pod_without_accelerators_passes_through(registry: VendorRegistry) -> None:
    e = engine(registry, [nvidia_node("n1")])
    decision = e.schedule(pod("plain", [container("c", {"cpu": "1"})]), ["n1"], 0.0)
    assert decision == Decision(node=None, passthrough=True)


def test_a_bad_request_is_an_error_not_a_crash(registry: VendorRegistry) -> None:
    e = engine(registry, [nvidia_node("n1")])
    decision = e.schedule(gpu_pod(gpu="1.5"), ["n1"], 0.0)
    assert decision.node is None
    assert decision.error == "container 'main': nvidia.com/gpu: expected a whole number, got 1.5"


def test_bad_scoring_weights_are_an_error(registry: VendorRegistry) -> None:
    e = engine(registry, [nvidia_node("n1")])
    p = gpu_pod(annotations={"hami.io/device-scoring-weights": "slot=1"})
    decision = e.schedule(p, ["n1"], 0.0)
    assert decision.error is not None and "hami.io/device-scoring-weights" in decision.error


def test_the_decision_carries_hamis_annotations(registry: VendorRegistry) -> None:
    e = engine(registry, [nvidia_node("n1", 1)])
    p = pod(
        "p",
        init=[container("setup", {"cpu": "1"})],
        containers=[container("main", {"nvidia.com/gpu": "1", "nvidia.com/gpumem": "3000"})],
    )
    d = e.schedule(p, ["n1"], 1714557600.7)
    assert d.node == "n1"
    assert d.labels == {"hami.io/vgpu-node": "n1"}
    assert d.annotations == {
        "hami.io/vgpu-node": "n1",
        "hami.io/vgpu-time": "1714557600",
        "hami.io/vgpu-devices-to-allocate": ";GPU-n1-0,NVIDIA,3000,0:;",
        "hami.io/vgpu-devices-allocated": ";GPU-n1-0,NVIDIA,3000,0:;",
    }
    assert d.pod_devices == {"nvidia": [[], [ContainerDevice("GPU-n1-0", "NVIDIA", 3000, 0)]]}


def test_unknown_nodes_are_unregistered(registry: VendorRegistry) -> None:
    e = engine(registry, [nvidia_node("n1"), node("plain")])
    d = e.schedule(gpu_pod(), ["ghost", "plain", "n1"], 0.0)
    assert d.node == "n1"
    assert d.failed == {"ghost": "node unregistered", "plain": "node unregistered"}


def test_too_few_cards_is_node_insufficient_device(registry: VendorRegistry) -> None:
    e = engine(registry, [nvidia_node("n1", 2)])
    d = e.schedule(gpu_pod(gpu="3"), ["n1"], 0.0)
    assert d.node is None
    assert d.failed == {"n1": "NodeInsufficientDevice"}


def test_a_node_without_the_vendor_is_insufficient(registry: VendorRegistry) -> None:
    e = engine(registry, [nvidia_node("n1", 2)])
    d = e.schedule(pod("s", [container("c", {"steps.io/vgpu": "1"})]), ["n1"], 0.0)
    assert d.failed == {"n1": "NodeInsufficientDevice"}


def test_card_reasons_use_hamis_format(registry: VendorRegistry) -> None:
    n = nvidia_node("n1", 2, mem=4000, extra={"hami.io/device-cordon": "GPU-n1-0"})
    e = engine(registry, [n])
    d = e.schedule(gpu_pod(gpu="1", gpumem="5000"), ["n1"], 0.0)
    assert d.failed == {"n1": "1/2 CardCordoned, 1/2 CardInsufficientMemory"}


def test_a_malformed_node_fails_with_its_message_and_others_still_schedule(
    registry: VendorRegistry,
) -> None:
    e = engine(registry, [node("bad", {"hami.io/node-nvidia-register": "[]x"}), nvidia_node("ok")])
    d = e.schedule(gpu_pod(), ["bad", "ok"], 0.0)
    assert d.node == "ok"
    assert d.failed["bad"].startswith("nvidia: annotation hami.io/node-nvidia-register:")


def test_an_unhealthy_vendor_offers_nothing(registry: VendorRegistry) -> None:
    e = engine(registry, [nvidia_node("n1", 2)])
    e.cache.mark_vendor_unhealthy("n1", "nvidia")
    assert e.schedule(gpu_pod(), ["n1"], 0.0).failed == {"n1": "NodeInsufficientDevice"}


def test_app_containers_add_up_on_a_card(registry: VendorRegistry) -> None:
    e = engine(registry, [nvidia_node("n1", 1, mem=16000)])
    big = {"nvidia.com/gpu": "1", "nvidia.com/gpumem": "10000"}
    d = e.schedule(pod("p", [container("a", big), container("b", big)]), ["n1"], 0.0)
    assert d.failed == {"n1": "1/1 CardInsufficientMemory"}


def test_init_containers_do_not_add_to_app_containers(registry: VendorRegistry) -> None:
    e = engine(registry, [nvidia_node("n1", 1, mem=16000)])
    big = {"nvidia.com/gpu": "1", "nvidia.com/gpumem": "10000"}
    p = pod("p", [container("app", big)], init=[container("i1", big), container("i2", big)])
    d = e.schedule(p, ["n1"], 0.0)
    assert d.node == "n1"
    assert [len(c) for c in d.pod_devices["nvidia"]] == [1, 1, 1]


def test_one_container_can_use_two_vendors(registry: VendorRegistry) -> None:
    n = nvidia_node("n1", 1)
    n["metadata"]["annotations"]["hami.io/node-steps-register"] = "S0,4,24576,16,MTT S4000,0,true:"
    e = engine(registry, [n])
    limits = {"nvidia.com/gpu": "1", "steps.io/vgpu": "1", "steps.io/sgpu-memory": "8"}
    d = e.schedule(pod("p", [container("c", limits)]), ["n1"], 0.0)
    assert d.node == "n1"
    assert d.pod_devices["steps"] == [[ContainerDevice("S0", "STEPS", 4096, 0)]]
    assert d.annotations["hami.io/steps-devices-allocated"] == "S0,STEPS,4096,0:;"


def test_binpack_nodes_fill_the_busiest_node(registry: VendorRegistry) -> None:
    e = engine(registry, [nvidia_node("a", 2), nvidia_node("b", 2)])
    first = e.schedule(gpu_pod("p1", gpumem="1000", gpu="1"), ["a", "b"], 0.0, reserve=True)
    second = e.schedule(gpu_pod("p2", gpumem="1000", gpu="1"), ["a", "b"], 1.0, reserve=True)
    assert (first.node, second.node) == ("a", "a")
    assert second.scores["a"] > second.scores["b"] == 0


def test_spread_nodes_share_the_load(registry: VendorRegistry) -> None:
    e = engine(registry, [nvidia_node("a", 2), nvidia_node("b", 2)], node_policy="spread")
    nodes = [
        e.schedule(gpu_pod(f"p{i}", gpumem="1000", gpu="1"), ["a", "b"], 0.0, reserve=True).node
        for i in range(4)
    ]
    assert nodes == ["a", "b", "a", "b"]


def test_the_pod_can_ask_for_its_node_policy(registry: VendorRegistry) -> None:
    e = engine(registry, [nvidia_node("a", 2), nvidia_node("b", 2)])
    e.schedule(gpu_pod("p1", gpumem="1000", gpu="1"), ["a", "b"], 0.0, reserve=True)
    spread = {"hami.io/node-scheduler-policy": "spread"}
    d = e.schedule(gpu_pod("p2", spread, gpumem="1000", gpu="1"), ["a", "b"], 0.0)
    assert d.node == "b"


def test_an_invalid_pod_policy_keeps_the_default(registry: VendorRegistry) -> None:
    e = engine(registry, [nvidia_node("a", 2), nvidia_node("b", 2)])
    e.schedule(gpu_pod("p1", gpumem="1000", gpu="1"), ["a", "b"], 0.0, reserve=True)
    odd = {"hami.io/node-scheduler-policy": "sideways", "hami.io/gpu-scheduler-policy": "x"}
    assert e.schedule(gpu_pod("p2", odd, gpumem="1000", gpu="1"), ["a", "b"], 0.0).node == "a"


def test_gpu_policy_picks_the_card(registry: VendorRegistry) -> None:
    e = engine(registry, [nvidia_node("a", 3)])
    e.schedule(gpu_pod("p1", gpumem="1000", gpu="1"), ["a"], 0.0, reserve=True)  # takes GPU-a-2
    spread = e.schedule(gpu_pod("p2", gpumem="1000", gpu="1"), ["a"], 0.0)
    binpack = e.schedule(
        gpu_pod("p3", {"hami.io/gpu-scheduler-policy": "binpack"}, gpumem="1000", gpu="1"),
        ["a"],
        0.0,
    )
    assert spread.pod_devices["nvidia"][0][0].uuid == "GPU-a-1"
    assert binpack.pod_devices["nvidia"][0][0].uuid == "GPU-a-2"


def test_exclusive_pods_take_idle_cards(registry: VendorRegistry) -> None:
    e = engine(registry, [nvidia_node("a", 2)])
    for i in range(2):
        d = e.schedule(gpu_pod(f"x{i}", gpu="1", gpucores="100"), ["a"], 0.0, reserve=True)
        assert d.node == "a"
    d = e.schedule(gpu_pod("x3", gpu="1", gpucores="100"), ["a"], 0.0)
    assert d.failed == {"a": "2/2 CardInsufficientMemory"}  # whole memory, whole cores


def test_topology_aware_uses_the_nodes_pair_scores(registry: VendorRegistry) -> None:
    pairs = [
        {"uuid": "GPU-a-0", "score": {"GPU-a-1": 60, "GPU-a-2": 200, "GPU-a-3": 20}},
        {"uuid": "GPU-a-1", "score": {"GPU-a-0": 60, "GPU-a-2": 20, "GPU-a-3": 200}},
        {"uuid": "GPU-a-2", "score": {"GPU-a-0": 200, "GPU-a-1": 20, "GPU-a-3": 60}},
        {"uuid": "GPU-a-3", "score": {"GPU-a-0": 20, "GPU-a-1": 200, "GPU-a-2": 60}},
    ]
    n = nvidia_node("a", 4, extra={"hami.io/node-nvidia-score": json.dumps(pairs)})
    e = engine(registry, [n], gpu_policy="topology-aware")
    d = e.schedule(gpu_pod(gpu="2", gpumem="1000"), ["a"], 0.0)
    assert sorted(c.uuid for c in d.pod_devices["nvidia"][0]) == ["GPU-a-1", "GPU-a-3"]


def test_reserve_counts_the_decision_and_a_dry_run_does_not(registry: VendorRegistry) -> None:
    e = engine(registry, [nvidia_node("a", 1, mem=10000)])
    before = e.cache.snapshot()
    e.schedule(gpu_pod("dry", gpumem="6000", gpu="1"), ["a"], 0.0)
    assert e.cache.snapshot() == before
    assert e.schedule(gpu_pod("p1", gpumem="6000", gpu="1"), ["a"], 0.0, reserve=True).node == "a"
    d = e.schedule(gpu_pod("p2", gpumem="6000", gpu="1"), ["a"], 0.0)
    assert d.failed == {"a": "1/1 CardInsufficientMemory"}


def test_a_refiltered_pod_is_not_counted_against_itself(registry: VendorRegistry) -> None:
    e = engine(registry, [nvidia_node("a", 1, mem=10000)])
    p = gpu_pod("p1", gpumem="6000", gpu="1")
    first = e.schedule(p, ["a"], 0.0, reserve=True)
    again = e.schedule(p, ["a"], 1.0, reserve=True)
    assert again.node == "a"
    p["metadata"]["annotations"].update(first.annotations)
    e.cache.upsert_pod(p)  # the patched pod arrives; still counted once
    assert e.schedule(p, ["a"], 2.0).node == "a"
    assert e.cache.snapshot().nodes["a"].vendors["nvidia"] == (("GPU-a-0", 1, 6000, 0),)


def test_reservations_expire_when_the_pod_never_arrives(registry: VendorRegistry) -> None:
    e = engine(registry, [nvidia_node("a", 1, mem=10000)])
    e.cache.reservation_ttl = 30
    e.schedule(gpu_pod("p1", gpumem="6000", gpu="1"), ["a"], 0.0, reserve=True)
    assert e.schedule(gpu_pod("p2", gpumem="6000", gpu="1"), ["a"], 29.0, reserve=True).node is None
    assert e.schedule(gpu_pod("p2", gpumem="6000", gpu="1"), ["a"], 31.0, reserve=True).node == "a"


def test_reserved_annotations_decode_to_the_decision(registry: VendorRegistry) -> None:
    e = engine(registry, [nvidia_node("a", 2)])
    p = pod(
        "p",
        [
            container("a", {"nvidia.com/gpu": "2", "nvidia.com/gpumem": "100"}),
            container("b", {"cpu": "1"}),
        ],
    )
    d = e.schedule(p, ["a"], 0.0)
    decoded = decode_pod_devices(d.annotations["hami.io/vgpu-devices-allocated"])
    assert decoded[:-1] == d.pod_devices["nvidia"]


class Preferring(SpecPlugin):
    """NVIDIA that strongly prefers node `b` (a policy-neutral vendor term)."""

    def __init__(self) -> None:
        super().__init__(NVIDIA)

    @hookimpl
    def hami_score_node(
        self,
        spec: VendorSpec,
        devices: Sequence[DeviceUsage],
        containers: Sequence[Sequence[ContainerDevice]],
        context: FitContext,
    ) -> float | None:
        return 1000.0 if context.node.name == "b" else 0.0


@pytest.mark.parametrize("policy", ["binpack", "spread"])
def test_vendor_node_scores_are_flipped_under_spread(policy: str) -> None:
    registry = load_vendors(environ={}, entry_points_=[], plugins=[("nvidia", Preferring())])
    e = engine(registry, [nvidia_node("a", 2), nvidia_node("b", 2)], node_policy=policy)
    d = e.schedule(gpu_pod(gpumem="1000", gpu="1"), ["a", "b"], 0.0)
    assert d.node == "b"


class Broken(SpecPlugin):
    """A vendor whose fit raises."""

    def __init__(self) -> None:
        super().__init__(STEPS)

    @hookimpl
    def hami_allocate(self, spec: VendorSpec, request: Any, devices: Any, context: Any) -> Any:
        raise RuntimeError("driver table missing")


def test_a_broken_vendor_fails_the_node_not_the_scheduler() -> None:
    registry = load_vendors(environ={}, entry_points_=[], plugins=[("steps", Broken())])
    n = node("s", {"hami.io/node-steps-register": "S0,4,24576,16,MTT S4000,0,true:"})
    e = engine(registry, [n])
    d = e.schedule(pod("p", [container("c", {"steps.io/vgpu": "1"})]), ["s"], 0.0)
    assert d.failed == {"s": "steps: allocate failed: driver table missing"}


def test_unknown_policies_are_refused_at_construction(registry: VendorRegistry) -> None:
    with pytest.raises(ProtocolError):
        engine(registry, [], gpu_policy="greedy")


def test_whole_card_vendor_through_the_engine() -> None:
    registry = make_registry()
    cards = '[{"id":"W0","count":1,"devmem":100,"devcore":100,"type":"WC","health":true}]'
    e = engine(registry, [node("w", {"hami.io/node-wcard-register": cards})])
    one = pod("p1", [container("c", {"example.com/card": "1"})])
    assert e.schedule(one, ["w"], 0.0, reserve=True).pod_devices == {
        "wcard": [[ContainerDevice("W0", "WCARD", 100, 100)]]
    }
    two = pod("p2", [container("c", {"example.com/card": "1"})])
    assert e.schedule(two, ["w"], 0.0).failed == {"w": "1/1 CardTimeSlicingExhausted"}


def test_a_bad_device_config_is_an_error(registry: VendorRegistry) -> None:
    cache = UsageCache.rebuild(registry, {}, [nvidia_node("n1")], [])
    e = Engine(registry, {"nvidia": {"defaultMemory": "lots"}}, cache)
    decision = e.schedule(gpu_pod(), ["n1"], 0.0)
    assert decision.node is None
    assert decision.error is not None and "defaultMemory" in decision.error


def test_a_malformed_pod_is_an_error(registry: VendorRegistry) -> None:
    e = engine(registry, [nvidia_node("n1")])
    decision = e.schedule({"spec": {"containers": {"oops": 1}}}, ["n1"], 0.0)
    assert decision.error == "spec.containers: expected a list"


def test_non_string_pin_annotations_do_not_crash(registry: VendorRegistry) -> None:
    e = engine(registry, [nvidia_node("n1")])
    p = gpu_pod(annotations={"nvidia.com/use-gputype": 7})  # type: ignore[dict-item]
    assert e.schedule(p, ["n1"], 0.0).node == "n1"
