"""GPU-to-GPU links and HAMi's pair scores for the `topology-aware` policy (pure).

HAMi's device plugin (`pkg/device/nvidia/links.go`, `calculate_score.go`) describes each ordered
pair of GPUs by a list of links seen from the first GPU: one PCIe/CPU link from NVML's closest
common ancestor, and one NVLink entry counting the NVLinks between them (direct links whose far
end is the peer's PCI bus id; failing that, when both GPUs reach NVSwitches, the smaller number of
switch links). A pair scores the sum of its links' values (hami-protocol.md §6.4), or 0 when the
two directions disagree on the number of links. The annotation itself is written with
`hami_core.protocol.encode_pair_scores`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from hami_nvidia.binding import GpuRecord

__all__ = [
    "ANCESTOR_KINDS",
    "LINK_SCORES",
    "MAX_NVLINKS",
    "device_links",
    "link_score",
    "links_between",
    "pair_scores",
]

ANCESTOR_KINDS: Mapping[int, str] = {
    0: "same-board",  # NVML_TOPOLOGY_INTERNAL
    10: "single-switch",  # NVML_TOPOLOGY_SINGLE
    20: "multi-switch",  # NVML_TOPOLOGY_MULTIPLE
    30: "host-bridge",  # NVML_TOPOLOGY_HOSTBRIDGE
    40: "same-cpu",  # NVML_TOPOLOGY_NODE (formerly CPU)
    50: "cross-cpu",  # NVML_TOPOLOGY_SYSTEM
}
"""NVML topology level → the PCIe link kind HAMi names for it."""

LINK_SCORES: Mapping[str, int] = {
    "cross-cpu": 10,
    "same-cpu": 20,
    "host-bridge": 30,
    "multi-switch": 40,
    "single-switch": 50,
    "same-board": 60,
}
"""Score of one PCIe link kind; an `nvlink:<n>` link scores 100 x n."""

MAX_NVLINKS = 18
"""HAMi knows link counts 1..18 (H100/B200); more scores nothing, as there."""


def link_score(kind: str) -> int:
    """The score of one link kind (`same-cpu`, `nvlink:12`, ...); 0 for unknown kinds."""
    if kind.startswith("nvlink:"):
        count = kind.removeprefix("nvlink:")
        n = int(count) if count.isdigit() else 0
        return 100 * n if 1 <= n <= MAX_NVLINKS else 0
    return LINK_SCORES.get(kind, 0)


def _nvlink_count(a: GpuRecord, b: GpuRecord) -> int:
    direct = sum(1 for link in a.nvlinks if b.bus_id and link.remote_bus_id == b.bus_id)
    if direct or not a.nvlinks:
        return direct
    via_a = sum(1 for link in a.nvlinks if link.remote_is_switch)
    via_b = sum(1 for link in b.nvlinks if link.remote_is_switch)
    return min(via_a, via_b) if via_a and via_b else 0


def links_between(a: GpuRecord, b: GpuRecord) -> list[str]:
    """The links from `a` to `b` as `a` sees them (PCIe kind first, then `nvlink:<n>`)."""
    kinds: list[str] = []
    level = a.ancestors.get(b.uuid)
    if level is not None and level in ANCESTOR_KINDS:
        kinds.append(ANCESTOR_KINDS[level])
    n = _nvlink_count(a, b)
    if 1 <= n <= MAX_NVLINKS:
        kinds.append(f"nvlink:{n}")
    return kinds


def device_links(records: Sequence[GpuRecord]) -> dict[str, dict[str, list[str]]]:
    """For every GPU, its links to every other GPU (peer UUID → link kinds)."""
    return {
        a.uuid: {b.uuid: links_between(a, b) for b in records if b.uuid != a.uuid} for a in records
    }


def pair_scores(
    links: Mapping[str, Mapping[str, Sequence[str]]], uuids: Sequence[str] | None = None
) -> dict[str, dict[str, int]]:
    """HAMi's pair scores among `uuids` (default: every GPU in `links`).

    A pair whose two directions list a different number of links scores 0, as in HAMi.
    """
    chosen = list(links) if uuids is None else list(uuids)
    scores: dict[str, dict[str, int]] = {}
    for a in chosen:
        row: dict[str, int] = {}
        for b in chosen:
            if a == b:
                continue
            ab = list(links.get(a, {}).get(b, ()))
            ba = list(links.get(b, {}).get(a, ()))
            row[b] = sum(link_score(k) for k in ab) if len(ab) == len(ba) else 0
        scores[a] = row
    return scores
