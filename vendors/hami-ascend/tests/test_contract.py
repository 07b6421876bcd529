"""hami-ascend passes hami's vendor contract, on NPUs discovered from recorded `npu-smi info`
outputs (an 8 x 910B3 host and a 2 x 310P3 host)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hami_ascend import plugin
from hami_ascend.catalogue import SHIPPED
from hami_ascend.discovery import devices_from_chips
from hami_ascend.parse_npu_smi import parse_npu_smi_info

from hami_core.model import Device
from hami_core.testing.contract import ContractCase, VendorContract

DATA = Path(__file__).parent / "data"


def _discovered(sample: str, common_word: str) -> list[Device]:
    chip = SHIPPED.chip(common_word)
    assert chip is not None
    text = (DATA / sample).read_text(encoding="utf-8")
    return devices_from_chips(chip.key, chip, parse_npu_smi_info(text))


class TestAscendContract(VendorContract):
    @pytest.fixture
    def contract_case(self) -> ContractCase:
        devices = _discovered("npu-smi-info-910B3-1.txt", "Ascend910B3") + _discovered(
            "npu-smi-info-310P3-1.txt", "Ascend310P"
        )
        return ContractCase(
            plugin=plugin,
            name="ascend",
            devices=devices,
            requests=[
                {"huawei.com/Ascend910B3": "1", "huawei.com/Ascend910B3-memory": "12288"},
                {"huawei.com/Ascend910B3": "1", "huawei.com/Ascend910B3-memory": "30000"},
                {"huawei.com/Ascend910B3": "2"},
                {"huawei.com/Ascend310P": "1", "huawei.com/Ascend310P-memory": "3000"},
                {"huawei.com/Ascend310P": "1"},
            ],
        )
