"""The dynamic-sMLU protocol between the scheduler and the node's plugin — pure.

After choosing a node, HAMi writes on the pod, besides its usual decision keys:

- `CAMBRICON_DSMLU_PROFILE = "<slot>_<vcore>_<vmemory units>"` for the first card of the first
  container that has cards (units = MiB / 256, rounded down), e.g. `0_10_20`;
- `CAMBRICON_DSMLU_ASSIGNED = "false"`, which Cambricon's plugin spells
  `CAMBRICON_DSMLU_ASSIGHED` — hami writes both so either release of the plugin finds the pod.

Cambricon's plugin picks the one pending pod on its node with that flag `"false"`, creates an
sMLU instance from the profile, sets the flag `"true"`, records
`CAMBRICON_DSMLU_PROFILE_INSTANCE = "<profileID>_<instanceHandle>_<slot>_<instanceID>"` and
removes the node lock.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from hami_cambricon.discovery import slot_of
from hami_cambricon.spec import DSMLU_ASSIGNED_KEYS, DSMLU_PROFILE_KEY, MEMORY_UNIT_MIB
from hami_core.model import ContainerDevice

__all__ = [
    "SmluInstance",
    "dsmlu_annotations",
    "instance_node",
    "parse_profile_instance",
    "pending_instance_node",
    "profile_value",
]


def profile_value(containers: Sequence[Sequence[ContainerDevice]]) -> str | None:
    """`<slot>_<vcore>_<vmemory units>` of the pod's first assigned card, None when it has none.

    A card whose ID names no slot (not `...-cambricon-mlu-<n>`) is given slot 0, as HAMi's
    index of a card it did not synthesise would be.
    """
    for devices in containers:
        if devices:
            first = devices[0]
            slot = slot_of(first.uuid)
            slot = 0 if slot is None else slot
            return f"{slot}_{first.usedcores}_{first.usedmem // MEMORY_UNIT_MIB}"
    return None


def dsmlu_annotations(containers: Sequence[Sequence[ContainerDevice]]) -> dict[str, str]:
    """The dynamic-sMLU pod annotations for this decision (empty when no card was assigned)."""
    profile = profile_value(containers)
    if profile is None:
        return {}
    out = {DSMLU_PROFILE_KEY: profile}
    for key in DSMLU_ASSIGNED_KEYS:
        out[key] = "false"
    return out


@dataclass(frozen=True, slots=True)
class SmluInstance:
    """An sMLU instance Cambricon's plugin created for a pod."""

    profile_id: int
    handle: int
    slot: int
    instance_id: int

    @property
    def node(self) -> str:
        """The instance's device node."""
        return instance_node(self.slot, str(self.instance_id))


def instance_node(slot: int, instance: str) -> str:
    """The device node of sMLU instance `instance` on MLU `slot`."""
    return f"/dev/cambricon-caps/cap_dev{slot}_mi{instance}"


def pending_instance_node(slot: int) -> str:
    """The node of the instance Cambricon's plugin has yet to create on MLU `slot`, its ID not
    known: `/dev/cambricon-caps/cap_dev<slot>_mi*` (what a dry run describes)."""
    return instance_node(slot, "*")


def parse_profile_instance(value: str | None) -> SmluInstance | None:
    """The instance `CAMBRICON_DSMLU_PROFILE_INSTANCE` records, None when absent or malformed."""
    if not value:
        return None
    parts = value.strip().split("_")
    if len(parts) != 4 or not all(p.isdigit() for p in parts):
        return None
    profile, handle, slot, instance = (int(p) for p in parts)
    return SmluInstance(profile, handle, slot, instance)
