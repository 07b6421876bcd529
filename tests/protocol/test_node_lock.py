"""The node lock `hami.io/mutex.lock`: `<RFC3339>,<namespace>,<pod>`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from hami_core.protocol import (
    DEFAULT_NODE_LOCK_TIMEOUT,
    NodeLock,
    ProtocolError,
    format_node_lock,
    parse_node_lock,
)

TAKEN = datetime(2024, 5, 1, 10, 0, 0, tzinfo=UTC)


def test_format_as_hami_writes_it() -> None:
    assert format_node_lock(TAKEN, "default", "mypod") == "2024-05-01T10:00:00Z,default,mypod"


def test_format_keeps_the_writers_offset_and_drops_fractions() -> None:
    shanghai = datetime(2024, 5, 1, 18, 0, 0, 123456, tzinfo=timezone(timedelta(hours=8)))
    assert format_node_lock(shanghai, "ns", "p") == "2024-05-01T18:00:00+08:00,ns,p"
    west = datetime(2024, 5, 1, 5, 30, tzinfo=timezone(-timedelta(hours=4, minutes=30)))
    assert format_node_lock(west, "ns", "p") == "2024-05-01T05:30:00-04:30,ns,p"


def test_naive_time_is_written_as_utc() -> None:
    assert format_node_lock(datetime(2024, 5, 1, 10), "a", "b") == "2024-05-01T10:00:00Z,a,b"


def test_round_trip() -> None:
    lock = parse_node_lock(format_node_lock(TAKEN, "default", "mypod"))
    assert lock == NodeLock(time=TAKEN, namespace="default", name="mypod")
    assert lock.held_by("default", "mypod")
    assert not lock.held_by("default", "other")
    assert not lock.held_by("other", "mypod")


def test_offsets_and_fractions_are_read() -> None:
    lock = parse_node_lock("2024-05-01T18:00:00.5+08:00,ns,p")
    assert lock.time == TAKEN + timedelta(hours=0, microseconds=500000)


def test_legacy_bare_time_has_no_holder() -> None:
    lock = parse_node_lock("2024-05-01T10:00:00Z")
    assert lock == NodeLock(time=TAKEN)
    assert not lock.held_by("", "")


def test_expiry_uses_the_five_minute_default() -> None:
    assert timedelta(minutes=5) == DEFAULT_NODE_LOCK_TIMEOUT
    lock = NodeLock(time=TAKEN, namespace="ns", name="p")
    assert not lock.expired(TAKEN + timedelta(minutes=5))
    assert lock.expired(TAKEN + timedelta(minutes=5, seconds=1))
    assert not lock.expired(TAKEN + timedelta(minutes=6), timeout=timedelta(minutes=10))
    assert lock.expired(datetime(2024, 5, 1, 10, 6))  # naive now is read as UTC


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("lock", "malformed lock annotation: time 'lock' is not RFC3339"),
        ("2024-05-01T10:00:00Z,ns", "malformed lock annotation: expected 3 parts, got 2 from 2024"),
        ("2024-05-01T10:00:00Z,ns,p,x", "expected 3 parts, got 4"),
        ("2024-05-01 10:00:00,ns,p", "is not RFC3339"),
        ("2024-13-01T10:00:00Z,ns,p", "is not RFC3339"),
        ("2024-05-01T10:00:00+25:00,ns,p", "is not RFC3339"),
        ("2024-05-01T10:00:00+01:75,ns,p", "is not RFC3339"),
        ("2024-05-01T10:00:00,ns,p", "is not RFC3339"),
        ("", "is not RFC3339"),
    ],
)  # fmt: skip
def test_parse_errors(value: str, words: str) -> None:
    with pytest.raises(ProtocolError, match=words.replace("(", r"\(")):
        parse_node_lock(value)


def test_names_with_commas_cannot_be_written() -> None:
    with pytest.raises(ProtocolError) as caught:
        format_node_lock(TAKEN, "ns", "a,b")
    assert caught.value.field == "name"
