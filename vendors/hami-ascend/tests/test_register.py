"""What an Ascend node registers (`hami_split` + `hami_annotate`) and how the scheduler reads it
back (`hami_read_node`), including a node registered by HAMi's Go Ascend device plugin."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta

from hami_core.model import (
    Device,
    DeviceInfo,
    DeviceUsage,
    FitContext,
    NodeView,
    PodView,
    VendorSpec,
)
from hami_core.plugins import VendorRegistry
from hami_core.protocol.handshake import HandshakeKind, parse_handshake


def _devices(spec: VendorSpec, n: int, healthy: bool = True) -> list[Device]:
    return [
        Device(
            vendor=spec.key,
            uuid=f"npu-{i}",
            index=i,
            model=spec.common_word,
            memory_mib=65536,
            health=healthy,
        )
        for i in range(n)
    ]


def _register(
    registry: VendorRegistry, spec: VendorSpec, devices: list[Device], config: dict[str, object]
) -> dict[str, str]:
    infos = [registry.hook.hami_split(spec=spec, device=d, config=config) for d in devices]
    annotations = registry.hook.hami_annotate(spec=spec, devices=infos, config=config)
    assert isinstance(annotations, dict)
    return annotations


def test_910b3_registers_json_with_network_ids_and_a_handshake(
    registry: VendorRegistry, spec: Callable[[str], VendorSpec]
) -> None:
    b3 = spec("ascend910b3")
    before = datetime.now().replace(microsecond=0)
    annotations = _register(registry, b3, _devices(b3, 8), {})
    assert set(annotations) == {
        "hami.io/node-register-Ascend910B3",
        "hami.io/node-handshake-Ascend910B3",
        "hami-vnpu-core",
    }
    registered = json.loads(annotations["hami.io/node-register-Ascend910B3"])
    assert [d.get("index", 0) for d in registered] == list(range(8))  # Go omits index 0
    assert {
        (d["count"], d["devmem"], d["devcore"], d["type"], d["health"]) for d in registered
    } == {(4, 65536, 20, "Ascend910B3", True)}
    assert [d["custominfo"]["NetworkID"] for d in registered] == [0, 0, 0, 0, 1, 1, 1, 1]
    handshake = parse_handshake(annotations["hami.io/node-handshake-Ascend910B3"])
    assert handshake.kind is HandshakeKind.REPORTED
    assert handshake.time is not None
    assert before <= handshake.time <= datetime.now() + timedelta(seconds=1)
    assert annotations["hami.io/node-handshake-Ascend910B3"].startswith(
        f"Reported_{before:%Y.%m.%d}"
    )
    assert annotations["hami-vnpu-core"] == "false"


def test_registration_reads_back(
    registry: VendorRegistry, spec: Callable[[str], VendorSpec]
) -> None:
    for key, count, devmem, devcore in (
        ("ascend310p", 7, 21527, 8),
        ("ascend910a", 15, 32768, 30),
        ("ascend910b2", 8, 65536, 24),
    ):
        s = spec(key)
        annotations = _register(registry, s, _devices(s, 2, healthy=False), {})
        read = registry.hook.hami_read_node(
            spec=s, node=NodeView(name="n", annotations=annotations), config={}
        )
        assert [(d.id, d.index, d.count, d.devmem, d.devcore, d.type, d.health) for d in read] == [
            (f"npu-{i}", i, count, devmem, devcore, s.common_word, False) for i in range(2)
        ]
        network = [d.custominfo for d in read]
        assert network == ([None, None] if key == "ascend310p" else [{"NetworkID": 0}] * 2)


def test_a_soft_slicing_node_offers_cores_in_percent(
    registry: VendorRegistry, spec: Callable[[str], VendorSpec]
) -> None:
    b3 = spec("ascend910b3")
    annotations = _register(registry, b3, _devices(b3, 1), {"vnpus": {"hamiVnpuCore": True}})
    assert annotations["hami-vnpu-core"] == "true"
    assert json.loads(annotations["hami.io/node-register-Ascend910B3"])[0]["devcore"] == 100


def test_a_node_registered_by_hamis_go_plugin_schedules(
    registry: VendorRegistry, spec: Callable[[str], VendorSpec]
) -> None:
    b3 = spec("ascend910b3")
    go_written = json.dumps(
        [
            {
                "id": f"die-{i:02d}",
                "index": i,
                "count": 4,
                "devmem": 65536,
                "devcore": 20,
                "type": "Ascend910B3",
                "health": True,
                "custominfo": {"NetworkID": 0 if i < 4 else 1},
            }
            for i in range(8)
        ],
        separators=(",", ":"),
    )
    node = NodeView(
        name="go-node",
        annotations={
            "hami.io/node-register-Ascend910B3": go_written,
            "hami.io/node-handshake-Ascend910B3": "Reported_2025.01.02 03:04:05",
        },
    )
    read = registry.hook.hami_read_node(spec=b3, node=node, config={})
    assert all(isinstance(d, DeviceInfo) for d in read)
    cards = [DeviceUsage.from_info(b3.key, d) for d in read]
    request = registry.hook.hami_request(
        spec=b3,
        container={"name": "c", "resources": {"limits": {"huawei.com/Ascend910B3": "2"}}},
        index=0,
        init=False,
        pod=PodView(namespace="ns", name="p", uid="u", annotations={}),
        config={},
    )
    context = FitContext(pod=PodView(namespace="ns", name="p", uid="u", annotations={}), node=node)
    result = registry.hook.hami_allocate(spec=b3, request=request, devices=cards, context=context)
    assert result.ok
    assert [d.uuid for d in result.devices] == ["die-07", "die-06"]
