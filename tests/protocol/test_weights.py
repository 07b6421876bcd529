"""`hami.io/device-scoring-weights`: every rule of HAMi's ParseDeviceScoringWeights."""

from __future__ import annotations

import pytest

from hami_core.protocol import (
    DEFAULT_SCORING_WEIGHTS,
    ProtocolError,
    ScoringWeights,
    parse_scoring_weights,
)


def test_absent_annotation_means_equal_weights() -> None:
    assert parse_scoring_weights(None) == DEFAULT_SCORING_WEIGHTS == ScoringWeights(1, 1, 1)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("slot=1,core=1,memory=3", ScoringWeights(slot=1, core=1, memory=3)),
        ("memory=3,slot=0,core=2", ScoringWeights(slot=0, core=2, memory=3)),
        (" slot = 4 ,\tcore=0 , memory= 0 ", ScoringWeights(slot=4, core=0, memory=0)),
        ("slot=+2,core=0,memory=0", ScoringWeights(slot=2, core=0, memory=0)),
        ("slot=9223372036854775807,core=0,memory=0", ScoringWeights(2**63 - 1, 0, 0)),
    ],
)
def test_valid_values(value: str, expected: ScoringWeights) -> None:
    assert parse_scoring_weights(value) == expected


KEY = "hami.io/device-scoring-weights"


@pytest.mark.parametrize(
    ("value", "problem", "field"),
    [
        ("", "expected slot, core, and memory weights", None),
        ("slot=1,core=1", "expected slot, core, and memory weights", None),
        ("slot=1,core=1,memory=1,extra=1", "expected slot, core, and memory weights", None),
        ("slot=1,core,memory=1", "expected key=value entries", None),
        ("slot=1,slot=2,memory=1", 'duplicate "slot" weight', "slot"),
        ("slot=1,core=x,memory=1", '"core" weight must be an integer', "core"),
        ("slot=1,core=1.5,memory=1", '"core" weight must be an integer', "core"),
        ("slot=1,core=,memory=1", '"core" weight must be an integer', "core"),
        ("slot=1,core=99999999999999999999,memory=1", '"core" weight must be an integer', "core"),
        ("slot=1,core=-1,memory=3", '"core" weight must not be negative', "core"),
        ("slot=1,cores=1,memory=1", 'unknown weight "cores"', "cores"),
        ("Slot=1,core=1,memory=1", 'unknown weight "Slot"', "Slot"),
        ("slot=0,core=0,memory=0", "at least one weight must be positive", None),
    ],
)
def test_invalid_values_give_hamis_message(value: str, problem: str, field: str | None) -> None:
    with pytest.raises(ProtocolError) as caught:
        parse_scoring_weights(value)
    assert str(caught.value) == f'invalid {KEY} annotation "{value}": {problem}'
    assert caught.value.field == field
