"""The `Cluster` contract: every verb, run against `MemoryCluster` and against `KubeCluster`
(the real `kubernetes` client over HTTP to `FakeApiServer`). Both must behave the same."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import pytest

from hami_core.k8s import (
    AlreadyExists,
    Cluster,
    Conflict,
    Invalid,
    MemoryCluster,
    NotFound,
    WatchEvent,
    WatchStream,
)
from hami_core.k8s.kube import KubeCluster
from hami_core.testing import FakeApiServer


@dataclass
class ClusterUnderTest:
    """`cluster` is what the test exercises; `state` is where the test arranges objects."""

    cluster: MemoryCluster | KubeCluster
    state: MemoryCluster


@pytest.fixture(params=["memory", "kube"])
def under_test(request: pytest.FixtureRequest) -> Iterator[ClusterUnderTest]:
    """The same contract, run against `MemoryCluster` and `KubeCluster` over HTTP."""
    if request.param == "memory":
        state = MemoryCluster()
        yield ClusterUnderTest(cluster=state, state=state)
        return
    with FakeApiServer() as fake:
        cluster = fake.kube_cluster(request_timeout=5.0, watch_timeout_seconds=30)
        try:
            yield ClusterUnderTest(cluster=cluster, state=fake.state)
        finally:
            cluster.close()


def node(name: str, labels: dict[str, str] | None = None) -> dict[str, object]:
    return {"metadata": {"name": name, "labels": labels or {}}, "spec": {}}


def pod(
    namespace: str, name: str, *, labels: dict[str, str] | None = None, node_name: str = ""
) -> dict[str, object]:
    spec: dict[str, object] = {"containers": [{"name": "main", "image": "busybox"}]}
    if node_name:
        spec["nodeName"] = node_name
    return {
        "metadata": {"name": name, "namespace": namespace, "labels": labels or {}},
        "spec": spec,
    }


def names(objects: Iterable[dict[str, object]]) -> list[str]:
    return [o["metadata"]["name"] for o in objects]  # type: ignore[index]


def take(stream: WatchStream, count: int) -> list[WatchEvent]:
    """The next `count` events (fewer if the stream ends first), then stop the stream."""
    events: list[WatchEvent] = []
    for event in stream:
        if event.type == "BOOKMARK":
            continue
        events.append(event)
        if len(events) == count:
            break
    stream.stop()
    return events


def test_both_implementations_satisfy_the_protocol(under_test: ClusterUnderTest) -> None:
    assert isinstance(under_test.cluster, Cluster)
    static_check: tuple[Cluster, Cluster] = (MemoryCluster(), KubeCluster.for_host("http://x"))
    assert static_check


def test_get_node_returns_server_filled_metadata(under_test: ClusterUnderTest) -> None:
    under_test.state.add_node(node("gpu-1", {"zone": "a"}))

    got = under_test.cluster.get_node("gpu-1")

    assert got["kind"] == "Node" and got["apiVersion"] == "v1"
    meta = got["metadata"]
    assert meta["name"] == "gpu-1" and meta["labels"] == {"zone": "a"}
    assert meta["uid"] and meta["creationTimestamp"].endswith("Z")
    assert int(meta["resourceVersion"]) > 0


def test_missing_objects_raise_not_found_with_the_apiserver_message(
    under_test: ClusterUnderTest,
) -> None:
    with pytest.raises(NotFound, match='nodes "nope" not found'):
        under_test.cluster.get_node("nope")
    with pytest.raises(NotFound, match='pods "nope" not found'):
        under_test.cluster.get_pod("default", "nope")
    with pytest.raises(NotFound):
        under_test.cluster.patch_node_metadata("nope", annotations={"a": "b"})
    with pytest.raises(NotFound):
        under_test.cluster.bind_pod("default", "nope", None, "gpu-1")
    with pytest.raises(NotFound, match='leases "nope" not found'):
        under_test.cluster.get_lease("kube-system", "nope")


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        (None, ["a", "b", "c"]),
        ("gpu=true", ["a", "b"]),
        ("gpu==true,zone=z1", ["a"]),
        ("zone!=z1", ["b", "c"]),
        ("zone", ["a", "b"]),
        ("!zone", ["c"]),
        ("zone in (z1,z2)", ["a", "b"]),
        ("zone notin (z1)", ["b", "c"]),
    ],
)
def test_list_nodes_by_label_selector(
    under_test: ClusterUnderTest, selector: str | None, expected: list[str]
) -> None:
    under_test.state.add_node(node("a", {"gpu": "true", "zone": "z1"}))
    under_test.state.add_node(node("b", {"gpu": "true", "zone": "z2"}))
    under_test.state.add_node(node("c", {"gpu": "false"}))

    assert names(under_test.cluster.list_nodes(label_selector=selector)) == expected


def test_list_pods_by_namespace_node_and_labels(under_test: ClusterUnderTest) -> None:
    state = under_test.state
    state.add_pod(pod("team-a", "p1", labels={"app": "x"}, node_name="gpu-1"))
    state.add_pod(pod("team-a", "p2", labels={"app": "y"}, node_name="gpu-2"))
    state.add_pod(pod("team-b", "p3", labels={"app": "x"}, node_name="gpu-1"))
    state.add_pod(pod("team-b", "p4", labels={"app": "x"}))
    cluster = under_test.cluster

    assert names(cluster.list_pods()) == ["p1", "p2", "p3", "p4"]
    assert names(cluster.list_pods(namespace="team-a")) == ["p1", "p2"]
    assert names(cluster.list_pods(node_name="gpu-1")) == ["p1", "p3"]
    assert names(cluster.list_pods(node_name="")) == ["p4"]
    assert names(cluster.list_pods(label_selector="app=x")) == ["p1", "p3", "p4"]
    assert names(cluster.list_pods(namespace="team-b", node_name="gpu-1")) == ["p3"]
    assert all(p["kind"] == "Pod" for p in cluster.list_pods())


def test_get_pod(under_test: ClusterUnderTest) -> None:
    created = under_test.state.add_pod(pod("team-a", "p1"))

    got = under_test.cluster.get_pod("team-a", "p1")

    assert got["metadata"]["uid"] == created["metadata"]["uid"]
    assert got["spec"]["containers"][0]["name"] == "main"


def test_patch_node_metadata_adds_and_removes_keys(under_test: ClusterUnderTest) -> None:
    under_test.state.add_node(
        {"metadata": {"name": "gpu-1", "annotations": {"keep": "1", "drop": "2"}, "labels": {}}}
    )
    before = under_test.cluster.get_node("gpu-1")

    after = under_test.cluster.patch_node_metadata(
        "gpu-1", annotations={"hami.io/node-nvidia-register": "[]", "drop": None}, labels={"l": "v"}
    )

    assert after["metadata"]["annotations"] == {"keep": "1", "hami.io/node-nvidia-register": "[]"}
    assert after["metadata"]["labels"] == {"l": "v"}
    assert int(after["metadata"]["resourceVersion"]) > int(before["metadata"]["resourceVersion"])
    assert under_test.cluster.get_node("gpu-1") == after


def test_stale_resource_version_is_a_conflict(under_test: ClusterUnderTest) -> None:
    under_test.state.add_node(node("gpu-1"))
    seen = under_test.cluster.get_node("gpu-1")["metadata"]["resourceVersion"]

    locked = under_test.cluster.patch_node_metadata(
        "gpu-1", annotations={"hami.io/mutex.lock": "t1"}, resource_version=seen
    )
    with pytest.raises(Conflict, match="the object has been modified"):
        under_test.cluster.patch_node_metadata(
            "gpu-1", annotations={"hami.io/mutex.lock": "t2"}, resource_version=seen
        )

    assert under_test.cluster.get_node("gpu-1")["metadata"]["annotations"] == {
        "hami.io/mutex.lock": "t1"
    }
    current = locked["metadata"]["resourceVersion"]
    released = under_test.cluster.patch_node_metadata(
        "gpu-1", annotations={"hami.io/mutex.lock": None}, resource_version=current
    )
    assert "hami.io/mutex.lock" not in released["metadata"].get("annotations", {})


def test_node_lock_race_has_exactly_one_winner(under_test: ClusterUnderTest) -> None:
    under_test.state.add_node(node("gpu-1"))
    seen = under_test.cluster.get_node("gpu-1")["metadata"]["resourceVersion"]
    outcomes: list[str] = []
    lock = threading.Lock()

    def contend(i: int) -> None:
        try:
            under_test.cluster.patch_node_metadata(
                "gpu-1", annotations={"hami.io/mutex.lock": f"holder-{i}"}, resource_version=seen
            )
            result = f"won-{i}"
        except Conflict:
            result = "conflict"
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=contend, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    winners = [o for o in outcomes if o.startswith("won")]
    assert len(winners) == 1 and outcomes.count("conflict") == 7
    holder = under_test.cluster.get_node("gpu-1")["metadata"]["annotations"]["hami.io/mutex.lock"]
    assert holder == winners[0].replace("won", "holder")


def test_patch_pod_metadata_with_precondition(under_test: ClusterUnderTest) -> None:
    under_test.state.add_pod(pod("team-a", "p1", labels={"app": "x"}))
    seen = under_test.cluster.get_pod("team-a", "p1")["metadata"]["resourceVersion"]

    patched = under_test.cluster.patch_pod_metadata(
        "team-a",
        "p1",
        annotations={"hami.io/bind-phase": "allocating"},
        labels={"app": None},
        resource_version=seen,
    )

    assert patched["metadata"]["annotations"] == {"hami.io/bind-phase": "allocating"}
    assert "app" not in patched["metadata"].get("labels", {})
    with pytest.raises(Conflict):
        under_test.cluster.patch_pod_metadata(
            "team-a", "p1", annotations={"x": "y"}, resource_version=seen
        )


def test_a_patch_that_changes_nothing_keeps_the_resource_version(
    under_test: ClusterUnderTest,
) -> None:
    created = under_test.state.add_node({"metadata": {"name": "gpu-1", "annotations": {"a": "1"}}})

    same = under_test.cluster.patch_node_metadata("gpu-1", annotations={"a": "1"})

    assert same["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]


def test_bad_metadata_values_are_refused_naming_the_key(under_test: ClusterUnderTest) -> None:
    under_test.state.add_node(node("gpu-1"))

    with pytest.raises(Invalid, match=r"metadata.annotations\['count'\].*int"):
        under_test.cluster.patch_node_metadata("gpu-1", annotations={"count": 3})  # type: ignore[dict-item]


def test_bind_sets_node_name_and_refuses_a_second_bind(under_test: ClusterUnderTest) -> None:
    uid = under_test.state.add_pod(pod("team-a", "p1"))["metadata"]["uid"]

    under_test.cluster.bind_pod("team-a", "p1", uid, "gpu-1")

    bound = under_test.cluster.get_pod("team-a", "p1")
    assert bound["spec"]["nodeName"] == "gpu-1"
    scheduled = [c for c in bound["status"]["conditions"] if c["type"] == "PodScheduled"]
    assert scheduled and scheduled[0]["status"] == "True"
    with pytest.raises(Conflict, match='already assigned to node "gpu-1"'):
        under_test.cluster.bind_pod("team-a", "p1", uid, "gpu-2")
    assert under_test.cluster.get_pod("team-a", "p1")["spec"]["nodeName"] == "gpu-1"


def test_bind_with_a_stale_uid_is_a_conflict(under_test: ClusterUnderTest) -> None:
    under_test.state.add_pod(pod("team-a", "p1"))

    with pytest.raises(Conflict, match="UID in precondition"):
        under_test.cluster.bind_pod("team-a", "p1", "uid-of-an-older-pod", "gpu-1")
    assert "nodeName" not in under_test.cluster.get_pod("team-a", "p1")["spec"]


def test_bind_without_uid(under_test: ClusterUnderTest) -> None:
    under_test.state.add_pod(pod("team-a", "p1"))

    under_test.cluster.bind_pod("team-a", "p1", None, "gpu-1")

    assert names(under_test.cluster.list_pods(node_name="gpu-1")) == ["p1"]


def test_watch_sees_add_modify_delete_in_order(under_test: ClusterUnderTest) -> None:
    state = under_test.state
    start = state.add_node(node("other"))["metadata"]["resourceVersion"]
    state.add_pod(pod("team-a", "p1"))
    under_test.cluster.patch_pod_metadata("team-a", "p1", annotations={"a": "1"})
    state.add_node(node("not-a-pod"))
    state.delete_pod("team-a", "p1")

    events = take(under_test.cluster.watch_pods(resource_version=start, timeout=5), 3)

    assert [(e.type, e.object["metadata"]["name"]) for e in events] == [
        ("ADDED", "p1"),
        ("MODIFIED", "p1"),
        ("DELETED", "p1"),
    ]
    assert events[1].object["metadata"]["annotations"] == {"a": "1"}
    versions = [int(e.object["metadata"]["resourceVersion"]) for e in events]
    assert versions == sorted(versions) and versions[0] > int(start)


def test_watch_without_version_starts_with_the_full_list(under_test: ClusterUnderTest) -> None:
    under_test.state.add_node(node("gpu-1"))
    under_test.state.add_node(node("gpu-2"))
    stream = under_test.cluster.watch_nodes(timeout=5)

    first = next(stream)
    under_test.state.add_node(node("gpu-3"))
    rest = take(stream, 1)

    assert first.type == "RESYNC"
    assert names(first.object["items"]) == ["gpu-1", "gpu-2"]
    assert [(e.type, e.object["metadata"]["name"]) for e in rest] == [("ADDED", "gpu-3")]


def test_watch_sees_changes_made_while_it_waits(under_test: ClusterUnderTest) -> None:
    start = under_test.state.resource_version
    stream = under_test.cluster.watch_nodes(resource_version=start, timeout=5)
    timer = threading.Timer(0.1, under_test.state.add_node, args=(node("late"),))
    timer.start()

    events = take(stream, 1)
    timer.join()

    assert [(e.type, e.object["metadata"]["name"]) for e in events] == [("ADDED", "late")]


def test_watch_from_an_expired_version_relists(under_test: ClusterUnderTest) -> None:
    old = under_test.state.add_node(node("gpu-1"))["metadata"]["resourceVersion"]
    under_test.state.add_node(node("gpu-2"))
    under_test.state.delete_node("gpu-1")
    under_test.state.compact()

    events = take(under_test.cluster.watch_nodes(resource_version=old, timeout=5), 1)

    assert [e.type for e in events] == ["RESYNC"]
    assert names(events[0].object["items"]) == ["gpu-2"]


def test_watch_stops_from_another_thread(under_test: ClusterUnderTest) -> None:
    stream = under_test.cluster.watch_nodes(resource_version=under_test.state.resource_version)
    threading.Timer(0.2, stream.stop).start()

    received = list(stream)

    assert received == []
    assert stream.stopped


def test_watch_ends_at_its_timeout(under_test: ClusterUnderTest) -> None:
    stream = under_test.cluster.watch_pods(
        resource_version=under_test.state.resource_version, timeout=0.3
    )

    assert [e for e in stream if e.type != "BOOKMARK"] == []


def lease(
    name: str, holder: str, rv: str | None = None, renewed: str = "2026-01-01T00:00:00.000000Z"
) -> dict[str, object]:
    meta: dict[str, object] = {"name": name, "namespace": "kube-system"}
    if rv is not None:
        meta["resourceVersion"] = rv
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": meta,
        "spec": {
            "holderIdentity": holder,
            "leaseDurationSeconds": 15,
            "renewTime": renewed,
        },
    }


def test_lease_create_get_replace(under_test: ClusterUnderTest) -> None:
    cluster = under_test.cluster

    created = cluster.create_lease("kube-system", lease("hami-scheduler", "a"))
    got = cluster.get_lease("kube-system", "hami-scheduler")
    later = "2026-01-01T00:00:10.000000Z"
    renewed = cluster.replace_lease(
        "kube-system", lease("hami-scheduler", "a", got["metadata"]["resourceVersion"], later)
    )

    assert created == got
    assert got["spec"] == lease("x", "a")["spec"]
    assert renewed["spec"]["renewTime"] == later
    assert int(renewed["metadata"]["resourceVersion"]) > int(got["metadata"]["resourceVersion"])
    assert renewed["metadata"]["uid"] == created["metadata"]["uid"]


def test_lease_create_twice_is_already_exists(under_test: ClusterUnderTest) -> None:
    under_test.cluster.create_lease("kube-system", lease("hami-scheduler", "a"))

    with pytest.raises(AlreadyExists, match='leases "hami-scheduler" already exists'):
        under_test.cluster.create_lease("kube-system", lease("hami-scheduler", "b"))


def test_lease_replace_with_a_stale_version_is_a_conflict(under_test: ClusterUnderTest) -> None:
    cluster = under_test.cluster
    created = cluster.create_lease("kube-system", lease("hami-scheduler", "a"))
    stale = created["metadata"]["resourceVersion"]
    cluster.replace_lease(
        "kube-system", lease("hami-scheduler", "a", stale, "2026-01-01T00:00:10.000000Z")
    )

    with pytest.raises(Conflict):
        cluster.replace_lease("kube-system", lease("hami-scheduler", "b", stale))
    assert cluster.get_lease("kube-system", "hami-scheduler")["spec"]["holderIdentity"] == "a"


def test_lease_replace_of_a_missing_lease_is_not_found(under_test: ClusterUnderTest) -> None:
    with pytest.raises(NotFound):
        under_test.cluster.replace_lease("kube-system", lease("absent", "a", "1"))


def test_events_are_recorded(under_test: ClusterUnderTest) -> None:
    event = {
        "involvedObject": {"kind": "Pod", "namespace": "team-a", "name": "p1"},
        "reason": "FilteringFailed",
        "message": "no node fits",
        "type": "Warning",
    }

    under_test.cluster.create_event("team-a", event)
    under_test.cluster.create_event("team-a", event)

    recorded = under_test.state.recorded_events("team-a")
    assert [e["reason"] for e in recorded] == ["FilteringFailed", "FilteringFailed"]
    assert all(e["metadata"]["name"].startswith("p1.") for e in recorded)


def test_event_failures_are_never_raised(under_test: ClusterUnderTest) -> None:
    named = {"metadata": {"name": "same"}, "reason": "R", "involvedObject": {"name": "p"}}
    under_test.cluster.create_event("team-a", named)

    under_test.cluster.create_event("team-a", named)  # AlreadyExists: logged only
    under_test.cluster.create_event("team-a", "not an event")  # type: ignore[arg-type]

    assert len(under_test.state.recorded_events("team-a")) == 1
