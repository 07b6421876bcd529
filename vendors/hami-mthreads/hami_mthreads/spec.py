"""What Moore Threads is on the wire: resource names, units, annotation keys, env names.

Every Moore Threads key and env name of this distribution is defined here with HAMi's spelling
(vendors.md §7, §10). The sGPU memory resource counts 512 MiB units and takes only the values of
`MEMORY_VALUES`; the core resource counts core groups, 16 per card; a node registers no
annotation: its cards are read from `status.capacity` (`<node>-mthreads-<i>`).
"""

from __future__ import annotations

from hami_core.model import AnnotationKeys, ResourceNames, VendorSpec

__all__ = [
    "ANNOTATION_GPU_INDEX",
    "ANNOTATION_PREDICATE_NODE",
    "ANNOTATION_PREDICATE_TIME",
    "ANNOTATION_REQUEST_GPU_NUM",
    "COMMON_WORD",
    "CORE_GROUPS_PER_CARD",
    "DEVICE_ID_INFIX",
    "ENV_VISIBLE_DEVICES",
    "FULL_CARD_MEMORY_UNITS",
    "KEY",
    "MEMORY_UNIT_MIB",
    "MEMORY_VALUES",
    "SPEC",
]

KEY = "mthreads"
"""hami's vendor key, also the name of the device-config section (`mthreads:`)."""

COMMON_WORD = "Mthreads"
"""HAMi's common word; also the type string of every card read from capacity."""

CORE_GROUPS_PER_CARD = 16
"""Core groups of one MTT S4000: `sgpu-core: 16` is a whole card."""

MEMORY_UNIT_MIB = 512
"""One unit of `mthreads.com/sgpu-memory` is 512 MiB."""

FULL_CARD_MEMORY_UNITS = 96
"""`sgpu-memory` units of one whole card (48 GiB), what the webhook sets for whole cards."""

MEMORY_VALUES = (2, 4, 8, 16, 32, 64, 96)
"""The only `sgpu-memory` values a one-card request may use."""

DEVICE_ID_INFIX = "-mthreads-"
"""Cards read from capacity are named `<node>-mthreads-<i>`."""

ANNOTATION_GPU_INDEX = "mthreads.com/gpu-index"
"""Pod annotation for the MT device plugin: the assigned card indexes, comma separated."""

ANNOTATION_PREDICATE_NODE = "mthreads.com/predicate-node"
"""Pod annotation for the MT device plugin: the node the scheduler chose."""

ANNOTATION_PREDICATE_TIME = "mthreads.com/predicate-time"
"""Pod annotation for the MT device plugin: unix nanoseconds of the decision."""

ANNOTATION_REQUEST_GPU_NUM = "mthreads.com/request-gpu-num"
"""Pod annotation the webhook sets when a container asks for more than one card."""

ENV_VISIBLE_DEVICES = "MTHREADS_VISIBLE_DEVICES"
"""Read by the mthreads container runtime: the card indexes the container sees."""

SPEC = VendorSpec(
    key=KEY,
    common_word=COMMON_WORD,
    display_name="Moore Threads GPU",
    resources=ResourceNames(
        count="mthreads.com/vgpu",
        memory="mthreads.com/sgpu-memory",
        cores="mthreads.com/sgpu-core",
    ),
    # Served to the kubelet by the MT device plugin (sgpu-memory / sgpu-core per card), not
    # by hami's: HAMi writes no to-allocate key for Moore Threads, so hami's Allocate cannot
    # serve it either.
    advertised=(),
    ignored_by_scheduler=("mthreads.com/vgpu",),
    annotations=AnnotationKeys(
        to_allocate=None,
        allocated="hami.io/mthreads-vgpu-devices-allocated",
        use_uuid="mthreads.ai/use-gpuuuid",
        nouse_uuid="mthreads.ai/nouse-gpuuuid",
    ),
    register_format="capacity",
    mounting="runtime",
    memory_unit_mib=MEMORY_UNIT_MIB,
    core_units=CORE_GROUPS_PER_CARD,
    default_count=0,
    default_memory_mib=0,
    default_cores=0,
    exclusive_by_default=False,
    multi_device="whole",
    one_device_per_pod=True,
    memory_values=MEMORY_VALUES,
    node_lock=False,
    default_split=100,
)
"""The Moore Threads vendor."""
