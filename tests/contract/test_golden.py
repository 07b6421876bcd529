"""The golden vectors: each file is exactly what the contract computes from its input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from golden_kit import GOLDEN, evaluate, render

VECTORS = sorted(GOLDEN.glob("*.json"))


def test_vectors_cover_both_dialects_and_the_limit_grammar() -> None:
    dialects = {json.loads(p.read_text(encoding="utf-8"))["dialect"] for p in VECTORS}
    assert dialects == {"hami", "koordinator", "limit-grammar"}


@pytest.mark.parametrize("path", VECTORS, ids=lambda p: p.stem)
def test_golden_vector_matches_byte_for_byte(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    vector = json.loads(text)
    assert vector["name"] == path.stem
    assert render(evaluate(vector)) == text


def test_a_changed_expectation_is_caught() -> None:
    vector = json.loads((GOLDEN / "hami-one-card.json").read_text(encoding="utf-8"))
    vector["output"]["env"]["CUDA_DEVICE_SM_LIMIT"] = "31"
    assert render(evaluate(vector)) != render(vector)


def test_koordinator_vector_reproduces_the_documented_annotation() -> None:
    vector = json.loads((GOLDEN / "koordinator-half-card.json").read_text(encoding="utf-8"))
    annotation = vector["output"]["pod"]["annotations"][
        "scheduling.koordinator.sh/device-allocated"
    ]
    assert annotation == (
        '{"gpu":[{"minor":1,"resources":{"koordinator.sh/gpu-core":"50",'
        '"koordinator.sh/gpu-memory":"11520Mi","koordinator.sh/gpu-memory-ratio":"50"}}]}'
    )
