"""Fuzz: hostile input never crashes hami, never gets a 500, never logs an unhandled error.

- Every wire decoder, over text and near-valid values: only `ProtocolError` (or the
  quantity parser's `QuantityError`) may come out.
- Node objects with any register annotation, through every installed vendor's reader and the
  usage cache: the node is marked failed with a message, nothing raises.
- Pods with odd resources and annotations, through request parsing and the engine.
- The extender (`/filter`, `/bind`) and the webhook (`/webhook`), over HTTP into the real ASGI
  app: raw bytes, random JSON and near-valid bodies; never a 500, always JSON of the right
  shape, never an `internal error` answer, no ERROR logged.
- The kubelet's `Allocate` over gRPC into the real device plugin, with pods whose decision
  annotations are hostile: an answer or a typed gRPC error (never UNKNOWN or INTERNAL), and a
  served answer always belongs to a pod bound to this node and being allocated.

Sizes: `sized(quick, soak)` per target; `HAMI_SOAK=1` sends more than 100,000 inputs in all.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from fuzz_kit import (
    JSON,
    QUANTITY,
    SMALL,
    TEXT,
    all_vendors,
    cased,
    device_entries,
    errors_logged,
    fuzz_settings,
    pods,
    register_values,
    vocabulary,
)
from hypothesis import given
from hypothesis import strategies as st
from plant import NODE, write_cards
from rel_kit import (
    ASSIGNED_NODE,
    BIND_PHASE,
    NS,
    TO_ALLOCATE,
    XPU,
    CardShape,
    example_registry,
    notes_of,
    sized,
    xpu_node,
)

from hami_core.deviceplugin.node import DevicePluginNode
from hami_core.errors import HamiError
from hami_core.k8s.memory import MemoryCluster
from hami_core.plugins import VendorRegistry
from hami_core.protocol import (
    ProtocolError,
    decode_container_devices,
    decode_node_devices,
    decode_pair_scores,
    decode_pod_devices,
    handshake_health,
    parse_gpu_policy,
    parse_handshake,
    parse_node_lock,
    parse_node_policy,
    parse_reasons,
    parse_scoring_weights,
    pop_next_container,
)
from hami_core.quantity import QuantityError, parse_quantity
from hami_core.scheduler import SchedulerService
from hami_core.scheduling.cache import UsageCache
from hami_core.scheduling.engine import Engine
from hami_core.scheduling.requests import pod_requests
from hami_core.testing import FakeKubelet

REGISTRY = all_vendors()
RESOURCES, NOTES = vocabulary(REGISTRY)
UUIDS = ["XPU-node-a-0", "XPU-node-a-1", "GPU-0", "U-0"]
NODES = ["node-a", "node-b"]
DECODERS = {
    "decode_node_devices": decode_node_devices,
    "decode_pod_devices": decode_pod_devices,
    "decode_container_devices": decode_container_devices,
    "pop_next_container": pop_next_container,
    "decode_pair_scores": decode_pair_scores,
    "parse_handshake": parse_handshake,
    "parse_node_lock": parse_node_lock,
    "parse_reasons": parse_reasons,
    "parse_scoring_weights": parse_scoring_weights,
    "parse_gpu_policy": parse_gpu_policy,
    "parse_node_policy": parse_node_policy,
}
NEAR_VALID = {
    "decode_node_devices": register_values(UUIDS),
    "decode_pod_devices": device_entries(UUIDS),
    "decode_container_devices": device_entries(UUIDS),
    "pop_next_container": device_entries(UUIDS),
    "decode_pair_scores": JSON.map(json.dumps),
    "parse_handshake": st.sampled_from(["Requesting_", "Reported ", "Deleted_"]).flatmap(
        lambda p: st.builds(lambda t: p + t, TEXT)
    ),
    "parse_node_lock": st.builds(lambda a, b, c: f"{a},{b},{c}", TEXT, SMALL, SMALL),
    "parse_reasons": st.lists(SMALL, max_size=4).map(", ".join),
    "parse_scoring_weights": st.lists(SMALL, max_size=4).map(",".join),
    "parse_gpu_policy": st.lists(SMALL, max_size=3).map(",".join),
    "parse_node_policy": SMALL,
}


# ---------------------------------------------------------------------- decoders


@pytest.mark.parametrize("name", sorted(DECODERS))
def test_decoders_raise_only_protocol_errors(name: str) -> None:
    decoder = DECODERS[name]
    seen = [0]

    @fuzz_settings(sized(150, 5_000))
    @given(st.one_of(TEXT, NEAR_VALID[name]))
    def run(value: str) -> None:
        seen[0] += 1
        try:
            decoder(value)
        except ProtocolError as exc:
            assert str(exc), "a ProtocolError must say what is wrong"

    run()
    print(f"RELIABILITY fuzz[{name}]: inputs={seen[0]}")


def test_handshake_health_never_raises() -> None:
    from datetime import datetime, timedelta

    seen = [0]

    @fuzz_settings(sized(100, 3_000))
    @given(st.none() | TEXT | NEAR_VALID["parse_handshake"], st.integers(-5, 10**12))
    def run(value: str | None, allocatable: int) -> None:
        seen[0] += 1
        handshake_health(value, datetime.now(), allocatable, timedelta(seconds=60))

    run()
    print(f"RELIABILITY fuzz[handshake_health]: inputs={seen[0]}")


def test_quantities_raise_only_quantity_errors() -> None:
    seen = [0]

    @fuzz_settings(sized(150, 5_000))
    @given(QUANTITY)
    def run(value: Any) -> None:
        seen[0] += 1
        with contextlib.suppress(QuantityError):
            parse_quantity(value)

    run()
    print(f"RELIABILITY fuzz[parse_quantity]: inputs={seen[0]}")


# ---------------------------------------------------------------------- nodes and pods


COUNTS = st.one_of(QUANTITY.map(str), st.integers(0, 10**30).map(str))
"""Capacity values, enormous ones included: a node's claim must be refused, not expanded."""


def test_any_node_annotation_fails_only_that_node() -> None:
    """Register annotations of every installed vendor, hostile or not, through the vendors'
    readers into the usage cache: no exception; a bad vendor value becomes that node's error."""
    registers = sorted(
        {s.annotations.node_register for s in REGISTRY.specs() if s.annotations.node_register}
    )
    seen = [0]

    @fuzz_settings(sized(150, 5_000))
    @given(
        st.dictionaries(st.sampled_from(registers + NOTES), register_values(UUIDS), max_size=4),
        st.dictionaries(st.sampled_from(RESOURCES) | SMALL, COUNTS, max_size=3),
    )
    def run(notes: dict[str, str], allocatable: dict[str, str]) -> None:
        seen[0] += 1
        cache = UsageCache(REGISTRY, {})
        node = {
            "metadata": {"name": "node-a", "annotations": notes},
            "status": {"allocatable": allocatable, "capacity": allocatable},
        }
        with errors_logged() as logged:
            cache.upsert_node(node)
            state = cache.node("node-a")
            assert state is not None
            for message in state.errors.values():
                assert message
        assert logged.records == []

    run()
    print(f"RELIABILITY fuzz[node annotations]: inputs={seen[0]}")


def test_any_pod_is_parsed_or_refused_with_a_typed_error() -> None:
    """Pods of any shape through request parsing and a full engine decision on two example
    nodes: a decision, a typed error, or `Decision.error` — never an exception."""
    cache = UsageCache(REGISTRY, {})
    for name in NODES:
        cache.upsert_node(xpu_node(name, [CardShape(), CardShape()]))
    engine = Engine(REGISTRY, {}, cache)
    seen = [0]

    @fuzz_settings(sized(150, 5_000))
    @given(pods(RESOURCES, NOTES, UUIDS, NODES))
    def run(pod: dict[str, Any]) -> None:
        seen[0] += 1
        with errors_logged() as logged:
            with contextlib.suppress(HamiError, ValueError):
                pod_requests(REGISTRY, pod, {})
            engine.schedule(pod, NODES, 1_700_000_000.0, reserve=False)
            cache.upsert_pod(pod) if _named(pod) else None
        assert logged.records == []

    run()
    print(f"RELIABILITY fuzz[pods through the engine]: inputs={seen[0]}")


def _named(pod: Any) -> bool:
    meta = pod.get("metadata") if isinstance(pod, dict) else None
    return isinstance(meta, dict) and isinstance(meta.get("name"), str) and bool(meta["name"])


# ---------------------------------------------------------------------- HTTP


@pytest.fixture(scope="module")
def service() -> Iterator[SchedulerService]:
    """A scheduler over an in-memory cluster with two example nodes, every vendor loaded."""
    store = MemoryCluster()
    for name in NODES:
        store.add_node(xpu_node(name, [CardShape(), CardShape()]))
    svc = SchedulerService(store, REGISTRY)
    svc.informer.start()
    assert svc.informer.wait_synced(10)
    yield svc
    svc.informer.stop()


@pytest.fixture(scope="module")
def http(service: SchedulerService) -> Iterator[httpx.Client]:
    """The service's app served over loopback HTTP (uvicorn in a thread)."""
    server = service.serve_in_thread()
    try:
        with httpx.Client(base_url=server.url, timeout=10.0) as client:
            yield client
    finally:
        server.stop()


def _post(http: httpx.Client, path: str, content: bytes) -> Any:
    response = http.post(path, content=content, headers={"Content-Type": "application/json"})
    assert response.status_code in (200, 400, 413), (response.status_code, response.text)
    body = response.json()
    if path == "/webhook":
        assert body["kind"] == "AdmissionReview"
        status = (body["response"].get("status") or {}).get("code")
        assert status != 500, body
        if response.status_code != 200:
            assert body["response"]["allowed"] is False
    else:
        assert isinstance(body, dict) and "Error" in body, body
        assert not str(body["Error"]).startswith("internal error"), body
        if path == "/filter":
            assert set(body) >= {"Nodes", "NodeNames", "FailedNodes", "Error"}
    return body


@pytest.mark.parametrize("metadata", [[None], 1.0, "x"])
def test_a_pod_whose_metadata_is_not_an_object_gets_a_typed_error(
    http: httpx.Client, metadata: Any
) -> None:
    """Regression: the filter's failure event read `metadata.namespace` of a pod whose
    metadata is not an object, and the AttributeError came back as an internal error."""
    body = {"Pod": {"metadata": metadata, "spec": {"containers": []}}, "NodeNames": NODES}
    with errors_logged() as logged:
        answer = _post(http, "/filter", json.dumps(body).encode())
    assert "metadata" in answer["Error"], answer
    assert logged.records == []


def filter_bodies() -> st.SearchStrategy[Any]:
    pod = pods(RESOURCES, NOTES, UUIDS, NODES)
    names = st.lists(st.sampled_from(NODES) | SMALL, max_size=3)
    node_list = st.fixed_dictionaries(
        {"items": st.lists(st.just(xpu_node("node-a", [CardShape()])) | JSON, max_size=2)}
    )
    return st.one_of(
        st.builds(
            lambda kp, p, kn, n, kl, nl: {kp: p, kn: n, kl: nl},
            cased("Pod"),
            pod | JSON,
            cased("NodeNames"),
            names | JSON,
            cased("Nodes"),
            st.none() | node_list | JSON,
        ),
        JSON,
    )


def bind_bodies() -> st.SearchStrategy[Any]:
    return st.one_of(
        st.fixed_dictionaries(
            {
                "PodName": st.sampled_from(["fz-0", "fz-1"]) | SMALL | JSON,
                "PodNamespace": st.sampled_from([NS, ""]) | JSON,
                "PodUID": SMALL | JSON,
                "Node": st.sampled_from(NODES) | SMALL | JSON,
            }
        ),
        JSON,
    )


def admission_bodies() -> st.SearchStrategy[Any]:
    request = st.fixed_dictionaries(
        {"uid": SMALL | JSON, "object": pods(RESOURCES, NOTES, UUIDS, NODES) | JSON},
        optional={
            "operation": st.sampled_from(["CREATE", "UPDATE", "DELETE"]) | JSON,
            "namespace": SMALL | JSON,
            "kind": st.fixed_dictionaries({"kind": st.sampled_from(["Pod", "Node"]) | JSON}),
            "resource": st.fixed_dictionaries({"resource": st.sampled_from(["pods"]) | JSON}),
        },
    )
    return st.one_of(
        st.fixed_dictionaries(
            {
                "apiVersion": st.sampled_from(["admission.k8s.io/v1", "admission.k8s.io/v1beta1"])
                | JSON,
                "kind": st.just("AdmissionReview") | JSON,
                "request": request | JSON,
            }
        ),
        JSON,
    )


BODIES = {"/filter": filter_bodies, "/bind": bind_bodies, "/webhook": admission_bodies}


@pytest.mark.parametrize("path", sorted(BODIES))
def test_http_bodies_never_get_a_500(http: httpx.Client, path: str) -> None:
    seen = [0]

    @fuzz_settings(sized(100, 15_000))
    @given(
        st.one_of(
            BODIES[path]().map(lambda b: json.dumps(b).encode()),
            st.binary(max_size=64),
            st.text(max_size=64).map(str.encode),
        )
    )
    def run(content: bytes) -> None:
        seen[0] += 1
        with errors_logged() as logged:
            _post(http, path, content)
        assert logged.records == [], logged.records

    run()
    print(f"RELIABILITY fuzz[HTTP {path}]: inputs={seen[0]}")


# ---------------------------------------------------------------------- gRPC Allocate


@pytest.fixture(scope="module")
def kubelet_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, MemoryCluster]]:
    """The example device plugin on node-a over gRPC, with an in-memory cluster."""
    store = MemoryCluster()
    store.add_node({"metadata": {"name": NODE}})
    registry: VendorRegistry = example_registry()
    cards = write_cards(tmp_path_factory.mktemp("fuzz") / "cards.json", 2)
    previous = os.environ.get("HAMI_EXAMPLE_DEVICES")
    os.environ["HAMI_EXAMPLE_DEVICES"] = str(cards)
    with FakeKubelet() as kubelet:
        node = DevicePluginNode(
            store, registry, NODE, plugin_dir=kubelet.plugin_dir, interval=3600, poll=0.05
        )
        node.start()
        try:
            kubelet.wait_registered(XPU)
            kubelet.wait_devices(XPU)
            yield kubelet, store
        finally:
            node.stop()
            if previous is None:
                os.environ.pop("HAMI_EXAMPLE_DEVICES", None)
            else:
                os.environ["HAMI_EXAMPLE_DEVICES"] = previous


ALLOWED_CODES = {
    "UNAVAILABLE",
    "NOT_FOUND",
    "FAILED_PRECONDITION",
    "INVALID_ARGUMENT",
    "ABORTED",
}


def test_allocate_requests_are_answered_or_refused(
    kubelet_node: tuple[Any, MemoryCluster], tmp_path: Path
) -> None:
    kubelet, store = kubelet_node
    resources = ["example.com/xpu", "example.com/xpu-memory"]
    notes = [ASSIGNED_NODE, BIND_PHASE, TO_ALLOCATE, "hami.io/example-devices-allocated"]
    pod = st.fixed_dictionaries(
        {
            "metadata": st.fixed_dictionaries(
                {
                    "annotations": st.fixed_dictionaries(
                        {},
                        optional={
                            ASSIGNED_NODE: st.sampled_from(["node-a", "node-b"]) | SMALL,
                            BIND_PHASE: st.sampled_from(["allocating", "success"]) | SMALL,
                            TO_ALLOCATE: device_entries(["XPU-0", "XPU-1", "GPU-x"]),
                            "hami.io/example-devices-allocated": device_entries(["XPU-0", "XPU-1"]),
                        },
                    )
                }
            ),
            "spec": st.fixed_dictionaries(
                {
                    "nodeName": st.sampled_from(["node-a", "node-b"]),
                    "containers": containers_of(resources),
                }
            ),
        }
    )
    ids = st.lists(st.lists(st.sampled_from(["XPU-0-0", "XPU-1-3", ""]) | SMALL, max_size=3))
    seen = [0]
    assert notes

    @fuzz_settings(sized(100, 10_000))
    @given(st.lists(pod, max_size=3), ids)
    def run(fuzz_pods: list[dict[str, Any]], request: list[list[str]]) -> None:
        seen[0] += 1
        for i, p in enumerate(fuzz_pods):
            p["metadata"]["name"] = f"g{i}"
            store.add_pod(p)
        before = {p["metadata"]["name"]: notes_of(p) for p in store.list_pods()}
        try:
            with errors_logged() as logged:
                try:
                    kubelet.allocate_containers(XPU, request)
                except grpc.RpcError as exc:
                    assert exc.code().name in ALLOWED_CODES, (exc.code(), exc.details())
                else:
                    changed = [
                        p
                        for p in store.list_pods()
                        if notes_of(p).get(TO_ALLOCATE)
                        != before[p["metadata"]["name"]].get(TO_ALLOCATE)
                    ]
                    for p in changed:
                        was = before[p["metadata"]["name"]]
                        assert p["spec"]["nodeName"] == "node-a", "served a pod of another node"
                        assert was.get(ASSIGNED_NODE) == "node-a"
                        assert was.get(BIND_PHASE) == "allocating"
            assert logged.records == [], logged.records
        finally:
            for p in store.list_pods():
                store.delete_pod(NS, p["metadata"]["name"])

    run()
    print(f"RELIABILITY fuzz[gRPC Allocate]: inputs={seen[0]}")


def containers_of(resources: list[str]) -> st.SearchStrategy[list[dict[str, Any]]]:
    """One or two containers asking the example resource with odd values."""
    limits = st.dictionaries(st.sampled_from(resources), QUANTITY.map(str), max_size=2)
    return st.lists(
        st.builds(lambda i, lim: {"name": f"c{i}", "resources": {"limits": lim}}, SMALL, limits),
        min_size=1,
        max_size=2,
    )
