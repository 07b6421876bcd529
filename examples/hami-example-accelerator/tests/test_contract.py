"""The example accelerator passes hami's vendor contract."""

import pytest
from hami_example import plugin

from hami_core.model import Device
from hami_core.testing.contract import ContractCase, VendorContract


class TestExampleContract(VendorContract):
    @pytest.fixture
    def contract_case(self) -> ContractCase:
        cards = [
            Device(vendor="example", uuid=f"XPU-{i}", index=i, model="XPU-1", memory_mib=16384)
            for i in range(2)
        ]
        return ContractCase(
            plugin=plugin,
            devices=cards,
            requests=[
                {"example.com/xpu": "1", "example.com/xpu-memory": "4096"},
                {"example.com/xpu": "2", "example.com/xpu-cores": "30"},
            ],
        )
