"""`Allocator`: what the device plugin does when the kubelet calls `Allocate` (no gRPC here).

One `Allocate` call names a resource and, per container, the kubelet's device IDs — never the
pod. The allocator reads the pods bound to its node, picks the one the call belongs to
(`hami_core.deviceplugin.attribution`), pops that pod's next containers from the vendor's
to-allocate annotation, checks the device counts against the kubelet's, asks the vendor's
`hami_mount` for each container's env, mounts and device nodes, and writes the remaining value
back in one merge patch carrying the pod's resourceVersion. When no container of any vendor is
left, the same patch sets `hami.io/bind-phase: success` and the node lock is released.

Errors: when no pod can be named with certainty, nothing is changed (`AllocateError` with code
`UNAVAILABLE` or `NOT_FOUND`). Once a pod is named, any failure marks it `bind-phase: failed`,
releases the node lock if it holds it, and raises `AllocateError` saying why. Calls are
serialized per node by one lock.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
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
    ASSIGNED_NODE,
    BIND_PHASE,
    BIND_PHASE_ALLOCATING,
    BIND_PHASE_FAILED,
    BIND_PHASE_SUCCESS,
)

__all__ = ["AllocateError", "Allocator", "containers_of", "pending_entries"]

log = logging.getLogger(__name__)

Entries = list[list[ContainerDevice]]


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


def containers_of(pod: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The pod's containers in HAMi's order: init containers first, then app containers."""
    spec = pod.get("spec") or {}
    return [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]


def _asks_for(container: Mapping[str, Any], names: Sequence[str]) -> bool:
    resources = container.get("resources") or {}
    for part in ("limits", "requests"):
        values = resources.get(part) or {}
        for name in names:
            if name in values and str(values[name]).strip() not in ("", "0"):
                return True
    return False


def _entry_map(
    shape: Entries, containers: Sequence[Mapping[str, Any]], spec: VendorSpec
) -> dict[int, Mapping[str, Any]]:
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


def _env(container: Mapping[str, Any]) -> dict[str, str]:
    env: dict[str, str] = {}
    for item in container.get("env") or []:
        if isinstance(item, Mapping) and isinstance(item.get("value"), str) and item.get("name"):
            env[str(item["name"])] = item["value"]
    return env


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

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


class Allocator:
    """Serves the kubelet's `Allocate` calls for one node (thread-safe, one call at a time).

    `node_devices(vendor)` gives the cards the node agent last discovered (handed to
    `hami_mount`); `config` is the device config.
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
    ) -> None:
        self.cluster = cluster
        self.registry = registry
        self.node_name = node_name
        self.config: Mapping[str, Any] = dict(config or {})
        self._node_devices = node_devices or (lambda _vendor: ())
        self._retries = max(1, conflict_retries)
        self._lock = threading.Lock()

    # ----------------------------------------------------------------------------- reading

    def _read(self, spec: VendorSpec) -> tuple[list[_Pod], Obj | None]:
        key = spec.annotations.to_allocate
        if key is None:
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
        return [p for obj in pods if (p := self._candidate(obj, key)) is not None], node

    def _candidate(self, obj: Obj, key: str) -> _Pod | None:
        meta = obj.get("metadata") or {}
        annotations: Mapping[str, str] = meta.get("annotations") or {}
        if (obj.get("spec") or {}).get("nodeName") != self.node_name:
            return None
        if ((obj.get("status") or {}).get("phase") or "Pending") != "Pending":
            return None
        if meta.get("deletionTimestamp"):
            return None
        if annotations.get(ASSIGNED_NODE) != self.node_name:
            return None
        if annotations.get(BIND_PHASE) != BIND_PHASE_ALLOCATING:
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

    def _choose(self, pods: Sequence[_Pod], counts: Sequence[int], node: Obj | None) -> _Pod:
        lock = lock_holder(node) if node is not None else None
        holder = (lock.namespace, lock.name) if lock is not None and lock.name else None
        several = len(pods) > 1
        cands = [
            Candidate(
                p.namespace,
                p.name,
                None if p.entries is None else tuple(len(e) for e in p.entries if e),
                in_progress=several and self._in_progress(p),
                problem=p.problem,
            )
            for p in pods
        ]
        chosen = choose(cands, counts, holder)
        return next(p for p in pods if p.key == chosen.key)

    # ----------------------------------------------------------------------------- writing

    def _fail(self, pod: _Pod, node: Obj | None, message: str, *, code: str) -> NoReturn:
        text = f"pod {pod.key}: {message}"
        notes: list[str] = []
        try:
            self.cluster.patch_pod_metadata(
                pod.namespace, pod.name, annotations={BIND_PHASE: BIND_PHASE_FAILED}
            )
        except ClusterError as exc:
            notes.append(f"could not mark it failed: {exc}")
        try:
            release_node_lock(self.cluster, self.node_name, pod.namespace, pod.name, current=node)
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

    # ----------------------------------------------------------------------------- public

    @contextmanager
    def serialized(self) -> Iterator[None]:
        """Hold the node's Allocate lock: no `Allocate` runs inside (used to re-register
        only after in-flight calls have answered)."""
        with self._lock:
            yield

    def allocate(
        self, spec: VendorSpec, requests: Sequence[Sequence[str]]
    ) -> list[ContainerRuntimeSpec]:
        """Serve one `Allocate`: one runtime spec per container request, in order.

        Raises `AllocateError` (see the module doc for what was changed in each case).
        """
        if not requests:
            return []
        with self._lock:
            for _ in range(self._retries):
                try:
                    return self._allocate_once(spec, requests)
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
        key = spec.annotations.to_allocate
        assert key is not None  # checked by _read
        counts = [len(ids) for ids in requests]
        pods, node = self._read(spec)
        try:
            pod = self._choose(pods, counts, node)
        except AttributionError as exc:
            code = "NOT_FOUND" if isinstance(exc, NoPendingPod) else "UNAVAILABLE"
            raise AllocateError(
                f"node {self.node_name}: {spec.key} Allocate of {counts} device(s): {exc}",
                code=code,
            ) from exc
        if pod.entries is None:
            self._fail(pod, node, pod.problem, code="FAILED_PRECONDITION")
        entries = [list(e) for e in pod.entries]
        popped: list[tuple[int, list[ContainerDevice]]] = []
        for ids in requests:
            index = next((i for i, e in enumerate(entries) if e), None)
            if index is None:
                self._fail(
                    pod,
                    node,
                    f"no pending {spec.key} device allocation left for the kubelet's "
                    f"request of {len(ids)} device(s)",
                    code="FAILED_PRECONDITION",
                )
            devices = entries[index]
            if len(devices) != len(ids):
                self._fail(
                    pod,
                    node,
                    f"device number not matched: the kubelet asks for {len(ids)} "
                    f"{spec.key} device(s), the scheduler assigned {len(devices)} "
                    f"({', '.join(d.uuid for d in devices)})",
                    code="INVALID_ARGUMENT",
                )
            popped.append((index, devices))
            entries[index] = []
        shape = pod.entries
        try:
            allocated = pending_entries(pod.annotations.get(spec.annotations.allocated, ""))
            if all(i < len(allocated) and allocated[i] for i, _ in popped):
                shape = allocated
        except ProtocolError:
            pass
        owners = _entry_map(shape, containers_of(pod.obj), spec)
        results = [
            self._mount(spec, pod, node, owners, index, devices, ids)
            for (index, devices), ids in zip(popped, requests, strict=True)
        ]
        done = not any(entries) and self._others_done(pod, spec)
        patch: dict[str, str | None] = {key: encode_pod_devices(entries)}
        if done:
            patch[BIND_PHASE] = BIND_PHASE_SUCCESS
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
            self._fail(pod, node, f"could not record the allocation: {exc}", code="UNAVAILABLE")
        if done:
            try:
                release_node_lock(
                    self.cluster, self.node_name, pod.namespace, pod.name, current=node
                )
            except NodeLockError as exc:
                log.warning("pod %s allocated, but %s", pod.key, exc)
        log.info(
            "allocated %s to pod %s: %s",
            spec.key,
            pod.key,
            "; ".join(",".join(d.uuid for d in devs) for _, devs in popped),
        )
        return results

    def _mount(
        self,
        spec: VendorSpec,
        pod: _Pod,
        node: Obj | None,
        owners: Mapping[int, Mapping[str, Any]],
        index: int,
        devices: Sequence[ContainerDevice],
        ids: Sequence[str],
    ) -> ContainerRuntimeSpec:
        container = owners.get(index)
        if container is None:
            self._fail(
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
            )
            result = self.registry.hook.hami_mount(allocation=allocation)
        except Exception as exc:  # a vendor's mount hook must not take the plugin down
            self._fail(
                pod,
                node,
                f"container {name!r}: {spec.key} mount failed: {type(exc).__name__}: {exc}",
                code="INTERNAL",
            )
        if not isinstance(result, ContainerRuntimeSpec):
            self._fail(
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
            pod = self._choose(pods, [size], node)
            if pod.entries is not None:
                cards = [d.uuid for d in next((e for e in pod.entries if e), [])]
        except (AllocateError, AttributionError) as exc:
            log.debug("preferred allocation without a pod: %s", exc)
        return preferred_ids(available, must_include, size, cards)
