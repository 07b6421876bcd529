"""What kube-scheduler checks before it asks the extender: node selector and extended resources.

kube-scheduler sends the extender only the nodes that passed its own filters. Two of them matter
for accelerators and are modelled here:

- `spec.unschedulable` (a cordoned node) is never a candidate (`node(s) were unschedulable`);
- `spec.nodeSelector`: every key must be a node label with that value (message
  `node(s) didn't match Pod's node affinity/selector`);
- extended resources a vendor does not mark `ignored_by_scheduler` (e.g. Cambricon's `vcore` and
  `vmemory`): the pod's effective request — `max(sum over app containers, max over init
  containers)` of limits, falling back to requests — must fit the node's allocatable minus what
  the pods bound there request (message `Insufficient <resource>`).

Affinity, taints and CPU/memory are not modelled.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from decimal import Decimal
from typing import Any

from hami_core.model import VendorSpec
from hami_core.quantity import QuantityError, parse_quantity

__all__ = [
    "CORDONED",
    "SELECTOR_MISMATCH",
    "KubeFilter",
    "effective_requests",
    "selector_matches",
]

SELECTOR_MISMATCH = "node(s) didn't match Pod's node affinity/selector"
CORDONED = "node(s) were unschedulable"


def _values(container: Mapping[str, Any], names: Collection[str]) -> dict[str, Decimal]:
    resources = container.get("resources")
    if not isinstance(resources, Mapping):
        return {}
    out: dict[str, Decimal] = {}
    for part in ("requests", "limits"):  # limits win, as the default for requests
        values = resources.get(part)
        if not isinstance(values, Mapping):
            continue
        for name, raw in values.items():
            if name not in names:
                continue
            try:
                out[name] = parse_quantity(raw)
            except QuantityError:
                continue  # the webhook or the extender reports a bad value
    return out


def effective_requests(pod: Mapping[str, Any], names: Collection[str]) -> dict[str, Decimal]:
    """The pod's request of each resource in `names`, as kube-scheduler counts it."""
    spec = pod.get("spec")
    if not isinstance(spec, Mapping):
        return {}
    total: dict[str, Decimal] = {}
    for container in spec.get("containers") or []:
        if isinstance(container, Mapping):
            for name, value in _values(container, names).items():
                total[name] = total.get(name, Decimal(0)) + value
    for container in spec.get("initContainers") or []:
        if isinstance(container, Mapping):
            for name, value in _values(container, names).items():
                total[name] = max(total.get(name, Decimal(0)), value)
    return {k: v for k, v in total.items() if v > 0}


def selector_matches(pod: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    """True when the node's labels satisfy the pod's `spec.nodeSelector`."""
    spec = pod.get("spec")
    selector = spec.get("nodeSelector") if isinstance(spec, Mapping) else None
    if not isinstance(selector, Mapping):
        return True
    return all(labels.get(str(k)) == str(v) for k, v in selector.items())


class KubeFilter:
    """The candidate nodes kube-scheduler would pass to the extender, with the reasons for the
    rest; it counts what bound pods request of each checked resource."""

    def __init__(self, specs: Iterable[VendorSpec]) -> None:
        self.checked = frozenset(
            name
            for spec in specs
            for name in spec.resource_names()
            if name not in spec.ignored_by_scheduler
        )
        self._labels: dict[str, Mapping[str, str]] = {}
        self._cordoned: set[str] = set()
        self._allocatable: dict[str, dict[str, Decimal]] = {}
        self._used: dict[str, dict[str, Decimal]] = {}

    def add_node(self, node: Mapping[str, Any]) -> None:
        """Know a node (its labels and allocatable)."""
        meta = node.get("metadata") or {}
        status = node.get("status") or {}
        name = str(meta.get("name") or "")
        self._labels[name] = dict(meta.get("labels") or {})
        spec = node.get("spec")
        if isinstance(spec, Mapping) and spec.get("unschedulable") is True:
            self._cordoned.add(name)
        allocatable: dict[str, Decimal] = {}
        for resource, raw in (status.get("allocatable") or status.get("capacity") or {}).items():
            if resource in self.checked:
                try:
                    allocatable[resource] = parse_quantity(raw)
                except QuantityError:
                    allocatable[resource] = Decimal(0)
        self._allocatable[name] = allocatable
        self._used.setdefault(name, {})

    def nodes(self) -> list[str]:
        """Every known node, by name."""
        return sorted(self._labels)

    def candidates(self, pod: Mapping[str, Any]) -> tuple[list[str], dict[str, str]]:
        """(the nodes the pod may go to, sorted; the reason for each other node)."""
        wants = effective_requests(pod, self.checked)
        spec = pod.get("spec")
        selective = isinstance(spec, Mapping) and bool(spec.get("nodeSelector"))
        names = self.nodes()
        if not wants and not selective and not self._cordoned:
            return names, {}
        fits: list[str] = []
        failed: dict[str, str] = {}
        for name in names:
            if name in self._cordoned:
                failed[name] = CORDONED
                continue
            if selective and not selector_matches(pod, self._labels[name]):
                failed[name] = SELECTOR_MISMATCH
                continue
            allocatable, used = self._allocatable[name], self._used[name]
            short = [
                r
                for r, amount in sorted(wants.items())
                if allocatable.get(r, Decimal(0)) - used.get(r, Decimal(0)) < amount
            ]
            if short:
                failed[name] = ", ".join(f"Insufficient {r}" for r in short)
                continue
            fits.append(name)
        return fits, failed

    def count(self, pod: Mapping[str, Any], node: str, sign: int = 1) -> None:
        """Add (or with `sign=-1` remove) what a pod bound to `node` requests."""
        used = self._used.setdefault(node, {})
        for resource, amount in effective_requests(pod, self.checked).items():
            used[resource] = used.get(resource, Decimal(0)) + sign * amount
