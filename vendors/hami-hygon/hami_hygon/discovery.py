"""From what the node shows (tool output, DRM nodes, /dev/kfd) to hami `Device`s — pure.

`hami_hygon.binding` gathers a `HostProbe`; `devices_from_probe` turns it into one `Device` per
DCU the way HAMi's DCU plugin names them:

- uuid `DCU-<Serial Number>` (the `Unique ID` when a card reports no serial);
- model `DCU-<name>` where the name comes from the PCI device ID table, else the tool's
  `Card Series` (a leading `DCU` dropped, spaces and the legacy format's `,`/`:` as `_`);
- memory: total VRAM in MiB; a card reporting 0 MiB is left out (as the plugin does);
- paths: the card's `/dev/dri/card*` and `/dev/dri/renderD*`, matched by PCI bus ID, else by
  position among the Hygon DRM nodes sorted by number;
- health: `/dev/kfd` opens (the plugin checks nothing per card) and the default table lists it;
- mode `hami`, the literal the DCU plugin registers.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from hami_core.model import Device
from hami_hygon.catalog import compute_units_of, model_of_device_id
from hami_hygon.errors import DiscoveryError
from hami_hygon.parse_smi import SmiCard, SmiRow, parse_smi_json, parse_smi_table
from hami_hygon.spec import VENDOR_KEY

__all__ = [
    "DrmNode",
    "HostProbe",
    "assign_drm_nodes",
    "card_model",
    "card_uuid",
    "devices_from_probe",
    "normalize_bus_id",
]

REGISTER_MODE = "hami"
"""The mode string the DCU device plugin writes into the register annotation."""


@dataclass(frozen=True, slots=True)
class DrmNode:
    """A Hygon DRM node: `card<N>` or `renderD<N>`, with its PCI address and NUMA node."""

    name: str
    pci_bus_id: str | None = None
    numa: int | None = None

    @property
    def kind(self) -> str:
        """`card` or `render`."""
        return "render" if self.name.startswith("renderD") else "card"

    @property
    def number(self) -> int:
        """The node's number (`card3` → 3, `renderD130` → 130)."""
        digits = re.sub(r"\D", "", self.name)
        return int(digits) if digits else -1

    @property
    def path(self) -> str:
        """The node's path on the host."""
        return f"/dev/dri/{self.name}"


@dataclass(frozen=True, slots=True)
class HostProbe:
    """Everything discovery reads from a node, as `hami_hygon.binding.probe` gathers it."""

    tool: str
    table: str
    details: str
    drm: tuple[DrmNode, ...] = ()
    control_nodes: tuple[str, ...] = ()
    kfd_ok: bool = False


def normalize_bus_id(value: str | None) -> str | None:
    """A PCI address as `0000:3d:00.0` (lower case, domain added), or None."""
    if not value:
        return None
    text = value.strip().lower()
    if re.fullmatch(r"[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]", text):
        text = "0000:" + text
    return text if re.fullmatch(r"[0-9a-f]{4,8}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]", text) else None


def card_uuid(card: SmiCard) -> str:
    """HAMi's UUID for a DCU: `DCU-<serial>` (else `DCU-<unique id>`)."""
    ident = card.serial or card.unique_id
    if not ident:
        raise DiscoveryError(f"card{card.index}: the tool reports neither a serial nor a unique ID")
    return "DCU-" + re.sub(r"[\s,:;]+", "_", ident)


def card_model(card: SmiCard) -> str:
    """HAMi's type string for a DCU: `DCU-<model>` (device ID table, else `Card Series`)."""
    name = model_of_device_id(card.device_id) if card.device_id else None
    if name is None and card.series:
        name = re.sub(r"^(?:hygon\s+)?dcu[\s_-]*", "", card.series.strip(), flags=re.IGNORECASE)
    if not name:
        raise DiscoveryError(f"card{card.index}: the tool reports neither a device ID nor a series")
    return "DCU-" + re.sub(r"[\s,:;]+", "_", name.strip())


def assign_drm_nodes(
    cards: Sequence[SmiCard], nodes: Sequence[DrmNode]
) -> dict[int, tuple[DrmNode, ...]]:
    """Each card's DRM nodes (card node first, then render node), keyed by card index.

    A card with a PCI bus ID gets the nodes at that address. The other cards, in index order,
    get the remaining Hygon card and render nodes in order of their numbers — the DCU device
    plugin's rule (the i-th card gets the i-th nodes) when no card reports an address.
    """
    by_bus: dict[str, list[DrmNode]] = {}
    for node in nodes:
        bus = normalize_bus_id(node.pci_bus_id)
        if bus:
            by_bus.setdefault(bus, []).append(node)
    out: dict[int, tuple[DrmNode, ...]] = {}
    claimed: set[str] = set()
    unmatched: list[SmiCard] = []
    for card in sorted(cards, key=lambda c: c.index):
        bus = normalize_bus_id(card.pci_bus_id)
        found = by_bus.get(bus, []) if bus else []
        if found:
            out[card.index] = _ordered(found)
            claimed.update(n.name for n in found)
        else:
            unmatched.append(card)
    free = [n for n in nodes if n.name not in claimed]
    kinds = [
        sorted(nodes_of_kind(free, kind), key=lambda n: n.number) for kind in ("card", "render")
    ]
    for position, card in enumerate(unmatched):
        out[card.index] = _ordered([k[position] for k in kinds if position < len(k)])
    return out


def _ordered(nodes: Sequence[DrmNode]) -> tuple[DrmNode, ...]:
    return tuple(sorted(nodes, key=lambda n: (n.kind != "card", n.number)))


def nodes_of_kind(nodes: Sequence[DrmNode], kind: str) -> list[DrmNode]:
    """The nodes of one kind (`card` or `render`)."""
    return [n for n in nodes if n.kind == kind]


def devices_from_probe(
    probe: HostProbe, compute_units: Mapping[str, int] | None = None
) -> list[Device]:
    """The node's DCUs as hami `Device`s (module docstring), ordered by card index.

    Raises `SmiParseError` for unreadable tool output and `DiscoveryError` for a card the JSON
    form does not describe.
    """
    rows = {row.index: row for row in parse_smi_table(probe.table)}
    cards = parse_smi_json(probe.details)
    described = {c.index for c in cards}
    missing = sorted(set(rows) - described)
    if missing:
        raise DiscoveryError(
            f"{probe.tool} lists DCU {', '.join(map(str, missing))} but its --json output "
            "does not describe them"
        )
    nodes = assign_drm_nodes(cards, probe.drm)
    devices: list[Device] = []
    for card in cards:
        if not card.memory_mib:
            continue
        row = rows.get(card.index)
        model = card_model(card)
        drm = nodes.get(card.index, ())
        numa = next((n.numa for n in drm if n.numa is not None and n.numa >= 0), 0)
        devices.append(
            Device(
                vendor=VENDOR_KEY,
                uuid=card_uuid(card),
                index=card.index,
                model=model,
                memory_mib=card.memory_mib,
                cores=100,
                numa=numa,
                health=probe.kfd_ok and row is not None,
                mode=REGISTER_MODE,
                paths=tuple(n.path for n in drm),
                extras=_extras(card, row, probe, model, drm, compute_units),
            )
        )
    return devices


def _extras(
    card: SmiCard,
    row: SmiRow | None,
    probe: HostProbe,
    model: str,
    drm: Sequence[DrmNode],
    overrides: Mapping[str, int] | None,
) -> dict[str, object]:
    extras: dict[str, object] = {"control_nodes": list(probe.control_nodes)}
    bus = normalize_bus_id(card.pci_bus_id) or next(
        (b for b in (normalize_bus_id(n.pci_bus_id) for n in drm) if b), None
    )
    if bus:
        extras["pci_bus_id"] = bus
    if card.device_id:
        extras["device_id"] = card.device_id
    units = compute_units_of(model, overrides)
    if units is not None:
        extras["compute_units"] = units
    if card.memory_used_mib is not None:
        extras["memory_used_mib"] = card.memory_used_mib
    if row is not None:
        if row.use_percent is not None:
            extras["use_percent"] = row.use_percent
        if row.mode:
            extras["smi_mode"] = row.mode
    return extras
