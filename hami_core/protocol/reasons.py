"""Fit-failure reasons and their summary text (`"3/8 CardInsufficientMemory, ..."`).

HAMi's `GenReason` writes each counted reason as `<count>/<total devices> <Reason>`, sorts the
pieces as plain strings (so `10/...` sorts before `2/...`) and joins them with `", "`; the
scheduler reports that text per node and reads it back with `ParseReason`.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from typing import Final, TypeVar

__all__ = ["Reason", "format_reasons", "parse_reasons"]


class Reason(enum.StrEnum):
    """Every reason name HAMi reports (pkg/device/common/common.go)."""

    CARD_TYPE_MISMATCH = "CardTypeMismatch"
    CARD_UUID_MISMATCH = "CardUuidMismatch"
    CARD_TIME_SLICING_EXHAUSTED = "CardTimeSlicingExhausted"
    CARD_COMPUTE_UNITS_EXHAUSTED = "CardComputeUnitsExhausted"
    CARD_INSUFFICIENT_MEMORY = "CardInsufficientMemory"
    CARD_INSUFFICIENT_CORE = "CardInsufficientCore"
    CARD_NOT_HEALTH = "CardNotHealth"
    CARD_CORDONED = "CardCordoned"
    NUMA_NOT_FIT = "NumaNotFit"
    EXCLUSIVE_DEVICE_ALLOCATE_CONFLICT = "ExclusiveDeviceAllocateConflict"
    CARD_NOT_FOUND_CUSTOM_FILTER_RULE = "CardNotFoundCustomFilterRule"
    CARD_MIG_TOPOLOGY_INFEASIBLE = "CardMigTopologyInfeasible"
    NODE_INSUFFICIENT_DEVICE = "NodeInsufficientDevice"
    ALLOCATED_CARDS_INSUFFICIENT_REQUEST = "AllocatedCardsInsufficientRequest"
    NODE_UNFIT_POD = "NodeUnfitPod"
    NODE_FIT_POD = "NodeFitPod"
    RESOURCE_QUOTA_NOT_FIT = "ResourceQuotaNotFit"
    MODE_NOT_FIT = "ModeNotFit"


_Name = TypeVar("_Name", bound=str)

REASON_SEPARATOR: Final = ", "
# Go's Sscanf("%d/%d %s"): optional sign, digits, "/", digits, spaces, then one word.
_PIECE: Final = re.compile(r"[ \t\r\n]*([+-]?[0-9]+)/[ \t\r\n]*([+-]?[0-9]+)[ \t\r\n]*(\S+)")


def format_reasons(counts: Mapping[_Name, int], total: int) -> str:
    """Write counted reasons as HAMi's `GenReason`: `"<n>/<total> <Reason>"`, sorted, `", "`."""
    return REASON_SEPARATOR.join(
        sorted(f"{count}/{total} {reason}" for reason, count in counts.items())
    )


def parse_reasons(text: str) -> dict[str, tuple[int, int]]:
    """Read a reason summary back into `{reason: (count, total)}`, skipping unreadable pieces."""
    if not isinstance(text, str):
        return {}
    reasons: dict[str, tuple[int, int]] = {}
    for piece in text.split(REASON_SEPARATOR):
        match = _PIECE.match(piece)
        if match is None:
            continue
        count, total, reason = match.groups()
        if len(count) > 20 or len(total) > 20:  # beyond Go's int: Sscanf fails
            continue
        reasons[reason] = (int(count), int(total))
    return reasons
