"""What a container gets for its MLUs (the device plugin's `Allocate` answer, via hami_mount)."""

import stat
import sys
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
    DeviceNode,
    Mount,
)
from hami_core.plugins import VendorRegistry, load_vendors

# Two MLU370-X4 cards as discovery reports them; card 0 has every IPC node, card 1 only ipcm.
NODE = (
    Device(
        vendor="cambricon",
        uuid="cambricon-mlu-0",
        index=0,
        model="MLU370-X4",
        memory_mib=23308,
        paths=(
            "/dev/cambr-msgq:0",
            "/dev/cambr-rpc:0",
            "/dev/cmsg_ctrl0",
            "/dev/commu0",
            "/dev/cambricon_ipcm0",
            "/dev/cambricon_dev0",
        ),
        extras={"control_nodes": ["/dev/cambricon_ctl", "/dev/cambricon_gdr"]},
    ),
    Device(
        vendor="cambricon",
        uuid="cambricon-mlu-1",
        index=1,
        model="MLU370-X4",
        memory_mib=23308,
        paths=("/dev/cambricon_ipcm1", "/dev/cambricon_dev1"),
        extras={"control_nodes": ["/dev/cambricon_ctl", "/dev/cambricon_gdr"]},
    ),
)
WHOLE = 23296  # what the scheduler assigns for a whole card of this node (capacity model)


@pytest.fixture
def registry() -> VendorRegistry:
    return load_vendors(environ={"HAMI_VENDORS": "cambricon"})


def mount(
    registry: VendorRegistry,
    *shares: ContainerDevice,
    config: Mapping[str, Any] | None = None,
    annotations: Mapping[str, str] | None = None,
) -> ContainerRuntimeSpec:
    allocation = ContainerAllocation(
        vendor="cambricon",
        pod_namespace="ml",
        pod_name="infer",
        pod_uid="uid-1",
        pod_annotations=dict(annotations or {}),
        container="main",
        devices=shares,
        node_devices=NODE,
        config=dict(config or {}),
    )
    answer = registry.hook.hami_mount(allocation=allocation)
    assert isinstance(answer, ContainerRuntimeSpec)
    return answer


def paths(answer: ContainerRuntimeSpec) -> list[str]:
    assert all(d.permissions == "rw" and d.host_path == d.container_path for d in answer.devices)
    return [d.container_path for d in answer.devices]


def test_whole_cards_get_their_nodes_found_by_the_schedulers_ids(registry: VendorRegistry) -> None:
    answer = mount(
        registry,
        ContainerDevice("mlu-node-1-cambricon-mlu-1", "MLU", WHOLE, 100),
        ContainerDevice("mlu-node-1-cambricon-mlu-0", "MLU", WHOLE, 100),
    )
    assert paths(answer) == [
        "/dev/cambricon_ctl",
        "/dev/cambricon_gdr",
        "/dev/cambricon_ipcm1",
        "/dev/cambricon_dev1",
        "/dev/cambr-msgq:0",
        "/dev/cambr-rpc:0",
        "/dev/cmsg_ctrl0",
        "/dev/commu0",
        "/dev/cambricon_ipcm0",
        "/dev/cambricon_dev0",
    ]
    assert answer.envs == {} and answer.mounts == ()


def test_a_slice_gets_the_smlu_instance_the_plugin_recorded(registry: VendorRegistry) -> None:
    answer = mount(
        registry,
        ContainerDevice("mlu-node-1-cambricon-mlu-0", "MLU", 5120, 10),
        annotations={"CAMBRICON_DSMLU_PROFILE_INSTANCE": "3_258_0_1"},
    )
    assert paths(answer) == [
        "/dev/cambricon_ctl",
        "/dev/cambricon_gdr",
        "/dev/cambricon_dev0",
        "/dev/cambricon_ipcm0",
        "/dev/cambricon-caps/cap_dev0_mi1",
    ]


def test_a_slice_without_an_instance_is_refused_unless_configured(
    registry: VendorRegistry,
) -> None:
    share = ContainerDevice("mlu-node-1-cambricon-mlu-1", "MLU", 5120, 10)
    with pytest.raises(MountError, match="a slice of MLU 1 needs an sMLU instance"):
        mount(registry, share)
    with pytest.raises(MountError, match="cannot read 'x_y'"):
        mount(registry, share, annotations={"CAMBRICON_DSMLU_PROFILE_INSTANCE": "x_y"})
    with pytest.raises(
        MountError, match="the sMLU instance is on MLU 0, the scheduler chose MLU 1"
    ):
        mount(registry, share, annotations={"CAMBRICON_DSMLU_PROFILE_INSTANCE": "3_2_0_1"})
    relaxed = mount(registry, share, config={"cambricon": {"sliceWithoutInstance": "whole-card"}})
    assert paths(relaxed)[-2:] == ["/dev/cambricon_ipcm1", "/dev/cambricon_dev1"]


def test_runtime_mode_names_the_slots_in_env(registry: VendorRegistry) -> None:
    config = {"cambricon": {"useRuntime": True}}
    whole = mount(
        registry,
        ContainerDevice("mlu-node-1-cambricon-mlu-0", "MLU", WHOLE, 100),
        ContainerDevice("mlu-node-1-cambricon-mlu-1", "MLU", WHOLE, 100),
        config=config,
    )
    assert whole == ContainerRuntimeSpec(envs={"CAMBRICON_VISIBLE_DEVICES": "0,1"})
    sliced = mount(
        registry,
        ContainerDevice("mlu-node-1-cambricon-mlu-1", "MLU", 2048, 20),
        config=config,
        annotations={"CAMBRICON_DSMLU_PROFILE_INSTANCE": "5_513_1_2"},
    )
    assert sliced == ContainerRuntimeSpec(
        envs={
            "VIRTUAL_DEVICES": (
                "/dev/cambricon_dev1,/dev/cambricon_ipcm1,/dev/cambricon-caps/cap_dev1_mi2"
            )
        }
    )


def test_cnmon_is_mounted_read_only_when_asked(registry: VendorRegistry, tmp_path: Path) -> None:
    tool = tmp_path / "cnmon"
    tool.write_text(f"#!{sys.executable}\n")
    tool.chmod(tool.stat().st_mode | stat.S_IEXEC)
    answer = mount(
        registry,
        ContainerDevice("mlu-node-1-cambricon-mlu-0", "MLU", WHOLE, 100),
        config={"cambricon": {"mountCnmon": True, "cnmonPath": str(tool)}},
    )
    assert answer.mounts == (Mount(container_path=str(tool), host_path=str(tool), read_only=True),)
    assert answer.devices[0] == DeviceNode(
        container_path="/dev/cambricon_ctl", host_path="/dev/cambricon_ctl"
    )


def test_a_whole_card_is_all_cores_and_all_whole_units_of_memory(
    registry: VendorRegistry,
) -> None:
    # the X4 has 23308 MiB = 91 units of 256 MiB (+12 MiB): 23296 MiB is the whole card
    whole = mount(registry, ContainerDevice("cambricon-mlu-1", "MLU", 23296, 100))
    assert paths(whole)[-1] == "/dev/cambricon_dev1"
    with pytest.raises(MountError, match="needs an sMLU instance"):
        mount(registry, ContainerDevice("cambricon-mlu-1", "MLU", 23040, 100))
    with pytest.raises(MountError, match="needs an sMLU instance"):
        mount(registry, ContainerDevice("cambricon-mlu-1", "MLU", 23296, 99))


def test_a_card_not_on_this_node_is_named(registry: VendorRegistry) -> None:
    with pytest.raises(MountError, match=r"MLU mlu-node-1-cambricon-mlu-5 is not on this node"):
        mount(registry, ContainerDevice("mlu-node-1-cambricon-mlu-5", "MLU", WHOLE, 100))
