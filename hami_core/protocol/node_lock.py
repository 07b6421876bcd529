"""The node lock annotation `hami.io/mutex.lock`: `<RFC3339 time>,<pod namespace>,<pod name>`.

The scheduler's bind takes it; the device plugin releases it once `Allocate` is done. A lock
older than the timeout (5 minutes by default) may be broken. The legacy value, a bare RFC3339
time, is read with an empty owner.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Final

from hami_core.protocol.errors import ProtocolError

__all__ = ["DEFAULT_NODE_LOCK_TIMEOUT", "NodeLock", "format_node_lock", "parse_node_lock"]

DEFAULT_NODE_LOCK_TIMEOUT: Final = timedelta(minutes=5)
"""HAMi's default `--node-lock-timeout`."""

_SEP: Final = ","
_RFC3339: Final = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(?:(Z)|([+-])(\d{2}):(\d{2}))"
)


@dataclass(frozen=True, slots=True)
class NodeLock:
    """A read node lock: when it was taken and by which pod (empty for a legacy lock)."""

    time: datetime
    namespace: str = ""
    name: str = ""

    def expired(self, now: datetime, timeout: timedelta = DEFAULT_NODE_LOCK_TIMEOUT) -> bool:
        """True when the lock is older than `timeout` at `now` (a naive `now` is read as UTC)."""
        if now.tzinfo is None:
            now = now.replace(tzinfo=UTC)
        return now - self.time > timeout

    def held_by(self, namespace: str, name: str) -> bool:
        """True when the pod `namespace/name` holds this lock (a legacy lock has no holder)."""
        return bool(self.name) and self.namespace == namespace and self.name == name


def _rfc3339(now: datetime) -> str:
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    offset = now.utcoffset() or timedelta(0)
    stamp = (
        f"{now.year:04d}-{now.month:02d}-{now.day:02d}T"
        f"{now.hour:02d}:{now.minute:02d}:{now.second:02d}"
    )
    if offset == timedelta(0):
        return stamp + "Z"
    minutes = int(offset.total_seconds()) // 60
    sign = "-" if minutes < 0 else "+"
    minutes = abs(minutes)
    return f"{stamp}{sign}{minutes // 60:02d}:{minutes % 60:02d}"


def format_node_lock(now: datetime, namespace: str, name: str) -> str:
    """Write the lock value HAMi writes: `2024-05-01T10:00:00Z,default,mypod`.

    The time keeps `now`'s own offset (a naive `now` is written as UTC). Raises
    `ProtocolError` if the namespace or name contains `,`.
    """
    for key, text in (("namespace", namespace), ("name", name)):
        if _SEP in text:
            raise ProtocolError(
                f"node lock {key} must not contain ',': {text!r}", field=key, value=text
            )
    return f"{_rfc3339(now)},{namespace},{name}"


def _parse_time(text: str, value: str) -> datetime:
    match = _RFC3339.fullmatch(text)
    parsed: datetime | None = None
    if match is not None:
        year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
        fraction, zulu, sign, off_hour, off_minute = match.groups()[6:]
        try:
            if zulu:
                zone = UTC
            else:
                if int(off_minute) > 59:
                    raise ValueError("offset minutes out of range")
                offset = timedelta(hours=int(off_hour), minutes=int(off_minute))
                zone = timezone(-offset if sign == "-" else offset)
            parsed = datetime(
                year,
                month,
                day,
                hour,
                minute,
                second,
                int((fraction or "0")[:6].ljust(6, "0")),
                tzinfo=zone,
            )
        except ValueError:
            parsed = None
    if parsed is None:
        raise ProtocolError(
            f"malformed lock annotation: time {text!r} is not RFC3339 "
            f"(like 2006-01-02T15:04:05Z) in {value!r}",
            field="time",
            value=value,
        )
    return parsed


def parse_node_lock(value: str) -> NodeLock:
    """Read a lock value (current `time,ns,name` or legacy bare time).

    Raises `ProtocolError` when the value has commas but not exactly 3 parts
    (`malformed lock annotation: expected 3 parts, got N from <v>`) or the time is not RFC3339.
    """
    if not isinstance(value, str):
        raise ProtocolError(f"node lock must be a string, got {type(value).__name__}", value=value)
    if _SEP not in value:
        return NodeLock(time=_parse_time(value, value))
    parts = value.split(_SEP)
    if len(parts) != 3:
        raise ProtocolError(
            f"malformed lock annotation: expected 3 parts, got {len(parts)} from {value}",
            value=value,
        )
    return NodeLock(time=_parse_time(parts[0], value), namespace=parts[1], name=parts[2])
