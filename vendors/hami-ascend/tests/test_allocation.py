"""The decision's trip to the node: the pod annotations the scheduler writes
(`hami_pod_annotations`) and the container runtime spec the device plugin returns
(`hami_mount`) from them, on NPUs discovered from recorded `npu-smi info` outputs."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest
from hami_ascend.catalogue import SHIPPED
from hami_ascend.discovery import devices_from_chips
from hami_ascend.mount import MountError
from hami_ascend.parse_npu_smi import parse_npu_smi_info

from hami_core.model import (
    ContainerAllocation,
    ContainerDevice,
    ContainerRuntimeSpec,
    Device,
    FitContext,
    NodeView,
    PodView,
    VendorSpec,
)
from hami_core.plugins import VendorRegistry
from hami_core.protocol import ProtocolError

DATA = Path(__file__).parent / "data"
SOFT = {"huawei.com/vnpu-mode": "hami-core"}


def _discovered(sample: str, common_word: str) -> tuple[Device, ...]:
    chip = SHIPPED.chip(common_word)
    assert chip is not None
    text = (DATA / sample).read_text(encoding="utf-8")
    return tuple(devices_from_chips(chip.key, chip, parse_npu_smi_info(text)))


def _annotations(
    registry: VendorRegistry,
    spec: VendorSpec,
    containers: list[list[ContainerDevice]],
    pod_annotations: Mapping[str, str] | None = None,
) -> dict[str, str]:
    pod = PodView(namespace="ns", name="p", uid="u", annotations=dict(pod_annotations or {}))
    context = FitContext(pod=pod, node=NodeView(name="n", annotations={}))
    answer = registry.hook.hami_pod_annotations(spec=spec, containers=containers, context=context)
    assert isinstance(answer, dict)
    return answer


def _mount(
    registry: VendorRegistry,
    spec: VendorSpec,
    shares: tuple[ContainerDevice, ...],
    node_devices: tuple[Device, ...],
    pod_annotations: Mapping[str, str],
) -> ContainerRuntimeSpec:
    allocation = ContainerAllocation(
        vendor=spec.key,
        pod_namespace="ns",
        pod_name="p",
        pod_uid="uid-1",
        pod_annotations=dict(pod_annotations),
        container="main",
        devices=shares,
        node_devices=node_devices,
    )
    answer = registry.hook.hami_mount(allocation=allocation)
    assert isinstance(answer, ContainerRuntimeSpec)
    return answer


def test_a_template_slice_travels_in_the_pod_annotations(
    registry: VendorRegistry, spec: Callable[[str], VendorSpec]
) -> None:
    b3 = spec("ascend910b3")
    share = ContainerDevice("ascend-910b3-0000-c1-00.0", "Ascend910B3", 16384, 0)
    before = int(time.time())
    annotations = _annotations(registry, b3, [[], [share]])
    assert annotations["hami.io/Ascend910B3-devices-to-allocate"] == (
        ";ascend-910b3-0000-c1-00.0,Ascend910B3,16384,0:;"
    )
    assert (
        annotations["hami.io/Ascend910B3-devices-allocated"]
        == annotations["hami.io/Ascend910B3-devices-to-allocate"]
    )
    assert annotations["huawei.com/Ascend910B3"] == (
        '[{"UUID":"ascend-910b3-0000-c1-00.0","temp":"vir05_1c_16g","memory":16384}]'
    )
    assert before <= int(annotations["predicate-time"]) <= int(time.time())


def test_whole_npus_and_soft_slices_carry_no_template(
    registry: VendorRegistry, spec: Callable[[str], VendorSpec]
) -> None:
    b3 = spec("ascend910b3")
    whole = [
        ContainerDevice("a", "Ascend910B3", 65536, 0),
        ContainerDevice("b", "Ascend910B3", 65536, 0),
    ]
    assert json.loads(_annotations(registry, b3, [whole])["huawei.com/Ascend910B3"]) == [
        {"UUID": "a", "memory": 65536},
        {"UUID": "b", "memory": 65536},
    ]
    soft = [ContainerDevice("a", "Ascend910B3", 12000, 30)]
    assert json.loads(_annotations(registry, b3, [soft], SOFT)["huawei.com/Ascend910B3"]) == [
        {"UUID": "a", "memory": 12000, "core": 30}
    ]
    assert _annotations(registry, b3, [[], []]) == {}


def test_mount_names_physical_ids_and_the_template(
    registry: VendorRegistry, spec: Callable[[str], VendorSpec]
) -> None:
    p310 = spec("ascend310p")
    npus = _discovered("npu-smi-info-310P3-1.txt", "Ascend310P")  # NPU 4 → davinci0, 5 → 1
    share = ContainerDevice(npus[1].uuid, "Ascend310P", 6144, 0)
    annotations = _annotations(registry, p310, [[share]])
    runtime = _mount(registry, p310, (share,), npus, annotations)
    assert runtime.envs == {"ASCEND_VISIBLE_DEVICES": "1", "ASCEND_VNPU_SPECS": "vir02"}
    assert runtime.mounts == () and runtime.devices == ()
    # Without the runtime-info annotation the template is the one of exactly that size.
    assert _mount(registry, p310, (share,), npus, {}).envs["ASCEND_VNPU_SPECS"] == "vir02"


def test_mount_of_whole_npus_names_them_all(
    registry: VendorRegistry, spec: Callable[[str], VendorSpec]
) -> None:
    b3 = spec("ascend910b3")
    npus = _discovered("npu-smi-info-910B3-1.txt", "Ascend910B3")
    shares = tuple(ContainerDevice(npus[i].uuid, "Ascend910B3", 65536, 0) for i in (6, 7))
    annotations = _annotations(registry, b3, [list(shares)])
    assert _mount(registry, b3, shares, npus, annotations).envs == {"ASCEND_VISIBLE_DEVICES": "6,7"}


def test_soft_slicing_mounts_the_limiter(
    registry: VendorRegistry, spec: Callable[[str], VendorSpec]
) -> None:
    b3 = spec("ascend910b3")
    npus = _discovered("npu-smi-info-910B3-2.txt", "Ascend910B3")  # one NPU, id 4
    share = ContainerDevice(npus[0].uuid, "Ascend910B3", 12000, 30)
    annotations = {**SOFT, **_annotations(registry, b3, [[share]], SOFT)}
    runtime = _mount(registry, b3, (share,), npus, annotations)
    assert runtime.envs == {
        "ASCEND_VISIBLE_DEVICES": "4",
        "NPU_MEM_QUOTA": "12000",
        "NPU_PRIORITY": "30",
        "NPU_GLOBAL_SHM_PATH": "/hami-shared-region/4_global_registry",
        "NPU_LOCAL_SHM_PATH": "/hami-vnpu-shmem/vnpu_local_shmem",
    }
    mounted = {m.container_path: (m.host_path, m.read_only) for m in runtime.mounts}
    assert mounted["/etc/ld.so.preload"] == ("/usr/local/hami-vnpu-core/ld.so.preload", True)
    assert mounted["/hami-vnpu-shmem"] == ("/usr/local/hami-vnpu-core/containers/uid-1_main", False)
    assert mounted["/usr/local/bin/npu-smi"] == ("/usr/local/bin/npu-smi", True)


def test_mount_refuses_an_npu_not_on_this_node(
    registry: VendorRegistry, spec: Callable[[str], VendorSpec]
) -> None:
    b3 = spec("ascend910b3")
    npus = _discovered("npu-smi-info-910B3-2.txt", "Ascend910B3")
    share = ContainerDevice("ascend-910b3-0000-c1-00.0", "Ascend910B3", 16384, 0)
    with pytest.raises(MountError, match=r"'ascend-910b3-0000-c1-00\.0' .* is not on this node"):
        _mount(registry, b3, (share,), npus, {})


def test_a_malformed_runtime_info_annotation_is_named(
    registry: VendorRegistry, spec: Callable[[str], VendorSpec]
) -> None:
    b3 = spec("ascend910b3")
    npus = _discovered("npu-smi-info-910B3-2.txt", "Ascend910B3")
    share = ContainerDevice(npus[0].uuid, "Ascend910B3", 16384, 0)
    with pytest.raises(ProtocolError, match=r"annotation huawei\.com/Ascend910B3: entry 0: temp"):
        _mount(registry, b3, (share,), npus, {"huawei.com/Ascend910B3": '[{"UUID":"x","temp":5}]'})
    with pytest.raises(ProtocolError, match=r"huawei\.com/Ascend910B3: not valid JSON"):
        _mount(registry, b3, (share,), npus, {"huawei.com/Ascend910B3": "[{"})
