"""What a container gets for its DCUs (the device plugin's `Allocate` answer, via hami_mount)."""

from pathlib import Path

import pytest
from hami_hygon.errors import MountError, VdcuError

from hami_core.model import (
    ContainerAllocation,
    ContainerDevice,
    ContainerRuntimeSpec,
    Device,
    DeviceNode,
    Mount,
)
from hami_core.plugins import VendorRegistry, load_vendors


def z100(index: int, *, control: tuple[str, ...] = ("/dev/kfd", "/dev/mkfd")) -> Device:
    return Device(
        vendor="hygon",
        uuid=f"DCU-SN{index}",
        index=index,
        model="DCU-Z100",
        memory_mib=32752,
        mode="hami",
        paths=(f"/dev/dri/card{index}", f"/dev/dri/renderD{128 + index}"),
        extras={
            "control_nodes": list(control),
            "pci_bus_id": f"0000:{0x1A + index:02x}:00.0",
            "compute_units": 60,
        },
    )


NODE = (z100(0), z100(1), z100(2))


@pytest.fixture
def registry() -> VendorRegistry:
    return load_vendors(environ={"HAMI_VENDORS": "hygon"})


@pytest.fixture
def config(tmp_path: Path) -> dict[str, dict[str, str]]:
    return {
        "hygon": {
            "vdevDir": str(tmp_path / "vgpu" / "dcu"),
            "exporterVdevDir": str(tmp_path / "etc-vdev"),
            "hygonPath": "/opt/dtk-24.04",
        }
    }


def mount(
    registry: VendorRegistry,
    config: dict[str, dict[str, str]],
    *shares: ContainerDevice,
    container: str = "main",
    node: tuple[Device, ...] = NODE,
) -> ContainerRuntimeSpec:
    allocation = ContainerAllocation(
        vendor="hygon",
        pod_namespace="ml",
        pod_name="train",
        pod_uid="0f3c9a52-1b7e-4c57-9a5e-8e1d7c0a2b41",
        container=container,
        devices=shares,
        node_devices=node,
        config=config,
    )
    answer = registry.hook.hami_mount(allocation=allocation)
    assert isinstance(answer, ContainerRuntimeSpec)
    return answer


def rw(path: str) -> DeviceNode:
    return DeviceNode(container_path=path, host_path=path, permissions="rw")


def rwm(path: str) -> DeviceNode:
    return DeviceNode(container_path=path, host_path=path, permissions="rwm")


def test_whole_cards_get_kfd_mkfd_and_their_dri_nodes_and_nothing_else(
    registry: VendorRegistry, config: dict[str, dict[str, str]], tmp_path: Path
) -> None:
    answer = mount(
        registry,
        config,
        ContainerDevice("DCU-SN2", "DCU", 32752, 100),
        ContainerDevice("DCU-SN0", "DCU", 32752, 100),
    )
    assert answer == ContainerRuntimeSpec(
        devices=(
            rwm("/dev/kfd"),
            rwm("/dev/mkfd"),
            rw("/dev/dri/card2"),
            rw("/dev/dri/renderD130"),
            rw("/dev/dri/card0"),
            rw("/dev/dri/renderD128"),
        )
    )
    assert not (tmp_path / "vgpu").exists()


def test_mkfd_only_where_the_node_has_it(
    registry: VendorRegistry, config: dict[str, dict[str, str]]
) -> None:
    node = (z100(0, control=("/dev/kfd",)),)
    answer = mount(registry, config, ContainerDevice("DCU-SN0", "DCU", 32752, 100), node=node)
    assert [d.container_path for d in answer.devices] == [
        "/dev/kfd",
        "/dev/dri/card0",
        "/dev/dri/renderD128",
    ]


def test_a_slice_gets_its_vdev_config_mounted(
    registry: VendorRegistry, config: dict[str, dict[str, str]], tmp_path: Path
) -> None:
    answer = mount(registry, config, ContainerDevice("DCU-SN1", "DCU", 8192, 30))
    slot_dir = (
        tmp_path
        / "vgpu"
        / "dcu"
        / ("0f3c9a52-1b7e-4c57-9a5e-8e1d7c0a2b41_main_1_0_0_000000000003ffff_0000000000000000")
    )
    assert answer.mounts == (
        Mount(container_path="/etc/vdev/docker", host_path=str(slot_dir), read_only=True),
        Mount(container_path="/opt/hygondriver", host_path="/opt/dtk-24.04", read_only=True),
        Mount(container_path="/opt/hyhal", host_path="/opt/hyhal", read_only=True),
    )
    assert answer.envs == {}
    assert [d.container_path for d in answer.devices] == [
        "/dev/kfd",
        "/dev/mkfd",
        "/dev/dri/card1",
        "/dev/dri/renderD129",
    ]
    conf = (slot_dir / "vdev0.conf").read_text()
    assert conf.splitlines() == [
        "PciBusId: 0000:1B:00.0",
        "cu_mask: 0x000000000003ffff",
        "cu_mask: 0x0000000000000000",
        "cu_count: 18",
        "mem: 8192 MiB",
        "device_id: 0",
        "vdev_id: 0",
        "pipe_id: 0",
        "enable: 1",
    ]
    exporter = (tmp_path / "etc-vdev" / "vdev0.conf").read_text()
    assert exporter == conf.replace("device_id: 0", "device_id: 1")


def test_each_container_of_a_pod_gets_its_own_slot_and_response(
    registry: VendorRegistry, config: dict[str, dict[str, str]], tmp_path: Path
) -> None:
    share = ContainerDevice("DCU-SN0", "DCU", 4096, 50)
    first = mount(registry, config, share, container="reader")
    second = mount(registry, config, share, container="writer")
    assert first.mounts[0].host_path != second.mounts[0].host_path
    assert first.mounts[0].host_path.endswith("_reader_0_0_0_000000003fffffff_0000000000000000")
    assert second.mounts[0].host_path.endswith("_writer_0_1_1_0fffffffc0000000_0000000000000000")
    assert len(first.mounts) == len(second.mounts) == 3
    # kubelet asking again for the same container gets the same slot, not a new one
    again = mount(registry, config, share, container="reader")
    assert again == first
    assert len(list((tmp_path / "vgpu" / "dcu").iterdir())) == 2


def test_partial_cores_with_full_memory_is_still_a_slice(
    registry: VendorRegistry, config: dict[str, dict[str, str]]
) -> None:
    answer = mount(registry, config, ContainerDevice("DCU-SN0", "DCU", 32752, 40))
    assert answer.mounts[0].container_path == "/etc/vdev/docker"


def test_the_card_must_be_on_this_node(
    registry: VendorRegistry, config: dict[str, dict[str, str]]
) -> None:
    with pytest.raises(MountError, match="DCU DCU-SN7 is not on this node"):
        mount(registry, config, ContainerDevice("DCU-SN7", "DCU", 32752, 100))


def test_a_card_known_without_device_nodes_gets_them_by_index(
    registry: VendorRegistry, config: dict[str, dict[str, str]]
) -> None:
    # a cluster snapshot knows only the registered cards: UUID, index, model, memory
    bare = tuple(
        Device(vendor="hygon", uuid=f"DCU-SN{i}", index=i, model="DCU-Z100", memory_mib=32752)
        for i in (0, 3)
    )
    shares = (
        ContainerDevice("DCU-SN3", "DCU", 32752, 100),
        ContainerDevice("DCU-SN0", "DCU", 1, 100),
    )
    answer = mount(registry, config, *shares, node=bare)
    assert answer == ContainerRuntimeSpec(
        devices=(
            rwm("/dev/kfd"),
            rw("/dev/dri/card3"),
            rw("/dev/dri/renderD131"),
            rw("/dev/dri/card0"),
            rw("/dev/dri/renderD128"),
        )
    )


def test_a_slice_of_an_unknown_model_asks_for_its_compute_units(
    registry: VendorRegistry, config: dict[str, dict[str, str]]
) -> None:
    card = Device(
        vendor="hygon",
        uuid="DCU-X",
        index=0,
        model="DCU-K900",
        memory_mib=1000,
        paths=("/dev/dri/card0",),
        extras={"pci_bus_id": "0000:3d:00.0"},
    )
    share = ContainerDevice("DCU-X", "DCU", 500, 50)
    with pytest.raises(MountError, match=r"set hygon.computeUnits.K900"):
        mount(registry, config, share, node=(card,))
    config["hygon"]["computeUnits"] = {"K900": 80}  # type: ignore[assignment]
    answer = mount(registry, config, share, node=(card,))
    assert answer.mounts[0].host_path.endswith("_000000ffffffffff_0000000000000000")


def test_a_full_card_leaves_no_cus_for_another_slice(
    registry: VendorRegistry, config: dict[str, dict[str, str]]
) -> None:
    mount(registry, config, ContainerDevice("DCU-SN0", "DCU", 1024, 100), container="all")
    with pytest.raises(VdcuError, match="need 6 free compute units, 0 of 60 are free"):
        mount(registry, config, ContainerDevice("DCU-SN0", "DCU", 1024, 10), container="late")
