"""Memory rounding at every template boundary of every shipped chip, through `hami_request`
(scheduler) and `hami_mutate` (webhook). Expected values are the reference table's (HAMi chart
v2.10), written out here independently of the shipped config file."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from hami_core.errors import AdmissionDenied, RequestError
from hami_core.model import ContainerRequest, PodView, VendorSpec
from hami_core.plugins import VendorRegistry

# chip key: (memoryAllocatable, memoryCapacity, [(template, MiB), ...] ascending)
REFERENCE: dict[str, tuple[int, int, list[tuple[str, int]]]] = {
    "ascend910a": (
        32768,
        32768,
        [("vir02", 2184), ("vir04", 4369), ("vir08", 8738), ("vir16", 17476)],
    ),
    "ascend910b2": (
        65536,
        65536,
        [("vir03_1c_8g", 8192), ("vir06_1c_16g", 16384), ("vir12_3c_32g", 32768)],
    ),
    "ascend910b3": (65536, 65536, [("vir05_1c_16g", 16384), ("vir10_3c_32g", 32768)]),
    "ascend910b4-1": (65536, 65536, [("vir05_1c_16g", 16384), ("vir10_3c_32g", 32768)]),
    "ascend910b4": (32768, 32768, [("vir05_1c_8g", 8192), ("vir10_3c_16g", 16384)]),
    "ascend310p": (21527, 24576, [("vir01", 3072), ("vir02", 6144), ("vir04", 12288)]),
    "ascend910c": (65536, 65536, [("vir05_1c_16g", 16384), ("vir10_3c_32g", 32768)]),
}
WHOLE = None


def _boundaries() -> list[tuple[str, int, str | None, int]]:
    """(chip, asked MiB, expected template or WHOLE, expected MiB) for every boundary."""
    cases: list[tuple[str, int, str | None, int]] = []
    for chip, (allocatable, capacity, templates) in REFERENCE.items():
        first_name, first_mib = templates[0]
        cases.append((chip, 1, first_name, first_mib))
        for i, (name, mib) in enumerate(templates):
            cases.append((chip, mib, name, mib))  # exactly a template
            if i + 1 < len(templates):
                nxt_name, nxt_mib = templates[i + 1]
                cases.append((chip, mib + 1, nxt_name, nxt_mib))  # one MiB more: next one
            else:
                cases.append((chip, mib + 1, WHOLE, allocatable))  # above the largest
        cases.append((chip, allocatable, WHOLE, allocatable))
        cases.append((chip, capacity, WHOLE, allocatable))
    return cases


def _container(spec: VendorSpec, memory: int | None, count: int = 1) -> dict[str, Any]:
    values = {spec.resources.count: str(count)}
    if memory is not None:
        values[str(spec.resources.memory)] = str(memory)
    return {"name": "main", "resources": {"limits": values}}


def _request(
    registry: VendorRegistry, spec: VendorSpec, container: dict[str, Any]
) -> ContainerRequest:
    pod = PodView(namespace="ns", name="p", uid="u", annotations={})
    answer = registry.hook.hami_request(
        spec=spec, container=container, index=0, init=False, pod=pod, config={}
    )
    assert isinstance(answer, ContainerRequest)
    return answer


@pytest.mark.parametrize(("chip", "asked", "template", "taken"), _boundaries())
def test_memory_rounds_up_to_the_smallest_template_that_holds_it(
    registry: VendorRegistry,
    spec: Callable[[str], VendorSpec],
    chip: str,
    asked: int,
    template: str | None,
    taken: int,
) -> None:
    s = spec(chip)
    request = _request(registry, s, _container(s, asked))
    assert request.count == (2 if chip == "ascend910c" else 1)  # 910C: one module of 2 NPUs
    assert request.memory_mib == taken
    assert request.extras.get("template") == template
    mutation = registry.hook.hami_mutate(
        spec=s, container=_container(s, asked), pod={"metadata": {}}, config={}
    )
    assert mutation.uses_vendor
    assert mutation.limits[s.resources.memory] == str(taken)
    assert mutation.limits.get(s.resources.count) == ("2" if chip == "ascend910c" else None)


@pytest.mark.parametrize("chip", sorted(REFERENCE))
def test_more_than_the_capacity_is_refused(
    registry: VendorRegistry, spec: Callable[[str], VendorSpec], chip: str
) -> None:
    s = spec(chip)
    capacity = REFERENCE[chip][1]
    with pytest.raises(RequestError) as err:
        _request(registry, s, _container(s, capacity + 1))
    assert err.value.resource == s.resources.memory
    assert str(capacity + 1) in str(err.value)
    with pytest.raises(AdmissionDenied, match=str(capacity + 1)):
        registry.hook.hami_mutate(
            spec=s, container=_container(s, capacity + 1), pod={"metadata": {}}, config={}
        )


@pytest.mark.parametrize("chip", sorted(REFERENCE))
def test_no_memory_asked_takes_the_whole_npu(
    registry: VendorRegistry, spec: Callable[[str], VendorSpec], chip: str
) -> None:
    s = spec(chip)
    allocatable = REFERENCE[chip][0]
    request = _request(registry, s, _container(s, None))
    assert (request.memory_mib, request.extras.get("template")) == (allocatable, None)
    mutation = registry.hook.hami_mutate(
        spec=s, container=_container(s, None), pod={"metadata": {}}, config={}
    )
    assert mutation.limits[s.resources.memory] == str(allocatable)


def test_reference_examples(registry: VendorRegistry, spec: Callable[[str], VendorSpec]) -> None:
    b3, p310 = spec("ascend910b3"), spec("ascend310p")
    assert _request(registry, b3, _container(b3, 2000)).memory_mib == 16384
    assert _request(registry, b3, _container(b3, 20000)).memory_mib == 32768
    assert _request(registry, b3, _container(b3, 40000)).memory_mib == 65536
    assert _request(registry, p310, _container(p310, 1024)).memory_mib == 3072
    assert _request(registry, p310, _container(p310, 13000)).memory_mib == 21527


def test_a_memory_quantity_with_a_unit_is_refused(
    registry: VendorRegistry, spec: Callable[[str], VendorSpec]
) -> None:
    s = spec("ascend910b3")
    container = {
        "name": "main",
        "resources": {"limits": {s.resources.count: "1", s.resources.memory: "16Gi"}},
    }
    with pytest.raises(RequestError) as err:
        _request(registry, s, container)
    assert err.value.resource == s.resources.memory
