"""Hygon DCU models: PCI device ID → model name, and compute units per model.

From the dcu-dcgm device table that HAMi's DCU plugin uses to name cards (`DCU-<model>`). A card
whose device ID is not listed is named from the tool's `Card Series` instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

__all__ = ["COMPUTE_UNITS", "MODELS_BY_DEVICE_ID", "compute_units_of", "model_of_device_id"]

MODELS_BY_DEVICE_ID: Mapping[str, str] = MappingProxyType(
    {
        "54b7": "Z100",
        "55b7": "Z100L",
        "62b7": "K100",
        "6210": "K100_AI",
        "6211": "K100_LC_E_AI",
        "6212": "K100_LC_AI",
        "6213": "K100_AI_i",
        "62c7": "K100-LC",
        "51b7": "Z200SM_80",
        "56b7": "Z200SM_81",
        "61b7": "K500SM",
        "61d7": "K500SM",
        "61e7": "K500SM",
        "62a0": "K500SM_AI",
        "62b0": "K500SM_AI",
    }
)
"""Lower-case hex PCI device ID (no `0x`) → model name."""

COMPUTE_UNITS: Mapping[str, int] = MappingProxyType(
    {
        "Z100": 60,
        "Z100L": 60,
        "K100": 120,
        "K100_AI": 120,
        "K100_LC_AI": 120,
        "K100_LC_E_AI": 128,
    }
)
"""Model name → compute units (CUs) of one card; the vDCU config masks these."""


def model_of_device_id(device_id: str) -> str | None:
    """The model for a PCI device ID such as `0x6210` or `6210`, or None when unknown."""
    key = device_id.strip().lower().removeprefix("0x")
    return MODELS_BY_DEVICE_ID.get(key)


def compute_units_of(model: str, overrides: Mapping[str, int] | None = None) -> int | None:
    """Compute units of `model` (`K100_AI` or `DCU-K100_AI`), overrides first; None if unknown."""
    name = model.removeprefix("DCU-")
    if overrides and name in overrides:
        return overrides[name]
    return COMPUTE_UNITS.get(name)
