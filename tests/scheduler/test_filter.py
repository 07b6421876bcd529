"""`/filter` over HTTP with Go-cased `ExtenderArgs`, against an in-memory cluster."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from extender_kit import (
    GPU,
    GPUMEM,
    REGISTER,
    KubeScheduler,
    annotations_of,
    eventually,
    fast_settings,
    gpu_node,
    running_scheduler,
    user_pod,
)

from hami_core.k8s.memory import MemoryCluster
from hami_core.plugins import VendorRegistry
from hami_core.protocol.keys import ASSIGNED_NODE
from hami_core.scheduler import SchedulerService


@pytest.fixture
def extender(
    cluster: MemoryCluster, registry: VendorRegistry
) -> Iterator[tuple[SchedulerService, KubeScheduler]]:
    cluster.add_node(gpu_node("node-a"))
    cluster.add_node(gpu_node("node-b", cards=1))
    with running_scheduler(cluster, registry) as (service, url), httpx.Client(base_url=url) as http:
        yield service, KubeScheduler(http)


def test_pods_asking_no_device_pass_through_untouched(
    cluster: MemoryCluster, extender: tuple[SchedulerService, KubeScheduler]
) -> None:
    _, scheduler = extender
    pod = cluster.add_pod(user_pod("web", {"cpu": "2"}))
    result = scheduler.filter(pod, ["node-a", "node-b", "node-cpu"])
    assert result == {
        "Nodes": None,
        "NodeNames": ["node-a", "node-b", "node-cpu"],
        "FailedNodes": None,
        "FailedAndUnresolvableNodes": None,
        "Error": "",
    }
    assert (
        cluster.get_pod("default", "web")["metadata"]["resourceVersion"]
        == pod["metadata"]["resourceVersion"]
    )


def test_keys_are_read_in_any_case(
    cluster: MemoryCluster, extender: tuple[SchedulerService, KubeScheduler]
) -> None:
    _, scheduler = extender
    pod = cluster.add_pod(user_pod("lower", {GPU: "1", GPUMEM: "1000"}))
    result = scheduler.post("filter", {"pod": pod, "nodes": None, "nodenames": ["node-b"]})
    assert result["NodeNames"] == ["node-b"]
    assert annotations_of(cluster.get_pod("default", "lower"))[ASSIGNED_NODE] == "node-b"


def test_a_malformed_node_fails_alone_with_the_decode_error(
    cluster: MemoryCluster, extender: tuple[SchedulerService, KubeScheduler]
) -> None:
    _, scheduler = extender
    broken = gpu_node("node-bad")
    broken["metadata"]["annotations"][REGISTER] = '[{"id": "GPU-1", "count": "four"}]'
    cluster.add_node(broken)
    pod = cluster.add_pod(user_pod("p", {GPU: "1", GPUMEM: "1000"}))

    def failures() -> dict[str, str]:
        result = scheduler.filter(pod, ["node-bad", "node-ghost"])
        assert result["NodeNames"] is None
        failed: dict[str, str] = result["FailedNodes"]
        return failed if failed["node-bad"] != "node unregistered" else {}

    failed = eventually(failures, what="node-bad in the cache")
    assert failed["node-ghost"] == "node unregistered"
    assert failed["node-bad"] == (
        f'tgpu: annotation {REGISTER}: device #0: field "count" must be a whole number, '
        'got string "four"'
    )
    # the other nodes still schedule
    assert scheduler.filter(pod, ["node-bad", "node-b"])["NodeNames"] == ["node-b"]


def test_no_fit_lists_every_node_with_hamis_reason(
    cluster: MemoryCluster, extender: tuple[SchedulerService, KubeScheduler]
) -> None:
    _, scheduler = extender
    pod = cluster.add_pod(user_pod("huge", {GPU: "1", GPUMEM: "99999"}))
    result = scheduler.filter(pod, ["node-a", "node-b"])
    assert result["NodeNames"] is None
    assert result["Error"] == ""
    assert result["FailedNodes"] == {
        "node-a": "2/2 CardInsufficientMemory",
        "node-b": "1/1 CardInsufficientMemory",
    }
    events = eventually(lambda: cluster.recorded_events(), what="an event")
    assert events[0]["reason"] == "FilteringFailed"
    assert events[0]["involvedObject"]["name"] == "huge"


def test_the_nodes_form_answers_one_node_without_side_effects(
    cluster: MemoryCluster, extender: tuple[SchedulerService, KubeScheduler]
) -> None:
    service, scheduler = extender
    pod = cluster.add_pod(user_pod("what-if", {GPU: "2", GPUMEM: "1000"}))
    # a template node the autoscaler might add, never seen by the cluster
    nodes = [cluster.get_node("node-a"), cluster.get_node("node-b"), gpu_node("node-new")]
    result = scheduler.post(
        "filter", {"Pod": pod, "Nodes": {"metadata": {}, "items": nodes}, "NodeNames": None}
    )
    assert result["Error"] == ""
    assert result["NodeNames"] is None
    [chosen] = result["Nodes"]["items"]
    assert chosen["metadata"]["name"] in ("node-a", "node-new")
    assert result["FailedNodes"] == {"node-b": "NodeInsufficientDevice"}
    after = cluster.get_pod("default", "what-if")
    assert after["metadata"]["resourceVersion"] == pod["metadata"]["resourceVersion"]
    assert service.cache.reservations() == {}


def test_a_failed_decision_patch_releases_the_reservation(
    extender: tuple[SchedulerService, KubeScheduler],
) -> None:
    service, scheduler = extender
    # kube-scheduler's copy of a pod that was deleted meanwhile
    gone = user_pod("gone", {GPU: "1", GPUMEM: "1000"})
    result = scheduler.filter(gone, ["node-a"])
    assert result["Error"].startswith("pod default/gone: could not write the decision")
    assert service.cache.reservations() == {}


def test_missing_pod_and_bad_requests_are_errors(
    cluster: MemoryCluster, extender: tuple[SchedulerService, KubeScheduler]
) -> None:
    _, scheduler = extender
    assert scheduler.post("filter", {"Pod": None, "NodeNames": ["node-a"]})["Error"] == (
        "extender args missing pod"
    )
    bad = cluster.add_pod(user_pod("bad", {GPU: "one"}))
    error = scheduler.filter(bad, ["node-a"])["Error"]
    assert error.startswith("container 'main': hami.test/gpu:")


def test_a_pod_already_bound_is_not_filtered_again(
    cluster: MemoryCluster, extender: tuple[SchedulerService, KubeScheduler]
) -> None:
    _, scheduler = extender
    pod = cluster.add_pod(user_pod("placed", {GPU: "1"}, nodeName="node-a"))
    result = scheduler.filter(pod, ["node-a", "node-b"])
    assert result["Error"] == "pod is already bound to node node-a"
    assert ASSIGNED_NODE not in annotations_of(cluster.get_pod("default", "placed"))


def test_success_events_are_recorded_only_when_asked_for(
    cluster: MemoryCluster, registry: VendorRegistry
) -> None:
    for wanted in (False, True):
        node, name = f"node-{wanted}".lower(), f"pod-{wanted}".lower()
        cluster.add_node(gpu_node(node))
        settings = fast_settings(success_events=wanted)
        with (
            running_scheduler(cluster, registry, settings) as (service, url),
            httpx.Client(base_url=url) as http,
        ):
            scheduler = KubeScheduler(http)
            pod = cluster.add_pod(user_pod(name, {GPU: "1", GPUMEM: "100"}))
            assert scheduler.filter(pod, [node])["NodeNames"] == [node]
            assert scheduler.bind(cluster.get_pod("default", name), node) == {"Error": ""}
            service.events.stop()  # writes what is queued
        events = [e for e in cluster.recorded_events() if e["involvedObject"]["name"] == name]
        if not wanted:
            assert events == []
            continue
        assert [e["reason"] for e in events] == ["FilteringSucceed", "BindingSucceed"]
        assert events[0]["message"] == (
            f"find fit node({node}), 0 nodes not fit, 1 nodes fit({node}:0.00)"
        )
        assert events[1]["message"] == f"bound to node {node}"


def test_odd_pods_and_node_objects_get_answers_naming_the_field(
    cluster: MemoryCluster, extender: tuple[SchedulerService, KubeScheduler]
) -> None:
    _, scheduler = extender
    odd_values: list[Any] = [[], "x", 1.5]
    for metadata in odd_values:
        pod: dict[str, Any] = {"metadata": metadata, "spec": {"containers": []}}
        assert scheduler.filter(pod, ["node-a"])["Error"] == "metadata: expected an object"
    pod = cluster.add_pod(user_pod("what-if", {GPU: "1", GPUMEM: "1000"}))
    odd = {"metadata": {"name": "node-odd"}, "status": ["not", "an", "object"]}
    result = scheduler.post(
        "filter", {"Pod": pod, "Nodes": {"items": [odd, cluster.get_node("node-b")]}}
    )
    assert [n["metadata"]["name"] for n in result["Nodes"]["items"]] == ["node-b"]
    assert result["FailedNodes"]["node-odd"].startswith("node object: ")
