"""hami hooks for Hygon DCUs (the `hami.vendors` entry point).

Only three hooks differ from hami's generic rules: the spec, discovery and mounting. Split
(4 slots per card), the legacy `hami.io/node-dcu-register` annotation, requests (whole cards when
more than one DCU is asked for, cores default 100), fit (type and UUID pins) and the
`hami.io/dcu-devices-*` decision come from the generic hooks, driven by `SPEC`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hami_core import hookimpl
from hami_core.config import vendor_section
from hami_core.model import ContainerAllocation, ContainerRuntimeSpec, Device, VendorSpec
from hami_hygon import binding
from hami_hygon.discovery import devices_from_probe
from hami_hygon.mount import container_spec
from hami_hygon.settings import HygonSettings
from hami_hygon.spec import SPEC

__all__ = ["hami_discover", "hami_mount", "hami_vendor"]


@hookimpl
def hami_vendor() -> VendorSpec:
    """The Hygon DCU vendor."""
    return SPEC


@hookimpl
def hami_discover(spec: VendorSpec, config: Mapping[str, Any]) -> list[Device] | None:
    """The node's DCUs from hy-smi/rocm-smi and the DRM nodes; `VendorUnavailable` if absent."""
    if spec.key != SPEC.key:
        return None
    settings = HygonSettings.from_section(vendor_section(spec, config))
    return devices_from_probe(binding.probe(settings), settings.compute_units)


@hookimpl
def hami_mount(allocation: ContainerAllocation) -> ContainerRuntimeSpec | None:
    """Device nodes for the container's DCUs, and the vDCU config for a slice of one (only
    described, never written, in a dry run)."""
    if allocation.vendor != SPEC.key:
        return None
    settings = HygonSettings.from_section(vendor_section(SPEC, allocation.config))
    store = binding.VdevFiles(settings.vdev_dir, settings.exporter_vdev_dir)
    return container_spec(allocation, settings, store)
