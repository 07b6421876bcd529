"""hami hooks for MetaX in whole-card mode: only where it differs from hami's generic rules.

Cards are read from node capacity, a memory or core share beside whole cards is refused, nodes
are scored from MetaX's topology annotations, discovery reads `mx-smi`, and containers get
`/dev/mxcd` plus their cards' DRM nodes. All containers of a pod share one card
(`spec.one_device_per_pod`, enforced by the generic fit with the pod's earlier choices).
"""

from __future__ import annotations

import dataclasses
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
    DeviceUsage,
    FitContext,
    NodeView,
    PodView,
    VendorSpec,
    VendorUnavailable,
)
from hami_core.protocol.keys import NODE_SCHEDULER_POLICY
from hami_core.scheduling.requests import generic_request
from hami_metax import binding
from hami_metax.discovery import devices_from_mxsmi
from hami_metax.mount import card_nodes, control_devices, runtime_spec
from hami_metax.parse_mxsmi import MxsmiParseError, parse_mxsmi
from hami_metax.rules import cards_from_capacity, refuse_shares, topology_score
from hami_metax.spec import COMMON_WORD, KEY, SPEC


@hookimpl
def hami_vendor() -> VendorSpec:
    """The MetaX whole-card spec."""
    return SPEC


@hookimpl
def hami_discover(spec: VendorSpec, config: Mapping[str, Any]) -> list[Device] | None:
    """The node's cards from `mx-smi`, with DRM nodes and NUMA from sysfs."""
    if spec.key != KEY:
        return None
    try:
        report = parse_mxsmi(binding.run_mxsmi())
    except (binding.BindingError, MxsmiParseError) as exc:
        raise VendorUnavailable(spec.key, str(exc)) from exc
    return devices_from_mxsmi(report, spec.key, dri_of=binding.dri_nodes, numa_of=binding.numa_node)


@hookimpl
def hami_split(spec: VendorSpec, device: Device, config: Mapping[str, Any]) -> DeviceInfo | None:
    """One slot per card (whole cards), typed `Metax-GPU` as HAMi's node model."""
    if spec.key != KEY:
        return None
    info = generic.hami_split(spec, device, config)
    return dataclasses.replace(info, type=COMMON_WORD, count=1)


@hookimpl
def hami_read_node(
    spec: VendorSpec, node: NodeView, config: Mapping[str, Any]
) -> list[DeviceInfo] | None:
    """Cards synthesised from `status.capacity["metax-tech.com/gpu"]`."""
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
    """Whole cards; a memory or core share beside `metax-tech.com/gpu` is a `RequestError`."""
    if spec.key != KEY:
        return None
    section = vendor_section(spec, config)
    refuse_shares(spec, container, section)
    return generic_request(spec, container, index, init, section)


@hookimpl
def hami_score_node(
    spec: VendorSpec,
    devices: Sequence[DeviceUsage],
    containers: Sequence[Sequence[ContainerDevice]],
    context: FitContext,
) -> float | None:
    """HAMi's topology term from `metax-tech.com/gpu.topology.{losses,scores}`."""
    if spec.key != KEY:
        return None
    policy = context.pod.annotations.get(NODE_SCHEDULER_POLICY) or "binpack"
    return topology_score(context.node.annotations, policy.strip(), containers)


@hookimpl
def hami_mount(allocation: ContainerAllocation) -> ContainerRuntimeSpec | None:
    """`/dev/mxcd` (or the configured control nodes) and the assigned cards' DRM nodes."""
    if allocation.vendor != KEY:
        return None
    section = vendor_section(SPEC, allocation.config)
    return runtime_spec(card_nodes(allocation), control_devices(section))
