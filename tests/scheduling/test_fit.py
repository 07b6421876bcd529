"""The shared fit loop: one example per rule and per failure reason."""

from __future__ import annotations

import copy

import pytest
from sched_kit import NVIDIA, STEPS, context, gpu

from hami_core.model import ContainerDevice, ContainerRequest, DeviceUsage, FitContext, FitResult
from hami_core.scheduling.fit import generic_fit, select_topology


def req(count: int = 1, mem: int = 0, pct: int | None = None, cores: int = 0) -> ContainerRequest:
    return ContainerRequest(
        vendor="nvidia", count=count, memory_mib=mem, memory_percent=pct, cores=cores
    )


def fit(
    request: ContainerRequest, devices: list[DeviceUsage], ctx: FitContext | None = None
) -> FitResult:
    return generic_fit(NVIDIA, request, devices, ctx or context())


def uuids(result: FitResult) -> list[str]:
    return [d.uuid for d in result.devices]


def test_the_tail_of_the_list_is_tried_first() -> None:
    result = fit(req(mem=1000), [gpu("a"), gpu("b"), gpu("c")])
    assert result.ok
    assert result.devices == (ContainerDevice("c", "NVIDIA", 1000, 0),)


def test_several_cards_each_get_the_same_share() -> None:
    result = fit(req(2, mem=1000, cores=30), [gpu("a"), gpu("b"), gpu("c")])
    assert result.devices == (
        ContainerDevice("c", "NVIDIA", 1000, 30),
        ContainerDevice("b", "NVIDIA", 1000, 30),
    )


def test_percent_is_a_share_of_each_card() -> None:
    result = fit(req(2, pct=25), [gpu("a", mem=8000), gpu("b", mem=16000)])
    assert [d.usedmem for d in result.devices] == [4000, 2000]


def test_explicit_memory_wins_over_percent() -> None:
    assert fit(req(mem=1000, pct=50), [gpu("a")]).devices[0].usedmem == 1000


def test_fit_never_modifies_the_cards() -> None:
    cards = [gpu("a", used=1, usedmem=100), gpu("b")]
    before = copy.deepcopy(cards)
    fit(req(2, mem=1000), cards)
    assert cards == before


def test_a_container_never_gets_two_slices_of_one_card() -> None:
    result = fit(req(2, mem=10), [gpu("only", count=10)])
    assert not result.ok
    assert result.reasons == {"AllocatedCardsInsufficientRequest": 1}


def test_count_zero_fits_with_nothing() -> None:
    assert fit(req(0), []) == FitResult.fit((), 0)


@pytest.mark.parametrize(
    ("card", "request_", "ctx", "reason"),
    [
        (gpu("g", health=False), req(), context(), "CardNotHealth"),
        (
            gpu("g"),
            req(),
            context(node_annotations={"hami.io/device-cordon": " x, g "}),
            "CardCordoned",
        ),
        (gpu("g"), req(), context({"nvidia.com/use-gputype": "A100"}), "CardTypeMismatch"),
        (gpu("g"), req(), context({"nvidia.com/nouse-gputype": "t4"}), "CardTypeMismatch"),
        (
            gpu("g", mode="mig"),
            req(),
            context({"nvidia.com/vgpu-mode": "hami-core"}),
            "CardTypeMismatch",
        ),
        (gpu("g", vendor="other"), req(), context(), "CardTypeMismatch"),
        (gpu("g"), req(), context({"nvidia.com/use-gpuuuid": "GPU-x"}), "CardUuidMismatch"),
        (
            gpu("g"),
            req(),
            context({"nvidia.com/use-gpuuuid": "g", "nvidia.com/nouse-gpuuuid": "g"}),
            "CardUuidMismatch",
        ),
        (gpu("g", count=2, used=2), req(), context(), "CardTimeSlicingExhausted"),
        (gpu("g", used=1), req(), context(policy=("mutex",)), "ExclusiveDeviceAllocateConflict"),
        (gpu("g", usedmem=16000), req(mem=1000), context(), "CardInsufficientMemory"),
        (gpu("g", usedmem=1), req(pct=100), context(), "CardInsufficientMemory"),
        (gpu("g", used=1, usedcores=80), req(cores=30), context(), "CardInsufficientCore"),
        (gpu("g", used=1), req(cores=100), context(), "ExclusiveDeviceAllocateConflict"),
        (gpu("g", used=1, usedcores=100), req(mem=10), context(), "CardComputeUnitsExhausted"),
    ],
)
def test_each_failure_reason(
    card: DeviceUsage, request_: ContainerRequest, ctx: FitContext, reason: str
) -> None:
    result = fit(request_, [card], ctx)
    assert not result.ok
    assert result.reasons == {reason: 1}
    assert result.total == 1


def test_reasons_are_counted_per_card_and_checked_in_order() -> None:
    cards = [
        gpu("sick", health=False, used=5, usedmem=16384),  # unhealthy wins over everything else
        gpu("full", count=1, used=1),
        gpu("small", mem=100),
        gpu("small2", mem=100),
    ]
    result = fit(req(mem=1000), cards)
    assert result.reasons == {
        "CardNotHealth": 1,
        "CardTimeSlicingExhausted": 1,
        "CardInsufficientMemory": 2,
    }
    assert result.total == 4


def test_type_pins_match_case_insensitive_substrings() -> None:
    cards = [gpu("a100", type_="NVIDIA A100-SXM4-40GB"), gpu("t4", type_="NVIDIA-Tesla T4")]
    ctx = context({"nvidia.com/use-gputype": " a10 ,"})
    assert uuids(fit(req(), cards, ctx)) == ["a100"]


def test_blank_pins_pin_nothing() -> None:
    ctx = context({"nvidia.com/use-gputype": " ", "nvidia.com/use-gpuuuid": ""})
    assert fit(req(), [gpu("g")], ctx).ok


def test_cores_above_a_whole_card_are_clamped() -> None:
    result = fit(req(cores=250), [gpu("g")])
    assert result.devices[0].usedcores == 100


def test_exclusive_request_takes_an_idle_card_and_blocks_later_sharers() -> None:
    result = fit(req(cores=100), [gpu("idle"), gpu("busy", used=1, usedmem=10)])
    assert uuids(result) == ["idle"]
    after = fit(req(mem=10), [gpu("idle", used=1, usedcores=100, usedmem=16384)])
    assert after.reasons == {"CardInsufficientMemory": 1}


def test_mutex_prefers_nothing_but_refuses_busy_cards() -> None:
    result = fit(req(), [gpu("idle"), gpu("busy", used=1)], context(policy=("binpack", "mutex")))
    assert uuids(result) == ["idle"]


def test_partial_selection_is_reported() -> None:
    result = fit(req(3, mem=100), [gpu("a"), gpu("b", health=False), gpu("c")])
    assert result.reasons == {"CardNotHealth": 1, "AllocatedCardsInsufficientRequest": 2}


def test_numa_bind_keeps_one_container_on_one_numa_node() -> None:
    cards = [gpu("n0a", numa=0), gpu("n0b", numa=0), gpu("n1a", numa=1, used=10)]
    ctx = context({"nvidia.com/numa-bind": "true"})
    assert uuids(fit(req(2), cards, ctx)) == ["n0b", "n0a"]


def test_numa_bind_counts_partial_groups_as_numa_not_fit() -> None:
    cards = [gpu("n0a", numa=0), gpu("n1a", numa=1), gpu("n1b", numa=1, health=False)]
    result = fit(req(2), cards, context({"nvidia.com/numa-bind": "1"}))
    assert result.reasons == {
        "CardNotHealth": 1,
        "NumaNotFit": 1,
        "AllocatedCardsInsufficientRequest": 1,
    }


def test_numa_bind_false_values_do_not_bind() -> None:
    cards = [gpu("n0", numa=0), gpu("n1", numa=1)]
    assert fit(req(2), cards, context({"nvidia.com/numa-bind": "yes"})).ok


def test_one_device_per_pod_vendor_stays_on_the_pods_card() -> None:
    spec = STEPS.model_copy(update={"one_device_per_pod": True})
    ctx = context()
    ctx = FitContext(
        pod=ctx.pod,
        node=ctx.node,
        pod_devices={"steps": [[ContainerDevice("s1", "STEPS", 1024, 4)]]},
    )
    cards = [gpu("s1", vendor="steps", cores=16), gpu("s2", vendor="steps", cores=16)]
    request = ContainerRequest(vendor="steps", count=1, memory_mib=1024, cores=4)
    result = generic_fit(spec, request, cards, ctx)
    assert uuids(result) == ["s1"]


def test_custom_rule_counts_its_reason() -> None:
    def only_even(dev: DeviceUsage, request: ContainerRequest, memreq: int) -> str | None:
        return None if dev.index % 2 == 0 else "CardNotFoundCustomFilterRule"

    cards = [gpu("even", index=0), gpu("odd", index=1)]
    result = generic_fit(NVIDIA, req(2), cards, context(), custom_rule=only_even)
    assert result.reasons == {
        "CardNotFoundCustomFilterRule": 1,
        "AllocatedCardsInsufficientRequest": 1,
    }


PAIRS = {
    "a": {"b": 200, "c": 60, "d": 20},
    "b": {"a": 200, "c": 20, "d": 60},
    "c": {"a": 60, "b": 20, "d": 200},
    "d": {"a": 20, "b": 60, "c": 200},
}


def test_topology_two_cards_take_the_best_linked_pair() -> None:
    cards = [gpu("a"), gpu("b"), gpu("c"), gpu("d")]
    result = fit(req(2), cards, context(policy=("topology-aware",), pair_scores=PAIRS))
    assert sorted(uuids(result)) == ["c", "d"]  # c-d and a-b tie at 200: c,d come first


def test_topology_one_card_takes_the_least_linked() -> None:
    pairs = {"a": {"b": 200, "c": 10}, "b": {"c": 10}}
    cards = [gpu("a"), gpu("b"), gpu("c")]
    result = fit(req(1), cards, context(policy=("topology-aware",), pair_scores=pairs))
    assert uuids(result) == ["c"]


def test_topology_with_too_few_candidates_fails() -> None:
    cards = [gpu("a"), gpu("b", health=False)]
    result = fit(req(2), cards, context(policy=("topology-aware",), pair_scores=PAIRS))
    assert result.reasons == {"CardNotHealth": 1, "AllocatedCardsInsufficientRequest": 1}


def test_topology_selection_greedy_on_large_candidate_sets() -> None:
    cands = [ContainerDevice(f"g{i}", "NVIDIA", 0, 0) for i in range(40)]
    pairs = {"g3": {"g7": 500, "g9": 400}, "g7": {"g9": 450}}
    picked = select_topology(cands, 3, pairs)
    assert sorted(d.uuid for d in picked) == ["g3", "g7", "g9"]
