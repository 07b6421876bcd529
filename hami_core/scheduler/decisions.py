"""Which pod annotations and labels carry the scheduler's decisions, and when to trust them.

Only the scheduler (filter, bind) and the device plugin may write these keys. The webhook refuses
(or strips) them on a pod being created, and the usage informer ignores them on a pod whose
binding contradicts them. Pure functions over JSON-shaped pods.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from hami_core.model import VendorSpec
from hami_core.protocol.keys import (
    ASSIGNED_NODE,
    ASSIGNED_TIME,
    BIND_PHASE,
    BIND_TIME,
    NVIDIA_MIG_ALLOCATIONS,
)

__all__ = [
    "DECISION_LABELS",
    "SHARED_DECISION_KEYS",
    "decision_keys",
    "forged_keys",
    "usage_view",
]

SHARED_DECISION_KEYS = (ASSIGNED_NODE, ASSIGNED_TIME, BIND_PHASE, BIND_TIME, NVIDIA_MIG_ALLOCATIONS)
"""The pod annotations every vendor shares that only hami writes."""

DECISION_LABELS = (ASSIGNED_NODE,)
"""The pod labels only hami writes."""


def decision_keys(specs: Iterable[VendorSpec]) -> frozenset[str]:
    """Every pod annotation key only hami may write: the shared ones, each vendor's
    `decision_keys()` (its to-allocate and allocated keys) and its other `pod_decisions`."""
    keys = set(SHARED_DECISION_KEYS)
    for spec in specs:
        keys.update(spec.annotations.decision_keys())
        keys.update(spec.annotations.pod_decisions)
    return frozenset(keys)


def _strings(meta: Mapping[str, Any], part: str) -> Mapping[str, Any]:
    values = meta.get(part)
    return values if isinstance(values, Mapping) else {}


def forged_keys(pod: Mapping[str, Any], keys: frozenset[str]) -> tuple[list[str], list[str]]:
    """The decision annotations and labels a pod carries, sorted: `(annotations, labels)`."""
    meta = pod.get("metadata")
    if not isinstance(meta, Mapping):
        return [], []
    annotations = sorted(k for k in _strings(meta, "annotations") if k in keys)
    labels = sorted(k for k in _strings(meta, "labels") if k in DECISION_LABELS)
    return annotations, labels


def usage_view(pod: Mapping[str, Any], keys: frozenset[str]) -> Mapping[str, Any]:
    """The pod as the usage cache should count it.

    A pod bound (`spec.nodeName`) to a node other than the one its `hami.io/vgpu-node`
    annotation names cannot be holding the devices that annotation lists: hami never writes
    such a pair, so its decision annotations are dropped from the returned copy. Every other
    pod is returned as is.
    """
    meta = pod.get("metadata")
    spec = pod.get("spec")
    if not isinstance(meta, Mapping) or not isinstance(spec, Mapping):
        return pod
    annotations = _strings(meta, "annotations")
    assigned = annotations.get(ASSIGNED_NODE)
    bound = spec.get("nodeName")
    if not assigned or not bound or assigned == bound:
        return pod
    clean_meta = dict(meta)
    clean_meta["annotations"] = {k: v for k, v in annotations.items() if k not in keys}
    out = dict(pod)
    out["metadata"] = clean_meta
    return out
