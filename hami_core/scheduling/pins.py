"""What a pod and a node pin or exclude: card types, UUIDs, mode, NUMA binding, cordons.

All keys come from the vendor's `VendorSpec`: `annotations.use_type` / `nouse_type` (comma
lists, case-insensitive substring of the card type), `annotations.use_uuid` / `nouse_uuid`
(comma lists, exact UUIDs; a UUID in both lists is excluded), plus two keys `AnnotationKeys`
does not carry yet and which are derived from the vendor's count resource domain:
`<domain>/numa-bind` (Go `ParseBool` true → one container's cards on one NUMA node) and
`<domain>/vgpu-mode` (the card's mode must be a substring of it). For NVIDIA these are HAMi's
`nvidia.com/numa-bind` and `nvidia.com/vgpu-mode`. The node annotation `hami.io/device-cordon`
lists UUIDs that take no new work.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from hami_core.model import DeviceUsage, NodeView, PodView, VendorSpec
from hami_core.protocol.keys import DEVICE_CORDON

__all__ = [
    "CORDON_KEY",
    "Pins",
    "cordoned",
    "mode_key",
    "numa_bind_key",
    "parse_bool",
    "pod_pins",
]

CORDON_KEY = DEVICE_CORDON
"""Node annotation: comma list of card UUIDs excluded from new allocations."""

_GO_TRUE = frozenset({"1", "t", "T", "TRUE", "true", "True"})


def parse_bool(value: str | None) -> bool:
    """Go `strconv.ParseBool` truth: `1,t,T,TRUE,true,True` are true, anything else false."""
    return value is not None and value.strip() in _GO_TRUE


def _items(value: str | None) -> tuple[str, ...]:
    return tuple(p.strip() for p in (value or "").split(",") if p.strip())


def numa_bind_key(spec: VendorSpec) -> str | None:
    """The pod annotation asking for one NUMA node per container (`nvidia.com/numa-bind`)."""
    return spec.annotations.numa_bind


def mode_key(spec: VendorSpec) -> str | None:
    """The pod annotation restricting card modes (`nvidia.com/vgpu-mode`)."""
    return spec.annotations.mode


@dataclass(frozen=True, slots=True)
class Pins:
    """A pod's selection constraints for one vendor, parsed once."""

    use_types: tuple[str, ...] = ()
    nouse_types: tuple[str, ...] = ()
    use_uuids: frozenset[str] = frozenset()
    nouse_uuids: frozenset[str] = frozenset()
    mode: str | None = None
    numa_bind: bool = False

    def type_ok(self, device: DeviceUsage) -> bool:
        """Type pins and the mode pin accept this card."""
        if self.use_types or self.nouse_types:
            kind = device.type.lower()
            if self.use_types and not any(t in kind for t in self.use_types):
                return False
            if any(t in kind for t in self.nouse_types):
                return False
        return self.mode is None or device.mode in self.mode

    def uuid_ok(self, uuid: str) -> bool:
        """UUID pins accept this card (`nouse` wins over `use`)."""
        if self.use_uuids and uuid not in self.use_uuids:
            return False
        return uuid not in self.nouse_uuids


_NO_PINS = Pins()
_NONE: frozenset[str] = frozenset()


def pod_pins(spec: VendorSpec, pod: PodView) -> Pins:
    """The pins `pod` sets for `spec`'s cards (blank values pin nothing)."""
    annotations = pod.annotations
    if not annotations:
        return _NO_PINS
    keys = spec.annotations
    values = [
        annotations.get(key) if key else None
        for key in (
            keys.use_type,
            keys.nouse_type,
            keys.use_uuid,
            keys.nouse_uuid,
            mode_key(spec),
            numa_bind_key(spec),
        )
    ]
    if not any(values):
        return _NO_PINS
    values = [v if isinstance(v, str) else None for v in values]
    use_type, nouse_type, use_uuid, nouse_uuid, mode, numa = values
    return Pins(
        use_types=tuple(t.lower() for t in _items(use_type)),
        nouse_types=tuple(t.lower() for t in _items(nouse_type)),
        use_uuids=frozenset(_items(use_uuid)),
        nouse_uuids=frozenset(_items(nouse_uuid)),
        mode=mode if mode is not None and mode.strip() else None,
        numa_bind=parse_bool(numa),
    )


def cordoned(node: NodeView | Mapping[str, str]) -> frozenset[str]:
    """The card UUIDs the node's `hami.io/device-cordon` annotation excludes."""
    annotations = node.annotations if isinstance(node, NodeView) else node
    value = annotations.get(CORDON_KEY)
    return frozenset(_items(value)) if value and isinstance(value, str) else _NONE
