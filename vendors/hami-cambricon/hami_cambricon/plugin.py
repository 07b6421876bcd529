"""hami hooks for Cambricon MLUs (the `hami.vendors` entry point).

Beyond the spec, discovery and mounting, three hooks differ from hami's generic rules: the node
is read from its capacity (no register annotation), each card is advertised to kubelet as 100
`vcore` and memory/256 `vmemory` units, and the pod decision carries the dynamic-sMLU
annotations. Requests (256 MiB units, cores default 100, whole cards beyond one MLU), fit (UUID
pins on the scheduler's `<node>-cambricon-mlu-<i>` IDs) and split come from the generic hooks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from hami_cambricon import binding
from hami_cambricon.discovery import devices_from_probe
from hami_cambricon.dsmlu import dsmlu_annotations
from hami_cambricon.mount import container_spec, described_cnmon
from hami_cambricon.node import advertised_units, capacity_devices
from hami_cambricon.settings import CambriconSettings
from hami_cambricon.spec import SPEC
from hami_core import generic, hookimpl
from hami_core.config import vendor_section
from hami_core.model import (
    ContainerAllocation,
    ContainerDevice,
    ContainerRuntimeSpec,
    Device,
    DeviceInfo,
    FitContext,
    NodeView,
    VendorSpec,
)

__all__ = [
    "hami_advertise",
    "hami_discover",
    "hami_mount",
    "hami_pod_annotations",
    "hami_read_node",
    "hami_vendor",
]


@hookimpl
def hami_vendor() -> VendorSpec:
    """The Cambricon MLU vendor."""
    return SPEC


@hookimpl
def hami_discover(spec: VendorSpec, config: Mapping[str, Any]) -> list[Device] | None:
    """The node's MLUs from cnmon and /dev; `VendorUnavailable` when cnmon or the driver is
    absent."""
    if spec.key != SPEC.key:
        return None
    settings = CambriconSettings.from_section(vendor_section(spec, config))
    return devices_from_probe(binding.probe(settings))


@hookimpl
def hami_read_node(
    spec: VendorSpec, node: NodeView, config: Mapping[str, Any]
) -> list[DeviceInfo] | None:
    """The node's MLUs as HAMi's scheduler sees them: synthesised from node capacity."""
    if spec.key != SPEC.key:
        return None
    return capacity_devices(
        node.name,
        node.capacity,
        cores_resource=str(spec.resources.cores),
        memory_resource=str(spec.resources.memory),
    )


@hookimpl
def hami_advertise(spec: VendorSpec, resource: str, device: DeviceInfo) -> int | None:
    """100 `vcore` units and one `vmemory` unit per 256 MiB for each card."""
    if spec.key != SPEC.key or resource not in (spec.resources.cores, spec.resources.memory):
        return None
    return advertised_units(resource, device, cores_resource=str(spec.resources.cores))


@hookimpl
def hami_pod_annotations(
    spec: VendorSpec,
    containers: Sequence[Sequence[ContainerDevice]],
    context: FitContext,
) -> dict[str, str] | None:
    """HAMi's decision keys plus the dynamic-sMLU profile and both spellings of "assigned"."""
    if spec.key != SPEC.key:
        return None
    return {
        **generic.hami_pod_annotations(spec=spec, containers=containers, context=context),
        **dsmlu_annotations(containers),
    }


@hookimpl
def hami_mount(allocation: ContainerAllocation) -> ContainerRuntimeSpec | None:
    """Device nodes (or `CAMBRICON_VISIBLE_DEVICES` in runtime mode) for the container's MLUs;
    a dry run describes them without reading the host (a slice needs no sMLU instance)."""
    if allocation.vendor != SPEC.key:
        return None
    settings = CambriconSettings.from_section(vendor_section(SPEC, allocation.config))
    cnmon = None
    if settings.mount_cnmon:
        cnmon = described_cnmon(settings) if allocation.dry_run else binding.find_cnmon(settings)
    return container_spec(allocation, settings, cnmon)
