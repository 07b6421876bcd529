"""What the NVIDIA vendor is on the wire: resource names, annotation keys, env names.

Every NVIDIA-specific annotation key and env name used by this distribution is defined here and
nowhere else, with HAMi's spelling (hami-protocol.md §1.1, §2.1, §4; vendors.md §2). The pod
annotations `nvidia.com/numa-bind` and `nvidia.com/vgpu-mode` are derived by hami's generic
pins from the count resource's domain; the node annotation `hami.io/device-cordon` is shared by
every vendor.
"""

from __future__ import annotations

from hami_core.model import AnnotationKeys, ResourceNames, VendorSpec

__all__ = [
    "ENV_CORE_POLICY",
    "ENV_DISABLE_CONTROL",
    "ENV_TASK_PRIORITY",
    "ENV_VISIBLE_DEVICES",
    "KEY",
    "SPEC",
    "VOLCANO_ASSIGNED_TIME",
    "VOLCANO_KEY",
    "VOLCANO_MODE",
    "VOLCANO_SPEC",
]

KEY = "nvidia"
"""hami's vendor key, also the name of the device-config section (`nvidia:`)."""

ENV_VISIBLE_DEVICES = "NVIDIA_VISIBLE_DEVICES"
"""Read by nvidia-container-runtime: which GPUs the container sees."""

ENV_TASK_PRIORITY = "CUDA_TASK_PRIORITY"
"""Read by HAMi-core: the container's priority (0 high, 1 low)."""

ENV_CORE_POLICY = "GPU_CORE_UTILIZATION_POLICY"
"""Read by HAMi-core: `force` or `disable` the SM limit."""

ENV_DISABLE_CONTROL = "CUDA_DISABLE_CONTROL"
"""A container that sets this to true gets no `/etc/ld.so.preload` (HAMi-core not injected)."""

SPEC = VendorSpec(
    key=KEY,
    common_word="NVIDIA",
    display_name="NVIDIA GPU",
    resources=ResourceNames(
        count="nvidia.com/gpu",
        memory="nvidia.com/gpumem",
        memory_percentage="nvidia.com/gpumem-percentage",
        cores="nvidia.com/gpucores",
        priority="nvidia.com/priority",
    ),
    advertised=("nvidia.com/gpu",),
    ignored_by_scheduler=(
        "nvidia.com/gpu",
        "nvidia.com/gpumem",
        "nvidia.com/gpumem-percentage",
        "nvidia.com/gpucores",
        "nvidia.com/priority",
    ),
    annotations=AnnotationKeys(
        node_register="hami.io/node-nvidia-register",
        handshake="hami.io/node-handshake",
        to_allocate="hami.io/vgpu-devices-to-allocate",
        allocated="hami.io/vgpu-devices-allocated",
        use_uuid="nvidia.com/use-gpuuuid",
        nouse_uuid="nvidia.com/nouse-gpuuuid",
        use_type="nvidia.com/use-gputype",
        nouse_type="nvidia.com/nouse-gputype",
        pair_scores="hami.io/node-nvidia-score",
        numa_bind="nvidia.com/numa-bind",
        mode="nvidia.com/vgpu-mode",
    ),
    register_format="json",
    mounting="runtime",
    memory_unit_mib=1,
    core_units=100,
    default_count=1,
    exclusive_by_default=True,
    multi_device="shared",
    node_lock=True,
    default_split=10,
)
"""The NVIDIA vendor as HAMi v2.8+ speaks it (JSON register annotation, exclusive default)."""


VOLCANO_KEY = "nvidia-volcano"
"""hami's key for NVIDIA GPUs served under Volcano's vGPU protocol (opt-in)."""

VOLCANO_ASSIGNED_TIME = "volcano.sh/vgpu-time"
"""Pod annotation Volcano's scheduler writes with the decision time (Unix seconds)."""

VOLCANO_MODE = "volcano.sh/vgpu-mode"
"""Pod annotation a user sets to pin a sharing mode (`hami-core` or `mig`)."""

VOLCANO_SPEC = VendorSpec(
    key=VOLCANO_KEY,
    common_word="NVIDIA",
    display_name="NVIDIA GPU (Volcano vGPU protocol)",
    resources=ResourceNames(
        count="volcano.sh/vgpu-number",
        memory="volcano.sh/vgpu-memory",
        memory_percentage="volcano.sh/vgpu-memory-percentage",
        cores="volcano.sh/vgpu-cores",
    ),
    advertised=("volcano.sh/vgpu-number", "volcano.sh/vgpu-memory", "volcano.sh/vgpu-cores"),
    annotations=AnnotationKeys(
        node_register="volcano.sh/node-vgpu-register",
        handshake="volcano.sh/node-vgpu-handshake",
        to_allocate="volcano.sh/devices-to-allocate",
        allocated="volcano.sh/vgpu-ids-new",
        use_type="nvidia.com/use-gputype",
        nouse_type="nvidia.com/nouse-gputype",
        extra={"assigned_time": VOLCANO_ASSIGNED_TIME, "mode": VOLCANO_MODE},
        assigned_node="volcano.sh/vgpu-node",
        bind_phase="volcano.sh/bind-phase",
        bind_time="volcano.sh/bind-time",
        node_lock="volcano.sh/mutex.lock",
    ),
    register_format="custom",
    mounting="runtime",
    memory_unit_mib=1,
    core_units=100,
    default_count=1,
    multi_device="shared",
    node_lock=True,
    default_split=10,
    opt_in=True,
)
"""NVIDIA GPUs as `Project-HAMi/volcano-vgpu-device-plugin` serves them to Volcano's
`deviceshare` scheduler plugin: `volcano.sh/*` resources (all three served to the kubelet),
node annotation `volcano.sh/node-vgpu-register` in Volcano's `id,count,devmem,type,health,mode:`
text, Volcano's pod keys and node lock. Memory travels in `gpuMemoryFactor` MiB units.
`opt_in`: loads only when `HAMI_VENDORS` names `nvidia-volcano` (a node serves one protocol)."""
