"""The Hygon DCU vendor passes hami's vendor contract."""

from pathlib import Path

import pytest
from hami_hygon import plugin

from hami_core.model import Device
from hami_core.testing.contract import ContractCase, VendorContract


def k100_ai(index: int) -> Device:
    """A K100_AI card as discovery reports it (its DRM nodes, PCI address and CUs)."""
    return Device(
        vendor="hygon",
        uuid=f"DCU-TPXS32001607060{index}",
        index=index,
        model="DCU-K100_AI",
        memory_mib=65520,
        mode="hami",
        paths=(f"/dev/dri/card{index + 1}", f"/dev/dri/renderD{128 + index}"),
        extras={
            "control_nodes": ["/dev/kfd", "/dev/mkfd"],
            "pci_bus_id": f"0000:{0x3D + index:02x}:00.0",
            "compute_units": 120,
        },
    )


class TestHygonContract(VendorContract):
    @pytest.fixture
    def contract_case(self, tmp_path: Path) -> ContractCase:
        return ContractCase(
            plugin=plugin,
            devices=[k100_ai(0), k100_ai(1)],
            config={"hygon": {"vdevDir": str(tmp_path / "vdev"), "exporterVdevDir": ""}},
            requests=[
                {"hygon.com/dcunum": "1", "hygon.com/dcumem": "16384", "hygon.com/dcucores": "25"},
                {"hygon.com/dcunum": "1"},
                {"hygon.com/dcunum": "2", "hygon.com/dcumem": "1024", "hygon.com/dcucores": "10"},
            ],
        )
