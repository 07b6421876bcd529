"""The pod annotation `hami.io/device-scoring-weights`: `slot=<n>,core=<n>,memory=<n>`.

Rules as HAMi's `ParseDeviceScoringWeights`: exactly three comma-separated `key=value` items,
keys `slot`, `core` and `memory` in any order, whitespace around items, keys and values ignored,
no key twice, values non-negative 64-bit integers, not all zero. An absent annotation means
1,1,1; a present but empty one is an error.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from hami_core.protocol._golang import go_parse_int, go_quote
from hami_core.protocol.errors import ProtocolError
from hami_core.protocol.keys import DEVICE_SCORING_WEIGHTS

__all__ = ["DEFAULT_SCORING_WEIGHTS", "ScoringWeights", "parse_scoring_weights"]

# Go's strings.TrimSpace set (ASCII part; HAMi's values are ASCII).
_SPACE: Final = " \t\n\v\f\r\x85\xa0"


@dataclass(frozen=True, slots=True)
class ScoringWeights:
    """Relative weights of slot, core and memory utilisation in a device's score."""

    slot: int = 1
    core: int = 1
    memory: int = 1


DEFAULT_SCORING_WEIGHTS: Final = ScoringWeights()
WEIGHT_KEYS: Final = ("slot", "core", "memory")


def _error(value: str, problem: str, *, field: str | None = None) -> ProtocolError:
    return ProtocolError(
        f"invalid {DEVICE_SCORING_WEIGHTS} annotation {go_quote(value)}: {problem}",
        field=field,
        value=value,
    )


def parse_scoring_weights(value: str | None) -> ScoringWeights:
    """Read the weights annotation (`None` when absent gives 1,1,1).

    Raises `ProtocolError` with HAMi's message for every rule above.
    """
    if value is None:
        return DEFAULT_SCORING_WEIGHTS
    if not isinstance(value, str):
        raise ProtocolError(
            f"{DEVICE_SCORING_WEIGHTS} must be a string, got {type(value).__name__}", value=value
        )
    parts = value.split(",")
    if len(parts) != 3:
        raise _error(value, "expected slot, core, and memory weights")
    weights: dict[str, int] = {}
    for part in parts:
        key, sep, text = part.strip(_SPACE).partition("=")
        if not sep:
            raise _error(value, "expected key=value entries")
        key = key.strip(_SPACE)
        if key in weights:
            raise _error(value, f"duplicate {go_quote(key)} weight", field=key)
        try:
            weight = go_parse_int(text.strip(_SPACE), bits=64)
        except ValueError:
            raise _error(value, f"{go_quote(key)} weight must be an integer", field=key) from None
        if weight < 0:
            raise _error(value, f"{go_quote(key)} weight must not be negative", field=key)
        if key not in WEIGHT_KEYS:
            raise _error(value, f"unknown weight {go_quote(key)}", field=key)
        weights[key] = weight
    for required in WEIGHT_KEYS:  # unreachable with three distinct known keys; kept as in HAMi
        if required not in weights:  # pragma: no cover
            raise _error(value, f"missing {go_quote(required)} weight", field=required)
    if not any(weights.values()):
        raise _error(value, "at least one weight must be positive")
    return ScoringWeights(slot=weights["slot"], core=weights["core"], memory=weights["memory"])
