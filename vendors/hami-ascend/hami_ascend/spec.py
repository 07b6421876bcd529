"""The vendor spec of each Ascend chip, and the Ascend annotation keys that the spec model has
no field for (all derived from the chip's common word in this one place)."""

from __future__ import annotations

from dataclasses import dataclass

from hami_ascend.chips import ChipConfig
from hami_core.model import AnnotationKeys, ResourceNames, Template, VendorSpec

__all__ = [
    "ASCEND910_PREFIX",
    "HAMI_CORE_MODE",
    "AscendKeys",
    "keys_for",
    "spec_for",
]

ASCEND910_PREFIX = "Ascend910"
"""Common words starting with this get NetworkID topology (registration, fit, score)."""

HAMI_CORE_MODE = "hami-core"
"""The value of the pod's vNPU-mode annotation that asks for soft slicing."""


@dataclass(frozen=True, slots=True)
class AscendKeys:
    """Ascend annotation keys beyond `AnnotationKeys`: the runtime-info pod annotation, the
    pod's vNPU-mode switch, the node's soft-slicing flag and the decision timestamp."""

    runtime_info: str
    vnpu_mode: str = "huawei.com/vnpu-mode"
    node_vnpu_core: str = "hami-vnpu-core"
    predicate_time: str = "predicate-time"


def keys_for(common_word: str) -> AscendKeys:
    """The Ascend-specific keys of one chip (`huawei.com/<commonWord>` runtime info ...)."""
    return AscendKeys(runtime_info=f"huawei.com/{common_word}")


def annotation_keys(common_word: str) -> AnnotationKeys:
    """HAMi's node and pod annotation keys of one Ascend chip (reference §3.4-3.6, §10); the
    runtime info and decision time the scheduler writes are decisions too."""
    ascend = keys_for(common_word)
    return AnnotationKeys(
        node_register=f"hami.io/node-register-{common_word}",
        handshake=f"hami.io/node-handshake-{common_word}",
        to_allocate=f"hami.io/{common_word}-devices-to-allocate",
        allocated=f"hami.io/{common_word}-devices-allocated",
        use_uuid=f"hami.io/use-{common_word}-uuid",
        nouse_uuid=f"hami.io/no-use-{common_word}-uuid",
        pod_decisions=(ascend.runtime_info, ascend.predicate_time),
    )


def spec_for(chip: ChipConfig) -> VendorSpec:
    """The vendor spec of one chip: names, HAMi keys, JSON registration, runtime mounting,
    whole NPUs for multi-NPU requests, and the chip's templates."""
    names = ResourceNames(
        count=chip.resource_name,
        memory=chip.resource_memory_name,
        cores=chip.resource_core_name,
    )
    return VendorSpec(
        key=chip.key,
        common_word=chip.common_word,
        display_name=f"Huawei Ascend {chip.chip_name}",
        resources=names,
        annotations=annotation_keys(chip.common_word),
        register_format="json",
        mounting="runtime",
        advertised=(chip.resource_name,),
        ignored_by_scheduler=names.all(),
        memory_unit_mib=1,
        core_units=100,  # soft slicing: percent of one NPU (hard slicing takes 0 cores)
        default_count=0,
        default_memory_mib=0,
        default_cores=0,
        exclusive_by_default=False,
        multi_device="whole",
        node_lock=True,
        default_split=chip.vdevice_count,
        templates=tuple(
            Template(
                name=t.name,
                memory_mib=t.memory_mib,
                cores=t.ai_core,
                extras={"aiCPU": t.ai_cpu},
            )
            for t in chip.templates
        ),
    )
