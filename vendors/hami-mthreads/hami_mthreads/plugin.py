"""hami hooks for Moore Threads: only where it differs from hami's generic rules.

sGPU memory takes only the listed values, more than one card (or no memory) means whole cards,
cards are read from node capacity (which `hami_advertise` derives as the MT device plugin
advertises it), the decision also carries the MT plugin's annotations, and
containers see their cards through the mthreads runtime. All containers of a pod share one card
(`spec.one_device_per_pod`, enforced by the generic fit with the pod's earlier choices).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping, Sequence
from typing import Any

from hami_core import generic, hookimpl
from hami_core.config import vendor_section
from hami_core.model import (
    ContainerAllocation,
    ContainerDevice,
    ContainerRequest,
    ContainerRuntimeSpec,
    Device,
    DeviceInfo,
    FitContext,
    Mutation,
    NodeView,
    PodView,
    VendorSpec,
    VendorUnavailable,
)
from hami_core.scheduling.admission import generic_mutation
from hami_core.scheduling.requests import generic_request, resource_value
from hami_mthreads import binding
from hami_mthreads.discovery import devices_from_gmi, devices_from_mtml, one_line
from hami_mthreads.mount import card_indexes, runtime_spec
from hami_mthreads.parse_gmi import GmiParseError, parse_gmi
from hami_mthreads.rules import (
    advertised_units,
    cards_from_capacity,
    mthreads_mutation,
    plugin_annotations,
    shares_removed,
    whole_cards,
)
from hami_mthreads.spec import COMMON_WORD, KEY, SPEC


@hookimpl
def hami_vendor() -> VendorSpec:
    """The Moore Threads spec."""
    return SPEC


@hookimpl
def hami_discover(spec: VendorSpec, config: Mapping[str, Any]) -> list[Device] | None:
    """The node's cards through MTML, else through `mthreads-gmi`."""
    if spec.key != KEY:
        return None
    try:
        return devices_from_mtml(binding.read_mtml(), spec.key)
    except binding.BindingError as mtml_error:
        try:
            return devices_from_gmi(parse_gmi(binding.run_gmi()), spec.key)
        except (binding.BindingError, GmiParseError) as gmi_error:
            why = one_line(f"{mtml_error}; {gmi_error}")
            raise VendorUnavailable(spec.key, why) from gmi_error


@hookimpl
def hami_split(spec: VendorSpec, device: Device, config: Mapping[str, Any]) -> DeviceInfo | None:
    """The generic split (100 slots, 16 core groups) typed `Mthreads` as HAMi's node model."""
    if spec.key != KEY:
        return None
    info = generic.hami_split(spec, device, config)
    return dataclasses.replace(info, type=COMMON_WORD)


@hookimpl
def hami_advertise(spec: VendorSpec, resource: str, device: DeviceInfo) -> int | None:
    """What the MT device plugin advertises per card: 16 `sgpu-core`, memory/512 `sgpu-memory`.

    hami's device plugin serves no Moore Threads resource (`spec.advertised` is empty); this
    answers for the MT plugin's names so node capacity can be derived as the kubelet sees it.
    """
    if spec.key != KEY:
        return None
    return advertised_units(spec, resource, device)


@hookimpl
def hami_read_node(
    spec: VendorSpec, node: NodeView, config: Mapping[str, Any]
) -> list[DeviceInfo] | None:
    """Cards synthesised from `status.capacity`: `<node>-mthreads-<i>` per 16 core groups."""
    if spec.key != KEY:
        return None
    return cards_from_capacity(spec, node.name, node.capacity)


@hookimpl
def hami_request(
    spec: VendorSpec,
    container: Mapping[str, Any],
    index: int,
    init: bool,
    pod: PodView,
    config: Mapping[str, Any],
) -> ContainerRequest | None:
    """Whole cards for more than one card or no memory; else 512 MiB units from the list."""
    if spec.key != KEY:
        return None
    section = vendor_section(spec, config)
    counted = generic_request(spec, shares_removed(spec, container), index, init, section)
    if counted.count == 0:
        return counted
    if counted.count > 1 or resource_value(spec, container, spec.resources.memory) is None:
        return whole_cards(spec, counted)
    return generic_request(spec, container, index, init, section)


@hookimpl
def hami_mutate(
    spec: VendorSpec,
    container: Mapping[str, Any],
    pod: Mapping[str, Any],
    config: Mapping[str, Any],
) -> Mutation | None:
    """HAMi's Moore Threads webhook rules (refusals, whole cards, `request-gpu-num`)."""
    if spec.key != KEY:
        return None
    generic_mutation(spec, container, pod, vendor_section(spec, config))  # refuses bad values
    name = str(container.get("name") or "")
    count = resource_value(spec, container, spec.resources.count)
    memory = resource_value(spec, container, spec.resources.memory)
    return mthreads_mutation(spec, name, count, memory)


@hookimpl
def hami_pod_annotations(
    spec: VendorSpec,
    containers: Sequence[Sequence[ContainerDevice]],
    context: FitContext,
) -> dict[str, str] | None:
    """The allocated key, plus `gpu-index`, `predicate-node` and `predicate-time`."""
    if spec.key != KEY:
        return None
    out = generic.hami_pod_annotations(spec, containers, context)
    out.update(plugin_annotations(containers, context.node.name, time.time_ns()))
    return out


@hookimpl
def hami_mount(allocation: ContainerAllocation) -> ContainerRuntimeSpec | None:
    """`MTHREADS_VISIBLE_DEVICES` with the assigned card indexes."""
    if allocation.vendor != KEY:
        return None
    return runtime_spec(card_indexes(allocation))
