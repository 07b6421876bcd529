"""What a Cambricon MLU is to hami: resource names, units, annotation keys and sharing rules.

Every value mirrors HAMi's Cambricon backend (`pkg/device/cambricon`) and Cambricon's own device
plugin in `dynamic-smlu` mode: common word `MLU`; no register annotation and no handshake (the
scheduler builds the node's cards from `status.capacity`); memory in 256 MiB units; cores in
percent, defaulting to 100; device nodes mounted by the plugin itself.
"""

from __future__ import annotations

from hami_core.model import AnnotationKeys, ResourceNames, VendorSpec

__all__ = [
    "COMMON_WORD",
    "CORES_RESOURCE",
    "COUNT_RESOURCE",
    "DSMLU_ASSIGNED_KEYS",
    "DSMLU_LOCK_KEY",
    "DSMLU_PROFILE_INSTANCE_KEY",
    "DSMLU_PROFILE_KEY",
    "MEMORY_RESOURCE",
    "MEMORY_UNIT_MIB",
    "SPEC",
    "VENDOR_KEY",
]

VENDOR_KEY = "cambricon"
"""hami's vendor key; also the name of the device-config section (`cambricon:`), as in HAMi."""

COMMON_WORD = "MLU"
"""HAMi's common word for Cambricon, and the type of every card the scheduler sees."""

COUNT_RESOURCE = "cambricon.com/vmlu"
MEMORY_RESOURCE = "cambricon.com/mlu.smlu.vmemory"
CORES_RESOURCE = "cambricon.com/mlu.smlu.vcore"

MEMORY_UNIT_MIB = 256
"""One `vmemory` unit: HAMi multiplies by 256 and Cambricon's plugin runs with
`--min-dsmlu-unit=256`."""

DSMLU_PROFILE_KEY = "CAMBRICON_DSMLU_PROFILE"
"""Pod annotation `<slot>_<vcore>_<vmemory units>`: the slice Cambricon's plugin creates."""

DSMLU_ASSIGNED_KEYS = ("CAMBRICON_DSMLU_ASSIGNED", "CAMBRICON_DSMLU_ASSIGHED")
"""Pod annotation `"false"` until the plugin has served the pod. HAMi's current spelling and the
one released Cambricon plugins look for (sic); hami writes both."""

DSMLU_PROFILE_INSTANCE_KEY = "CAMBRICON_DSMLU_PROFILE_INSTANCE"
"""Written by Cambricon's plugin: `<profileID>_<instanceHandle>_<slot>_<instanceID>`."""

DSMLU_LOCK_KEY = "cambricon.com/dsmlu.lock"
"""HAMi's Cambricon node lock: an RFC 3339 time, blocking binds for 2 minutes (see README)."""

SPEC = VendorSpec(
    key=VENDOR_KEY,
    common_word=COMMON_WORD,
    display_name="Cambricon MLU",
    resources=ResourceNames(count=COUNT_RESOURCE, memory=MEMORY_RESOURCE, cores=CORES_RESOURCE),
    advertised=(MEMORY_RESOURCE, CORES_RESOURCE),
    ignored_by_scheduler=(COUNT_RESOURCE,),
    annotations=AnnotationKeys(
        to_allocate="hami.io/cambricon-mlu-devices-to-allocate",
        allocated="hami.io/cambricon-mlu-devices-allocated",
        use_uuid="cambricon.com/use-gpuuuid",
        nouse_uuid="cambricon.com/nouse-gpuuuid",
        pod_decisions=(DSMLU_PROFILE_KEY, *DSMLU_ASSIGNED_KEYS, DSMLU_PROFILE_INSTANCE_KEY),
    ),
    register_format="capacity",
    mounting="builtin",
    memory_unit_mib=MEMORY_UNIT_MIB,
    core_units=100,
    default_cores=100,
    exclusive_by_default=False,
    multi_device="whole",
    node_lock=True,
    default_split=100,
)
"""The Cambricon MLU vendor.

- `advertised`: the two kubelet resources Cambricon's plugin serves in dynamic-sMLU mode, so a
  node may run either plugin. `cambricon.com/vmlu` is never advertised (kube-scheduler ignores
  it; HAMi counts it).
- `exclusive_by_default=False`: a bare `vmlu` is still exclusive (cores default to 100), but the
  webhook adds no `vcore` limit — `vcore` is a real kubelet resource counted per pod, not per
  card, so adding 100 would be wrong for `vmlu > 1`.
- `multi_device="whole"`: more than one MLU means whole cards; HAMi does not enforce this (the
  plugin only honours slices for `vmlu = 1`), hami does.
- Type pins (`cambricon.com/use-mlutype`) are not declared: the scheduler sees only the type
  `MLU`, and HAMi ignores them too.
"""
