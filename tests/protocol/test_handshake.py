"""The node handshake: stamps the scheduler and device plugins write, and the health verdict."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from hami_core.protocol import (
    DEFAULT_HANDSHAKE_TIMEOUT,
    Handshake,
    HandshakeDecision,
    HandshakeKind,
    format_deleted,
    format_reported,
    format_requesting,
    handshake_health,
    parse_handshake,
)

NOW = datetime(2024, 1, 23, 4, 30, 4, 434037)
HEALTHY = HandshakeDecision(healthy=True, need_update=False)
REFRESH = HandshakeDecision(healthy=True, need_update=True)
GONE = HandshakeDecision(healthy=False, need_update=False)


def test_formats() -> None:
    assert format_requesting(NOW) == "Requesting_2024-01-23 04:30:04"
    assert format_reported(NOW) == "Reported_2024-01-23 04:30:04"
    assert format_deleted(NOW) == "Deleted_2024-01-23 04:30:04"
    assert format_requesting(datetime(7, 2, 3, 4, 5, 6)) == "Requesting_0007-02-03 04:05:06"


def test_round_trips() -> None:
    second = NOW.replace(microsecond=0)
    assert parse_handshake(format_requesting(NOW)) == Handshake(HandshakeKind.REQUESTING, second)
    assert parse_handshake(format_reported(NOW)) == Handshake(HandshakeKind.REPORTED, second)
    assert parse_handshake(format_deleted(NOW)) == Handshake(HandshakeKind.DELETED, second)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, Handshake(HandshakeKind.UNKNOWN, None)),
        ("", Handshake(HandshakeKind.UNKNOWN, None)),
        ("something else", Handshake(HandshakeKind.UNKNOWN, None)),
        ("Requesting", Handshake(HandshakeKind.REQUESTING, None)),
        ("Requesting_yesterday", Handshake(HandshakeKind.REQUESTING, None)),
        ("Requesting_2024-02-30 00:00:00", Handshake(HandshakeKind.REQUESTING, None)),
        (
            "Requesting_2024-01-23 04:30:04.5",  # Go accepts a fraction the layout lacks
            Handshake(HandshakeKind.REQUESTING, datetime(2024, 1, 23, 4, 30, 4, 500000)),
        ),
        (
            # HAMi <= v2.7 NVIDIA and Hygon plugins: "Reported " + Go's time.String()
            "Reported 2024-01-23 04:30:04.434037031 +0000 UTC m=+1104711.777756895",
            Handshake(HandshakeKind.REPORTED, datetime(2024, 1, 23, 4, 30, 4, 434037)),
        ),
        (
            "Reported_2024.01.23 04:30:04",  # Ascend's plugin layout
            Handshake(HandshakeKind.REPORTED, datetime(2024, 1, 23, 4, 30, 4)),
        ),
        ("Reported garbage", Handshake(HandshakeKind.REPORTED, None)),
        (
            "Deleted_2024-01-23 04:30:04",
            Handshake(HandshakeKind.DELETED, datetime(2024, 1, 23, 4, 30, 4)),
        ),
    ],
)  # fmt: skip
def test_parse(value: str | None, expected: Handshake) -> None:
    assert parse_handshake(value) == expected


def test_default_timeout_is_sixty_seconds_as_in_hamis_code() -> None:
    assert timedelta(seconds=60) == DEFAULT_HANDSHAKE_TIMEOUT


@pytest.mark.parametrize(
    "value",
    [None, "", "Reported 2024-01-23 04:30:04 +0000 UTC", "Deleted_2024-01-23 04:30:04", "junk"],
)
def test_anything_but_a_request_asks_for_a_new_request(value: str | None) -> None:
    assert handshake_health(value, NOW, allocatable_count=0) == REFRESH


def test_fresh_request_is_healthy() -> None:
    stamp = format_requesting(NOW - timedelta(seconds=59))
    assert handshake_health(stamp, NOW, allocatable_count=0) == HEALTHY


def test_expired_request_is_unhealthy_without_allocatable_devices() -> None:
    stamp = format_requesting(NOW - timedelta(seconds=61))
    assert handshake_health(stamp, NOW, allocatable_count=0) == GONE


def test_expired_request_stays_healthy_while_kubelet_still_advertises_devices() -> None:
    stamp = format_requesting(NOW - timedelta(minutes=10))
    assert handshake_health(stamp, NOW, allocatable_count=8) == HEALTHY


def test_custom_timeout() -> None:
    stamp = format_requesting(NOW - timedelta(seconds=61))
    assert handshake_health(stamp, NOW, 0, timeout=timedelta(minutes=5)) == HEALTHY


@pytest.mark.parametrize("value", ["Requesting", "Requesting_not a time", "xRequesting_"])
def test_unreadable_request_is_healthy_without_update(value: str) -> None:
    assert handshake_health(value, NOW, allocatable_count=0) == HEALTHY


def test_stamp_is_read_in_the_zone_of_now() -> None:
    tokyo = timezone(timedelta(hours=9))
    now = datetime(2024, 1, 23, 13, 30, 4, tzinfo=tokyo)
    assert handshake_health("Requesting_2024-01-23 13:29:30", now, 0) == HEALTHY
    assert handshake_health("Requesting_2024-01-23 13:29:00", now, 0) == GONE
    utc_now = now.astimezone(UTC)
    assert handshake_health(format_requesting(utc_now), utc_now, 0) == HEALTHY


def test_stamp_at_the_end_of_time_never_expires() -> None:
    assert handshake_health("Requesting_9999-12-31 23:59:59", NOW, 0) == HEALTHY
