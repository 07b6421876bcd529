"""Naming the pod an Allocate belongs to, from the evidence — or refusing to guess."""

from __future__ import annotations

import pytest

from hami_core.deviceplugin.attribution import AmbiguousPod, Candidate, NoPendingPod, choose


def _c(name: str, *pending: int, in_progress: bool = False) -> Candidate:
    return Candidate("default", name, tuple(pending), in_progress=in_progress)


def test_no_candidate_is_no_pending_pod() -> None:
    with pytest.raises(NoPendingPod):
        choose([], [1], None)


def test_the_only_candidate_is_chosen_even_if_its_count_differs() -> None:
    only = _c("a", 2)
    assert choose([only], [1], None) is only


def test_the_lock_holder_wins_when_no_other_pod_could_take_the_request() -> None:
    pods = [_c("a", 2), _c("b", 2), _c("c", 1), _c("d", 4)]
    assert choose(pods, [1], ("default", "c")).name == "c"


def test_the_lock_holder_is_not_trusted_among_look_alikes() -> None:
    # a's lock expired while it waited for the kubelet; c took the lock since: the kubelet may
    # be starting either, so hami must not hand c's devices to a's container.
    pods = [_c("a", 1), _c("b", 1), _c("c", 1), _c("d", 1)]
    with pytest.raises(AmbiguousPod, match=r"held by default/c, but default/a, default/b"):
        choose(pods, [1], ("default", "c"))


def test_a_pod_part_way_through_allocation_goes_first() -> None:
    pods = [_c("a", 1), _c("b", 1, in_progress=True), _c("c", 1)]
    assert choose(pods, [1], None).name == "b"


def test_two_pods_part_way_through_are_ambiguous() -> None:
    pods = [_c("a", 1, in_progress=True), _c("b", 1, in_progress=True)]
    with pytest.raises(AmbiguousPod, match="default/a, default/b are all part-way"):
        choose(pods, [1], None)


def test_in_progress_against_another_lock_holder_is_ambiguous() -> None:
    pods = [_c("a", 1, in_progress=True), _c("b", 1)]
    with pytest.raises(AmbiguousPod, match="node lock is held by default/b"):
        choose(pods, [1], ("default", "b"))


def test_device_count_tells_apart_pods_without_a_lock() -> None:
    pods = [_c("one", 1), _c("two", 2), _c("three", 3), _c("four", 4)]
    assert [choose(pods, [n], None).name for n in (1, 2, 3, 4)] == ["one", "two", "three", "four"]


def test_look_alikes_without_a_lock_are_ambiguous() -> None:
    pods = [_c("a", 1), _c("b", 1), _c("c", 2)]
    with pytest.raises(AmbiguousPod, match=r"2 pods wait for \[1\] device\(s\).*a, default/b"):
        choose(pods, [1], None)


def test_a_holder_that_does_not_fit_while_another_does_is_not_blamed() -> None:
    pods = [_c("holder", 2), _c("other", 1)]
    with pytest.raises(AmbiguousPod, match=r"held by default/holder, but default/other"):
        choose(pods, [1], ("default", "holder"))


def test_an_unreadable_candidate_never_fits_by_count() -> None:
    broken = Candidate("default", "broken", None, problem="bad annotation")
    assert choose([broken, _c("ok", 1)], [1], None).name == "ok"
    assert choose([broken], [1], None) is broken


def test_several_containers_in_one_call_match_in_order() -> None:
    pods = [_c("a", 1, 2), _c("b", 2, 1)]
    assert choose(pods, [2, 1], None).name == "b"
