"""From what the node shows (cnmon's table and /dev) to hami `Device`s — pure.

`hami_cambricon.binding` gathers a `HostProbe`; `devices_from_probe` gives one `Device` per MLU:

- uuid `cambricon-mlu-<slot>`: cnmon's table shows no UUID, and the scheduler only ever names
  cards `<node>-cambricon-mlu-<slot>` (it builds them from node capacity), so the slot is the
  identity both sides share;
- model: cnmon's name (`MLU370-X4`); memory: the card's total MiB;
- paths: the card's own nodes that exist (`/dev/cambricon_dev<N>`, `/dev/cambricon_ipcm<N>`,
  `/dev/cambr-msgq:<N>`, `/dev/cambr-rpc:<N>`, `/dev/cmsg_ctrl<N>`, `/dev/commu<N>`);
  node-wide nodes (`/dev/cambricon_ctl`, `/dev/cambricon_gdr`) go to `extras["control_nodes"]`;
- health: the card's `/dev/cambricon_dev<N>` exists and its compute mode is not prohibited.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from hami_cambricon.parse_cnmon import CnmonCard, parse_cnmon
from hami_cambricon.spec import VENDOR_KEY
from hami_core.model import Device

__all__ = [
    "CARD_NODE_PATTERNS",
    "CONTROL_NODES",
    "HostProbe",
    "card_nodes",
    "device_uuid",
    "devices_from_probe",
    "slot_of",
]

CONTROL_NODES = ("/dev/cambricon_ctl", "/dev/cambricon_gdr")
"""Node-wide device nodes every MLU container gets (those the node has)."""

CARD_NODE_PATTERNS = (
    "/dev/cambr-msgq:{n}",
    "/dev/cambr-rpc:{n}",
    "/dev/cmsg_ctrl{n}",
    "/dev/commu{n}",
    "/dev/cambricon_ipcm{n}",
    "/dev/cambricon_dev{n}",
)
"""One card's device nodes, in the order Cambricon's plugin lists them (the card node last)."""

_SLOT = re.compile(r"(?:^|-)cambricon-mlu-(\d+)$")


@dataclass(frozen=True, slots=True)
class HostProbe:
    """Everything discovery reads from a node, as `hami_cambricon.binding.probe` gathers it."""

    tool: str
    table: str
    dev_nodes: frozenset[str] = frozenset()
    """The Cambricon device nodes that exist, as `/dev/...` paths."""


def device_uuid(slot: int) -> str:
    """The identity hami gives the MLU in `slot` on the node side."""
    return f"cambricon-mlu-{slot}"


def slot_of(uuid: str) -> int | None:
    """The slot an MLU ID names: `cambricon-mlu-2` and the scheduler's `node-a-cambricon-mlu-2`
    both give 2; any other ID gives None."""
    match = _SLOT.search(uuid)
    return int(match.group(1)) if match else None


def card_nodes(slot: int, present: Iterable[str]) -> tuple[str, ...]:
    """The card's device nodes that exist on the node, in Cambricon's order."""
    have = set(present)
    return tuple(p.format(n=slot) for p in CARD_NODE_PATTERNS if p.format(n=slot) in have)


def _healthy(card: CnmonCard, paths: tuple[str, ...]) -> bool:
    prohibited = card.compute_mode is not None and "prohibit" in card.compute_mode.lower()
    return f"/dev/cambricon_dev{card.index}" in paths and not prohibited


def devices_from_probe(probe: HostProbe) -> list[Device]:
    """The node's MLUs as hami `Device`s (module docstring), ordered by slot.

    Raises `CnmonParseError` when cnmon's output cannot be read.
    """
    report = parse_cnmon(probe.table)
    control = [p for p in CONTROL_NODES if p in probe.dev_nodes]
    devices: list[Device] = []
    for card in sorted(report.cards, key=lambda c: c.index):
        paths = card_nodes(card.index, probe.dev_nodes)
        extras: dict[str, object] = {"control_nodes": control}
        for key, value in (
            ("bus_id", card.bus_id),
            ("firmware", card.firmware),
            ("driver", card.driver or report.driver),
            ("compute_mode", card.compute_mode),
            ("util_percent", card.util_percent),
            ("memory_used_mib", card.memory_used_mib),
        ):
            if value is not None:
                extras[key] = value
        devices.append(
            Device(
                vendor=VENDOR_KEY,
                uuid=device_uuid(card.index),
                index=card.index,
                model=card.model,
                memory_mib=card.memory_total_mib,
                cores=100,
                health=_healthy(card, paths),
                paths=paths,
                extras=extras,
            )
        )
    return devices
