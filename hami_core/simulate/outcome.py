"""What a simulation found: where each pod went (or why not), what its containers got, and how
full each card ended up. Plain frozen records, and the `--json` form of them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from hami_core.model import ContainerDevice, ContainerRuntimeSpec

__all__ = [
    "CardFill",
    "ContainerOutcome",
    "PodOutcome",
    "SimulationResult",
    "Stage",
    "summarise_failures",
]

Stage = Literal[
    "scheduled", "denied", "unschedulable", "bind-failed", "allocate-failed", "skipped", "error"
]
"""How far a pod got: `scheduled` (bound and allocated); `denied` by the webhook;
`unschedulable` (no node fits, or its request cannot be read); `bind-failed`;
`allocate-failed` (bound, but the device plugin refused); `skipped` (asks for no accelerator:
kube-scheduler alone would place it); `error` (the simulation itself failed on this pod)."""


@dataclass(frozen=True, slots=True)
class ContainerOutcome:
    """One container's runtime spec, merged over the vendors' `hami_mount` answers."""

    name: str
    env: Mapping[str, str] = field(default_factory=dict)
    mounts: tuple[Mapping[str, Any], ...] = ()
    devices: tuple[Mapping[str, Any], ...] = ()

    @classmethod
    def merge(cls, name: str, specs: Sequence[ContainerRuntimeSpec]) -> ContainerOutcome:
        """The container's view of several vendors' answers (env merged, lists joined)."""
        env: dict[str, str] = {}
        mounts: list[Mapping[str, Any]] = []
        devices: list[Mapping[str, Any]] = []
        for spec in specs:
            env.update(spec.envs)
            mounts.extend(m.model_dump() for m in spec.mounts)
            devices.extend(d.model_dump() for d in spec.devices)
        return cls(name, env, tuple(mounts), tuple(devices))

    def to_json(self) -> dict[str, Any]:
        """`{"name", "env", "mounts", "devices"}`."""
        return {
            "name": self.name,
            "env": dict(self.env),
            "mounts": [dict(m) for m in self.mounts],
            "devices": [dict(d) for d in self.devices],
        }


@dataclass(frozen=True, slots=True)
class PodOutcome:
    """One pod's fate. `devices` maps each vendor's HAMi common word to one device list per
    container (init containers first); `failed` holds each refused node's reason."""

    namespace: str
    name: str
    source: str
    stage: Stage
    node: str | None = None
    devices: Mapping[str, tuple[tuple[ContainerDevice, ...], ...]] = field(default_factory=dict)
    reason: str | None = None
    failed: Mapping[str, str] = field(default_factory=dict)
    containers: tuple[ContainerOutcome, ...] = ()

    @property
    def key(self) -> str:
        """`namespace/name`."""
        return f"{self.namespace}/{self.name}"

    def to_json(self) -> dict[str, Any]:
        """The pod's entry of `--json`."""
        return {
            "namespace": self.namespace,
            "name": self.name,
            "node": self.node,
            "devices": {
                word: [
                    [
                        {
                            "uuid": d.uuid,
                            "type": d.type,
                            "usedmem": d.usedmem,
                            "usedcores": d.usedcores,
                        }
                        for d in container
                    ]
                    for container in containers
                ]
                for word, containers in self.devices.items()
            },
            "reason": self.reason,
            "containers": [c.to_json() for c in self.containers],
        }


@dataclass(frozen=True, slots=True)
class CardFill:
    """One card at the end of the run: slots, memory (MiB) and cores used of the totals."""

    node: str
    vendor: str
    id: str
    index: int
    type: str
    used: int
    count: int
    usedmem: int
    totalmem: int
    usedcores: int
    totalcores: int
    health: bool = True

    def to_json(self) -> dict[str, Any]:
        """The card's entry of `--json`."""
        return {
            "id": self.id,
            "type": self.type,
            "used": self.used,
            "count": self.count,
            "usedmem": self.usedmem,
            "totalmem": self.totalmem,
            "usedcores": self.usedcores,
            "totalcores": self.totalcores,
        }


@dataclass(frozen=True, slots=True)
class SimulationResult:
    """Every pod's outcome in workload order, every node's cards by node name, and warnings."""

    pods: tuple[PodOutcome, ...]
    nodes: Mapping[str, tuple[CardFill, ...]]
    warnings: tuple[str, ...] = ()
    node_errors: Mapping[str, str] = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        """How many pods ended at each stage."""
        out: dict[str, int] = {}
        for pod in self.pods:
            out[pod.stage] = out.get(pod.stage, 0) + 1
        return out

    def to_json(self) -> dict[str, Any]:
        """`{"pods": [...], "nodes": [{"name", "devices": [...]}]}`."""
        return {
            "pods": [p.to_json() for p in self.pods],
            "nodes": [
                {"name": name, "devices": [c.to_json() for c in cards]}
                for name, cards in self.nodes.items()
            ],
        }


_NOT_THE_KIND = (
    "NodeInsufficientDevice",
    "node unregistered",
    "node(s) didn't match",
    "node(s) were unschedulable",
)
"""Reasons of nodes that lack the asked-for cards altogether: listed after the others."""


def summarise_failures(failed: Mapping[str, str], *, names: int = 3) -> str:
    """One line for a pod no node took: each distinct node reason (HAMi's `n/N Reason` text)
    with the nodes that gave it; nodes that have such cards first, most common first."""
    groups: dict[str, list[str]] = {}
    for node, reason in failed.items():
        groups.setdefault(reason, []).append(node)
    parts = []

    def order(item: tuple[str, list[str]]) -> tuple[bool, int, str]:
        return (item[0].startswith(_NOT_THE_KIND), -len(item[1]), item[0])

    for reason, nodes in sorted(groups.items(), key=order):
        nodes.sort()
        shown = ", ".join(nodes[:names])
        if len(nodes) > names:
            shown += f", +{len(nodes) - names} more"
        parts.append(f"{reason} [{shown}]")
    return "; ".join(parts)
