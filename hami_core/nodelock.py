"""The node lock (`hami.io/mutex.lock`) over any `Cluster`: one pod binds per node at a time.

Every function takes the lock's annotation `key` (HAMi's by default; a vendor's spec names its
own in `annotations.node_lock`, e.g. Volcano's `volcano.sh/mutex.lock`).

The scheduler's bind takes the lock for a pod; the device plugin releases it when that pod's
`Allocate` calls are done (or failed). Writes carry the node's resourceVersion as a precondition,
so two takers cannot both win: the loser sees 409, re-reads, and finds the other's lock.

Choices beyond HAMi's `nodelock.go`, all on the side of not blocking a node forever: a lock value
that cannot be read is broken like an expired one, and a holder pod that is finished (Succeeded
or Failed) or being deleted counts as gone, like a deleted one.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from hami_core.errors import HamiError
from hami_core.k8s.cluster import Cluster, ClusterError, Conflict, NotFound, Obj
from hami_core.protocol import (
    DEFAULT_NODE_LOCK_TIMEOUT,
    NodeLock,
    ProtocolError,
    format_node_lock,
    parse_node_lock,
)
from hami_core.protocol.keys import NODE_LOCK

__all__ = [
    "NodeLockContention",
    "NodeLockError",
    "lock_holder",
    "lock_node",
    "release_node_lock",
]

log = logging.getLogger(__name__)

_RETRIES = 5
_BACKOFF = 0.1


class NodeLockError(HamiError):
    """The node lock could not be taken or released (the message says why)."""


class NodeLockContention(NodeLockError):
    """Another live pod holds the node's lock and it has not expired."""

    def __init__(self, node: str, holder: str, timeout: timedelta) -> None:
        super().__init__(
            f"node {node} has been locked within {timeout} by {holder}: node lock contention"
        )
        self.node = node
        self.holder = holder


def _seconds(timeout: float | timedelta) -> timedelta:
    return timeout if isinstance(timeout, timedelta) else timedelta(seconds=timeout)


def _annotations(node: Obj) -> dict[str, str]:
    return dict((node.get("metadata") or {}).get("annotations") or {})


def _rv(obj: Obj) -> str | None:
    value = (obj.get("metadata") or {}).get("resourceVersion")
    return str(value) if value is not None else None


def lock_holder(node: Obj, key: str = NODE_LOCK) -> NodeLock | None:
    """The node's current lock under `key`, read from the node object; None if absent or
    unreadable."""
    value = _annotations(node).get(key)
    if value is None:
        return None
    try:
        return parse_node_lock(value)
    except ProtocolError:
        return None


def _pod_gone(cluster: Cluster, namespace: str, name: str) -> bool:
    try:
        pod = cluster.get_pod(namespace, name)
    except NotFound:
        return True
    phase = (pod.get("status") or {}).get("phase")
    deleting = (pod.get("metadata") or {}).get("deletionTimestamp")
    return phase in ("Succeeded", "Failed") or bool(deleting)


def _try_lock(
    cluster: Cluster,
    node: str,
    namespace: str,
    name: str,
    now: datetime,
    timeout: timedelta,
    key: str,
) -> None:
    obj = cluster.get_node(node)
    value = _annotations(obj).get(key)
    if value is not None:
        try:
            lock = parse_node_lock(value)
        except ProtocolError as exc:
            log.warning("node %s: breaking an unreadable node lock %r: %s", node, value, exc)
        else:
            if lock.held_by(namespace, name):
                return
            holder = f"{lock.namespace}/{lock.name}" if lock.name else "a legacy lock"
            if lock.expired(now, timeout):
                log.info("node %s: breaking the expired node lock of %s", node, holder)
            elif lock.name and _pod_gone(cluster, lock.namespace, lock.name):
                log.info("node %s: breaking the node lock of finished pod %s", node, holder)
            else:
                raise NodeLockContention(node, holder, timeout)
    cluster.patch_node_metadata(
        node,
        annotations={key: format_node_lock(now, namespace, name)},
        resource_version=_rv(obj),
    )


def lock_node(
    cluster: Cluster,
    node: str,
    namespace: str,
    name: str,
    now: datetime | None = None,
    timeout: float | timedelta = DEFAULT_NODE_LOCK_TIMEOUT,
    *,
    retries: int = _RETRIES,
    backoff: float = _BACKOFF,
    sleep: Callable[[float], None] = time.sleep,
    key: str = NODE_LOCK,
) -> None:
    """Take `node`'s lock (annotation `key`) for pod `namespace/name` (reentrant for the same
    pod).

    Breaks a lock that expired (older than `timeout`, seconds or timedelta), is unreadable, or
    whose holder pod is gone. Raises `NodeLockContention` when another live pod holds it, and
    `NodeLockError` when the node does not exist or the apiserver kept failing (a 409 is retried
    at once with a fresh read, other failures with exponential backoff from `backoff` s, up to
    `retries` attempts in all).
    """
    limit = _seconds(timeout)
    last: ClusterError | None = None
    for attempt in range(max(1, retries)):
        stamp = now if now is not None else datetime.now(UTC)
        try:
            _try_lock(cluster, node, namespace, name, stamp, limit, key)
            return
        except NotFound as exc:
            raise NodeLockError(f"node {node}: cannot lock: {exc}") from exc
        except ClusterError as exc:
            last = exc
            if attempt + 1 < retries and not isinstance(exc, Conflict):
                sleep(backoff * (2**attempt) * (1 + random.random() * 0.5))
    raise NodeLockError(
        f"node {node}: could not take the node lock for {namespace}/{name} after "
        f"{retries} attempts: {last}"
    ) from last


def release_node_lock(
    cluster: Cluster,
    node: str,
    namespace: str,
    name: str,
    skip_owner_check: bool = False,
    *,
    current: Obj | None = None,
    retries: int = _RETRIES,
    backoff: float = _BACKOFF,
    sleep: Callable[[float], None] = time.sleep,
    key: str = NODE_LOCK,
) -> bool:
    """Remove `node`'s lock (annotation `key`) if pod `namespace/name` holds it; True when a
    lock was removed.

    A no-op (False) when the node or the lock is absent, or the lock names another pod (unless
    `skip_owner_check`); an ownerless legacy lock is removed, as HAMi does. `current` is a node
    object already read, to save one GET. Each removal carries the resourceVersion it checked,
    so a lock replaced meanwhile is never removed. Raises `NodeLockError` when the apiserver
    kept failing.
    """
    last: ClusterError | None = None
    obj = current
    for attempt in range(max(1, retries)):
        try:
            if obj is None:
                obj = cluster.get_node(node)
            value = _annotations(obj).get(key)
            if value is None:
                return False
            if not skip_owner_check:
                try:
                    lock = parse_node_lock(value)
                except ProtocolError:
                    return False
                if lock.name and not lock.held_by(namespace, name):
                    return False
            cluster.patch_node_metadata(node, annotations={key: None}, resource_version=_rv(obj))
            return True
        except NotFound:
            return False
        except ClusterError as exc:
            last = exc
            obj = None
            if attempt + 1 < retries and not isinstance(exc, Conflict):
                sleep(backoff * (2**attempt) * (1 + random.random() * 0.5))
    raise NodeLockError(
        f"node {node}: could not release the node lock of {namespace}/{name} after "
        f"{retries} attempts: {last}"
    ) from last
