"""The order in which a node's cards are offered to the fit loop (reference §6.3).

The fit loop walks the list from its END, so the card sorted LAST is tried FIRST. Sort keys
(`score` is the card's device score for the container being placed, see `score.py`):

Single policy value (not `numa`):
- `mutex`: in-use count descending (idle cards at the tail), then NUMA ascending.
- numa-bind asked by the pod: `binpack` → NUMA descending, then score ascending; any other
  policy → NUMA ascending, then score descending.
- `binpack`: score ascending, then NUMA ascending → the fullest card is tried first.
- anything else (`spread`, `topology-aware`, unknown): score descending, then NUMA ascending →
  the emptiest card is tried first.

Chain (more than one value, or `numa` alone): the keys `binpack` (score ascending), `spread`
(score descending) and `numa` (NUMA ascending), in written order, each once; none of them →
`spread`; numa-bind puts `numa` first.

Deterministic ties (HAMi leaves them to an unstable sort): after the keys above, index
ascending, then UUID ascending. Among otherwise equal cards the one with the HIGHEST index
(then the greatest UUID) is therefore tried first, as HAMi's chain order does.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from hami_core.model import DeviceUsage

__all__ = ["GPU_POLICIES", "order_devices", "sort_key"]

GPU_POLICIES = ("binpack", "spread", "topology-aware", "mutex", "numa")
"""The GPU policy words HAMi knows."""

_Key = tuple[float | int | str, ...]
SortKey = Callable[[DeviceUsage, float], _Key]


def _chain_key(policy: Sequence[str], numa_bind: bool) -> SortKey:
    parts: list[str] = []
    for word in policy:
        if word in ("binpack", "spread", "numa") and word not in parts:
            parts.append(word)
    if not parts:
        parts.append("spread")
    if numa_bind:
        parts = ["numa", *(p for p in parts if p != "numa")]
    words = tuple(parts)

    def key(dev: DeviceUsage, score: float) -> _Key:
        out: list[float | int | str] = []
        for word in words:
            if word == "binpack":
                out.append(score)
            elif word == "spread":
                out.append(-score)
            else:
                out.append(dev.numa)
        out.append(dev.index)
        out.append(dev.id)
        return tuple(out)

    return key


def sort_key(policy: Sequence[str], numa_bind: bool) -> SortKey:
    """The sort key for a GPU policy (a sequence of policy words) and the pod's numa-bind."""
    if len(policy) != 1 or policy[0] == "numa":
        return _chain_key(policy, numa_bind)
    word = policy[0]
    if word == "mutex":
        return lambda d, s: (-d.used, d.numa, d.index, d.id)
    if numa_bind:
        if word == "binpack":
            return lambda d, s: (-d.numa, s, d.index, d.id)
        return lambda d, s: (d.numa, -s, d.index, d.id)
    if word == "binpack":
        return lambda d, s: (s, d.numa, d.index, d.id)
    return lambda d, s: (-s, d.numa, d.index, d.id)


def order_devices(
    devices: Sequence[DeviceUsage],
    scores: Sequence[float],
    policy: Sequence[str],
    numa_bind: bool = False,
) -> list[DeviceUsage]:
    """`devices` sorted for the fit loop (last = tried first); `scores[i]` belongs to `devices[i]`.

    Does not modify `devices`.
    """
    if len(policy) == 1 and not numa_bind and policy[0] in ("spread", "binpack", "topology-aware"):
        # the common single-policy cases, without a key function call per card
        sign = 1.0 if policy[0] == "binpack" else -1.0
        keys: list[_Key] = [
            (sign * s, d.numa, d.index, d.id) for d, s in zip(devices, scores, strict=True)
        ]
    else:
        key = sort_key(policy, numa_bind)
        keys = [key(d, s) for d, s in zip(devices, scores, strict=True)]
    return [devices[i] for i in sorted(range(len(keys)), key=keys.__getitem__)]
