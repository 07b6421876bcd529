"""One pod's whole trip through the scheduler, over real HTTP on both sides: the apiserver's
AdmissionReview, kube-scheduler's filter and bind, then the device plugin's Allocate."""

from __future__ import annotations

import re

import httpx
from extender_kit import (
    ALLOCATED,
    GPU,
    GPUCORES,
    GPUMEM,
    TGPU,
    TO_ALLOCATE,
    Apiserver,
    KubeScheduler,
    annotations_of,
    card_id,
    eventually,
    gpu_node,
    running_scheduler,
    user_pod,
)

from hami_core.deviceplugin.allocate import Allocator
from hami_core.plugins import VendorRegistry
from hami_core.protocol import decode_pod_devices, parse_node_lock
from hami_core.protocol.keys import (
    ASSIGNED_NODE,
    ASSIGNED_TIME,
    BIND_PHASE,
    BIND_TIME,
    NODE_LOCK,
)
from hami_core.testing import FakeApiServer


def test_webhook_filter_bind_and_allocate(api: FakeApiServer, registry: VendorRegistry) -> None:
    api.state.add_node(gpu_node("node-a"))
    api.state.add_node(gpu_node("node-b", annotations={"hami.io/node-handshake-tgpu": "x"}))
    cluster = api.kube_cluster(request_timeout=5.0, watch_timeout_seconds=30)
    with running_scheduler(cluster, registry) as (service, url), httpx.Client(base_url=url) as http:
        # 1. the apiserver asks the webhook about the new pod, then stores the mutated pod
        response, admitted = Apiserver(http).admit(
            user_pod("train", {GPU: "1", GPUMEM: "4000", GPUCORES: "30"})
        )
        assert response["allowed"] is True
        assert admitted["spec"]["schedulerName"] == "hami-scheduler"
        created = api.state.add_pod(admitted)

        # 2. kube-scheduler filters with the pod from its informer and every node name
        scheduler = KubeScheduler(http)
        result = scheduler.filter(created, ["node-a", "node-b"])
        assert result["Error"] == ""
        assert result["FailedNodes"] is None
        [node] = result["NodeNames"]
        pod = api.state.get_pod("default", "train")
        notes = annotations_of(pod)
        assert notes[ASSIGNED_NODE] == node
        assert pod["metadata"]["labels"][ASSIGNED_NODE] == node
        assert re.fullmatch(r"\d+", notes[ASSIGNED_TIME])
        assert re.fullmatch(rf"GPU-{node}-000[01],TGPU,4000,30:;", notes[ALLOCATED])
        assert notes[TO_ALLOCATE] == notes[ALLOCATED]

        # 3. kube-scheduler binds: node lock, bind-phase, Binding
        assert scheduler.bind(pod, node) == {"Error": ""}
        pod = api.state.get_pod("default", "train")
        assert pod["spec"]["nodeName"] == node
        assert annotations_of(pod)[BIND_PHASE] == "allocating"
        assert re.fullmatch(r"\d+", annotations_of(pod)[BIND_TIME])
        lock = parse_node_lock(annotations_of(api.state.get_node(node))[NODE_LOCK])
        assert (lock.namespace, lock.name) == ("default", "train")

        # 4. the device plugin on that node serves the kubelet's Allocate and lets go the lock
        uuid = decode_pod_devices(notes[ALLOCATED])[0][0].uuid
        assert uuid in (card_id(node, 0), card_id(node, 1))
        plugin_cluster = api.kube_cluster(request_timeout=5.0)
        try:
            [runtime] = Allocator(plugin_cluster, registry, node).allocate(TGPU, [[f"{uuid}-0"]])
        finally:
            plugin_cluster.close()
        assert runtime.envs["TGPU_VISIBLE_DEVICES"] == uuid
        pod = api.state.get_pod("default", "train")
        assert annotations_of(pod)[BIND_PHASE] == "success"
        assert NODE_LOCK not in annotations_of(api.state.get_node(node))

        # 5. the usage cache counts the pod from its annotations, as /metrics shows
        line = (
            f'hami_device_memory_allocated_mib{{device="{uuid}",node="{node}",'
            f'type="TGPU-T100",vendor="tgpu"}} 4000.0'
        )
        eventually(lambda: line in http.get("/metrics").text, what="the card's usage metric")
        assert service.cache.reservations() == {}


def test_second_pod_sees_the_first_pods_usage(api: FakeApiServer, registry: VendorRegistry) -> None:
    api.state.add_node(gpu_node("node-a", cards=1, memory=10000))
    cluster = api.kube_cluster(request_timeout=5.0, watch_timeout_seconds=30)
    with (
        running_scheduler(cluster, registry) as (_service, url),
        httpx.Client(base_url=url) as http,
    ):
        scheduler = KubeScheduler(http)
        first = api.state.add_pod(user_pod("first", {GPU: "1", GPUMEM: "6000"}))
        assert scheduler.filter(first, ["node-a"])["NodeNames"] == ["node-a"]
        second = api.state.add_pod(user_pod("second", {GPU: "1", GPUMEM: "6000"}))
        result = scheduler.filter(second, ["node-a"])
        assert result["NodeNames"] is None
        assert result["FailedNodes"] == {"node-a": "1/1 CardInsufficientMemory"}
        assert ASSIGNED_NODE not in annotations_of(api.state.get_pod("default", "second"))
