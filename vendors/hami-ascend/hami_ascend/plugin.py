"""hami hooks for Huawei Ascend NPUs: one vendor spec per chip of the catalogue.

Every hook checks that the spec (or allocation) is an Ascend chip's and answers `None`
otherwise. Chip settings come from the device config's `vnpus:` section, else from the chip
catalogue (`hami_ascend.catalogue`).
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from hami_ascend import binding
from hami_ascend.catalogue import chip_by_key, chip_for, hami_vnpu_core_default, load_catalogue
from hami_ascend.chips import vnpus_section
from hami_ascend.discovery import devices_from_chips
from hami_ascend.fit import ascend_fit, ascend_score, soft_slicing_allowed
from hami_ascend.mount import runtime_spec
from hami_ascend.parse_npu_smi import parse_npu_smi_info
from hami_ascend.register import register_annotations, split_device
from hami_ascend.rules import container_mutation, container_request, is_soft
from hami_ascend.runtime_info import encode_runtime_info, runtime_infos
from hami_ascend.spec import HAMI_CORE_MODE, keys_for, spec_for
from hami_core import generic, hookimpl
from hami_core.errors import ConfigError
from hami_core.model import (
    ContainerAllocation,
    ContainerDevice,
    ContainerRequest,
    ContainerRuntimeSpec,
    Device,
    DeviceInfo,
    DeviceUsage,
    FitContext,
    FitResult,
    Mutation,
    PodView,
    VendorSpec,
    VendorUnavailable,
)
from hami_core.scheduling.requests import generic_request


def _mine(spec: VendorSpec) -> bool:
    # Ascend is the only vendor registering under "hami.io/node-register-<commonWord>".
    return (
        spec.key == spec.common_word.lower()
        and spec.annotations.node_register == f"hami.io/node-register-{spec.common_word}"
    )


def _asks(spec: VendorSpec, container: Mapping[str, Any]) -> bool:
    resources = container.get("resources")
    if not isinstance(resources, Mapping):
        return resources is not None  # let the generic reader report a malformed value
    names = spec.resources.all()
    for part in ("limits", "requests"):
        values = resources.get(part)
        if values is not None and not isinstance(values, Mapping):
            return True
        if values and any(n in values for n in names):
            return True
    return False


@hookimpl
def hami_vendor() -> list[VendorSpec]:
    """One spec per chip of the catalogue (shipped, or `$HAMI_ASCEND_CONFIG`'s)."""
    return [spec_for(chip) for chip in load_catalogue(os.environ).chips]


@hookimpl
def hami_discover(spec: VendorSpec, config: Mapping[str, Any]) -> list[Device] | None:
    """This chip's NPUs from `npu-smi info`; `VendorUnavailable` without a working npu-smi."""
    if not _mine(spec):
        return None
    chip = chip_for(spec, config, os.environ)
    configured = vnpus_section(config).get("npuSmiPath")
    if configured is not None and not isinstance(configured, str):
        raise ConfigError(f"vnpus: npuSmiPath: expected a path, got {configured!r}")
    try:
        text = binding.npu_smi_info(binding.find_npu_smi(configured or None))
    except binding.NpuSmiUnavailable as exc:
        raise VendorUnavailable(spec.key, exc.why) from None
    return devices_from_chips(spec.key, chip, parse_npu_smi_info(text))


@hookimpl
def hami_split(spec: VendorSpec, device: Device, config: Mapping[str, Any]) -> DeviceInfo | None:
    """One NPU offered as `memoryAllocatable // smallest template` slots of its chip."""
    if not _mine(spec):
        return None
    chip = chip_for(spec, config, os.environ)
    return split_device(chip, device, hami_vnpu_core_default(config, os.environ))


@hookimpl
def hami_annotate(
    spec: VendorSpec, devices: Sequence[DeviceInfo], config: Mapping[str, Any]
) -> dict[str, str] | None:
    """The JSON register annotation, the `Reported_` handshake and `hami-vnpu-core`."""
    if not _mine(spec):
        return None
    soft = hami_vnpu_core_default(config, os.environ)
    return register_annotations(spec, devices, soft, datetime.now())


@hookimpl
def hami_request(
    spec: VendorSpec,
    container: Mapping[str, Any],
    index: int,
    init: bool,
    pod: PodView,
    config: Mapping[str, Any],
) -> ContainerRequest | None:
    """The container's request with Ascend rounding (templates, whole NPUs, 910C modules)."""
    if not _mine(spec):
        return None
    if not _asks(spec, container):
        return generic_request(spec, container, index, init, {})
    chip = chip_for(spec, config, os.environ)
    return container_request(spec, chip, container, index, init, is_soft(spec, pod.annotations))


@hookimpl
def hami_mutate(
    spec: VendorSpec,
    container: Mapping[str, Any],
    pod: Mapping[str, Any],
    config: Mapping[str, Any],
) -> Mutation | None:
    """Write the rounded memory back, round 910C counts, refuse what the chip cannot give."""
    if not _mine(spec):
        return None
    chip = chip_for(spec, config, os.environ)
    annotations = PodView.from_obj(pod).annotations
    npu_resources = tuple(c.resource_name for c in load_catalogue(os.environ).chips)
    return container_mutation(spec, chip, container, is_soft(spec, annotations), npu_resources)


@hookimpl
def hami_allocate(
    spec: VendorSpec,
    request: ContainerRequest,
    devices: Sequence[DeviceUsage],
    context: FitContext,
) -> FitResult | None:
    """Generic per-NPU checks plus soft-slicing node check, NetworkID grouping, 910C modules."""
    if not _mine(spec):
        return None
    chip = chip_for(spec, context.config, os.environ)
    allowed = soft_slicing_allowed(
        context.node.annotations,
        keys_for(spec.common_word).node_vnpu_core,
        hami_vnpu_core_default(context.config, os.environ),
    )
    soft = is_soft(spec, context.pod.annotations)
    return ascend_fit(spec, chip, request, devices, context, soft=soft, soft_allowed=allowed)


@hookimpl
def hami_pod_annotations(
    spec: VendorSpec,
    containers: Sequence[Sequence[ContainerDevice]],
    context: FitContext,
) -> dict[str, str] | None:
    """HAMi's to-allocate/allocated keys, `predicate-time` and `huawei.com/<commonWord>`."""
    if not _mine(spec):
        return None
    if not any(containers):
        return {}
    chip = chip_for(spec, context.config, os.environ)
    keys = keys_for(spec.common_word)
    out = generic.hami_pod_annotations(spec=spec, containers=containers, context=context)
    out[keys.predicate_time] = str(int(time.time()))
    soft = is_soft(spec, context.pod.annotations)
    out[keys.runtime_info] = encode_runtime_info(runtime_infos(chip, containers, soft))
    return out


@hookimpl
def hami_score_node(
    spec: VendorSpec,
    devices: Sequence[DeviceUsage],
    containers: Sequence[Sequence[ContainerDevice]],
    context: FitContext,
) -> float | None:
    """910 chips: prefer nodes where each container's NPUs share a NetworkID."""
    if not _mine(spec):
        return None
    return ascend_score(chip_for(spec, context.config, os.environ), devices, containers)


@hookimpl
def hami_mount(allocation: ContainerAllocation) -> ContainerRuntimeSpec | None:
    """`ASCEND_VISIBLE_DEVICES` (physical ids) and `ASCEND_VNPU_SPECS` for the Ascend runtime;
    the vNPU-core limiter's env and mounts in soft slicing."""
    chip = chip_by_key(allocation.vendor, allocation.config, os.environ)
    if chip is None:
        return None
    keys = keys_for(chip.common_word)
    soft = allocation.pod_annotations.get(keys.vnpu_mode) == HAMI_CORE_MODE
    return runtime_spec(chip, allocation, keys, soft)
