"""Which pending pod a kubelet `Allocate` call belongs to — or a refusal to guess.

The kubelet's `Allocate` carries device IDs, never the pod. The pods that could be meant are the
candidates: bound to this node, still Pending and not being deleted, the vendor's assigned-node
annotation (HAMi's `hami.io/vgpu-node`) naming this node, its bind-phase annotation (HAMi's
`hami.io/bind-phase`) `allocating`, with devices of this vendor still to hand out. The
evidence, strongest first:

1. A pod part-way through allocation (some containers already popped): the kubelet admits one
   pod at a time and allocates all its containers back to back.
2. The node-lock holder: the scheduler binds one pod per node at a time under the lock, which
   the device plugin releases only when that pod's allocation ends — unless another candidate
   could take the same request (its lock expired or was broken while it waited for the
   kubelet): then it is ambiguous, and HAMi's "the holder wins" would hand one pod's devices
   to another.
3. The only candidate.
4. Among several, the only one whose next containers ask for exactly as many devices (or units
   of the called resource) as the kubelet's request carries.

A chosen pod whose next container does not match the request's device count while another
candidate does is not blamed: that is ambiguous too. Ambiguity is an error that changes nothing.

For a vendor whose spec takes the node lock (`spec.node_lock`, `holder_only`), the pod chosen
must also hold that lock (the spec's `annotations.node_lock` key): the scheduler's bind takes it
for the pod and it is kept until the pod's allocation ends, so a pod without it never went
through the bind (created already bound, with a forged decision) and is never served
(`NotLockHolder`, which changes nothing either). Pods without the lock still count as rivals of
the holder. The allocator leaves `holder_only` off when the lock names no pod (Volcano's bare
time: it shows a bind ran but not for which pod).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from hami_core.errors import HamiError

__all__ = [
    "AmbiguousPod",
    "AttributionError",
    "Candidate",
    "NoPendingPod",
    "NotLockHolder",
    "choose",
]


@dataclass(frozen=True, slots=True)
class Candidate:
    """A pod that may be the one the kubelet is starting.

    `pending` holds, for its containers still to allocate for this vendor, in order, how many
    IDs the kubelet sends for the called resource (device counts for the count resource; units
    for a unit resource), or `None` when its annotation could not be read (`problem` says why);
    `in_progress` is true when some of its containers were already allocated.
    """

    namespace: str
    name: str
    pending: tuple[int, ...] | None
    in_progress: bool = False
    problem: str = ""

    @property
    def key(self) -> str:
        """`namespace/name`."""
        return f"{self.namespace}/{self.name}"

    def fits(self, counts: Sequence[int]) -> bool:
        """True when its next containers ask for exactly `counts` devices."""
        if self.pending is None or len(self.pending) < len(counts):
            return False
        return tuple(self.pending[: len(counts)]) == tuple(counts)


class AttributionError(HamiError):
    """No pod can be named for an `Allocate` call; nothing was changed."""


class NoPendingPod(AttributionError):
    """No pod on the node is waiting for this vendor's devices."""


class AmbiguousPod(AttributionError):
    """Several pods could be meant and the evidence does not single one out."""


class NotLockHolder(AttributionError):
    """The pod the evidence names does not hold the node lock its vendor requires."""


def _keys(cands: Sequence[Candidate]) -> str:
    return ", ".join(sorted(c.key for c in cands))


def _settle(chosen: Candidate, candidates: Sequence[Candidate], counts: Sequence[int]) -> Candidate:
    if chosen.fits(counts):
        return chosen
    others = [c for c in candidates if c is not chosen and c.fits(counts)]
    if others:
        raise AmbiguousPod(
            f"pod {chosen.key} is next by the evidence but its next container does not ask for "
            f"{list(counts)} device(s), while {_keys(others)} does; refusing to guess"
        )
    return chosen


def choose(
    candidates: Sequence[Candidate],
    counts: Sequence[int],
    holder: tuple[str, str] | None,
    *,
    holder_only: bool = False,
) -> Candidate:
    """The candidate this `Allocate` (asking for `counts` devices per container) belongs to.

    `holder` is the node lock's (namespace, name), when it names one. Raises `NoPendingPod` or
    `AmbiguousPod`; never guesses between pods the evidence cannot tell apart. With
    `holder_only`, a chosen pod that is not `holder` raises `NotLockHolder`.
    """
    chosen = _choose(candidates, counts, holder)
    if holder_only and (chosen.namespace, chosen.name) != holder:
        raise NotLockHolder(
            f"pod {chosen.key} does not hold the node lock "
            f"({'held by ' + '/'.join(holder) if holder else 'not held'}): it did not go "
            "through the scheduler's bind; refusing to serve it"
        )
    return chosen


def _choose(
    candidates: Sequence[Candidate],
    counts: Sequence[int],
    holder: tuple[str, str] | None,
) -> Candidate:
    if not candidates:
        raise NoPendingPod("no pod bound to this node is waiting for these devices")
    in_progress = [c for c in candidates if c.in_progress]
    held = next((c for c in candidates if (c.namespace, c.name) == holder), None)
    if len(in_progress) > 1:
        raise AmbiguousPod(
            f"pods {_keys(in_progress)} are all part-way through allocation; refusing to guess"
        )
    if in_progress:
        current = in_progress[0]
        if held is not None and held is not current:
            raise AmbiguousPod(
                f"pod {current.key} is part-way through allocation but the node lock is held "
                f"by {held.key}; refusing to guess"
            )
        return _settle(current, candidates, counts)
    fitting = [c for c in candidates if c.fits(counts)]
    if held is not None:
        # The lock names the pod the scheduler bound last, but a pod whose lock expired (or was
        # broken) may be the one the kubelet is starting now: trust the holder only when no
        # other candidate could take this request.
        rivals = [c for c in fitting if c is not held]
        if rivals:
            raise AmbiguousPod(
                f"the node lock is held by {held.key}, but {_keys(rivals)} also wait(s) for "
                f"{list(counts)} device(s) on this node; refusing to guess"
            )
        return held
    if len(candidates) == 1:
        return candidates[0]
    if len(fitting) == 1:
        return fitting[0]
    among = fitting or list(candidates)
    raise AmbiguousPod(
        f"{len(among)} pods wait for {list(counts)} device(s) on this node and none holds the "
        f"node lock: {_keys(among)}; refusing to guess"
    )
