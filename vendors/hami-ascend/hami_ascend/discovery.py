"""Turn the chips `npu-smi info` lists into hami `Device`s of one Ascend chip model (pure)."""

from __future__ import annotations

from collections.abc import Sequence

from hami_ascend.chips import ChipConfig
from hami_ascend.parse_npu_smi import NpuChip
from hami_core.model import Device

__all__ = ["device_uuid", "devices_from_chips"]


def device_uuid(chip: NpuChip) -> str:
    """A stable id for one chip on its node, from its PCI bus id (`npu-smi info` does not print
    the VDIE die id HAMi's Go plugin registers). Never contains `,` `:` or `;`, which HAMi's
    annotation codecs use as separators."""
    bus = chip.bus_id.lower().replace(":", "-")
    return f"ascend-{chip.name.lower()}-{bus}"


def devices_from_chips(vendor: str, config: ChipConfig, chips: Sequence[NpuChip]) -> list[Device]:
    """The chips whose name is `config.chip_name`, as `Device`s of vendor `vendor`.

    `index` is the position among them (0..n-1, contiguous, as HAMi's register expects);
    `extras` keep the tool's ids (`npu_id`, `chip_id`, `phy_id`, `bus_id`) for mounting.
    """
    devices: list[Device] = []
    for chip in chips:
        if chip.name != config.chip_name:
            continue
        phy = chip.physical_id
        devices.append(
            Device(
                vendor=vendor,
                uuid=device_uuid(chip),
                index=len(devices),
                model=chip.name,
                memory_mib=chip.total_memory_mib or config.memory_allocatable,
                cores=config.ai_core,
                numa=0,
                health=chip.healthy,
                mode="",
                paths=(f"/dev/davinci{phy}",),
                extras={
                    "npu_id": chip.npu_id,
                    "chip_id": chip.chip_id,
                    "phy_id": phy,
                    "bus_id": chip.bus_id,
                    "health": chip.health,
                },
            )
        )
    return devices
