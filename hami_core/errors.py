"""hami's own error types, each naming what was wrong in words an operator can act on."""

from __future__ import annotations

__all__ = [
    "AdmissionDenied",
    "ConfigError",
    "HamiError",
    "RequestError",
    "VendorConflict",
]


class HamiError(Exception):
    """Base of every error hami raises on purpose."""


class RequestError(HamiError, ValueError):
    """A container's resource request cannot be read (bad quantity, value out of range)."""

    def __init__(self, *, vendor: str, container: str, resource: str, problem: str) -> None:
        super().__init__(f"container {container!r}: {resource}: {problem}")
        self.vendor = vendor
        self.container = container
        self.resource = resource
        self.problem = problem


class AdmissionDenied(HamiError):
    """The webhook refuses the pod; the message is shown to the user by the apiserver."""


class ConfigError(HamiError, ValueError):
    """A configuration file or value is invalid; the message names the key."""


class VendorConflict(HamiError):
    """Two installed vendors claim the same key or resource name."""
