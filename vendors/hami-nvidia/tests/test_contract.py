"""The NVIDIA vendor passes hami's vendor contract."""

import pytest
from hami_nvidia import plugin

from hami_core.model import Device
from hami_core.testing.contract import ContractCase, VendorContract


class TestNvidiaContract(VendorContract):
    @pytest.fixture
    def contract_case(self, tmp_path: object) -> ContractCase:
        cards = [
            Device(
                vendor="nvidia",
                uuid=f"GPU-c0ffee0{i}-0000-4000-8000-000000000000",
                index=i,
                model="Tesla V100-PCIE-32GB" if i else "NVIDIA A100-SXM4-80GB",
                memory_mib=32768 if i else 81920,
                numa=i,
            )
            for i in range(2)
        ]
        return ContractCase(
            plugin=plugin,
            devices=cards,
            config={"nvidia": {"hookPath": str(tmp_path)}},
            requests=[
                {"nvidia.com/gpu": "1", "nvidia.com/gpumem": "3000", "nvidia.com/gpucores": "30"},
                {"nvidia.com/gpu": "2", "nvidia.com/gpumem-percentage": "25"},
                {"nvidia.com/gpu": "1"},
            ],
            name="nvidia",
        )
