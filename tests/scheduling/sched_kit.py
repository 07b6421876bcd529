"""Test vendors and small builders for the scheduling engine's tests (imported by the tests).

Three vendors, registered without installing anything:
- `nvidia`: HAMi's NVIDIA names and keys, shared cards, exclusive by default.
- `wcard`: a whole-card-only accelerator (count is the only resource).
- `steps`: memory in 512 MiB units from a fixed list, 16 core units, whole cards when count > 1.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from hami_core import hookimpl
from hami_core.model import (
    AnnotationKeys,
    DeviceUsage,
    FitContext,
    NodeView,
    PodView,
    ResourceNames,
    VendorSpec,
)
from hami_core.plugins import VendorRegistry, load_vendors

NVIDIA = VendorSpec(
    key="nvidia",
    common_word="NVIDIA",
    display_name="NVIDIA GPU",
    resources=ResourceNames(
        count="nvidia.com/gpu",
        memory="nvidia.com/gpumem",
        memory_percentage="nvidia.com/gpumem-percentage",
        cores="nvidia.com/gpucores",
        priority="nvidia.com/priority",
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
    exclusive_by_default=True,
)

WCARD = VendorSpec(
    key="wcard",
    common_word="WCARD",
    display_name="Whole Card",
    resources=ResourceNames(count="example.com/card"),
    annotations=AnnotationKeys(
        node_register="hami.io/node-wcard-register",
        to_allocate="hami.io/wcard-devices-to-allocate",
        allocated="hami.io/wcard-devices-allocated",
    ),
    register_format="json",
    mounting="builtin",
    whole_card_only=True,
    default_split=1,
)

STEPS = VendorSpec(
    key="steps",
    common_word="STEPS",
    resources=ResourceNames(
        count="steps.io/vgpu", memory="steps.io/sgpu-memory", cores="steps.io/sgpu-core"
    ),
    annotations=AnnotationKeys(
        node_register="hami.io/node-steps-register",
        allocated="hami.io/steps-devices-allocated",
    ),
    register_format="legacy",
    mounting="builtin",
    memory_unit_mib=512,
    memory_values=(2, 4, 8, 16, 32, 48),
    core_units=16,
    multi_device="whole",
    default_count=1,
)


class SpecPlugin:
    """A vendor plugin that only describes itself; the generic hooks do the rest."""

    def __init__(self, spec: VendorSpec) -> None:
        self.spec = spec

    @hookimpl
    def hami_vendor(self) -> VendorSpec:
        """This plugin's spec."""
        return self.spec


def make_registry(*specs: VendorSpec) -> VendorRegistry:
    """A registry holding exactly these vendors (default: all three test vendors)."""
    chosen = specs or (NVIDIA, WCARD, STEPS)
    return load_vendors(
        environ={}, entry_points_=[], plugins=[(s.key, SpecPlugin(s)) for s in chosen]
    )


def container(
    name: str = "main", limits: Mapping[str, Any] | None = None, **kw: Any
) -> dict[str, Any]:
    """A JSON-shaped container with these limits (and optional `requests=`)."""
    resources: dict[str, Any] = {}
    if limits is not None:
        resources["limits"] = dict(limits)
    if "requests" in kw:
        resources["requests"] = dict(kw.pop("requests"))
    return {"name": name, "image": "busybox", "resources": resources, **kw}


def pod(
    name: str = "p",
    containers: Sequence[Mapping[str, Any]] = (),
    init: Sequence[Mapping[str, Any]] = (),
    annotations: Mapping[str, str] | None = None,
    namespace: str = "default",
    phase: str | None = None,
) -> dict[str, Any]:
    """A JSON-shaped pod."""
    obj: dict[str, Any] = {
        "metadata": {
            "name": name,
            "namespace": namespace,
            "uid": f"uid-{name}",
            "annotations": dict(annotations or {}),
        },
        "spec": {"containers": list(containers)},
    }
    if init:
        obj["spec"]["initContainers"] = list(init)
    if phase:
        obj["status"] = {"phase": phase}
    return obj


def gpu(
    uuid: str,
    *,
    index: int = 0,
    count: int = 10,
    mem: int = 16384,
    cores: int = 100,
    type_: str = "NVIDIA-Tesla T4",
    numa: int = 0,
    health: bool = True,
    mode: str = "hami-core",
    vendor: str = "nvidia",
    used: int = 0,
    usedmem: int = 0,
    usedcores: int = 0,
) -> DeviceUsage:
    """One card as the scheduler sees it."""
    return DeviceUsage(
        id=uuid,
        index=index,
        type=type_,
        vendor=vendor,
        count=count,
        totalmem=mem,
        totalcore=cores,
        numa=numa,
        health=health,
        mode=mode,
        used=used,
        usedmem=usedmem,
        usedcores=usedcores,
    )


def context(
    pod_annotations: Mapping[str, str] | None = None,
    node_annotations: Mapping[str, str] | None = None,
    policy: tuple[str, ...] = ("spread",),
    pair_scores: Mapping[str, Mapping[str, int]] | None = None,
) -> FitContext:
    """A fit context for a pod and node with these annotations."""
    return FitContext(
        pod=PodView("default", "p", "uid-p", dict(pod_annotations or {})),
        node=NodeView("node-1", dict(node_annotations or {})),
        gpu_policy=policy,
        pair_scores=dict(pair_scores or {}),
    )


def register_json(cards: Sequence[Mapping[str, Any]]) -> str:
    """An NVIDIA-style JSON register annotation value for these cards."""
    return json.dumps(list(cards), separators=(",", ":"))


def node(
    name: str,
    annotations: Mapping[str, str] | None = None,
    capacity: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """A JSON-shaped node."""
    return {
        "metadata": {"name": name, "annotations": dict(annotations or {})},
        "status": {"capacity": dict(capacity or {}), "allocatable": dict(capacity or {})},
    }


def nvidia_node(
    name: str,
    gpus: int = 2,
    *,
    mem: int = 16384,
    split: int = 10,
    numa: Sequence[int] | None = None,
    extra: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """A node whose NVIDIA cards are registered the way HAMi's device plugin writes them."""
    cards = [
        {
            "id": f"GPU-{name}-{i}",
            "index": i,
            "count": split,
            "devmem": mem,
            "devcore": 100,
            "type": "NVIDIA-Tesla T4",
            "numa": numa[i] if numa else 0,
            "mode": "hami-core",
            "health": True,
        }
        for i in range(gpus)
    ]
    annotations = {"hami.io/node-nvidia-register": register_json(cards), **(extra or {})}
    return node(name, annotations)
