"""`LeaderElector`: one leader among scheduler replicas through a `coordination.k8s.io/v1` Lease.

The Lease spec holds `holderIdentity`, `leaseDurationSeconds`, `acquireTime`, `renewTime`
(MicroTime, `2006-01-02T15:04:05.000000Z`) and `leaseTransitions`. Every `retry_period` each
replica reads the Lease and:
- creates it holding it, when it does not exist (a create race loses with 409);
- renews it when it holds it (renewTime only);
- takes it over when the holder is empty or has not changed the record for
  `lease_duration` seconds of this replica's own clock (as client-go judges expiry, so clock
  skew between nodes does not matter), counting a transition;
- otherwise follows.
Every write replaces the Lease with its read `resourceVersion` as precondition, so two replicas
cannot both win. A leader that cannot renew for `renew_deadline` seconds, or finds another
holder, steps down. `stop(release=True)` hands the lease back (empty holder, 1 s duration) so a
follower takes over at its next retry.
"""

from __future__ import annotations

import copy
import logging
import math
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Literal

from hami_core.k8s.cluster import Cluster, ClusterError, Conflict, NotFound, Obj

__all__ = ["LeaderElector", "micro_time"]

log = logging.getLogger(__name__)

Outcome = Literal["leader", "follower", "error"]


def micro_time(when: datetime) -> str:
    """A `metav1.MicroTime` as the apiserver writes it: `2024-05-01T10:00:00.123456Z`."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class LeaderElector:
    """Campaigns for a Lease in a background thread; `is_leader` says whether this replica leads."""

    def __init__(
        self,
        cluster: Cluster,
        namespace: str,
        name: str,
        identity: str,
        *,
        lease_duration: float = 15.0,
        renew_deadline: float = 10.0,
        retry_period: float = 2.0,
        on_started_leading: Callable[[], None] | None = None,
        on_stopped_leading: Callable[[], None] | None = None,
        wall_clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.cluster = cluster
        self.namespace = namespace
        self.name = name
        self.identity = identity
        self.lease_duration = lease_duration
        self.renew_deadline = renew_deadline
        self.retry_period = retry_period
        self.on_started_leading = on_started_leading
        self.on_stopped_leading = on_stopped_leading
        self.wall_clock = wall_clock
        self.monotonic = monotonic
        self._leader = False
        self._observed: tuple[Any, ...] | None = None
        self._observed_at = 0.0
        self._last_renew = 0.0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ state

    @property
    def is_leader(self) -> bool:
        """True while this replica holds the lease."""
        return self._leader

    def _set_leader(self, leading: bool) -> None:
        if leading == self._leader:
            return
        self._leader = leading
        callback = self.on_started_leading if leading else self.on_stopped_leading
        log.info(
            "%s %s leadership of lease %s/%s",
            self.identity,
            "acquired" if leading else "lost",
            self.namespace,
            self.name,
        )
        if callback is not None:
            try:
                callback()
            except Exception:
                log.exception("leadership callback failed")

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Campaign in a background thread (idempotent)."""
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="hami-leader", daemon=True)
            self._thread.start()

    def stop(self, *, release: bool = True, timeout: float = 5.0) -> None:
        """Stop campaigning; with `release`, hand the lease back if this replica holds it."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout)
        if release and self._leader:
            self._release()
        self._set_leader(False)

    def _run(self) -> None:
        while not self._stop.is_set():
            outcome = self.try_acquire_or_renew()
            now = self.monotonic()
            if outcome == "leader":
                self._last_renew = now
                self._set_leader(True)
            elif outcome == "follower":
                self._set_leader(False)
            elif self._leader and now - self._last_renew >= self.renew_deadline:
                log.warning("could not renew lease %s/%s in time", self.namespace, self.name)
                self._set_leader(False)
            self._stop.wait(self.retry_period)

    # ------------------------------------------------------------------ one round

    def _spec(self, holder: str, acquired: str, transitions: int, now: str) -> Obj:
        return {
            "holderIdentity": holder,
            "leaseDurationSeconds": max(1, math.ceil(self.lease_duration)),
            "acquireTime": acquired,
            "renewTime": now,
            "leaseTransitions": transitions,
        }

    def try_acquire_or_renew(self) -> Outcome:
        """One election round (thread-safe): `leader`, `follower`, or `error` (apiserver)."""
        with self._lock:
            try:
                return self._round()
            except ClusterError as exc:
                log.info("lease %s/%s: %s", self.namespace, self.name, exc)
                return "error"

    def _round(self) -> Outcome:
        now = micro_time(self.wall_clock())
        try:
            lease = self.cluster.get_lease(self.namespace, self.name)
        except NotFound:
            body: Obj = {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {"name": self.name, "namespace": self.namespace},
                "spec": self._spec(self.identity, now, 0, now),
            }
            try:
                self.cluster.create_lease(self.namespace, body)
            except Conflict:
                return "follower"
            self._observe(body["spec"])
            return "leader"
        spec = lease.get("spec") if isinstance(lease.get("spec"), dict) else {}
        assert isinstance(spec, dict)
        holder = str(spec.get("holderIdentity") or "")
        self._observe(spec)
        if holder and holder != self.identity and not self._expired(spec):
            return "follower"
        transitions = int(spec.get("leaseTransitions") or 0)
        acquired = str(spec.get("acquireTime") or now)
        if holder != self.identity:
            transitions += 1
            acquired = now
        updated = copy.deepcopy(lease)
        updated["spec"] = self._spec(self.identity, acquired, transitions, now)
        try:
            self.cluster.replace_lease(self.namespace, updated)
        except Conflict:
            return "follower"
        self._observe(updated["spec"])
        return "leader"

    def _observe(self, spec: Obj) -> None:
        record = (
            spec.get("holderIdentity"),
            spec.get("renewTime"),
            spec.get("acquireTime"),
            spec.get("leaseTransitions"),
        )
        if record != self._observed:
            self._observed = record
            self._observed_at = self.monotonic()

    def _expired(self, spec: Obj) -> bool:
        duration = spec.get("leaseDurationSeconds")
        seconds = float(duration) if isinstance(duration, int | float) else self.lease_duration
        return self.monotonic() >= self._observed_at + seconds

    def _release(self) -> None:
        try:
            with self._lock:
                lease = self.cluster.get_lease(self.namespace, self.name)
                spec = lease.get("spec") or {}
                if spec.get("holderIdentity") != self.identity:
                    return
                updated = copy.deepcopy(lease)
                updated["spec"] = dict(spec)
                updated["spec"]["holderIdentity"] = ""
                updated["spec"]["leaseDurationSeconds"] = 1
                updated["spec"]["renewTime"] = micro_time(self.wall_clock())
                self.cluster.replace_lease(self.namespace, updated)
        except ClusterError as exc:
            log.warning("could not release lease %s/%s: %s", self.namespace, self.name, exc)
