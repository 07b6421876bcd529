"""hami hooks for NVIDIA GPUs (the `hami.vendors` entry point `nvidia`).

Two vendors: `nvidia` (HAMi's protocol) and `nvidia-volcano` (Volcano's vGPU protocol, opt-in:
it loads only when `HAMI_VENDORS` names it). Only hook implementations live here; each returns
`None` for a vendor that is neither. Hooks not implemented here use hami's generic rule:
requests, fit (type/UUID pins, mode pin, NUMA binding, cordons, topology-aware choice from the
pair-score annotation), pod annotations, and, for `nvidia`, reading the register annotation.
"""

from __future__ import annotations

import logging
import uuid as uuidlib
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from hami_core import hookimpl
from hami_core.config import vendor_section
from hami_core.model import (
    ContainerAllocation,
    ContainerRuntimeSpec,
    Device,
    DeviceInfo,
    Mutation,
    NodeView,
    VendorSpec,
)
from hami_core.protocol import ProtocolError, encode_node_devices, encode_pair_scores
from hami_core.scheduling.admission import generic_mutation
from hami_nvidia import binding
from hami_nvidia.admission import nvidia_mutation
from hami_nvidia.discovery import device_info, devices_from
from hami_nvidia.health import xid_policy
from hami_nvidia.mount import runtime_spec, uses_hami_core
from hami_nvidia.settings import NvidiaSettings, resolve_settings
from hami_nvidia.spec import KEY, SPEC, VOLCANO_KEY, VOLCANO_SPEC
from hami_nvidia.topology import pair_scores
from hami_nvidia.volcano import (
    decode_volcano_devices,
    encode_volcano_devices,
    handshake_value,
    scaled_allocation,
    volcano_device_info,
    volcano_units,
)

log = logging.getLogger(__name__)


def _settings(config: Mapping[str, Any]) -> NvidiaSettings:
    return resolve_settings(config, binding.host_env())


@hookimpl
def hami_vendor() -> list[VendorSpec]:
    """The NVIDIA vendor spec, and the opt-in Volcano-protocol spec."""
    return [SPEC, VOLCANO_SPEC]


@hookimpl
def hami_discover(spec: VendorSpec, config: Mapping[str, Any]) -> list[Device] | None:
    """The node's GPUs from NVML, filtered and completed by the node's settings."""
    if spec.key not in (KEY, VOLCANO_KEY):
        return None
    env = binding.host_env()
    settings = resolve_settings(config, env)
    snapshot = binding.read_gpus(
        topology=settings.topology_score and spec.key == KEY,
        xids=xid_policy(env.get("DP_DISABLE_HEALTHCHECKS")),
    )
    for why in snapshot.skipped:
        log.warning("not registering %s", why)
    return devices_from(snapshot, settings, spec.key)


@hookimpl
def hami_split(spec: VendorSpec, device: Device, config: Mapping[str, Any]) -> DeviceInfo | None:
    """HAMi's register record for one card (split, scaling, type prefix, MIG whole); under
    Volcano's protocol, memory in `gpuMemoryFactor` units and Volcano's type."""
    if spec.key == KEY:
        return device_info(device, _settings(config))
    if spec.key == VOLCANO_KEY:
        return volcano_device_info(device, _settings(config))
    return None


@hookimpl
def hami_annotate(
    spec: VendorSpec, devices: Sequence[DeviceInfo], config: Mapping[str, Any]
) -> dict[str, str] | None:
    """The register annotation, plus the pair-score annotation when topology scoring is on;
    under Volcano's protocol, Volcano's register text and the handshake answer."""
    if spec.key == VOLCANO_KEY:
        register, handshake = spec.annotations.node_register, spec.annotations.handshake
        assert register is not None and handshake is not None
        return {
            register: encode_volcano_devices(devices),
            handshake: handshake_value(datetime.now()),
        }
    if spec.key != KEY:
        return None
    register_key = SPEC.annotations.node_register
    score_key = SPEC.annotations.pair_scores
    assert register_key is not None and score_key is not None
    wire = [replace(d, custominfo=None) for d in devices]
    annotations = {register_key: encode_node_devices(wire)}
    if _settings(config).topology_score:
        links: dict[str, Mapping[str, Sequence[str]]] = {}
        for d in devices:
            raw = (d.custominfo or {}).get("links")
            links[d.id] = raw if isinstance(raw, Mapping) else {}
        scores = pair_scores(links, [d.id for d in devices])
        annotations[score_key] = encode_pair_scores(scores)
    return annotations


@hookimpl
def hami_read_node(
    spec: VendorSpec, node: NodeView, config: Mapping[str, Any]
) -> list[DeviceInfo] | None:
    """Under Volcano's protocol, the cards of Volcano's register text (`ProtocolError` naming
    the annotation when it cannot be read); HAMi's register annotation is the generic rule."""
    if spec.key != VOLCANO_KEY:
        return None
    key = spec.annotations.node_register
    assert key is not None
    value = node.annotations.get(key)
    if value is None:
        return []
    try:
        return decode_volcano_devices(value)
    except ProtocolError as exc:
        raise exc.with_annotation(key) from None


@hookimpl
def hami_advertise(spec: VendorSpec, resource: str, device: DeviceInfo) -> int | None:
    """Under Volcano's protocol: split count, memory units and core units per card; the generic
    rule (split count) otherwise."""
    if spec.key != VOLCANO_KEY:
        return None
    return volcano_units(spec, resource, device)


@hookimpl
def hami_mutate(
    spec: VendorSpec,
    container: Mapping[str, Any],
    pod: Mapping[str, Any],
    config: Mapping[str, Any],
) -> Mutation | None:
    """The generic admission defaults plus priority, core policy, runtime class, env."""
    if spec.key != KEY:
        return None
    generic = generic_mutation(spec, container, pod, vendor_section(spec, config))
    return nvidia_mutation(spec, container, generic, _settings(config))


def _cache_id(allocation: ContainerAllocation) -> str:
    """A fresh UUID per Allocate, as HAMi's plugin does; a dry run (the simulator) derives it
    from the pod and container so that its output repeats."""
    if allocation.dry_run:
        name = f"{allocation.pod_uid}/{allocation.container}"
        return str(uuidlib.uuid5(uuidlib.NAMESPACE_URL, name))
    return str(uuidlib.uuid4())


@hookimpl
def hami_mount(allocation: ContainerAllocation) -> ContainerRuntimeSpec | None:
    """Env and mounts for one container (HAMi-core limits through the NVIDIA runtime), the
    same under Volcano's protocol (its memory units turned into MiB first).

    Where HAMi-core is installed under the hook path, the container's cache directory and the
    lock directory are (re)created on the host first, as HAMi's device plugin does.
    """
    if allocation.vendor not in (KEY, VOLCANO_KEY):
        return None
    settings = _settings(allocation.config)
    if allocation.vendor == VOLCANO_KEY:
        allocation = scaled_allocation(allocation, settings.gpu_memory_factor)
    limited = uses_hami_core(allocation) and bool(allocation.devices)
    if limited and not allocation.dry_run and binding.hami_core_installed(settings.hook_path):
        # Only where HAMi-core is installed: a simulator or a test run creates nothing.
        problems = binding.prepare_container_dirs(
            settings.hook_path, allocation.pod_uid, allocation.container, settings.lock_dir
        )
        for problem in problems:
            log.warning("pod %s/%s: %s", allocation.pod_namespace, allocation.pod_name, problem)
    return runtime_spec(
        allocation,
        settings,
        cache_id=_cache_id(allocation),
        license_present=limited and binding.license_present(settings.hook_path),
    )
