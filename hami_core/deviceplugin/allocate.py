"""`Allocator`: what the device plugin does when the kubelet calls `Allocate` (no gRPC here).

One `Allocate` call names a resource and, per container, the kubelet's device IDs — never the
pod. The allocator reads the pods bound to its node, picks the one the call belongs to
(`hami_core.deviceplugin.attribution`; for a vendor whose spec takes the node lock, only the
pod holding that lock is ever served), pops that pod's next containers from the vendor's
to-allocate annotation, checks the device counts against the kubelet's, asks the vendor's
`hami_mount` for each container's env, mounts and device nodes, and writes the remaining value
back in one merge patch carrying the pod's resourceVersion. When no container of any vendor is
left, the same patch sets the vendor's bind-phase annotation (HAMi's `hami.io/bind-phase`) to
`success` and the vendor's node lock is released. Every pod and node key comes from the vendor's
spec (`annotations.assigned_node`, `bind_phase`, `node_lock`, `to_allocate`, `allocated`).

Vendors that advertise several resources (Cambricon's `vcore` and `vmemory`; Volcano's number,
memory and cores): the kubelet calls `Allocate` once per resource per container, in no fixed
order, each call carrying as many IDs as the container asks of that resource. Exactly one of
those calls pops the container: the one for its *primary* resource (`primary_resource`: the
count resource when the container asks for it, else the first of `spec.advertised` it asks
for). It runs the count check — device count for the count resource, else the container's
quantity of that resource — and answers with the full runtime spec. Every other resource call of
the container is answered with an empty response and changes nothing: one that comes after the
primary is recognised from memory (the container popped last, within `secondary_window`
seconds); one that comes before is recognised by the pod's next container asking exactly that
quantity of that resource. The kubelet merges a container's responses across resources, so the
container gets its env, mounts and device nodes exactly once. Entries of containers that ask for
none of the vendor's advertised resources (the kubelet never calls for them) are cleared as the
containers after them are popped. Vendors with one advertised resource behave exactly as HAMi's
device plugin: every call pops.

Errors: when no pod can be named with certainty, nothing is changed (`AllocateError` with code
`UNAVAILABLE` or `NOT_FOUND`). Once a pod is named, any failure marks it `bind-phase: failed`,
releases the node lock if it holds it, and raises `AllocateError` saying why. Calls are
serialized per node by one lock.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from typing import Any, NoReturn

from hami_core.deviceplugin.attribution import (
    AttributionError,
    Candidate,
    NoPendingPod,
    choose,
)
from hami_core.deviceplugin.devices import preferred_ids
from hami_core.errors import HamiError
from hami_core.k8s.cluster import Cluster, ClusterError, Conflict, NotFound, Obj
from hami_core.model import (
    ContainerAllocation,
    ContainerDevice,
    ContainerRuntimeSpec,
    Device,
    VendorSpec,
)
from hami_core.nodelock import NodeLockError, lock_holder, release_node_lock
from hami_core.plugins import VendorRegistry
from hami_core.protocol import (
    ProtocolError,
    decode_pod_devices,
    encode_pod_devices,
)
from hami_core.protocol.keys import (
    BIND_PHASE_ALLOCATING,
    BIND_PHASE_FAILED,
    BIND_PHASE_SUCCESS,
)
from hami_core.quantity import QuantityError, as_exact_int

__all__ = [
    "AllocateError",
    "Allocator",
    "containers_of",
    "pending_entries",
    "primary_resource",
    "quantity",
]

log = logging.getLogger(__name__)

Entries = list[list[ContainerDevice]]
Container = Mapping[str, Any]


class AllocateError(HamiError):
    """An `Allocate` call that cannot be served.

    `code` is the gRPC status name to answer with; `pod` names the pod when one was chosen;
    `marked_failed` says whether that pod was set to `bind-phase: failed`.
    """

    def __init__(
        self,
        message: str,
        *,
        code: str,
        pod: str | None = None,
        marked_failed: bool = False,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.pod = pod
        self.marked_failed = marked_failed


class _Retry(Exception):
    """The pod changed between read and write: read again."""


def pending_entries(value: str) -> Entries:
    """Decode a to-allocate value into containers, without the empty piece a final `;` leaves
    (the same shape `pop_next_container` writes back). Raises `ProtocolError`."""
    entries = decode_pod_devices(value)
    if value.endswith(";"):
        entries.pop()
    return entries


def containers_of(pod: Mapping[str, Any]) -> list[Container]:
    """The pod's containers in HAMi's order: init containers first, then app containers."""
    spec = pod.get("spec") or {}
    return [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]


def quantity(container: Container, resource: str) -> int:
    """How many of `resource` a container asks for (its limit, else its request); 0 when it
    asks for none or the value is not a whole number."""
    resources = container.get("resources") or {}
    for part in ("limits", "requests"):
        values = resources.get(part) or {}
        if resource in values:
            try:
                value = as_exact_int(values[resource])
            except QuantityError:
                return 0
            return value if value is not None and value > 0 else 0
    return 0


def primary_resource(spec: VendorSpec, container: Container) -> str | None:
    """The advertised resource whose `Allocate` call pops this container's devices: the count
    resource when it is advertised and the container asks for it, else the first of
    `spec.advertised` the container asks for; None when it asks for none of them."""
    count = spec.resources.count
    if count in spec.advertised and quantity(container, count) > 0:
        return count
    return next((r for r in spec.advertised if quantity(container, r) > 0), None)


def _asks_for(container: Container, names: Sequence[str]) -> bool:
    resources = container.get("resources") or {}
    for part in ("limits", "requests"):
        values = resources.get(part) or {}
        for name in names:
            if name in values and str(values[name]).strip() not in ("", "0"):
                return True
    return False


def _entry_map(
    shape: Entries, containers: Sequence[Container], spec: VendorSpec
) -> dict[int, Container]:
    """Which container each non-empty entry belongs to.

    hami's scheduler writes one entry per container (placeholders for those without devices);
    HAMi's Go scheduler on real nodes writes entries only for the containers that asked for the
    vendor. Positions are used when every non-empty entry lands on a container that asks for the
    vendor; otherwise the k-th entry goes to the k-th asking container.
    """
    filled = [i for i, e in enumerate(shape) if e]
    names = spec.resource_names()
    asking = [c for c in containers if _asks_for(c, names)]
    positional = all(i < len(containers) for i in filled)
    if positional and all(_asks_for(containers[i], names) for i in filled):
        return {i: containers[i] for i in filled}
    if len(asking) == len(filled):
        return dict(zip(filled, asking, strict=True))
    if positional:
        return {i: containers[i] for i in filled}
    return {}


def _env(container: Container) -> dict[str, str]:
    env: dict[str, str] = {}
    for item in container.get("env") or []:
        if isinstance(item, Mapping) and isinstance(item.get("value"), str) and item.get("name"):
            env[str(item["name"])] = item["value"]
    return env


def _expected(
    spec: VendorSpec, resource: str, owner: Container | None, devices: Sequence[ContainerDevice]
) -> int:
    """How many IDs the kubelet sends for `resource` when it allocates this entry's container:
    the device count for the count resource (when the container asks for it), else the
    container's quantity of the resource."""
    if owner is None:
        return len(devices)
    if resource == spec.resources.count:
        return len(devices) if quantity(owner, resource) > 0 else 0
    return quantity(owner, resource)


@dataclass(slots=True)
class _Pod:
    obj: Obj
    namespace: str
    name: str
    uid: str
    rv: str | None
    annotations: dict[str, str]
    entries: Entries | None
    problem: str = ""
    owners: dict[int, Container] | None = None

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True, slots=True)
class _Next:
    """A multi-resource vendor's next container to pop: its entry, owner and primary resource,
    and the entries before it that no kubelet call will ever pop."""

    index: int
    devices: list[ContainerDevice]
    owner: Container | None
    primary: str | None
    skipped: tuple[int, ...] = ()


@dataclass(slots=True)
class _Open:
    """The container a multi-resource vendor popped last, and the resource calls (resource →
    number of IDs) still expected for it."""

    pod: str
    container: str
    remaining: dict[str, int]
    until: float


def _owners(pod: _Pod, spec: VendorSpec) -> dict[int, Container]:
    """Which container each pending entry belongs to (read from the allocated annotation, which
    keeps every entry, when it covers the pending ones)."""
    if pod.owners is None:
        entries = pod.entries or []
        shape = entries
        try:
            allocated = pending_entries(pod.annotations.get(spec.annotations.allocated, ""))
            pending = [i for i, e in enumerate(entries) if e]
            if pending and all(i < len(allocated) and allocated[i] for i in pending):
                shape = allocated
        except ProtocolError:
            pass
        pod.owners = _entry_map(shape, containers_of(pod.obj), spec)
    return pod.owners


def _queue(pod: _Pod, spec: VendorSpec) -> list[_Next]:
    """A multi-resource vendor's pending entries in order, each with the entries before it that
    belong to containers asking for none of the advertised resources (never called for)."""
    owners = _owners(pod, spec)
    out: list[_Next] = []
    skipped: list[int] = []
    for index, devices in enumerate(pod.entries or []):
        if not devices:
            continue
        owner = owners.get(index)
        primary = primary_resource(spec, owner) if owner is not None else None
        if owner is not None and primary is None:
            skipped.append(index)
            continue
        out.append(_Next(index, devices, owner, primary, tuple(skipped)))
        skipped = []
    return out


class Allocator:
    """Serves the kubelet's `Allocate` calls for one node (thread-safe, one call at a time).

    `node_devices(vendor)` gives the cards the node agent last discovered (handed to
    `hami_mount`); `config` is the device config, handed to hooks with `nodeName` set to
    `node_name`. `secondary_window` is how long (seconds) after popping a container of a
    multi-resource vendor its other resource calls are answered from memory. `dry_run` (the
    simulator) tells vendors to describe their mounts without touching the host.
    """

    def __init__(
        self,
        cluster: Cluster,
        registry: VendorRegistry,
        node_name: str,
        *,
        config: Mapping[str, Any] | None = None,
        node_devices: Callable[[str], Sequence[Device]] | None = None,
        conflict_retries: int = 5,
        secondary_window: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
        dry_run: bool = False,
    ) -> None:
        self.cluster = cluster
        self.dry_run = dry_run
        self.registry = registry
        self.node_name = node_name
        self.config: Mapping[str, Any] = {**dict(config or {}), "nodeName": node_name}
        self._node_devices = node_devices or (lambda _vendor: ())
        self._retries = max(1, conflict_retries)
        self._window = secondary_window
        self._clock = clock
        self._lock = threading.Lock()
        self._open: dict[str, _Open] = {}

    # ----------------------------------------------------------------------------- reading

    def _read(self, spec: VendorSpec) -> tuple[list[_Pod], Obj | None]:
        if spec.annotations.to_allocate is None:
            raise AllocateError(
                f"vendor {spec.key} has no to-allocate annotation key; it cannot be allocated "
                "through the device plugin",
                code="FAILED_PRECONDITION",
            )
        try:
            pods = self.cluster.list_pods(node_name=self.node_name)
            try:
                node: Obj | None = self.cluster.get_node(self.node_name)
            except NotFound:
                node = None
        except ClusterError as exc:
            raise AllocateError(
                f"cannot read pods of node {self.node_name}: {exc}", code="UNAVAILABLE"
            ) from exc
        return [p for obj in pods if (p := self._candidate(obj, spec)) is not None], node

    def _candidate(self, obj: Obj, spec: VendorSpec) -> _Pod | None:
        keys = spec.annotations
        key = keys.to_allocate
        assert key is not None  # checked by _read
        meta = obj.get("metadata") or {}
        annotations: Mapping[str, str] = meta.get("annotations") or {}
        if (obj.get("spec") or {}).get("nodeName") != self.node_name:
            return None
        if ((obj.get("status") or {}).get("phase") or "Pending") != "Pending":
            return None
        if meta.get("deletionTimestamp"):
            return None
        if annotations.get(keys.assigned_node) != self.node_name:
            return None
        if annotations.get(keys.bind_phase) != BIND_PHASE_ALLOCATING:
            return None
        value = annotations.get(key)
        if value is None:
            return None
        pod = _Pod(
            obj=obj,
            namespace=str(meta.get("namespace") or "default"),
            name=str(meta.get("name") or ""),
            uid=str(meta.get("uid") or ""),
            rv=str(meta["resourceVersion"]) if meta.get("resourceVersion") else None,
            annotations=dict(annotations),
            entries=None,
        )
        try:
            pod.entries = pending_entries(value)
        except ProtocolError as exc:
            pod.problem = str(exc.with_annotation(key))
            return pod
        return pod if any(pod.entries) else None

    def _in_progress(self, pod: _Pod) -> bool:
        for spec in self.registry.specs():
            to_key, done_key = spec.annotations.to_allocate, spec.annotations.allocated
            if to_key is None or to_key not in pod.annotations:
                continue
            try:
                left = sum(1 for e in pending_entries(pod.annotations[to_key]) if e)
                total = sum(1 for e in pending_entries(pod.annotations.get(done_key, "")) if e)
            except ProtocolError:
                continue
            if left < total:
                return True
        return False

    def _pending(self, pod: _Pod, spec: VendorSpec, resource: str | None) -> tuple[int, ...] | None:
        """What the kubelet would send for `resource` for each of the pod's next containers
        (device counts when `resource` is None: every call pops)."""
        if pod.entries is None:
            return None
        if resource is None or len(spec.advertised) <= 1:
            return tuple(len(e) for e in pod.entries if e)
        return tuple(_expected(spec, resource, n.owner, n.devices) for n in _queue(pod, spec))

    def _choose(
        self,
        spec: VendorSpec,
        resource: str | None,
        pods: Sequence[_Pod],
        counts: Sequence[int],
        node: Obj | None,
    ) -> _Pod:
        lock = lock_holder(node, spec.annotations.node_lock) if node is not None else None
        holder = (lock.namespace, lock.name) if lock is not None and lock.name else None
        several = len(pods) > 1
        cands = [
            Candidate(
                p.namespace,
                p.name,
                self._pending(p, spec, resource),
                in_progress=several and self._in_progress(p),
                problem=p.problem,
            )
            for p in pods
        ]
        # a lock that names no pod (Volcano's bare time) cannot single out its holder: any pod
        # may be served then, as before; no lock at all means no bind ran for any of them
        holder_only = spec.node_lock and (lock is None or bool(lock.name))
        chosen = choose(cands, counts, holder, holder_only=holder_only)
        return next(p for p in pods if p.key == chosen.key)

    def _attribute(
        self,
        spec: VendorSpec,
        resource: str | None,
        pods: Sequence[_Pod],
        counts: Sequence[int],
        node: Obj | None,
    ) -> _Pod:
        try:
            pod = self._choose(spec, resource, pods, counts, node)
        except AttributionError as exc:
            code = "NOT_FOUND" if isinstance(exc, NoPendingPod) else "UNAVAILABLE"
            what = resource if resource and resource != spec.resources.count else "device(s)"
            raise AllocateError(
                f"node {self.node_name}: {spec.key} Allocate of {counts} {what}: {exc}",
                code=code,
            ) from exc
        if pod.entries is None:
            self._fail(spec, pod, node, pod.problem, code="FAILED_PRECONDITION")
        return pod

    # ----------------------------------------------------------------------------- writing

    def _fail(
        self, spec: VendorSpec, pod: _Pod, node: Obj | None, message: str, *, code: str
    ) -> NoReturn:
        keys = spec.annotations
        text = f"pod {pod.key}: {message}"
        notes: list[str] = []
        try:
            self.cluster.patch_pod_metadata(
                pod.namespace, pod.name, annotations={keys.bind_phase: BIND_PHASE_FAILED}
            )
        except ClusterError as exc:
            notes.append(f"could not mark it failed: {exc}")
        try:
            release_node_lock(
                self.cluster,
                self.node_name,
                pod.namespace,
                pod.name,
                current=node,
                key=keys.node_lock,
            )
        except NodeLockError as exc:
            notes.append(str(exc))
        if notes:
            text = f"{text} ({'; '.join(notes)})"
        log.warning("Allocate failed: %s", text)
        raise AllocateError(text, code=code, pod=pod.key, marked_failed=not notes)

    def _others_done(self, pod: _Pod, spec: VendorSpec) -> bool:
        for other in self.registry.specs():
            key = other.annotations.to_allocate
            if other.key == spec.key or key is None or key not in pod.annotations:
                continue
            try:
                if any(pending_entries(pod.annotations[key])):
                    return False
            except ProtocolError as exc:
                log.warning("pod %s: %s", pod.key, exc.with_annotation(key))
                return False
        return True

    def _record(
        self,
        spec: VendorSpec,
        pod: _Pod,
        node: Obj | None,
        entries: Entries,
        popped: Sequence[tuple[int, Sequence[ContainerDevice]]],
    ) -> None:
        """Write the remaining to-allocate value (and `success` when nothing is left), then
        release the node lock when done."""
        keys = spec.annotations
        assert keys.to_allocate is not None  # checked by _read
        done = not any(entries) and self._others_done(pod, spec)
        patch: dict[str, str | None] = {keys.to_allocate: encode_pod_devices(entries)}
        if done:
            patch[keys.bind_phase] = BIND_PHASE_SUCCESS
        try:
            self.cluster.patch_pod_metadata(
                pod.namespace, pod.name, annotations=patch, resource_version=pod.rv
            )
        except Conflict as exc:
            raise _Retry from exc
        except NotFound as exc:
            raise AllocateError(
                f"pod {pod.key} was deleted while allocating", code="NOT_FOUND", pod=pod.key
            ) from exc
        except ClusterError as exc:
            self._fail(
                spec, pod, node, f"could not record the allocation: {exc}", code="UNAVAILABLE"
            )
        if done:
            try:
                release_node_lock(
                    self.cluster,
                    self.node_name,
                    pod.namespace,
                    pod.name,
                    current=node,
                    key=keys.node_lock,
                )
            except NodeLockError as exc:
                log.warning("pod %s allocated, but %s", pod.key, exc)
        log.info(
            "allocated %s to pod %s: %s",
            spec.key,
            pod.key,
            "; ".join(",".join(d.uuid for d in devs) for _, devs in popped),
        )

    # ----------------------------------------------------------------------------- public

    @contextmanager
    def serialized(self) -> Iterator[None]:
        """Hold the node's Allocate lock: no `Allocate` runs inside (used to re-register
        only after in-flight calls have answered)."""
        with self._lock:
            yield

    def allocate(
        self,
        spec: VendorSpec,
        requests: Sequence[Sequence[str]],
        resource: str | None = None,
    ) -> list[ContainerRuntimeSpec]:
        """Serve one `Allocate` for `resource`: one runtime spec per container request, in
        order. Without `resource` (a caller that allocates each container in one call, such as
        the simulator), every request pops its container with the device-count check, as for
        a vendor with one advertised resource.

        Raises `AllocateError` (see the module doc for what was changed in each case).
        """
        if not requests:
            return []
        with self._lock:
            if resource is None or len(spec.advertised) <= 1:
                return self._retrying(spec, lambda: self._allocate_once(spec, requests))
            out: list[ContainerRuntimeSpec] = []
            for ids in requests:
                out.extend(self._retrying(spec, partial(self._allocate_unit, spec, resource, ids)))
            return out

    def _retrying(
        self, spec: VendorSpec, attempt: Callable[[], list[ContainerRuntimeSpec]]
    ) -> list[ContainerRuntimeSpec]:
        for _ in range(self._retries):
            try:
                return attempt()
            except _Retry:
                continue
        raise AllocateError(
            f"the pod kept changing while allocating {spec.key} devices on "
            f"{self.node_name}; try again",
            code="ABORTED",
        )

    def _allocate_once(
        self, spec: VendorSpec, requests: Sequence[Sequence[str]]
    ) -> list[ContainerRuntimeSpec]:
        """Every call pops its containers, as HAMi's device plugin does."""
        counts = [len(ids) for ids in requests]
        pods, node = self._read(spec)
        pod = self._attribute(spec, None, pods, counts, node)
        assert pod.entries is not None
        entries = [list(e) for e in pod.entries]
        popped: list[tuple[int, list[ContainerDevice]]] = []
        for ids in requests:
            index = next((i for i, e in enumerate(entries) if e), None)
            if index is None:
                self._fail(
                    spec,
                    pod,
                    node,
                    f"no pending {spec.key} device allocation left for the kubelet's "
                    f"request of {len(ids)} device(s)",
                    code="FAILED_PRECONDITION",
                )
            devices = entries[index]
            if len(devices) != len(ids):
                self._mismatch(spec, pod, node, ids, devices)
            popped.append((index, devices))
            entries[index] = []
        owners = _owners(pod, spec)
        results = [
            self._mount(spec, pod, node, owners, index, devices, ids)
            for (index, devices), ids in zip(popped, requests, strict=True)
        ]
        self._record(spec, pod, node, entries, popped)
        return results

    def _mismatch(
        self,
        spec: VendorSpec,
        pod: _Pod,
        node: Obj | None,
        ids: Sequence[str],
        devices: Sequence[ContainerDevice],
    ) -> NoReturn:
        self._fail(
            spec,
            pod,
            node,
            f"device number not matched: the kubelet asks for {len(ids)} "
            f"{spec.key} device(s), the scheduler assigned {len(devices)} "
            f"({', '.join(d.uuid for d in devices)})",
            code="INVALID_ARGUMENT",
        )

    def _allocate_unit(
        self, spec: VendorSpec, resource: str, ids: Sequence[str]
    ) -> list[ContainerRuntimeSpec]:
        """One container's call for one resource of a multi-resource vendor (module doc)."""
        now = self._clock()
        last = self._open.get(spec.key)
        if last is not None and now > last.until:
            del self._open[spec.key]
        elif last is not None and last.remaining.get(resource) == len(ids):
            del last.remaining[resource]
            if not last.remaining:
                del self._open[spec.key]
            log.debug(
                "%s of container %s (%s): already allocated", resource, last.container, last.pod
            )
            return [ContainerRuntimeSpec()]
        pods, node = self._read(spec)
        pod = self._attribute(spec, resource, pods, [len(ids)], node)
        queue = _queue(pod, spec)
        if not queue:
            self._fail(
                spec,
                pod,
                node,
                f"no pending {spec.key} device allocation left for the kubelet's "
                f"request of {len(ids)} {resource}",
                code="FAILED_PRECONDITION",
            )
        head = queue[0]
        if head.owner is None:
            self._fail(
                spec,
                pod,
                node,
                f"{spec.key} entry {head.index} of the to-allocate annotation matches no container",
                code="FAILED_PRECONDITION",
            )
        name = str(head.owner.get("name") or "")
        expected = _expected(spec, resource, head.owner, head.devices)
        if head.primary != resource:
            if expected == len(ids):
                log.debug(
                    "%s of container %s (%s): comes with %s", resource, name, pod.key, head.primary
                )
                return [ContainerRuntimeSpec()]
            self._fail(
                spec,
                pod,
                node,
                f"the kubelet asks for {len(ids)} {resource} for the next container, but "
                f"container {name!r} asks for {expected}",
                code="FAILED_PRECONDITION",
            )
        if expected != len(ids):
            if resource == spec.resources.count:
                self._mismatch(spec, pod, node, ids, head.devices)
            self._fail(
                spec,
                pod,
                node,
                f"the kubelet asks for {len(ids)} {resource}, container {name!r} asks for "
                f"{expected}",
                code="INVALID_ARGUMENT",
            )
        assert pod.entries is not None
        entries = [list(e) for e in pod.entries]
        for index in head.skipped:
            log.warning(
                "pod %s: clearing %s entry %d: its container asks for none of %s, so the "
                "kubelet never allocates it",
                pod.key,
                spec.key,
                index,
                ", ".join(spec.advertised),
            )
            entries[index] = []
        entries[head.index] = []
        result = self._mount(spec, pod, node, _owners(pod, spec), head.index, head.devices, ids)
        self._record(spec, pod, node, entries, [(head.index, head.devices)])
        remaining = {
            r: n
            for r in spec.advertised
            if r != resource and (n := _expected(spec, r, head.owner, head.devices)) > 0
        }
        if remaining:
            self._open[spec.key] = _Open(pod.key, name, remaining, self._clock() + self._window)
        else:
            self._open.pop(spec.key, None)
        return [result]

    def _mount(
        self,
        spec: VendorSpec,
        pod: _Pod,
        node: Obj | None,
        owners: Mapping[int, Container],
        index: int,
        devices: Sequence[ContainerDevice],
        ids: Sequence[str],
    ) -> ContainerRuntimeSpec:
        container = owners.get(index)
        if container is None:
            self._fail(
                spec,
                pod,
                node,
                f"{spec.key} entry {index} of the to-allocate annotation matches no container",
                code="FAILED_PRECONDITION",
            )
        name = str(container.get("name") or "")
        try:
            allocation = ContainerAllocation(
                vendor=spec.key,
                pod_namespace=pod.namespace,
                pod_name=pod.name,
                pod_uid=pod.uid,
                pod_annotations=pod.annotations,
                container=name,
                container_env=_env(container),
                devices=tuple(devices),
                node_devices=tuple(self._node_devices(spec.key)),
                kubelet_ids=tuple(ids),
                config=self.config,
                dry_run=self.dry_run,
            )
            result = self.registry.hook.hami_mount(allocation=allocation)
        except Exception as exc:  # a vendor's mount hook must not take the plugin down
            self._fail(
                spec,
                pod,
                node,
                f"container {name!r}: {spec.key} mount failed: {type(exc).__name__}: {exc}",
                code="INTERNAL",
            )
        if not isinstance(result, ContainerRuntimeSpec):
            self._fail(
                spec,
                pod,
                node,
                f"container {name!r}: vendor {spec.key} gave no runtime spec (hami_mount "
                f"returned {type(result).__name__})",
                code="INTERNAL",
            )
        return result

    def preferred(
        self, spec: VendorSpec, available: Sequence[str], must_include: Sequence[str], size: int
    ) -> list[str]:
        """The IDs to suggest for one container: replicas of the cards the scheduler chose for
        the pod being started, when that pod can be told for sure; else spread over cards."""
        cards: list[str] = []
        try:
            pods, node = self._read(spec)
            pod = self._choose(spec, None, pods, [size], node)
            if pod.entries is not None:
                cards = [d.uuid for d in next((e for e in pod.entries if e), [])]
        except (AllocateError, AttributionError) as exc:
            log.debug("preferred allocation without a pod: %s", exc)
        return preferred_ids(available, must_include, size, cards)
