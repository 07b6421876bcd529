"""Fitting Ascend requests onto a node's NPUs through the hooks the scheduler calls
(`hami_request` then `hami_allocate`), placing one container after another."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pytest

from hami_core.errors import RequestError
from hami_core.model import (
    ContainerDevice,
    ContainerRequest,
    DeviceUsage,
    FitContext,
    FitResult,
    NodeView,
    PodView,
    VendorSpec,
)
from hami_core.plugins import VendorRegistry

NodeCards = Callable[..., tuple[NodeView, list[DeviceUsage]]]
SOFT = {"huawei.com/vnpu-mode": "hami-core"}


class Node:
    """One node's NPUs of one chip; `place` schedules a container and books its shares."""

    def __init__(
        self,
        registry: VendorRegistry,
        spec: VendorSpec,
        node: NodeView,
        cards: list[DeviceUsage],
        config: Mapping[str, Any] | None = None,
    ) -> None:
        self.registry, self.spec, self.node, self.cards = registry, spec, node, cards
        self.config = config or {}

    def request(
        self, count: int = 1, memory: int | None = None, cores: int | None = None, **pod: str
    ) -> ContainerRequest:
        limits = {self.spec.resources.count: str(count)}
        if memory is not None:
            limits[str(self.spec.resources.memory)] = str(memory)
        if cores is not None:
            limits[str(self.spec.resources.cores)] = str(cores)
        answer = self.registry.hook.hami_request(
            spec=self.spec,
            container={"name": "main", "resources": {"limits": limits}},
            index=0,
            init=False,
            pod=PodView(namespace="ns", name="p", uid="u", annotations=pod),
            config=self.config,
        )
        assert isinstance(answer, ContainerRequest)
        return answer

    def place(
        self,
        count: int = 1,
        memory: int | None = None,
        cores: int | None = None,
        annotations: Mapping[str, str] | None = None,
    ) -> FitResult:
        request = self.request(count, memory, cores, **(annotations or {}))
        context = FitContext(
            pod=PodView(namespace="ns", name="p", uid="u", annotations=dict(annotations or {})),
            node=self.node,
            config=self.config,
        )
        result = self.registry.hook.hami_allocate(
            spec=self.spec, request=request, devices=[c.copy() for c in self.cards], context=context
        )
        assert isinstance(result, FitResult)
        if result.ok:
            by_id = {c.id: c for c in self.cards}
            for share in result.devices:
                by_id[share.uuid].take(share)
            for card in self.cards:
                assert card.usedmem <= card.totalmem and card.used <= card.count
        return result

    def indexes(self, result: FitResult) -> list[int]:
        by_id = {c.id: c.index for c in self.cards}
        return [by_id[d.uuid] for d in result.devices]


@pytest.fixture
def npus(
    registry: VendorRegistry, spec: Callable[[str], VendorSpec], node_cards: NodeCards
) -> Callable[..., Node]:
    def make(
        key: str, n: int, config: Mapping[str, Any] | None = None, **node_annotations: str
    ) -> Node:
        s = spec(key)
        node, cards = node_cards(s, n, config=config, node_annotations=node_annotations)
        return Node(registry, s, node, cards, config)

    return make


def test_template_slices_never_exceed_the_npu(npus: Callable[..., Node]) -> None:
    node = npus("ascend910b3", 1)
    big, small1, small2 = node.place(memory=20000), node.place(memory=100), node.place(memory=16384)
    assert [d.usedmem for r in (big, small1, small2) for d in r.devices] == [32768, 16384, 16384]
    assert all(d.usedcores == 0 for r in (big, small1, small2) for d in r.devices)
    full = node.place(memory=1)
    assert not full.ok and full.reasons == {"CardInsufficientMemory": 1}


def test_the_vdevice_count_caps_the_slices_of_one_npu(npus: Callable[..., Node]) -> None:
    node = npus("ascend310p", 1)
    assert [node.place(memory=3000).ok for _ in range(7)] == [True] * 7
    eighth = node.place(memory=3000)
    assert not eighth.ok and eighth.reasons == {"CardTimeSlicingExhausted": 1}


def test_310p_two_vir04_do_not_fit_one_npu(npus: Callable[..., Node]) -> None:
    node = npus("ascend310p", 1)
    assert node.place(memory=12288).ok
    assert node.place(memory=6144).ok and node.place(memory=3072).ok  # 21504 of 21527 MiB
    second_vir04 = node.place(memory=12288)
    assert not second_vir04.ok and second_vir04.reasons == {"CardInsufficientMemory": 1}
    assert not node.place(memory=1).ok


def test_above_the_largest_template_takes_the_whole_npu(npus: Callable[..., Node]) -> None:
    node = npus("ascend910b3", 2)
    whole = node.place(memory=40000)
    assert [d.usedmem for d in whole.devices] == [65536]
    assert node.indexes(whole) == [1]  # the tail of the list is tried first
    assert node.indexes(node.place(memory=16384)) == [0]  # the other NPU takes slices
    refused = node.place(memory=40000)  # no NPU is free for a second whole one
    assert not refused.ok and refused.reasons == {"CardInsufficientMemory": 2}


def test_several_npus_are_taken_whole_and_alone(npus: Callable[..., Node]) -> None:
    node = npus("ascend910b2", 3)
    assert node.indexes(node.place(memory=8192)) == [2]
    pair = node.place(count=2)
    assert sorted(node.indexes(pair)) == [0, 1]
    assert [d.usedmem for d in pair.devices] == [65536, 65536]
    assert not node.place(count=2).ok
    with pytest.raises(RequestError, match=r"2 NPUs are taken whole"):
        node.request(count=2, memory=8192)
    assert node.request(count=2, memory=65536).memory_mib == 65536


def test_910b_fills_several_npus_from_the_biggest_network_group(npus: Callable[..., Node]) -> None:
    node = npus("ascend910b3", 8)
    assert [c.custominfo for c in node.cards] == [{"NetworkID": 0}] * 4 + [{"NetworkID": 1}] * 4
    for _ in range(3):
        node.place()  # whole NPUs 7, 6, 5 (network 1)
    four = node.place(count=4)
    # Walking from the end NPU 4 fits first, but network 0 has four free NPUs together.
    assert sorted(node.indexes(four)) == [0, 1, 2, 3]
    assert not node.place(count=2).ok


def test_a_single_npu_is_taken_from_the_end_as_usual(npus: Callable[..., Node]) -> None:
    node = npus("ascend910b3", 8)
    assert node.indexes(node.place(memory=16384)) == [7]


def test_910c_takes_whole_modules_of_two_npus(npus: Callable[..., Node]) -> None:
    node = npus("ascend910c", 4)
    assert {c.custominfo["NetworkID"] for c in node.cards if c.custominfo} == {0}
    one = node.place(memory=16384)  # asking for 1 NPU gets one module: 2 slices
    assert sorted(node.indexes(one)) == [2, 3]
    assert [d.usedmem for d in one.devices] == [16384, 16384]
    whole = node.place(count=2)  # NPUs 2 and 3 hold slices: module 0 is the one free
    assert sorted(node.indexes(whole)) == [0, 1]
    short = node.place(count=2)
    assert not short.ok
    with pytest.raises(RequestError, match="modules of 2"):
        node.request(count=3)


def test_910c_never_splits_a_module(npus: Callable[..., Node]) -> None:
    node = npus("ascend910c", 4)
    node.cards[3].take(ContainerDevice(node.cards[3].id, "Ascend910C", 65536, 0))
    assert sorted(node.indexes(node.place(count=2))) == [0, 1]
    node.cards[0].used = node.cards[0].usedmem = 0  # free NPU 0 only: modules 0 and 1 are split
    node.cards[1].used = node.cards[1].usedmem = 0
    node.cards[1].take(ContainerDevice(node.cards[1].id, "Ascend910C", 65536, 0))
    refused = node.place(count=2)  # NPUs 0 and 2 are free, but in different modules
    assert not refused.ok
    assert refused.reasons["AllocatedCardsInsufficientRequest"] == 2


def test_soft_slicing_needs_a_node_that_allows_it(npus: Callable[..., Node]) -> None:
    node = npus("ascend910b3", 2)
    assert node.node.annotations["hami-vnpu-core"] == "false"
    refused = node.place(memory=10000, cores=30, annotations=SOFT)
    assert not refused.ok and refused.reasons == {"ModeNotFit": 2}


def test_soft_slicing_takes_exact_memory_and_core_percent(npus: Callable[..., Node]) -> None:
    node = npus("ascend910b3", 1, config={"vnpus": {"hamiVnpuCore": True}})
    assert node.node.annotations["hami-vnpu-core"] == "true"
    assert node.cards[0].totalcore == 100
    first = node.place(memory=10000, cores=50, annotations=SOFT)
    assert [(d.usedmem, d.usedcores) for d in first.devices] == [(10000, 50)]
    assert node.place(memory=10000, cores=50, annotations=SOFT).ok
    third = node.place(memory=10000, cores=10, annotations=SOFT)
    assert not third.ok and third.reasons == {"CardInsufficientCore": 1}


def test_soft_slicing_may_slice_several_npus(npus: Callable[..., Node]) -> None:
    node = npus("ascend910b3", 2, config={"vnpus": {"hamiVnpuCore": True}})
    pair = node.place(count=2, memory=32768, cores=50, annotations=SOFT)
    assert [(d.usedmem, d.usedcores) for d in pair.devices] == [(32768, 50), (32768, 50)]


def test_core_requests_need_soft_slicing(npus: Callable[..., Node]) -> None:
    node = npus("ascend910b3", 1)
    with pytest.raises(RequestError) as err:
        node.request(memory=16384, cores=25)
    assert err.value.resource == "huawei.com/Ascend910B3-core"
    assert "hami-core" in err.value.problem


def test_uuid_pins_use_the_chips_annotation(npus: Callable[..., Node]) -> None:
    node = npus("ascend910b3", 4)
    pinned = node.place(annotations={"hami.io/use-Ascend910B3-uuid": node.cards[1].id})
    assert node.indexes(pinned) == [1]


def test_score_prefers_npus_sharing_a_network(
    registry: VendorRegistry, npus: Callable[..., Node]
) -> None:
    node = npus("ascend910b3", 8)
    ctx = FitContext(pod=PodView(namespace="ns", name="p", uid="u", annotations={}), node=node.node)

    def score(indexes: list[int]) -> float:
        shares = [ContainerDevice(node.cards[i].id, "Ascend910B3", 65536, 0) for i in indexes]
        answer = registry.hook.hami_score_node(
            spec=node.spec, devices=node.cards, containers=[shares, []], context=ctx
        )
        assert isinstance(answer, float)
        return answer

    assert score([0, 1]) == 10.0
    assert score([3, 4]) == 5.0
    p310 = npus("ascend310p", 2)
    share = [ContainerDevice(p310.cards[0].id, "Ascend310P", 3072, 0)]
    assert (
        registry.hook.hami_score_node(
            spec=p310.spec, devices=p310.cards, containers=[share], context=ctx
        )
        == 0.0
    )
