"""Errors of the Cambricon vendor, each naming what was wrong."""

from __future__ import annotations

from hami_core.errors import HamiError

__all__ = ["CnmonParseError", "DiscoveryError", "MountError"]


class CnmonParseError(HamiError, ValueError):
    """cnmon output could not be read; the message names the line and the problem."""


class DiscoveryError(HamiError):
    """cnmon failed, or its output does not describe a usable card."""


class MountError(HamiError):
    """A container's assigned MLUs cannot be handed to it (unknown card, no sMLU instance)."""
