"""Parsing recorded `nvidia-smi` outputs (real captures, see data/README.md)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from hami_nvidia.parse_smi import SmiError, parse_nvlink_status, parse_smi_query


def test_h100_query_lists_eight_gpus_with_their_identity(fakes: SimpleNamespace) -> None:
    text = (fakes.DATA / "nvidia-smi-q-H100-1.txt").read_text()
    gpus = parse_smi_query(text)
    assert len(gpus) == 8 == int(text.split("Attached GPUs")[1].split(":")[1].split()[0])
    first = gpus[0]
    assert first.bus_id == "00000000:19:00.0"
    assert first.name == "NVIDIA H100 80GB HBM3"
    assert first.uuid == "GPU-ee7954ec-da95-fd7a-ddfd-c6b32cc2f8aa"
    assert (first.minor, first.memory_mib, first.mig_current) == (0, 81559, "Disabled")
    assert [g.minor for g in gpus] == list(range(8))
    assert len({g.uuid for g in gpus}) == 8
    # Every UUID the parser found appears in the text on a "GPU UUID" line.
    uuid_lines = [line.split(":", 1)[1].strip() for line in text.splitlines() if "GPU UUID" in line]
    assert [g.uuid for g in gpus] == uuid_lines


def test_a100_nvlink_status_lists_twelve_links_per_gpu(fakes: SimpleNamespace) -> None:
    gpus = parse_nvlink_status((fakes.DATA / "nvidia-smi-nvlink-status-A100-1.txt").read_text())
    assert [g.index for g in gpus] == list(range(8))
    assert {g.name for g in gpus} == {"NVIDIA A100-SXM4-80GB"}
    assert gpus[0].uuid == "GPU-5269b708-678a-b1a8-60f0-c90406537486"
    assert all(g.active_links == 12 and set(g.links.values()) == {25.0} for g in gpus)


def test_inactive_links_do_not_count() -> None:
    text = "GPU 0: NVIDIA H100 (UUID: GPU-x)\n\t Link 0: 26.562 GB/s\n\t Link 1: <inactive>\n"
    (gpu,) = parse_nvlink_status(text)
    assert gpu.links == {0: 26.562, 1: None} and gpu.active_links == 1


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "no GPU listed"),
        ("         Link 0: 25 GB/s\n", "line 1: link before any GPU"),
        ("GPU 0: A (UUID: GPU-a)\nsomething else\n", "line 2: unexpected"),
    ],
)
def test_bad_nvlink_status_text_names_the_line(text: str, message: str) -> None:
    with pytest.raises(SmiError, match=message):
        parse_nvlink_status(text)


def test_bad_query_text_is_refused() -> None:
    with pytest.raises(SmiError, match="no 'GPU <bus id>' block"):
        parse_smi_query("NVIDIA-SMI has failed because it couldn't communicate with the driver")
    with pytest.raises(SmiError, match=r"line 1: GPU 00000000:19:00\.0 has no 'GPU UUID'"):
        parse_smi_query("GPU 00000000:19:00.0\n    Product Name : X\n")
