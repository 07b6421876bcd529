"""Small pure helpers over Kubernetes object dicts, shared by the cluster adapters."""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from hami_core.k8s.cluster import Obj
from hami_core.k8s.errors import Invalid
from hami_core.k8s.patch import copy_json

__all__ = ["event_body", "metadata_of", "resource_version_of", "rfc3339"]


def rfc3339(timestamp: float) -> str:
    """A Unix time as the apiserver writes `metav1.Time`: `2024-05-01T12:00:00Z`."""
    return _rfc3339_second(math.floor(timestamp))


@lru_cache(maxsize=16)
def _rfc3339_second(second: int) -> str:
    return datetime.fromtimestamp(second, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def metadata_of(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    """The object's `metadata` mapping (empty when absent or not a mapping)."""
    meta = obj.get("metadata")
    return meta if isinstance(meta, Mapping) else {}


def resource_version_of(obj: Mapping[str, Any]) -> str | None:
    """The object's `metadata.resourceVersion`, or None."""
    rv = metadata_of(obj).get("resourceVersion")
    return rv if isinstance(rv, str) and rv else None


def event_body(namespace: str, event: Obj) -> Obj:
    """A `v1` Event ready to create: apiVersion/kind set, in `namespace`, named if it was not.

    An event without `metadata.name` gets `metadata.generateName` `<involvedObject.name>.` so the
    server names it, as client-go's recorder names events after the object.
    """
    if not isinstance(event, dict):
        raise Invalid(f"event: expected a JSON object, got {type(event).__name__}")
    body: Obj = copy_json(event)
    body["apiVersion"] = "v1"
    body["kind"] = "Event"
    meta = body.setdefault("metadata", {})
    if not isinstance(meta, dict):
        raise Invalid("event metadata: expected a JSON object")
    meta["namespace"] = namespace
    if not meta.get("name") and not meta.get("generateName"):
        involved = body.get("involvedObject")
        base = involved.get("name") if isinstance(involved, dict) else None
        meta["generateName"] = f"{base or 'event'}."
    return body
