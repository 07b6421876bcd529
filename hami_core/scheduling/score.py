"""Device and node scores (reference §6.2, §6.5), and the node choice.

Device score, for the container being placed (`WEIGHT = 10`):

    10 * ( wSlot * (req + used) / count
         + wCore * (cores + usedcores) / totalcore
         + wMem  * (mem + usedmem) / totalmem )

0 when `count`, `totalcore` or `totalmem` is 0. `req`, `cores` and `mem` sum the container's
requests OF THE CARD'S VENDOR: one per request, its cores, and its memory on this card (explicit
MiB, else percent of `totalmem`). HAMi matches requests to cards by comparing the request type
(`NVIDIA`) with the card type (`NVIDIA-Tesla T4`) for equality, which never holds on real nodes,
so its request terms are always zero; hami keeps the intended meaning and adds them. Weights
come from the pod annotation `hami.io/device-scoring-weights` (default 1,1,1). Scores are
Python floats (HAMi: float32).

Node score, on the node's cards of every vendor BEFORE the pod is placed:

    10 * ( Σused / Σcount + Σusedcores / Σtotalcore + Σusedmem / Σtotalmem )

(0 when any sum of totals is 0; weights do not apply), plus each vendor's `hami_score_node`
term — added under `binpack`, subtracted under `spread`, so a "higher is better" term is
preferred under both.

Node choice: `binpack` takes the highest score, `spread` the lowest; ties go to the node name
that sorts first (HAMi: map order, i.e. random).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from hami_core.model import ContainerRequest, DeviceUsage
from hami_core.protocol.weights import DEFAULT_SCORING_WEIGHTS, ScoringWeights

__all__ = ["WEIGHT", "choose_node", "device_score", "device_scores", "node_score", "prefers"]

WEIGHT = 10
"""HAMi's score scale."""


def device_score(
    dev: DeviceUsage,
    requests: Sequence[ContainerRequest] = (),
    weights: ScoringWeights = DEFAULT_SCORING_WEIGHTS,
) -> float:
    """One card's score for a container with `requests` (module docstring)."""
    if dev.count == 0 or dev.totalcore == 0 or dev.totalmem == 0:
        return 0.0
    req = cores = mem = 0
    for r in requests:
        if r.vendor == dev.vendor:
            req += 1
            cores += r.cores
            mem += r.memory_for(dev.totalmem)
    return WEIGHT * (
        weights.slot * (req + dev.used) / dev.count
        + weights.core * (cores + dev.usedcores) / dev.totalcore
        + weights.memory * (mem + dev.usedmem) / dev.totalmem
    )


def device_scores(
    devices: Sequence[DeviceUsage],
    requests: Sequence[ContainerRequest] = (),
    weights: ScoringWeights = DEFAULT_SCORING_WEIGHTS,
) -> list[float]:
    """`device_score` of each card, in order (one pass, request terms summed once)."""
    ws, wc, wm = WEIGHT * weights.slot, WEIGHT * weights.core, WEIGHT * weights.memory
    terms: dict[str, tuple[int, int, int, tuple[int, ...]]] = {}
    for r in requests:
        n, cores, fixed, pcts = terms.get(r.vendor, (0, 0, 0, ()))
        if r.memory_mib > 0:
            fixed += r.memory_mib
        elif r.memory_percent is not None:
            pcts = (*pcts, r.memory_percent)
        terms[r.vendor] = (n + 1, cores + r.cores, fixed, pcts)
    out: list[float] = []
    append = out.append
    none = (0, 0, 0, ())
    for d in devices:
        count, totalcore, totalmem = d.count, d.totalcore, d.totalmem
        if count == 0 or totalcore == 0 or totalmem == 0:
            append(0.0)
            continue
        n, cores, mem, pcts = terms.get(d.vendor, none)
        for pct in pcts:
            mem += totalmem * pct // 100
        append(
            ws * (n + d.used) / count
            + wc * (cores + d.usedcores) / totalcore
            + wm * (mem + d.usedmem) / totalmem
        )
    return out


def node_score(devices: Iterable[DeviceUsage]) -> float:
    """The node's utilisation score over all its cards (module docstring)."""
    used = count = usedcores = totalcore = usedmem = totalmem = 0
    for d in devices:
        used += d.used
        count += d.count
        usedcores += d.usedcores
        totalcore += d.totalcore
        usedmem += d.usedmem
        totalmem += d.totalmem
    if count == 0 or totalcore == 0 or totalmem == 0:
        return 0.0
    return WEIGHT * (used / count + usedcores / totalcore + usedmem / totalmem)


def choose_node(scores: Mapping[str, float], policy: str) -> str | None:
    """The node `policy` picks among fitting nodes: highest score (`binpack`) or lowest
    (`spread`), ties to the first name in sort order; `None` when `scores` is empty."""
    if not scores:
        return None
    if policy == "spread":
        return min(scores, key=lambda n: (scores[n], n))
    return min(scores, key=lambda n: (-scores[n], n))


def prefers(policy: str, name: str, score: float, other: str, other_score: float) -> bool:
    """True when `policy` picks node `name` over node `other` (as `choose_node` would)."""
    if score != other_score:
        return score < other_score if policy == "spread" else score > other_score
    return name < other
