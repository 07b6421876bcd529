"""Ascend fit and node score (reference §3.5), on top of the core's generic per-card loop.

- Each NPU is judged by `generic_fit` (health, cordon, type, UUID pins, vDevice slots, memory,
  cores). In hard slicing a share is a template's memory, so the memory check is what keeps the
  slices on one NPU within it ("template exhaustion"); the slot count (`memoryAllocatable //
  smallest template`) caps the number of slices.
- Soft slicing needs a node that allows it (node annotation `hami-vnpu-core: "true"`, or
  `vnpus.hamiVnpuCore` when the node has no such annotation); otherwise every NPU fails with
  `ModeNotFit`.
- 910 chips whose every NPU carries `custominfo.NetworkID`, asked for several NPUs: every NPU
  that fits is collected, grouped by NetworkID, and the request is filled from the biggest group
  first (ties: the group met first, walking from the end of the list as the generic loop does).
- 910C (`superPod`): NPUs `2k` and `2k+1` form one module; only modules whose two NPUs both fit
  are taken, whole, until the count is met. Too few whole modules is a failure (HAMi returns a
  short selection as success; hami does not).
- Score (910 chips only): per container, the biggest number of its NPUs sharing one NetworkID
  divided by its number of NPUs, summed over containers, times 10.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from hami_ascend.chips import ChipConfig
from hami_ascend.register import is_super_pod
from hami_ascend.spec import ASCEND910_PREFIX
from hami_core.model import (
    ContainerDevice,
    ContainerRequest,
    DeviceUsage,
    FitContext,
    FitResult,
    VendorSpec,
)
from hami_core.protocol.reasons import Reason
from hami_core.scheduling.fit import generic_fit

__all__ = [
    "MODE_NOT_FIT",
    "NETWORK_WEIGHT",
    "ascend_fit",
    "ascend_score",
    "network_of",
    "soft_slicing_allowed",
]

MODE_NOT_FIT = Reason.MODE_NOT_FIT.value
"""Reason counted per NPU when a soft-slicing pod meets a node that does not allow it."""

NETWORK_WEIGHT = 10
"""HAMi's `Ascend910NetworkWeight`."""


def network_of(custominfo: Mapping[str, Any] | None) -> int | None:
    """The NPU's NetworkID from its registered `custominfo`, if it has a numeric one."""
    if not custominfo:
        return None
    value = custominfo.get("NetworkID")
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return int(value)


def soft_slicing_allowed(node_annotations: Mapping[str, str], key: str, default: bool) -> bool:
    """Whether a node takes soft-sliced pods: its `hami-vnpu-core` annotation (`"true"`), else
    the `vnpus.hamiVnpuCore` default."""
    value = node_annotations.get(key)
    if value is None:
        return default
    return value.strip().lower() == "true"


def _topology(chip: ChipConfig, devices: Sequence[DeviceUsage]) -> bool:
    return (
        chip.common_word.startswith(ASCEND910_PREFIX)
        and bool(devices)
        and all(network_of(d.custominfo) is not None for d in devices)
    )


def _candidates(
    spec: VendorSpec,
    request: ContainerRequest,
    devices: Sequence[DeviceUsage],
    context: FitContext,
) -> tuple[list[tuple[DeviceUsage, ContainerDevice]], dict[str, int]]:
    one = request.model_copy(update={"count": 1})
    found: list[tuple[DeviceUsage, ContainerDevice]] = []
    reasons: dict[str, int] = {}
    for dev in reversed(devices):
        result = generic_fit(spec, one, [dev], context)
        if result.ok:
            found.append((dev, result.devices[0]))
        else:
            for reason, n in result.reasons.items():
                reasons[reason] = reasons.get(reason, 0) + n
    return found, reasons


def _by_network(
    found: list[tuple[DeviceUsage, ContainerDevice]], wanted: int
) -> list[ContainerDevice]:
    groups: dict[int, list[ContainerDevice]] = {}
    for dev, share in found:
        groups.setdefault(network_of(dev.custominfo) or 0, []).append(share)
    ordered = sorted(groups.values(), key=len, reverse=True)  # stable: first met wins ties
    picked: list[ContainerDevice] = []
    for group in ordered:
        for share in group:
            picked.append(share)
            if len(picked) == wanted:
                return picked
    return picked


def _by_module(
    found: list[tuple[DeviceUsage, ContainerDevice]], wanted: int
) -> list[ContainerDevice]:
    by_index = {dev.index: share for dev, share in found}
    picked: list[ContainerDevice] = []
    seen: set[int] = set()
    for dev, _ in found:
        module = dev.index // 2
        if module in seen:
            continue
        seen.add(module)
        pair = (by_index.get(2 * module), by_index.get(2 * module + 1))
        if pair[0] is None or pair[1] is None:
            continue
        picked.extend((pair[0], pair[1]))
        if len(picked) >= wanted:
            return picked[:wanted]
    return picked


def ascend_fit(
    spec: VendorSpec,
    chip: ChipConfig,
    request: ContainerRequest,
    devices: Sequence[DeviceUsage],
    context: FitContext,
    *,
    soft: bool,
    soft_allowed: bool,
) -> FitResult:
    """Choose the NPUs for one container's request (module docstring). Never modifies
    `devices`."""
    total = len(devices)
    if request.count <= 0:
        return FitResult.fit((), total)
    if soft and not soft_allowed:
        return FitResult.fail({MODE_NOT_FIT: total}, total)
    super_pod = is_super_pod(chip)
    if (request.count == 1 and not super_pod) or not _topology(chip, devices):
        return generic_fit(spec, request, devices, context)
    wanted = request.count + (request.count % 2 if super_pod else 0)
    found, reasons = _candidates(spec, request, devices, context)
    picked = _by_module(found, wanted) if super_pod else _by_network(found, wanted)
    if len(picked) == wanted:
        return FitResult.fit(tuple(picked), total)
    if found:
        reasons[Reason.ALLOCATED_CARDS_INSUFFICIENT_REQUEST] = len(found)
    return FitResult.fail(reasons, total)


def ascend_score(
    chip: ChipConfig,
    devices: Sequence[DeviceUsage],
    containers: Sequence[Sequence[ContainerDevice]],
) -> float:
    """HAMi's Ascend node score for the pod's chosen NPUs (module docstring); 0 for non-910
    chips and when any chosen NPU has no NetworkID."""
    if not chip.common_word.startswith(ASCEND910_PREFIX):
        return 0.0
    networks = {d.id: network_of(d.custominfo) for d in devices}
    score = 0.0
    for shares in containers:
        if not shares:
            continue
        counts: dict[int, int] = {}
        for share in shares:
            nid = networks.get(share.uuid)
            if nid is None:
                return 0.0
            counts[nid] = counts.get(nid, 0) + 1
        score += max(counts.values()) / len(shares)
    return score * NETWORK_WEIGHT
