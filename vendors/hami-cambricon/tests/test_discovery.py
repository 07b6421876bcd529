"""Discovery: a node's MLUs from cnmon (a stand-in printing a recorded table) and /dev."""

import stat
import sys
from pathlib import Path

import pytest
from hami_cambricon import binding
from hami_cambricon.errors import DiscoveryError

from hami_core.model import VendorUnavailable
from hami_core.plugins import VendorRegistry, load_vendors

DATA = Path(__file__).parent / "data"


@pytest.fixture
def registry() -> VendorRegistry:
    return load_vendors(environ={"HAMI_VENDORS": "cambricon"})


def fake_cnmon(tmp_path: Path, sample: str) -> Path:
    tool = tmp_path / "cnmon"
    tool.write_text(
        f"#!{sys.executable}\nimport sys\n"
        f"sys.stdout.write(open({str(DATA / sample)!r}, encoding='utf-8').read())\n",
        encoding="utf-8",
    )
    tool.chmod(tool.stat().st_mode | stat.S_IEXEC)
    return tool


def fake_dev(tmp_path: Path, names: list[str]) -> str:
    dev = tmp_path / "dev"
    dev.mkdir()
    for name in names:
        (dev / name).write_text("")
    return str(dev)


def test_three_mlu370_x4_cards_and_their_nodes(registry: VendorRegistry, tmp_path: Path) -> None:
    dev = fake_dev(
        tmp_path,
        [
            "cambricon_ctl",
            *(f"cambricon_dev{i}" for i in range(3)),
            *(f"cambricon_ipcm{i}" for i in range(3)),
            "cambr-msgq:0",
            "cambr-rpc:0",
            "commu0",
            "nvidia0",
        ],
    )
    config = {
        "cambricon": {
            "cnmonPath": str(fake_cnmon(tmp_path, "cnmon-MLU370-X4-1.txt")),
            "devRoot": dev,
        }
    }
    devices = registry.hook.hami_discover(spec=registry.spec("cambricon"), config=config)
    assert [(d.uuid, d.index, d.model, d.memory_mib, d.health) for d in devices] == [
        ("cambricon-mlu-0", 0, "MLU370-X4", 23308, True),
        ("cambricon-mlu-1", 1, "MLU370-X4", 23308, True),
        ("cambricon-mlu-2", 2, "MLU370-X4", 23308, True),
    ]
    assert devices[0].paths == (
        "/dev/cambr-msgq:0",
        "/dev/cambr-rpc:0",
        "/dev/commu0",
        "/dev/cambricon_ipcm0",
        "/dev/cambricon_dev0",
    )
    assert devices[2].paths == ("/dev/cambricon_ipcm2", "/dev/cambricon_dev2")
    assert devices[0].extras["control_nodes"] == ["/dev/cambricon_ctl"]
    assert devices[0].extras["driver"] == "4.20.11"


def test_a_card_without_its_device_node_is_unhealthy(
    registry: VendorRegistry, tmp_path: Path
) -> None:
    dev = fake_dev(tmp_path, ["cambricon_dev0"])
    config = {
        "cambricon": {
            "cnmonPath": str(fake_cnmon(tmp_path, "cnmon-MLU370-X8-1.txt")),
            "devRoot": dev,
        }
    }
    devices = registry.hook.hami_discover(spec=registry.spec("cambricon"), config=config)
    assert [(d.index, d.health) for d in devices] == [(0, True), (1, False)]
    assert devices[1].extras["bus_id"] == "0000:3D:00.0"
    assert devices[0].extras["control_nodes"] == []


def test_discovered_cards_offer_vcore_and_vmemory_units_to_kubelet(
    registry: VendorRegistry, tmp_path: Path
) -> None:
    spec = registry.spec("cambricon")
    dev = fake_dev(tmp_path, ["cambricon_dev0", "cambricon_dev1"])
    config = {
        "cambricon": {
            "cnmonPath": str(fake_cnmon(tmp_path, "cnmon-MLU370-X8-1.txt")),
            "devRoot": dev,
        }
    }
    [card, _] = registry.hook.hami_discover(spec=spec, config=config)
    info = registry.hook.hami_split(spec=spec, device=card, config=config)
    assert (info.count, info.devmem, info.devcore) == (100, 23374, 100)
    advertise = registry.hook.hami_advertise
    assert advertise(spec=spec, resource="cambricon.com/mlu.smlu.vcore", device=info) == 100
    assert advertise(spec=spec, resource="cambricon.com/mlu.smlu.vmemory", device=info) == 91
    # no register annotation: the node is read back from its capacity
    assert registry.hook.hami_annotate(spec=spec, devices=[info], config=config) == {}


def test_no_cnmon_or_no_driver_means_the_vendor_is_unavailable(
    registry: VendorRegistry, tmp_path: Path
) -> None:
    spec = registry.spec("cambricon")
    missing = {"cambricon": {"cnmonPath": str(tmp_path / "bin" / "cnmon")}}
    with pytest.raises(VendorUnavailable, match=r"cambricon: unavailable: .* is not installed"):
        registry.hook.hami_discover(spec=spec, config=missing)
    tool = fake_cnmon(tmp_path, "cnmon-MLU370-X8-1.txt")
    no_driver = {"cambricon": {"cnmonPath": str(tool), "devRoot": fake_dev(tmp_path, [])}}
    with pytest.raises(VendorUnavailable, match="no cambricon_dev\\* node"):
        registry.hook.hami_discover(spec=spec, config=no_driver)


def test_a_failing_cnmon_is_reported_with_its_message(tmp_path: Path) -> None:
    tool = tmp_path / "cnmon"
    tool.write_text(f"#!{sys.executable}\nimport sys\nsys.exit('cndev init failed')\n")
    tool.chmod(0o755)
    with pytest.raises(DiscoveryError, match="exit status 1: cndev init failed"):
        binding.run_cnmon(str(tool), 5.0)
