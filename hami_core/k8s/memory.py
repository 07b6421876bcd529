"""`MemoryCluster`: the `Cluster` verbs over an in-memory, thread-safe object store.

It keeps the apiserver's semantics that hami relies on: one global resourceVersion counter (as
etcd has), preconditions on resourceVersion and uid (409 `Conflict`), `AlreadyExists` on create,
`pods/binding` that refuses a pod already bound, label and field selectors, and a watch history
with a compaction horizon (410 `Expired` for a watch from before it). `hami simulate` runs on it,
and `hami_core.testing.FakeApiServer` serves it over HTTP, so one state machine has two faces.

Objects go in and come out as copies; nothing returned aliases the store.
"""

from __future__ import annotations

import bisect
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from hami_core.k8s.cluster import ClusterError, Conflict, NotFound, Obj, WatchEvent
from hami_core.k8s.errors import AlreadyExists, Expired, Invalid
from hami_core.k8s.objects import event_body, rfc3339
from hami_core.k8s.patch import (
    copy_json,
    copy_obj,
    json_patch,
    merge_patch_shared,
    metadata_patch,
    strategic_merge_patch,
)
from hami_core.k8s.resources import ResourceInfo, resource_info
from hami_core.k8s.selectors import (
    FieldSelector,
    LabelSelector,
    parse_field_selector,
    parse_label_selector,
)
from hami_core.k8s.watch import WatchStream

__all__ = ["MemoryCluster", "PatchType"]

_log = logging.getLogger(__name__)

PatchType = Literal["merge", "strategic", "json"]
"""`merge` (RFC 7386), `strategic` (strategic merge) or `json` (RFC 6902)."""

EventType = Literal["ADDED", "MODIFIED", "DELETED"]

_ALIVE_POLL = 0.5  # seconds between a waiting watch's checks that its reader is still there


@dataclass(frozen=True, slots=True)
class _Change:
    """One entry of the watch history."""

    rv: int
    resource: str
    type: EventType
    obj: Obj


def _modified_message(plural: str, name: str) -> str:
    return (
        f'Operation cannot be fulfilled on {plural} "{name}": the object has been modified; '
        "please apply your changes to the latest version and try again"
    )


def _node_name(pod: Obj | None) -> str:
    """A pod object's `spec.nodeName`, or "" (none, or not a string)."""
    spec = pod.get("spec") if pod is not None else None
    node = spec.get("nodeName") if isinstance(spec, dict) else None
    return node if isinstance(node, str) else ""


def _parse_rv(value: str | None) -> int | None:
    """A resourceVersion as an int; None for absent, empty or "0" (meaning "now")."""
    if value is None or value in ("", "0"):
        return None
    try:
        rv = int(value)
    except (TypeError, ValueError):
        raise Invalid(
            f"resourceVersion: {value!r} is not a valid resource version", status=400
        ) from None
    if rv < 0:
        raise Invalid(f"resourceVersion: {value!r} is not a valid resource version", status=400)
    return rv


def _check_string_map(obj_meta: Mapping[str, Any], field: str) -> None:
    values = obj_meta.get(field)
    if values is None:
        return
    if not isinstance(values, dict):
        raise Invalid(f"metadata.{field}: expected a mapping of strings")
    for key, value in values.items():
        if not isinstance(value, str):
            raise Invalid(
                f"metadata.{field}[{key!r}]: value must be a string, got {type(value).__name__}"
            )


class MemoryCluster:
    """An in-memory Kubernetes: the `Cluster` verbs plus a generic store for tests and simulation.

    Resources are named by plural (`nodes`, `pods`, `leases`, `events`, `configmaps`). Namespaced
    calls default to namespace `default`. `clock` gives creation timestamps; `history_limit`
    is how many changes a watch can resume across before it gets `Expired`.
    """

    def __init__(
        self, *, clock: Callable[[], float] = time.time, history_limit: int = 10_000
    ) -> None:
        if history_limit < 1:
            raise ValueError(f"history_limit must be >= 1, got {history_limit!r}")
        self._clock = clock
        self._history_limit = history_limit
        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)
        # one condition per resource on the same lock: a write wakes only its kind's watches
        self._changed: dict[str, threading.Condition] = {}
        self._objects: dict[str, dict[tuple[str, str], Obj]] = {}
        self._pods_by_node: dict[str, set[tuple[str, str]]] = {}
        self._rv = 0
        self._history: list[_Change] = []
        self._compacted = 0

    # ------------------------------------------------------------------ store internals

    def _key(self, info: ResourceInfo, name: str, namespace: str | None) -> tuple[str, str]:
        if not isinstance(name, str) or not name:
            raise Invalid(f"{info.plural}: name must be a non-empty string, got {name!r}")
        if not info.namespaced:
            return ("", name)
        return (namespace or "default", name)

    def _table(self, info: ResourceInfo) -> dict[tuple[str, str], Obj]:
        return self._objects.setdefault(info.plural, {})

    def _store(self, info: ResourceInfo, key: tuple[str, str], obj: Obj | None) -> None:
        """Write (or with None, remove) one object, keeping the pods-by-node index, as the
        apiserver's watch cache indexes `spec.nodeName`."""
        table = self._table(info)
        if info.plural == "pods":
            old = _node_name(table.get(key))
            new = _node_name(obj)
            if old != new:
                if old:
                    keys = self._pods_by_node[old]
                    keys.discard(key)
                    if not keys:
                        del self._pods_by_node[old]
                if new:
                    self._pods_by_node.setdefault(new, set()).add(key)
        if obj is None:
            del table[key]
        else:
            table[key] = obj

    def _record(self, info: ResourceInfo, type_: EventType, obj: Obj) -> None:
        self._history.append(_Change(self._rv, info.plural, type_, obj))
        if len(self._history) > 2 * self._history_limit:
            cut = len(self._history) - self._history_limit
            self._compacted = self._history[cut - 1].rv
            del self._history[:cut]
        changed = self._changed.get(info.plural)
        if changed is not None:
            changed.notify_all()

    def _changed_of(self, info: ResourceInfo) -> threading.Condition:
        """The condition a write of this resource notifies (call with the lock held)."""
        changed = self._changed.get(info.plural)
        if changed is None:
            changed = self._changed[info.plural] = threading.Condition(self._lock)
        return changed

    def _next_rv(self) -> str:
        self._rv += 1
        return str(self._rv)

    def _missing(self, info: ResourceInfo, name: str) -> NotFound:
        return NotFound(f'{info.plural} "{name}" not found', status=404)

    def _current(self, info: ResourceInfo, key: tuple[str, str]) -> Obj:
        obj = self._table(info).get(key)
        if obj is None:
            raise self._missing(info, key[1])
        return obj

    @staticmethod
    def _meta(obj: Any, what: str) -> dict[str, Any]:
        if not isinstance(obj, dict):
            raise Invalid(f"{what}: expected a JSON object, got {type(obj).__name__}", status=400)
        meta = obj.setdefault("metadata", {})
        if not isinstance(meta, dict):
            raise Invalid(f"{what}: metadata must be a JSON object", status=400)
        _check_string_map(meta, "labels")
        _check_string_map(meta, "annotations")
        return meta

    def _insert(self, info: ResourceInfo, obj: Obj, namespace: str | None, trusted: bool) -> Obj:
        """Create `obj`; `trusted` keeps a caller-given uid and creationTimestamp (test setup)."""
        obj = copy_json(obj)
        meta = self._meta(obj, info.plural)
        if info.namespaced:
            given = meta.get("namespace")
            if namespace and given and given != namespace:
                raise Invalid(
                    "the namespace of the provided object does not match the namespace sent "
                    f"on the request ({given!r} != {namespace!r})",
                    status=400,
                )
            meta["namespace"] = namespace or given or "default"
        else:
            meta.pop("namespace", None)
        with self._cond:
            table = self._table(info)
            name = meta.get("name")
            if not name:
                prefix = meta.get("generateName")
                if not isinstance(prefix, str) or not prefix:
                    raise Invalid(
                        f"{info.plural}: metadata.name: Required value: name or generateName "
                        "is required"
                    )
                name = prefix + uuid.uuid4().hex[:5]
                while (meta.get("namespace", ""), name) in table:
                    name = prefix + uuid.uuid4().hex[:5]
                meta["name"] = name
            key = self._key(info, name, meta.get("namespace"))
            if key in table:
                raise AlreadyExists(f'{info.plural} "{name}" already exists')
            obj["apiVersion"] = info.api_version
            obj["kind"] = info.kind
            if not (trusted and meta.get("uid")):
                meta["uid"] = str(uuid.uuid4())
            if not (trusted and meta.get("creationTimestamp")):
                meta["creationTimestamp"] = rfc3339(self._clock())
            meta["generation"] = 1
            if info.plural == "pods":
                status = obj.setdefault("status", {})
                if isinstance(status, dict):
                    status.setdefault("phase", "Pending")
            meta["resourceVersion"] = self._next_rv()
            self._store(info, key, obj)
            self._record(info, "ADDED", obj)
            return copy_obj(obj)

    # ------------------------------------------------------------------ generic store API

    @property
    def resource_version(self) -> str:
        """The latest resourceVersion handed out (the store's global counter)."""
        with self._cond:
            return str(self._rv)

    def create(self, resource: str, obj: Obj, *, namespace: str | None = None) -> Obj:
        """Create an object (server fills uid, resourceVersion, creationTimestamp, generateName).

        `AlreadyExists` if the name is taken; `Invalid` names a malformed field.
        """
        return self._insert(resource_info(resource), obj, namespace, trusted=False)

    def get(self, resource: str, name: str, *, namespace: str | None = None) -> Obj:
        """A copy of the object, or `NotFound`."""
        info = resource_info(resource)
        with self._cond:
            return copy_obj(self._current(info, self._key(info, name, namespace)))

    def list_objects(
        self,
        resource: str,
        *,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> Obj:
        """A `<Kind>List` of the matching objects, sorted by namespace and name, with the
        list's `metadata.resourceVersion` to watch from."""
        info = resource_info(resource)
        labels = parse_label_selector(label_selector)
        fields = parse_field_selector(field_selector, info.field_labels)
        with self._cond:
            table = self._table(info)
            node = fields.value_of("spec.nodeName") if info.plural == "pods" else None
            if node:  # only the pods indexed under that node can match
                pairs = [(k, table[k]) for k in sorted(self._pods_by_node.get(node, ()))]
            else:
                pairs = sorted(table.items())
            items = [
                copy_json(obj)
                for key, obj in pairs
                if self._selected(info, obj, key[0], namespace, labels, fields)
            ]
            rv = str(self._rv)
        return {
            "apiVersion": info.api_version,
            "kind": info.list_kind,
            "metadata": {"resourceVersion": rv},
            "items": items,
        }

    @staticmethod
    def _selected(
        info: ResourceInfo,
        obj: Obj,
        obj_namespace: str,
        namespace: str | None,
        labels: LabelSelector,
        fields: FieldSelector,
    ) -> bool:
        if info.namespaced and namespace and obj_namespace != namespace:
            return False
        return labels.matches_object(obj) and fields.matches(obj)

    def update(
        self,
        resource: str,
        name: str,
        mutate: Callable[[Obj], Obj],
        *,
        namespace: str | None = None,
    ) -> Obj:
        """Write `mutate(copy of current)` back, atomically; the apiserver's update rules apply.

        A `metadata.resourceVersion` or `metadata.uid` in the result that differs from the
        stored one is a failed precondition (`Conflict`); name, namespace, uid, creation time
        and kind are kept; a result equal to the current object writes nothing.
        """
        return self._write(resource, name, lambda current: mutate(copy_json(current)), namespace)

    def _write(
        self, resource: str, name: str, produce: Callable[[Obj], Obj], namespace: str | None
    ) -> Obj:
        """`update`, with `produce` handed the stored object itself: it must return a new one
        and leave its argument alone (the patch functions do)."""
        info = resource_info(resource)
        with self._cond:
            key = self._key(info, name, namespace)
            current = self._current(info, key)
            new = produce(current)
            if isinstance(new, dict) and isinstance(new.get("metadata"), dict):
                new["metadata"] = dict(new["metadata"])  # written below; may be shared
            meta = self._meta(new, f'{info.plural} "{name}"')
            cur_meta = current["metadata"]
            wanted_rv = meta.get("resourceVersion")
            if wanted_rv not in (None, "") and wanted_rv != cur_meta["resourceVersion"]:
                raise Conflict(_modified_message(info.plural, name), status=409)
            wanted_uid = meta.get("uid")
            if wanted_uid not in (None, "") and wanted_uid != cur_meta["uid"]:
                raise Conflict(
                    f'Operation cannot be fulfilled on {info.plural} "{name}": Precondition '
                    f"failed: UID in precondition: {wanted_uid}, UID in object meta: "
                    f"{cur_meta['uid']}",
                    status=409,
                )
            if meta.get("name", name) != name:
                raise Invalid(
                    f"the name of the object ({meta.get('name')}) does not match the name on "
                    f"the URL ({name})",
                    status=400,
                )
            given_ns = meta.get("namespace")
            if info.namespaced and given_ns and given_ns != key[0]:
                raise Invalid(
                    "the namespace of the provided object does not match the namespace sent "
                    f"on the request ({given_ns!r} != {key[0]!r})",
                    status=400,
                )
            for kept in ("name", "namespace", "uid", "creationTimestamp", "generation"):
                if kept in cur_meta:
                    meta[kept] = cur_meta[kept]
                else:
                    meta.pop(kept, None)
            new["apiVersion"] = info.api_version
            new["kind"] = info.kind
            meta["resourceVersion"] = cur_meta["resourceVersion"]
            if new == current:
                return copy_obj(current)
            if new.get("spec") != current.get("spec"):
                meta["generation"] = int(cur_meta.get("generation", 1)) + 1
            meta["resourceVersion"] = self._next_rv()
            self._store(info, key, new)
            self._record(info, "MODIFIED", new)
            return copy_obj(new)

    def replace(self, resource: str, obj: Obj, *, namespace: str | None = None) -> Obj:
        """Replace the object named in `obj` (a PUT); its resourceVersion, if set, must match."""
        if not isinstance(obj, dict):
            raise Invalid(f"{resource}: expected a JSON object, got {type(obj).__name__}")
        meta = obj.get("metadata")
        name = meta.get("name") if isinstance(meta, dict) else None
        if not isinstance(name, str) or not name:
            raise Invalid(f"{resource}: metadata.name: Required value")
        if namespace is None and isinstance(meta, dict):
            namespace = meta.get("namespace")
        body = copy_json(obj)
        return self.update(resource, name, lambda _current: body, namespace=namespace)

    def patch(
        self,
        resource: str,
        name: str,
        body: Any,
        *,
        patch_type: PatchType = "merge",
        namespace: str | None = None,
    ) -> Obj:
        """Apply a patch; a resourceVersion it sets is a precondition (`Conflict` if stale)."""
        apply: Callable[[Any, Any], Any]
        if patch_type == "merge":
            if not isinstance(body, dict):
                raise Invalid("merge patch: the body must be a JSON object")
            apply = merge_patch_shared  # stored objects are never modified in place
        elif patch_type == "strategic":
            apply = strategic_merge_patch
        elif patch_type == "json":
            apply = json_patch
        else:
            raise Invalid(f"unknown patch type {patch_type!r}", status=415)

        def patched(current: Obj) -> Obj:
            result: Obj = apply(current, body)  # a new object; `current` is left alone
            return result

        return self._write(resource, name, patched, namespace)

    def delete(
        self,
        resource: str,
        name: str,
        *,
        namespace: str | None = None,
        resource_version: str | None = None,
        uid: str | None = None,
    ) -> Obj:
        """Delete the object and return it as last stored (with the deletion's resourceVersion).

        `resource_version` and `uid` are preconditions (`Conflict` if they do not match).
        """
        info = resource_info(resource)
        with self._cond:
            key = self._key(info, name, namespace)
            current = self._current(info, key)
            meta = current["metadata"]
            if resource_version and resource_version != meta["resourceVersion"]:
                raise Conflict(_modified_message(info.plural, name), status=409)
            if uid and uid != meta["uid"]:
                raise Conflict(
                    f'Operation cannot be fulfilled on {info.plural} "{name}": Precondition '
                    f"failed: UID in precondition: {uid}, UID in object meta: {meta['uid']}",
                    status=409,
                )
            self._store(info, key, None)
            gone = copy_json(current)
            gone["metadata"]["resourceVersion"] = self._next_rv()
            self._record(info, "DELETED", gone)
            return copy_obj(gone)

    def put(self, resource: str, obj: Obj) -> Obj:
        """Create or wholly replace an object, without preconditions (for arranging state).

        A caller-given `metadata.uid` and `creationTimestamp` are kept on create.
        """
        info = resource_info(resource)
        if not isinstance(obj, dict):
            raise Invalid(f"{resource}: expected a JSON object, got {type(obj).__name__}")
        meta = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
        name = meta.get("name") if isinstance(meta, dict) else None
        if not isinstance(name, str) or not name:
            raise Invalid(f"{resource}: metadata.name: Required value")
        namespace = meta.get("namespace") if isinstance(meta, dict) else None
        with self._cond:
            if self._key(info, name, namespace) not in self._table(info):
                return self._insert(info, obj, namespace, trusted=True)
            body = copy_json(obj)
            body["metadata"].pop("resourceVersion", None)
            body["metadata"].pop("uid", None)
            return self.update(resource, name, lambda _current: body, namespace=namespace)

    def update_status(
        self, resource: str, name: str, status: Obj, *, namespace: str | None = None
    ) -> Obj:
        """Replace the object's `.status` (what a kubelet or node controller would write)."""
        if not isinstance(status, dict):
            raise Invalid(f"{resource} status: expected a JSON object")
        new_status = copy_json(status)

        def set_status(current: Obj) -> Obj:
            current["status"] = new_status
            return current

        return self.update(resource, name, set_status, namespace=namespace)

    def bind(
        self,
        namespace: str,
        name: str,
        node: str,
        *,
        uid: str | None = None,
        annotations: Mapping[str, str] | None = None,
    ) -> Obj:
        """The `pods/binding` subresource: set `spec.nodeName` and the PodScheduled condition.

        `Conflict` if the pod is already bound or `uid` does not match; the binding's
        annotations are copied onto the pod, as the apiserver does.
        """
        if not isinstance(node, str) or not node:
            raise Invalid(f'pods/binding "{name}": target.name: Required value')
        now = rfc3339(self._clock())

        def assign(current: Obj) -> Obj:  # a new pod sharing what the binding leaves alone
            pod = dict(current)
            spec = pod["spec"] = dict(current.get("spec") or {})
            bound = spec.get("nodeName")
            if bound:
                raise Conflict(
                    f'Operation cannot be fulfilled on pods/binding "{name}": pod {name} is '
                    f'already assigned to node "{bound}"',
                    status=409,
                )
            if uid and uid != pod["metadata"]["uid"]:
                raise Conflict(
                    f'Operation cannot be fulfilled on pods/binding "{name}": Precondition '
                    f"failed: UID in precondition: {uid}, UID in object meta: "
                    f"{pod['metadata']['uid']}",
                    status=409,
                )
            spec["nodeName"] = node
            if annotations:
                meta = pod["metadata"] = dict(current["metadata"])
                meta["annotations"] = {**(meta.get("annotations") or {}), **annotations}
            status = pod["status"] = dict(current.get("status") or {})
            conditions = [
                c for c in status.get("conditions") or [] if c.get("type") != "PodScheduled"
            ]
            conditions.append({"type": "PodScheduled", "status": "True", "lastTransitionTime": now})
            status["conditions"] = conditions
            return pod

        return self._write("pods", name, assign, namespace)

    def compact(self) -> None:
        """Forget the watch history: a watch from any earlier resourceVersion gets `Expired`."""
        with self._cond:
            self._history.clear()
            self._compacted = self._rv
            for changed in self._changed.values():
                changed.notify_all()  # watches behind the compaction expire now

    def watch(
        self,
        resource: str,
        *,
        resource_version: str | None = None,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        timeout: float | None = None,
        bookmark_at_end: bool = False,
        alive: Callable[[], bool] | None = None,
    ) -> WatchStream:
        """Changes to matching objects after `resource_version`, as the apiserver streams them.

        With no resourceVersion (or "0") the stream starts with an `ADDED` event per existing
        object. `Expired` if the version is older than the kept history (raised here, or from
        `next()` if the history moves past a slow reader). Ends after `timeout` seconds or when
        stopped; with `bookmark_at_end`, a timeout first yields a `BOOKMARK` carrying the
        version the stream has caught up to, so a client can resume from there. `alive`, if
        given, is asked twice a second while the stream waits; it ends when that says False.
        """
        info = resource_info(resource)
        labels = parse_label_selector(label_selector)
        fields = parse_field_selector(field_selector, info.field_labels)
        after = _parse_rv(resource_version)
        deadline = None if timeout is None else time.monotonic() + timeout
        stop = threading.Event()
        with self._cond:
            initial: list[WatchEvent] = []
            if after is None:
                after = self._rv
                initial = [
                    WatchEvent("ADDED", copy_json(obj))
                    for key, obj in sorted(self._table(info).items())
                    if self._selected(info, obj, key[0], namespace, labels, fields)
                ]
            elif after < self._compacted:
                raise Expired(f"too old resource version: {after} ({self._compacted})")

        everything = not (namespace or labels.requirements or fields.terms)

        def matches(change: _Change) -> bool:
            if change.resource != info.plural:
                return False
            if everything:
                return True
            obj_ns = change.obj["metadata"].get("namespace", "")
            return self._selected(info, change.obj, obj_ns, namespace, labels, fields)

        def events() -> Iterator[WatchEvent]:
            yield from initial
            cursor = after
            while True:
                timed_out = False
                with self._cond:
                    changed = self._changed_of(info)
                    while True:
                        if stop.is_set():
                            return
                        if cursor < self._compacted:
                            raise Expired(f"too old resource version: {cursor} ({self._compacted})")
                        start = bisect.bisect_right(self._history, cursor, key=lambda c: c.rv)
                        batch = [c for c in self._history[start:] if matches(c)]
                        cursor = self._rv
                        if batch:
                            break
                        if alive is not None and not alive():
                            return
                        if deadline is None:
                            changed.wait(None if alive is None else _ALIVE_POLL)
                            continue
                        remaining = deadline - time.monotonic()
                        if remaining <= 0:
                            timed_out = True
                            break
                        changed.wait(remaining if alive is None else min(remaining, _ALIVE_POLL))
                if timed_out:
                    if bookmark_at_end:
                        yield WatchEvent("BOOKMARK", self._bookmark(info, cursor))
                    return
                for change in batch:
                    yield WatchEvent(change.type, copy_json(change.obj))

        return WatchStream(events(), stop, on_stop=self._wake)

    @staticmethod
    def _bookmark(info: ResourceInfo, rv: int) -> Obj:
        return {
            "apiVersion": info.api_version,
            "kind": info.kind,
            "metadata": {"resourceVersion": str(rv)},
        }

    def _wake(self) -> None:
        with self._cond:
            for changed in self._changed.values():
                changed.notify_all()

    # ------------------------------------------------------------------ test/simulation helpers

    def add_node(self, node: Obj) -> Obj:
        """Create a node (a given uid is kept); `AlreadyExists` if the name is taken."""
        return self._insert(resource_info("nodes"), node, None, trusted=True)

    def add_pod(self, pod: Obj) -> Obj:
        """Create a pod (namespace `default` unless set; a given uid is kept)."""
        return self._insert(resource_info("pods"), pod, None, trusted=True)

    def delete_node(self, name: str) -> Obj:
        """Delete a node; `NotFound` if absent."""
        return self.delete("nodes", name)

    def delete_pod(self, namespace: str, name: str) -> Obj:
        """Delete a pod at once (no graceful termination); `NotFound` if absent."""
        return self.delete("pods", name, namespace=namespace)

    def recorded_events(self, namespace: str | None = None) -> list[Obj]:
        """The `v1` Events created so far, oldest first."""
        items = self.list_objects("events", namespace=namespace)["items"]
        return sorted(items, key=lambda e: int(e["metadata"]["resourceVersion"]))

    # ------------------------------------------------------------------ the Cluster verbs

    def get_node(self, name: str) -> Obj:
        """The node, or `NotFound`."""
        return self.get("nodes", name)

    def list_nodes(self, *, label_selector: str | None = None) -> list[Obj]:
        """All nodes matching the selector, by name."""
        items: list[Obj] = self.list_objects("nodes", label_selector=label_selector)["items"]
        return items

    def get_pod(self, namespace: str, name: str) -> Obj:
        """The pod, or `NotFound`."""
        return self.get("pods", name, namespace=namespace)

    def list_pods(
        self,
        *,
        namespace: str | None = None,
        node_name: str | None = None,
        label_selector: str | None = None,
    ) -> list[Obj]:
        """Pods, optionally only those in a namespace or with `spec.nodeName == node_name`."""
        items: list[Obj] = self.list_objects(
            "pods",
            namespace=namespace,
            label_selector=label_selector,
            field_selector=None if node_name is None else f"spec.nodeName={node_name}",
        )["items"]
        return items

    def patch_node_metadata(
        self,
        name: str,
        *,
        annotations: Mapping[str, str | None] | None = None,
        labels: Mapping[str, str | None] | None = None,
        resource_version: str | None = None,
    ) -> Obj:
        """Merge-patch the node's annotations/labels; return the updated node."""
        body = metadata_patch(
            annotations=annotations, labels=labels, resource_version=resource_version
        )
        return self.patch("nodes", name, body)

    def patch_pod_metadata(
        self,
        namespace: str,
        name: str,
        *,
        annotations: Mapping[str, str | None] | None = None,
        labels: Mapping[str, str | None] | None = None,
        resource_version: str | None = None,
    ) -> Obj:
        """Merge-patch the pod's annotations/labels; return the updated pod."""
        body = metadata_patch(
            annotations=annotations, labels=labels, resource_version=resource_version
        )
        return self.patch("pods", name, body, namespace=namespace)

    def bind_pod(self, namespace: str, name: str, uid: str | None, node: str) -> None:
        """Bind the pod to `node`; `Conflict` if it is already bound or the uid differs."""
        self.bind(namespace, name, node, uid=uid)

    def _informer_watch(
        self, resource: str, resource_version: str | None, timeout: float | None
    ) -> WatchStream:
        """Watch with relist: `RESYNC` (the full list) first when no version is given, and
        again whenever the version has expired; then the changes."""
        stop = threading.Event()
        deadline = None if timeout is None else time.monotonic() + timeout
        current: list[WatchStream] = []

        def relist() -> tuple[WatchEvent, str]:
            listing = self.list_objects(resource)
            return WatchEvent("RESYNC", listing), listing["metadata"]["resourceVersion"]

        def events() -> Iterator[WatchEvent]:
            rv = resource_version
            if rv is None:
                event, rv = relist()
                yield event
            while not stop.is_set():
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return
                try:
                    inner = self.watch(resource, resource_version=rv, timeout=remaining)
                    current[:] = [inner]
                    if stop.is_set():
                        return
                    for event in inner:
                        rv = event.object["metadata"]["resourceVersion"]
                        yield event
                    return
                except Expired:
                    event, rv = relist()
                    yield event

        def on_stop() -> None:
            for inner in current:
                inner.stop()

        return WatchStream(events(), stop, on_stop=on_stop)

    def watch_nodes(
        self, *, resource_version: str | None = None, timeout: float | None = None
    ) -> WatchStream:
        """Node events after `resource_version` (`RESYNC` with the full list first when None,
        and after an expired version); ends after `timeout` seconds or on `stop()`."""
        return self._informer_watch("nodes", resource_version, timeout)

    def watch_pods(
        self, *, resource_version: str | None = None, timeout: float | None = None
    ) -> WatchStream:
        """Pod events after `resource_version` (`RESYNC` with the full list first when None,
        and after an expired version); ends after `timeout` seconds or on `stop()`."""
        return self._informer_watch("pods", resource_version, timeout)

    def get_lease(self, namespace: str, name: str) -> Obj:
        """The Lease, or `NotFound`."""
        return self.get("leases", name, namespace=namespace)

    def create_lease(self, namespace: str, lease: Obj) -> Obj:
        """Create a Lease; `AlreadyExists` (a `Conflict`) if it exists."""
        return self.create("leases", lease, namespace=namespace)

    def replace_lease(self, namespace: str, lease: Obj) -> Obj:
        """Replace a Lease; its `metadata.resourceVersion` is the precondition."""
        return self.replace("leases", lease, namespace=namespace)

    def create_event(self, namespace: str, event: Obj) -> None:
        """Record a `v1` Event; failures are logged, never raised."""
        try:
            self.create("events", event_body(namespace, event), namespace=namespace)
        except ClusterError as exc:
            _log.warning("could not record event in %s: %s", namespace, exc)
