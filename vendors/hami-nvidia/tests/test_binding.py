"""`hami_nvidia.binding`: what NVML says about a node, read through a fake `pynvml` module."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from hami_nvidia import binding
from hami_nvidia.health import APPLICATION_XIDS, xid_policy

from hami_core.errors import ConfigError
from hami_core.model import VendorUnavailable


def test_a100_host_is_read_with_memory_bus_ids_and_numa_from_sysfs(
    a100: Any, sysfs: Callable[[dict[str, str]], Path]
) -> None:
    root = sysfs({"0000:07:00.0": "0\n", "0000:0f:00.0": "0", "0000:47:00.0": "1\n"})
    snap = binding.read_gpus(a100, sysfs_root=root)
    assert [g.index for g in snap.gpus] == [0, 1, 2, 3]
    assert {g.name for g in snap.gpus} == {"NVIDIA A100-SXM4-80GB"}
    assert {g.memory_bytes for g in snap.gpus} == {80 * 1024**3}
    assert [g.bus_id for g in snap.gpus] == [
        "0000:07:00.0",
        "0000:0f:00.0",
        "0000:47:00.0",
        "0000:4e:00.0",
    ]
    # GPU 3 has no numa_node file: unreadable counts as node 0.
    assert [g.numa for g in snap.gpus] == [0, 0, 1, 0]
    assert all(g.healthy and not g.mig_enabled for g in snap.gpus)
    assert snap.driver_version == "550.54.15"
    assert a100.live == 0 and a100.inits == 1


def test_links_are_read_only_when_topology_is_asked_for(a100: Any) -> None:
    plain = binding.read_gpus(a100, sysfs_root="/nonexistent")
    assert all(not g.nvlinks and not g.ancestors for g in plain.gpus)
    linked = binding.read_gpus(a100, sysfs_root="/nonexistent", topology=True)
    g0, g1, g2, _ = linked.gpus
    assert [link.remote_bus_id for link in g0.nvlinks] == ["0000:0f:00.0"] * 4
    assert len(g1.nvlinks) == 5 and not any(link.remote_is_switch for link in g1.nvlinks)
    assert g0.ancestors[g1.uuid] == 40 and g0.ancestors[g2.uuid] == 50
    assert g2.ancestors[g0.uuid] == 50


@pytest.mark.parametrize(("content", "numa"), [("1\n", 1), ("-1\n", 0), ("garbage", 0), (None, 0)])
def test_numa_node_is_never_negative_or_a_crash(
    tmp_path: Path, content: str | None, numa: int
) -> None:
    device = tmp_path / "bus" / "pci" / "devices" / "0000:3b:00.0"
    device.mkdir(parents=True)
    if content is not None:
        (device / "numa_node").write_text(content)
    assert binding.read_numa_node("0000:3b:00.0", tmp_path) == numa


@pytest.mark.parametrize(
    ("raw", "want"),
    [
        (b"00000000:3B:00.0\x00\x00", "0000:3b:00.0"),
        ("00000001:AF:00.0", "0001:af:00.0"),
        ("0000:3B:00.0", "0000:3b:00.0"),
        ("0000", "0000"),
    ],
)
def test_bus_ids_are_named_as_sysfs_names_them(raw: bytes | str, want: str) -> None:
    assert binding.normalize_bus_id(raw) == want


def test_v100_host_has_no_nvlink_and_no_mig(v100: Any) -> None:
    snap = binding.read_gpus(v100, sysfs_root="/nonexistent", topology=True)
    assert [g.name for g in snap.gpus] == ["Tesla V100-PCIE-32GB"] * 2
    assert all(g.nvlinks == () and not g.mig_enabled and g.healthy for g in snap.gpus)
    a, b = snap.gpus
    assert a.ancestors == {b.uuid: 30}


def test_a_card_whose_handle_is_gone_is_skipped_with_the_reason(a100: Any) -> None:
    a100.gpus[2].gone = True
    snap = binding.read_gpus(a100, sysfs_root="/nonexistent")
    assert [g.index for g in snap.gpus] == [0, 1, 3]
    assert len(snap.skipped) == 1 and snap.skipped[0].startswith("GPU 2: ")


def test_a_card_lost_after_enumeration_is_reported_unhealthy(a100: Any) -> None:
    a100.gpus[1].lost = True
    snap = binding.read_gpus(a100, sysfs_root="/nonexistent", topology=True)
    lost = snap.gpus[1]
    assert not lost.healthy and lost.problem.startswith("index: ")
    assert lost.nvlinks == ()
    assert [g.healthy for g in snap.gpus] == [True, False, True, True]
    assert a100.live == 0


def test_memory_not_supported_is_none_not_zero(fakes: SimpleNamespace) -> None:
    gb10 = fakes.FakeGpu(uuid="GPU-gb10", name="NVIDIA GB10", memory_bytes=None, bus=1, mig=None)
    snap = binding.read_gpus(fakes.FakeNvml([gb10]), sysfs_root="/nonexistent")
    assert snap.gpus[0].memory_bytes is None and snap.gpus[0].healthy


def test_mig_mode_is_read(fakes: SimpleNamespace) -> None:
    card = fakes.FakeGpu(
        uuid="GPU-m", name="NVIDIA A100-SXM4-40GB", memory_bytes=1, bus=1, mig=True
    )
    assert binding.read_gpus(fakes.FakeNvml([card]), sysfs_root="/x").gpus[0].mig_enabled


def test_no_nvml_library_means_the_vendor_is_unavailable(fakes: SimpleNamespace) -> None:
    with pytest.raises(VendorUnavailable) as err:
        binding.read_gpus(fakes.FakeNvml([], library=False))
    assert err.value.vendor == "nvidia"
    assert "libnvidia-ml.so.1" in err.value.why


def test_critical_xid_marks_its_card_unhealthy_and_application_xids_do_not(
    a100: Any,
) -> None:
    a100.events = [(0, 13), (1, 79), (3, 43)]
    snap = binding.read_gpus(a100, sysfs_root="/x", xids=xid_policy(None))
    assert [g.healthy for g in snap.gpus] == [True, False, True, True]
    assert snap.gpus[1].problem == "XID 79"
    assert a100.events == []


def test_disabled_health_checks_ignore_every_xid(a100: Any) -> None:
    a100.events = [(1, 79)]
    snap = binding.read_gpus(a100, sysfs_root="/x", xids=xid_policy("xids"))
    assert all(g.healthy for g in snap.gpus)
    assert a100.events == [(1, 79)]  # not even drained


def test_xid_policy_follows_dp_disable_healthchecks() -> None:
    assert xid_policy(None).ignored == APPLICATION_XIDS
    assert not xid_policy("all").enabled
    policy = xid_policy("79, 48")
    assert not policy.is_critical(79) and not policy.is_critical(13)
    assert policy.is_critical(94)
    with pytest.raises(ConfigError, match="DP_DISABLE_HEALTHCHECKS"):
        xid_policy("sometimes")


def test_container_dirs_are_recreated_world_writable(tmp_path: Path) -> None:
    cache = tmp_path / "vgpu" / "containers" / "uid-1_main"
    cache.mkdir(parents=True)
    (cache / "stale.cache").write_text("old")
    lock = tmp_path / "vgpulock"
    assert binding.prepare_container_dirs(str(tmp_path), "uid-1", "main", str(lock)) == []
    assert cache.is_dir() and not (cache / "stale.cache").exists()
    assert cache.stat().st_mode & 0o777 == 0o777
    assert lock.stat().st_mode & 0o777 == 0o777


def test_license_is_detected_on_the_host(tmp_path: Path) -> None:
    assert not binding.license_present(str(tmp_path))
    (tmp_path / "vgpu").mkdir()
    (tmp_path / "vgpu" / "license").write_text("x")
    assert binding.license_present(str(tmp_path))
