"""The Cambricon MLU vendor passes hami's vendor contract."""

import pytest
from hami_cambricon import plugin

from hami_core.model import Device
from hami_core.testing.contract import ContractCase, VendorContract


def mlu370_x8(slot: int) -> Device:
    """An MLU370-X8 as discovery reports it (see tests/data/cnmon-MLU370-X8-1.txt)."""
    return Device(
        vendor="cambricon",
        uuid=f"cambricon-mlu-{slot}",
        index=slot,
        model="MLU370-X8",
        memory_mib=23374,
        paths=(f"/dev/cambricon_ipcm{slot}", f"/dev/cambricon_dev{slot}"),
        extras={"control_nodes": ["/dev/cambricon_ctl"]},
    )


class TestCambriconContract(VendorContract):
    @pytest.fixture
    def contract_case(self) -> ContractCase:
        return ContractCase(
            plugin=plugin,
            devices=[mlu370_x8(0), mlu370_x8(1)],
            # what kubelet shows once a plugin advertises the two cards: 100 vcore and
            # 23374 // 256 = 91 vmemory units each
            node_capacity={
                "cambricon.com/mlu.smlu.vcore": "200",
                "cambricon.com/mlu.smlu.vmemory": "182",
            },
            config={"cambricon": {"sliceWithoutInstance": "whole-card"}},
            requests=[
                {
                    "cambricon.com/vmlu": "1",
                    "cambricon.com/mlu.smlu.vmemory": "20",
                    "cambricon.com/mlu.smlu.vcore": "10",
                },
                {"cambricon.com/vmlu": "1"},
                {"cambricon.com/vmlu": "2", "cambricon.com/mlu.smlu.vcore": "5"},
            ],
        )
