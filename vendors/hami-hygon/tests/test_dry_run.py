"""A dry run (`hami simulate`) describes a DCU container's mounts without touching the host."""

from pathlib import Path

import pytest
from hami_hygon.errors import MountError

from hami_core.model import ContainerAllocation, ContainerDevice, ContainerRuntimeSpec, Device
from hami_core.plugins import VendorRegistry, load_vendors

UID = "0f3c9a52-1b7e-4c57-9a5e-8e1d7c0a2b41"
SLICE = ContainerDevice("DCU-SN1", "DCU", 8192, 30)


@pytest.fixture
def registry() -> VendorRegistry:
    return load_vendors(environ={"HAMI_VENDORS": "hygon"})


@pytest.fixture
def config(tmp_path: Path) -> dict[str, dict[str, str]]:
    return {
        "hygon": {
            "vdevDir": str(tmp_path / "vgpu" / "dcu"),
            "exporterVdevDir": str(tmp_path / "etc-vdev"),
        }
    }


def registered(index: int, model: str = "DCU-Z100") -> Device:
    """A card as a simulation knows it: no device nodes, PCI bus ID or compute units."""
    return Device(vendor="hygon", uuid=f"DCU-SN{index}", index=index, model=model, memory_mib=32752)


def mount(
    registry: VendorRegistry,
    config: dict[str, dict[str, str]],
    share: ContainerDevice,
    *,
    dry_run: bool,
    node: tuple[Device, ...] = (registered(0), registered(1)),
    container: str = "main",
) -> ContainerRuntimeSpec:
    allocation = ContainerAllocation(
        vendor="hygon",
        pod_namespace="ml",
        pod_name="train",
        pod_uid=UID,
        container=container,
        devices=(share,),
        node_devices=node,
        config=config,
        dry_run=dry_run,
    )
    answer = registry.hook.hami_mount(allocation=allocation)
    assert isinstance(answer, ContainerRuntimeSpec)
    return answer


def test_a_slice_is_described_with_its_usual_directory_and_nothing_is_written(
    registry: VendorRegistry, config: dict[str, dict[str, str]], tmp_path: Path
) -> None:
    answer = mount(registry, config, SLICE, dry_run=True)
    name = f"{UID}_main_1_0_0_000000000003ffff_0000000000000000"  # 30 % of Z100's 60 CUs
    assert [(m.container_path, m.host_path) for m in answer.mounts] == [
        ("/etc/vdev/docker", str(tmp_path / "vgpu" / "dcu" / name)),
        ("/opt/hygondriver", "/opt/dtk"),
        ("/opt/hyhal", "/opt/hyhal"),
    ]
    assert [d.host_path for d in answer.devices] == [
        "/dev/kfd",
        "/dev/dri/card1",
        "/dev/dri/renderD129",
    ]
    assert list(tmp_path.iterdir()) == []


def test_the_dry_run_names_the_directory_a_real_allocation_writes(
    registry: VendorRegistry, config: dict[str, dict[str, str]], tmp_path: Path
) -> None:
    card = registered(1).model_copy(update={"extras": {"pci_bus_id": "0000:1b:00.0"}})
    node = (registered(0), card)
    described = mount(registry, config, SLICE, dry_run=True, node=node)
    real = mount(registry, config, SLICE, dry_run=False, node=node)
    assert described == real
    assert (Path(real.mounts[0].host_path) / "vdev0.conf").is_file()


def test_a_dry_run_reads_no_slots_from_the_host(
    registry: VendorRegistry, config: dict[str, dict[str, str]], tmp_path: Path
) -> None:
    vdev_dir = tmp_path / "vgpu" / "dcu"
    taken = vdev_dir / "other-pod_main_1_0_0_000000000003ffff_0000000000000000"
    taken.mkdir(parents=True)
    answer = mount(registry, config, SLICE, dry_run=True, container="late")
    assert answer.mounts[0].host_path.endswith("_late_1_0_0_000000000003ffff_0000000000000000")
    assert list(vdev_dir.iterdir()) == [taken]


def test_a_real_slice_still_needs_the_pci_bus_id_of_its_card(
    registry: VendorRegistry, config: dict[str, dict[str, str]], tmp_path: Path
) -> None:
    with pytest.raises(MountError, match="DCU DCU-SN1: no PCI bus ID"):
        mount(registry, config, SLICE, dry_run=False)
    assert not (tmp_path / "vgpu").exists()


def test_a_dry_run_still_asks_for_the_compute_units_of_an_unknown_model(
    registry: VendorRegistry, config: dict[str, dict[str, str]]
) -> None:
    node = (registered(1, model="DCU-K900"),)
    with pytest.raises(MountError, match=r"set hygon.computeUnits.K900"):
        mount(registry, config, SLICE, dry_run=True, node=node)
