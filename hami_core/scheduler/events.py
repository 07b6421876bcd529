"""`EventRecorder`: pod Events (`FilteringFailed`, `BindingSucceed`...) written off the hot path.

Filter and bind queue an event and return; one background thread creates them through the
`Cluster`. When the queue is full the event is dropped (and counted): events are advice for
`kubectl describe`, never worth slowing scheduling down.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, Literal

from hami_core.k8s.cluster import Cluster, Obj
from hami_core.k8s.objects import rfc3339

__all__ = ["EventRecorder"]

log = logging.getLogger(__name__)


class EventRecorder:
    """Records `v1` Events about pods in a background thread (start/stop it with the service)."""

    def __init__(
        self,
        cluster: Cluster,
        component: str,
        *,
        capacity: int = 1000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._cluster = cluster
        self._component = component or "hami-scheduler"
        self._queue: queue.Queue[tuple[str, Obj] | None] = queue.Queue(maxsize=capacity)
        self._clock = clock
        self._thread: threading.Thread | None = None
        self.dropped = 0

    def start(self) -> None:
        """Start the writer thread (idempotent)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="hami-events", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        """Write what is queued (up to `timeout` seconds), then stop the thread."""
        thread, self._thread = self._thread, None
        if thread is None:
            return
        try:
            self._queue.put(None, timeout=timeout)
        except queue.Full:
            log.warning("event queue full at shutdown; pending events dropped")
        thread.join(timeout)

    def pod_event(
        self,
        pod: Mapping[str, Any],
        reason: str,
        message: str,
        kind: Literal["Normal", "Warning"] = "Normal",
    ) -> None:
        """Queue an event about `pod` (a JSON-shaped Pod); dropped when the queue is full."""
        meta = pod.get("metadata")
        if not isinstance(meta, Mapping):
            return
        namespace = str(meta.get("namespace") or "default")
        name = str(meta.get("name") or "")
        if not name:
            return
        now = rfc3339(self._clock())
        event: Obj = {
            "metadata": {"generateName": f"{name}."},
            "involvedObject": {
                "apiVersion": "v1",
                "kind": "Pod",
                "namespace": namespace,
                "name": name,
                "uid": str(meta.get("uid") or ""),
            },
            "reason": reason,
            "message": message[:1024],
            "type": kind,
            "source": {"component": self._component},
            "reportingComponent": self._component,
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        }
        try:
            self._queue.put_nowait((namespace, event))
        except queue.Full:
            self.dropped += 1

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            namespace, event = item
            try:
                self._cluster.create_event(namespace, event)
            except Exception as exc:  # create_event should not raise; never let it kill us
                log.warning("could not record event %s: %s", event.get("reason"), exc)
