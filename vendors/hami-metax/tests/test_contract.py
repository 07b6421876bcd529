"""MetaX (whole-card mode) passes hami's vendor contract, with cards from a recorded `mx-smi`."""

from pathlib import Path

import pytest
from hami_metax import plugin
from hami_metax.discovery import devices_from_mxsmi
from hami_metax.parse_mxsmi import parse_mxsmi

from hami_core.testing.contract import ContractCase, VendorContract

SAMPLE = Path(__file__).parent / "data" / "mx-smi-C500-2.txt"


class TestMetaxContract(VendorContract):
    @pytest.fixture
    def contract_case(self) -> ContractCase:
        cards = devices_from_mxsmi(parse_mxsmi(SAMPLE.read_text(encoding="utf-8")), "metax")
        return ContractCase(
            plugin=plugin,
            devices=cards,
            requests=[{"metax-tech.com/gpu": "1"}, {"metax-tech.com/gpu": "2"}],
            node_capacity={"metax-tech.com/gpu": str(len(cards))},
            name="metax",
        )
