"""Property: the engine's per-node memo of whole-node answers never changes a decision.

Two engines over two caches receive the same stream of events (pods scheduled with a
reservation, their annotations arriving, pods deleted, cards cordoned and uncordoned, a vendor
marked unhealthy and healthy again); one keeps its memo across the stream, the other forgets it
before every call. Every decision must be the same, with the same refused nodes and scores.
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sched_kit import container, make_registry, nvidia_node, pod

from hami_core.scheduling.cache import UsageCache
from hami_core.scheduling.engine import Decision, Engine

REGISTRY = make_registry()
NODES = ["n0", "n1", "n2"]

shapes = st.sampled_from(
    [
        {"nvidia.com/gpu": "1", "nvidia.com/gpumem": "3000"},
        {"nvidia.com/gpu": "1", "nvidia.com/gpumem": "6000", "nvidia.com/gpucores": "50"},
        {"nvidia.com/gpu": "2", "nvidia.com/gpumem-percentage": "50"},
    ]
)
extras = st.sampled_from(
    [{}, {"nvidia.com/use-gputype": "A100"}, {"hami.io/node-scheduler-policy": "spread"}]
)
events = st.lists(
    st.one_of(
        st.tuples(st.just("schedule"), shapes, extras, st.booleans()),  # bool: the patch arrives
        st.tuples(st.just("delete"), st.integers(0, 30)),
        st.tuples(st.just("cordon"), st.sampled_from(NODES), st.sampled_from(["", "0", "1"])),
        st.tuples(st.just("health"), st.sampled_from(NODES), st.booleans()),
    ),
    min_size=1,
    max_size=30,
)


def node_obj(name: str, cordon: str) -> dict[str, Any]:
    extra = {"hami.io/device-cordon": f"GPU-{name}-{cordon}"} if cordon else {}
    return nvidia_node(name, 2, mem=16000, split=3, extra=extra)


def comparable(d: Decision) -> tuple[Any, ...]:
    return (d.node, d.pod_devices, d.failed, d.scores, d.error)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(stream=events)
def test_memoised_answers_equal_fresh_ones(stream: list[tuple[Any, ...]]) -> None:
    caches = [UsageCache(REGISTRY, {}) for _ in range(2)]
    for cache in caches:
        for name in NODES:
            cache.upsert_node(node_obj(name, ""))
    kept, fresh = (Engine(REGISTRY, {}, cache) for cache in caches)
    scheduled: list[dict[str, Any]] = []
    for n, event in enumerate(stream):
        now = float(n)
        if event[0] == "schedule":
            _, limits, annotations, arrives = event
            p = pod(f"p{n}", [container("main", limits)], annotations=annotations)
            for state in map(fresh.cache.node, NODES):
                assert state is not None
                state.fits.clear()
            got = kept.schedule(p, NODES, now, reserve=True)
            want = fresh.schedule(p, NODES, now, reserve=True)
            assert comparable(got) == comparable(want), event
            if got.node is not None and arrives:
                p["metadata"]["annotations"].update(got.annotations)
                p["spec"]["nodeName"] = got.node
                scheduled.append(p)
                for cache in caches:
                    cache.upsert_pod(p)
        elif event[0] == "delete" and scheduled:
            gone = scheduled.pop(event[1] % len(scheduled))
            for cache in caches:
                cache.remove_pod("default", gone["metadata"]["name"])
        elif event[0] == "cordon":
            for cache in caches:
                cache.upsert_node(node_obj(event[1], event[2]))
        elif event[0] == "health":
            for cache in caches:
                if event[2]:
                    cache.mark_vendor_healthy(event[1], "nvidia")
                else:
                    cache.mark_vendor_unhealthy(event[1], "nvidia")


def test_pods_with_other_annotations_do_not_share_an_answer() -> None:
    cache = UsageCache(REGISTRY, {})
    cache.upsert_node(nvidia_node("n0", 1))
    engine = Engine(REGISTRY, {}, cache)
    limits = {"nvidia.com/gpu": "1"}
    assert engine.schedule(pod("a", [container("main", limits)]), ["n0"], 0.0).node == "n0"
    pinned = pod("b", [container("main", limits)], annotations={"nvidia.com/use-gputype": "A100"})
    assert engine.schedule(pinned, ["n0"], 0.0).failed == {"n0": "1/1 CardTypeMismatch"}
