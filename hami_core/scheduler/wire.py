"""The kube-scheduler extender wire format (reference: kubernetes-interfaces §2, hami-protocol §7).

kube-scheduler marshals `k8s.io/kube-scheduler/extender/v1` structs that carry no JSON tags, so
the keys are Go field names (`Pod`, `Nodes`, `NodeNames`, `PodName`...) and Go reads them back
case-insensitively. Here requests are read case-insensitively and answers are written with the
Go spelling, every field present as Go's `json.Marshal` would write it. Pure functions; a body
that is not the documented shape raises `WireError`, which the app answers with HTTP 400.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from hami_core.errors import HamiError

__all__ = [
    "BindArgs",
    "FilterArgs",
    "WireError",
    "bind_result",
    "filter_result",
    "node_list",
    "parse_bind_args",
    "parse_filter_args",
]

Obj = dict[str, Any]


class WireError(HamiError, ValueError):
    """A request body that is not the documented shape; the message names the field."""


@dataclass(frozen=True, slots=True)
class FilterArgs:
    """`ExtenderArgs`: the pod, and the candidates as names (`NodeNames`) or objects (`Nodes`).

    `nodes` is not None exactly when `Nodes` was non-null (the simulation form, answered
    without side effects).
    """

    pod: Obj | None
    node_names: list[str] | None
    nodes: list[Obj] | None


@dataclass(frozen=True, slots=True)
class BindArgs:
    """`ExtenderBindingArgs`: which pod to bind to which node."""

    pod_name: str
    pod_namespace: str
    pod_uid: str
    node: str


def _folded(body: Any, what: str) -> dict[str, Any]:
    if not isinstance(body, Mapping):
        raise WireError(f"{what}: expected a JSON object, got {_kind(body)}")
    out: dict[str, Any] = {}
    for key, value in body.items():
        out.setdefault(str(key).lower(), value)
    return out


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, Sequence):
        return "an array"
    return "an object"


def _names(value: Any, field: str) -> list[str]:
    if not isinstance(value, list):
        raise WireError(f"{field}: expected an array of node names, got {_kind(value)}")
    for i, name in enumerate(value):
        if not isinstance(name, str):
            raise WireError(f"{field}[{i}]: expected a node name, got {_kind(name)}")
    return list(value)


def parse_filter_args(body: Any) -> FilterArgs:
    """Read an `ExtenderArgs` body (keys in any case). `WireError` names a malformed field."""
    args = _folded(body, "ExtenderArgs")
    pod = args.get("pod")
    if pod is not None and not isinstance(pod, Mapping):
        raise WireError(f"Pod: expected a Pod object, got {_kind(pod)}")
    names = args.get("nodenames")
    node_names = None if names is None else _names(names, "NodeNames")
    raw_nodes = args.get("nodes")
    nodes: list[Obj] | None = None
    if raw_nodes is not None:
        listing = _folded(raw_nodes, "Nodes")
        items = listing.get("items")
        if items is None:
            items = []
        if not isinstance(items, list):
            raise WireError(f"Nodes.items: expected an array of Node objects, got {_kind(items)}")
        nodes = []
        for i, item in enumerate(items):
            if not isinstance(item, Mapping):
                raise WireError(f"Nodes.items[{i}]: expected a Node object, got {_kind(item)}")
            meta = item.get("metadata")
            name = meta.get("name") if isinstance(meta, Mapping) else None
            if not isinstance(name, str) or not name:
                raise WireError(f"Nodes.items[{i}].metadata.name: expected a node name")
            nodes.append(dict(item))
    return FilterArgs(
        pod=dict(pod) if pod is not None else None, node_names=node_names, nodes=nodes
    )


def _string(args: Mapping[str, Any], key: str, field: str) -> str:
    value = args.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise WireError(f"{field}: expected a string, got {_kind(value)}")
    return value


def parse_bind_args(body: Any) -> BindArgs:
    """Read an `ExtenderBindingArgs` body (keys in any case). `WireError` for a wrong type;
    missing fields read as empty strings (the bind answers with an `Error` naming them)."""
    args = _folded(body, "ExtenderBindingArgs")
    return BindArgs(
        pod_name=_string(args, "podname", "PodName"),
        pod_namespace=_string(args, "podnamespace", "PodNamespace"),
        pod_uid=_string(args, "poduid", "PodUID"),
        node=_string(args, "node", "Node"),
    )


def node_list(items: Sequence[Obj]) -> Obj:
    """A `v1.NodeList` holding these nodes, as Go marshals it."""
    return {"metadata": {}, "items": list(items)}


def filter_result(
    *,
    node_names: Sequence[str] | None = None,
    nodes: Obj | None = None,
    failed: Mapping[str, str] | None = None,
    unresolvable: Mapping[str, str] | None = None,
    error: str = "",
) -> Obj:
    """An `ExtenderFilterResult` with every Go field present (null where unset)."""
    return {
        "Nodes": nodes,
        "NodeNames": list(node_names) if node_names is not None else None,
        "FailedNodes": dict(failed) if failed is not None else None,
        "FailedAndUnresolvableNodes": dict(unresolvable) if unresolvable is not None else None,
        "Error": error,
    }


def bind_result(error: str = "") -> Obj:
    """An `ExtenderBindingResult`: empty `Error` means bound."""
    return {"Error": error}
