"""Moore Threads passes hami's vendor contract, with a card read from recorded tool output."""

from pathlib import Path

import pytest
from hami_mthreads import plugin
from hami_mthreads.discovery import devices_from_gmi
from hami_mthreads.parse_gmi import parse_gmi

from hami_core.testing.contract import ContractCase, VendorContract

SAMPLE = Path(__file__).parent / "data" / "mthreads-gmi-MTT_S80-1.txt"


class TestMthreadsContract(VendorContract):
    @pytest.fixture
    def contract_case(self) -> ContractCase:
        cards = devices_from_gmi(parse_gmi(SAMPLE.read_text(encoding="utf-8")), "mthreads")
        return ContractCase(
            plugin=plugin,
            devices=cards,
            requests=[
                {
                    "mthreads.com/vgpu": "1",
                    "mthreads.com/sgpu-memory": "4",
                    "mthreads.com/sgpu-core": "4",
                },
                {"mthreads.com/vgpu": "1", "mthreads.com/sgpu-memory": "8"},
                {"mthreads.com/vgpu": "1"},
            ],
            # What the MT device plugin advertises for one 16 GiB card: 16 core groups and
            # 16384 MiB / 512 MiB = 32 memory units.
            node_capacity={"mthreads.com/sgpu-core": "16", "mthreads.com/sgpu-memory": "32"},
            name="mthreads",
        )
