"""Iluvatar rules, exercised through the hook relay as the scheduler and node agent call them."""

import os
import stat
from pathlib import Path
from typing import Any

import pytest
from hami_iluvatar import binding, plugin
from hami_iluvatar.mount import MountError
from hami_iluvatar.spec import chip_spec

from hami_core.errors import ConfigError, RequestError
from hami_core.model import (
    ContainerAllocation,
    ContainerDevice,
    ContainerRequest,
    DeviceUsage,
    FitContext,
    NodeView,
    PodView,
    VendorUnavailable,
)
from hami_core.plugins import VendorRegistry, load_vendors

DATA = Path(__file__).parent / "data"
BI = chip_spec("BI-V150")
MR = chip_spec("MR-V100")


@pytest.fixture
def registry() -> VendorRegistry:
    return load_vendors(environ={}, entry_points_=[], plugins=[("iluvatar", plugin)])


def container(limits: dict[str, str], name: str = "main", **extra: Any) -> dict[str, Any]:
    return {"name": name, "resources": {"limits": limits}, **extra}


def request(registry: VendorRegistry, limits: dict[str, str], config: Any = None) -> Any:
    pod = PodView(namespace="ns", name="p", uid="u", annotations={})
    return registry.hook.hami_request(
        spec=registry.spec(BI.key),
        container=container(limits),
        index=0,
        init=False,
        pod=pod,
        config=config or {},
    )


def test_one_vendor_per_chip_with_hamis_names(registry: VendorRegistry) -> None:
    assert [s.common_word for s in registry.specs()] == ["BI-V100", "BI-V150", "MR-V100", "MR-V50"]
    spec = registry.spec("iluvatar-bi-v150")
    assert spec.resources.count == "iluvatar.ai/BI-V150-vgpu"
    assert spec.resources.memory == "iluvatar.ai/BI-V150.vMem"
    assert spec.resources.cores == "iluvatar.ai/BI-V150.vCore"
    assert spec.annotations.node_register == "hami.io/node-BI-V150-register"
    assert spec.annotations.handshake == "hami.io/node-handshake-BI-V150"
    assert spec.annotations.use_uuid == "hami.io/use-BI-V150-uuid"
    assert spec.annotations.nouse_uuid == "hami.io/no-use-BI-V150-uuid"
    assert spec.annotations.decision_keys() == (
        "hami.io/BI-V150-devices-to-allocate",
        "hami.io/BI-V150-devices-allocated",
    )
    assert registry.vendor_for_resource("iluvatar.ai/MR-V50.vMem") == registry.spec(
        "iluvatar-mr-v50"
    )


def test_vmem_is_counted_in_256_mib_units(registry: VendorRegistry) -> None:
    got = request(registry, {"iluvatar.ai/BI-V150-vgpu": "1", "iluvatar.ai/BI-V150.vMem": "16"})
    assert (got.count, got.memory_mib, got.memory_percent, got.cores) == (1, 4096, None, 0)


def test_no_vmem_means_all_of_the_cards_memory_and_no_cores(registry: VendorRegistry) -> None:
    got = request(registry, {"iluvatar.ai/BI-V150-vgpu": "1"})
    assert (got.memory_mib, got.memory_percent, got.cores) == (0, 100, 0)
    assert got.memory_for(32768) == 32768


def test_more_than_one_card_takes_whole_cards_even_with_vmem(registry: VendorRegistry) -> None:
    got = request(registry, {"iluvatar.ai/BI-V150-vgpu": "2", "iluvatar.ai/BI-V150.vMem": "8"})
    assert (got.count, got.memory_percent, got.cores) == (2, 100, 100)


def test_a_fractional_vmem_is_refused_naming_the_resource(registry: VendorRegistry) -> None:
    with pytest.raises(RequestError, match=r"iluvatar\.ai/BI-V150\.vMem"):
        request(registry, {"iluvatar.ai/BI-V150-vgpu": "1", "iluvatar.ai/BI-V150.vMem": "1.5"})


def test_webhook_forces_vcore_to_count_times_100_and_names_the_container(
    registry: VendorRegistry,
) -> None:
    got = registry.hook.hami_mutate(
        spec=BI, container=container({"iluvatar.ai/BI-V150-vgpu": "3"}), pod={}, config={}
    )
    assert got.uses_vendor
    assert got.limits == {"iluvatar.ai/BI-V150.vCore": "300"}
    assert got.env == {"SOL_CONTINER_NAME": "main"}


def test_webhook_leaves_one_card_alone_but_for_the_env(registry: VendorRegistry) -> None:
    got = registry.hook.hami_mutate(
        spec=BI, container=container({"iluvatar.ai/BI-V150-vgpu": "1"}), pod={}, config={}
    )
    assert got.limits == {} and got.env == {"SOL_CONTINER_NAME": "main"}
    preset = container(
        {"iluvatar.ai/BI-V150-vgpu": "1"}, env=[{"name": "SOL_CONTINER_NAME", "value": "x"}]
    )
    assert registry.hook.hami_mutate(spec=BI, container=preset, pod={}, config={}).env == {}


def test_memory_alone_asks_for_one_card(registry: VendorRegistry) -> None:
    limits = {"iluvatar.ai/BI-V150.vMem": "8"}
    got = registry.hook.hami_mutate(spec=BI, container=container(limits), pod={}, config={})
    assert got.limits == {"iluvatar.ai/BI-V150-vgpu": "1"}
    assert got.env == {"SOL_CONTINER_NAME": "main"}
    assert (request(registry, limits).count, request(registry, limits).memory_mib) == (1, 2048)


def test_webhook_ignores_containers_without_this_chip(registry: VendorRegistry) -> None:
    got = registry.hook.hami_mutate(
        spec=MR, container=container({"iluvatar.ai/BI-V150-vgpu": "2"}), pod={}, config={}
    )
    assert got.is_empty() and not got.uses_vendor


def test_legacy_register_text_written_by_gpu_manager_reads_back(registry: VendorRegistry) -> None:
    node = NodeView(
        name="n1",
        annotations={"hami.io/node-MR-V100-register": "GPU-0,10,8192,100,MR-V100,0,true:"},
    )
    (card,) = registry.hook.hami_read_node(spec=MR, node=node, config={})
    assert (card.id, card.count, card.devmem, card.devcore, card.type) == (
        "GPU-0",
        10,
        8192,
        100,
        "MR-V100",
    )
    assert registry.hook.hami_read_node(spec=BI, node=node, config={}) == []


def test_split_types_cards_with_the_chip_and_reads_the_iluvatars_entry(
    registry: VendorRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(binding, "run_ixsmi", lambda: (DATA / "ixsmi-BI-V150-1.txt").read_text())
    config = {"iluvatars": [{"chipName": "BI-V150", "deviceSplitCount": 4}]}
    cards = registry.hook.hami_discover(spec=BI, config=config)
    info = registry.hook.hami_split(spec=BI, device=cards[0], config=config)
    assert (info.id, info.type, info.count, info.devmem) == (
        "IX-00000000-13-00.0",
        "BI-V150",
        4,
        32768,
    )
    text = registry.hook.hami_annotate(spec=BI, devices=[info], config=config)
    assert text["hami.io/node-BI-V150-register"].startswith(
        "IX-00000000-13-00.0,4,32768,100,BI-V150,"
    )
    with pytest.raises(ConfigError, match="iluvatars"):
        registry.hook.hami_split(spec=BI, device=cards[0], config={"iluvatars": {"x": 1}})


def usage(n: int, **kw: Any) -> list[DeviceUsage]:
    return [
        DeviceUsage(
            id=f"IX-{i}",
            index=i,
            type="BI-V150",
            vendor=BI.key,
            count=10,
            totalmem=32768,
            totalcore=100,
            **kw,
        )
        for i in range(n)
    ]


def fit(
    registry: VendorRegistry, req: ContainerRequest, cards: list[DeviceUsage], **annos: str
) -> Any:
    pod = PodView(namespace="ns", name="p", uid="u", annotations=annos)
    ctx = FitContext(pod=pod, node=NodeView(name="n", annotations={}))
    return registry.hook.hami_allocate(spec=BI, request=req, devices=cards, context=ctx)


def test_uuid_pins_choose_and_exclude_cards(registry: VendorRegistry) -> None:
    req = ContainerRequest(vendor=BI.key, count=1, memory_mib=1024)
    pinned = fit(registry, req, usage(4), **{"hami.io/use-BI-V150-uuid": "IX-1"})
    assert [d.uuid for d in pinned.devices] == ["IX-1"]
    avoided = fit(registry, req, usage(2), **{"hami.io/no-use-BI-V150-uuid": "IX-1"})
    assert [d.uuid for d in avoided.devices] == ["IX-0"]
    none_left = fit(registry, req, usage(1), **{"hami.io/no-use-BI-V150-uuid": "IX-0"})
    assert not none_left.ok and none_left.reasons == {"CardUuidMismatch": 1}


def test_two_cards_are_taken_whole_and_exclusively(registry: VendorRegistry) -> None:
    req = request(registry, {"iluvatar.ai/BI-V150-vgpu": "2"})
    cards = usage(3)
    cards[2].used, cards[2].usedmem = 1, 1024
    got = fit(registry, req, cards)
    assert [(d.uuid, d.usedmem, d.usedcores) for d in got.devices] == [
        ("IX-1", 32768, 100),
        ("IX-0", 32768, 100),
    ]
    assert got.devices[0].type == "BI-V150"


def test_mount_renumbers_device_nodes_and_names_cards(
    registry: VendorRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(binding, "run_ixsmi", lambda: (DATA / "ixsmi-BI-V150-1.txt").read_text())
    cards = registry.hook.hami_discover(spec=BI, config={})
    shares = tuple(ContainerDevice(cards[i].uuid, "BI-V150", 32768, 100) for i in (5, 2))
    allocation = ContainerAllocation(
        vendor=BI.key,
        pod_namespace="ns",
        pod_name="p",
        pod_uid="u",
        container="main",
        devices=shares,
        node_devices=tuple(cards),
        kubelet_ids=("k-5", "k-2"),
    )
    spec = registry.hook.hami_mount(allocation=allocation)
    assert [(d.host_path, d.container_path) for d in spec.devices] == [
        ("/dev/iluvatar5", "/dev/iluvatar0"),
        ("/dev/iluvatar2", "/dev/iluvatar1"),
        ("/dev/itrctl", "/dev/itrctl"),
    ]
    assert spec.envs == {
        "IX_VISIBLE_DEVICES": "IX-00000000-2A-00.0,IX-00000000-1C-00.0",
        "IX_REPLICA_DEVICES": "k-5,k-2",
    }
    configured = allocation.model_copy(
        update={"config": {"iluvatars": [{"chipName": "BI-V150", "controlDevices": []}]}}
    )
    plain = registry.hook.hami_mount(allocation=configured)
    assert [d.host_path for d in plain.devices] == ["/dev/iluvatar5", "/dev/iluvatar2"]
    broken = allocation.model_copy(
        update={"config": {"iluvatars": [{"chipName": "BI-V150", "controlDevices": "itrctl"}]}}
    )
    with pytest.raises(ConfigError, match="controlDevices"):
        registry.hook.hami_mount(allocation=broken)
    stranger = allocation.model_copy(
        update={"devices": (ContainerDevice("GPU-x", "BI-V150", 1, 0),)}
    )
    with pytest.raises(MountError, match="GPU-x"):
        registry.hook.hami_mount(allocation=stranger)


def test_discovery_sorts_cards_by_chip_and_honours_configured_models(
    registry: VendorRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(binding, "run_ixsmi", lambda: (DATA / "ixsmi-BI-V150S-1.txt").read_text())
    (card,) = registry.hook.hami_discover(spec=BI, config={})
    assert (card.model, card.memory_mib, card.paths) == (
        "Iluvatar BI-V150S",
        32768,
        ("/dev/iluvatar0",),
    )
    assert registry.hook.hami_discover(spec=MR, config={}) == []
    moved = {"iluvatars": [{"chipName": "MR-V100", "models": ["Iluvatar BI-V150S"]}]}
    assert len(registry.hook.hami_discover(spec=MR, config=moved)) == 1
    assert registry.hook.hami_discover(spec=BI, config=moved) == []


def test_missing_or_failing_ixsmi_makes_the_vendor_unavailable(
    registry: VendorRegistry, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(VendorUnavailable, match="ixsmi not found"):
        registry.hook.hami_discover(spec=BI, config={})
    tool = tmp_path / "ixsmi"
    tool.write_text("#!/bin/sh\necho 'driver not loaded' >&2\nexit 3\n")
    tool.chmod(tool.stat().st_mode | stat.S_IXUSR)
    with pytest.raises(VendorUnavailable, match="exited 3: driver not loaded"):
        registry.hook.hami_discover(spec=BI, config={})


def test_binding_runs_the_real_tool_from_path(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    tool = tmp_path / "ixsmi"
    tool.write_text(f"#!/bin/sh\ncat {DATA / 'ixsmi-BI-V150S-1.txt'}\n")
    tool.chmod(tool.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", str(tmp_path) + os.pathsep + os.environ.get("PATH", ""))
    assert "BI-V150S" in binding.run_ixsmi()


def test_numa_node_comes_from_sysfs(tmp_path: Path) -> None:
    assert binding.sysfs_address("00000000:8A:00.0") == "0000:8a:00.0"
    (tmp_path / "0000:8a:00.0").mkdir()
    (tmp_path / "0000:8a:00.0" / "numa_node").write_text("1\n")
    assert binding.numa_node("00000000:8A:00.0", sysfs=tmp_path) == 1
    assert binding.numa_node("00000000:13:00.0", sysfs=tmp_path) == 0
