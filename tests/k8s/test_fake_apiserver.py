"""`FakeApiServer` over raw HTTP: the apiserver behaviour it promises, byte for byte, and the
facts about the real `kubernetes` client that it must honour."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from kubernetes import client as k8s
from kubernetes import watch as k8s_watch

from hami_core.testing import FakeApiServer

MERGE = {"Content-Type": "application/merge-patch+json"}
JSON_PATCH = {"Content-Type": "application/json-patch+json"}
STRATEGIC = {"Content-Type": "application/strategic-merge-patch+json"}


@pytest.fixture
def http(server: FakeApiServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=5.0) as c:
        yield c


def add_pod(server: FakeApiServer, name: str, **extra: Any) -> dict[str, Any]:
    return server.state.add_pod(
        {"metadata": {"name": name, "namespace": "ns"}, "spec": {"containers": []}, **extra}
    )


def assert_status(reply: httpx.Response, code: int, reason: str) -> dict[str, Any]:
    assert reply.status_code == code
    body: dict[str, Any] = reply.json()
    assert body["kind"] == "Status" and body["apiVersion"] == "v1"
    assert body["status"] == "Failure"
    assert (body["code"], body["reason"]) == (code, reason)
    assert body["message"]
    return body


def test_get_of_a_missing_object_is_a_not_found_status(http: httpx.Client) -> None:
    body = assert_status(http.get("/api/v1/namespaces/ns/pods/ghost"), 404, "NotFound")

    assert body["message"] == 'pods "ghost" not found'
    assert body["details"] == {"name": "ghost", "kind": "pods"}


def test_unknown_paths_are_not_found(http: httpx.Client) -> None:
    assert_status(http.get("/api/v1/namespaces/ns/secrets"), 404, "NotFound")
    assert_status(http.get("/apis/coordination.k8s.io/v1/pods"), 404, "NotFound")
    assert_status(http.get("/api/v1/namespaces/ns/nodes"), 404, "NotFound")


def test_version_and_health(http: httpx.Client) -> None:
    assert http.get("/version").json()["major"] == "1"
    assert http.get("/healthz").text == "ok"


def test_create_fills_metadata_and_refuses_a_duplicate(http: httpx.Client) -> None:
    pod = {"metadata": {"name": "p1"}, "spec": {"containers": []}}

    created = http.post("/api/v1/namespaces/ns/pods", json=pod)
    again = http.post("/api/v1/namespaces/ns/pods", json=pod)

    assert created.status_code == 201
    meta = created.json()["metadata"]
    assert meta["namespace"] == "ns" and meta["uid"] and meta["resourceVersion"]
    assert created.json()["status"] == {"phase": "Pending"}
    body = assert_status(again, 409, "AlreadyExists")
    assert body["message"] == 'pods "p1" already exists'


def test_a_post_without_content_type_is_read_as_json(
    server: FakeApiServer, http: httpx.Client
) -> None:
    reply = http.post(
        "/api/v1/namespaces/ns/configmaps",
        content=json.dumps({"metadata": {"name": "cfg"}, "data": {"k": "v"}}),
    )

    assert reply.status_code == 201
    assert server.requests[-1].content_type is None
    assert server.state.get("configmaps", "cfg", namespace="ns")["data"] == {"k": "v"}


def test_malformed_json_is_a_bad_request(http: httpx.Client) -> None:
    assert_status(http.post("/api/v1/nodes", content=b"{nope"), 400, "BadRequest")


def test_list_has_a_version_and_items_without_kind(
    server: FakeApiServer, http: httpx.Client
) -> None:
    add_pod(server, "p1")

    listing = http.get("/api/v1/pods").json()

    assert listing["kind"] == "PodList" and listing["apiVersion"] == "v1"
    assert listing["metadata"]["resourceVersion"] == server.state.resource_version
    assert [set(i) >= {"metadata", "spec"} and "kind" not in i for i in listing["items"]] == [True]


def test_field_and_label_selectors(server: FakeApiServer, http: httpx.Client) -> None:
    add_pod(server, "p1", status={"phase": "Running"})
    add_pod(server, "p2")
    server.state.put(
        "pods",
        {"metadata": {"name": "p3", "namespace": "other", "labels": {"app": "x"}}, "spec": {}},
    )

    def listed(**params: str) -> list[str]:
        reply = http.get("/api/v1/pods", params=params)
        assert reply.status_code == 200, reply.text
        return [i["metadata"]["name"] for i in reply.json()["items"]]

    assert listed(fieldSelector="status.phase=Running") == ["p1"]
    assert listed(fieldSelector="status.phase!=Running") == ["p2", "p3"]
    assert listed(fieldSelector="metadata.name=p2,metadata.namespace=ns") == ["p2"]
    assert listed(labelSelector="app in (x, y)") == ["p3"]
    assert_status(
        http.get("/api/v1/pods", params={"fieldSelector": "spec.image=x"}), 400, "BadRequest"
    )
    assert_status(http.get("/api/v1/pods", params={"labelSelector": "app in x"}), 400, "BadRequest")


def test_put_with_a_stale_version_is_a_conflict(server: FakeApiServer, http: httpx.Client) -> None:
    cfg = server.state.put("configmaps", {"metadata": {"name": "c", "namespace": "ns"}})
    stale = json.loads(json.dumps(cfg))
    cfg["data"] = {"a": "1"}
    assert http.put("/api/v1/namespaces/ns/configmaps/c", json=cfg).status_code == 200

    stale["data"] = {"a": "2"}
    body = assert_status(
        http.put("/api/v1/namespaces/ns/configmaps/c", json=stale), 409, "Conflict"
    )

    assert "the object has been modified" in body["message"]


def test_json_patch_with_escaped_keys(server: FakeApiServer, http: httpx.Client) -> None:
    server.state.add_node({"metadata": {"name": "gpu-1", "annotations": {"old": "1"}}})
    ops = [
        {
            "op": "add",
            "path": "/metadata/annotations/hami.io~1node-handshake",
            "value": "Requesting",
        },
        {"op": "remove", "path": "/metadata/annotations/old"},
    ]

    reply = http.patch("/api/v1/nodes/gpu-1", content=json.dumps(ops), headers=JSON_PATCH)

    assert reply.status_code == 200
    assert reply.json()["metadata"]["annotations"] == {"hami.io/node-handshake": "Requesting"}


def test_a_failing_json_patch_is_invalid_and_changes_nothing(
    server: FakeApiServer, http: httpx.Client
) -> None:
    node = server.state.add_node({"metadata": {"name": "gpu-1", "labels": {"a": "1"}}})
    ops = [
        {"op": "replace", "path": "/metadata/labels/a", "value": "2"},
        {"op": "test", "path": "/metadata/labels/a", "value": "3"},
    ]

    reply = http.patch("/api/v1/nodes/gpu-1", content=json.dumps(ops), headers=JSON_PATCH)

    assert_status(reply, 422, "Invalid")
    assert server.state.get_node("gpu-1") == node


def test_a_version_inside_any_patch_is_a_precondition(
    server: FakeApiServer, http: httpx.Client
) -> None:
    rv = server.state.add_node({"metadata": {"name": "gpu-1"}})["metadata"]["resourceVersion"]
    server.state.patch_node_metadata("gpu-1", labels={"moved": "on"})
    stale_json = [{"op": "replace", "path": "/metadata/resourceVersion", "value": rv}]
    stale_merge = {"metadata": {"resourceVersion": rv, "labels": {"x": "y"}}}

    assert_status(
        http.patch("/api/v1/nodes/gpu-1", content=json.dumps(stale_json), headers=JSON_PATCH),
        409,
        "Conflict",
    )
    assert_status(
        http.patch("/api/v1/nodes/gpu-1", content=json.dumps(stale_merge), headers=MERGE),
        409,
        "Conflict",
    )
    assert_status(
        http.patch("/api/v1/nodes/gpu-1", content=json.dumps(stale_merge), headers=STRATEGIC),
        409,
        "Conflict",
    )


def test_strategic_merge_merges_containers_by_name(
    server: FakeApiServer, http: httpx.Client
) -> None:
    server.state.add_pod(
        {
            "metadata": {"name": "p1", "namespace": "ns"},
            "spec": {"containers": [{"name": "a", "image": "x"}, {"name": "b", "image": "y"}]},
        }
    )
    patch = {"spec": {"containers": [{"name": "b", "image": "z"}]}}

    merged = http.patch("/api/v1/namespaces/ns/pods/p1", json=patch, headers=STRATEGIC).json()
    replaced = http.patch("/api/v1/namespaces/ns/pods/p1", json=patch, headers=MERGE).json()

    assert merged["spec"]["containers"] == [
        {"name": "a", "image": "x"},
        {"name": "b", "image": "z"},
    ]
    assert replaced["spec"]["containers"] == [{"name": "b", "image": "z"}]


def test_unsupported_patches_are_refused(server: FakeApiServer, http: httpx.Client) -> None:
    add_pod(server, "p1")
    directive = {"spec": {"containers": [{"name": "a", "$patch": "delete"}]}}

    assert_status(
        http.patch("/api/v1/namespaces/ns/pods/p1", json=directive, headers=STRATEGIC),
        415,
        "UnsupportedMediaType",
    )
    assert_status(
        http.patch(
            "/api/v1/namespaces/ns/pods/p1",
            json={"spec": {}},
            headers={"Content-Type": "application/yaml"},
        ),
        415,
        "UnsupportedMediaType",
    )


def test_status_is_written_only_through_the_status_subresource(
    server: FakeApiServer, http: httpx.Client
) -> None:
    add_pod(server, "p1")
    running = {"status": {"phase": "Running"}, "metadata": {"labels": {"a": "b"}}}

    main = http.patch("/api/v1/namespaces/ns/pods/p1", json=running, headers=MERGE).json()
    status = http.patch("/api/v1/namespaces/ns/pods/p1/status", json=running, headers=MERGE)

    assert main["status"]["phase"] == "Pending" and main["metadata"]["labels"] == {"a": "b"}
    assert status.status_code == 200
    assert status.json()["status"]["phase"] == "Running"
    assert http.get("/api/v1/namespaces/ns/pods/p1/status").json()["status"]["phase"] == "Running"


def test_delete_with_preconditions(server: FakeApiServer, http: httpx.Client) -> None:
    pod = add_pod(server, "p1")
    stale = {"preconditions": {"uid": "another-uid"}}
    current = {"preconditions": {"uid": pod["metadata"]["uid"]}}

    refused = http.request("DELETE", "/api/v1/namespaces/ns/pods/p1", json=stale)
    deleted = http.request("DELETE", "/api/v1/namespaces/ns/pods/p1", json=current)

    assert_status(refused, 409, "Conflict")
    assert deleted.status_code == 200 and deleted.json()["metadata"]["name"] == "p1"
    assert_status(http.get("/api/v1/namespaces/ns/pods/p1"), 404, "NotFound")


def test_binding_replies_with_a_success_status(server: FakeApiServer, http: httpx.Client) -> None:
    add_pod(server, "p1")
    add_pod(server, "p2")
    binding = {
        "apiVersion": "v1",
        "kind": "Binding",
        "metadata": {"name": "p1", "annotations": {"hami.io/bind-time": "1"}},
        "target": {"kind": "Node", "name": "gpu-1"},
    }

    reply = http.post("/api/v1/namespaces/ns/pods/p1/binding", json=binding)
    again = http.post("/api/v1/namespaces/ns/pods/p1/binding", json=binding)
    via_collection = http.post(
        "/api/v1/namespaces/ns/bindings", json={**binding, "metadata": {"name": "p2"}}
    )

    assert reply.status_code == 201
    assert reply.json() == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "code": 201,
    }
    assert_status(again, 409, "Conflict")
    assert via_collection.status_code == 201
    bound = server.state.get_pod("ns", "p1")
    assert bound["spec"]["nodeName"] == "gpu-1"
    assert bound["metadata"]["annotations"] == {"hami.io/bind-time": "1"}
    assert server.state.get_pod("ns", "p2")["spec"]["nodeName"] == "gpu-1"


def watch_lines(
    http: httpx.Client, path: str, *, first: int | None = None, **params: str
) -> list[dict[str, Any]]:
    """The events of one watch request: all of them, or only the `first` few."""
    events: list[dict[str, Any]] = []
    with http.stream("GET", path, params={"watch": "true", **params}) as reply:
        assert reply.status_code == 200
        assert reply.headers["content-type"] == "application/json"
        for line in reply.iter_lines():
            if line:
                events.append(json.loads(line))
            if len(events) == first:
                break
    return events


def test_watch_streams_events_and_ends_at_its_timeout_with_a_bookmark(
    server: FakeApiServer, http: httpx.Client
) -> None:
    start = server.state.add_node({"metadata": {"name": "n"}})["metadata"]["resourceVersion"]
    add_pod(server, "p1")
    server.state.patch_pod_metadata("ns", "p1", labels={"a": "b"})
    server.state.delete_pod("ns", "p1")

    events = watch_lines(
        http,
        "/api/v1/namespaces/ns/pods",
        resourceVersion=start,
        timeoutSeconds="1",
        allowWatchBookmarks="true",
    )

    assert [e["type"] for e in events] == ["ADDED", "MODIFIED", "DELETED", "BOOKMARK"]
    assert events[0]["object"]["kind"] == "Pod"
    assert events[3]["object"]["metadata"] == {"resourceVersion": server.state.resource_version}


def test_watch_without_a_version_starts_with_the_existing_objects(
    server: FakeApiServer, http: httpx.Client
) -> None:
    add_pod(server, "p1")

    events = watch_lines(http, "/api/v1/pods", first=1, labelSelector="!absent")

    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [("ADDED", "p1")]


def test_watch_from_a_compacted_version_gets_an_expired_error_event(
    server: FakeApiServer, http: httpx.Client
) -> None:
    add_pod(server, "p1")
    add_pod(server, "p2")
    server.state.compact()

    events = watch_lines(http, "/api/v1/pods", resourceVersion="1")

    assert [e["type"] for e in events] == ["ERROR"]
    status = events[0]["object"]
    assert (status["kind"], status["code"], status["reason"]) == ("Status", 410, "Expired")
    assert "too old resource version" in status["message"]


def test_injected_failures_are_counted_and_matched_by_method(
    server: FakeApiServer, http: httpx.Client
) -> None:
    server.faults.fail_next("GET", "^/api/v1/nodes$", status=503, count=2)

    posted = http.post("/api/v1/nodes", json={"metadata": {"name": "n"}})
    codes = [http.get("/api/v1/nodes").status_code for _ in range(3)]

    assert posted.status_code == 201
    assert codes == [503, 503, 200]


def test_any_method_fault_answers_with_its_status(
    server: FakeApiServer, http: httpx.Client
) -> None:
    server.state.add_node({"metadata": {"name": "n"}})
    server.faults.fail_next("*", "/nodes/n$", status=500)

    assert_status(http.get("/api/v1/nodes/n"), 500, "InternalError")
    assert http.get("/api/v1/nodes/n").status_code == 200


def test_cleared_faults_stop_applying(server: FakeApiServer, http: httpx.Client) -> None:
    server.faults.fail_next("*", ".", status=500, count=10)
    server.faults.clear()

    assert http.get("/api/v1/nodes").status_code == 200


def test_the_request_log_records_what_was_called(server: FakeApiServer, http: httpx.Client) -> None:
    http.post("/api/v1/nodes", json={"metadata": {"name": "n"}})
    http.patch("/api/v1/nodes/n", json={"metadata": {"labels": {"a": "b"}}}, headers=MERGE)
    http.get("/api/v1/nodes", params={"labelSelector": "a=b"})

    log = server.requests
    assert [(r.method, r.path) for r in log] == [
        ("POST", "/api/v1/nodes"),
        ("PATCH", "/api/v1/nodes/n"),
        ("GET", "/api/v1/nodes"),
    ]
    assert log[1].body == {"metadata": {"labels": {"a": "b"}}}
    assert log[1].content_type == "application/merge-patch+json"
    assert log[2].query == {"labelSelector": "a=b"}
    server.clear_requests()
    assert server.requests == []


def test_a_configured_token_is_required() -> None:
    with FakeApiServer(token="t0ken") as server, httpx.Client(base_url=server.url) as http:
        assert_status(http.get("/api/v1/nodes"), 401, "Unauthorized")
        ok = http.get("/api/v1/nodes", headers={"Authorization": "Bearer t0ken"})
        assert ok.status_code == 200


def typed_api(server: FakeApiServer) -> k8s.CoreV1Api:
    return k8s.CoreV1Api(k8s.ApiClient(k8s.Configuration(host=server.url)))


def test_the_typed_client_binds_with_raw_replies(server: FakeApiServer) -> None:
    add_pod(server, "p1")
    body = k8s.V1Binding(
        metadata=k8s.V1ObjectMeta(name="p1"), target=k8s.V1ObjectReference(name="gpu-1")
    )

    reply: Any = typed_api(server).create_namespaced_pod_binding(
        "p1", "ns", body, _preload_content=False
    )

    assert reply.status == 201
    assert json.loads(reply.data)["kind"] == "Status"
    assert server.requests[-1].content_type is None  # the client sends POSTs without one
    assert server.state.get_pod("ns", "p1")["spec"]["nodeName"] == "gpu-1"


def test_the_typed_client_patches_dicts_as_strategic_merge(server: FakeApiServer) -> None:
    add_pod(server, "p1")

    patched: Any = typed_api(server).patch_namespaced_pod(
        "p1", "ns", {"metadata": {"annotations": {"a": "b"}}}
    )

    assert patched.metadata.annotations == {"a": "b"}
    assert server.requests[-1].content_type == "application/strategic-merge-patch+json"


def test_the_typed_watch_reads_events_and_expired_errors(server: FakeApiServer) -> None:
    api = typed_api(server)
    add_pod(server, "p1")
    watcher = k8s_watch.Watch()  # type: ignore[no-untyped-call]

    names = []
    events = watcher.stream(api.list_namespaced_pod, "ns", resource_version="0")  # type: ignore[no-untyped-call]
    for event in events:
        names.append((event["type"], event["object"].metadata.name))
        watcher.stop()  # type: ignore[no-untyped-call]
    add_pod(server, "p2")
    server.state.compact()
    with pytest.raises(k8s.ApiException) as expired:
        list(
            watcher.stream(  # type: ignore[no-untyped-call]
                api.list_pod_for_all_namespaces, resource_version="1", timeout_seconds=1
            )
        )

    assert names == [("ADDED", "p1")]
    assert expired.value.status == 410


def test_chunked_request_bodies_are_refused(http: httpx.Client) -> None:
    def body() -> Iterator[bytes]:
        yield b'{"metadata": {"name": "n"}}'

    reply = http.post("/api/v1/nodes", content=body())

    assert_status(reply, 411, "LengthRequired")
