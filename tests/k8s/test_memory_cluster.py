"""`MemoryCluster` as a store: what `hami simulate` and the fake apiserver build on."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from hami_core.k8s import AlreadyExists, Conflict, Expired, Invalid, MemoryCluster, NotFound


def test_create_fills_server_fields_and_returns_copies() -> None:
    cluster = MemoryCluster(clock=lambda: 1_700_000_000.0)

    created = cluster.create("pods", {"metadata": {"name": "p1"}, "spec": {}})
    created["metadata"]["labels"] = {"mutated": "outside"}

    stored = cluster.get("pods", "p1", namespace="default")
    assert stored["metadata"]["creationTimestamp"] == "2023-11-14T22:13:20Z"
    assert stored["metadata"]["namespace"] == "default"
    assert stored["metadata"]["resourceVersion"] == "1" and stored["metadata"]["generation"] == 1
    assert "labels" not in stored["metadata"]
    assert (stored["apiVersion"], stored["kind"]) == ("v1", "Pod")


def test_generate_name() -> None:
    cluster = MemoryCluster()

    a = cluster.create("events", {"metadata": {"generateName": "p1."}}, namespace="ns")
    b = cluster.create("events", {"metadata": {"generateName": "p1."}}, namespace="ns")

    assert (
        a["metadata"]["name"].startswith("p1.") and a["metadata"]["name"] != b["metadata"]["name"]
    )


def test_add_keeps_a_given_uid_but_create_does_not() -> None:
    cluster = MemoryCluster()

    added = cluster.add_node({"metadata": {"name": "n1", "uid": "fixed"}})
    created = cluster.create("nodes", {"metadata": {"name": "n2", "uid": "fixed"}})

    assert added["metadata"]["uid"] == "fixed"
    assert created["metadata"]["uid"] != "fixed"
    with pytest.raises(AlreadyExists):
        cluster.add_node({"metadata": {"name": "n1"}})


def test_put_creates_then_replaces_keeping_identity() -> None:
    cluster = MemoryCluster()
    first = cluster.put("nodes", {"metadata": {"name": "n1"}, "spec": {"unschedulable": True}})

    second = cluster.put("nodes", {"metadata": {"name": "n1", "labels": {"a": "b"}}})

    assert second["metadata"]["uid"] == first["metadata"]["uid"]
    assert second["metadata"]["labels"] == {"a": "b"} and "spec" not in second
    assert second["metadata"]["generation"] == 2  # the spec changed


def test_update_status_and_list_by_phase() -> None:
    cluster = MemoryCluster()
    cluster.add_pod({"metadata": {"name": "p1", "namespace": "ns"}})
    cluster.add_pod({"metadata": {"name": "p2", "namespace": "ns"}})

    cluster.update_status("pods", "p2", {"phase": "Running"}, namespace="ns")
    running = cluster.list_objects("pods", field_selector="status.phase=Running")

    assert [p["metadata"]["name"] for p in running["items"]] == ["p2"]
    assert running["kind"] == "PodList"


def test_delete_preconditions_and_not_found() -> None:
    cluster = MemoryCluster()
    pod = cluster.add_pod({"metadata": {"name": "p1"}})

    with pytest.raises(Conflict):
        cluster.delete("pods", "p1", resource_version="999")
    gone = cluster.delete_pod("default", "p1")

    assert gone["metadata"]["uid"] == pod["metadata"]["uid"]
    assert int(gone["metadata"]["resourceVersion"]) > int(pod["metadata"]["resourceVersion"])
    with pytest.raises(NotFound):
        cluster.delete_pod("default", "p1")


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        ("a pod", "expected a JSON object"),
        ({"metadata": {}}, "name or generateName is required"),
        ({"metadata": "x"}, "metadata must be a JSON object"),
        ({"metadata": {"name": "p", "labels": {"a": 1}}}, r"metadata.labels\['a'\]"),
        ({"metadata": {"name": "p", "annotations": ["x"]}}, "metadata.annotations"),
        ({"metadata": {"name": "p", "namespace": "other"}}, "does not match the namespace"),
    ],
)
def test_bad_objects_are_invalid_naming_the_field(obj: object, message: str) -> None:
    with pytest.raises(Invalid, match=message):
        MemoryCluster().create("pods", obj, namespace="ns")  # type: ignore[arg-type]


def test_unknown_resources_and_bad_versions() -> None:
    cluster = MemoryCluster()

    with pytest.raises(NotFound, match="unknown resource 'secrets'"):
        cluster.get("secrets", "x")
    with pytest.raises(Invalid, match="not a valid resource version"):
        cluster.watch("pods", resource_version="abc")
    with pytest.raises(Invalid, match="field label not supported"):
        cluster.list_objects("nodes", field_selector="spec.nodeName=x")


def test_update_cannot_rename_or_move_an_object() -> None:
    cluster = MemoryCluster()
    cluster.add_pod({"metadata": {"name": "p1", "namespace": "ns"}})

    def rename(pod: dict[str, Any]) -> dict[str, Any]:
        pod["metadata"]["name"] = "p2"
        return pod

    def move(pod: dict[str, Any]) -> dict[str, Any]:
        pod["metadata"]["namespace"] = "elsewhere"
        return pod

    with pytest.raises(Invalid, match="does not match the name"):
        cluster.update("pods", "p1", rename, namespace="ns")
    with pytest.raises(Invalid, match="does not match the namespace"):
        cluster.update("pods", "p1", move, namespace="ns")
    assert cluster.get_pod("ns", "p1")["metadata"]["resourceVersion"] == "1"


def test_history_limit_expires_old_versions() -> None:
    cluster = MemoryCluster(history_limit=2)
    start = cluster.add_node({"metadata": {"name": "n0"}})["metadata"]["resourceVersion"]
    for i in range(1, 6):
        cluster.add_node({"metadata": {"name": f"n{i}"}})

    with pytest.raises(Expired, match="too old resource version"):
        cluster.watch("nodes", resource_version=start)
    recent = cluster.watch("nodes", resource_version="4", timeout=1)
    assert [e.object["metadata"]["name"] for e in (next(recent), next(recent))] == ["n4", "n5"]
    recent.stop()


def test_raw_watch_filters_by_namespace_and_selectors() -> None:
    cluster = MemoryCluster()
    cluster.add_pod({"metadata": {"name": "old", "namespace": "ns", "labels": {"app": "x"}}})
    stream = cluster.watch("pods", namespace="ns", label_selector="app=x", timeout=1)

    cluster.add_pod({"metadata": {"name": "other-ns", "namespace": "b", "labels": {"app": "x"}}})
    cluster.add_pod({"metadata": {"name": "other-app", "namespace": "ns", "labels": {"app": "y"}}})
    cluster.add_pod({"metadata": {"name": "match", "namespace": "ns", "labels": {"app": "x"}}})
    events = [next(stream), next(stream)]
    stream.stop()

    assert [(e.type, e.object["metadata"]["name"]) for e in events] == [
        ("ADDED", "old"),
        ("ADDED", "match"),
    ]


def test_bookmark_at_the_end_of_a_timed_out_watch() -> None:
    cluster = MemoryCluster()
    cluster.add_node({"metadata": {"name": "n1"}})

    events = list(cluster.watch("pods", resource_version="1", timeout=0.05, bookmark_at_end=True))

    assert [(e.type, e.object["metadata"]) for e in events] == [
        ("BOOKMARK", {"resourceVersion": "1"})
    ]


def test_concurrent_writers_get_unique_increasing_versions() -> None:
    cluster = MemoryCluster()
    versions: list[int] = []
    lock = threading.Lock()

    def writer(w: int) -> None:
        for i in range(50):
            rv = cluster.create("configmaps", {"metadata": {"name": f"c{w}-{i}"}})
            with lock:
                versions.append(int(rv["metadata"]["resourceVersion"]))

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert sorted(versions) == list(range(1, 201))
    assert len(cluster.list_objects("configmaps")["items"]) == 200


def test_pods_listed_by_node_follow_binds_moves_and_deletes() -> None:
    cluster = MemoryCluster()

    def on(node: str) -> list[str]:
        by_index = [p["metadata"]["name"] for p in cluster.list_pods(node_name=node)]
        by_scan = sorted(
            p["metadata"]["name"] for p in cluster.list_pods() if p["spec"].get("nodeName") == node
        )
        assert by_index == by_scan
        return by_index

    for name in ("a", "b", "c"):
        cluster.add_pod({"metadata": {"name": name, "namespace": "ns"}, "spec": {}})
    cluster.bind_pod("ns", "a", None, "gpu-1")
    cluster.bind_pod("ns", "b", None, "gpu-1")
    assert on("gpu-1") == ["a", "b"]
    cluster.put(
        "pods", {"metadata": {"name": "b", "namespace": "ns"}, "spec": {"nodeName": "gpu-2"}}
    )
    assert (on("gpu-1"), on("gpu-2")) == (["a"], ["b"])
    cluster.delete_pod("ns", "a")
    assert on("gpu-1") == []
    cluster.add_pod({"metadata": {"name": "d", "namespace": "x"}, "spec": {"nodeName": "gpu-2"}})
    assert on("gpu-2") == ["b", "d"]  # sorted by namespace, then name
    assert [p["metadata"]["name"] for p in cluster.list_pods(node_name="")] == ["c"]


def test_objects_handed_out_are_copies_even_of_odd_values() -> None:
    cluster = MemoryCluster()
    big = 1 << 70  # beyond what JSON tools read as a 64-bit number
    cluster.add_pod({"metadata": {"name": "p", "namespace": "ns"}, "spec": {"n": big}})
    first = cluster.get_pod("ns", "p")
    first["spec"]["n"] = 0
    first["metadata"]["name"] = "changed"
    again = cluster.get_pod("ns", "p")
    assert (again["spec"]["n"], again["metadata"]["name"]) == (big, "p")
