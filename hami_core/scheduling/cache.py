"""The usage cache: every node's cards and how much of each is taken, kept incrementally.

What it holds, per node: the cards of each vendor (`DeviceUsage`, decoded through
`hami_read_node` only when the node's annotations, capacity or allocatable change — never per
filter; the node lock, handshake and device-cordon annotations do not count as a change), the
vendor's NVLink pair scores, the decode error of a vendor whose annotation is malformed (that
node fails filter with the message; other nodes and vendors are unaffected), and the vendors
marked unhealthy.

Where usage comes from (reference §2.4, §7.3):
- pods (`upsert_pod` / `remove_pod`): a pod that carries `hami.io/vgpu-node` and is not
  Succeeded/Failed contributes each vendor's `…-devices-allocated` annotation to that node's
  cards, matched by UUID (unknown UUIDs are ignored and logged). A pod update replaces the pod's
  previous contribution. When the annotation holds exactly one entry per init and app container,
  init containers count as `max(peak init, sum of app)` per card (they run one at a time, before
  the app containers), and only app containers once every init container exited 0; otherwise
  every entry is summed.
- the engine's own decisions (`reserve`): counted at once, before the pod's patch arrives. A
  reservation replaces whatever the pod contributed before (as HAMi drops a re-filtered pod's
  cached allocation). It ends when a pod event carrying exactly that decision arrives, when a
  pod event carries a decision that is neither this one nor the one the pod held when it was
  reserved (another replica decided the pod again: its annotations count from then on), or
  when it expires (`expire(now)`, after `reservation_ttl` seconds) — the pod's own
  annotations, if any, count again from then on. An event still carrying the earlier decision
  (written before this one's patch) keeps the reservation.

Counters are exact integer sums, so adding and removing contributions in any order gives the
same numbers as `UsageCache.rebuild(...)` from the same nodes and pods; `snapshot()` returns a
comparable value to check that. All methods take one re-entrant lock; `locked()` holds it
across several calls (the engine chooses and reserves under it).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Hashable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from hami_core.model import ContainerDevice, DeviceUsage, NodeView, PodDevices, VendorSpec
from hami_core.protocol import ProtocolError, decode_pair_scores, decode_pod_devices
from hami_core.protocol.keys import ASSIGNED_NODE, DEVICE_CORDON, NODE_LOCK
from hami_core.scheduling.score import node_score

if TYPE_CHECKING:
    from hami_core.plugins import VendorRegistry

__all__ = [
    "DEFAULT_RESERVATION_TTL",
    "CacheSnapshot",
    "CardUsage",
    "NodeSnapshot",
    "NodeState",
    "PodUsage",
    "UsageCache",
    "add_usage",
    "pod_key",
    "pod_usage",
    "usage_of",
]

log = logging.getLogger(__name__)

DEFAULT_RESERVATION_TTL = 60.0
"""Seconds a filter decision is counted without the pod's patch arriving."""

CardUsage = tuple[int, int, int]
"""What one pod holds of one card: `(slots, MiB, cores)`."""

PodUsage = Mapping[str, Mapping[str, CardUsage]]
"""What one pod holds on its node: vendor key → card UUID → `(slots, MiB, cores)`."""

_TERMINAL = frozenset({"Succeeded", "Failed"})


def pod_key(namespace: str, name: str) -> str:
    """The cache's key for a pod: `namespace/name`."""
    return f"{namespace}/{name}"


def _add(into: dict[str, list[int]], uuid: str, mem: int, cores: int) -> None:
    cur = into.get(uuid)
    if cur is None:
        into[uuid] = [1, mem, cores]
    else:
        cur[0] += 1
        cur[1] += mem
        cur[2] += cores


def _collapse(
    containers: Sequence[Sequence[ContainerDevice]], init_count: int, init_done: bool
) -> dict[str, CardUsage]:
    app: dict[str, list[int]] = {}
    peak: dict[str, list[int]] = {}
    for position, devices in enumerate(containers):
        if position < init_count:
            if init_done:
                continue
            for d in devices:
                cur = peak.setdefault(d.uuid, [0, 0, 0])
                cur[0] = max(cur[0], 1)
                cur[1] = max(cur[1], d.usedmem)
                cur[2] = max(cur[2], d.usedcores)
        else:
            for d in devices:
                _add(app, d.uuid, d.usedmem, d.usedcores)
    out: dict[str, CardUsage] = {}
    for uuid in dict.fromkeys([*peak, *app]):
        a = app.get(uuid, [0, 0, 0])
        p = peak.get(uuid, [0, 0, 0])
        out[uuid] = (max(a[0], p[0]), max(a[1], p[1]), max(a[2], p[2]))
    return out


def usage_of(
    pod_devices: Mapping[str, Sequence[Sequence[ContainerDevice]]],
    containers: int,
    init_containers: int = 0,
    init_done: bool = False,
) -> dict[str, dict[str, CardUsage]]:
    """What a pod with these devices holds of each card (module docstring for init rules).

    `containers` is the pod's total container count (init + app); when a vendor's list does not
    have exactly that many entries, every entry is summed.
    """
    out: dict[str, dict[str, CardUsage]] = {}
    for vendor, per_container in pod_devices.items():
        n_init = init_containers if len(per_container) == containers else 0
        usage = _collapse(per_container, n_init, init_done)
        if usage:
            out[vendor] = usage
    return out


def _init_done(pod: Mapping[str, Any], init_count: int) -> bool:
    if init_count == 0:
        return True
    status = pod.get("status")
    statuses = status.get("initContainerStatuses") if isinstance(status, Mapping) else None
    if not isinstance(statuses, list) or len(statuses) != init_count:
        return False
    for entry in statuses:
        state = entry.get("state") if isinstance(entry, Mapping) else None
        terminated = state.get("terminated") if isinstance(state, Mapping) else None
        if not isinstance(terminated, Mapping) or terminated.get("exitCode") != 0:
            return False
    return True


def _phase(pod: Mapping[str, Any]) -> Any:
    status = pod.get("status")
    return status.get("phase") if isinstance(status, Mapping) else None


def _count(spec: Mapping[str, Any], key: str) -> int:
    items = spec.get(key)
    return len(items) if isinstance(items, list) else 0


@lru_cache(maxsize=8192)
def _containers(value: str) -> tuple[tuple[ContainerDevice, ...], ...]:
    """An allocated annotation's containers (memoised: a pod's events repeat its value)."""
    containers = decode_pod_devices(value)
    if value.endswith(";"):
        containers.pop()  # the empty piece after the final terminator is not a container
    return tuple(tuple(c) for c in containers)


def pod_usage(
    specs: Iterable[VendorSpec], pod: Mapping[str, Any]
) -> tuple[str, dict[str, dict[str, CardUsage]]] | None:
    """The node a pod is assigned to and what it holds there, or None when it holds nothing.

    A vendor whose allocated annotation cannot be decoded contributes nothing (logged).
    """
    meta = pod.get("metadata") if isinstance(pod, Mapping) else None
    annotations = meta.get("annotations") if isinstance(meta, Mapping) else None
    if not isinstance(annotations, Mapping):
        return None
    node = annotations.get(ASSIGNED_NODE)
    if not node or not isinstance(node, str):
        return None
    if _phase(pod) in _TERMINAL:
        return None
    spec_obj = pod.get("spec") or {}
    n_init = _count(spec_obj, "initContainers") if isinstance(spec_obj, Mapping) else 0
    n_all = n_init + (_count(spec_obj, "containers") if isinstance(spec_obj, Mapping) else 0)
    decoded: dict[str, tuple[tuple[ContainerDevice, ...], ...]] = {}
    for spec in specs:
        value = annotations.get(spec.annotations.allocated)
        if not isinstance(value, str):
            continue
        try:
            decoded[spec.key] = _containers(value)
        except ProtocolError as exc:
            where = (meta or {}).get("namespace"), (meta or {}).get("name")
            log.warning("pod %s/%s: %s: %s (not counted)", *where, spec.annotations.allocated, exc)
    done = _init_done(pod, n_init)
    return node, usage_of(decoded, n_all, n_init, done)


@dataclass(slots=True)
class VendorCards:
    """One vendor's cards on one node, with live counters, and its NVLink pair scores.

    `orders` memoises the engine's card orders (policy, weights, request → ordered cards); the
    cache empties it whenever a counter of these cards changes.
    """

    devices: list[DeviceUsage]
    by_id: dict[str, DeviceUsage]
    pair_scores: dict[str, dict[str, int]] = field(default_factory=dict)
    orders: dict[Hashable, tuple[DeviceUsage, ...]] = field(default_factory=dict)


@dataclass(slots=True)
class NodeState:
    """One node as the cache keeps it. Read it only under `UsageCache.locked()`; never modify.

    `fits` memoises the engine's whole-node answers (the engine's number for a pod shape →
    chosen cards or reason, and the node's score); the cache empties it whenever anything the
    answer reads changes: a counter, the node object, a vendor's health.
    """

    view: NodeView
    vendors: dict[str, VendorCards] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    unhealthy: set[str] = field(default_factory=set)
    fingerprint: tuple[Any, ...] = ()
    utilisation_: float | None = None
    fits: dict[int, tuple[PodDevices | str, float]] = field(default_factory=dict)

    def changed(self) -> None:
        """Forget what was computed from the node's counters, object or health."""
        self.utilisation_ = None
        self.fits.clear()

    def utilisation(self) -> float:
        """`node_score` over the healthy vendors' cards (kept until the counters change)."""
        if self.utilisation_ is None:
            self.utilisation_ = node_score(self.all_cards())
        return self.utilisation_

    def cards(self, vendor: str) -> list[DeviceUsage]:
        """The vendor's cards offered for new work (none while the vendor is unhealthy)."""
        if vendor in self.unhealthy:
            return []
        cards = self.vendors.get(vendor)
        return cards.devices if cards is not None else []

    def all_cards(self) -> Iterator[DeviceUsage]:
        """Every card of every healthy vendor."""
        for vendor, cards in self.vendors.items():
            if vendor not in self.unhealthy:
                yield from cards.devices

    def registered(self) -> bool:
        """True when the node offers any vendor's cards or has a vendor error to report."""
        return bool(self.vendors or self.errors)


@dataclass(slots=True)
class _Holding:
    node: str | None = None
    usage: dict[str, dict[str, CardUsage]] | None = None
    reserved_node: str | None = None
    reserved: dict[str, dict[str, CardUsage]] | None = None
    expires: float = 0.0
    pod_devices: PodDevices | None = None
    prior_node: str | None = None
    prior: dict[str, dict[str, CardUsage]] | None = None
    bound: str | None = None  # the pod's spec.nodeName

    def effective(self) -> tuple[str | None, dict[str, dict[str, CardUsage]] | None]:
        if self.reserved is not None:
            return self.reserved_node, self.reserved
        return self.node, self.usage


@dataclass(frozen=True, slots=True)
class NodeSnapshot:
    """A node's cards as `(uuid, used, usedmem, usedcores)` per vendor, errors, unhealthy."""

    vendors: Mapping[str, tuple[tuple[str, int, int, int], ...]]
    errors: Mapping[str, str]
    unhealthy: frozenset[str]


@dataclass(frozen=True, slots=True)
class CacheSnapshot:
    """A comparable copy of the whole cache (nodes, pod contributions, reservations)."""

    nodes: Mapping[str, NodeSnapshot]
    pods: Mapping[str, tuple[str, PodUsage]]
    reservations: Mapping[str, tuple[str, PodUsage]]


class UsageCache:
    """Per-node cards and usage, updated by node and pod events and by the engine's decisions."""

    def __init__(
        self,
        registry: VendorRegistry,
        config: Mapping[str, Any] | None = None,
        *,
        reservation_ttl: float = DEFAULT_RESERVATION_TTL,
    ) -> None:
        """An empty cache reading nodes with `registry`'s vendors and the device `config`."""
        self.registry = registry
        self.config: Mapping[str, Any] = config or {}
        self.reservation_ttl = reservation_ttl
        self.specs = registry.specs()
        self._lock = threading.RLock()
        self._nodes: dict[str, NodeState] = {}
        self._holdings: dict[str, _Holding] = {}
        self._by_node: dict[str, set[str]] = {}
        # node -> (vendor, uuid) -> [slots, MiB, cores] of the pods bound (nodeName) where
        # their annotations assign them: what a list of the node's pods would add up to
        self._bound_used: dict[str, dict[tuple[str, str], list[int]]] = {}
        self._reserved: dict[str, float] = {}  # pod key -> expiry, for every live reservation
        self._volatile = frozenset(
            {
                NODE_LOCK,
                DEVICE_CORDON,
                *(s.annotations.handshake for s in self.specs if s.annotations.handshake),
            }
        )

    @classmethod
    def rebuild(
        cls,
        registry: VendorRegistry,
        config: Mapping[str, Any] | None,
        nodes: Iterable[Mapping[str, Any]],
        pods: Iterable[Mapping[str, Any]],
        *,
        reservation_ttl: float = DEFAULT_RESERVATION_TTL,
    ) -> UsageCache:
        """A cache built from scratch from these node and pod objects."""
        cache = cls(registry, config, reservation_ttl=reservation_ttl)
        for n in nodes:
            cache.upsert_node(n)
        for p in pods:
            cache.upsert_pod(p)
        return cache

    @contextmanager
    def locked(self) -> Iterator[UsageCache]:
        """Hold the cache's lock across several calls (re-entrant)."""
        with self._lock:
            yield self

    # ------------------------------------------------------------------ nodes

    def upsert_node(self, node: Mapping[str, Any]) -> None:
        """Add or update a node from its object; its cards are re-read only if they changed.

        Raises `ValueError` when the object has no `metadata.name`.
        """
        view = NodeView.from_obj(node)
        if not view.name:
            raise ValueError("node object without metadata.name")
        fingerprint = (
            tuple(sorted((k, v) for k, v in view.annotations.items() if k not in self._volatile)),
            tuple(sorted(view.capacity.items())),
            tuple(sorted(view.allocatable.items())),
        )
        with self._lock:
            state = self._nodes.get(view.name)
            if state is not None and state.fingerprint == fingerprint:
                state.view = view
                state.fits.clear()  # the volatile annotations (cordon, lock) are read by fits
                return
            unhealthy = state.unhealthy if state is not None else set()
            state = NodeState(view=view, unhealthy=unhealthy, fingerprint=fingerprint)
            self._read_cards(state)
            self._nodes[view.name] = state
            for key in self._by_node.get(view.name, ()):
                self._apply(view.name, self._holdings[key].effective()[1], 1, key)

    def _read_cards(self, state: NodeState) -> None:
        hook = self.registry.hook.hami_read_node
        for spec in self.specs:
            try:
                infos = hook(spec=spec, node=state.view, config=self.config)
                pairs: dict[str, dict[str, int]] = {}
                key = spec.annotations.pair_scores
                if infos and key and key in state.view.annotations:
                    try:
                        pairs = decode_pair_scores(state.view.annotations[key])
                    except ProtocolError as exc:
                        raise exc.with_annotation(key) from None
            except Exception as exc:  # a bad annotation or a broken vendor fails only this node
                register = spec.annotations.node_register
                if isinstance(exc, ProtocolError) and exc.annotation is None and register:
                    exc = exc.with_annotation(register)
                message = f"{spec.key}: {exc}"
                log.warning("node %s: %s", state.view.name, message)
                state.errors[spec.key] = message
                continue
            if not infos:
                continue
            devices = [DeviceUsage.from_info(spec.key, info) for info in infos]
            state.vendors[spec.key] = VendorCards(
                devices=devices, by_id={d.id: d for d in devices}, pair_scores=pairs
            )

    def remove_node(self, name: str) -> None:
        """Forget a node's cards (pods assigned to it are kept, and count if it comes back)."""
        with self._lock:
            self._nodes.pop(name, None)

    def mark_vendor_unhealthy(self, node: str, vendor: str) -> None:
        """Offer none of `vendor`'s cards on `node` until marked healthy again."""
        with self._lock:
            state = self._nodes.get(node)
            if state is not None:
                state.unhealthy.add(vendor)
                state.changed()

    def mark_vendor_healthy(self, node: str, vendor: str) -> None:
        """Offer `vendor`'s cards on `node` again."""
        with self._lock:
            state = self._nodes.get(node)
            if state is not None:
                state.unhealthy.discard(vendor)
                state.changed()

    def node(self, name: str) -> NodeState | None:
        """The node's state (read under `locked()`, never modify), or None if unknown."""
        return self._nodes.get(name)

    def states(self) -> Mapping[str, NodeState]:
        """Every node's state by name: the cache's own mapping (read it under `locked()`,
        never modify; for loops over many nodes)."""
        return self._nodes

    def node_names(self) -> list[str]:
        """Every known node, sorted."""
        with self._lock:
            return sorted(self._nodes)

    # ------------------------------------------------------------------ pods

    def upsert_pod(self, pod: Mapping[str, Any]) -> None:
        """Count (or stop counting) a pod from its current object; replaces its previous part.

        Raises `ValueError` when the object has no `metadata.name`.
        """
        meta = pod.get("metadata") if isinstance(pod, Mapping) else None
        if not isinstance(meta, Mapping) or not meta.get("name"):
            raise ValueError("pod object without metadata.name")
        key = pod_key(str(meta.get("namespace") or "default"), str(meta["name"]))
        found = pod_usage(self.specs, pod)
        spec = pod.get("spec")
        bound = spec.get("nodeName") if isinstance(spec, Mapping) else None
        bound = bound if isinstance(bound, str) and bound else None
        with self._lock:
            holding = self._holdings.get(key)
            if found is None:
                if holding is None:
                    return
                terminal = _phase(pod) in _TERMINAL
                self._bind_index(key, holding, bound)
                self._set(key, holding, None, None, drop_reservation=terminal)
                return
            node, usage = found
            if holding is None:
                holding = self._holdings[key] = _Holding()
            self._bind_index(key, holding, bound)
            matches = holding.reserved_node == node and holding.reserved == usage
            earlier = holding.prior_node == node and holding.prior == usage
            ended = holding.reserved is not None and (matches or not earlier)
            self._set(key, holding, node, usage, drop_reservation=ended)

    def remove_pod(self, namespace: str, name: str) -> None:
        """Stop counting a deleted pod (its reservation included)."""
        key = pod_key(namespace, name)
        with self._lock:
            holding = self._holdings.get(key)
            if holding is not None:
                self._set(key, holding, None, None, drop_reservation=True)

    def reserve(
        self,
        key: str,
        node: str,
        pod_devices: PodDevices,
        now: float,
        *,
        containers: int | None = None,
        init_containers: int = 0,
    ) -> None:
        """Count the engine's decision for pod `key` (`namespace/name`) until it expires.

        Replaces the pod's earlier reservation and its earlier annotated usage. `containers`
        (default: the length of the longest vendor list) and `init_containers` describe the pod
        so init containers count as they will once the pod's annotations arrive.
        """
        total = containers
        if total is None:
            total = max((len(c) for c in pod_devices.values()), default=0)
        usage = usage_of(pod_devices, total, init_containers)
        with self._lock:
            holding = self._holdings.get(key)
            if holding is None:
                holding = self._holdings[key] = _Holding()
            self._unapply(key, holding)
            holding.prior_node, holding.prior = holding.node, holding.usage
            holding.reserved_node = node
            holding.reserved = usage
            holding.pod_devices = pod_devices
            holding.expires = now + self.reservation_ttl
            self._reserved[key] = holding.expires
            self._reapply(key, holding)

    def release(self, key: str) -> None:
        """Drop pod `key`'s reservation now (its annotated usage, if any, counts again)."""
        with self._lock:
            holding = self._holdings.get(key)
            if holding is not None and holding.reserved is not None:
                self._set(key, holding, holding.node, holding.usage, drop_reservation=True)

    def expire(self, now: float) -> list[str]:
        """Drop reservations older than the TTL; returns the pod keys whose reservation ended."""
        with self._lock:
            ended = [k for k, expires in self._reserved.items() if expires <= now]
            for key in ended:
                self.release(key)
            return ended

    def reservations(self) -> dict[str, tuple[str, PodDevices]]:
        """Pod key → (node, devices) of every live reservation."""
        with self._lock:
            out: dict[str, tuple[str, PodDevices]] = {}
            for k in self._reserved:
                h = self._holdings[k]
                out[k] = (h.reserved_node or "", h.pod_devices or {})
            return out

    def bound_usage(self, node: str, exclude: str) -> dict[tuple[str, str], list[int]]:
        """`(vendor, uuid)` → `[slots, MiB, cores]` held on `node`'s cards by the pods bound
        there (`spec.nodeName`) whose annotations assign them there, pod `exclude` left out:
        what a list of the node's pods would show, as far as the watch has delivered them.
        Reservations are not counted."""
        with self._lock:
            used = {card: list(total) for card, total in self._bound_used.get(node, {}).items()}
            holding = self._holdings.get(exclude)
            part = _bound_part(holding) if holding is not None else None
            if part is not None and part[0] == node:
                add_usage(used, part[1], -1)
        return used

    def holding(self, key: str) -> tuple[str, PodUsage] | None:
        """Where pod `key` is counted and what it holds (reservation first), if anywhere."""
        with self._lock:
            h = self._holdings.get(key)
            if h is None:
                return None
            node, usage = h.effective()
            return (node, usage) if node is not None and usage is not None else None

    # ------------------------------------------------------------------ internals

    def _set(
        self,
        key: str,
        holding: _Holding,
        node: str | None,
        usage: dict[str, dict[str, CardUsage]] | None,
        *,
        drop_reservation: bool,
    ) -> None:
        self._unapply(key, holding)
        before = _bound_part(holding)
        holding.node, holding.usage = node, usage
        self._count_bound(before, _bound_part(holding))
        if drop_reservation:
            holding.reserved_node = holding.reserved = holding.pod_devices = None
            holding.prior_node = holding.prior = None
            self._reserved.pop(key, None)
        if holding.usage is None and holding.reserved is None:
            self._bind_index(key, holding, None)
            del self._holdings[key]
            return
        self._reapply(key, holding)

    def _bind_index(self, key: str, holding: _Holding, bound: str | None) -> None:
        if holding.bound == bound:
            return
        before = _bound_part(holding)
        holding.bound = bound
        self._count_bound(before, _bound_part(holding))

    def _count_bound(
        self,
        before: tuple[str, dict[str, dict[str, CardUsage]]] | None,
        after: tuple[str, dict[str, dict[str, CardUsage]]] | None,
    ) -> None:
        if before is after or before == after:
            return
        for part, sign in ((before, -1), (after, 1)):
            if part is not None:
                add_usage(self._bound_used.setdefault(part[0], {}), part[1], sign)

    def _unapply(self, key: str, holding: _Holding) -> None:
        node, usage = holding.effective()
        if node is None:
            return
        self._apply(node, usage, -1, key)
        keys = self._by_node.get(node)
        if keys is not None:
            keys.discard(key)
            if not keys:
                del self._by_node[node]

    def _reapply(self, key: str, holding: _Holding) -> None:
        node, usage = holding.effective()
        if node is None:
            return
        self._by_node.setdefault(node, set()).add(key)
        self._apply(node, usage, 1, key)

    def _apply(self, node: str, usage: PodUsage | None, sign: int, key: str) -> None:
        state = self._nodes.get(node)
        if state is None or not usage:
            return
        state.changed()
        for vendor, cards in usage.items():
            owned = state.vendors.get(vendor)
            if owned is not None:
                owned.orders.clear()
            for uuid, (slots, mem, cores) in cards.items():
                dev = owned.by_id.get(uuid) if owned is not None else None
                if dev is None:
                    if sign > 0:
                        log.info("pod %s: %s card %s is not on node %s", key, vendor, uuid, node)
                    continue
                dev.used += sign * slots
                dev.usedmem += sign * mem
                dev.usedcores += sign * cores

    # ------------------------------------------------------------------ inspection

    def snapshot(self) -> CacheSnapshot:
        """A comparable copy of the cache's state."""
        with self._lock:
            nodes = {
                name: NodeSnapshot(
                    vendors={
                        v: tuple((d.id, d.used, d.usedmem, d.usedcores) for d in c.devices)
                        for v, c in sorted(state.vendors.items())
                    },
                    errors=dict(state.errors),
                    unhealthy=frozenset(state.unhealthy),
                )
                for name, state in sorted(self._nodes.items())
            }
            pods = {
                k: (h.node, _frozen(h.usage))
                for k, h in sorted(self._holdings.items())
                if h.node is not None and h.usage is not None
            }
            reservations = {
                k: (h.reserved_node, _frozen(h.reserved))
                for k, h in sorted(self._holdings.items())
                if h.reserved_node is not None and h.reserved is not None
            }
            return CacheSnapshot(nodes=nodes, pods=pods, reservations=reservations)


def add_usage(totals: dict[tuple[str, str], list[int]], usage: PodUsage, sign: int = 1) -> None:
    """Add (`sign` -1: take away) a pod's usage to per-card `[slots, MiB, cores]` totals keyed
    by `(vendor, uuid)`."""
    for vendor, cards in usage.items():
        for uuid, (slots, mem, cores) in cards.items():
            total = totals.setdefault((vendor, uuid), [0, 0, 0])
            total[0] += sign * slots
            total[1] += sign * mem
            total[2] += sign * cores


def _bound_part(h: _Holding) -> tuple[str, dict[str, dict[str, CardUsage]]] | None:
    """What a holding adds to `bound_usage`: its annotated usage, when its pod is bound where
    its annotations assign it."""
    if h.bound is not None and h.bound == h.node and h.usage:
        return h.bound, h.usage
    return None


def _frozen(usage: Mapping[str, Mapping[str, CardUsage]]) -> PodUsage:
    return {v: dict(sorted(c.items())) for v, c in sorted(usage.items())}
