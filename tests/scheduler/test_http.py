"""The HTTP surface: bad bodies are 400/413 with a message (never 500), probes, metrics."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from extender_kit import (
    GPU,
    GPUMEM,
    KubeScheduler,
    fast_settings,
    gpu_node,
    running_scheduler,
    user_pod,
)

from hami_core.k8s.memory import MemoryCluster
from hami_core.plugins import VendorRegistry
from hami_core.scheduler import SchedulerMetrics, SchedulerService

LIMIT = 4096


@pytest.fixture
def http(cluster: MemoryCluster, registry: VendorRegistry) -> Iterator[httpx.Client]:
    cluster.add_node(gpu_node("node-a"))
    settings = fast_settings(max_body_bytes=LIMIT)
    with (
        running_scheduler(cluster, registry, settings) as (_s, url),
        httpx.Client(base_url=url) as c,
    ):
        yield c


@pytest.mark.parametrize("verb", ["filter", "bind", "webhook"])
def test_oversized_bodies_are_413(http: httpx.Client, verb: str) -> None:
    big = b'{"Pod": "' + b"x" * LIMIT + b'"}'
    declared = http.post(f"/{verb}", content=big, headers={"Content-Type": "application/json"})
    assert declared.status_code == 413
    assert "over the 4096-byte limit" in declared.text

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit applies while reading
        yield big[:3000]
        yield big[3000:]

    streamed = http.post(f"/{verb}", content=chunks())
    assert streamed.status_code == 413


@pytest.mark.parametrize(
    ("verb", "body", "message"),
    [
        ("filter", b"", "Please send a request body"),
        ("filter", b'{"Pod": {', "malformed JSON"),
        ("filter", b"[1, 2]", "ExtenderArgs: expected a JSON object, got an array"),
        ("filter", b'{"Pod": [], "NodeNames": []}', "Pod: expected a Pod object, got an array"),
        ("filter", b'{"Pod": {}, "NodeNames": "node-a"}', "NodeNames: expected an array"),
        ("filter", b'{"Pod": {}, "NodeNames": [1]}', "NodeNames[0]: expected a node name"),
        ("filter", b'{"Pod": {}, "Nodes": {"items": [{}]}}', "Nodes.items[0].metadata.name"),
        ("bind", b'{"PodName": 5, "Node": "n"}', "PodName: expected a string, got a number"),
        ("bind", b"\xff\xfe", "malformed JSON"),
        ("webhook", b'{"apiVersion": "v1"}', "apiVersion: expected one of admission.k8s.io/v1"),
        ("webhook", b'{"apiVersion": "admission.k8s.io/v1"}', "request: expected a JSON object"),
        (
            "webhook",
            b'{"apiVersion": "admission.k8s.io/v1", "request": {"uid": "u", "object": 3}}',
            "request.object: expected a JSON object",
        ),
    ],
)
def test_malformed_bodies_are_400_with_a_message(
    http: httpx.Client, verb: str, body: bytes, message: str
) -> None:
    response = http.post(f"/{verb}", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert message in response.text


def test_bad_pod_shapes_inside_valid_json_are_answers_not_crashes(http: httpx.Client) -> None:
    scheduler = KubeScheduler(http)
    odd = {"metadata": {"name": "odd"}, "spec": {"containers": "main"}}
    assert scheduler.filter(odd, ["node-a"])["Error"] == "spec.containers: expected a list"
    assert http.get("/healthz").status_code == 200


def test_probes_and_readiness(cluster: MemoryCluster, registry: VendorRegistry) -> None:
    service = SchedulerService(cluster, registry, None, fast_settings(sync_timeout=0.05))
    with service.serve_in_thread() as server, httpx.Client(base_url=server.url) as http:
        assert http.get("/healthz").text == "ok"
        assert http.get("/readyz").status_code == 503
        pod = user_pod("early", {GPU: "1"})
        early = KubeScheduler(http).filter(pod, ["node-a"])
        assert early["Error"] == "the scheduler's node and pod caches are not synced yet"
        with service:
            assert service.informer.wait_synced(5)
            assert http.get("/readyz").status_code == 200
        assert http.post("/healthz").status_code == 405


def test_metrics_cover_cards_latency_and_failures(
    cluster: MemoryCluster, registry: VendorRegistry, http: httpx.Client
) -> None:
    scheduler = KubeScheduler(http)
    pod = cluster.add_pod(user_pod("m", {GPU: "1", GPUMEM: "2500"}))
    assert scheduler.filter(pod, ["node-a"])["NodeNames"] == ["node-a"]
    scheduler.filter(cluster.add_pod(user_pod("big", {GPU: "1", GPUMEM: "99999"})), ["node-a"])
    text = http.get("/metrics").text
    assert 'hami_device_memory_total_mib{device="GPU-node-a-0000",node="node-a",' in text
    assert "hami_device_memory_allocated_mib" in text and " 2500.0" in text
    assert "hami_scheduler_filter_duration_seconds_count 2.0" in text
    assert 'hami_scheduler_failures_total{reason="no_fit",verb="filter"} 1.0' in text
    assert "hami_scheduler_leader 1.0" in text


def test_each_service_has_its_own_metrics_registry(registry: VendorRegistry) -> None:
    from prometheus_client import REGISTRY

    first, second = SchedulerMetrics(), SchedulerMetrics()
    first.fail("bind", "lock")
    assert b'reason="lock"' in first.render()[0]
    assert b'reason="lock"' not in second.render()[0]
    assert REGISTRY.get_sample_value("hami_scheduler_failures_total") is None
