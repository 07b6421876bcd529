"""What MetaX (whole-card mode) is on the wire: resource names, annotation keys, device nodes.

HAMi's "Metax-GPU" backend (vendors.md §8.1): the count resource `metax-tech.com/gpu`, whole
cards only, no register annotation (cards are read from `status.capacity` as
`<node>-metax-<i>`, 65536 MiB and 100 cores each), no node lock, all containers of a pod on one
card, and node scores from the topology annotations MetaX's GPU extensions write. Every MetaX
key and device path of this distribution is defined here.
"""

from __future__ import annotations

from hami_core.model import AnnotationKeys, ResourceNames, VendorSpec

__all__ = [
    "ANNOTATION_TOPOLOGY_LOSSES",
    "ANNOTATION_TOPOLOGY_SCORES",
    "CARD_MEMORY_MIB",
    "COMMON_WORD",
    "CONTROL_DEVICE",
    "DEVICE_ID_INFIX",
    "DRI_DIR",
    "KEY",
    "RENDER_MINOR_BASE",
    "SGPU_CORE",
    "SGPU_COUNT",
    "SGPU_MEMORY",
    "SPEC",
]

KEY = "metax"
"""hami's vendor key, also the name of the device-config section (`metax:`)."""

COMMON_WORD = "Metax-GPU"
"""HAMi's common word; also the type string of every card read from capacity."""

CARD_MEMORY_MIB = 65536
"""The memory HAMi assumes for every card read from capacity (a constant in HAMi)."""

DEVICE_ID_INFIX = "-metax-"
"""Cards read from capacity are named `<node>-metax-<i>`."""

ANNOTATION_TOPOLOGY_LOSSES = "metax-tech.com/gpu.topology.losses"
"""Node annotation (MetaX GPU extensions): JSON `{"<cards>": <loss>}`; binpack prefers low."""

ANNOTATION_TOPOLOGY_SCORES = "metax-tech.com/gpu.topology.scores"
"""Node annotation (MetaX GPU extensions): JSON `{"<cards>": <score>}`; spread prefers high."""

SGPU_COUNT = "metax-tech.com/sgpu"
"""sGPU-mode count resource (config key `resourceVCountName`)."""

SGPU_MEMORY = "metax-tech.com/vmemory"
"""sGPU-mode memory resource (config key `resourceVMemoryName`); refused beside whole cards."""

SGPU_CORE = "metax-tech.com/vcore"
"""sGPU-mode compute resource (config key `resourceVCoreName`); refused beside whole cards."""

CONTROL_DEVICE = "/dev/mxcd"
"""MetaX's control device, needed by every container with a MetaX card."""

DRI_DIR = "/dev/dri"
"""Where each card's DRM nodes live (`card<N>`, `renderD<M>`)."""

RENDER_MINOR_BASE = 128
"""Linux numbers DRM render nodes from 128 (`renderD128` belongs to `card0`)."""

SPEC = VendorSpec(
    key=KEY,
    common_word=COMMON_WORD,
    display_name="MetaX GPU",
    resources=ResourceNames(count="metax-tech.com/gpu"),
    advertised=("metax-tech.com/gpu",),
    ignored_by_scheduler=("metax-tech.com/gpu",),
    annotations=AnnotationKeys(
        to_allocate="hami.io/metax-gpu-devices-to-allocate",
        allocated="hami.io/metax-gpu-devices-allocated",
    ),
    register_format="capacity",
    mounting="builtin",
    memory_unit_mib=1,
    core_units=100,
    default_count=1,
    whole_card_only=True,
    multi_device="whole",
    one_device_per_pod=True,
    node_lock=False,
    default_split=1,
)
"""The MetaX whole-card vendor."""
