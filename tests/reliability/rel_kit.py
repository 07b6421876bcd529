"""Test kit for the reliability suites: sizes, the installed example vendor, object builders, an
independent reading of the cluster's state, and a cluster whose watches the test delivers.

- Sizes: every suite scales with `HAMI_RELIABILITY_SCALE` (a multiplier, default 1) and jumps to
  its soak size with `HAMI_SOAK=1` (`make soak`).
- The vendor is the installed `example.com/xpu` (distribution `hami-example-accelerator`),
  loaded through its entry point as any cluster would load it.
- `read_cards` / `read_shares` parse the register and pod annotations with their own few lines
  of code, never hami's decoders, so the invariants do not trust what they check.
- `GatedCluster` hands a scheduler replica the shared store's verbs, but its watches deliver
  only what the test releases: the test decides when each replica's cache catches up.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any

from hami_core.k8s.cluster import ClusterError, Obj, Unavailable, WatchEvent
from hami_core.k8s.memory import MemoryCluster
from hami_core.plugins import VendorRegistry, load_vendors

XPU = "example.com/xpu"
XPU_MEM = "example.com/xpu-memory"
XPU_CORES = "example.com/xpu-cores"
VENDOR = "example"
WORD = "EXAMPLE"
REGISTER = "hami.io/node-example-register"
HANDSHAKE = "hami.io/node-handshake-example"
TO_ALLOCATE = "hami.io/example-devices-to-allocate"
ALLOCATED = "hami.io/example-devices-allocated"
ASSIGNED_NODE = "hami.io/vgpu-node"
BIND_PHASE = "hami.io/bind-phase"
NODE_LOCK = "hami.io/mutex.lock"
NS = "default"


# ---------------------------------------------------------------------- sizes


def soak() -> bool:
    """True under `make soak` (`HAMI_SOAK=1`)."""
    return os.environ.get("HAMI_SOAK", "") not in ("", "0")


def sized(quick: int, long: int) -> int:
    """`long` under soak, else `quick` times `HAMI_RELIABILITY_SCALE` (at least 1)."""
    if soak():
        return long
    factor = float(os.environ.get("HAMI_RELIABILITY_SCALE", "1") or "1")
    return max(1, round(quick * factor))


def base_seed() -> int:
    """The first seed of seeded suites: `HAMI_RELIABILITY_SEED`, default 0."""
    return int(os.environ.get("HAMI_RELIABILITY_SEED", "0") or "0")


# ---------------------------------------------------------------------- vendor and objects


def example_registry() -> VendorRegistry:
    """A registry holding only the installed example vendor, loaded through its entry point."""
    eps = [ep for ep in entry_points(group="hami.vendors") if ep.name == VENDOR]
    assert eps, "the example vendor (examples/hami-example-accelerator) is not installed"
    registry = load_vendors(environ={}, entry_points_=eps)
    assert [s.key for s in registry.specs()] == [VENDOR], registry.errors
    return registry


def card_uuid(node: str, index: int) -> str:
    """The UUID of card `index` on `node`."""
    return f"XPU-{node}-{index}"


@dataclass(frozen=True, slots=True)
class CardShape:
    """What one card offers: sharers, MiB and core percent."""

    count: int = 4
    memory: int = 8000
    cores: int = 100
    health: bool = True


def register_value(node: str, cards: Sequence[CardShape]) -> str:
    """The node's register annotation (HAMi's JSON form), written by hand."""
    return json.dumps(
        [
            {
                "id": card_uuid(node, i),
                "index": i,
                "count": c.count,
                "devmem": c.memory,
                "devcore": c.cores,
                "type": "EXAMPLE-X1",
                "numa": 0,
                "mode": "hami-core",
                "health": c.health,
            }
            for i, c in enumerate(cards)
        ],
        separators=(",", ":"),
    )


def xpu_node(name: str, cards: Sequence[CardShape]) -> Obj:
    """A node the example device plugin registered, with allocatable `example.com/xpu`."""
    total = str(sum(c.count for c in cards))
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": {"kubernetes.io/hostname": name},
            "annotations": {REGISTER: register_value(name, cards)},
        },
        "status": {"capacity": {XPU: total}, "allocatable": {XPU: total}},
    }


@dataclass(frozen=True, slots=True)
class Ask:
    """One container's request: cards, MiB per card, core percent per card."""

    count: int = 1
    memory: int = 1000
    cores: int = 0


def xpu_pod(name: str, asks: Sequence[Ask], *, namespace: str = NS, **meta: Any) -> Obj:
    """A pod as the webhook leaves it: one container `c<i>` per ask, hami's scheduler name."""
    containers = []
    for i, ask in enumerate(asks):
        limits = {XPU: str(ask.count), XPU_MEM: str(ask.memory)}
        if ask.cores:
            limits[XPU_CORES] = str(ask.cores)
        containers.append(
            {"name": f"c{i}", "image": "registry.example/job:1", "resources": {"limits": limits}}
        )
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, **meta},
        "spec": {"schedulerName": "hami-scheduler", "containers": containers},
    }


def notes_of(obj: Mapping[str, Any]) -> dict[str, str]:
    """The object's annotations (empty when it has none)."""
    return dict((obj.get("metadata") or {}).get("annotations") or {})


# ---------------------------------------------------------------------- independent reading


@dataclass(frozen=True, slots=True)
class Share:
    """One card share in a pod annotation: `uuid,type,mem,cores`."""

    uuid: str
    type: str
    memory: int
    cores: int


def read_shares(value: str) -> list[list[Share]]:
    """A pod device annotation as containers of shares (the empty piece after a final `;` is
    not a container). Raises `ValueError` on a malformed value."""
    pieces = value.split(";")
    if value.endswith(";"):
        pieces.pop()
    out: list[list[Share]] = []
    for piece in pieces:
        shares = []
        for part in piece.split(":"):
            if "," not in part:
                continue
            uuid, kind, mem, cores = part.split(",")[:4]
            shares.append(Share(uuid, kind, int(mem), int(cores)))
        out.append(shares)
    return out


@dataclass(frozen=True, slots=True)
class Card:
    """A registered card: its totals."""

    uuid: str
    count: int
    memory: int
    cores: int


def read_cards(node: Mapping[str, Any]) -> dict[str, Card]:
    """The node's registered cards by UUID (none when it has no register annotation)."""
    value = notes_of(node).get(REGISTER)
    if not value:
        return {}
    return {
        d["id"]: Card(d["id"], int(d["count"]), int(d["devmem"]), int(d["devcore"]))
        for d in json.loads(value)
    }


@dataclass(slots=True)
class Used:
    """What pods hold of one card."""

    slots: int = 0
    memory: int = 0
    cores: int = 0
    pods: list[str] = field(default_factory=list)


def _live(pod: Mapping[str, Any]) -> bool:
    phase = (pod.get("status") or {}).get("phase")
    return phase not in ("Succeeded", "Failed")


def bound_usage(cluster: MemoryCluster) -> dict[str, dict[str, Used]]:
    """node → card → usage, summed over live pods BOUND to the node they were decided for."""
    out: dict[str, dict[str, Used]] = {}
    for pod in cluster.list_pods():
        notes = notes_of(pod)
        node = (pod.get("spec") or {}).get("nodeName")
        if not node or notes.get(ASSIGNED_NODE) != node or not _live(pod):
            continue
        name = pod["metadata"]["name"]
        for shares in read_shares(notes.get(ALLOCATED, "")):
            for s in shares:
                used = out.setdefault(node, {}).setdefault(s.uuid, Used())
                used.slots += 1
                used.memory += s.memory
                used.cores += s.cores
                used.pods.append(name)
    return out


def oversubscribed(cluster: MemoryCluster) -> list[str]:
    """Every card of every node held beyond its count, memory or cores by bound live pods."""
    problems = []
    for node, cards in sorted(bound_usage(cluster).items()):
        try:
            registered = read_cards(cluster.get_node(node))
        except ClusterError:
            registered = {}
        for uuid, used in sorted(cards.items()):
            card = registered.get(uuid)
            if card is None:
                problems.append(f"{node}/{uuid}: held by {used.pods} but not registered")
                continue
            for what, have, total in (
                ("slots", used.slots, card.count),
                ("MiB", used.memory, card.memory),
                ("cores", used.cores, card.cores),
            ):
                if have > total:
                    problems.append(f"{node}/{uuid}: {have} {what} > {total}, pods {used.pods}")
    return problems


def inconsistent(cluster: MemoryCluster) -> list[str]:
    """Every bound pod whose annotations disagree with its spec, its node or each other."""
    problems = []
    for pod in cluster.list_pods():
        name = pod["metadata"]["name"]
        notes = notes_of(pod)
        node = (pod.get("spec") or {}).get("nodeName")
        if not node:
            continue
        if ASSIGNED_NODE not in notes:
            problems.append(f"{name}: bound to {node} without a decision")
            continue
        if notes[ASSIGNED_NODE] != node:
            problems.append(f"{name}: bound to {node}, decided for {notes[ASSIGNED_NODE]}")
            continue
        try:
            allocated = read_shares(notes.get(ALLOCATED, ""))
            pending = read_shares(notes.get(TO_ALLOCATE, ""))
        except ValueError as exc:
            problems.append(f"{name}: unreadable decision: {exc}")
            continue
        containers = pod["spec"]["containers"]
        if len(allocated) != len(containers):
            problems.append(f"{name}: {len(allocated)} entries for {len(containers)} containers")
            continue
        cards = read_cards(cluster.get_node(node))
        for i, (c, shares) in enumerate(zip(containers, allocated, strict=True)):
            limits = c["resources"]["limits"]
            if len(shares) != int(limits[XPU]):
                problems.append(f"{name}/{c['name']}: {len(shares)} cards for {limits[XPU]}")
            if len({s.uuid for s in shares}) != len(shares):
                problems.append(f"{name}/{c['name']}: one card twice in {shares}")
            for s in shares:
                if s.memory != int(limits[XPU_MEM]):
                    problems.append(f"{name}/{c['name']}: {s.memory} MiB for {limits[XPU_MEM]}")
                if s.uuid not in cards:
                    problems.append(f"{name}/{c['name']}: card {s.uuid} is not on {node}")
            if i < len(pending) and pending[i] and pending[i] != shares:
                problems.append(f"{name}/{c['name']}: to-allocate {pending[i]} != {shares}")
        if len(pending) > len(allocated):
            problems.append(f"{name}: to-allocate has more containers than allocated")
        phase = notes.get(BIND_PHASE)
        if phase not in (None, "allocating", "success", "failed"):
            problems.append(f"{name}: bind-phase {phase!r}")
        if phase == "success" and any(pending):
            problems.append(f"{name}: bind-phase success with {pending} still to allocate")
        if phase is None and any(pending) and _live(pod):
            problems.append(f"{name}: bound with devices to allocate but no bind-phase")
    return problems


# ---------------------------------------------------------------------- gated watches


class GatedStream(Iterator[WatchEvent]):
    """A watch whose events reach the reader only when the test releases them.

    It opens with a `RESYNC` of the full list (released at once, as an informer's first list
    is), then collects the store's changes; `deliver(n)` releases up to `n` of them (all when
    None) and returns once the reader has handled them and waits for more.
    """

    def __init__(self, store: MemoryCluster, kind: str) -> None:
        self._store = store
        self._kind = kind
        self._cond = threading.Condition()
        listing = store.list_objects(kind)
        self._cursor = listing["metadata"]["resourceVersion"]
        self._pending: deque[WatchEvent] = deque([WatchEvent("RESYNC", listing)])
        self._released = 1
        self._waiting = False
        self._stopped = False

    def __iter__(self) -> GatedStream:
        return self

    def __next__(self) -> WatchEvent:
        with self._cond:
            while not self._stopped and not (self._released and self._pending):
                self._waiting = True
                self._cond.notify_all()
                self._cond.wait()
            self._waiting = False
            if self._stopped:
                raise StopIteration
            self._released -= 1
            return self._pending.popleft()

    def stop(self) -> None:
        """End the stream (the reader sees it end, as on a dropped connection)."""
        with self._cond:
            self._stopped = True
            self._cond.notify_all()

    @property
    def stopped(self) -> bool:
        """Whether `stop()` was called."""
        return self._stopped

    def _collect(self) -> None:
        with self._store.watch(self._kind, resource_version=self._cursor, timeout=0) as changes:
            for event in changes:
                self._pending.append(event)
                self._cursor = event.object["metadata"]["resourceVersion"]

    def backlog(self) -> int:
        """How many changes happened that the reader has not been given."""
        with self._cond:
            self._collect()
            return len(self._pending) - self._released

    def deliver(self, n: int | None = None, timeout: float = 5.0) -> int:
        """Release up to `n` collected changes (all when None); wait until they are handled."""
        with self._cond:
            self._collect()
            available = len(self._pending) - self._released
            count = available if n is None else max(0, min(n, available))
            self._released += count
            self._cond.notify_all()
            done = self._cond.wait_for(
                lambda: self._stopped or (self._waiting and self._released == 0), timeout
            )
            assert done, f"the {self._kind} watch reader did not take its events"
            return count


class GatedCluster:
    """A `Cluster` over a shared `MemoryCluster`: writes and reads go straight through, watches
    are `GatedStream`s the test delivers. `faults` maps a verb name to a one-shot failure:
    `"fail"` (nothing written, an error returned) or `"lost"` (written, then an error, as when
    the reply times out)."""

    def __init__(self, store: MemoryCluster) -> None:
        self.store = store
        self.faults: dict[str, str] = {}
        self._lock = threading.Lock()
        self._streams: dict[str, GatedStream] = {}
        self._opened = threading.Condition(self._lock)

    def _write(self, verb: str, action: Callable[[], Any]) -> Any:
        with self._lock:
            fault = self.faults.pop(verb, None)
        if fault == "fail":
            raise Unavailable(f"{verb}: injected 503", status=503)
        result = action()
        if fault == "lost":
            raise Unavailable(f"{verb}: injected timeout after the write", status=504)
        return result

    def stream(self, kind: str, timeout: float = 5.0) -> GatedStream:
        """The current watch stream of `kind` (waits for the reader to open one)."""
        with self._opened:
            ok = self._opened.wait_for(
                lambda: kind in self._streams and not self._streams[kind].stopped, timeout
            )
            assert ok, f"no {kind} watch was opened"
            return self._streams[kind]

    def deliver(self, kind: str, n: int | None = None) -> int:
        """Release up to `n` changes of `kind` to the reader (all when None)."""
        return self.stream(kind).deliver(n)

    def drop_watches(self) -> None:
        """End every open watch (the reader relists)."""
        with self._lock:
            streams = list(self._streams.values())
        for s in streams:
            s.stop()

    def _watch(self, kind: str) -> GatedStream:
        stream = GatedStream(self.store, kind)
        with self._opened:
            self._streams[kind] = stream
            self._opened.notify_all()
        return stream

    # -- the Cluster verbs

    def get_node(self, name: str) -> Obj:
        """Read through."""
        return self.store.get_node(name)

    def list_nodes(self, *, label_selector: str | None = None) -> list[Obj]:
        """Read through."""
        return self.store.list_nodes(label_selector=label_selector)

    def get_pod(self, namespace: str, name: str) -> Obj:
        """Read through."""
        return self.store.get_pod(namespace, name)

    def list_pods(
        self,
        *,
        namespace: str | None = None,
        node_name: str | None = None,
        label_selector: str | None = None,
    ) -> list[Obj]:
        """Read through."""
        return self.store.list_pods(
            namespace=namespace, node_name=node_name, label_selector=label_selector
        )

    def patch_node_metadata(
        self,
        name: str,
        *,
        annotations: Mapping[str, str | None] | None = None,
        labels: Mapping[str, str | None] | None = None,
        resource_version: str | None = None,
    ) -> Obj:
        """Write through, unless a fault is armed for `patch_node_metadata`."""
        return self._write(  # type: ignore[no-any-return]
            "patch_node_metadata",
            lambda: self.store.patch_node_metadata(
                name, annotations=annotations, labels=labels, resource_version=resource_version
            ),
        )

    def patch_pod_metadata(
        self,
        namespace: str,
        name: str,
        *,
        annotations: Mapping[str, str | None] | None = None,
        labels: Mapping[str, str | None] | None = None,
        resource_version: str | None = None,
    ) -> Obj:
        """Write through, unless a fault is armed for `patch_pod_metadata`."""
        return self._write(  # type: ignore[no-any-return]
            "patch_pod_metadata",
            lambda: self.store.patch_pod_metadata(
                namespace,
                name,
                annotations=annotations,
                labels=labels,
                resource_version=resource_version,
            ),
        )

    def bind_pod(self, namespace: str, name: str, uid: str | None, node: str) -> None:
        """Write through, unless a fault is armed for `bind_pod`."""
        self._write("bind_pod", lambda: self.store.bind_pod(namespace, name, uid, node))

    def watch_nodes(self, *, resource_version: str | None = None) -> Iterator[WatchEvent]:
        """A gated node watch (always from a fresh list)."""
        return self._watch("nodes")

    def watch_pods(self, *, resource_version: str | None = None) -> Iterator[WatchEvent]:
        """A gated pod watch (always from a fresh list)."""
        return self._watch("pods")

    def get_lease(self, namespace: str, name: str) -> Obj:
        """Read through."""
        return self.store.get_lease(namespace, name)

    def create_lease(self, namespace: str, lease: Obj) -> Obj:
        """Write through."""
        return self.store.create_lease(namespace, lease)

    def replace_lease(self, namespace: str, lease: Obj) -> Obj:
        """Write through."""
        return self.store.replace_lease(namespace, lease)

    def create_event(self, namespace: str, event: Obj) -> None:
        """Events are dropped (they are advice, and would only grow the store)."""


# ---------------------------------------------------------------------- waiting


def eventually(check: Callable[[], Any], timeout: float = 10.0, what: str = "condition") -> float:
    """Poll `check` every 10 ms until truthy; return the seconds it took (fail after timeout)."""
    start = time.monotonic()
    while True:
        if check():
            return time.monotonic() - start
        if time.monotonic() - start > timeout:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.01)
