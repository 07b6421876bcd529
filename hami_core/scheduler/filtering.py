"""`FilterVerb`: the extender's `/filter` (reference hami-protocol §7.1).

- No pod → `Error: extender args missing pod`; a pod already bound (`spec.nodeName`) → an
  `Error` too (a re-filter would overwrite the decision its devices were allocated by). A pod
  that asks nothing of any vendor passes through with the input `NodeNames` (or `Nodes`).
- `NodeNames` form: waits for the usage cache to sync, runs the engine with a reservation, and
  on success merge-patches the decision annotations and the `hami.io/vgpu-node` label onto the
  pod through the `Cluster`, answering `NodeNames: [<node>]` (a `FilteringSucceed` event only
  with `success_events`). If the patch fails the
  reservation is released and the answer is an `Error`. No fit → `FailedNodes` with HAMi's
  reason text per node. A node whose register annotation cannot be decoded fails with that
  decode error; the others still schedule.
- `Nodes` form (non-null; the Cluster-Autoscaler simulation path): the candidates are read
  from the given Node objects, with the usage of the pods this replica knows on them, in a
  throwaway cache; the answer is `Nodes` holding the best node. Nothing is written, reserved or
  recorded.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

from hami_core.k8s.cluster import Cluster, ClusterError
from hami_core.scheduler.events import EventRecorder
from hami_core.scheduler.metrics import SchedulerMetrics
from hami_core.scheduler.wire import FilterArgs, filter_result, node_list
from hami_core.scheduling.cache import UsageCache, pod_key
from hami_core.scheduling.engine import Decision, Engine

__all__ = ["CacheFeed", "FilterVerb"]

log = logging.getLogger(__name__)

Obj = dict[str, Any]


class CacheFeed(Protocol):
    """What the filter needs from whatever keeps the usage cache fed (the `Informer`)."""

    def wait_synced(self, timeout: float) -> bool:
        """Block until the cache holds every node and pod (True), or `timeout` passes."""
        ...

    def assigned_pods(self, nodes: Iterable[str]) -> list[Obj]:
        """The pods known to hold devices on these nodes (for simulations)."""
        ...


def _pod_id(pod: Mapping[str, Any]) -> tuple[str, str]:
    meta = pod.get("metadata") or {}
    if not isinstance(meta, Mapping):
        return "default", ""
    return str(meta.get("namespace") or "default"), str(meta.get("name") or "")


class FilterVerb:
    """Answers `/filter` calls (thread-safe; the engine serialises on the cache lock)."""

    def __init__(
        self,
        cluster: Cluster,
        engine: Engine,
        feed: CacheFeed,
        *,
        metrics: SchedulerMetrics,
        events: EventRecorder,
        sync_timeout: float = 10.0,
        success_events: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.cluster = cluster
        self.success_events = success_events
        self.engine = engine
        self.feed = feed
        self.metrics = metrics
        self.events = events
        self.sync_timeout = sync_timeout
        self.clock = clock

    def __call__(self, args: FilterArgs) -> Obj:
        """The `ExtenderFilterResult` for these arguments (errors are in its `Error`)."""
        started = time.perf_counter()
        try:
            return self._filter(args)
        finally:
            self.metrics.filter_seconds.observe(time.perf_counter() - started)

    def _filter(self, args: FilterArgs) -> Obj:
        pod = args.pod
        if pod is None:
            self.metrics.fail("filter", "bad_request")
            return filter_result(error="extender args missing pod")
        if not self.feed.wait_synced(self.sync_timeout):
            self.metrics.fail("filter", "unsynced")
            return filter_result(error="the scheduler's node and pod caches are not synced yet")
        if args.nodes is not None:
            return self._simulate(pod, args.nodes)
        names = args.node_names or []
        spec = pod.get("spec")
        bound = spec.get("nodeName") if isinstance(spec, dict) else None
        if bound:
            self.metrics.fail("filter", "bad_request")
            return filter_result(error=f"pod is already bound to node {bound}")
        now = self.clock()
        decision = self.engine.schedule(pod, names, now, reserve=True)
        if decision.passthrough:
            return filter_result(node_names=names)
        namespace, name = _pod_id(pod)
        if decision.error is not None:
            self.metrics.fail("filter", "request")
            self.events.pod_event(pod, "FilteringFailed", decision.error, "Warning")
            return filter_result(error=decision.error)
        if decision.node is None:
            self.metrics.fail("filter", "no_fit")
            self.events.pod_event(pod, "FilteringFailed", _failed_message(decision), "Warning")
            return filter_result(failed=decision.failed)
        try:
            self.cluster.patch_pod_metadata(
                namespace, name, annotations=decision.annotations, labels=decision.labels
            )
        except ClusterError as exc:
            self.engine.cache.release(pod_key(namespace, name))
            self.metrics.fail("filter", "patch")
            log.warning("pod %s/%s: writing the filter decision failed: %s", namespace, name, exc)
            return filter_result(
                error=f"pod {namespace}/{name}: could not write the decision for node "
                f"{decision.node}: {exc}"
            )
        if self.success_events:
            self.events.pod_event(pod, "FilteringSucceed", _success_message(decision))
        return filter_result(node_names=[decision.node])

    def _simulate(self, pod: Obj, nodes: list[Obj]) -> Obj:
        """The `Nodes` form: decide against the given node objects, with no side effects."""
        main = self.engine.cache
        sim = UsageCache(main.registry, main.config, reservation_ttl=main.reservation_ttl)
        names: list[str] = []
        broken: dict[str, str] = {}
        for node in nodes:
            name = str(node["metadata"]["name"])
            try:
                sim.upsert_node(node)
            except Exception as exc:  # a malformed Node object fails alone
                broken[name] = f"node object: {type(exc).__name__}: {exc}"
                continue
            names.append(name)
        wanted = set(names)
        for other in self.feed.assigned_pods(wanted):
            sim.upsert_pod(other)
        now = self.clock()
        with main.locked():
            for key, (held_on, devices) in main.reservations().items():
                if held_on in wanted:
                    sim.reserve(key, held_on, devices, now)
            for name in names:
                state = main.node(name)
                for vendor in state.unhealthy if state is not None else ():
                    sim.mark_vendor_unhealthy(name, vendor)
        engine = Engine(
            main.registry,
            main.config,
            sim,
            node_policy=self.engine.node_policy,
            gpu_policy=",".join(self.engine.gpu_policy),
            requests=self.engine.requests,
        )
        decision = engine.schedule(pod, names, now, reserve=False)
        if decision.passthrough:
            return filter_result(nodes=node_list(nodes))
        if decision.error is not None:
            return filter_result(error=decision.error)
        chosen = [n for n in nodes if n["metadata"]["name"] == decision.node]
        return filter_result(nodes=node_list(chosen), failed={**decision.failed, **broken})


_MESSAGE_NODES = 10
"""How many nodes an event message names (the rest are counted)."""


def _failed_message(decision: Decision) -> str:
    items = sorted(decision.failed.items())
    parts = [f"{node}: {reason}" for node, reason in items[:_MESSAGE_NODES]]
    if len(items) > _MESSAGE_NODES:
        parts.append(f"and {len(items) - _MESSAGE_NODES} more")
    return f"no node fits: {len(items)} nodes do not fit ({'; '.join(parts)})"


def _success_message(decision: Decision) -> str:
    best = sorted(decision.scores.items(), key=lambda item: -item[1])[:_MESSAGE_NODES]
    fits = ", ".join(f"{n}:{s:.2f}" for n, s in best)
    if len(decision.scores) > _MESSAGE_NODES:
        fits += ", ..."
    return (
        f"find fit node({decision.node}), {len(decision.failed)} nodes not fit, "
        f"{len(decision.scores)} nodes fit({fits})"
    )
