"""`SchedulerSettings`: every knob of the scheduler service, with HAMi's defaults."""

from __future__ import annotations

import os
import socket
import uuid
from dataclasses import dataclass, field, fields

from hami_core.errors import ConfigError

__all__ = ["DEFAULT_MAX_BODY_BYTES", "SchedulerSettings", "default_identity"]

DEFAULT_MAX_BODY_BYTES = 1 << 20
"""HAMi reads request bodies through a 1 MiB limit."""


_ZERO_ALLOWED = frozenset({"bind_cache_wait"})


def default_identity() -> str:
    """This replica's leader-election identity: `$POD_NAME`, else `<hostname>_<random>`."""
    pod = os.environ.get("POD_NAME")
    if pod:
        return pod
    return f"{socket.gethostname()}_{uuid.uuid4().hex[:8]}"


@dataclass(frozen=True, slots=True)
class SchedulerSettings:
    """What the extender, webhook, register loop and leader election are configured with.

    Durations are seconds. `bind_cache_wait` is how long a bind waits for the pod watch to
    show its own write before it checks capacity against a pod LIST instead of the cache
    (0: always list). `success_events` also records `FilteringSucceed` / `BindingSucceed`
    pod events (failures are always recorded; each event is one more apiserver write).
    `ConfigError` names the first field whose value is out of range.
    """

    scheduler_name: str = "hami-scheduler"
    node_policy: str = "binpack"
    gpu_policy: str = "spread"
    node_lock_timeout: float = 300.0
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    strip_forged_annotations: bool = False
    success_events: bool = False
    force_overwrite_default_scheduler: bool = True
    lease_namespace: str = "kube-system"
    lease_name: str = "hami-scheduler-extender"
    identity: str = field(default_factory=default_identity)
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0
    register_interval: float = 15.0
    handshake_timeout: float = 60.0
    resync_period: float = 300.0
    sync_timeout: float = 10.0
    reservation_ttl: float = 60.0
    bind_cache_wait: float = 1.0

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, float | int) or isinstance(value, bool):
                continue
            if f.name in _ZERO_ALLOWED:
                if value < 0:
                    raise ConfigError(f"{f.name}: must be >= 0, got {value!r}")
            elif value <= 0:
                raise ConfigError(f"{f.name}: must be > 0, got {value!r}")
        for name in ("lease_namespace", "lease_name", "identity"):
            if not getattr(self, name):
                raise ConfigError(f"{name}: must not be empty")
        if self.renew_deadline >= self.lease_duration:
            raise ConfigError(
                f"renew_deadline ({self.renew_deadline}) must be shorter than "
                f"lease_duration ({self.lease_duration})"
            )
        if self.retry_period >= self.renew_deadline:
            raise ConfigError(
                f"retry_period ({self.retry_period}) must be shorter than "
                f"renew_deadline ({self.renew_deadline})"
            )
