"""Webhook defaults for one container, generalised over the vendor spec (reference §7.4)."""

from __future__ import annotations

from typing import Any

import pytest
from sched_kit import NVIDIA, STEPS, container, pod

from hami_core.errors import AdmissionDenied
from hami_core.model import Mutation, VendorSpec
from hami_core.scheduling.admission import generic_mutation


def mutate(
    spec: VendorSpec, limits: dict[str, Any], section: dict[str, Any] | None = None
) -> Mutation:
    c = container("main", limits)
    return generic_mutation(spec, c, pod(containers=[c]), section or {})


def test_count_only_becomes_exclusive() -> None:
    m = mutate(NVIDIA, {"nvidia.com/gpu": "1"})
    assert m == Mutation(limits={"nvidia.com/gpucores": "100"}, uses_vendor=True)


def test_full_percent_becomes_exclusive() -> None:
    m = mutate(NVIDIA, {"nvidia.com/gpu": "1", "nvidia.com/gpumem-percentage": "100"})
    assert m.limits == {"nvidia.com/gpucores": "100"}


@pytest.mark.parametrize(
    "limits",
    [
        {"nvidia.com/gpu": "1", "nvidia.com/gpumem": "3000"},
        {"nvidia.com/gpu": "1", "nvidia.com/gpumem-percentage": "50"},
        {"nvidia.com/gpu": "1", "nvidia.com/gpucores": "30"},
    ],
)
def test_shared_requests_stay_shared(limits: dict[str, Any]) -> None:
    m = mutate(NVIDIA, limits)
    assert m.uses_vendor and not m.limits


def test_memory_only_gets_the_default_count() -> None:
    m = mutate(NVIDIA, {"nvidia.com/gpumem": "3000"})
    assert m == Mutation(limits={"nvidia.com/gpu": "1"}, uses_vendor=True)


def test_default_count_from_the_section() -> None:
    m = mutate(NVIDIA, {"nvidia.com/gpucores": "20"}, {"defaultGPUNum": 2})
    assert m.limits == {"nvidia.com/gpu": "2"}


def test_percent_only_gets_count_and_cores_when_whole() -> None:
    m = mutate(NVIDIA, {"nvidia.com/gpumem-percentage": "100"})
    assert m.limits == {"nvidia.com/gpu": "1", "nvidia.com/gpucores": "100"}


def test_vendor_that_is_not_exclusive_by_default_gets_no_cores() -> None:
    assert mutate(STEPS, {"steps.io/vgpu": "1"}) == Mutation(uses_vendor=True)


def test_containers_without_the_vendor_are_untouched() -> None:
    m = mutate(NVIDIA, {"cpu": "1"})
    assert m.is_empty() and not m.uses_vendor
    assert not mutate(NVIDIA, {"nvidia.com/gpu": "0"}).uses_vendor


def test_default_count_zero_leaves_memory_only_containers_alone() -> None:
    m = mutate(NVIDIA, {"nvidia.com/gpumem": "3000"}, {"defaultGPUNum": 0})
    assert m == Mutation()


@pytest.mark.parametrize("value", ["101", "-1", "150"])
def test_percent_outside_range_is_denied(value: str) -> None:
    with pytest.raises(AdmissionDenied, match=r"'main'.*gpumem-percentage.*between 0 and 100"):
        mutate(NVIDIA, {"nvidia.com/gpu": "1", "nvidia.com/gpumem-percentage": value})


def test_unreadable_values_are_denied() -> None:
    with pytest.raises(AdmissionDenied, match=r"nvidia\.com/gpumem"):
        mutate(NVIDIA, {"nvidia.com/gpu": "1", "nvidia.com/gpumem": "plenty"})
