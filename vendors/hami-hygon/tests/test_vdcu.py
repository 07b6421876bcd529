"""vDCU slots: compute-unit masks, pipe and vdev IDs, directory names and vdev.conf text."""

import pytest
from hami_hygon.errors import VdcuError
from hami_hygon.vdcu import (
    VdevSlot,
    allocate_compute_units,
    compute_unit_count,
    parse_slot_dir,
    plan_slot,
    render_vdev_conf,
)


def test_a_quarter_of_a_k100_ai_is_30_cus_from_the_lowest() -> None:
    assert compute_unit_count(25, 120) == 30
    assert allocate_compute_units(0, 0, 30, 120) == ((1 << 30) - 1, 0)


def test_cus_beyond_64_go_to_the_second_mask_and_taken_cus_are_skipped() -> None:
    low, high = allocate_compute_units(0xF, 0, 62, 120)
    assert low == ((1 << 64) - 1) & ~0xF
    assert high == 0b11
    with pytest.raises(VdcuError, match="need 61 free compute units, 60 of 120 are free"):
        allocate_compute_units((1 << 60) - 1, 0, 61, 120)


def test_a_slot_survives_its_directory_name() -> None:
    slot = VdevSlot("7f3c-11aa", "train", 2, 1, 17, 0xFFFF, 0x3)
    assert slot.dir_name() == "7f3c-11aa_train_2_1_17_000000000000ffff_0000000000000003"
    assert parse_slot_dir(slot.dir_name()) == slot
    assert slot.cu_count == 18
    for other in ("lost+found", "a_b_c", "u_c_x_1_2_" + "0" * 16 + "_" + "0" * 16):
        assert parse_slot_dir(other) is None


def test_slots_take_the_lowest_free_ids_and_cus_per_card() -> None:
    first = plan_slot(
        [], pod_uid="p1", container="a", device_index=0, compute_units=120, cores_percent=25
    )
    assert (first.vdev_id, first.pipe_id, first.mask_low, first.mask_high) == (0, 0, 2**30 - 1, 0)
    second = plan_slot(
        [first], pod_uid="p2", container="b", device_index=0, compute_units=120, cores_percent=25
    )
    assert (second.vdev_id, second.pipe_id) == (1, 1)
    assert second.mask_low == (2**60 - 1) ^ (2**30 - 1)
    other_card = plan_slot(
        [first, second],
        pod_uid="p3",
        container="c",
        device_index=1,
        compute_units=120,
        cores_percent=50,
    )
    assert (other_card.vdev_id, other_card.pipe_id, other_card.cu_count) == (2, 0, 60)
    assert other_card.mask_low == 2**60 - 1


def test_a_container_allocated_again_gets_its_slot_back() -> None:
    held = VdevSlot("p1", "a", 0, 3, 9, 0xFF, 0)
    again = plan_slot(
        [held], pod_uid="p1", container="a", device_index=0, compute_units=60, cores_percent=90
    )
    assert again is held


def test_exhausted_pools_are_named() -> None:
    pipes = [VdevSlot(f"p{i}", "c", 0, i, i, 0, 0) for i in range(20)]
    with pytest.raises(VdcuError, match="all 20 pipe IDs of DCU 0 are in use"):
        plan_slot(
            pipes, pod_uid="q", container="c", device_index=0, compute_units=60, cores_percent=0
        )
    vdevs = [VdevSlot(f"p{i}", "c", i % 8, i // 8, i, 0, 0) for i in range(200)]
    with pytest.raises(VdcuError, match="all 200 vdev IDs of the node are in use"):
        plan_slot(
            vdevs, pod_uid="q", container="c", device_index=9, compute_units=60, cores_percent=0
        )
    with pytest.raises(VdcuError, match="container name 'a_b' cannot name"):
        plan_slot(
            [], pod_uid="q", container="a_b", device_index=0, compute_units=60, cores_percent=10
        )


def test_vdev_conf_has_the_dcu_plugins_layout() -> None:
    slot = VdevSlot("p1", "a", 0, 2, 3, 0xFFFF, 0)
    text = render_vdev_conf(pci_bus_id="0000:3d:00.0", slot=slot, memory_mib=24576, device_id=0)
    assert text == (
        "PciBusId: 0000:3D:00.0\n"
        "cu_mask: 0x000000000000ffff\n"
        "cu_mask: 0x0000000000000000\n"
        "cu_count: 16\n"
        "mem: 24576 MiB\n"
        "device_id: 0\n"
        "vdev_id: 3\n"
        "pipe_id: 2\n"
        "enable: 1\n"
    )
