"""`npu-smi info` parsing on recorded outputs, and discovery through `hami_discover` running a
stand-in `npu-smi` that prints those outputs."""

from __future__ import annotations

import stat
from collections.abc import Callable
from pathlib import Path

import pytest
from hami_ascend.parse_npu_smi import NpuSmiFormatError, parse_npu_smi_info

from hami_core.model import Device, VendorSpec, VendorUnavailable
from hami_core.plugins import VendorRegistry

DATA = Path(__file__).parent / "data"


def _sample(name: str) -> str:
    return (DATA / name).read_text(encoding="utf-8")


def test_eight_910b3_npus() -> None:
    chips = parse_npu_smi_info(_sample("npu-smi-info-910B3-1.txt"))
    assert [c.npu_id for c in chips] == list(range(8))
    assert {c.name for c in chips} == {"910B3"}
    assert all(c.healthy and c.chip_id == 0 and c.second_id is None for c in chips)
    assert [c.bus_id for c in chips][:3] == ["0000:C1:00.0", "0000:C2:00.0", "0000:81:00.0"]
    first, last = chips[0], chips[-1]
    assert (first.hbm_used_mib, first.hbm_total_mib) == (3318, 65536)
    assert (last.hbm_used_mib, last.total_memory_mib) == (3315, 65536)
    assert (first.memory_used_mib, first.memory_total_mib, first.aicore_percent) == (0, 0, 0)
    assert [c.physical_id for c in chips] == list(range(8))


def test_single_910b3_with_a_process_table() -> None:
    chips = parse_npu_smi_info(_sample("npu-smi-info-910B3-2.txt"))
    assert len(chips) == 1
    chip = chips[0]
    assert (chip.npu_id, chip.name, chip.bus_id, chip.physical_id) == (
        4,
        "910B3",
        "0000:01:00.0",
        4,
    )
    assert (chip.hbm_used_mib, chip.hbm_total_mib) == (3161, 65536)


def test_310p3_has_a_device_column_and_no_hbm() -> None:
    chips = parse_npu_smi_info(_sample("npu-smi-info-310P3-1.txt"))
    assert [(c.npu_id, c.chip_id, c.second_id) for c in chips] == [(4, 0, 0), (5, 0, 1)]
    assert {c.second_id_label for c in chips} == {"Device"}
    assert [c.physical_id for c in chips] == [0, 1]
    assert [(c.memory_used_mib, c.total_memory_mib) for c in chips] == [
        (1848, 21525),
        (1849, 21525),
    ]
    assert all(c.hbm_total_mib is None and c.healthy for c in chips)


def test_other_npu_smi_output_is_refused_with_a_reason() -> None:
    with pytest.raises(NpuSmiFormatError, match="no device table header"):
        parse_npu_smi_info(_sample("npu-smi-info-t-topo-910B3-1.txt"))
    with pytest.raises(NpuSmiFormatError, match="no device table header"):
        parse_npu_smi_info("")


def test_a_damaged_table_names_the_line() -> None:
    lines = _sample("npu-smi-info-910B3-2.txt").splitlines()
    lines[6] = "| x     910B3               | OK            | 93.6        40                0 / 0 |"
    with pytest.raises(NpuSmiFormatError, match="line 7"):
        parse_npu_smi_info("\n".join(lines))
    chip_first = _sample("npu-smi-info-910B3-2.txt").splitlines()
    del chip_first[6]
    with pytest.raises(NpuSmiFormatError, match="before any NPU row"):
        parse_npu_smi_info("\n".join(chip_first))


def test_an_unhealthy_npu_is_reported_unhealthy() -> None:
    text = _sample("npu-smi-info-910B3-2.txt").replace("| OK            |", "| Warning       |")
    (chip,) = parse_npu_smi_info(text)
    assert chip.health == "Warning" and not chip.healthy


def _fake_npu_smi(tmp_path: Path, body: str) -> str:
    tool = tmp_path / "npu-smi"
    tool.write_text("#!/bin/sh\n" + body, encoding="utf-8")
    tool.chmod(tool.stat().st_mode | stat.S_IXUSR)
    return str(tool)


def test_discover_runs_npu_smi_and_keeps_this_chips_npus(
    registry: VendorRegistry, spec: Callable[[str], VendorSpec], tmp_path: Path
) -> None:
    tool = _fake_npu_smi(
        tmp_path, f'[ "$1" = info ] && cat "{DATA / "npu-smi-info-910B3-1.txt"}"\n'
    )
    config = {"vnpus": {"npuSmiPath": tool}}
    found = registry.hook.hami_discover(spec=spec("ascend910b3"), config=config)
    assert isinstance(found, list) and len(found) == 8
    assert all(isinstance(d, Device) for d in found)
    assert [d.index for d in found] == list(range(8))
    assert [d.extras["phy_id"] for d in found] == list(range(8))
    assert found[0].uuid == "ascend-910b3-0000-c1-00.0"
    assert len({d.uuid for d in found}) == 8
    assert {(d.vendor, d.model, d.memory_mib, d.cores) for d in found} == {
        ("ascend910b3", "910B3", 65536, 20)
    }
    # The same host has no 310P NPUs.
    assert registry.hook.hami_discover(spec=spec("ascend310p"), config=config) == []


def test_discover_310p_uses_the_device_column_as_physical_id(
    registry: VendorRegistry, spec: Callable[[str], VendorSpec], tmp_path: Path
) -> None:
    tool = _fake_npu_smi(tmp_path, f'cat "{DATA / "npu-smi-info-310P3-1.txt"}"\n')
    found = registry.hook.hami_discover(
        spec=spec("ascend310p"), config={"vnpus": {"npuSmiPath": tool}}
    )
    assert [(d.index, d.extras["npu_id"], d.extras["phy_id"]) for d in found] == [
        (0, 4, 0),
        (1, 5, 1),
    ]
    assert [d.paths for d in found] == [("/dev/davinci0",), ("/dev/davinci1",)]


def test_absent_npu_smi_makes_the_vendor_unavailable(
    registry: VendorRegistry, spec: Callable[[str], VendorSpec], tmp_path: Path
) -> None:
    missing = str(tmp_path / "no-such-npu-smi")
    with pytest.raises(VendorUnavailable) as err:
        registry.hook.hami_discover(
            spec=spec("ascend910b3"), config={"vnpus": {"npuSmiPath": missing}}
        )
    assert err.value.vendor == "ascend910b3"
    assert missing in err.value.why


def test_failing_npu_smi_makes_the_vendor_unavailable(
    registry: VendorRegistry, spec: Callable[[str], VendorSpec], tmp_path: Path
) -> None:
    tool = _fake_npu_smi(tmp_path, 'echo "dcmi module initialize failed" >&2\nexit 8\n')
    with pytest.raises(VendorUnavailable, match="exit status 8: dcmi module initialize failed"):
        registry.hook.hami_discover(
            spec=spec("ascend910b3"), config={"vnpus": {"npuSmiPath": tool}}
        )
