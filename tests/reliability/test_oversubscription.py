"""No card is ever held beyond its count, memory or cores, whatever the interleaving.

Two scheduler replicas (each a real `SchedulerService` with its own usage cache fed by its own
watches), the real `Allocator` on every node, and one shared store. Seeded random sequences of
pod create / filter / bind / Allocate / finish / delete, watch delivery and loss, replica
restart, leader change, register passes, node re-registration, injected write failures and the
passing of time; the invariants (`world.py`) are checked after every step, from the store alone.

Each profile turns on more of the steps; `HAMI_SOAK=1` runs 2,500 sequences of each (10,000
in all), the quick run a few per profile. The regression tests below replay, step by step, the
smallest sequences the random runs found for each defect.
"""

from __future__ import annotations

import contextlib
import threading
from importlib.metadata import entry_points

import pytest
from rel_kit import NS, Ask, CardShape, GatedCluster, base_seed, notes_of, sized
from world import STEPS, Violation, World, run_sequence

from hami_core.k8s.cluster import Obj
from hami_core.k8s.memory import MemoryCluster
from hami_core.plugins import load_vendors
from hami_core.protocol.keys import BIND_PHASE, NODE_LOCK
from hami_core.scheduler import SchedulerService, SchedulerSettings
from hami_core.scheduler.wire import parse_bind_args, parse_filter_args

LENGTH = 60
"""Steps per sequence."""

CALM = {"leader": 0, "tick": 0, "drop_watch": 0, "restart": 0}
PROFILES: dict[str, dict[str, int]] = {
    # one replica serves everything; writes fail now and then
    "one-replica": CALM,
    # ... and its watches break and it restarts (its cache is rebuilt from a list)
    "restarts": {**CALM, "drop_watch": 2, "restart": 2},
    # leadership moves between replicas whose caches lag each other
    "two-replicas": {**CALM, "leader": 4},
    # time passes beyond the reservation TTL while watches lag
    "clock": {**CALM, "tick": 2},
    # everything at once
    "all": {},
}


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_random_interleavings_never_oversubscribe(profile: str) -> None:
    weights = {**STEPS, **PROFILES[profile]}
    count = sized(8, 2_000)
    first = base_seed() + 1_000_000 * sorted(PROFILES).index(profile)
    broken: list[Violation] = []
    for seed in range(first, first + count):
        try:
            run_sequence(seed, LENGTH, weights)
        except Violation as exc:
            broken.append(exc)
    print(
        f"RELIABILITY oversubscription[{profile}]: sequences={count} steps={count * LENGTH} "
        f"violations={len(broken)}"
    )
    assert not broken, f"{len(broken)} of {count} sequences broke an invariant; first: {broken[0]}"


# ---------------------------------------------------------------------- the world itself


def test_the_invariants_catch_an_overfull_card() -> None:
    """The checker is not blind: two pods bound onto one single-slot card are reported."""
    world = World(0, shapes={"node-0": [CardShape(count=1, memory=8000)]})
    try:
        world.create([Ask(1, 6000)])
        world.create([Ask(1, 6000)])
        for name in ("p0", "p1"):
            world.store.patch_pod_metadata(
                NS,
                name,
                annotations={
                    "hami.io/vgpu-node": "node-0",
                    "hami.io/example-devices-allocated": "XPU-node-0-0,EXAMPLE,6000,0:;",
                },
            )
            world.store.bind_pod(NS, name, None, "node-0")
        with pytest.raises(Violation, match=r"(?s)2 slots > 1.*12000 MiB > 8000"):
            world.check()
    finally:
        world.close()


def test_a_calm_sequence_schedules_allocates_and_settles() -> None:
    """One replica, pods in turn: every pod fits, starts with its own shares, nothing leaks."""
    world = World(1, shapes={"node-0": [CardShape(count=2, memory=8000)] * 2})
    try:
        for i in range(4):
            world.create([Ask(1, 4000, 50)])
            name = f"p{i}"
            assert world.filter(name).endswith("node-0"), world.trace
            assert world.bind(name).endswith("ok")
            assert "XPU-node-0-" in world.allocate(name)
            world.deliver(0, "pods", None)
            world.check()
        world.create([Ask(1, 4000)])
        assert "CardTimeSlicingExhausted" in world.filter("p4")
        world.settle()
        assert all(notes_of(p)[BIND_PHASE] == "success" for p in world.pods()[:4])
    finally:
        world.close()


# ---------------------------------------------------------------------- regressions


def _one_card() -> World:
    return World(7, shapes={"node-0": [CardShape(count=4, memory=8000, cores=100)]})


def _run_and_allocate(world: World, name: str) -> None:
    """Filter, bind and start `name` on the current leader; its node lock is released."""
    assert world.filter(name).endswith("node-0"), world.trace[-1]
    assert world.bind(name).endswith("ok"), world.trace[-1]
    assert "XPU-node-0-0" in world.allocate(name), world.trace[-1]


def test_a_lagging_replica_that_becomes_leader_does_not_oversubscribe() -> None:
    """Replica r0 places p0 on the card; leadership moves to r1 before r1's pod watch caught up.
    r1 must not place p1 on the same full card (at filter or, at the latest, at bind)."""
    world = _one_card()
    world.moves = False
    try:
        world.create([Ask(1, 6000)])
        _run_and_allocate(world, "p0")
        world.leader = 1  # r1 has not seen any pod event yet
        world.create([Ask(1, 6000)])
        world.trace.append(world.filter("p1"))
        if "p1" in world.decided:
            world.trace.append(world.bind("p1"))
        world.check()
    finally:
        world.close()


def test_a_reservation_does_not_expire_before_the_watch_delivers_its_pod() -> None:
    """One replica; its pod watch lags more than the reservation TTL. p0's decision was
    written and bound, so it must still count when p1 is filtered after the TTL."""
    world = _one_card()
    try:
        world.create([Ask(1, 6000)])
        _run_and_allocate(world, "p0")
        world.tick()  # 61 s: p0's reservation expires, its pod events are still undelivered
        world.create([Ask(1, 6000)])
        world.trace.append(world.filter("p1"))
        if "p1" in world.decided:
            world.trace.append(world.bind("p1"))
        world.check()
    finally:
        world.close()


def test_a_lost_binding_reply_leaves_the_pod_consistent() -> None:
    """The Binding is created but its reply is lost (a timeout after the write). The bind
    must not roll back bind-phase and the node lock of a pod that IS bound: otherwise the
    next pod binds under no lock, and the kubelet's Allocate for the first pod is attributed
    to the second, whose devices it is then served."""
    world = _one_card()
    try:
        world.create([Ask(1, 2000)])
        assert world.filter("p0").endswith("node-0")
        world.fault("bind_pod", "lost", replica=0)
        answer = world.bind("p0")
        pod = world.store.get_pod(NS, "p0")
        node = world.store.get_node("node-0")
        if pod["spec"].get("nodeName") == "node-0":
            assert notes_of(pod).get(BIND_PHASE) == "allocating", (answer, notes_of(pod))
            assert notes_of(node).get(NODE_LOCK, "").endswith(",default,p0"), answer
        world.create([Ask(1, 5000)])
        world.trace.append(world.filter("p1"))
        if "p1" in world.decided:
            world.trace.append(world.bind("p1"))
        world.trace.append(world.allocate("p0"))
        world.check()
    finally:
        world.close()


def test_a_relist_forgets_the_reservation_of_a_pod_deleted_meanwhile() -> None:
    """r0 reserves p0, p0 is deleted while r0's watch is broken; the relist that follows must
    not keep counting p0 (until the reservation TTL, its card would look taken)."""
    world = _one_card()
    try:
        world.create([Ask(1, 6000)])
        assert world.filter("p0").endswith("node-0")
        world.delete("p0")
        world.drop_watch(0)
        world.settle()
    finally:
        world.close()


def test_a_reservation_is_dropped_when_another_replica_decides_again() -> None:
    """r0 decides p0 for node-0 (twice: the second reservation is never confirmed by an event,
    its patch changed nothing); p0 is not bound, and after a leader change r1 decides p0 again,
    for node-1 (kube-scheduler's candidates changed), and binds it. Once r0's watch has shown
    it p0 on node-1, r0 must count p0 there and no longer on node-0: until the reservation's
    TTL, r0 sees node-1's card as freer than it is and node-0's as fuller."""
    world = World(3, shapes={"node-0": [CardShape()], "node-1": [CardShape()]})
    try:
        world.create([Ask(1, 3000)])
        r0, r1 = (r.service for r in world.replicas)

        def decide(service: SchedulerService, node: str) -> list[str]:
            pod = world.store.get_pod(NS, "p0")
            args = parse_filter_args({"Pod": pod, "Nodes": None, "NodeNames": [node]})
            return list(service.filter(args)["NodeNames"] or [])

        assert decide(r0, "node-0") == ["node-0"]
        world.deliver(0, "pods", None)  # r0 sees its decision: the reservation has done its job
        # kube-scheduler asks r0 again within the same second: the same decision, the same
        # annotations, so the patch changes nothing and no event will ever confirm it
        assert decide(r0, "node-0") == ["node-0"]
        world.deliver(1, "pods", None)
        assert decide(r1, "node-1") == ["node-1"]
        uid = world.store.get_pod(NS, "p0")["metadata"]["uid"]
        body = {"PodName": "p0", "PodNamespace": NS, "PodUID": uid, "Node": "node-1"}
        assert r1.bind(parse_bind_args(body))["Error"] == ""
        world.settle()
    finally:
        world.close()


class _MeetingCluster(GatedCluster):
    """A replica's cluster whose read of a node's pods (the bind's capacity check) waits for
    the other replica's, so both binds check before either creates its Binding."""

    def __init__(self, store: MemoryCluster, meeting: threading.Barrier) -> None:
        super().__init__(store)
        self.meeting = meeting

    def list_pods(
        self,
        *,
        namespace: str | None = None,
        node_name: str | None = None,
        label_selector: str | None = None,
    ) -> list[Obj]:
        """Read, then wait for the other replica to have read too (one node's pods only)."""
        pods = super().list_pods(
            namespace=namespace, node_name=node_name, label_selector=label_selector
        )
        if node_name is not None:
            # a bind that serialises on something else never meets its peer: carry on
            with contextlib.suppress(threading.BrokenBarrierError):
                self.meeting.wait(2)
        return pods


def test_two_replicas_binding_at_once_never_share_a_lockless_card() -> None:
    """MetaX cards are whole and take no node lock. Replica r0 decides p0 for the node's only
    card; r1, whose watch has not shown it p0, decides p1 for the same card; both binds run at
    once (kube-scheduler binds asynchronously; around a leader change two replicas do). At most
    one of the two may end up bound to the card."""
    eps = [ep for ep in entry_points(group="hami.vendors") if ep.name == "metax"]
    registry = load_vendors(environ={}, entry_points_=eps)
    spec = registry.spec("metax")
    store = MemoryCluster()
    capacity = {spec.resources.count: "1"}
    store.add_node(
        {"metadata": {"name": "m-0"}, "status": {"capacity": capacity, "allocatable": capacity}}
    )
    meeting = threading.Barrier(2)
    services = []
    for i in range(2):
        gated = _MeetingCluster(store, meeting)
        service = SchedulerService(gated, registry, None, _settings(f"m{i}"))
        service.informer.start()
        gated.stream("pods").deliver(0)
        assert service.informer.wait_synced(5)
        services.append(service)
    try:
        decided = []
        for i, service in enumerate(services):
            pod = {
                "metadata": {"name": f"w{i}", "namespace": NS},
                "spec": {"containers": [{"name": "c", "resources": {"limits": capacity}}]},
            }
            store.add_pod(pod)
            args = parse_filter_args(
                {"Pod": store.get_pod(NS, f"w{i}"), "Nodes": None, "NodeNames": ["m-0"]}
            )
            decided.append(service.filter(args)["NodeNames"])
        assert decided == [["m-0"], ["m-0"]], "r1 should not have seen r0's decision yet"
        answers: list[str] = []

        def bind(service: SchedulerService, name: str) -> None:
            uid = store.get_pod(NS, name)["metadata"]["uid"]
            body = {"PodName": name, "PodNamespace": NS, "PodUID": uid, "Node": "m-0"}
            answers.append(service.bind(parse_bind_args(body))["Error"])

        threads = [threading.Thread(target=bind, args=(s, f"w{i}")) for i, s in enumerate(services)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
        bound = [p["metadata"]["name"] for p in store.list_pods() if p["spec"].get("nodeName")]
        assert len(bound) <= 1, f"one whole card, two pods bound: {bound} ({answers})"
    finally:
        for service in services:
            service.informer.stop(timeout=2.0)


def _settings(identity: str) -> SchedulerSettings:
    return SchedulerSettings(
        identity=identity, sync_timeout=5.0, register_interval=3600.0, resync_period=3600.0
    )
