"""hy-smi / rocm-smi readers, on every recorded capture in tests/data."""

import json
from pathlib import Path

import pytest
from hami_hygon.errors import SmiParseError
from hami_hygon.parse_smi import SmiRow, parse_smi_json, parse_smi_table

DATA = Path(__file__).parent / "data"
SAMPLES = sorted(DATA.glob("*-smi-*.txt"))


def test_every_recorded_sample_is_read() -> None:
    assert [p.name for p in SAMPLES] == [
        "hy-smi-DCU-600W-1.txt",
        "hy-smi-K100_AI-1.txt",
        "rocm-smi-K100-1.txt",
    ]
    for path in SAMPLES:
        rows = parse_smi_table(path.read_text(encoding="utf-8"))
        assert [r.index for r in rows] == list(range(len(rows))), path.name
        assert all(r.mode == "Normal" for r in rows), path.name


def test_a_loaded_eight_card_node_under_hy_smi() -> None:
    rows = parse_smi_table((DATA / "hy-smi-DCU-600W-1.txt").read_text(encoding="utf-8"))
    assert len(rows) == 8
    assert rows[0] == SmiRow(
        index=0,
        temperature_c=67.0,
        power_w=8.0,
        perf="manual",
        power_cap_w=600.0,
        vram_percent=87.0,
        use_percent=74.0,
        mode="Normal",
    )
    assert [r.use_percent for r in rows] == [74, 29, 31, 28, 35, 17, 37, 46]
    assert {r.vram_percent for r in rows[1:]} == {85.0}


def test_a_capture_that_starts_with_a_blank_line() -> None:
    text = (DATA / "hy-smi-K100_AI-1.txt").read_text(encoding="utf-8")
    assert text.startswith("\n")
    rows = parse_smi_table(text)
    assert [(r.index, r.power_w, r.power_cap_w) for r in rows] == [
        (0, 118.0, 800.0),
        (1, 120.0, 800.0),
        (2, 116.0, 800.0),
        (3, 138.0, 800.0),
    ]


def test_rocm_smi_rows_with_trailing_spaces_and_no_end_banner() -> None:
    text = (DATA / "rocm-smi-K100-1.txt").read_text(encoding="utf-8")
    assert "End of SMI Log" not in text
    rows = parse_smi_table(text)
    assert len(rows) == 8
    assert rows[7] == SmiRow(7, 54.0, 96.0, "auto", 300.0, 0.0, 0.0, "Normal")


def test_a_table_without_header_or_with_a_short_row_is_refused() -> None:
    with pytest.raises(SmiParseError, match="no header line"):
        parse_smi_table("hy-smi: command failed\n")
    header = "DCU     Temp     AvgPwr     Perf     PwrCap     VRAM%      DCU%      Mode\n"
    with pytest.raises(SmiParseError, match=r"line 2: 3 fields for 8 columns"):
        parse_smi_table(header + "0  49.0C  118.0W\n")
    with pytest.raises(SmiParseError, match="line 2: not a DCU row"):
        parse_smi_table(header + "Error: device lost\n")


def test_na_values_read_as_none() -> None:
    header = "DCU     Temp     AvgPwr     Perf     PwrCap     VRAM%      DCU%      Mode\n"
    [row] = parse_smi_table(header + "0  N/A  N/A  auto  N/A  N/A  N/A  Normal\n")
    assert (row.temperature_c, row.power_w, row.vram_percent, row.use_percent) == (
        None,
        None,
        None,
        None,
    )


# No unredacted capture of the --json form is recorded (tests/data/README.md); these inputs use
# the key names gpustack's rocm_smi detector reads on Hygon (`Device ID`, `Card Series`, `Serial
# Number`, `Unique ID`, `vram Total Memory (MiB)`, `DCU use (%)`), to pin down the reader's rules.


def test_json_cards_are_read_by_index_whatever_the_key_spelling() -> None:
    text = json.dumps(
        {
            "card1": {
                "Device ID": "0x6210",
                "Card series": "K100_AI",
                "Serial Number": "TPXS320016070601",
                "Unique ID": "7100fa8866904061",
                "VRAM Total Memory (B)": str(65520 * 1024 * 1024),
                "VRAM Total Used Memory (B)": "2097152",
                "PCI Bus": "0000:3D:00.0",
                "HCU use (%)": "3",
            },
            "card0": {
                "Device ID": "0x55b7",
                "Card Series": "Z100L",
                "Serial Number": "N/A",
                "Unique ID": "51a3c0ffee",
                "vram Total Memory (MiB)": "32752",
                "vram Total Used Memory (MiB)": "0",
                "DCU use (%)": "0",
            },
            "system": {"Driver version": "6.2.26"},
        }
    )
    first, second = parse_smi_json(text)
    assert (first.index, first.device_id, first.series, first.serial) == (
        0,
        "0x55b7",
        "Z100L",
        None,
    )
    assert (first.unique_id, first.memory_mib, first.pci_bus_id) == ("51a3c0ffee", 32752, None)
    assert (second.index, second.serial, second.memory_mib, second.memory_used_mib) == (
        1,
        "TPXS320016070601",
        65520,
        2,
    )
    assert (second.pci_bus_id, second.use_percent) == ("0000:3D:00.0", 3.0)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("not json", "not JSON"),
        ("[1, 2]", "expected an object of cards, got list"),
        ('{"card0": "Z100"}', "card0: expected an object"),
        ('{"card0": {"vram Total Memory (MiB)": "lots"}}', "card0: 'vram Total Memory"),
    ],
)
def test_bad_json_names_the_problem(text: str, message: str) -> None:
    with pytest.raises(SmiParseError, match=message):
        parse_smi_json(text)
