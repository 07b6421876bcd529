"""Pair scores for `topology-aware` placement, from NVML links (hami-protocol.md §6.4)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pynvml
import pytest
from hami_nvidia import binding
from hami_nvidia.parse_smi import parse_nvlink_status
from hami_nvidia.topology import (
    device_links,
    link_score,
    links_between,
    pair_scores,
)


@pytest.mark.parametrize(
    ("kind", "score"),
    [
        ("cross-cpu", 10),
        ("same-cpu", 20),
        ("host-bridge", 30),
        ("multi-switch", 40),
        ("single-switch", 50),
        ("same-board", 60),
        ("nvlink:1", 100),
        ("nvlink:18", 1800),
        ("nvlink:19", 0),
        ("nvlink:x", 0),
        ("mystery", 0),
    ],
)
def test_each_link_kind_scores_as_in_hami(kind: str, score: int) -> None:
    assert link_score(kind) == score


def test_a100_nvlink_pairs_score_highest(a100: Any) -> None:
    snap = binding.read_gpus(a100, sysfs_root="/x", topology=True)
    u = [g.uuid for g in snap.gpus]
    assert links_between(snap.gpus[0], snap.gpus[1]) == ["same-cpu", "nvlink:4"]
    assert links_between(snap.gpus[1], snap.gpus[2]) == ["cross-cpu", "nvlink:1"]
    scores = pair_scores(device_links(snap.gpus))
    assert scores[u[0]] == {u[1]: 420, u[2]: 10, u[3]: 10}
    assert scores[u[1]] == {u[0]: 420, u[2]: 110, u[3]: 10}
    assert scores[u[2]][u[3]] == 420 and scores[u[3]][u[2]] == 420


def test_links_seen_from_one_side_only_score_zero(fakes: SimpleNamespace) -> None:
    one_sided = fakes.FakeNvml(
        [
            fakes.FakeGpu(uuid="GPU-a", name="A", memory_bytes=1, bus=1, nvlinks=[(2, False)] * 2),
            fakes.FakeGpu(uuid="GPU-b", name="B", memory_bytes=1, bus=2),
            fakes.FakeGpu(uuid="GPU-c", name="C", memory_bytes=1, bus=3),
        ]
    )
    snap = binding.read_gpus(one_sided, sysfs_root="/x", topology=True)
    scores = pair_scores(device_links(snap.gpus))
    assert scores["GPU-a"]["GPU-b"] == 0 and scores["GPU-b"]["GPU-a"] == 0
    assert scores["GPU-a"]["GPU-c"] == 20  # same CPU (the fake's default), no NVLink


def test_recorded_dgx_a100_nvswitch_links_give_twelve_link_pairs(fakes: SimpleNamespace) -> None:
    """8 A100s as `nvidia-smi nvlink --status` recorded them: every link goes to an NVSwitch."""
    recorded = parse_nvlink_status((fakes.DATA / "nvidia-smi-nvlink-status-A100-1.txt").read_text())
    gpus = [
        fakes.FakeGpu(
            uuid=g.uuid,
            name=g.name,
            memory_bytes=80 * fakes.GIB,
            bus=0x07 + 0x10 * g.index,
            nvlinks=[(0xC0 + link % 6, True) for link in range(g.active_links)],
        )
        for g in recorded
    ]

    def ancestor(a: int, b: int) -> int:
        return int(pynvml.NVML_TOPOLOGY_NODE if a // 4 == b // 4 else pynvml.NVML_TOPOLOGY_SYSTEM)

    snap = binding.read_gpus(
        fakes.FakeNvml(gpus, ancestors=ancestor), sysfs_root="/x", topology=True
    )
    scores = pair_scores(device_links(snap.gpus))
    for a in recorded:
        for b in recorded:
            if a is b:
                continue
            pcie = 20 if a.index // 4 == b.index // 4 else 10
            want = pcie + 100 * min(a.active_links, b.active_links)
            assert scores[a.uuid][b.uuid] == want
    assert scores[recorded[0].uuid][recorded[7].uuid] == 1210


def test_scores_are_limited_to_the_registered_cards() -> None:
    links = {"a": {"b": ["same-cpu"], "c": ["same-cpu"]}, "b": {"a": ["same-cpu"]}}
    assert pair_scores(links, ["a", "b"]) == {"a": {"b": 20}, "b": {"a": 20}}
