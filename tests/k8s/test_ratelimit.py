"""The client-side token bucket, driven by an injected clock (never by real time)."""

from __future__ import annotations

import threading

import pytest

from hami_core.k8s import TokenBucket


class ManualClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)


def test_a_burst_passes_then_requests_wait_their_turn() -> None:
    clock = ManualClock()
    bucket = TokenBucket(qps=4, burst=2, clock=clock.time, sleep=clock.sleep)

    waits = [bucket.acquire() for _ in range(4)]

    assert waits == [0.0, 0.0, 0.25, 0.5]  # callers queue: each later one waits longer
    assert clock.slept == [0.25, 0.5]


def test_tokens_refill_with_time_up_to_the_burst() -> None:
    clock = ManualClock()
    bucket = TokenBucket(qps=10, burst=5, clock=clock.time, sleep=clock.sleep)
    for _ in range(5):
        assert bucket.try_acquire()
    assert not bucket.try_acquire()

    clock.now = 0.35
    assert bucket.available == pytest.approx(3.5)
    clock.now = 100.0
    assert bucket.available == 5


def test_concurrent_callers_each_reserve_a_distinct_slot() -> None:
    clock = ManualClock()
    bucket = TokenBucket(qps=100, burst=1, clock=clock.time, sleep=clock.sleep)
    waits: list[float] = []
    lock = threading.Lock()

    def caller() -> None:
        for _ in range(25):
            wait = bucket.reserve()
            with lock:
                waits.append(wait)

    threads = [threading.Thread(target=caller) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert sorted(waits) == pytest.approx([i / 100 for i in range(100)])


@pytest.mark.parametrize(("qps", "burst"), [(0, 1), (-1, 1), (1, 0)])
def test_nonsense_limits_are_refused(qps: float, burst: int) -> None:
    with pytest.raises(ValueError):
        TokenBucket(qps, burst)
