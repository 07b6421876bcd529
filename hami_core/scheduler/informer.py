"""`Informer`: keeps a `UsageCache` fed from list+watch of nodes and pods.

One thread per kind opens `Cluster.watch_nodes()` / `watch_pods()` without a resourceVersion, so
each stream starts with a `RESYNC` carrying the full list (objects gone from it are dropped
from the cache), then applies `ADDED` / `MODIFIED` / `DELETED` events. The cluster adapter
resumes a broken watch from the last version it saw and relists on 410; when a stream ends or
fails anyway, the thread reopens it after a backoff (a fresh relist). A relist also drops the
reservation of a pod that was deleted before the watch ever showed it. Every `resync_period`
seconds the stream is closed and reopened, so a missed event cannot live longer than that.

Nodes' cards are decoded by the cache only when their annotations or capacity change. Pods
pass through `decisions.usage_view` first, so a decision contradicted by the pod's binding is
not counted; an event that changes nothing usage reads (a bind-phase stamp, a label) is only
noted as seen. The pods holding devices are also kept (trimmed to what usage needs) per node,
for the filter's simulation form.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from hami_core.k8s.cluster import Cluster, ClusterError, NotFound, WatchEvent
from hami_core.protocol.keys import ASSIGNED_NODE, BIND_PHASE, BIND_TIME, NODE_LOCK
from hami_core.scheduler.decisions import usage_view
from hami_core.scheduling.cache import UsageCache, pod_key

__all__ = ["Informer"]

log = logging.getLogger(__name__)

Obj = dict[str, Any]

_KINDS = ("nodes", "pods")


def _stop_stream(stream: Iterator[WatchEvent]) -> None:
    stop = getattr(stream, "stop", None)
    if callable(stop):
        try:
            stop()
        except Exception as exc:  # stopping must never fail the caller
            log.debug("stopping a watch: %s", exc)


def _meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    meta = obj.get("metadata")
    return meta if isinstance(meta, Mapping) else {}


def _names(items: Any) -> tuple[Any, ...]:
    """A container list's names (what usage and the trimmed copy read of it)."""
    if not isinstance(items, list):
        return ()
    return tuple(c.get("name") if isinstance(c, Mapping) else None for c in items)


def _trim(pod: Mapping[str, Any], keys: frozenset[str]) -> Obj:
    """What usage accounting reads of a pod: name, the `keys` annotations, container counts,
    phase and init container states."""
    meta = _meta(pod)
    spec = pod.get("spec") if isinstance(pod.get("spec"), Mapping) else {}
    status = pod.get("status") if isinstance(pod.get("status"), Mapping) else {}
    assert isinstance(spec, Mapping) and isinstance(status, Mapping)
    annotations = meta.get("annotations") if isinstance(meta.get("annotations"), Mapping) else {}
    assert isinstance(annotations, Mapping)

    def names(part: str) -> list[Obj]:
        items = spec.get(part)
        return (
            [{"name": c.get("name")} for c in items if isinstance(c, Mapping)]
            if isinstance(items, list)
            else []
        )

    return {
        "metadata": {
            "name": meta.get("name"),
            "namespace": meta.get("namespace"),
            "uid": meta.get("uid"),
            "annotations": {k: v for k, v in annotations.items() if k in keys},
        },
        "spec": {
            "nodeName": spec.get("nodeName"),
            "initContainers": names("initContainers"),
            "containers": names("containers"),
        },
        "status": {
            "phase": status.get("phase"),
            "initContainerStatuses": status.get("initContainerStatuses") or [],
        },
    }


class Informer:
    """Feeds `cache` from the cluster's node and pod watches (module doc); thread-safe."""

    def __init__(
        self,
        cluster: Cluster,
        cache: UsageCache,
        *,
        decision_keys: frozenset[str],
        resync_period: float = 300.0,
        backoff: tuple[float, float] = (0.1, 5.0),
        on_node_added: Callable[[str], None] | None = None,
        on_lock_orphaned: Callable[[str, str, str], None] | None = None,
    ) -> None:
        self.cluster = cluster
        self.cache = cache
        self.decision_keys = decision_keys
        self.resync_period = resync_period
        self.backoff = backoff
        self.on_node_added = on_node_added
        self.on_lock_orphaned = on_lock_orphaned
        self.relists = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._synced = threading.Event()
        self._synced_kinds: set[str] = set()
        self._nodes: set[str] = set()
        self._pods: dict[str, str | None] = {}  # pod key -> node it holds devices on
        self._assigned: dict[str, dict[str, Obj]] = {}  # node -> pod key -> trimmed pod
        self._locks: dict[str, str] = {}  # node -> its node-lock annotation value
        self._streams: dict[str, Iterator[WatchEvent]] = {}
        self._threads: list[threading.Thread] = []
        self._signatures: dict[str, tuple[Any, ...]] = {}  # pod key -> what its usage reads
        self._trimmed_keys = decision_keys - {BIND_PHASE, BIND_TIME}
        self._signature_keys = tuple(sorted(self._trimmed_keys))
        self._seen = threading.Condition(threading.Lock())
        self._pods_rv = -1  # the pod stream's position: every change up to it is applied
        self._rv_waiters = 0

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Start the node and pod watch threads (idempotent)."""
        if self._threads:
            return
        self._stop.clear()
        for kind in _KINDS:
            thread = threading.Thread(target=self._run, args=(kind,), name=f"hami-informer-{kind}")
            thread.daemon = True
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop watching and join the threads (a writer waiting in `wait_pods_seen` is told at
        once)."""
        self._stop.set()
        with self._seen:
            self._seen.notify_all()
        with self._lock:
            streams = list(self._streams.values())
        for stream in streams:
            _stop_stream(stream)
        for thread in self._threads:
            thread.join(timeout)
        self._threads = []

    @property
    def synced(self) -> bool:
        """True once both the node and the pod lists were applied."""
        return self._synced.is_set()

    def wait_synced(self, timeout: float) -> bool:
        """Block until synced (True) or `timeout` seconds pass (False)."""
        return self._synced.wait(timeout)

    def assigned_pods(self, nodes: Iterable[str]) -> list[Obj]:
        """The trimmed pods holding devices on these nodes."""
        with self._lock:
            return [pod for n in nodes for pod in self._assigned.get(n, {}).values()]

    def wait_pods_seen(self, resource_version: str, timeout: float) -> bool:
        """Block until every pod change up to `resource_version` is applied to the cache
        (True), or `timeout` seconds pass (False; at once for a version that is not a number).

        The pod watch delivers changes in resourceVersion order, so once it has shown a
        version, the cache holds every pod write that completed before that version was
        written (the read-your-writes barrier `BindVerb` uses).
        """
        try:
            wanted = int(resource_version)
        except (TypeError, ValueError):
            return False
        with self._seen:
            if self._pods_rv >= wanted:
                return True
            if timeout <= 0 or self._stop.is_set():
                return False
            self._rv_waiters += 1
            try:
                self._seen.wait_for(lambda: self._pods_rv >= wanted or self._stop.is_set(), timeout)
                return self._pods_rv >= wanted
            finally:
                self._rv_waiters -= 1

    def _saw_pods(self, event: WatchEvent) -> None:
        """Move the pod stream's position to the event's version (a relist sets it)."""
        raw = _meta(event.object).get("resourceVersion")
        if not isinstance(raw, str) or not raw.isdigit():
            return
        version = int(raw)
        if event.type != "RESYNC" and version <= self._pods_rv:
            return
        # Set before the waiters are counted, as a waiter counts itself before it checks: either
        # it sees this version or this sees it (no lock needed while nobody waits).
        self._pods_rv = version
        if self._rv_waiters:
            with self._seen:
                self._seen.notify_all()

    def resync(self) -> None:
        """Close both streams now; they reopen with a fresh list."""
        with self._lock:
            streams = list(self._streams.values())
        for stream in streams:
            _stop_stream(stream)

    # ------------------------------------------------------------------ threads

    def _open(self, kind: str) -> Iterator[WatchEvent]:
        if kind == "nodes":
            return self.cluster.watch_nodes()
        return self.cluster.watch_pods()

    def _run(self, kind: str) -> None:
        delay = self.backoff[0]
        while not self._stop.is_set():
            try:
                stream = self._open(kind)
            except Exception as exc:
                log.warning("watch %s: cannot open: %s; retrying in %.1fs", kind, exc, delay)
                self._stop.wait(delay)
                delay = min(delay * 2, self.backoff[1])
                continue
            with self._lock:
                self._streams[kind] = stream
            if self._stop.is_set():
                _stop_stream(stream)
                return
            timer = threading.Timer(self.resync_period, _stop_stream, args=(stream,))
            timer.daemon = True
            timer.start()
            try:
                for event in stream:
                    self._handle(kind, event)
                    delay = self.backoff[0]
            except Exception as exc:
                if not self._stop.is_set():
                    log.warning("watch %s failed: %s; relisting in %.1fs", kind, exc, delay)
                    self._stop.wait(delay)
                    delay = min(delay * 2, self.backoff[1])
            finally:
                timer.cancel()
                _stop_stream(stream)
                with self._lock:
                    if self._streams.get(kind) is stream:
                        del self._streams[kind]

    def _handle(self, kind: str, event: WatchEvent) -> None:
        try:
            if kind == "nodes":
                self._node_event(event)
            else:
                self._pod_event(event)
        except Exception as exc:  # one odd object must not stop the watch
            name = _meta(event.object).get("name")
            log.warning("watch %s: skipping %s event for %r: %s", kind, event.type, name, exc)
        if kind == "pods":
            self._saw_pods(event)

    # ------------------------------------------------------------------ nodes

    def _node_event(self, event: WatchEvent) -> None:
        if event.type == "RESYNC":
            self._node_list(event.object.get("items") or [])
            return
        if event.type == "BOOKMARK":
            return
        name = str(_meta(event.object).get("name") or "")
        if event.type == "DELETED":
            self.cache.remove_node(name)
            with self._lock:
                self._nodes.discard(name)
                self._locks.pop(name, None)
            return
        self._note_lock(name, event.object)
        self.cache.upsert_node(event.object)
        with self._lock:
            added = name not in self._nodes
            self._nodes.add(name)
        if added:
            self._node_added(name)

    def _node_list(self, items: list[Obj]) -> None:
        seen: set[str] = set()
        for item in items:
            try:
                self._note_lock(str(_meta(item).get("name") or ""), item)
                self.cache.upsert_node(item)
            except Exception as exc:
                log.warning("node list: skipping %r: %s", _meta(item).get("name"), exc)
                continue
            seen.add(str(_meta(item)["name"]))
        with self._lock:
            gone = self._nodes - seen
            added = seen - self._nodes
            self._nodes = seen
            self.relists += 1
        for name in gone:
            self.cache.remove_node(name)
        for name in sorted(added):
            self._node_added(name)
        self._mark_synced("nodes")

    def _note_lock(self, name: str, node: Mapping[str, Any]) -> None:
        annotations = _meta(node).get("annotations")
        value = annotations.get(NODE_LOCK) if isinstance(annotations, Mapping) else None
        with self._lock:
            if isinstance(value, str):
                self._locks[name] = value
            else:
                self._locks.pop(name, None)

    def _release_if_holder(self, key: str, node: str | None) -> None:
        """A pod that is gone or finished while it holds its node's lock would block that node
        until the lock expires: hand it to `on_lock_orphaned` (which releases it)."""
        if node is None or self.on_lock_orphaned is None:
            return
        namespace, _, name = key.partition("/")
        with self._lock:
            value = self._locks.get(node)
        if value is None or not value.endswith(f",{namespace},{name}"):
            return
        try:
            self.on_lock_orphaned(node, namespace, name)
        except Exception as exc:
            log.warning("node %s: cannot release the lock of %s: %s", node, key, exc)

    def _node_added(self, name: str) -> None:
        if self.on_node_added is not None:
            try:
                self.on_node_added(name)
            except Exception as exc:
                log.warning("node %s added: callback failed: %s", name, exc)

    # ------------------------------------------------------------------ pods

    def _pod_event(self, event: WatchEvent) -> None:
        if event.type == "RESYNC":
            self._pod_list(event.object.get("items") or [])
            return
        if event.type == "BOOKMARK":
            return
        if event.type == "DELETED":
            meta = _meta(event.object)
            namespace = str(meta.get("namespace") or "default")
            name = str(meta.get("name") or "")
            key = pod_key(namespace, name)
            with self._lock:
                node = self._pods.get(key)
            self.cache.remove_pod(namespace, name)
            self._forget(key)
            self._release_if_holder(key, node)
            return
        key = self._upsert_pod(event.object)
        if (event.object.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            with self._lock:
                node = self._pods.get(key)
            self._release_if_holder(key, node)

    def _pod_list(self, items: list[Obj]) -> None:
        seen: set[str] = set()
        for item in items:
            try:
                seen.add(self._upsert_pod(item))
            except Exception as exc:
                log.warning("pod list: skipping %r: %s", _meta(item).get("name"), exc)
        with self._lock:
            gone = [k for k in self._pods if k not in seen]
        for key in gone:
            namespace, _, name = key.partition("/")
            self.cache.remove_pod(namespace, name)
            self._forget(key)
        self._drop_orphan_reservations(seen)
        with self._lock:
            self.relists += 1
        self._mark_synced("pods")

    def _drop_orphan_reservations(self, listed: set[str]) -> None:
        """Drop the reservations of pods deleted before this watch ever showed them.

        A reservation whose pod is missing from the list may belong to a pod created after
        the list was taken, so each such pod is looked up; only one that is gone is dropped.
        """
        for key in self.cache.reservations():
            if key in listed:
                continue
            namespace, _, name = key.partition("/")
            try:
                self.cluster.get_pod(namespace, name)
            except NotFound:
                log.info("pod %s is gone: dropping its reservation", key)
                self.cache.remove_pod(namespace, name)
                self._forget(key)
            except ClusterError as exc:
                log.debug("pod %s: cannot check it: %s", key, exc)

    def _upsert_pod(self, pod: Obj) -> str:
        meta = _meta(pod)
        key = pod_key(str(meta.get("namespace") or "default"), str(meta.get("name") or ""))
        signature = self._signature(pod)
        with self._lock:
            if signature is not None and self._signatures.get(key) == signature:
                return key  # nothing usage reads has changed (a bind-phase stamp, a label...)
            if signature is None:
                self._signatures.pop(key, None)
            else:
                self._signatures[key] = signature
        view = usage_view(pod, self.decision_keys)
        self.cache.upsert_pod(view)
        annotations = _meta(view).get("annotations")
        node = annotations.get(ASSIGNED_NODE) if isinstance(annotations, Mapping) else None
        with self._lock:
            old = self._pods.get(key)
            if old is not None and old != node:
                self._assigned.get(old, {}).pop(key, None)
            self._pods[key] = node if isinstance(node, str) and node else None
            if isinstance(node, str) and node:
                self._assigned.setdefault(node, {})[key] = _trim(view, self._trimmed_keys)
        return key

    def _signature(self, pod: Obj) -> tuple[Any, ...] | None:
        """Everything of a pod holding devices that its usage (and trimmed copy) follow from:
        its decision annotations but the bind-phase stamps, node, containers, phase and init
        container states. None for a pod with no decision."""
        annotations = _meta(pod).get("annotations")
        if not isinstance(annotations, Mapping) or not annotations.get(ASSIGNED_NODE):
            return None
        spec = pod.get("spec")
        status = pod.get("status")
        spec = spec if isinstance(spec, Mapping) else {}
        status = status if isinstance(status, Mapping) else {}
        return (
            _meta(pod).get("uid"),
            tuple(annotations.get(k) for k in self._signature_keys),
            spec.get("nodeName"),
            _names(spec.get("initContainers")),
            _names(spec.get("containers")),
            status.get("phase"),
            status.get("initContainerStatuses"),
        )

    def _forget(self, key: str) -> None:
        with self._lock:
            self._signatures.pop(key, None)
            node = self._pods.pop(key, None)
            if node is not None:
                held = self._assigned.get(node)
                if held is not None:
                    held.pop(key, None)
                    if not held:
                        del self._assigned[node]

    def _mark_synced(self, kind: str) -> None:
        with self._lock:
            self._synced_kinds.add(kind)
            done = self._synced_kinds.issuperset(_KINDS)
        if done and not self._synced.is_set():
            log.info("node and pod caches synced")
            self._synced.set()
