"""Reading both `mx-smi` table layouts recorded on real MetaX hosts (see data/README.md)."""

from pathlib import Path

import pytest
from hami_metax.parse_mxsmi import MxsmiParseError, parse_mxsmi

DATA = Path(__file__).parent / "data"


def sample(name: str) -> str:
    return (DATA / name).read_text(encoding="utf-8")


def test_new_layout_with_board_persistence_sgpu_mode_and_state() -> None:
    report = parse_mxsmi(sample("mx-smi-C500-2.txt"))
    assert (report.smi_version, report.driver_version, report.attached) == ("2.2.9", "3.4.4", 8)
    assert [c.index for c in report.cards] == list(range(8))
    first = report.cards[0]
    assert (first.name, first.bus_id) == ("MetaX C500", "0000:0e:00.0")
    assert (first.memory_used_mib, first.memory_total_mib) == (826, 65536)
    assert (first.utilization_percent, first.temperature_c) == (0, 35)
    assert (first.state, first.sgpu_mode) == ("Available", "Disabled")
    assert report.cards[7].bus_id == "0000:38:00.0"


def test_old_layout_under_load_with_a_process_table() -> None:
    report = parse_mxsmi(sample("mx-smi-MXC500-1.txt"))
    assert (report.smi_version, report.driver_version, report.attached) == ("2.1.6", "2.5.014", 4)
    assert [(c.index, c.name, c.bus_id) for c in report.cards] == [
        (0, "MXC500", "0000:05:00.0"),
        (1, "MXC500", "0000:08:00.0"),
        (2, "MXC500", "0000:0e:00.0"),
        (3, "MXC500", "0000:0f:00.0"),
    ]
    assert [c.memory_used_mib for c in report.cards] == [60982, 60534, 60534, 60534]
    assert {c.memory_total_mib for c in report.cards} == {65536}
    assert (report.cards[0].temperature_c, report.cards[0].state) == (51, None)


def test_a_topology_matrix_is_not_a_gpu_table() -> None:
    with pytest.raises(MxsmiParseError, match="no GPU table"):
        parse_mxsmi(sample("mx-smi-topo-m-C500-1.txt"))


def test_a_mangled_memory_cell_is_an_error_naming_the_gpu() -> None:
    text = sample("mx-smi-MXC500-1.txt").replace("60982/65536 MiB", "60982 of 64G    ")
    with pytest.raises(MxsmiParseError, match="GPU 0: memory cell '60982 of 64G'"):
        parse_mxsmi(text)


def test_a_gpu_row_cut_before_its_second_line_is_an_error() -> None:
    text = sample("mx-smi-C500-2.txt")
    cut = text[: text.index("| 57W / 350W")].rstrip("\n")
    with pytest.raises(MxsmiParseError, match="without its second line"):
        parse_mxsmi(cut)
