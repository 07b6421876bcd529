"""Scheduling-policy annotation values and the common annotation keys."""

from __future__ import annotations

import pytest

from hami_core.protocol import ProtocolError, keys, parse_gpu_policy, parse_node_policy


@pytest.mark.parametrize(
    ("value", "chain"),
    [
        ("spread", ("spread",)),
        ("binpack,numa", ("binpack", "numa")),
        (" numa , binpack ", ("numa", "binpack")),
        ("mutex,topology-aware", ("mutex", "topology-aware")),
        ("binpack,binpack", ("binpack", "binpack")),
    ],
)
def test_gpu_policy_chains_keep_written_order(value: str, chain: tuple[str, ...]) -> None:
    assert parse_gpu_policy(value) == chain


@pytest.mark.parametrize("value", ["", "  ", "best", "binpack,", "binpack,,numa", "Binpack"])
def test_gpu_policy_rejects_unknown_or_blank(value: str) -> None:
    with pytest.raises(ProtocolError, match=r"hami\.io/gpu-scheduler-policy"):
        parse_gpu_policy(value)


@pytest.mark.parametrize(("value", "name"), [("binpack", "binpack"), (" spread\t", "spread")])
def test_node_policy(value: str, name: str) -> None:
    assert parse_node_policy(value) == name


@pytest.mark.parametrize("value", ["", "mutex", "binpack,spread", "SPREAD"])
def test_node_policy_rejects_others(value: str) -> None:
    with pytest.raises(ProtocolError, match="must be one of binpack, spread"):
        parse_node_policy(value)


def test_common_keys_have_hamis_names() -> None:
    assert keys.ASSIGNED_NODE == "hami.io/vgpu-node"
    assert keys.ASSIGNED_TIME == "hami.io/vgpu-time"
    assert keys.BIND_PHASE == "hami.io/bind-phase"
    assert keys.BIND_TIME == "hami.io/bind-time"
    assert keys.NODE_LOCK == "hami.io/mutex.lock"
    assert keys.DEVICE_CORDON == "hami.io/device-cordon"
    assert keys.BIND_PHASES == ("allocating", "success", "failed")
    assert keys.DEVICE_SCORING_WEIGHTS == "hami.io/device-scoring-weights"
    assert keys.NVIDIA_HANDSHAKE == "hami.io/node-handshake"
