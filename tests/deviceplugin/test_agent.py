"""The node agent and the plugins' life with the kubelet: register annotations, health reaching
ListAndWatch, vendors that are absent, and re-registration."""

from __future__ import annotations

import logging
import threading
import time

import pytest
from dp_kit import (
    NODE,
    TestGpu,
    bind,
    card,
    container,
    eventually,
    make_registry,
    node_annotations,
    running_node,
    scheduled_pod,
    share,
)

from hami_core.deviceplugin.agent import NodeAgent
from hami_core.k8s.memory import MemoryCluster
from hami_core.protocol import decode_node_devices

RES = "example.com/testgpu"
REGISTER = "hami.io/node-testgpu-register"


def _registered(cluster: MemoryCluster) -> dict[str, bool]:
    return {d.id: d.health for d in decode_node_devices(node_annotations(cluster)[REGISTER])}


def test_register_annotation_is_patched_only_when_it_changes(
    cluster: MemoryCluster, gpu: TestGpu
) -> None:
    agent = NodeAgent(cluster, make_registry(gpu), NODE)
    agent.refresh()
    infos = decode_node_devices(node_annotations(cluster)[REGISTER])
    assert [(i.id, i.count, i.devmem, i.numa) for i in infos] == [
        ("TESTGPU-0000", 4, 16384, 0),
        ("TESTGPU-0001", 4, 16384, 0),
        ("TESTGPU-0002", 4, 16384, 1),
        ("TESTGPU-0003", 4, 16384, 1),
    ]
    version = cluster.get_node(NODE)["metadata"]["resourceVersion"]
    agent.refresh()
    agent.refresh(verify=True)
    assert cluster.get_node(NODE)["metadata"]["resourceVersion"] == version


def test_the_split_count_comes_from_the_device_config(cluster: MemoryCluster, gpu: TestGpu) -> None:
    NodeAgent(
        cluster, make_registry(gpu), NODE, config={"testgpu": {"deviceSplitCount": 7}}
    ).refresh()
    assert {i.count for i in decode_node_devices(node_annotations(cluster)[REGISTER])} == {7}


def test_a_verify_pass_restores_an_annotation_removed_by_someone_else(
    cluster: MemoryCluster, gpu: TestGpu
) -> None:
    agent = NodeAgent(cluster, make_registry(gpu), NODE)
    agent.refresh()
    cluster.patch_node_metadata(NODE, annotations={REGISTER: None})
    agent.refresh()
    assert REGISTER not in node_annotations(cluster)
    agent.refresh(verify=True)
    assert REGISTER in node_annotations(cluster)


def test_an_unavailable_vendor_is_skipped_and_the_others_register(
    cluster: MemoryCluster, gpu: TestGpu, caplog: pytest.LogCaptureFixture
) -> None:
    absent = TestGpu(key="absentgpu", unavailable="libabsent.so.1: cannot open shared object")
    agent = NodeAgent(cluster, make_registry(gpu, absent), NODE)
    with caplog.at_level(logging.WARNING):
        states = agent.refresh()
    assert states["absentgpu"].unavailable == "libabsent.so.1: cannot open shared object"
    assert "vendor absentgpu skipped: libabsent.so.1" in caplog.text
    assert len(states["testgpu"].devices) == 4
    assert REGISTER in node_annotations(cluster)
    assert "hami.io/node-absentgpu-register" not in node_annotations(cluster)


def test_a_vendor_whose_hook_raises_does_not_stop_the_others(
    cluster: MemoryCluster, gpu: TestGpu
) -> None:
    broken = TestGpu(key="brokengpu", cards=[card("brokengpu", 0)])
    broken.cards = None  # type: ignore[assignment]  # list(None) raises inside hami_discover
    states = NodeAgent(cluster, make_registry(gpu, broken), NODE).refresh()
    assert states["brokengpu"].error is not None
    assert "hami_discover: TypeError" in states["brokengpu"].error
    assert REGISTER in node_annotations(cluster)


def test_health_changes_reach_list_and_watch_and_the_annotation(
    cluster: MemoryCluster, gpu: TestGpu
) -> None:
    with running_node(cluster, make_registry(gpu)) as (dp, kubelet):
        kubelet.wait_devices(RES, lambda devs: len(devs) == 16)
        gpu.cards[1] = gpu.cards[1].model_copy(update={"health": False})
        dp.refresh()
        devs = kubelet.wait_devices(RES, lambda ds: any(not d.healthy for d in ds), timeout=2)
        assert {d.id for d in devs if not d.healthy} == {f"TESTGPU-0001-{k}" for k in range(4)}
        assert _registered(cluster)["TESTGPU-0001"] is False

        gpu.cards[1] = gpu.cards[1].model_copy(update={"health": True})
        kubelet.wait_devices(RES, lambda ds: all(d.healthy for d in ds), timeout=2)
        eventually(lambda: _registered(cluster)["TESTGPU-0001"] is True, 2, "healthy again")


def test_a_card_that_disappears_stays_listed_as_unhealthy(
    cluster: MemoryCluster, gpu: TestGpu
) -> None:
    with running_node(cluster, make_registry(gpu)) as (_, kubelet):
        kubelet.wait_devices(RES, lambda devs: len(devs) == 16)
        del gpu.cards[3]  # the health poll notices on its own
        devs = kubelet.wait_devices(RES, lambda ds: any(not d.healthy for d in ds), timeout=2)
        assert len(devs) == 16
        assert {d.id for d in devs if not d.healthy} == {f"TESTGPU-0003-{k}" for k in range(4)}
        eventually(lambda: _registered(cluster)["TESTGPU-0003"] is False, 2, "annotation")


def test_numa_topology_is_reported_when_enabled(cluster: MemoryCluster, gpu: TestGpu) -> None:
    config = {"testgpu": {"enableNumaTopology": True}}
    with running_node(cluster, make_registry(gpu), config=config) as (_, kubelet):
        devs = kubelet.wait_devices(RES, lambda ds: len(ds) == 16)
        assert {d.id: d.numa for d in devs}["TESTGPU-0003-0"] == 1
        assert {d.id: d.numa for d in devs}["TESTGPU-0000-0"] == 0


def test_without_numa_topology_none_is_sent(cluster: MemoryCluster, gpu: TestGpu) -> None:
    with running_node(cluster, make_registry(gpu)) as (_, kubelet):
        devs = kubelet.wait_devices(RES, lambda ds: len(ds) == 16)
        assert {d.numa for d in devs} == {None}


def test_preferred_allocation_steers_the_kubelet_to_the_scheduled_cards(
    cluster: MemoryCluster, gpu: TestGpu
) -> None:
    config = {"testgpu": {"enableGetPreferredAllocation": True}}
    with running_node(cluster, make_registry(gpu), config=config) as (_, kubelet):
        devs = kubelet.wait_devices(RES, lambda ds: len(ds) == 16)
        assert kubelet.options(RES).get_preferred_allocation_available
        assert kubelet.registered(RES).get_preferred_allocation_available  # type: ignore[union-attr]
        cluster.add_pod(
            scheduled_pod(
                "p",
                {"testgpu": [[share(gpu, 3), share(gpu, 1)]]},
                containers=[container("c", "testgpu", 2)],
            )
        )
        bind(cluster, "p")
        ids = kubelet.preferred_allocation(RES, [d.id for d in devs], 2)
        assert ids == ["TESTGPU-0003-0", "TESTGPU-0001-0"]


def test_options_say_no_pre_start_and_pre_start_is_a_no_op(
    cluster: MemoryCluster, gpu: TestGpu
) -> None:
    with running_node(cluster, make_registry(gpu)) as (_, kubelet):
        kubelet.wait_registered(RES)
        options = kubelet.options(RES)
        assert not options.pre_start_required
        assert not options.get_preferred_allocation_available
        kubelet.pre_start_container(RES, ["TESTGPU-0000-0"])


def test_a_deleted_plugin_socket_is_served_and_registered_again(
    cluster: MemoryCluster, gpu: TestGpu
) -> None:
    with running_node(cluster, make_registry(gpu)) as (dp, kubelet):
        kubelet.wait_registered(RES)
        kubelet.wait_devices(RES)
        socket = dp.plugins.server(RES).socket_path
        socket.unlink()
        started = time.monotonic()
        kubelet.wait_registered(RES, count=2, timeout=5)
        assert time.monotonic() - started < 5
        assert socket.is_socket()
        kubelet.wait_devices(RES, lambda ds: len(ds) == 16)


def test_a_vendor_that_becomes_available_gets_its_plugin(
    cluster: MemoryCluster, gpu: TestGpu
) -> None:
    late = TestGpu(key="lategpu", unavailable="driver not loaded yet")
    with running_node(cluster, make_registry(gpu, late)) as (dp, kubelet):
        kubelet.wait_registered(RES)
        assert "example.com/lategpu" not in dp.plugins.resources()
        late.cards = [card("lategpu", 0)]
        late.unavailable = None
        kubelet.wait_registered("example.com/lategpu", timeout=3)
        assert [d.id for d in kubelet.wait_devices("example.com/lategpu")] == [
            f"LATEGPU-0000-{k}" for k in range(4)
        ]


def test_an_allocate_in_flight_while_the_plugin_re_registers_still_answers(
    cluster: MemoryCluster, gpu: TestGpu
) -> None:
    gpu.mount_delay = 0.5
    with running_node(cluster, make_registry(gpu)) as (dp, kubelet):
        kubelet.wait_devices(RES, lambda ds: len(ds) == 16)
        cluster.add_pod(
            scheduled_pod("p", {"testgpu": [[share(gpu, 2)]]}, containers=[container("c")])
        )
        bind(cluster, "p")
        answers: list[str] = []
        call = threading.Thread(
            target=lambda: answers.append(
                kubelet.allocate(RES, ["x"]).envs["TESTGPU_VISIBLE_DEVICES"]
            )
        )
        call.start()
        eventually(lambda: bool(gpu.mounts), 2, "Allocate in progress")
        dp.plugins.server(RES).socket_path.unlink()
        kubelet.wait_registered(RES, count=2, timeout=5)
        call.join(5)
        assert answers == ["TESTGPU-0002"]
        assert len(kubelet.wait_devices(RES, lambda ds: len(ds) == 16)) == 16


def test_a_new_kubelet_socket_alone_triggers_registration_again(
    cluster: MemoryCluster, gpu: TestGpu
) -> None:
    with running_node(cluster, make_registry(gpu)) as (dp, kubelet):
        kubelet.wait_devices(RES, lambda ds: len(ds) == 16)
        socket = dp.plugins.server(RES).socket_path
        inode = socket.stat().st_ino
        kubelet.restart(delete_sockets=False)
        kubelet.wait_registered(RES, count=2, timeout=5)
        assert socket.stat().st_ino == inode  # the plugin kept serving its socket
        kubelet.wait_devices(RES, lambda ds: len(ds) == 16)
