"""Discovery: a node's DCUs as hami Devices, from the tool's outputs and the DRM nodes.

The node is built in a temporary directory: a stand-in hy-smi that prints a recorded table
(tests/data) and, for `--json`, per-card details; a /sys tree with Hygon and non-Hygon DRM
nodes; /dev/kfd.
"""

import json
import os
import stat
import sys
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

import pytest
from hami_hygon import binding
from hami_hygon.discovery import DrmNode, HostProbe, assign_drm_nodes, devices_from_probe
from hami_hygon.errors import DiscoveryError
from hami_hygon.parse_smi import SmiCard
from hami_hygon.settings import HygonSettings

from hami_core.model import VendorUnavailable
from hami_core.plugins import VendorRegistry, load_vendors

DATA = Path(__file__).parent / "data"
TABLE = (DATA / "hy-smi-K100_AI-1.txt").read_text(encoding="utf-8")

# Per-card details in the key names gpustack's rocm_smi detector reads for the JSON form (no
# unredacted capture of it is recorded; see tests/data/README.md).
DETAILS = {
    f"card{i}": {
        "Device ID": "0x6210",
        "Card Series": "K100_AI",
        "Card Vendor": "Chengdu Haiguang IC Design Co., Ltd.",
        "Serial Number": f"TPXS32001607060{i}",
        "Unique ID": f"7100fa886690406{i}",
        "vram Total Memory (MiB)": "65520",
        "vram Total Used Memory (MiB)": "2",
        "DCU use (%)": "0",
    }
    for i in range(4)
}


@pytest.fixture
def registry() -> VendorRegistry:
    return load_vendors(environ={"HAMI_VENDORS": "hygon"})


def fake_tool(tmp_path: Path, details: Mapping[str, object]) -> Path:
    (tmp_path / "table.txt").write_text(TABLE, encoding="utf-8")
    (tmp_path / "details.json").write_text(json.dumps(details), encoding="utf-8")
    tool = tmp_path / "hy-smi"
    tool.write_text(
        f"#!{sys.executable}\n"
        "import sys, pathlib\n"
        f"here = pathlib.Path({str(tmp_path)!r})\n"
        "name = 'details.json' if '--json' in sys.argv else 'table.txt'\n"
        "sys.stdout.write((here / name).read_text())\n",
        encoding="utf-8",
    )
    tool.chmod(tool.stat().st_mode | stat.S_IEXEC)
    return tool


def drm_node(sys_root: Path, name: str, bus: str, vendor: str, numa: int) -> None:
    device = sys_root / "devices" / "pci0000:00" / bus
    device.mkdir(parents=True, exist_ok=True)
    (device / "vendor").write_text(vendor + "\n")
    (device / "numa_node").write_text(f"{numa}\n")
    node = sys_root / "class" / "drm" / name
    node.mkdir(parents=True)
    os.symlink(device, node / "device")


def fake_node(tmp_path: Path) -> dict[str, str]:
    sys_root, dev_root = tmp_path / "sys", tmp_path / "dev"
    (sys_root / "class" / "kfd").mkdir(parents=True)
    drm_node(sys_root, "card0", "0000:02:00.0", "0x1a03", -1)  # the board's BMC display
    for i, bus in enumerate(("0000:3d:00.0", "0000:40:00.0", "0000:b1:00.0", "0000:b4:00.0")):
        drm_node(sys_root, f"card{i + 1}", bus, "0x1d94", 0 if i < 2 else 1)
        drm_node(sys_root, f"renderD{128 + i}", bus, "0x1d94", 0 if i < 2 else 1)
    (sys_root / "class" / "drm" / "card1-DP-1").mkdir()
    dev_root.mkdir()
    (dev_root / "kfd").write_text("")
    return {"sysRoot": str(sys_root), "devRoot": str(dev_root)}


def test_the_node_agent_finds_four_k100_ai_cards(registry: VendorRegistry, tmp_path: Path) -> None:
    tool = fake_tool(tmp_path, DETAILS)
    config = {"hygon": {"smiPath": str(tool), **fake_node(tmp_path)}}
    devices = registry.hook.hami_discover(spec=registry.spec("hygon"), config=config)
    assert [(d.uuid, d.index, d.model, d.memory_mib, d.numa) for d in devices] == [
        ("DCU-TPXS320016070600", 0, "DCU-K100_AI", 65520, 0),
        ("DCU-TPXS320016070601", 1, "DCU-K100_AI", 65520, 0),
        ("DCU-TPXS320016070602", 2, "DCU-K100_AI", 65520, 1),
        ("DCU-TPXS320016070603", 3, "DCU-K100_AI", 65520, 1),
    ]
    assert devices[2].paths == ("/dev/dri/card3", "/dev/dri/renderD130")
    assert all(d.health and d.mode == "hami" for d in devices)
    assert devices[0].extras["control_nodes"] == ["/dev/kfd"]
    assert devices[0].extras["pci_bus_id"] == "0000:3d:00.0"
    assert devices[0].extras["compute_units"] == 120


def test_discovered_cards_register_as_the_dcu_plugin_does(
    registry: VendorRegistry, tmp_path: Path
) -> None:
    spec = registry.spec("hygon")
    config = {"hygon": {"smiPath": str(fake_tool(tmp_path, DETAILS)), **fake_node(tmp_path)}}
    devices = registry.hook.hami_discover(spec=spec, config=config)
    infos = [registry.hook.hami_split(spec=spec, device=d, config=config) for d in devices[:2]]
    annotations = registry.hook.hami_annotate(spec=spec, devices=infos, config=config)
    assert annotations == {
        "hami.io/node-dcu-register": (
            "DCU-TPXS320016070600,4,65520,100,DCU-K100_AI,0,true,0,hami:"
            "DCU-TPXS320016070601,4,65520,100,DCU-K100_AI,0,true,1,hami:"
        )
    }


def test_without_kfd_the_cards_are_unhealthy(registry: VendorRegistry, tmp_path: Path) -> None:
    config = {"hygon": {"smiPath": str(fake_tool(tmp_path, DETAILS)), **fake_node(tmp_path)}}
    (tmp_path / "dev" / "kfd").unlink()
    devices = registry.hook.hami_discover(spec=registry.spec("hygon"), config=config)
    assert [d.health for d in devices] == [False] * 4
    assert devices[0].extras["control_nodes"] == []


def test_no_tool_or_no_driver_means_the_vendor_is_unavailable(
    registry: VendorRegistry, tmp_path: Path
) -> None:
    spec = registry.spec("hygon")
    missing = {"hygon": {"smiPath": str(tmp_path / "nowhere" / "hy-smi")}}
    with pytest.raises(VendorUnavailable, match=r"hygon: unavailable: none of .*hy-smi"):
        registry.hook.hami_discover(spec=spec, config=missing)
    no_driver = {"hygon": {"smiPath": str(fake_tool(tmp_path, DETAILS)), "sysRoot": "/nonexistent"}}
    with pytest.raises(VendorUnavailable, match="the DCU driver is not loaded"):
        registry.hook.hami_discover(spec=spec, config=no_driver)


def test_a_failing_tool_is_reported_with_its_message(tmp_path: Path) -> None:
    tool = tmp_path / "hy-smi"
    tool.write_text(f"#!{sys.executable}\nimport sys\nsys.exit('hydmi init failed')\n")
    tool.chmod(0o755)
    with pytest.raises(DiscoveryError, match="exit status 1: hydmi init failed"):
        binding.run_tool(str(tool), (), 5.0)


def test_a_card_the_details_do_not_describe_is_an_error(tmp_path: Path) -> None:
    probe = HostProbe(tool="hy-smi", table=TABLE, details=json.dumps({"card0": DETAILS["card0"]}))
    with pytest.raises(DiscoveryError, match="lists DCU 1, 2, 3 but its --json output"):
        devices_from_probe(probe)


def test_cards_without_memory_are_left_out_and_names_fall_back() -> None:
    details = {
        "card0": {**DETAILS["card0"], "vram Total Memory (MiB)": "0"},
        "card1": {
            "Device ID": "0x9999",
            "Card Series": "DCU K200 AI",
            "Serial Number": "",
            "Unique ID": "ab:cd",
            "vram Total Memory (MiB)": "49136",
        },
        "card2": DETAILS["card2"],
        "card3": DETAILS["card3"],
    }
    probe = HostProbe(tool="hy-smi", table=TABLE, details=json.dumps(details), kfd_ok=True)
    first = devices_from_probe(probe)[0]
    assert (first.uuid, first.model, first.memory_mib) == ("DCU-ab_cd", "DCU-K200_AI", 49136)
    assert "compute_units" not in first.extras
    units = devices_from_probe(probe, {"K200_AI": 128})[0].extras["compute_units"]
    assert units == 128


def test_drm_nodes_match_by_pci_address_before_position() -> None:
    cards = [
        SmiCard(0, None, None, None, "A", None, 1, None, "0000:40:00.0", None),
        SmiCard(1, None, None, None, "B", None, 1, None, None, None),
    ]
    nodes = [
        DrmNode("card2", "0000:3d:00.0"),
        DrmNode("renderD129", "0000:40:00.0"),
        DrmNode("card10", "0000:40:00.0"),
        DrmNode("renderD128", "0000:3d:00.0"),
    ]
    assigned = assign_drm_nodes(cards, nodes)
    assert [n.path for n in assigned[0]] == ["/dev/dri/card10", "/dev/dri/renderD129"]
    # card 1 reports no address: it gets the nodes left over, in order of their numbers
    assert [n.path for n in assigned[1]] == ["/dev/dri/card2", "/dev/dri/renderD128"]
    # no card reports an address: the i-th card gets the i-th nodes (the DCU plugin's rule)
    positional = assign_drm_nodes([replace(c, pci_bus_id=None) for c in cards], nodes)
    assert [[n.name for n in positional[i]] for i in (0, 1)] == [
        ["card2", "renderD128"],
        ["card10", "renderD129"],
    ]


def test_settings_name_a_bad_key() -> None:
    from hami_core.errors import ConfigError

    with pytest.raises(ConfigError, match=r"hygon\.vdevDir: expected an absolute path"):
        HygonSettings.from_section({"vdevDir": "relative/dir"})
    with pytest.raises(ConfigError, match=r"hygon\.computeUnits\.K100: expected a whole number"):
        HygonSettings.from_section({"computeUnits": {"K100": 0}})
    with pytest.raises(ConfigError, match=r"hygon\.smiTimeoutSeconds"):
        HygonSettings.from_section({"smiTimeoutSeconds": "soon"})
