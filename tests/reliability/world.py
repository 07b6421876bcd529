"""A small cluster with two scheduler replicas and a device plugin per node, driven one step at
a time by a seeded random generator (used by the oversubscription suite).

Each replica is a real `SchedulerService` (usage cache, engine, informer, filter, bind, register
loop) over its own `GatedCluster`, so its cache sees the shared store only when the world
delivers its watch events: any lag between replicas can be produced on purpose. Each node's
kubelet is played by calls to the real `Allocator`. Faults are one-shot failures of one write,
either refused (`fail`) or applied with the reply lost (`lost`).

After every step the world checks, from the store alone and with its own parsing:
- no card is held beyond its count, memory or cores by live pods bound where they were decided;
- every bound pod's annotations agree with its containers, its node and each other;
- every container the kubelet started was served exactly the shares the scheduler gave it.
At the end it delivers every event and checks that each replica's cache equals one rebuilt
from the store (no leaked reservation or usage) and that no node lock is held by a pod that
is gone or done.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from rel_kit import (
    ALLOCATED,
    BIND_PHASE,
    NODE_LOCK,
    NS,
    VENDOR,
    Ask,
    CardShape,
    GatedCluster,
    example_registry,
    inconsistent,
    notes_of,
    oversubscribed,
    read_shares,
    register_value,
    xpu_node,
    xpu_pod,
)

from hami_core.deviceplugin.allocate import AllocateError, Allocator
from hami_core.k8s.cluster import ClusterError, Obj
from hami_core.k8s.memory import MemoryCluster
from hami_core.plugins import VendorRegistry
from hami_core.scheduler import SchedulerService, SchedulerSettings
from hami_core.scheduler.decisions import decision_keys, usage_view
from hami_core.scheduler.wire import parse_bind_args, parse_filter_args
from hami_core.scheduling.cache import UsageCache

__all__ = ["STEPS", "Violation", "World", "run_sequence"]

WRITES = ("patch_pod_metadata", "bind_pod", "patch_node_metadata")
FAULTS = ("fail", "lost")


class Violation(AssertionError):
    """An invariant broke; the message holds the seed and the steps that led there."""


@dataclass
class Replica:
    """One scheduler replica: the service and the gated cluster its watches come through."""

    name: str
    gated: GatedCluster
    service: SchedulerService

    def stop(self) -> None:
        """Stop its informer threads."""
        self.service.informer.stop(timeout=2.0)


@dataclass
class Kubelet:
    """What one node's kubelet knows: which container of each bound pod it starts next."""

    node: str
    gated: GatedCluster
    allocator: Allocator
    next_container: dict[str, int] = field(default_factory=dict)


class World:
    """The cluster, two replicas, one kubelet per node, and the steps (module doc)."""

    def __init__(
        self,
        seed: int,
        *,
        nodes: int = 3,
        cards: int = 2,
        shapes: dict[str, list[CardShape]] | None = None,
    ) -> None:
        self.seed = seed
        self.rng = random.Random(seed)
        self.trace: list[str] = []
        self.registry: VendorRegistry = example_registry()
        self.spec = self.registry.spec(VENDOR)
        self.keys = decision_keys(self.registry.specs())
        self.now = 1_700_000_000.0
        self.store = MemoryCluster(clock=lambda: self.now)
        self.shapes: dict[str, list[CardShape]] = dict(shapes or {})
        for name, given in self.shapes.items():
            self.store.add_node(xpu_node(name, given))
        for i in range(0 if shapes else nodes):
            name = f"node-{i}"
            drawn = [
                CardShape(
                    count=self.rng.choice((1, 2, 4)),
                    memory=self.rng.choice((4000, 8000, 16000)),
                    cores=100,
                )
                for _ in range(cards)
            ]
            self.shapes[name] = drawn
            self.store.add_node(xpu_node(name, drawn))
        self.replicas = [self._replica(f"r{i}") for i in range(2)]
        self.leader = 0
        self.moves = True
        self.kubelets = {n: self._kubelet(n) for n in self.shapes}
        self.decided: dict[str, tuple[int, str]] = {}  # pod -> (replica, node) awaiting bind
        self.served: list[str] = []
        self.counter = itertools.count()
        self.steps: dict[str, Callable[[], str]] = {
            "create": self.create,
            "filter": self.filter,
            "bind": self.bind,
            "allocate": self.allocate,
            "finish": self.finish,
            "delete": self.delete,
            "deliver": self.deliver,
            "drop_watch": self.drop_watch,
            "restart": self.restart,
            "leader": self.change_leader,
            "register": self.register_pass,
            "node_change": self.node_change,
            "fault": self.fault,
            "tick": self.tick,
        }

    # ------------------------------------------------------------------ parts

    def _replica(self, name: str) -> Replica:
        gated = GatedCluster(self.store)
        settings = SchedulerSettings(
            identity=f"{name}-{self.seed}",
            sync_timeout=5.0,
            register_interval=3600.0,
            resync_period=3600.0,
        )
        service = SchedulerService(gated, self.registry, None, settings, clock=lambda: self.now)
        service.bind.pods_seen = self._pods_seen(name, gated, service)
        service.informer.start()
        gated.stream("nodes").deliver(0)
        gated.stream("pods").deliver(0)
        assert service.informer.wait_synced(5.0), f"replica {name} did not sync"
        return Replica(name, gated, service)

    def _pods_seen(
        self, name: str, gated: GatedCluster, service: SchedulerService
    ) -> Callable[[str, float], bool]:
        """The bind's wait for its own write, with the watch lag drawn: all, some or none of
        the replica's pending pod events arrive first; then the real check, without waiting
        (a bind whose write has not arrived lists the node's pods instead)."""

        def seen(version: str, _timeout: float) -> bool:
            draw = self.rng.random()
            if draw < 0.6:
                n = None if draw < 0.4 else self.rng.randint(0, 2)
                got = gated.deliver("pods", n)
                self.trace.append(f"  bind check: {got} pod events reach {name}")
            return service.informer.wait_pods_seen(version, 0)

        return seen

    def _kubelet(self, node: str) -> Kubelet:
        gated = GatedCluster(self.store)
        return Kubelet(node, gated, Allocator(gated, self.registry, node))

    def close(self) -> None:
        """Stop every replica's threads."""
        for r in self.replicas:
            r.stop()

    def pods(self) -> list[Obj]:
        """Every pod in the store."""
        return self.store.list_pods()

    def _pending(self) -> list[Obj]:
        return [
            p
            for p in self.pods()
            if not (p.get("spec") or {}).get("nodeName")
            and (p.get("status") or {}).get("phase") == "Pending"
        ]

    # ------------------------------------------------------------------ steps

    def create(self, asks: list[Ask] | None = None) -> str:
        """A new pod of 1-2 containers, each asking 1-2 cards with some memory and cores."""
        name = f"p{next(self.counter)}"
        asks = asks or [
            Ask(
                count=self.rng.choice((1, 1, 1, 2)),
                memory=self.rng.choice((1000, 2000, 3000, 5000, 8000)),
                cores=self.rng.choice((0, 0, 20, 50, 100)),
            )
            for _ in range(self.rng.choice((1, 1, 2)))
        ]
        self.store.add_pod(xpu_pod(name, asks))
        return f"create {name} {[(a.count, a.memory, a.cores) for a in asks]}"

    def filter(self, name: str | None = None) -> str:
        """kube-scheduler asks the leader's extender about a pending pod and every node."""
        pending = [p for p in self._pending() if name in (None, p["metadata"]["name"])]
        if not pending:
            return "filter: nothing pending"
        pod = self.rng.choice(pending)
        name = pod["metadata"]["name"]
        replica = self.replicas[self.leader]
        args = parse_filter_args({"Pod": pod, "Nodes": None, "NodeNames": sorted(self.shapes)})
        result = replica.service.filter(args)
        chosen = result.get("NodeNames") or []
        if chosen:
            self.decided[name] = (self.leader, chosen[0])
            return f"filter {name} by {replica.name}: {chosen[0]}"
        self.decided.pop(name, None)
        return f"filter {name} by {replica.name}: {result.get('Error') or result['FailedNodes']}"

    def bind(self, name: str | None = None) -> str:
        """kube-scheduler binds a filtered pod (through the replica that filtered it, now and
        then through the leader: kube-scheduler moved)."""
        if not self.decided:
            return "bind: nothing decided"
        name = name or self.rng.choice(sorted(self.decided))
        index, node = self.decided.pop(name)
        if self.moves and self.rng.random() < 0.2:
            index = self.leader
        replica = self.replicas[index]
        try:
            pod = self.store.get_pod(NS, name)
        except ClusterError:
            return f"bind {name}: gone"
        args = parse_bind_args(
            {"PodName": name, "PodNamespace": NS, "PodUID": pod["metadata"]["uid"], "Node": node}
        )
        error = replica.service.bind(args)["Error"]
        return f"bind {name} to {node} by {replica.name}: {error or 'ok'}"

    def allocate(self, name: str | None = None) -> str:
        """A node's kubelet starts the next container of one of its pods (any pod, any order)."""
        bound = [
            p
            for p in self.pods()
            if (p.get("spec") or {}).get("nodeName")
            and (p.get("status") or {}).get("phase") == "Pending"
            and name in (None, p["metadata"]["name"])
        ]
        if not bound:
            return "allocate: nothing bound"
        pod = self.rng.choice(bound)
        name = pod["metadata"]["name"]
        kubelet = self.kubelets[pod["spec"]["nodeName"]]
        index = kubelet.next_container.get(name, 0)
        containers = pod["spec"]["containers"]
        if index >= len(containers):
            return f"allocate {name}: all started"
        count = int(containers[index]["resources"]["limits"]["example.com/xpu"])
        ids = [f"kubelet-id-{i}" for i in range(count)]
        try:
            [runtime] = kubelet.allocator.allocate(self.spec, [ids])
        except AllocateError as exc:
            # the kubelet rejects a pod whose devices cannot be allocated (admission error)
            self.store.update_status("pods", name, {"phase": "Failed"}, namespace=NS)
            return f"allocate {name}/c{index} on {kubelet.node}: refused ({exc.code}), pod failed"
        kubelet.next_container[name] = index + 1
        mine = read_shares(notes_of(pod).get(ALLOCATED, ""))
        want = mine[index] if index < len(mine) else []
        got_devices = runtime.envs.get("EXAMPLE_VISIBLE_DEVICES", "")
        got_memory = [runtime.envs.get(f"EXAMPLE_MEMORY_LIMIT_{i}") for i in range(len(want))]
        expected = (",".join(s.uuid for s in want), [f"{s.memory}m" for s in want])
        if (got_devices, got_memory) != expected:
            self.served.append(
                f"{name}/c{index} was served {got_devices} {got_memory}, its own is {expected}"
            )
        return f"allocate {name}/c{index} on {kubelet.node}: {got_devices}"

    def finish(self) -> str:
        """A bound pod ends (Succeeded or Failed), as its kubelet reports."""
        bound = [p for p in self.pods() if (p.get("spec") or {}).get("nodeName")]
        if not bound:
            return "finish: nothing bound"
        pod = self.rng.choice(bound)
        phase = self.rng.choice(("Succeeded", "Failed"))
        self.store.update_status("pods", pod["metadata"]["name"], {"phase": phase}, namespace=NS)
        return f"finish {pod['metadata']['name']}: {phase}"

    def delete(self, name: str | None = None) -> str:
        """A pod is deleted, in whatever state it is."""
        pods = self.pods()
        if not pods:
            return "delete: no pods"
        name = name or self.rng.choice(pods)["metadata"]["name"]
        self.store.delete_pod(NS, name)
        self.decided.pop(name, None)
        return f"delete {name}"

    def deliver(self, index: int | None = None, kind: str | None = None, n: int | None = -1) -> str:
        """Some or all (`n` None) of one replica's pending watch events arrive (`-1`: draw)."""
        replica = self.rng.choice(self.replicas) if index is None else self.replicas[index]
        kind = kind or self.rng.choice(("pods", "pods", "nodes"))
        if n == -1:
            n = None if self.rng.random() < 0.5 else self.rng.randint(1, 3)
        got = replica.gated.deliver(kind, n)
        return f"deliver {got} {kind} events to {replica.name}"

    def drop_watch(self, index: int | None = None) -> str:
        """One replica's watches break; its informer relists."""
        replica = self.rng.choice(self.replicas) if index is None else self.replicas[index]
        replica.gated.drop_watches()
        replica.gated.stream("nodes").deliver(0)
        replica.gated.stream("pods").deliver(0)
        return f"drop watches of {replica.name}"

    def restart(self) -> str:
        """A replica restarts: a new process, its cache rebuilt from a fresh list."""
        index = self.rng.randrange(len(self.replicas))
        old = self.replicas[index]
        old.stop()
        self.replicas[index] = self._replica(old.name)
        return f"restart {old.name}"

    def change_leader(self) -> str:
        """Leadership moves to the other replica."""
        self.leader = 1 - self.leader
        return f"leader is {self.replicas[self.leader].name}"

    def register_pass(self) -> str:
        """The leader's register loop runs a pass (handshake stamps on the nodes)."""
        report = self.replicas[self.leader].service.register.run_once(write=True)
        return f"register pass: wrote {sorted(report.written)}"

    def node_change(self) -> str:
        """A node agent rewrites its register annotation: a card is added, or one card's health
        flips (never a card shrinking: that would break the invariant from outside)."""
        node = self.rng.choice(sorted(self.shapes))
        shapes = self.shapes[node]
        if self.rng.random() < 0.3 and len(shapes) < 4:
            shapes.append(CardShape(count=2, memory=8000))
            what = "adds a card"
        else:
            i = self.rng.randrange(len(shapes))
            s = shapes[i]
            shapes[i] = CardShape(s.count, s.memory, s.cores, not s.health)
            what = f"card {i} health {shapes[i].health}"
        self.store.patch_node_metadata(
            node,
            annotations={
                "hami.io/node-example-register": register_value(node, shapes),
            },
        )
        return f"node {node} {what}"

    def fault(self, verb: str | None = None, kind: str | None = None, replica: int = -1) -> str:
        """Arm a one-shot failure of one write, for a replica or a kubelet's plugin."""
        verb = verb or self.rng.choice(WRITES)
        kind = kind or self.rng.choice(FAULTS)
        if replica >= 0:
            self.replicas[replica].gated.faults[verb] = kind
            return f"fault {kind} on {self.replicas[replica].name}'s next {verb}"
        if self.rng.random() < 0.5:
            target = self.rng.choice(self.replicas)
            target.gated.faults[verb] = kind
            who = target.name
        else:
            kubelet = self.kubelets[self.rng.choice(sorted(self.kubelets))]
            kubelet.gated.faults[verb] = kind
            who = kubelet.node
        return f"fault {kind} on {who}'s next {verb}"

    def tick(self) -> str:
        """Time passes beyond the reservation TTL."""
        self.now += 61.0
        return "61 s pass"

    # ------------------------------------------------------------------ checks

    def check(self) -> None:
        """Raise `Violation` when any invariant of the module doc is broken now."""
        problems = oversubscribed(self.store) + inconsistent(self.store) + self.served
        if problems:
            raise Violation(self.report(problems))

    def settle(self) -> None:
        """Deliver every event to every replica and check nothing leaked."""
        for r in self.replicas:
            for kind in ("nodes", "pods"):
                r.gated.deliver(kind)
        nodes = self.store.list_nodes()
        pods = [usage_view(p, self.keys) for p in self.pods()]
        problems = []
        for r in self.replicas:
            cache = r.service.cache
            cache.expire(self.now)
            fresh = UsageCache.rebuild(self.registry, None, nodes, pods)
            for node in r.service.cache.node_names():
                unhealthy = cache.node(node)
                for vendor in unhealthy.unhealthy if unhealthy is not None else ():
                    fresh.mark_vendor_unhealthy(node, vendor)
            have, want = cache.snapshot(), fresh.snapshot()
            if have.nodes != want.nodes or have.pods != want.pods:
                problems.append(f"{r.name}: cache differs from the store: {_diff(have, want)}")
        for node_obj in self.store.list_nodes():
            lock = notes_of(node_obj).get(NODE_LOCK)
            if lock is None:
                continue
            holder = lock.rsplit(",", 1)[-1]
            try:
                pod = self.store.get_pod(NS, holder)
            except ClusterError:
                continue  # a gone holder's lock is broken by the next bind
            phase = notes_of(pod).get(BIND_PHASE)
            if pod["status"].get("phase") == "Pending" and phase != "allocating":
                where = node_obj["metadata"]["name"]
                problems.append(f"{where}: lock kept by {holder} ({phase})")
        if problems:
            raise Violation(self.report(problems))

    def report(self, problems: list[str]) -> str:
        """The seed, the problems and the steps that led there."""
        steps = "\n".join(f"  {i:3d}. {line}" for i, line in enumerate(self.trace))
        found = "\n".join(f"  - {p}" for p in problems)
        return f"seed {self.seed}:\n{found}\nafter:\n{steps}"

    def step(self, name: str) -> None:
        """Run one named step, record it, check the invariants."""
        self.trace.append(self.steps[name]())
        self.check()


def _diff(have: Any, want: Any) -> str:
    out = []
    for node in sorted(set(have.nodes) | set(want.nodes)):
        if have.nodes.get(node) != want.nodes.get(node):
            out.append(f"node {node}: cache {have.nodes.get(node)} store {want.nodes.get(node)}")
    for pod in sorted(set(have.pods) | set(want.pods)):
        if have.pods.get(pod) != want.pods.get(pod):
            out.append(f"pod {pod}: cache {have.pods.get(pod)} store {want.pods.get(pod)}")
    return "; ".join(out)


STEPS: dict[str, int] = {
    "create": 14,
    "filter": 16,
    "bind": 14,
    "allocate": 12,
    "finish": 3,
    "delete": 3,
    "deliver": 20,
    "drop_watch": 1,
    "restart": 1,
    "leader": 3,
    "register": 1,
    "node_change": 2,
    "fault": 3,
    "tick": 1,
}
"""How often each step is drawn (relative weights)."""


def run_sequence(seed: int, length: int, weights: dict[str, int] | None = None) -> World:
    """One seeded sequence of `length` steps, checked after each; `Violation` on a break."""
    world = World(seed)
    table = weights or STEPS
    names = sorted(table)
    try:
        for _ in range(length):
            world.step(world.rng.choices(names, [table[n] for n in names])[0])
        world.settle()
    finally:
        world.close()
    return world
