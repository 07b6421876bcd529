"""The node handshake annotation (`hami.io/node-handshake`, `hami.io/node-handshake-<vendor>`).

The scheduler writes `Requesting_<YYYY-MM-DD HH:MM:SS>`; older device plugins answer with a
`Reported ...` stamp every 30 s; HAMi <= v2.7 cleanup wrote `Deleted_<YYYY-MM-DD HH:MM:SS>`.
The stamps carry no time zone: HAMi writes and reads them in the scheduler's local time. Here a
stamp is read in the zone of the `now` you pass, so pass `now` in the zone the writer used
(`datetime.now()` for a local-time writer; containers usually run in UTC).

Reading follows HAMi's `CheckHealth`: a value containing `Requesting` is a request (time after
the first `_`); otherwise one containing `Deleted`, then one containing `Reported`; anything else
(including an absent annotation) is `UNKNOWN`. Reading never fails: an unreadable time is `None`.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

__all__ = [
    "DEFAULT_HANDSHAKE_TIMEOUT",
    "Handshake",
    "HandshakeDecision",
    "HandshakeKind",
    "format_deleted",
    "format_reported",
    "format_requesting",
    "handshake_health",
    "parse_handshake",
]

DEFAULT_HANDSHAKE_TIMEOUT: Final = timedelta(seconds=60)
"""How long a `Requesting_` stamp may stay unanswered before the node counts as gone."""

REQUESTING_PREFIX: Final = "Requesting_"
REPORTED_PREFIX: Final = "Reported_"
DELETED_PREFIX: Final = "Deleted_"


class HandshakeKind(enum.StrEnum):
    """What a handshake value says."""

    REQUESTING = "Requesting"
    REPORTED = "Reported"
    DELETED = "Deleted"
    UNKNOWN = ""


@dataclass(frozen=True, slots=True)
class Handshake:
    """A read handshake value: its kind and its time (`None` when absent or unreadable)."""

    kind: HandshakeKind
    time: datetime | None


@dataclass(frozen=True, slots=True)
class HandshakeDecision:
    """The scheduler's verdict on one node and vendor.

    `healthy`: keep the node's devices. `need_update`: re-read the register annotation and
    write `format_requesting(now)` as the new handshake value.
    """

    healthy: bool
    need_update: bool


def _stamp(now: datetime) -> str:
    return (
        f"{now.year:04d}-{now.month:02d}-{now.day:02d} "
        f"{now.hour:02d}:{now.minute:02d}:{now.second:02d}"
    )


def format_requesting(now: datetime) -> str:
    """`Requesting_YYYY-MM-DD HH:MM:SS` with `now`'s wall-clock fields, as the scheduler writes."""
    return REQUESTING_PREFIX + _stamp(now)


def format_reported(now: datetime) -> str:
    """`Reported_YYYY-MM-DD HH:MM:SS`: a device plugin's answer (HAMi never parses its time)."""
    return REPORTED_PREFIX + _stamp(now)


def format_deleted(now: datetime) -> str:
    """`Deleted_YYYY-MM-DD HH:MM:SS`, what HAMi <= v2.7 wrote when it dropped a node."""
    return DELETED_PREFIX + _stamp(now)


# Go's time.Parse("2006-01-02 15:04:05") also accepts a fractional second after the seconds.
_DATETIME: Final = re.compile(r"(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})(?:[.,](\d+))?")
# Ascend's plugin writes Reported_2006.01.02 15:04:05; HAMi <= v2.7 wrote Go's time.String().
_DOTTED: Final = re.compile(r"(\d{4})\.(\d{2})\.(\d{2}) (\d{2}):(\d{2}):(\d{2})")


def _parse_time(text: str, pattern: re.Pattern[str], *, whole: bool) -> datetime | None:
    match = pattern.fullmatch(text) if whole else pattern.match(text)
    if match is None:
        return None
    year, month, day, hour, minute, second = (int(part) for part in match.groups()[:6])
    fraction = match.groups()[6] if len(match.groups()) > 6 else None
    microsecond = int((fraction or "0")[:6].ljust(6, "0"))
    try:
        return datetime(year, month, day, hour, minute, second, microsecond)
    except ValueError:
        return None


def parse_handshake(value: str | None) -> Handshake:
    """Read a handshake value (or an absent one, `None`) into its kind and time."""
    if not isinstance(value, str):
        return Handshake(HandshakeKind.UNKNOWN, None)
    if "Requesting" in value:
        _, sep, rest = value.partition("_")
        when = _parse_time(rest, _DATETIME, whole=True) if sep else None
        return Handshake(HandshakeKind.REQUESTING, when)
    if "Deleted" in value:
        _, sep, rest = value.partition("_")
        when = _parse_time(rest, _DATETIME, whole=True) if sep else None
        return Handshake(HandshakeKind.DELETED, when)
    if "Reported" in value:
        rest = value[value.index("Reported") + len("Reported") :].lstrip("_ ")
        when = _parse_time(rest, _DATETIME, whole=False) or _parse_time(rest, _DOTTED, whole=False)
        return Handshake(HandshakeKind.REPORTED, when)
    return Handshake(HandshakeKind.UNKNOWN, None)


def handshake_health(
    value: str | None,
    now: datetime,
    allocatable_count: int,
    timeout: timedelta = DEFAULT_HANDSHAKE_TIMEOUT,
) -> HandshakeDecision:
    """Decide as HAMi's `CheckHealth` (v2.8+) does whether a node's devices are still alive.

    A `Requesting_` stamp younger than `timeout`, or one with an unreadable time, is healthy
    without update; an expired one is healthy only while the node still advertises
    `allocatable_count > 0` of the vendor's count resource. Any other value (absent,
    `Reported...`, `Deleted_...`, garbage) is healthy and needs an update: write
    `format_requesting(now)`.
    """
    if not isinstance(value, str) or "Requesting" not in value:
        return HandshakeDecision(healthy=True, need_update=True)
    stamp = parse_handshake(value).time
    if stamp is None:
        return HandshakeDecision(healthy=True, need_update=False)
    if now.tzinfo is not None:
        stamp = stamp.replace(tzinfo=now.tzinfo)
    try:
        deadline = stamp + timeout
    except OverflowError:  # a stamp near year 9999: never expires
        return HandshakeDecision(healthy=True, need_update=False)
    if now < deadline or allocatable_count > 0:
        return HandshakeDecision(healthy=True, need_update=False)
    return HandshakeDecision(healthy=False, need_update=False)
