"""The NVIDIA vendor passes hami's vendor contract."""

import pytest
from hami_nvidia import plugin
from hami_nvidia.spec import VOLCANO_KEY

from hami_core.model import Device
from hami_core.plugins import VendorRegistry, load_vendors
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


class TestNvidiaVolcanoContract(VendorContract):
    """The opt-in Volcano-protocol spec, loaded the way a node selects it (`HAMI_VENDORS`)."""

    @pytest.fixture
    def registry(self, contract_case: ContractCase) -> VendorRegistry:
        return load_vendors(
            environ={"HAMI_VENDORS": VOLCANO_KEY},
            entry_points_=[],
            plugins=[(contract_case.name, contract_case.plugin)],
        )

    @pytest.fixture
    def contract_case(self, tmp_path: object) -> ContractCase:
        cards = [
            Device(
                vendor=VOLCANO_KEY,
                uuid=f"GPU-c0ffee0{i}-0000-4000-8000-000000000000",
                index=i,
                model="Tesla V100-PCIE-32GB",
                memory_mib=32768,
            )
            for i in range(2)
        ]
        return ContractCase(
            plugin=plugin,
            devices=cards,
            config={"nvidia": {"hookPath": str(tmp_path), "gpuMemoryFactor": 256}},
            requests=[
                {
                    "volcano.sh/vgpu-number": "1",
                    "volcano.sh/vgpu-memory": "12",
                    "volcano.sh/vgpu-cores": "30",
                },
                {"volcano.sh/vgpu-number": "2", "volcano.sh/vgpu-memory-percentage": "25"},
            ],
            name="nvidia",
        )
