"""The generic (`trylast`) implementations of the splittable hooks.

These encode HAMi's shared behaviour, driven by each vendor's `VendorSpec`: split and scale a card,
register it as JSON or legacy text, read it back, parse requests, apply admission defaults, fit
with the shared per-device loop, and write the to-allocate/allocated pod annotations. A vendor
overrides any of them by implementing the same hook and returning non-`None`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from hami_core import hookimpl
from hami_core.config import vendor_section
from hami_core.errors import ConfigError
from hami_core.model import (
    ContainerDevice,
    ContainerRequest,
    Device,
    DeviceInfo,
    DeviceUsage,
    FitContext,
    FitResult,
    Mutation,
    NodeView,
    PodView,
    VendorSpec,
)
from hami_core.protocol import (
    decode_node_devices,
    encode_node_devices,
    encode_pod_devices,
)
from hami_core.scheduling.admission import generic_mutation
from hami_core.scheduling.fit import generic_fit
from hami_core.scheduling.requests import generic_request

__all__ = [
    "hami_advertise",
    "hami_allocate",
    "hami_annotate",
    "hami_mutate",
    "hami_pod_annotations",
    "hami_read_node",
    "hami_request",
    "hami_score_node",
    "hami_split",
]


def _number(section: Mapping[str, Any], key: str, default: float) -> float:
    value = section.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{key}: expected a number, got {value!r}")
    return float(value)


@hookimpl(trylast=True)
def hami_split(spec: VendorSpec, device: Device, config: Mapping[str, Any]) -> DeviceInfo:
    """Offer a card as `deviceSplitCount` slots with scaled memory and cores."""
    section = vendor_section(spec, config)
    split = int(_number(section, "deviceSplitCount", spec.default_split))
    mem_scale = _number(section, "deviceMemoryScaling", 1.0)
    core_scale = _number(section, "deviceCoreScaling", 1.0)
    return DeviceInfo(
        id=device.uuid,
        index=device.index,
        count=max(1, split),
        devmem=int(device.memory_mib * mem_scale),
        devcore=int(device.cores * core_scale),
        type=device.model,
        numa=max(0, device.numa),
        mode=device.mode,
        health=device.health,
    )


@hookimpl(trylast=True)
def hami_annotate(
    spec: VendorSpec, devices: Sequence[DeviceInfo], config: Mapping[str, Any]
) -> dict[str, str]:
    """Register the cards under the spec's register key, in the spec's format."""
    key = spec.annotations.node_register
    if spec.register_format not in ("json", "legacy") or key is None:
        return {}
    legacy = spec.register_format == "legacy"
    if legacy and not devices:
        return {key: ":"}  # the legacy text has no empty form; HAMi decodes ":" as no devices
    return {key: encode_node_devices(devices, legacy=legacy)}


@hookimpl(trylast=True)
def hami_advertise(spec: VendorSpec, resource: str, device: DeviceInfo) -> int:
    """One replica per split slot."""
    return device.count


@hookimpl(trylast=True)
def hami_read_node(spec: VendorSpec, node: NodeView, config: Mapping[str, Any]) -> list[DeviceInfo]:
    """Decode the spec's register annotation; a node without it has none of these cards."""
    key = spec.annotations.node_register
    if spec.register_format not in ("json", "legacy") or key is None:
        return []
    value = node.annotations.get(key)
    if value is None:
        return []
    return decode_node_devices(value)


@hookimpl(trylast=True)
def hami_request(
    spec: VendorSpec,
    container: Mapping[str, Any],
    index: int,
    init: bool,
    pod: PodView,
    config: Mapping[str, Any],
) -> ContainerRequest:
    """Read the spec's resource names with HAMi's defaults and unit rules."""
    return generic_request(spec, container, index, init, vendor_section(spec, config))


@hookimpl(trylast=True)
def hami_mutate(
    spec: VendorSpec,
    container: Mapping[str, Any],
    pod: Mapping[str, Any],
    config: Mapping[str, Any],
) -> Mutation:
    """Default count and exclusive cores as HAMi's webhook does."""
    return generic_mutation(spec, container, pod, vendor_section(spec, config))


@hookimpl(trylast=True)
def hami_allocate(
    spec: VendorSpec,
    request: ContainerRequest,
    devices: Sequence[DeviceUsage],
    context: FitContext,
) -> FitResult:
    """HAMi's shared per-device fit loop."""
    return generic_fit(spec, request, devices, context)


@hookimpl(trylast=True)
def hami_pod_annotations(
    spec: VendorSpec,
    containers: Sequence[Sequence[ContainerDevice]],
    context: FitContext,
) -> dict[str, str]:
    """Write the decision under the spec's to-allocate and allocated keys."""
    value = encode_pod_devices(containers)
    return {key: value for key in spec.annotations.decision_keys()}


@hookimpl(trylast=True)
def hami_score_node(
    spec: VendorSpec,
    devices: Sequence[DeviceUsage],
    containers: Sequence[Sequence[ContainerDevice]],
    context: FitContext,
) -> float:
    """No vendor-specific node preference."""
    return 0.0
