"""cnmon's table, read from every recorded capture in tests/data."""

from pathlib import Path

import pytest
from hami_cambricon.errors import CnmonParseError
from hami_cambricon.parse_cnmon import CnmonCard, parse_cnmon

DATA = Path(__file__).parent / "data"


def test_every_recorded_sample_is_read() -> None:
    samples = sorted(DATA.glob("cnmon-*.txt"))
    assert [p.name for p in samples] == ["cnmon-MLU370-X4-1.txt", "cnmon-MLU370-X8-1.txt"]
    for path in samples:
        report = parse_cnmon(path.read_text(encoding="utf-8"))
        assert report.cards, path.name
        assert [c.index for c in report.cards] == list(range(len(report.cards)))


def test_the_v4_layout_with_driver_per_card_and_vmemory() -> None:
    report = parse_cnmon((DATA / "cnmon-MLU370-X4-1.txt").read_text(encoding="utf-8"))
    assert (report.version, report.driver) == ("4.20.11", None)
    assert len(report.cards) == 3
    assert report.cards[1] == CnmonCard(
        index=1,
        vf=None,
        model="MLU370-X4",
        firmware="1.1.6",
        driver="4.20.11",
        bus_id=None,
        util_percent=0.0,
        ecc_errors=None,
        fan_percent=0.0,
        temperature_c=33.0,
        power_w=25.0,
        power_cap_w=150.0,
        memory_used_mib=0,
        memory_total_mib=23308,
        vmemory_used_mib=10240,
        vmemory_total_mib=1048576,
        sriov=None,
        compute_mode=None,
    )


def test_the_v5_layout_with_bus_ids_and_compute_mode() -> None:
    report = parse_cnmon((DATA / "cnmon-MLU370-X8-1.txt").read_text(encoding="utf-8"))
    assert (report.version, report.driver) == ("5.10.13", "5.10.13")
    assert [(c.model, c.bus_id, c.memory_total_mib, c.temperature_c) for c in report.cards] == [
        ("MLU370-X8", "0000:39:00.0", 23374, 32.0),
        ("MLU370-X8", "0000:3D:00.0", 23374, 39.0),
    ]
    card = report.cards[0]
    assert (card.power_w, card.power_cap_w, card.sriov, card.compute_mode) == (
        106.0,
        250.0,
        None,
        "Default",
    )
    assert card.driver is None and card.vmemory_total_mib is None


def test_output_that_is_not_the_table_is_refused() -> None:
    with pytest.raises(CnmonParseError, match="no table header"):
        parse_cnmon("cnmon: command not found\n")
    text = (DATA / "cnmon-MLU370-X8-1.txt").read_text(encoding="utf-8")
    lines = text.splitlines()
    broken = "\n".join([*lines[:7], lines[7].replace("0 MiB/ 23374 MiB", "lots")])
    with pytest.raises(CnmonParseError, match=r"line 8: expected 'used MiB/ total MiB'"):
        parse_cnmon(broken)
    truncated = "\n".join(lines[:7])
    with pytest.raises(CnmonParseError, match="line 7: the card's second line is missing"):
        parse_cnmon(truncated)
