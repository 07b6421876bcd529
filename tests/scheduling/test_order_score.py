"""Device scores, the card order each GPU policy gives, node scores and the node choice."""

from __future__ import annotations

import pytest
from sched_kit import gpu

from hami_core.model import ContainerRequest, DeviceUsage
from hami_core.protocol import ScoringWeights
from hami_core.scheduling.order import order_devices
from hami_core.scheduling.score import (
    choose_node,
    device_score,
    device_scores,
    node_score,
    prefers,
)


def tried_first(
    devices: list[DeviceUsage], policy: tuple[str, ...], numa_bind: bool = False
) -> list[str]:
    """The order the fit loop will try the cards in (it walks the sorted list from the end)."""
    ordered = order_devices(devices, device_scores(devices), policy, numa_bind)
    return [d.id for d in reversed(ordered)]


CARDS = [
    gpu("empty", index=0),
    gpu("half", index=1, used=1, usedmem=8192, usedcores=50),
    gpu("busy", index=2, used=3, usedmem=12000, usedcores=90),
]


def test_device_score_is_current_use_plus_the_request() -> None:
    card = gpu("g", count=10, mem=10000, cores=100, used=2, usedmem=2500, usedcores=30)
    assert device_score(card) == pytest.approx(10 * (2 / 10 + 30 / 100 + 2500 / 10000))
    request = ContainerRequest(vendor="nvidia", count=1, memory_mib=2500, cores=20)
    assert device_score(card, [request]) == pytest.approx(10 * (3 / 10 + 50 / 100 + 5000 / 10000))


def test_requests_of_another_vendor_do_not_count() -> None:
    card = gpu("g")
    other = ContainerRequest(vendor="steps", count=1, memory_mib=2500, cores=20)
    assert device_score(card, [other]) == 0


def test_weights_scale_each_term() -> None:
    card = gpu("g", count=10, mem=10000, cores=100, used=5, usedmem=1000, usedcores=10)
    w = ScoringWeights(slot=2, core=0, memory=1)
    assert device_score(card, weights=w) == pytest.approx(10 * (2 * 0.5 + 0.1))


def test_cards_without_capacity_score_zero() -> None:
    assert device_score(gpu("g", cores=0, used=1)) == 0


def test_spread_tries_the_emptiest_card_first() -> None:
    assert tried_first(CARDS, ("spread",)) == ["empty", "half", "busy"]


def test_binpack_tries_the_fullest_card_first() -> None:
    assert tried_first(CARDS, ("binpack",)) == ["busy", "half", "empty"]


def test_unknown_and_topology_policies_order_like_spread() -> None:
    assert tried_first(CARDS, ("topology-aware",)) == ["empty", "half", "busy"]


def test_mutex_tries_idle_cards_first() -> None:
    cards = [gpu("b1", index=0, used=2), gpu("idle", index=1), gpu("b2", index=2, used=1)]
    assert tried_first(cards, ("mutex",)) == ["idle", "b2", "b1"]


def test_equal_cards_try_the_highest_index_first() -> None:
    cards = [gpu("g0", index=0), gpu("g1", index=1), gpu("g2", index=2)]
    assert tried_first(cards, ("spread",)) == ["g2", "g1", "g0"]
    assert tried_first(cards, ("binpack",)) == ["g2", "g1", "g0"]


def test_equal_scores_try_the_higher_numa_node_first() -> None:
    cards = [gpu("n1", index=0, numa=1), gpu("n0", index=1, numa=0)]
    assert tried_first(cards, ("spread",)) == ["n1", "n0"]


def test_numa_bind_with_spread_groups_by_numa_and_prefers_empty_cards_within() -> None:
    cards = [
        gpu("a0", index=0, numa=0, used=1, usedmem=100),
        gpu("b0", index=1, numa=0),
        gpu("a1", index=2, numa=1, used=1, usedmem=100),
        gpu("b1", index=3, numa=1),
    ]
    assert tried_first(cards, ("spread",), numa_bind=True) == ["b1", "a1", "b0", "a0"]
    assert tried_first(cards, ("binpack",), numa_bind=True) == ["a0", "b0", "a1", "b1"]


def test_chain_applies_keys_in_written_order() -> None:
    cards = [
        gpu("n0-busy", index=0, numa=0, used=2, usedmem=8000),
        gpu("n1-idle", index=1, numa=1),
        gpu("n0-idle", index=2, numa=0),
    ]
    assert tried_first(cards, ("binpack", "numa")) == ["n0-busy", "n1-idle", "n0-idle"]
    assert tried_first(cards, ("numa", "binpack")) == ["n1-idle", "n0-busy", "n0-idle"]
    assert tried_first(cards, ("numa",)) == ["n1-idle", "n0-idle", "n0-busy"]


def test_chain_without_an_ordering_word_is_spread() -> None:
    assert tried_first(CARDS, ("mutex", "topology-aware")) == ["empty", "half", "busy"]


def test_order_leaves_the_input_alone() -> None:
    cards = list(CARDS)
    order_devices(cards, device_scores(cards), ("binpack",))
    assert [c.id for c in cards] == ["empty", "half", "busy"]


def test_node_score_sums_every_card() -> None:
    cards = [
        gpu("a", count=10, used=5, mem=1000, usedmem=500, cores=100, usedcores=100),
        gpu("b", count=10, mem=1000, cores=100),
    ]
    assert node_score(cards) == pytest.approx(10 * (5 / 20 + 100 / 200 + 500 / 2000))
    assert node_score([]) == 0


def test_binpack_chooses_the_fullest_node_and_spread_the_emptiest() -> None:
    scores = {"a": 3.0, "b": 7.5, "c": 1.0}
    assert choose_node(scores, "binpack") == "b"
    assert choose_node(scores, "spread") == "c"


def test_node_ties_go_to_the_first_name() -> None:
    assert choose_node({"z": 1.0, "m": 1.0, "q": 0.5}, "binpack") == "m"
    assert choose_node({"z": 1.0, "m": 1.0, "q": 2.5}, "spread") == "m"
    assert choose_node({}, "binpack") is None


def test_prefers_agrees_with_choose_node() -> None:
    assert prefers("binpack", "b", 2.0, "a", 1.0)
    assert not prefers("spread", "b", 2.0, "a", 1.0)
    assert prefers("spread", "a", 1.0, "b", 1.0)  # tie: the first name
    assert not prefers("binpack", "b", 1.0, "a", 1.0)
