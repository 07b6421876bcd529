"""`RegisterLoop`: the handshake and health pass over every node (reference hami-protocol §1.6).

Every `interval` seconds, when a node is added and when this replica becomes leader, for each
node the cache knows and each vendor with a handshake annotation whose cards the node offers
(decoded through `hami_read_node` by the cache, once per change of the register annotation):

- `handshake_health(value, now, allocatable count)` decides;
- `need_update` → the leader merge-patches `Requesting_<now>` into the handshake annotation
  (one patch per node for all its vendors);
- unhealthy (a `Requesting_` stamp older than the timeout while the node's allocatable count
  resource is 0) → the vendor's cards on that node are dropped from the cache until a later
  pass finds it healthy again; healthy → they are offered again.

Followers run the same pass read-only: they apply the health verdicts to their own cache but
write nothing. Unlike HAMi v2.8+, an unhealthy vendor's stale stamp is kept rather than deleted:
deleting it makes the next pass write a fresh stamp and offer the dead cards for another minute.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from hami_core.k8s.cluster import Cluster, ClusterError
from hami_core.model import NodeView, VendorSpec
from hami_core.plugins import VendorRegistry
from hami_core.protocol import format_requesting, handshake_health
from hami_core.quantity import QuantityError, parse_quantity
from hami_core.scheduling.cache import UsageCache

__all__ = ["RegisterLoop", "RegisterPass"]

log = logging.getLogger(__name__)


@dataclass(slots=True)
class RegisterPass:
    """What one pass did: stamps written per node, vendors found unhealthy or recovered."""

    written: dict[str, list[str]] = field(default_factory=dict)
    unhealthy: list[tuple[str, str]] = field(default_factory=list)
    recovered: list[tuple[str, str]] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)


def _count(view: NodeView, resource: str) -> int:
    raw = view.allocatable.get(resource)
    if raw is None:
        return 0
    try:
        return max(0, int(parse_quantity(raw)))
    except (QuantityError, ValueError, ArithmeticError):
        return 0


class RegisterLoop:
    """Runs the handshake/health pass periodically in a background thread (module doc)."""

    def __init__(
        self,
        cluster: Cluster,
        cache: UsageCache,
        registry: VendorRegistry,
        *,
        is_leader: Callable[[], bool],
        interval: float = 15.0,
        handshake_timeout: float = 60.0,
        now: Callable[[], datetime] = datetime.now,
        on_written: Callable[[int], None] | None = None,
    ) -> None:
        self.cluster = cluster
        self.cache = cache
        self.is_leader = is_leader
        self.interval = interval
        self.timeout = timedelta(seconds=handshake_timeout)
        self.now = now
        self.on_written = on_written
        self.specs: list[VendorSpec] = [s for s in registry.specs() if s.annotations.handshake]
        self.passes = 0
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pass_lock = threading.Lock()

    def start(self) -> None:
        """Start the periodic thread (idempotent)."""
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="hami-register", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the thread after the pass in progress."""
        self._stop.set()
        self._wake.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout)

    def trigger(self) -> None:
        """Run a pass soon (a node was added, or this replica became leader)."""
        self._wake.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except Exception:  # the loop must survive anything one pass runs into
                log.exception("register pass failed")
            self._wake.wait(self.interval)
            self._wake.clear()

    def run_once(self, *, write: bool | None = None) -> RegisterPass:
        """One pass over every node; writes handshakes only when `write` (default: leader)."""
        with self._pass_lock:
            leader = self.is_leader() if write is None else write
            report = RegisterPass()
            now = self.now()
            for name in self.cache.node_names():
                self._node(name, now, leader, report)
            self.passes += 1
            return report

    def _node(self, name: str, now: datetime, write: bool, report: RegisterPass) -> None:
        with self.cache.locked():
            state = self.cache.node(name)
            if state is None:
                return
            view = state.view
            offered = set(state.vendors)
            unhealthy = set(state.unhealthy)
        patch: dict[str, str | None] = {}
        for spec in self.specs:
            if spec.key not in offered:
                continue
            key = spec.annotations.handshake
            assert key is not None
            decision = handshake_health(
                view.annotations.get(key), now, _count(view, spec.resources.count), self.timeout
            )
            if decision.need_update:
                patch[key] = format_requesting(now)
            if decision.healthy and spec.key in unhealthy:
                self.cache.mark_vendor_healthy(name, spec.key)
                report.recovered.append((name, spec.key))
                log.info("node %s: %s devices are back", name, spec.key)
            elif not decision.healthy and spec.key not in unhealthy:
                self.cache.mark_vendor_unhealthy(name, spec.key)
                report.unhealthy.append((name, spec.key))
                log.warning(
                    "node %s: %s handshake %r expired and no %s is allocatable; its devices are "
                    "no longer offered",
                    name,
                    spec.key,
                    view.annotations.get(key),
                    spec.resources.count,
                )
        if patch and write:
            try:
                self.cluster.patch_node_metadata(name, annotations=patch)
            except ClusterError as exc:
                report.failed[name] = str(exc)
                log.warning("node %s: cannot write handshake: %s", name, exc)
                return
            report.written[name] = sorted(patch)
            if self.on_written is not None:
                self.on_written(len(patch))
