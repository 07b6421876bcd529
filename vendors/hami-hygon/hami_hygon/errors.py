"""Errors of the Hygon vendor, each naming what was wrong."""

from __future__ import annotations

from hami_core.errors import HamiError

__all__ = ["DiscoveryError", "MountError", "SmiParseError", "VdcuError"]


class SmiParseError(HamiError, ValueError):
    """hy-smi / rocm-smi output could not be read; the message names the line or key."""


class DiscoveryError(HamiError):
    """The tool's outputs do not describe a usable card (e.g. a card without details)."""


class MountError(HamiError):
    """A container's assigned DCUs cannot be handed to it (unknown card, missing nodes)."""


class VdcuError(MountError):
    """A vDCU slice cannot be set up (no free compute units, pipe or vdev IDs)."""
