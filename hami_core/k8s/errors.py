"""The cluster errors beyond the four in `cluster.py`, and their mapping to HTTP Status objects.

`ClusterError` and its subclasses travel between the in-memory cluster, the fake apiserver and the
real-client adapter, so the same failure reads the same everywhere: the HTTP code is `status`, the
apiserver's `Status.reason` is `reason_of(error)`, and `error_for_status` goes the other way.
"""

from __future__ import annotations

from types import MappingProxyType

from hami_core.k8s.cluster import ClusterError, Conflict, NotFound, Unavailable

__all__ = [
    "STATUS_REASONS",
    "AlreadyExists",
    "Expired",
    "Invalid",
    "error_for_status",
    "reason_of",
]


class AlreadyExists(Conflict):
    """A create named an object that exists (HTTP 409, reason `AlreadyExists`)."""

    def __init__(self, message: str, *, status: int | None = 409) -> None:
        super().__init__(message, status=status)


class Invalid(ClusterError):
    """The request or object is malformed (HTTP 400 `BadRequest` or 422 `Invalid`).

    The message names the field or key and what is wrong with it.
    """

    def __init__(self, message: str, *, status: int | None = 422) -> None:
        super().__init__(message, status=status)


class Expired(ClusterError):
    """A watch asked for a resourceVersion older than the kept history (HTTP 410, `Expired`)."""

    def __init__(self, message: str, *, status: int | None = 410) -> None:
        super().__init__(message, status=status)


STATUS_REASONS = MappingProxyType(
    {
        400: "BadRequest",
        401: "Unauthorized",
        403: "Forbidden",
        404: "NotFound",
        405: "MethodNotAllowed",
        409: "Conflict",
        410: "Expired",
        411: "LengthRequired",
        415: "UnsupportedMediaType",
        422: "Invalid",
        429: "TooManyRequests",
        500: "InternalError",
        503: "ServiceUnavailable",
        504: "Timeout",
    }
)
"""The apiserver's `Status.reason` for each HTTP code it uses."""


def reason_of(error: ClusterError) -> str:
    """The `Status.reason` the apiserver would send for `error`."""
    if isinstance(error, AlreadyExists):
        return "AlreadyExists"
    if isinstance(error, NotFound):
        return "NotFound"
    if isinstance(error, Conflict):
        return "Conflict"
    if isinstance(error, Expired):
        return "Expired"
    return STATUS_REASONS.get(error.status or 500, "Unknown")


def error_for_status(status: int, message: str, reason: str | None = None) -> ClusterError:
    """The typed error for an HTTP failure with this code, message and `Status.reason`."""
    if status == 404:
        return NotFound(message, status=status)
    if status == 409:
        if reason == "AlreadyExists":
            return AlreadyExists(message, status=status)
        return Conflict(message, status=status)
    if status == 410:
        return Expired(message, status=status)
    if status in (400, 422):
        return Invalid(message, status=status)
    if status == 429 or status >= 500:
        return Unavailable(message, status=status)
    return ClusterError(message, status=status)
