"""Ascend request and admission rules (reference §3.2-3.3, §3.5), as pure functions.

Hard slicing (default):
- a memory request (MiB times `memoryFactor`) is rounded up to the smallest template that holds it;
  above the largest template, up to `memoryCapacity`, it takes the whole NPU
  (`memoryAllocatable`); above `memoryCapacity` it is refused;
- no memory asked → the whole NPU;
- more than one NPU → whole NPUs only (a smaller explicit memory is refused);
- a `-core` request is refused (soft slicing only); the share carries 0 cores, as in HAMi.
Soft slicing (pod annotation `huawei.com/vnpu-mode: hami-core`): memory exact (whole NPU
memory when not asked), `-core` in percent of one NPU, several NPUs may each be a slice.
910C (`superPod`): NPUs come in modules of two — a request for 1 becomes 2 (one module, each
NPU a slice of the asked size, as in HAMi), odd counts above 1 are refused, and an asked count
above 1 takes whole NPUs.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from hami_ascend.chips import ChipConfig, round_memory
from hami_ascend.register import is_super_pod
from hami_ascend.spec import HAMI_CORE_MODE, keys_for
from hami_core.errors import AdmissionDenied, RequestError
from hami_core.model import ContainerRequest, Mutation, VendorSpec
from hami_core.scheduling.requests import generic_request, resource_value

__all__ = ["container_mutation", "container_request", "is_soft"]


def is_soft(spec: VendorSpec, pod_annotations: Mapping[str, str]) -> bool:
    """True when the pod asks for soft slicing (`huawei.com/vnpu-mode: hami-core`)."""
    return pod_annotations.get(keys_for(spec.common_word).vnpu_mode) == HAMI_CORE_MODE


def _whole(value: Decimal | None) -> int | None:
    return None if value is None else int(value)


def container_request(
    spec: VendorSpec,
    chip: ChipConfig,
    container: Mapping[str, Any],
    index: int,
    init: bool,
    soft: bool,
) -> ContainerRequest:
    """What `container` asks of this chip under the module's rules (count 0: nothing).

    Raises `RequestError` naming the container and resource for a value the chip cannot give.
    """
    section = {"memoryFactor": chip.memory_factor}
    base = generic_request(spec, container, index, init, section)
    if base.count == 0:
        return base
    res = spec.resources
    name = base.container

    def refuse(resource: str | None, problem: str) -> RequestError:
        return RequestError(
            vendor=spec.key, container=name, resource=resource or res.count, problem=problem
        )

    asked = count = base.count
    if is_super_pod(chip):
        if count == 1:
            count = 2
        elif count % 2:
            raise refuse(
                res.count,
                f"{chip.common_word} NPUs are allocated in modules of 2: ask for 1 or an even "
                f"number, got {count}",
            )
    memory = _whole(resource_value(spec, container, res.memory))
    cores = _whole(resource_value(spec, container, res.cores))
    memory_mib = None if memory is None else memory * chip.memory_factor

    if soft:
        return base.model_copy(
            update={
                "count": count,
                "memory_mib": memory_mib or 0,
                "memory_percent": None if memory_mib else 100,
                "cores": cores or 0,
            }
        )
    if cores:
        raise refuse(
            res.cores,
            "AI-core requests are only supported in hami-core (soft split) mode: set the pod "
            "annotation huawei.com/vnpu-mode: hami-core",
        )
    template: str | None = None
    taken = chip.memory_allocatable
    if memory_mib is not None:
        rounded = round_memory(chip, memory_mib)
        if rounded is None:
            raise refuse(
                res.memory,
                f"{memory_mib} MiB is more than one {chip.chip_name} NPU holds "
                f"({chip.memory_capacity} MiB)",
            )
        taken = rounded.memory_mib
        template = rounded.template.name if rounded.template else None
    if asked > 1 and taken != chip.memory_allocatable:
        raise refuse(
            res.memory,
            f"vNPU templates apply to a single NPU; {asked} NPUs are taken whole: drop "
            f"{res.memory} or set it to {chip.memory_allocatable}",
        )
    return base.model_copy(
        update={
            "count": count,
            "memory_mib": taken,
            "memory_percent": None,
            "cores": 0,
            "extras": {"template": template} if template else {},
        }
    )


def _requests_any(container: Mapping[str, Any], names: tuple[str, ...]) -> bool:
    resources = container.get("resources") or {}
    if not isinstance(resources, Mapping):
        return False
    for part in ("limits", "requests"):
        values = resources.get(part) or {}
        if isinstance(values, Mapping) and any(n in values for n in names):
            return True
    return False


def container_mutation(
    spec: VendorSpec,
    chip: ChipConfig,
    container: Mapping[str, Any],
    soft: bool,
    npu_resources: tuple[str, ...],
) -> Mutation:
    """The Ascend webhook for one container: write the rounded memory back into its limits,
    round 910C counts, set the runtime class; with `overwriteEnv`, blank
    `ASCEND_VISIBLE_DEVICES` in containers that ask for no NPU of any chip (`npu_resources`).

    Raises `AdmissionDenied` with the reason for anything `container_request` refuses.
    """
    res = spec.resources
    try:
        if resource_value(spec, container, res.count) is None:
            if chip.overwrite_env and not _requests_any(container, npu_resources):
                return Mutation(env={"ASCEND_VISIBLE_DEVICES": ""})
            return Mutation()
        request = container_request(spec, chip, container, 0, False, soft)
    except RequestError as exc:
        raise AdmissionDenied(str(exc)) from None
    if request.count == 0:
        return Mutation()
    limits: dict[str, str] = {}
    asked = _whole(resource_value(spec, container, res.count))
    if asked != request.count:
        limits[res.count] = str(request.count)
    if res.memory is not None:
        memory = request.memory_mib or chip.memory_allocatable
        limits[res.memory] = str(-(-memory // chip.memory_factor))
    return Mutation(
        limits=limits,
        runtime_class_name=chip.runtime_class_name or None,
        uses_vendor=True,
    )
