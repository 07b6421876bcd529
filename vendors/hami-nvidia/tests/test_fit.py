"""NVIDIA fit rules as the scheduler runs them: NVIDIA registers, hami's generic fit chooses.

Cards come from the fake A100 host through discovery, split and the register annotation (and
the pair-score annotation), read back as the scheduler reads them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
from hami_nvidia import binding, plugin
from hami_nvidia.discovery import devices_from
from hami_nvidia.settings import resolve_settings

from hami_core.model import ContainerRequest, DeviceUsage, FitContext, FitResult, NodeView, PodView
from hami_core.plugins import VendorRegistry, load_vendors
from hami_core.protocol import decode_pair_scores

CONFIG = {"nvidia": {"enableTopologyScore": True}}


@pytest.fixture
def registry() -> VendorRegistry:
    return load_vendors(environ={}, entry_points_=[], plugins=[("nvidia", plugin)])


@pytest.fixture
def node(registry: VendorRegistry, a100: Any, sysfs: Any) -> NodeView:
    root = sysfs({"0000:47:00.0": "1", "0000:4e:00.0": "1"})
    spec = registry.spec("nvidia")
    snap = binding.read_gpus(a100, sysfs_root=root, topology=True)
    devices = devices_from(snap, resolve_settings(CONFIG, {}))
    infos = [registry.hook.hami_split(spec=spec, device=d, config=CONFIG) for d in devices]
    annotations = registry.hook.hami_annotate(spec=spec, devices=infos, config=CONFIG)
    return NodeView(name="a100-node", annotations=annotations)


def fit(
    registry: VendorRegistry,
    node: NodeView,
    limits: Mapping[str, str],
    *,
    pod_annotations: Mapping[str, str] | None = None,
    policy: tuple[str, ...] = ("spread",),
    busy: Mapping[int, int] = {},
) -> FitResult:
    spec = registry.spec("nvidia")
    infos = registry.hook.hami_read_node(spec=spec, node=node, config=CONFIG)
    cards = [DeviceUsage.from_info("nvidia", i) for i in infos]
    for index, cores in busy.items():
        cards[index].used, cards[index].usedcores = 1, cores
    pod = PodView("ns", "p", "uid", dict(pod_annotations or {}))
    container = {"name": "c", "resources": {"limits": dict(limits)}}
    request = registry.hook.hami_request(
        spec=spec, container=container, index=0, init=False, pod=pod, config=CONFIG
    )
    assert isinstance(request, ContainerRequest)
    scores = decode_pair_scores(node.annotations["hami.io/node-nvidia-score"])
    context = FitContext(pod=pod, node=node, gpu_policy=policy, pair_scores=scores)
    result = registry.hook.hami_allocate(spec=spec, request=request, devices=cards, context=context)
    assert isinstance(result, FitResult)
    return result


def indices(result: FitResult, node: NodeView) -> set[int]:
    uuid_to_index = {f"GPU-a100000{i}-1111-2222-3333-44444444444{i}": i for i in range(4)}
    return {uuid_to_index[d.uuid] for d in result.devices}


def test_register_annotations_carry_numa_and_pair_scores(node: NodeView) -> None:
    register = node.annotations["hami.io/node-nvidia-register"]
    assert register.startswith('[{"id":"GPU-a1000000-1111-2222-3333-444444444440","count":10,')
    assert '"numa":1' in register and "custominfo" not in register
    scores = decode_pair_scores(node.annotations["hami.io/node-nvidia-score"])
    assert (
        scores["GPU-a1000000-1111-2222-3333-444444444440"][
            "GPU-a1000001-1111-2222-3333-444444444441"
        ]
        == 420
    )


def test_topology_aware_puts_two_gpus_on_an_nvlink_pair(
    registry: VendorRegistry, node: NodeView
) -> None:
    two = fit(registry, node, {"nvidia.com/gpu": "2"}, policy=("topology-aware",))
    assert two.ok and indices(two, node) in ({0, 1}, {2, 3})
    one = fit(registry, node, {"nvidia.com/gpu": "1"}, policy=("topology-aware",))
    assert one.ok and indices(one, node) <= {0, 3}  # the least-linked card stays out of the way


def test_numa_bind_keeps_a_container_on_one_numa_node(
    registry: VendorRegistry, node: NodeView
) -> None:
    limits = {"nvidia.com/gpu": "2", "nvidia.com/gpumem": "1000"}
    loose = fit(registry, node, limits, busy={3: 100})
    assert loose.ok and indices(loose, node) == {1, 2}
    bound = fit(
        registry, node, limits, busy={3: 100}, pod_annotations={"nvidia.com/numa-bind": "true"}
    )
    assert bound.ok and indices(bound, node) == {0, 1}


def test_pins_and_cordons(registry: VendorRegistry, node: NodeView) -> None:
    one = {"nvidia.com/gpu": "1", "nvidia.com/gpumem": "1000"}
    a10 = fit(registry, node, one, pod_annotations={"nvidia.com/use-gputype": "A10"})
    assert a10.ok  # substring match: "A10" matches "NVIDIA A100-SXM4-80GB"
    none = fit(registry, node, one, pod_annotations={"nvidia.com/nouse-gputype": "a100"})
    assert not none.ok and dict(none.reasons) == {"CardTypeMismatch": 4}
    pinned = fit(
        registry,
        node,
        one,
        pod_annotations={"nvidia.com/use-gpuuuid": "GPU-a1000002-1111-2222-3333-444444444442"},
    )
    assert indices(pinned, node) == {2}
    cordoned = NodeView(
        name=node.name,
        annotations={
            **node.annotations,
            "hami.io/device-cordon": "GPU-a1000003-1111-2222-3333-444444444443, ",
        },
    )
    result = fit(registry, cordoned, one)
    assert result.ok and indices(result, node) == {2}
    mig_only = fit(registry, node, one, pod_annotations={"nvidia.com/vgpu-mode": "mig"})
    assert not mig_only.ok and dict(mig_only.reasons) == {"CardTypeMismatch": 4}
