"""The shared per-card fit loop: which cards, and what share of each, one container gets.

`generic_fit` is HAMi's NVIDIA `Fit` (reference §5.2, vendors §1.5) generalised over a
`VendorSpec`. The cards arrive ordered by the GPU policy and the loop walks them from the END
(the tail is preferred). Each card is checked in this order and the first failing check is
counted as that card's reason:

 1. `CardNotHealth`                    the card is unhealthy
 2. `CardCordoned`                     its UUID is in the node's `hami.io/device-cordon`
 3. `CardTypeMismatch`                 type pins, the mode pin, or another vendor's card
 4. (numa-bind) a new NUMA node starts: a partly filled selection on the previous node is
    counted as `NumaNotFit` (one per card) and the selection restarts
 5. `CardUuidMismatch`                 UUID pins (and, for `one_device_per_pod` vendors, a
                                       card other than the one the pod already holds)
 6. `CardTimeSlicingExhausted`         every slot of the card is taken
 7. `ExclusiveDeviceAllocateConflict`  `mutex` GPU policy and the card is in use
 8. (cores above `spec.core_units` are clamped to it)
 9. `CardInsufficientMemory`           free MiB < explicit MiB, else percent of the card
10. `CardInsufficientCore`             free cores < requested cores
11. `ExclusiveDeviceAllocateConflict`  the request takes a whole card's cores and the card is
                                       in use
12. `CardComputeUnitsExhausted`        all cores taken and the request asks for none
13. the vendor's `custom_rule`, if given (its reason string is counted)

A passing card is taken with `usedmem = memreq`, `usedcores = cores`; the loop stops when
`count` cards are taken. Each card is visited once, so one container never gets two slices of
one card. When not enough cards pass, the partial selection is counted as
`AllocatedCardsInsufficientRequest` (number of cards it held).

`topology-aware` GPU policy: every passing card is collected (per NUMA node under numa-bind,
the first NUMA node with enough cards wins), then (§6.4) exactly `count` candidates → all of
them; `count == 1` → the candidate with the LOWEST summed pair score to the other candidates
(keeps well-linked cards free); `count > 1` → the combination with the HIGHEST summed pairwise
score. Ties go to the earliest in candidate order. A pair score is read `a → b`, else `b → a`,
else 0. Above `MAX_COMBINATIONS` combinations a greedy choice replaces the exhaustive one (the
best pair, then repeatedly the card adding the most score).

The ResourceQuota check of HAMi (`ResourceQuotaNotFit`) is not part of the generic loop.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from itertools import combinations
from math import comb

from hami_core.model import (
    ContainerDevice,
    ContainerRequest,
    DeviceUsage,
    FitContext,
    FitResult,
    VendorSpec,
)
from hami_core.protocol.reasons import Reason
from hami_core.scheduling.pins import cordoned, pod_pins

__all__ = ["MAX_COMBINATIONS", "CustomRule", "generic_fit", "pair_score", "select_topology"]

MAX_COMBINATIONS = 20_000
"""Above this many candidate combinations, topology selection is greedy instead of exhaustive."""

CustomRule = Callable[[DeviceUsage, ContainerRequest, int], str | None]
"""A vendor's extra per-card check: `(card, request, memreq) -> reason or None`."""


def generic_fit(
    spec: VendorSpec,
    request: ContainerRequest,
    devices: Sequence[DeviceUsage],
    context: FitContext,
    *,
    custom_rule: CustomRule | None = None,
) -> FitResult:
    """Choose `request.count` of `devices` (tail first) under HAMi's per-card rules.

    Never modifies `devices`. Returns the chosen shares, or the counted reasons with
    `total = len(devices)`.
    """
    total = len(devices)
    wanted = request.count
    if wanted <= 0:
        return FitResult.fit((), total)
    pins = pod_pins(spec, context.pod)
    cordon = cordoned(context.node)
    topology = "topology-aware" in context.gpu_policy
    mutex = "mutex" in context.gpu_policy
    cores = min(request.cores, spec.core_units)
    whole = spec.core_units
    word = spec.common_word
    foreign = request.vendor != spec.key
    held: frozenset[str] | None = None
    if spec.one_device_per_pod:
        held = frozenset(d.uuid for c in context.pod_devices.get(spec.key, ()) for d in c)

    reasons: dict[str, int] = {}
    chosen: list[ContainerDevice] = []
    groups: list[list[ContainerDevice]] = [chosen]
    prev_numa: int | None = None

    def bump(reason: str, n: int = 1) -> None:
        reasons[reason] = reasons.get(reason, 0) + n

    for i in range(total - 1, -1, -1):
        dev = devices[i]
        if not dev.health:
            bump(Reason.CARD_NOT_HEALTH)
            continue
        if dev.id in cordon:
            bump(Reason.CARD_CORDONED)
            continue
        if foreign or dev.vendor != spec.key or not pins.type_ok(dev):
            bump(Reason.CARD_TYPE_MISMATCH)
            continue
        if pins.numa_bind and dev.numa != prev_numa:
            if chosen and not topology:
                bump(Reason.NUMA_NOT_FIT, len(chosen))
            prev_numa = dev.numa
            chosen = []
            groups.append(chosen)
        if not pins.uuid_ok(dev.id) or (held and dev.id not in held):
            bump(Reason.CARD_UUID_MISMATCH)
            continue
        if dev.count <= dev.used:
            bump(Reason.CARD_TIME_SLICING_EXHAUSTED)
            continue
        if mutex and dev.used > 0:
            bump(Reason.EXCLUSIVE_DEVICE_ALLOCATE_CONFLICT)
            continue
        memreq = request.memory_for(dev.totalmem)
        if dev.totalmem - dev.usedmem < memreq:
            bump(Reason.CARD_INSUFFICIENT_MEMORY)
            continue
        if dev.totalcore - dev.usedcores < cores:
            bump(Reason.CARD_INSUFFICIENT_CORE)
            continue
        if cores == whole and dev.totalcore == whole and dev.used > 0:
            bump(Reason.EXCLUSIVE_DEVICE_ALLOCATE_CONFLICT)
            continue
        if dev.totalcore != 0 and dev.usedcores >= dev.totalcore and cores == 0:
            bump(Reason.CARD_COMPUTE_UNITS_EXHAUSTED)
            continue
        if custom_rule is not None:
            extra = custom_rule(dev, request, memreq)
            if extra:
                bump(extra)
                continue
        chosen.append(ContainerDevice(dev.id, word, memreq, cores))
        if not topology and len(chosen) == wanted:
            return FitResult.fit(tuple(chosen), total)

    if topology:
        candidates = [g for g in groups if g]
        for group in candidates:
            if len(group) >= wanted:
                picked = select_topology(group, wanted, context.pair_scores)
                return FitResult.fit(tuple(picked), total)
        if pins.numa_bind:
            for group in candidates[:-1]:
                bump(Reason.NUMA_NOT_FIT, len(group))
        chosen = candidates[-1] if candidates else []
    if chosen:
        reasons[Reason.ALLOCATED_CARDS_INSUFFICIENT_REQUEST] = len(chosen)
    return FitResult.fail(reasons, total)


def pair_score(scores: Mapping[str, Mapping[str, int]], a: str, b: str) -> int:
    """The link score between cards `a` and `b`: `a → b`, else `b → a`, else 0."""
    forward = scores.get(a)
    if forward is not None and b in forward:
        return forward[b]
    backward = scores.get(b)
    if backward is not None and a in backward:
        return backward[a]
    return 0


def select_topology(
    candidates: Sequence[ContainerDevice],
    wanted: int,
    scores: Mapping[str, Mapping[str, int]],
) -> list[ContainerDevice]:
    """HAMi's topology-aware choice of `wanted` cards among `candidates` (module docstring)."""
    n = len(candidates)
    if n <= wanted:
        return list(candidates)
    ids = [c.uuid for c in candidates]
    if wanted == 1:
        sums = [
            sum(pair_score(scores, ids[i], ids[j]) for j in range(n) if j != i) for i in range(n)
        ]
        return [candidates[sums.index(min(sums))]]
    if comb(n, wanted) > MAX_COMBINATIONS:
        return [candidates[i] for i in _greedy(ids, wanted, scores)]
    matrix = [[pair_score(scores, ids[i], ids[j]) for j in range(n)] for i in range(n)]
    best: tuple[int, ...] = ()
    best_total = -1
    for combo in combinations(range(n), wanted):
        subtotal = _total(matrix, combo)
        if subtotal > best_total:
            best, best_total = combo, subtotal
    return [candidates[i] for i in best]


def _total(matrix: Sequence[Sequence[int]], combo: Sequence[int]) -> int:
    return sum(matrix[a][b] for k, a in enumerate(combo) for b in combo[k + 1 :])


def _greedy(ids: Sequence[str], wanted: int, scores: Mapping[str, Mapping[str, int]]) -> list[int]:
    n = len(ids)
    pairs: Iterable[tuple[int, int]] = combinations(range(n), 2)
    first = max(pairs, key=lambda p: (pair_score(scores, ids[p[0]], ids[p[1]]), -p[0], -p[1]))
    picked = list(first)
    while len(picked) < wanted:
        rest = [i for i in range(n) if i not in picked]
        gain = [sum(pair_score(scores, ids[i], ids[j]) for j in picked) for i in rest]
        picked.append(rest[gain.index(max(gain))])
    return sorted(picked)
