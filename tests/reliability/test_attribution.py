"""The kubelet's `Allocate` names no pod: a container is never served another pod's devices.

Several pods wait on one node at once when the kubelet is slower than the node-lock timeout
(each bind breaks the previous pod's expired lock), so here the scheduler binds with a lock
timeout of a millisecond, over the real node agent, device plugin (gRPC) and fake kubelet. The
kubelet then admits the pods in a random order, as it does one pod at a time, allocating each
pod's containers back to back, while pods are deleted or fail at any point, mid-pod included;
a refused `Allocate` fails its pod, as the kubelet's admission does. Every container's memory
limit is unique, so a served response names the container it was meant for. After each
scenario every pod is deleted and nothing may stay behind: no reservation or usage in the
scheduler's cache, and a new pod schedules and starts.
"""

from __future__ import annotations

import contextlib
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from plant import NODE, Plant, Served, expected, fast_settings, plant, wait_seen, write_cards
from rel_kit import (
    BIND_PHASE,
    NODE_LOCK,
    NS,
    Ask,
    base_seed,
    notes_of,
    sized,
    xpu_pod,
)

from hami_core.k8s.cluster import NotFound
from hami_core.k8s.memory import MemoryCluster


@pytest.fixture
def store() -> MemoryCluster:
    """The cluster, with the bare node the agent registers."""
    mem = MemoryCluster()
    mem.add_node({"metadata": {"name": NODE, "labels": {"kubernetes.io/hostname": NODE}}})
    return mem


@pytest.fixture
def node(store: MemoryCluster, tmp_path: Path) -> Iterator[Plant]:
    """Four 64 GB cards, and a scheduler whose node lock expires after a millisecond."""
    with plant(
        store,
        store,
        write_cards(tmp_path / "cards.json", 4),
        settings=fast_settings(node_lock_timeout=0.001),
    ) as p:
        yield p


@dataclass
class Tally:
    """What the scenarios did."""

    scenarios: int = 0
    pending: int = 0
    calls: int = 0
    served: int = 0
    refused: int = 0
    deleted: int = 0
    failed: int = 0
    wrong: list[str] = field(default_factory=list)
    leaks: list[str] = field(default_factory=list)


def _schedule(p: Plant, store: MemoryCluster, name: str) -> str:
    """Filter and bind, retried as kube-scheduler retries: a lock taken in the same millisecond
    of a whole second as the previous one has not expired yet (lock times are in seconds)."""
    why = ""
    for _ in range(3):
        why = p.schedule(store, name)
        if why == "":
            break
        time.sleep(0.002)
    return why


def _scenario(p: Plant, store: MemoryCluster, rng: random.Random, tag: int, t: Tally) -> None:
    memory = iter(range(101, 100_000))  # unique inside the scenario: it names the container
    names = []
    for i in range(rng.randint(4, 6)):
        name = f"s{tag}-p{i}"
        asks = [
            Ask(count=rng.choice((1, 1, 2)), memory=next(memory))
            for _ in range(rng.choice((1, 1, 2)))
        ]
        store.add_pod(xpu_pod(name, asks))
        if _schedule(p, store, name) == "":
            names.append(name)
    t.scenarios += 1
    t.pending += len(names)
    assert len(names) >= 4, "fewer than four pods are waiting on the node"

    # the kubelet's calls: it admits the pods in any order, one pod at a time, and allocates
    # each pod's containers back to back (the index is the pod's next container)
    order = list(names)
    rng.shuffle(order)
    calls = [n for n in order for _ in store.get_pod(NS, n)["spec"]["containers"]]
    started = dict.fromkeys(names, 0)
    gone: set[str] = set()
    for name in calls:
        if name in gone:
            continue
        if rng.random() < 0.2:
            victim = rng.choice(names)
            if victim not in gone:
                gone.add(victim)
                if rng.random() < 0.5:
                    store.delete_pod(NS, victim)
                    t.deleted += 1
                else:
                    store.update_status("pods", victim, {"phase": "Failed"}, namespace=NS)
                    t.failed += 1
            if name in gone:
                continue
        index = started[name]
        pod = store.get_pod(NS, name)
        container = pod["spec"]["containers"][index]
        count = int(container["resources"]["limits"]["example.com/xpu"])
        t.calls += 1
        outcome = p.allocate(count, rng.randrange(40))
        if isinstance(outcome, Served):
            t.served += 1
            own = expected(pod, index)
            if outcome != own:
                t.wrong.append(f"{name}/c{index} got {outcome}, its own is {own}")
            started[name] = index + 1
        else:
            t.refused += 1
            gone.add(name)  # the kubelet rejects the pod: admission failed
            store.update_status("pods", name, {"phase": "Failed"}, namespace=NS)

    for name in names:
        with contextlib.suppress(NotFound):
            store.delete_pod(NS, name)
    wait_seen(p.service, store)
    if p.service.cache.reservations():
        t.leaks.append(f"scenario {tag}: reservations {p.service.cache.reservations()}")
    # whatever the scenario left (a lock naming a deleted pod is broken by the next bind),
    # a new pod must schedule and start on the node
    probe = f"s{tag}-probe"
    store.add_pod(xpu_pod(probe, [Ask(1, 500)]))
    why = _schedule(p, store, probe)
    outcome = p.allocate(1) if why == "" else why
    if outcome != expected(store.get_pod(NS, probe), 0):
        t.leaks.append(f"scenario {tag}: a new pod could not start: {outcome}")
    store.delete_pod(NS, probe)
    wait_seen(p.service, store)


def test_no_container_is_served_another_pods_devices(node: Plant, store: MemoryCluster) -> None:
    t = Tally()
    count = sized(3, 1_000)
    for tag in range(count):
        _scenario(node, store, random.Random(base_seed() + tag), tag, t)
    print(
        f"RELIABILITY attribution: scenarios={t.scenarios} pending={t.pending} "
        f"allocate_calls={t.calls} served={t.served} refused={t.refused} "
        f"deleted={t.deleted} failed={t.failed} wrong={len(t.wrong)} leaks={len(t.leaks)}"
    )
    assert not t.wrong, f"{len(t.wrong)} containers served another pod's devices: {t.wrong[:5]}"
    assert not t.leaks, t.leaks[:5]


def test_the_first_bound_pod_is_not_served_the_lock_holders_devices(
    node: Plant, store: MemoryCluster
) -> None:
    """Four pods bound in turn (each breaking the previous pod's expired lock); the kubelet
    admits them in the order they were bound, as it does. The first pod's container must get
    its own card share or be refused, never that of the pod holding the lock."""
    for i in range(4):
        store.add_pod(xpu_pod(f"q{i}", [Ask(1, 1000 + i)]))
        assert _schedule(node, store, f"q{i}") == ""
    assert notes_of(store.get_node(NODE))[NODE_LOCK].endswith(",default,q3")
    first = node.allocate(1)
    if isinstance(first, Served):
        assert first == expected(store.get_pod(NS, "q0"), 0), "q0 got another pod's share"
    else:
        assert first in ("UNAVAILABLE", "NOT_FOUND", "FAILED_PRECONDITION")
        assert notes_of(store.get_pod(NS, "q3"))[BIND_PHASE] == "allocating"


def test_a_refused_call_changes_nothing(node: Plant, store: MemoryCluster) -> None:
    """Two pods wait with the same shape and neither holds the lock: the plugin refuses to
    guess, and neither pod's annotations change."""
    for i in range(2):
        store.add_pod(xpu_pod(f"r{i}", [Ask(1, 2000 + i)]))
        assert _schedule(node, store, f"r{i}") == ""
    store.patch_node_metadata(NODE, annotations={NODE_LOCK: None})
    before = [notes_of(store.get_pod(NS, f"r{i}")) for i in range(2)]
    assert node.allocate(1) == "UNAVAILABLE"
    assert [notes_of(store.get_pod(NS, f"r{i}")) for i in range(2)] == before
