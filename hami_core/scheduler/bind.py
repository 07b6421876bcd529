"""`BindVerb`: the extender's `/bind` (reference hami-protocol §7.2, §3).

For a pod that asks something of a vendor:
1. read the pod (it must exist, match `PodUID`, and carry this node in `hami.io/vgpu-node`;
   a pod already bound to this node is a success, to another node an error);
2. take the node lock (`hami.io/mutex.lock`, resourceVersion precondition, retries): every
   bind of a pod that asks something of a vendor takes it, so concurrent binds to one node
   (several replicas, asynchronous binds) check capacity one at a time;
3. merge-patch `hami.io/bind-phase: allocating` and `hami.io/bind-time: <unix s>`;
4. under the node lock, check the decision against the pods bound to the node: a decision made
   on a stale view (a lagging watch, an expired reservation, another replica) that would
   over-commit a card is refused. The bound pods are read from the usage cache once the pod
   watch has shown step 3's write (`pods_seen`, waiting up to `cache_wait` seconds): the watch
   is ordered, and every bind that finished before this one took the lock wrote its Binding
   before that, so the cache then holds it. Otherwise (no informer, a lagging watch, a
   resourceVersion that is not a number) they are listed from the apiserver;
5. create the `Binding`.
Any failure in 2-5 rolls back what was written (bind-phase and bind-time removed, the lock
released if this bind took it, each with retries) and answers `{"Error": ...}` - except a
Binding that got no answer (timeout, 504): it may still land, so nothing is undone. A pod that
asks nothing of any vendor is just bound. When a container (init or regular) asks for a vendor whose
spec takes the node lock (`spec.node_lock`), the lock is kept and released by the device plugin once
the pod's `Allocate` calls end (HAMi's protocol); otherwise no device plugin releases it, so the
bind releases it itself once the Binding is written (or the bind failed).
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from hami_core.errors import RequestError
from hami_core.k8s.cluster import Cluster, ClusterError, Conflict, NotFound, Obj
from hami_core.nodelock import NodeLockContention, NodeLockError, lock_node, release_node_lock
from hami_core.plugins import VendorRegistry
from hami_core.protocol.keys import ASSIGNED_NODE, BIND_PHASE, BIND_PHASE_ALLOCATING, BIND_TIME
from hami_core.scheduler.decisions import decision_keys, usage_view
from hami_core.scheduler.events import EventRecorder
from hami_core.scheduler.metrics import SchedulerMetrics
from hami_core.scheduler.wire import BindArgs, bind_result
from hami_core.scheduling.cache import (
    CardUsage,
    NodeState,
    PodUsage,
    UsageCache,
    add_usage,
    pod_key,
    pod_usage,
)
from hami_core.scheduling.requests import RequestMemo

__all__ = ["BindError", "BindVerb"]

log = logging.getLogger(__name__)

_ROLLBACK_ATTEMPTS = 4
_ROLLBACK_BACKOFF = 0.05


class BindError(Exception):
    """One bind step failed; `reason` is its `hami_scheduler_failures_total` reason.

    `keep` is set when the Binding may still land (its request timed out): then nothing is
    rolled back, so a pod that does end up bound keeps its lock and bind-phase.
    """

    def __init__(self, message: str, reason: str, *, keep: bool = False) -> None:
        super().__init__(message)
        self.reason = reason
        self.keep = keep


_DECODED_SIZE = 50_000
"""Listed pods whose decoded usage `BindVerb` keeps (by uid and resourceVersion)."""

_UNCERTAIN_STATUS = (None, 408, 504)
"""Failures after which a write may still have been applied (no reply, timeouts)."""


class BindVerb:
    """Answers `/bind` calls (thread-safe; concurrent binds to one node meet at the lock)."""

    def __init__(
        self,
        cluster: Cluster,
        registry: VendorRegistry,
        config: Mapping[str, Any],
        *,
        metrics: SchedulerMetrics,
        events: EventRecorder,
        cache: UsageCache | None = None,
        requests: RequestMemo | None = None,
        pods_seen: Callable[[str, float], bool] | None = None,
        cache_wait: float = 1.0,
        node_lock_timeout: float = 300.0,
        success_events: bool = False,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.cluster = cluster
        self.registry = registry
        self.config = config
        self.metrics = metrics
        self.events = events
        self.cache = cache
        self.requests = requests or RequestMemo(registry, config)
        self.pods_seen = pods_seen
        self.cache_wait = cache_wait
        self.specs = registry.specs()
        self.decision_keys = decision_keys(self.specs)
        self.node_lock_timeout = node_lock_timeout
        self.success_events = success_events
        self.clock = clock
        self.sleep = sleep
        self._decoded: dict[tuple[Any, Any], tuple[str, PodUsage] | None] = {}

    def __call__(self, args: BindArgs) -> Obj:
        """The `ExtenderBindingResult` for these arguments (`Error` empty when bound)."""
        started = time.perf_counter()
        try:
            self._bind(args)
        except BindError as exc:
            self.metrics.fail("bind", exc.reason)
            log.info(
                "bind %s/%s to %s failed: %s", args.pod_namespace, args.pod_name, args.node, exc
            )
            return bind_result(str(exc))
        finally:
            self.metrics.bind_seconds.observe(time.perf_counter() - started)
        return bind_result()

    def _bind(self, args: BindArgs) -> None:
        missing = [
            field for field, value in (("PodName", args.pod_name), ("Node", args.node)) if not value
        ]
        if missing:
            raise BindError(f"bind args missing {', '.join(missing)}", "bad_request")
        namespace = args.pod_namespace or "default"
        name, node = args.pod_name, args.node
        pod = self._read_pod(namespace, name, args.pod_uid)
        bound = (pod.get("spec") or {}).get("nodeName")
        if bound == node:
            return  # a retried bind that already happened
        if bound:
            raise BindError(f"pod {namespace}/{name} is already bound to node {bound}", "pod")
        hold = self._lock_needed(pod, namespace, name)
        if hold is None:
            self._create_binding(pod, namespace, name, node)
            return
        annotations = (pod.get("metadata") or {}).get("annotations") or {}
        decided = annotations.get(ASSIGNED_NODE)
        if decided != node:
            raise BindError(
                f"pod {namespace}/{name}: the device decision is for node "
                f"{decided or '(none)'}, not {node}; filter it again",
                "decision",
            )
        self._locked_bind(pod, namespace, name, node, hold)
        if self.success_events:
            self.events.pod_event(pod, "BindingSucceed", f"bound to node {node}")

    def _read_pod(self, namespace: str, name: str, uid: str) -> Obj:
        try:
            pod = self.cluster.get_pod(namespace, name)
        except NotFound as exc:
            raise BindError(f"pod {namespace}/{name} not found", "pod") from exc
        except ClusterError as exc:
            raise BindError(f"pod {namespace}/{name}: cannot read it: {exc}", "apiserver") from exc
        actual = str((pod.get("metadata") or {}).get("uid") or "")
        if uid and actual and uid != actual:
            raise BindError(f"pod {namespace}/{name}: uid {uid} was replaced by {actual}", "pod")
        return pod

    def _lock_needed(self, pod: Obj, namespace: str, name: str) -> bool | None:
        """None when the pod asks nothing of any vendor; else whether the node lock is kept past
        the bind (a container, init or regular, asks for a vendor whose spec takes it: the
        device plugin serves only the lock holder and releases the lock once it is done)."""
        try:
            requests = self.requests(pod)
        except RequestError as exc:
            raise BindError(f"pod {namespace}/{name}: {exc}", "request") from exc
        if not any(requests):
            return None
        return any(
            self.registry.spec(r.vendor).node_lock for container in requests for r in container
        )

    def _create_binding(self, pod: Obj, namespace: str, name: str, node: str) -> None:
        uid = str((pod.get("metadata") or {}).get("uid") or "") or None
        try:
            self.cluster.bind_pod(namespace, name, uid, node)
        except Conflict as exc:
            if self._bound_to(namespace, name) == node:
                return
            raise BindError(f"pod {namespace}/{name}: binding refused: {exc}", "pod") from exc
        except NotFound as exc:
            raise BindError(f"pod {namespace}/{name} not found", "pod") from exc
        except ClusterError as exc:
            if exc.status not in _UNCERTAIN_STATUS:
                raise BindError(
                    f"pod {namespace}/{name}: binding to {node} failed: {exc}", "apiserver"
                ) from exc
            if self._bound_to(namespace, name) == node:
                return
            raise BindError(
                f"pod {namespace}/{name}: binding to {node} may still land: {exc}; its node "
                f"lock and {BIND_PHASE} are kept",
                "apiserver",
                keep=True,
            ) from exc

    def _bound_to(self, namespace: str, name: str) -> str | None:
        try:
            pod = self.cluster.get_pod(namespace, name)
        except ClusterError:
            return None
        bound = (pod.get("spec") or {}).get("nodeName")
        return str(bound) if bound else None

    def _locked_bind(self, pod: Obj, namespace: str, name: str, node: str, hold: bool) -> None:
        """Steps 2-5 under the node lock; `hold`: the device plugin releases the lock, else
        it is released here once the bind is over (bound or failed)."""
        try:
            self._bind_under_lock(pod, namespace, name, node)
        finally:
            if not hold:
                self._release(namespace, name, node)

    def _bind_under_lock(self, pod: Obj, namespace: str, name: str, node: str) -> None:
        locked = False
        phase_tried = False
        try:
            try:
                lock_node(
                    self.cluster,
                    node,
                    namespace,
                    name,
                    datetime.now(UTC),
                    self.node_lock_timeout,
                    sleep=self.sleep,
                )
            except NodeLockContention as exc:
                raise BindError(str(exc), "lock_contention") from exc
            except NodeLockError as exc:
                raise BindError(str(exc), "lock") from exc
            locked = True
            phase_tried = True
            try:
                written = self.cluster.patch_pod_metadata(
                    namespace,
                    name,
                    annotations={
                        BIND_PHASE: BIND_PHASE_ALLOCATING,
                        BIND_TIME: str(int(self.clock())),
                    },
                )
            except NotFound as exc:
                raise BindError(f"pod {namespace}/{name} not found", "pod") from exc
            except ClusterError as exc:
                raise BindError(
                    f"pod {namespace}/{name}: cannot set {BIND_PHASE}: {exc}", "apiserver"
                ) from exc
            version = (written.get("metadata") or {}).get("resourceVersion")
            self._verify_capacity(pod, namespace, name, node, version)
            self._create_binding(pod, namespace, name, node)
        except BindError as exc:
            if not exc.keep:
                self._rollback(namespace, name, node, locked=locked, phase=phase_tried)
            self.events.pod_event(pod, "BindingFailed", str(exc), "Warning")
            raise

    def _card_totals(self, node: str, wanted: PodUsage) -> dict[tuple[str, str], CardUsage | None]:
        """`(vendor, uuid)` → `(slots, MiB, cores)` each card in `wanted` offers in all (None:
        not on the node): as the usage cache decoded them, else read from the node now."""
        cache = self.cache
        if cache is not None:
            with cache.locked():
                state = cache.node(node)
                if state is not None:
                    return _totals(state, wanted)
        try:
            obj = self.cluster.get_node(node)
        except ClusterError as exc:
            raise BindError(f"node {node}: cannot read it: {exc}", "apiserver") from exc
        fresh = UsageCache(self.registry, self.config)
        fresh.upsert_node(obj)
        with fresh.locked():
            state = fresh.node(node)
            return _totals(state, wanted) if state is not None else {}

    def _verify_capacity(
        self, pod: Obj, namespace: str, name: str, node: str, version: Any
    ) -> None:
        """Refuse a decision the pods now bound to `node` leave no room for.

        Under the node lock, after this bind's own write (at `version`), the pods bound to the
        node are read (module doc, step 4) and the cards this pod's decision names are
        checked against them: a filter that ran on a stale cache (a replica whose watch lags,
        a reservation that expired before the pod's events arrived) cannot over-commit a card.
        """
        found = pod_usage(self.specs, pod)
        if found is None:
            return
        used = self._bound_usage_cached(namespace, name, node, version)
        if used is None:
            used = self._bound_usage_listed(namespace, name, node)
        totals = self._card_totals(node, found[1])
        for vendor, cards in sorted(found[1].items()):
            for uuid, (slots, mem, cores) in sorted(cards.items()):
                card = totals.get((vendor, uuid))
                taken = used.get((vendor, uuid), [0, 0, 0])
                problem = (
                    "is not registered on the node"
                    if card is None
                    else _over(taken[0], slots, card[0], "slots")
                    or _over(taken[1], mem, card[1], "MiB")
                    or _over(taken[2], cores, card[2], "cores")
                )
                if problem:
                    raise BindError(
                        f"pod {namespace}/{name}: {vendor} card {uuid} on node {node} {problem}; "
                        "the decision was made on a stale view, filter it again",
                        "decision",
                    )

    def _bound_usage_cached(
        self, namespace: str, name: str, node: str, version: Any
    ) -> dict[tuple[str, str], list[int]] | None:
        """The bound pods' usage from the cache, once the watch has shown `version`; else None."""
        cache, seen = self.cache, self.pods_seen
        if cache is None or seen is None or not isinstance(version, str) or not version:
            return None
        if not seen(version, self.cache_wait):
            log.debug(
                "bind %s/%s: the pod watch has not shown version %s", namespace, name, version
            )
            return None
        self.metrics.capacity_checks.labels(source="cache").inc()
        return cache.bound_usage(node, pod_key(namespace, name))

    def _bound_usage_listed(
        self, namespace: str, name: str, node: str
    ) -> dict[tuple[str, str], list[int]]:
        """The bound pods' usage from a list of the node's pods."""
        self.metrics.capacity_checks.labels(source="list").inc()
        try:
            bound = self.cluster.list_pods(node_name=node)
        except ClusterError as exc:
            raise BindError(f"node {node}: cannot list its pods: {exc}", "apiserver") from exc
        used: dict[tuple[str, str], list[int]] = {}
        for other in bound:
            meta = other.get("metadata") or {}
            if (meta.get("namespace") or "default", meta.get("name")) == (namespace, name):
                continue
            held = self._usage_of(other)
            if held is not None and held[0] == node:
                add_usage(used, held[1])
        return used

    def _usage_of(self, pod: Obj) -> tuple[str, PodUsage] | None:
        """`pod_usage` of a listed pod, decoded once per `(uid, resourceVersion)`: an object
        with both unchanged is the same object."""
        meta = pod.get("metadata") or {}
        version = (meta.get("uid"), meta.get("resourceVersion"))
        if not all(isinstance(v, str) and v for v in version):
            return pod_usage(self.specs, usage_view(pod, self.decision_keys))
        memo = self._decoded
        if version in memo:
            return memo[version]
        held = pod_usage(self.specs, usage_view(pod, self.decision_keys))
        if len(memo) >= _DECODED_SIZE:
            memo.clear()
        memo[version] = held
        return held

    def _rollback(self, namespace: str, name: str, node: str, *, locked: bool, phase: bool) -> None:
        """Undo a failed bind's writes; log (never raise) what could not be undone."""
        if phase:
            self._retry(
                lambda: self.cluster.patch_pod_metadata(
                    namespace, name, annotations={BIND_PHASE: None, BIND_TIME: None}
                ),
                f"pod {namespace}/{name}: removing {BIND_PHASE}",
            )
        if locked:
            self._release(namespace, name, node)

    def _release(self, namespace: str, name: str, node: str) -> None:
        """Release `node`'s lock if pod `namespace/name` holds it; log (never raise) a failure."""
        try:
            release_node_lock(self.cluster, node, namespace, name, sleep=self.sleep)
        except NodeLockError as exc:
            log.error("bind: %s (it expires after %ss)", exc, self.node_lock_timeout)

    def _retry(self, action: Callable[[], object], what: str) -> None:
        for attempt in range(_ROLLBACK_ATTEMPTS):
            try:
                action()
                return
            except NotFound:
                return
            except ClusterError as exc:
                if attempt + 1 == _ROLLBACK_ATTEMPTS:
                    log.error("bind rollback: %s failed: %s", what, exc)
                    return
                self.sleep(_ROLLBACK_BACKOFF * (2**attempt) * (1 + random.random() * 0.5))


def _over(used: int, wanted: int, total: int, unit: str) -> str | None:
    """A message when `wanted` more on top of `used` exceeds `total`."""
    if wanted and used + wanted > total:
        return f"has {total - used} {unit} free of {total}, the pod takes {wanted}"
    return None


def _totals(state: NodeState, wanted: PodUsage) -> dict[tuple[str, str], CardUsage | None]:
    out: dict[tuple[str, str], CardUsage | None] = {}
    for vendor, uuids in wanted.items():
        owned = state.vendors.get(vendor)
        for uuid in uuids:
            d = owned.by_id.get(uuid) if owned is not None else None
            out[vendor, uuid] = (d.count, d.totalmem, d.totalcore) if d is not None else None
    return out
