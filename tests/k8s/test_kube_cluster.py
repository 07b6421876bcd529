"""`KubeCluster` specifics, over real HTTP to `FakeApiServer`: error mapping, wire format,
watch recovery, rate limiting, and configuration loading."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hami_core.k8s import ClusterError, Conflict, NotFound, TokenBucket, Unavailable, WatchEvent
from hami_core.k8s.kube import KubeCluster
from hami_core.testing import FakeApiServer


def add_pod(server: FakeApiServer, name: str, namespace: str = "team-a") -> dict[str, object]:
    return server.state.add_pod({"metadata": {"name": name, "namespace": namespace}, "spec": {}})


def summary(events: list[WatchEvent]) -> list[tuple[str, str]]:
    out = []
    for e in events:
        if e.type == "RESYNC":
            out.append(("RESYNC", ",".join(i["metadata"]["name"] for i in e.object["items"])))
        else:
            out.append((e.type, e.object["metadata"].get("name", "")))
    return out


@pytest.mark.parametrize("status", [500, 503, 504, 429])
def test_server_errors_become_unavailable_with_the_status_message(
    server: FakeApiServer, kube: KubeCluster, status: int
) -> None:
    server.state.add_node({"metadata": {"name": "gpu-1"}})
    server.faults.fail_next("GET", r"^/api/v1/nodes/gpu-1$", status=status, message="etcd is down")

    with pytest.raises(Unavailable, match="etcd is down") as caught:
        kube.get_node("gpu-1")

    assert caught.value.status == status
    assert kube.get_node("gpu-1")["metadata"]["name"] == "gpu-1"  # the fault was one-shot


def test_unreachable_apiserver_is_unavailable() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    cluster = KubeCluster.for_host(f"http://127.0.0.1:{port}", request_timeout=2.0)

    with pytest.raises(Unavailable):
        cluster.list_nodes()
    cluster.close()


def test_a_slow_apiserver_is_unavailable_after_the_request_timeout(server: FakeApiServer) -> None:
    server.state.add_node({"metadata": {"name": "gpu-1"}})
    server.faults.delay(r"^/api/v1/nodes/gpu-1$", 5.0)
    cluster = server.kube_cluster(request_timeout=0.2)

    with pytest.raises(Unavailable):
        cluster.get_node("gpu-1")
    cluster.close()


def test_other_client_errors_keep_their_status(server: FakeApiServer) -> None:
    server.faults.fail_next("GET", "/api/v1/nodes", status=403, message="nodes is forbidden")
    cluster = server.kube_cluster()

    with pytest.raises(ClusterError, match="nodes is forbidden") as caught:
        cluster.list_nodes()

    assert caught.value.status == 403
    assert not isinstance(caught.value, Unavailable | NotFound | Conflict)
    cluster.close()


def test_metadata_patches_are_merge_patches_carrying_the_precondition(
    server: FakeApiServer, kube: KubeCluster
) -> None:
    rv = server.state.add_node({"metadata": {"name": "gpu-1"}})["metadata"]["resourceVersion"]

    kube.patch_node_metadata("gpu-1", annotations={"hami.io/mutex.lock": "t"}, resource_version=rv)

    (patch,) = server.requests_matching("PATCH", "/api/v1/nodes/gpu-1")
    assert patch.content_type == "application/merge-patch+json"
    assert patch.body == {
        "metadata": {"annotations": {"hami.io/mutex.lock": "t"}, "resourceVersion": rv}
    }


def test_bind_posts_a_binding_and_reads_the_status_reply(
    server: FakeApiServer, kube: KubeCluster
) -> None:
    uid = add_pod(server, "p1")["metadata"]["uid"]  # type: ignore[index]

    kube.bind_pod("team-a", "p1", uid, "gpu-1")

    (post,) = server.requests_matching("POST", "binding")
    assert post.path == "/api/v1/namespaces/team-a/pods/p1/binding"
    assert post.body["kind"] == "Binding"
    assert post.body["metadata"] == {"name": "p1", "namespace": "team-a", "uid": uid}
    assert post.body["target"] == {"apiVersion": "v1", "kind": "Node", "name": "gpu-1"}


def test_watch_reconnects_after_a_dropped_connection(
    server: FakeApiServer, kube: KubeCluster
) -> None:
    start = server.state.resource_version
    stream = kube.watch_pods(resource_version=start, timeout=10)
    add_pod(server, "p1")
    first = next(stream)

    assert server.faults.drop_watches() == 1
    add_pod(server, "p2")
    second = next(stream)
    stream.stop()

    assert summary([first, second]) == [("ADDED", "p1"), ("ADDED", "p2")]
    watches = server.requests_matching("GET", "^/api/v1/pods$")
    assert [w.query["resourceVersion"] for w in watches] == [
        start,
        first.object["metadata"]["resourceVersion"],
    ]


def test_watch_relists_when_its_version_expired_on_reconnect(
    server: FakeApiServer, kube: KubeCluster
) -> None:
    stream = kube.watch_pods(resource_version=server.state.resource_version, timeout=10)
    add_pod(server, "p1")
    first = next(stream)

    server.faults.drop_watches()
    add_pod(server, "p2")  # while disconnected...
    server.state.compact()  # ...and then forgotten: p1's version is now too old
    resync = next(stream)
    add_pod(server, "p3")
    after = next(stream)
    stream.stop()

    assert summary([first, resync, after]) == [
        ("ADDED", "p1"),
        ("RESYNC", "p1,p2"),
        ("ADDED", "p3"),
    ]
    assert resync.object["items"][0]["kind"] == "Pod"


def test_watch_relists_on_an_http_410(server: FakeApiServer, kube: KubeCluster) -> None:
    add_pod(server, "p1")
    server.faults.fail_next("GET", "^/api/v1/pods$", status=410, message="too old")

    events = []
    with kube.watch_pods(resource_version="1", timeout=10) as stream:
        events.append(next(stream))

    assert summary(events) == [("RESYNC", "p1")]


def test_watch_retries_after_server_errors(server: FakeApiServer, kube: KubeCluster) -> None:
    start = server.state.resource_version
    server.faults.fail_next("GET", "^/api/v1/pods$", status=503, count=2)
    add_pod(server, "p1")

    with kube.watch_pods(resource_version=start, timeout=10) as stream:
        event = next(stream)

    assert summary([event]) == [("ADDED", "p1")]
    assert len(server.requests_matching("GET", "^/api/v1/pods$")) == 3


def test_watch_resumes_from_the_bookmark_when_the_server_ends_the_stream(
    server: FakeApiServer,
) -> None:
    cluster = server.kube_cluster(watch_timeout_seconds=1)
    server.state.add_node({"metadata": {"name": "unrelated"}})  # moves the version on

    with cluster.watch_pods(resource_version="0", timeout=10) as stream:
        bookmark = next(stream)
        add_pod(server, "p1")
        added = next(stream)

    assert bookmark.type == "BOOKMARK"
    assert bookmark.object["metadata"]["resourceVersion"] == "1"
    assert summary([added]) == [("ADDED", "p1")]
    watches = server.requests_matching("GET", "^/api/v1/pods$")
    assert [w.query["resourceVersion"] for w in watches[:2]] == ["0", "1"]
    cluster.close()


class FakeClock:
    """A clock that only moves when the limiter sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_requests_are_rate_limited_client_side(server: FakeApiServer) -> None:
    server.state.add_node({"metadata": {"name": "gpu-1"}})
    clock = FakeClock()
    limiter = TokenBucket(qps=10, burst=3, clock=clock.time, sleep=clock.sleep)
    cluster = server.kube_cluster(limiter=limiter)

    for _ in range(6):
        cluster.get_node("gpu-1")

    assert clock.sleeps == pytest.approx([0.1, 0.1, 0.1])  # burst of 3, then 10 per second
    assert len(server.requests_matching("GET", "gpu-1")) == 6
    cluster.close()


def test_default_rate_limits_are_well_above_client_go(server: FakeApiServer) -> None:
    cluster = server.kube_cluster()

    assert (cluster.limiter.qps, cluster.limiter.burst) == (100.0, 200)
    cluster.close()


def write_kubeconfig(path: Path, server_url: str, token: str) -> Path:
    path.write_text(
        f"""
apiVersion: v1
kind: Config
current-context: elsewhere
clusters:
- name: fake
  cluster: {{server: "{server_url}"}}
- name: unreachable
  cluster: {{server: "http://127.0.0.1:9"}}
users:
- name: robot
  user: {{token: "{token}"}}
contexts:
- name: fake
  context: {{cluster: fake, user: robot}}
- name: elsewhere
  context: {{cluster: unreachable, user: robot}}
"""
    )
    return path


def test_from_environment_reads_kubeconfig_context_and_token(tmp_path: Path) -> None:
    with FakeApiServer(token="s3cret") as server:
        server.state.add_node({"metadata": {"name": "gpu-1"}})
        config = write_kubeconfig(tmp_path / "config", server.url, "s3cret")

        cluster = KubeCluster.from_environment(str(config), context="fake", qps=5, burst=10)
        nodes = cluster.list_nodes()

        assert [n["metadata"]["name"] for n in nodes] == ["gpu-1"]
        assert server.requests[-1].headers["authorization"] == "Bearer s3cret"
        assert (cluster.limiter.qps, cluster.limiter.burst) == (5.0, 10)
        cluster.close()


def test_a_rejected_token_is_an_error_with_status_401(tmp_path: Path) -> None:
    with FakeApiServer(token="s3cret") as server:
        config = write_kubeconfig(tmp_path / "config", server.url, "wrong")
        cluster = KubeCluster.from_environment(str(config), context="fake")

        with pytest.raises(ClusterError) as caught:
            cluster.list_nodes()

        assert caught.value.status == 401
        cluster.close()


def test_from_environment_names_a_missing_kubeconfig(tmp_path: Path) -> None:
    missing = tmp_path / "nope"

    with pytest.raises(ClusterError, match=str(missing)):
        KubeCluster.from_environment(str(missing))


def test_from_environment_refuses_an_unknown_context(tmp_path: Path) -> None:
    config = write_kubeconfig(tmp_path / "config", "http://127.0.0.1:9", "t")

    with pytest.raises(ClusterError, match="no-such-context"):
        KubeCluster.from_environment(str(config), context="no-such-context")


def test_a_stopped_watch_releases_its_server_side_stream(
    server: FakeApiServer, kube: KubeCluster
) -> None:
    stream = kube.watch_nodes(resource_version=server.state.resource_version)
    server.state.add_node({"metadata": {"name": "gpu-1"}})
    next(stream)
    assert server.open_watches == 1

    stream.stop()

    deadline = time.monotonic() + 3
    while server.open_watches and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.open_watches == 0


def test_version_reaches_the_apiserver(kube: KubeCluster) -> None:
    assert kube.version()["gitVersion"].startswith("v1.")


def test_only_kube_cluster_loads_the_kubernetes_client() -> None:
    probe = (
        "import sys, hami_core.k8s, hami_core.testing;"
        "print('kubernetes' in sys.modules);"
        "hami_core.k8s.KubeCluster;"
        "print('kubernetes' in sys.modules)"
    )

    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)

    assert out.stdout.split() == ["False", "True"]
