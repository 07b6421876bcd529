"""Reading `ixsmi` GPU tables recorded on real Iluvatar hosts (see data/README.md)."""

from pathlib import Path

import pytest
from hami_iluvatar.parse_ixsmi import IxsmiParseError, parse_ixsmi

DATA = Path(__file__).parent / "data"


def sample(name: str) -> str:
    return (DATA / name).read_text(encoding="utf-8")


def test_sixteen_bi_v150_chips_with_versions_and_memory() -> None:
    report = parse_ixsmi(sample("ixsmi-BI-V150-1.txt"))
    assert (report.ixml_version, report.driver_version) == ("4.1.0", "4.1.0")
    assert [c.index for c in report.cards] == list(range(16))
    first, last = report.cards[0], report.cards[-1]
    assert first.name == "Iluvatar BI-V150" and first.chip == "BI-V150"
    assert first.bus_id == "00000000:13:00.0"
    assert (first.memory_used_mib, first.memory_total_mib) == (116, 32768)
    assert (first.utilization_percent, first.temperature_c) == (0, 32)
    assert last.bus_id == "00000000:67:00.0" and last.temperature_c == 30
    assert {c.memory_total_mib for c in report.cards} == {32768}


def test_a_single_bi_v150s_without_timestamp_line() -> None:
    report = parse_ixsmi(sample("ixsmi-BI-V150S-1.txt"))
    assert report.ixml_version == "4.0.0" and report.driver_version == "4.1.0"
    (card,) = report.cards
    assert (card.index, card.chip, card.bus_id) == (0, "BI-V150S", "00000000:8A:00.0")
    assert (card.memory_used_mib, card.memory_total_mib, card.temperature_c) == (114, 32768, 33)


def test_output_without_a_gpu_table_is_an_error() -> None:
    with pytest.raises(IxsmiParseError, match="no GPU table"):
        parse_ixsmi("ixsmi: command failed\n")


def test_a_gpu_row_cut_before_its_memory_line_is_an_error_naming_it() -> None:
    text = sample("ixsmi-BI-V150S-1.txt")
    cut = text[: text.index("| 0%   33C")]
    with pytest.raises(IxsmiParseError, match="Iluvatar BI-V150S"):
        parse_ixsmi(cut.rstrip("\n"))


def test_a_mangled_memory_cell_is_an_error_naming_the_gpu() -> None:
    text = sample("ixsmi-BI-V150S-1.txt").replace("114MiB / 32768MiB", "114MiB of 32768  ")
    with pytest.raises(IxsmiParseError, match="GPU 0: memory cell"):
        parse_ixsmi(text)
