"""A dry run (`hami simulate`) describes an MLU container's mounts: a slice needs no sMLU
instance there, and nothing on the host is looked up."""

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from hami_cambricon.errors import MountError

from hami_core.model import (
    ContainerAllocation,
    ContainerDevice,
    ContainerRuntimeSpec,
    Device,
    Mount,
    VendorUnavailable,
)
from hami_core.plugins import VendorRegistry, load_vendors

# Two MLU370-X8 cards as a simulation knows them from an inventory: no device nodes or extras.
NODE = tuple(
    Device(
        vendor="cambricon", uuid=f"cambricon-mlu-{i}", index=i, model="MLU370-X8", memory_mib=24576
    )
    for i in range(2)
)
SLICE = ContainerDevice("mlu-1-cambricon-mlu-1", "MLU", 8 * 256, 10)
PENDING = "/dev/cambricon-caps/cap_dev1_mi*"


@pytest.fixture
def registry() -> VendorRegistry:
    return load_vendors(environ={"HAMI_VENDORS": "cambricon"})


def mount(
    registry: VendorRegistry,
    share: ContainerDevice,
    *,
    dry_run: bool = True,
    config: Mapping[str, Any] | None = None,
    annotations: Mapping[str, str] | None = None,
) -> ContainerRuntimeSpec:
    allocation = ContainerAllocation(
        vendor="cambricon",
        pod_namespace="hpc",
        pod_name="mlu-slice",
        pod_uid="uid-1",
        pod_annotations=dict(annotations or {}),
        container="main",
        devices=(share,),
        node_devices=NODE,
        config=dict(config or {}),
        dry_run=dry_run,
    )
    answer = registry.hook.hami_mount(allocation=allocation)
    assert isinstance(answer, ContainerRuntimeSpec)
    return answer


def paths(answer: ContainerRuntimeSpec) -> list[str]:
    return [d.host_path for d in answer.devices]


def test_a_slice_describes_the_instance_cambricons_plugin_would_create(
    registry: VendorRegistry,
) -> None:
    answer = mount(registry, SLICE)
    assert paths(answer) == ["/dev/cambricon_ctl", "/dev/cambricon_dev1", PENDING]
    assert answer.envs == {} and answer.mounts == ()


def test_a_real_slice_still_needs_its_instance(registry: VendorRegistry) -> None:
    with pytest.raises(MountError, match="a slice of MLU 1 needs an sMLU instance"):
        mount(registry, SLICE, dry_run=False)


def test_a_recorded_instance_is_described_as_it_is(registry: VendorRegistry) -> None:
    recorded = {"CAMBRICON_DSMLU_PROFILE_INSTANCE": "3_258_1_4"}
    answer = mount(registry, SLICE, annotations=recorded)
    assert paths(answer)[-1] == "/dev/cambricon-caps/cap_dev1_mi4"
    elsewhere = {"CAMBRICON_DSMLU_PROFILE_INSTANCE": "3_258_0_4"}
    with pytest.raises(MountError, match="the sMLU instance is on MLU 0"):
        mount(registry, SLICE, annotations=elsewhere)


def test_runtime_mode_and_whole_card_setting_keep_their_shape(registry: VendorRegistry) -> None:
    runtime = mount(registry, SLICE, config={"cambricon": {"useRuntime": True}})
    assert runtime.envs == {
        "VIRTUAL_DEVICES": f"/dev/cambricon_dev1,/dev/cambricon_ipcm1,{PENDING}"
    }
    relaxed = mount(registry, SLICE, config={"cambricon": {"sliceWithoutInstance": "whole-card"}})
    assert paths(relaxed) == ["/dev/cambricon_ctl", "/dev/cambricon_dev1"]


def test_cnmon_is_described_from_the_config_not_looked_up(
    registry: VendorRegistry, tmp_path: Path
) -> None:
    absent = str(tmp_path / "bin" / "cnmon")  # not on this machine
    config = {"cambricon": {"mountCnmon": True, "cnmonPath": absent}}
    answer = mount(registry, SLICE, config=config)
    assert answer.mounts == (Mount(container_path=absent, host_path=absent, read_only=True),)
    by_name = mount(registry, SLICE, config={"cambricon": {"mountCnmon": True}})
    assert by_name.mounts == ()
    whole = ContainerDevice("mlu-1-cambricon-mlu-0", "MLU", 24576, 100)
    with pytest.raises(VendorUnavailable, match="is not installed"):
        mount(registry, whole, dry_run=False, config=config)
