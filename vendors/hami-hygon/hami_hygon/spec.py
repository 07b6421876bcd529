"""What a Hygon DCU is to hami: resource names, units, annotation keys and sharing rules.

Every value mirrors HAMi's Hygon backend (`pkg/device/hygon`) and the DCU device plugin
(`dcu-vgpu-device-plugin`): common word `DCU`, the legacy text register annotation with its
`Reported ...` handshake, split count 4, memory in MiB, cores in percent defaulting to 100 (so a
bare `hygon.com/dcunum` is exclusive), device nodes mounted by the plugin itself.
"""

from __future__ import annotations

from hami_core.model import AnnotationKeys, ResourceNames, VendorSpec

__all__ = ["COMMON_WORD", "DEFAULT_SPLIT", "SPEC", "VENDOR_KEY"]

VENDOR_KEY = "hygon"
"""hami's vendor key; also the name of the device-config section (`hygon:`), as in HAMi."""

COMMON_WORD = "DCU"
"""HAMi's common word for Hygon: the `type` field of every pod decision entry."""

DEFAULT_SPLIT = 4
"""How many containers may share one DCU (the DCU device plugin hard-codes 4)."""

SPEC = VendorSpec(
    key=VENDOR_KEY,
    common_word=COMMON_WORD,
    display_name="Hygon DCU",
    resources=ResourceNames(
        count="hygon.com/dcunum",
        memory="hygon.com/dcumem",
        cores="hygon.com/dcucores",
    ),
    advertised=("hygon.com/dcunum",),
    ignored_by_scheduler=("hygon.com/dcunum", "hygon.com/dcumem", "hygon.com/dcucores"),
    annotations=AnnotationKeys(
        node_register="hami.io/node-dcu-register",
        handshake="hami.io/node-handshake-dcu",
        to_allocate="hami.io/dcu-devices-to-allocate",
        allocated="hami.io/dcu-devices-allocated",
        use_uuid="hygon.com/use-gpuuuid",
        nouse_uuid="hygon.com/nouse-gpuuuid",
        use_type="hygon.com/use-dcutype",
        nouse_type="hygon.com/nouse-dcutype",
    ),
    register_format="legacy",
    mounting="builtin",
    memory_unit_mib=1,
    core_units=100,
    default_cores=100,
    exclusive_by_default=True,
    multi_device="whole",
    node_lock=True,
    default_split=DEFAULT_SPLIT,
)
"""The Hygon DCU vendor: `hygon.com/dcunum` cards, `hygon.com/dcumem` MiB, `hygon.com/dcucores` %.

`multi_device="whole"`: a request for more than one DCU takes whole cards. HAMi's scheduler does
not enforce this (it relies on the 100 % core default and the docs' "do not set dcumem/dcucores
when dcunum > 1"); hami does.
"""
