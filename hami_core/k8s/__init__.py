"""The Kubernetes boundary: the `Cluster` protocol and its in-memory and real-client adapters.

`KubeCluster` (the only user of the `kubernetes` client) is imported on first use, so code that
needs only `MemoryCluster` never loads the client.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hami_core.k8s.cluster import (
    Cluster,
    ClusterError,
    Conflict,
    NotFound,
    Obj,
    Unavailable,
    WatchEvent,
)
from hami_core.k8s.errors import AlreadyExists, Expired, Invalid
from hami_core.k8s.memory import MemoryCluster
from hami_core.k8s.ratelimit import TokenBucket
from hami_core.k8s.watch import WatchStream

if TYPE_CHECKING:
    from hami_core.k8s.kube import KubeCluster

__all__ = [
    "AlreadyExists",
    "Cluster",
    "ClusterError",
    "Conflict",
    "Expired",
    "Invalid",
    "KubeCluster",
    "MemoryCluster",
    "NotFound",
    "Obj",
    "TokenBucket",
    "Unavailable",
    "WatchEvent",
    "WatchStream",
]


def __getattr__(name: str) -> Any:
    if name == "KubeCluster":
        from hami_core.k8s.kube import KubeCluster

        return KubeCluster
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
