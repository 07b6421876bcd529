"""Container requests follow HAMi's rules, generalised over the vendor spec."""

from __future__ import annotations

from typing import Any

import pytest
from sched_kit import NVIDIA, STEPS, WCARD, container, make_registry, pod

from hami_core import hookimpl
from hami_core.errors import ConfigError, RequestError
from hami_core.model import ContainerRequest, VendorSpec
from hami_core.plugins import VendorRegistry, load_vendors
from hami_core.scheduling.requests import (
    PodShapeError,
    RequestMemo,
    generic_request,
    pod_requests,
)


def ask(
    spec: VendorSpec, limits: dict[str, Any], section: dict[str, Any] | None = None, **kw: Any
) -> ContainerRequest:
    return generic_request(spec, container("main", limits, **kw), 0, False, section or {})


def shape(r: ContainerRequest) -> tuple[int, int, int | None, int]:
    return (r.count, r.memory_mib, r.memory_percent, r.cores)


# HAMi's own examples (reference §4)
@pytest.mark.parametrize(
    ("limits", "expected"),
    [
        ({"nvidia.com/gpu": "1"}, (1, 0, 100, 0)),
        ({"nvidia.com/gpu": 2, "nvidia.com/gpumem": "4096"}, (2, 4096, None, 0)),
        ({"nvidia.com/gpu": "1", "nvidia.com/gpumem-percentage": "50"}, (1, 0, 50, 0)),
        ({"nvidia.com/gpu": "1", "nvidia.com/gpumem-percentage": "0"}, (1, 0, 100, 0)),
        (
            {
                "nvidia.com/gpu": "1",
                "nvidia.com/gpumem": "2000",
                "nvidia.com/gpumem-percentage": "0",
            },
            (1, 2000, None, 0),
        ),
        ({"nvidia.com/gpu": "1", "nvidia.com/gpucores": "50"}, (1, 0, 100, 50)),
        ({"nvidia.com/gpu": "4k"}, (4000, 0, 100, 0)),
    ],
)
def test_hami_examples(limits: dict[str, Any], expected: tuple[int, int, int | None, int]) -> None:
    assert shape(ask(NVIDIA, limits)) == expected


def test_the_request_names_vendor_container_and_position() -> None:
    r = generic_request(NVIDIA, container("trainer", {"nvidia.com/gpu": 1}), 3, True, {})
    assert (r.vendor, r.container, r.container_index, r.init) == ("nvidia", "trainer", 3, True)


def test_limits_win_over_requests_per_resource() -> None:
    r = ask(
        NVIDIA,
        {"nvidia.com/gpu": "1"},
        requests={"nvidia.com/gpu": "3", "nvidia.com/gpumem": "1000"},
    )
    assert shape(r) == (1, 1000, None, 0)


def test_requests_alone_are_read() -> None:
    r = generic_request(
        NVIDIA, {"name": "c", "resources": {"requests": {"nvidia.com/gpu": "2"}}}, 0, False, {}
    )
    assert r.count == 2


def test_no_count_and_nothing_else_asks_nothing() -> None:
    assert ask(NVIDIA, {"cpu": "2"}).count == 0
    assert generic_request(NVIDIA, {"name": "bare"}, 0, False, {}).count == 0


def test_count_zero_asks_nothing() -> None:
    assert ask(NVIDIA, {"nvidia.com/gpu": "0", "nvidia.com/gpumem": "10"}).count == 0


def test_memory_without_count_takes_the_default_count() -> None:
    assert shape(ask(NVIDIA, {"nvidia.com/gpumem": "3000"})) == (1, 3000, None, 0)
    assert ask(NVIDIA, {"nvidia.com/gpucores": "30"}, {"defaultGPUNum": 2}).count == 2


def test_default_count_zero_keeps_memory_only_containers_out() -> None:
    assert ask(NVIDIA, {"nvidia.com/gpumem": "3000"}, {"defaultGPUNum": 0}).count == 0


def test_default_memory_and_cores_from_the_section() -> None:
    r = ask(NVIDIA, {"nvidia.com/gpu": "1"}, {"defaultMemory": 2048, "defaultCores": 25})
    assert shape(r) == (1, 2048, None, 25)


def test_memory_factor_multiplies_memory() -> None:
    assert (
        ask(
            NVIDIA, {"nvidia.com/gpu": 1, "nvidia.com/gpumem": 3}, {"memoryFactor": 1024}
        ).memory_mib
        == 3072
    )


def test_memory_unit_of_the_vendor_multiplies_memory() -> None:
    assert ask(STEPS, {"steps.io/vgpu": 1, "steps.io/sgpu-memory": 4}).memory_mib == 2048


@pytest.mark.parametrize(
    ("resource", "value", "problem"),
    [
        ("nvidia.com/gpu", "1.5", "whole number"),
        ("nvidia.com/gpu", "-1", "negative"),
        ("nvidia.com/gpumem", "100m", "whole number"),
        ("nvidia.com/gpucores", "-5", "negative"),
        ("nvidia.com/gpumem", "lots", "not a quantity"),
        ("nvidia.com/gpumem-percentage", "150", "between 0 and 100"),
    ],
)
def test_bad_values_name_container_and_resource(resource: str, value: str, problem: str) -> None:
    limits = {"nvidia.com/gpu": "1", resource: value}
    with pytest.raises(RequestError, match=problem) as err:
        ask(NVIDIA, limits)
    assert err.value.container == "main"
    assert err.value.resource == resource
    assert "'main'" in str(err.value) and resource in str(err.value)


def test_memory_beyond_int32_is_refused() -> None:
    with pytest.raises(RequestError, match="limit"):
        ask(NVIDIA, {"nvidia.com/gpu": "1", "nvidia.com/gpumem": "16Gi"})


def test_bad_section_values_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="defaultMemory"):
        ask(NVIDIA, {"nvidia.com/gpu": "1"}, {"defaultMemory": "much"})


def test_whole_card_vendor_takes_whole_cards() -> None:
    assert shape(ask(WCARD, {"example.com/card": "2"})) == (2, 0, 100, 100)


def test_whole_card_vendor_refuses_memory_or_cores() -> None:
    spec = WCARD.model_copy(
        update={"resources": WCARD.resources.model_copy(update={"memory": "example.com/mem"})}
    )
    with pytest.raises(RequestError, match="allocated whole") as err:
        ask(spec, {"example.com/card": "1", "example.com/mem": "1000"})
    assert err.value.resource == "example.com/mem"


def test_memory_values_vendor_lists_the_allowed_values() -> None:
    with pytest.raises(RequestError, match="3 is not allowed; use one of 2, 4, 8, 16, 32, 48"):
        ask(STEPS, {"steps.io/vgpu": 1, "steps.io/sgpu-memory": 3})


def test_memory_values_vendor_accepts_listed_values() -> None:
    assert shape(
        ask(STEPS, {"steps.io/vgpu": 1, "steps.io/sgpu-memory": 8, "steps.io/sgpu-core": 4})
    ) == (1, 4096, None, 4)


def test_whole_multi_device_vendor_takes_whole_cards_for_several() -> None:
    r = ask(STEPS, {"steps.io/vgpu": 2, "steps.io/sgpu-memory": 8})
    assert shape(r) == (2, 0, 100, 16)


def test_pod_requests_lists_init_then_app_with_only_real_requests(
    registry: VendorRegistry,
) -> None:
    p = pod(
        init=[container("setup", {"example.com/card": "1"})],
        containers=[
            container("app", {"nvidia.com/gpu": "1", "nvidia.com/gpumem": "1000"}),
            container("sidecar", {"cpu": "1"}),
            container("both", {"nvidia.com/gpu": "1", "steps.io/vgpu": "1"}),
        ],
    )
    out = pod_requests(registry, p, {})
    assert [[(r.vendor, r.container, r.container_index, r.init) for r in c] for c in out] == [
        [("wcard", "setup", 0, True)],
        [("nvidia", "app", 1, False)],
        [],
        [("nvidia", "both", 3, False), ("steps", "both", 3, False)],
    ]


def test_pod_requests_read_the_vendor_section(registry: VendorRegistry) -> None:
    p = pod(containers=[container("app", {"nvidia.com/gpu": "1"})])
    [[r]] = pod_requests(registry, p, {"nvidia": {"defaultMemory": 1234}})
    assert r.memory_mib == 1234


@pytest.mark.parametrize(
    ("obj", "field"),
    [
        ({"spec": {"containers": "nope"}}, "spec.containers"),
        ({"spec": {"containers": [1]}}, "spec.containers[0]"),
        ({"spec": "x"}, "spec"),
        ({"metadata": {"annotations": ["x"]}, "spec": {}}, "metadata.annotations"),
        (
            {"spec": {"containers": [{"name": "c", "resources": {"limits": "x"}}]}},
            "resources.limits",
        ),
    ],
)
def test_malformed_pods_are_request_errors(
    registry: VendorRegistry, obj: dict[str, Any], field: str
) -> None:
    with pytest.raises(PodShapeError, match=field.replace("[", r"\[").replace("]", r"\]")):
        pod_requests(registry, obj, {})


class CountingVendor:
    """The NVIDIA spec, counting how often it is asked about a container."""

    def __init__(self) -> None:
        self.asked = 0

    @hookimpl
    def hami_vendor(self) -> VendorSpec:
        return NVIDIA

    @hookimpl
    def hami_request(self) -> None:
        self.asked += 1


def test_a_request_memo_reads_each_pod_shape_once() -> None:
    counting = CountingVendor()
    registry = load_vendors(environ={}, entry_points_=[], plugins=[("nvidia", counting)])
    memo = RequestMemo(registry, {}, volatile=frozenset({"hami.io/vgpu-node"}))
    limits = {"nvidia.com/gpu": "1", "nvidia.com/gpumem": "3000"}
    first = memo(pod("web-1", [container("main", limits)]))
    assert first == pod_requests(registry, pod("web-1", [container("main", limits)]), {})
    asked = counting.asked
    # another replica, and the same pod once the scheduler has written its decision
    assert memo(pod("web-2", [container("main", limits)])) == first
    decided = pod("web-1", [container("main", limits)], annotations={"hami.io/vgpu-node": "n1"})
    assert memo(decided) == first
    assert counting.asked == asked
    # another shape is read: other limits, another annotation, another namespace
    memo(pod("big", [container("main", {**limits, "nvidia.com/gpumem": "6000"})]))
    memo(pod("pinned", [container("main", limits)], annotations={"nvidia.com/use-gputype": "A"}))
    memo(pod("other", [container("main", limits)], namespace="team-b"))
    assert counting.asked == asked + 3
    # answers are copies: changing one does not change the next
    first[0].clear()
    assert memo(pod("web-3", [container("main", limits)]))[0]


def test_a_request_memo_raises_for_a_bad_pod_every_time() -> None:
    memo = RequestMemo(make_registry(), {})
    bad = pod("bad", [container("main", {"nvidia.com/gpu": "1.5"})])
    for _ in range(2):
        with pytest.raises(RequestError, match="expected a whole number"):
            memo(bad)
