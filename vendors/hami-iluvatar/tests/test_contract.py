"""Iluvatar passes hami's vendor contract, with cards read from a recorded `ixsmi` output."""

from pathlib import Path

import pytest
from hami_iluvatar import plugin
from hami_iluvatar.discovery import devices_for_chip
from hami_iluvatar.parse_ixsmi import parse_ixsmi

from hami_core.testing.contract import ContractCase, VendorContract

SAMPLE = Path(__file__).parent / "data" / "ixsmi-BI-V150-1.txt"


class TestIluvatarContract(VendorContract):
    @pytest.fixture
    def contract_case(self) -> ContractCase:
        report = parse_ixsmi(SAMPLE.read_text(encoding="utf-8"))
        cards = devices_for_chip(report, "BI-V150", "iluvatar-bi-v150")[:4]
        return ContractCase(
            plugin=plugin,
            devices=cards,
            requests=[
                {"iluvatar.ai/BI-V150-vgpu": "1", "iluvatar.ai/BI-V150.vMem": "16"},
                {"iluvatar.ai/BI-V150-vgpu": "1", "iluvatar.ai/BI-V150.vCore": "30"},
                {"iluvatar.ai/BI-V150-vgpu": "2"},
            ],
            name="iluvatar",
        )
