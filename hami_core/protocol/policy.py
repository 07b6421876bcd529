"""Scheduling-policy annotation values (`hami.io/gpu-scheduler-policy`,
`hami.io/node-scheduler-policy`), validated as HAMi v2.10 does.

A GPU policy is one name or a comma chain read in written order (`binpack,numa`); each item is
trimmed and must be a known name. A node policy is a single `binpack` or `spread`, trimmed. HAMi
ignores an invalid value (with a warning) and keeps its configured default; here the parsers
raise `ProtocolError` so the caller can do the same and say why.
"""

from __future__ import annotations

from typing import Final

from hami_core.protocol._golang import go_quote
from hami_core.protocol.errors import ProtocolError
from hami_core.protocol.keys import GPU_SCHEDULER_POLICY, NODE_SCHEDULER_POLICY

__all__ = [
    "BINPACK",
    "GPU_POLICIES",
    "MUTEX",
    "NODE_POLICIES",
    "NUMA",
    "SPREAD",
    "TOPOLOGY_AWARE",
    "parse_gpu_policy",
    "parse_node_policy",
]

BINPACK: Final = "binpack"
SPREAD: Final = "spread"
TOPOLOGY_AWARE: Final = "topology-aware"
MUTEX: Final = "mutex"
NUMA: Final = "numa"

GPU_POLICIES: Final = frozenset({BINPACK, SPREAD, TOPOLOGY_AWARE, MUTEX, NUMA})
NODE_POLICIES: Final = frozenset({BINPACK, SPREAD})
_SPACE: Final = " \t\n\v\f\r\x85\xa0"


def parse_gpu_policy(value: str) -> tuple[str, ...]:
    """Read a GPU policy or chain into its names in written order (duplicates kept).

    Raises `ProtocolError` for a blank value or an unknown name.
    """
    if not isinstance(value, str) or not value.strip(_SPACE):
        raise ProtocolError(
            f"{GPU_SCHEDULER_POLICY} must name a policy ({_names(GPU_POLICIES)}), got {value!r}",
            value=value,
        )
    names = tuple(item.strip(_SPACE) for item in value.split(","))
    for name in names:
        if name not in GPU_POLICIES:
            raise ProtocolError(
                f"{GPU_SCHEDULER_POLICY} {go_quote(value)}: unknown policy {go_quote(name)} "
                f"(known: {_names(GPU_POLICIES)})",
                value=value,
            )
    return names


def parse_node_policy(value: str) -> str:
    """Read a node policy: `binpack` or `spread` (trimmed). Raises `ProtocolError` otherwise."""
    name = value.strip(_SPACE) if isinstance(value, str) else None
    if name not in NODE_POLICIES:
        raise ProtocolError(
            f"{NODE_SCHEDULER_POLICY} must be one of {_names(NODE_POLICIES)}, got {value!r}",
            value=value,
        )
    return str(name)


def _names(names: frozenset[str]) -> str:
    return ", ".join(sorted(names))
