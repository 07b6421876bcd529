"""The Kubernetes verbs hami needs, as one small protocol.

Everything above this layer works on plain JSON-shaped dicts (`{"metadata": {...}, "spec":
{...}}`, camelCase keys exactly as the apiserver sends them), so the in-memory cluster, the real
client adapter and the fake apiserver are interchangeable. Only `hami_core.k8s` imports the
`kubernetes` client.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol, runtime_checkable

__all__ = [
    "Cluster",
    "ClusterError",
    "Conflict",
    "NotFound",
    "Obj",
    "Unavailable",
    "WatchEvent",
]

Obj = dict[str, Any]
"""A Kubernetes object as JSON-shaped data (camelCase keys, as the apiserver sends it)."""


class ClusterError(Exception):
    """Any failure talking to the cluster; `status` is the HTTP status when there was one."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class NotFound(ClusterError):
    """The object does not exist (HTTP 404)."""


class Conflict(ClusterError):
    """A precondition failed: stale resourceVersion, already bound, already exists (HTTP 409)."""


class Unavailable(ClusterError):
    """The apiserver could not answer now (5xx, timeout, connection refused); retry later."""


@dataclass(frozen=True, slots=True)
class WatchEvent:
    """One watch event: `ADDED`, `MODIFIED`, `DELETED`, or `BOOKMARK`/`RESYNC` markers."""

    type: Literal["ADDED", "MODIFIED", "DELETED", "BOOKMARK", "RESYNC"]
    object: Obj


@runtime_checkable
class Cluster(Protocol):
    """The verbs hami uses. Patches are JSON merge patches of metadata only.

    A `None` value in an annotation or label mapping removes that key. `resource_version`, when
    given, is a precondition: the write fails with `Conflict` if the object changed since.
    """

    def get_node(self, name: str) -> Obj:
        """The node, or `NotFound`."""
        ...

    def list_nodes(self, *, label_selector: str | None = None) -> list[Obj]:
        """All nodes matching the selector."""
        ...

    def get_pod(self, namespace: str, name: str) -> Obj:
        """The pod, or `NotFound`."""
        ...

    def list_pods(
        self,
        *,
        namespace: str | None = None,
        node_name: str | None = None,
        label_selector: str | None = None,
    ) -> list[Obj]:
        """Pods, optionally only those in a namespace or with `spec.nodeName == node_name`."""
        ...

    def patch_node_metadata(
        self,
        name: str,
        *,
        annotations: Mapping[str, str | None] | None = None,
        labels: Mapping[str, str | None] | None = None,
        resource_version: str | None = None,
    ) -> Obj:
        """Merge-patch the node's annotations/labels; return the updated node."""
        ...

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
        ...

    def bind_pod(self, namespace: str, name: str, uid: str | None, node: str) -> None:
        """Create the pod's `Binding` to `node`; `Conflict` if it is already bound."""
        ...

    def watch_nodes(self, *, resource_version: str | None = None) -> Iterator[WatchEvent]:
        """Node events after `resource_version` (a list first when it is None)."""
        ...

    def watch_pods(self, *, resource_version: str | None = None) -> Iterator[WatchEvent]:
        """Pod events after `resource_version` (a list first when it is None)."""
        ...

    def get_lease(self, namespace: str, name: str) -> Obj:
        """The `coordination.k8s.io/v1` Lease, or `NotFound`."""
        ...

    def create_lease(self, namespace: str, lease: Obj) -> Obj:
        """Create a Lease; `Conflict` if it exists."""
        ...

    def replace_lease(self, namespace: str, lease: Obj) -> Obj:
        """Replace a Lease; its `metadata.resourceVersion` is the precondition."""
        ...

    def create_event(self, namespace: str, event: Obj) -> None:
        """Record a `v1` Event (best effort: failures are logged, never raised)."""
        ...
