"""hami hooks for Iluvatar CoreX: one vendor per chip (MR-V100, MR-V50, BI-V150, BI-V100).

Only the hooks where Iluvatar differs from hami's generic rules: the specs, discovery through
`ixsmi`, the split / request / admission rules read from HAMi's `iluvatars:` list (not a section
named after the vendor key), and built-in device mounting.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from hami_core import generic, hookimpl
from hami_core.model import (
    ContainerAllocation,
    ContainerRequest,
    ContainerRuntimeSpec,
    Device,
    DeviceInfo,
    Mutation,
    PodView,
    VendorSpec,
    VendorUnavailable,
)
from hami_core.scheduling.admission import generic_mutation
from hami_core.scheduling.requests import generic_request, resource_value
from hami_iluvatar import binding
from hami_iluvatar.discovery import devices_for_chip
from hami_iluvatar.mount import cards_of, control_devices, runtime_spec
from hami_iluvatar.parse_ixsmi import IxsmiParseError, parse_ixsmi
from hami_iluvatar.rules import iluvatar_mutation
from hami_iluvatar.spec import SPECS, chip_of, chip_section, configured_models


@hookimpl
def hami_vendor() -> Sequence[VendorSpec]:
    """One spec per Iluvatar chip."""
    return SPECS


@hookimpl
def hami_discover(spec: VendorSpec, config: Mapping[str, Any]) -> list[Device] | None:
    """The node's cards of this chip, read from `ixsmi`."""
    chip = chip_of(spec)
    if chip is None:
        return None
    try:
        report = parse_ixsmi(binding.run_ixsmi())
    except (binding.BindingError, IxsmiParseError) as exc:
        raise VendorUnavailable(spec.key, str(exc)) from exc
    return devices_for_chip(
        report, chip, spec.key, numa_of=binding.numa_node, extra_models=configured_models(config)
    )


@hookimpl
def hami_split(spec: VendorSpec, device: Device, config: Mapping[str, Any]) -> DeviceInfo | None:
    """The generic split with the chip's `iluvatars:` entry; the card type is the chip name."""
    chip = chip_of(spec)
    if chip is None:
        return None
    info = generic.hami_split(spec, device, {spec.key: chip_section(chip, config)})
    return dataclasses.replace(info, type=chip)


@hookimpl
def hami_annotate(
    spec: VendorSpec, devices: Sequence[DeviceInfo], config: Mapping[str, Any]
) -> dict[str, str] | None:
    """The legacy register text; a chip the node lacks is not registered at all (HAMi's legacy
    decoder rejects the empty text)."""
    if chip_of(spec) is None:
        return None
    return generic.hami_annotate(spec, devices, config) if devices else {}


@hookimpl
def hami_request(
    spec: VendorSpec,
    container: Mapping[str, Any],
    index: int,
    init: bool,
    pod: PodView,
    config: Mapping[str, Any],
) -> ContainerRequest | None:
    """HAMi's rules (256 MiB units, all memory by default, whole cards when count > 1)."""
    chip = chip_of(spec)
    if chip is None:
        return None
    return generic_request(spec, container, index, init, chip_section(chip, config))


@hookimpl
def hami_mutate(
    spec: VendorSpec,
    container: Mapping[str, Any],
    pod: Mapping[str, Any],
    config: Mapping[str, Any],
) -> Mutation | None:
    """Count default, `vCore = count * 100` above one card, and `SOL_CONTINER_NAME`."""
    chip = chip_of(spec)
    if chip is None:
        return None
    base = generic_mutation(spec, container, pod, chip_section(chip, config))
    given = base.limits.get(spec.resources.count)
    count = given if given is not None else resource_value(spec, container, spec.resources.count)
    return iluvatar_mutation(spec, container, int(count or 0), base)


@hookimpl
def hami_mount(allocation: ContainerAllocation) -> ContainerRuntimeSpec | None:
    """Device nodes `/dev/iluvatar*` and the control nodes, and `IX_VISIBLE_DEVICES`."""
    spec = next((s for s in SPECS if s.key == allocation.vendor), None)
    if spec is None:
        return None
    section = chip_section(spec.common_word, allocation.config)
    return runtime_spec(cards_of(allocation), allocation.kubelet_ids, control_devices(section))
