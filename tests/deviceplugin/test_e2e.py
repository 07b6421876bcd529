"""End to end over every real protocol: the `kubernetes` client against the fake apiserver
(HTTP), the device plugin against the fake kubelet (gRPC over Unix sockets), and a vendor
plugin loaded into the registry."""

from __future__ import annotations

import time
from collections.abc import Iterator

import grpc
import pytest
from dp_kit import (
    NODE,
    NS,
    TestGpu,
    bind,
    card,
    container,
    make_registry,
    node_annotations,
    node_obj,
    pod_annotations,
    replicas,
    running_node,
    scheduled_pod,
    share,
)

from hami_core.deviceplugin.allocate import pending_entries
from hami_core.k8s.kube import KubeCluster
from hami_core.protocol import decode_node_devices
from hami_core.protocol.keys import BIND_PHASE, NODE_LOCK
from hami_core.testing import FakeApiServer, FakeKubelet

RES = "example.com/testgpu"
TO_ALLOCATE = "hami.io/testgpu-devices-to-allocate"


@pytest.fixture
def server() -> Iterator[FakeApiServer]:
    with FakeApiServer() as fake:
        fake.state.add_node(node_obj(NODE))
        yield fake


@pytest.fixture
def kube(server: FakeApiServer) -> Iterator[KubeCluster]:
    cluster = server.kube_cluster(request_timeout=5.0)
    yield cluster
    cluster.close()


def test_a_scheduled_pod_starts_with_its_slices_and_the_plugin_survives_a_kubelet_restart(
    server: FakeApiServer, kube: KubeCluster
) -> None:
    gpu = TestGpu(cards=[card("testgpu", 0), card("testgpu", 1)])
    config = {"testgpu": {"deviceSplitCount": 3}}
    with running_node(kube, make_registry(gpu), config=config) as (_, kubelet):
        # registration, then the device list with split replicas
        kubelet.wait_registered(RES)
        reg = kubelet.registered(RES)
        assert reg is not None
        assert (reg.version, reg.endpoint) == ("v1beta1", "hami-testgpu-example.com_testgpu.sock")
        devices = kubelet.wait_devices(RES, lambda ds: len(ds) == 6)
        assert [d.id for d in devices] == [
            f"TESTGPU-000{c}-{k}" for c in range(2) for k in range(3)
        ]
        assert all(d.healthy for d in devices)
        registered = decode_node_devices(node_annotations(kube)["hami.io/node-testgpu-register"])
        assert [(i.id, i.count, i.health) for i in registered] == [
            ("TESTGPU-0000", 3, True),
            ("TESTGPU-0001", 3, True),
        ]

        # the scheduler's filter decided, its bind locked the node and set `allocating`
        server.state.add_pod(
            scheduled_pod(
                "train",
                {"testgpu": [[], [share(gpu, 0, 3000, 30)], [share(gpu, 1, 5000, 50)]]},
                init_containers=[container("setup")],
                containers=[
                    container("trainer", "testgpu", DISABLE_CONTROL="true"),
                    container("sidecar", "testgpu", MODE="eval"),
                ],
                bound=False,
            )
        )
        bind(kube, "train")
        assert node_annotations(kube)[NODE_LOCK].endswith(",default,train")
        patches_before = len(server.requests_matching("PATCH", r"/pods/train$"))

        # the kubelet creates the two GPU containers, one Allocate each
        first = kubelet.allocate(RES, replicas(kubelet, RES, "TESTGPU-0001")[:1])
        assert dict(first.envs) == {
            "TESTGPU_VISIBLE_DEVICES": "TESTGPU-0000",
            "TESTGPU_CONTAINER": "trainer",
            "TESTGPU_CORE_LIMIT": "30",
            "TESTGPU_MEMORY_LIMIT_0": "3000m",
        }
        assert [(m.container_path, m.read_only) for m in first.mounts] == [
            ("/usr/local/testgpu/lib.so", True),
            ("/usr/local/testgpu/cache", False),
        ]
        assert [(d.container_path, d.host_path, d.permissions) for d in first.devices] == [
            ("/dev/testgpu0", "/dev/testgpu0", "rw")
        ]
        assert [c.name for c in first.cdi_devices] == ["example.com/testgpu=TESTGPU-0000"]
        assert pod_annotations(kube, "train")[BIND_PHASE] == "allocating"

        second = kubelet.allocate(RES, replicas(kubelet, RES, "TESTGPU-0000")[1:2])
        assert second.envs["TESTGPU_VISIBLE_DEVICES"] == "TESTGPU-0001"
        assert second.envs["TESTGPU_CONTAINER"] == "sidecar"
        assert second.envs["TESTGPU_MEMORY_LIMIT_0"] == "5000m"
        assert "/etc/ld.so.preload" in [m.container_path for m in second.mounts]
        assert gpu.mounts[1].container_env == {"MODE": "eval"}
        assert gpu.mounts[1].kubelet_ids == ("TESTGPU-0000-1",)

        # done: success, nothing left to allocate, lock released, one pod patch per Allocate
        after = pod_annotations(kube, "train")
        assert after[BIND_PHASE] == "success"
        assert not any(pending_entries(after[TO_ALLOCATE]))
        assert NODE_LOCK not in node_annotations(kube)
        patches = server.requests_matching("PATCH", r"/pods/train$")[patches_before:]
        assert len(patches) == 2
        assert all(p.body["metadata"]["resourceVersion"] for p in patches)

        # the kubelet restarts: every socket is deleted; the plugin is back within 5 s
        kubelet.restart()
        started = time.monotonic()
        kubelet.wait_registered(RES, count=2, timeout=5)
        assert time.monotonic() - started < 5
        kubelet.wait_devices(RES, lambda ds: len(ds) == 6)

        # and it serves the next pod
        server.state.add_pod(
            scheduled_pod(
                "infer",
                {"testgpu": [[share(gpu, 1, 2000, 20)]]},
                containers=[container("main", "testgpu")],
                bound=False,
            )
        )
        bind(kube, "infer")
        third = kubelet.allocate(RES, ["TESTGPU-0000-2"])
        assert third.envs["TESTGPU_VISIBLE_DEVICES"] == "TESTGPU-0001"
        assert pod_annotations(kube, "infer")[BIND_PHASE] == "success"
        assert NODE_LOCK not in node_annotations(kube)
    assert kube.get_pod(NS, "train")["spec"]["nodeName"] == NODE


@pytest.fixture
def kube_node(server: FakeApiServer, kube: KubeCluster) -> Iterator[tuple[TestGpu, FakeKubelet]]:
    gpu = TestGpu(cards=[card("testgpu", 0), card("testgpu", 1)])
    with running_node(kube, make_registry(gpu)) as (_, kubelet):
        kubelet.wait_devices(RES, lambda ds: len(ds) == 8)
        server.state.add_pod(
            scheduled_pod("p", {"testgpu": [[share(gpu, 1)]]}, containers=[container("c")])
        )
        bind(kube, "p")
        yield gpu, kubelet


def test_an_unreachable_apiserver_changes_nothing_and_says_so(
    server: FakeApiServer, kube: KubeCluster, kube_node: tuple[TestGpu, FakeKubelet]
) -> None:
    _, kubelet = kube_node
    before = kube.get_pod(NS, "p")["metadata"]["resourceVersion"]
    server.faults.fail_next("GET", r"/api/v1/pods$", 503)
    with pytest.raises(grpc.RpcError) as err:
        kubelet.allocate(RES, ["TESTGPU-0000-0"])
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "cannot read pods of node node-a" in str(err.value.details())
    assert kube.get_pod(NS, "p")["metadata"]["resourceVersion"] == before
    # the kubelet's next try goes through
    assert kubelet.allocate(RES, ["TESTGPU-0000-0"]).envs["TESTGPU_VISIBLE_DEVICES"] == (
        "TESTGPU-0001"
    )


def test_a_conflicting_write_is_read_again_and_retried(
    server: FakeApiServer, kube: KubeCluster, kube_node: tuple[TestGpu, FakeKubelet]
) -> None:
    _, kubelet = kube_node
    server.faults.fail_next("PATCH", r"/pods/p$", 409)
    response = kubelet.allocate(RES, ["TESTGPU-0000-0"])
    assert response.envs["TESTGPU_VISIBLE_DEVICES"] == "TESTGPU-0001"
    assert pod_annotations(kube, "p")[BIND_PHASE] == "success"
    lists = server.requests_matching("GET", r"/api/v1/pods$")
    assert len(lists) >= 2


def test_a_failed_write_marks_the_pod_failed_and_releases_the_lock(
    server: FakeApiServer, kube: KubeCluster, kube_node: tuple[TestGpu, FakeKubelet]
) -> None:
    _, kubelet = kube_node
    server.faults.fail_next("PATCH", r"/pods/p$", 500)
    with pytest.raises(grpc.RpcError) as err:
        kubelet.allocate(RES, ["TESTGPU-0000-0"])
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "pod default/p: could not record the allocation" in str(err.value.details())
    assert pod_annotations(kube, "p")[BIND_PHASE] == "failed"
    assert NODE_LOCK not in node_annotations(kube)
