"""Reading `mthreads-gmi` tables recorded on real Moore Threads hosts (see data/README.md)."""

from pathlib import Path

import pytest
from hami_mthreads.parse_gmi import GmiParseError, parse_gmi

DATA = Path(__file__).parent / "data"


def sample(name: str) -> str:
    return (DATA / name).read_text(encoding="utf-8")


def test_truncated_s4000_capture_with_used_above_total_keeps_both_numbers() -> None:
    report = parse_gmi(sample("mthreads-gmi-MTT_S4000-1.txt"))
    assert (report.gmi_version, report.driver_version) == ("1.12.2", "1.2.0")
    (card,) = report.cards
    assert (card.index, card.name, card.bus_id) == (0, "MTT S4000", "00000000:08:00.0")
    assert (card.memory_used_mib, card.memory_total_mib) == (44302, 32768)
    assert (card.utilization_percent, card.device_type, card.temperature_c) == (88, "Physical", 65)


def test_s80_under_load_ignores_the_process_table() -> None:
    report = parse_gmi(sample("mthreads-gmi-MTT_S80-1.txt"))
    assert (report.gmi_version, report.driver_version) == ("1.14.0", "2.7.0")
    (card,) = report.cards
    assert (card.name, card.memory_used_mib, card.memory_total_mib) == ("MTT S80", 1339, 16384)
    assert (card.utilization_percent, card.temperature_c) == (98, 56)


def test_text_without_the_gpu_table_is_an_error() -> None:
    with pytest.raises(GmiParseError, match="no GPU table"):
        parse_gmi("mthreads-gmi: failed to initialize MTML\n")


def test_a_mangled_memory_field_is_an_error_naming_the_gpu() -> None:
    text = sample("mthreads-gmi-MTT_S80-1.txt").replace("1339MiB(16384MiB)", "1339MiB of 16G")
    with pytest.raises(GmiParseError, match="GPU 0: memory '1339MiB of 16G'"):
        parse_gmi(text)
