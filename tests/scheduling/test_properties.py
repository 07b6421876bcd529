"""Property: any stream of schedule/patch/delete/finish/expire keeps every card within its
capacity, and the incrementally kept cache always equals one rebuilt from the same objects."""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sched_kit import container, make_registry, nvidia_node, pod

from hami_core.scheduling.cache import UsageCache, pod_usage
from hami_core.scheduling.engine import Engine

REGISTRY = make_registry()
TTL = 10.0

inventories = st.lists(
    st.tuples(
        st.integers(1, 4),  # cards
        st.sampled_from([4000, 8000, 16000]),  # MiB per card
        st.integers(1, 4),  # split count
    ),
    min_size=1,
    max_size=4,
)

requests = st.fixed_dictionaries(
    {"nvidia.com/gpu": st.integers(1, 2).map(str)},
    optional={
        "nvidia.com/gpumem": st.sampled_from(["1000", "3000", "6000"]),
        "nvidia.com/gpumem-percentage": st.sampled_from(["25", "50", "100"]),
        "nvidia.com/gpucores": st.sampled_from(["0", "20", "50", "100"]),
    },
)

pods = st.tuples(
    st.lists(requests, min_size=0, max_size=1),  # init containers
    st.lists(requests, min_size=1, max_size=2),  # app containers
    st.sampled_from(
        [
            {},
            {"hami.io/gpu-scheduler-policy": "binpack"},
            {"hami.io/node-scheduler-policy": "spread"},
        ]
    ),
)

actions = st.lists(
    st.one_of(
        st.tuples(st.just("schedule"), pods, st.booleans()),  # bool: the patch arrives
        st.tuples(st.just("delete"), st.integers(0, 50)),
        st.tuples(st.just("finish"), st.integers(0, 50)),
        st.tuples(st.just("tick"), st.floats(0.5, 15.0)),
    ),
    max_size=25,
)


def check_capacity(cache: UsageCache) -> None:
    with cache.locked():
        for name in cache.node_names():
            state = cache.node(name)
            assert state is not None
            for d in state.all_cards():
                assert 0 <= d.used <= d.count, (name, d)
                assert 0 <= d.usedmem <= d.totalmem, (name, d)
                assert 0 <= d.usedcores <= d.totalcore, (name, d)


def nonzero(used: dict[tuple[str, str], list[int]]) -> dict[tuple[str, str], list[int]]:
    return {card: total for card, total in used.items() if any(total)}


def bound_on(pods: Iterable[dict[str, Any]], node: str) -> dict[tuple[str, str], list[int]]:
    """What the pods bound to `node` hold there, added up from the objects themselves."""
    used: dict[tuple[str, str], list[int]] = {}
    for p in pods:
        held = pod_usage(REGISTRY.specs(), p)
        if held is None or held[0] != node or p["spec"].get("nodeName") != node:
            continue
        for vendor, cards in held[1].items():
            for uuid, share in cards.items():
                total = used.setdefault((vendor, uuid), [0, 0, 0])
                for i in range(3):
                    total[i] += share[i]
    return nonzero(used)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(inventory=inventories, stream=actions)
def test_streams_never_overfill_and_match_a_rebuild(
    inventory: list[tuple[int, int, int]], stream: list[tuple[Any, ...]]
) -> None:
    nodes = [
        nvidia_node(f"n{i}", cards, mem=mem, split=split)
        for i, (cards, mem, split) in enumerate(inventory)
    ]
    names = [n["metadata"]["name"] for n in nodes]
    cache = UsageCache(REGISTRY, {}, reservation_ttl=TTL)
    for n in nodes:
        cache.upsert_node(n)
    engine = Engine(REGISTRY, {}, cache)
    live: dict[str, dict[str, Any]] = {}  # what the apiserver holds
    now = 0.0
    for step, action in enumerate(stream):
        kind = action[0]
        if kind == "schedule":
            (init, app, annotations), patched = action[1], action[2]
            p = pod(
                f"p{step}",
                [container(f"c{i}", r) for i, r in enumerate(app)],
                init=[container(f"i{i}", r) for i, r in enumerate(init)],
                annotations=annotations,
            )
            live[f"p{step}"] = p
            decision = engine.schedule(p, names, now, reserve=True)
            assert decision.error is None
            if decision.node is not None and patched:
                p["metadata"]["annotations"].update(decision.annotations)
                p["spec"]["nodeName"] = decision.node  # bound as well
                cache.upsert_pod(copy.deepcopy(p))
                assert f"default/p{step}" not in cache.reservations()  # the patch ends it
        elif kind in ("delete", "finish") and live:
            key = sorted(live)[action[1] % len(live)]
            if kind == "delete":
                del live[key]
                cache.remove_pod("default", key)
            else:
                live[key]["status"] = {"phase": "Succeeded"}
                cache.upsert_pod(copy.deepcopy(live[key]))
        elif kind == "tick":
            now += action[1]
            cache.expire(now)
        check_capacity(cache)
        for name in names:
            assert nonzero(cache.bound_usage(name, "")) == bound_on(live.values(), name)
        if not cache.reservations():
            rebuilt = UsageCache.rebuild(REGISTRY, {}, nodes, live.values())
            assert cache.snapshot() == rebuilt.snapshot()
    cache.expire(now + TTL)
    assert cache.snapshot() == UsageCache.rebuild(REGISTRY, {}, nodes, live.values()).snapshot()
