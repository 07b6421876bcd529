"""`/bind` over HTTP against the fake apiserver: the node lock, contention, apiserver failures
mid-bind (everything written is rolled back), and the checks before anything is written."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from extender_kit import (
    CARD,
    GPU,
    GPUMEM,
    TGPU,
    KubeScheduler,
    annotations_of,
    card_id,
    eventually,
    fast_settings,
    gpu_node,
    running_scheduler,
    user_pod,
)

from hami_core.deviceplugin.allocate import Allocator
from hami_core.plugins import VendorRegistry
from hami_core.protocol import DeviceInfo, encode_node_devices, parse_node_lock
from hami_core.protocol.keys import BIND_PHASE, BIND_TIME, NODE_LOCK
from hami_core.scheduler import SchedulerService
from hami_core.testing import FakeApiServer

Obj = dict[str, Any]


@pytest.fixture
def extender(
    api: FakeApiServer, registry: VendorRegistry
) -> Iterator[tuple[SchedulerService, KubeScheduler]]:
    api.state.add_node(gpu_node("node-a"))
    cluster = api.kube_cluster(request_timeout=5.0, watch_timeout_seconds=30)
    with running_scheduler(cluster, registry) as (service, url), httpx.Client(base_url=url) as http:
        yield service, KubeScheduler(http)
    cluster.close()


def filtered(api: FakeApiServer, scheduler: KubeScheduler, name: str) -> Obj:
    """Create a one-card pod and filter it onto node-a; the pod as stored afterwards."""
    api.state.add_pod(user_pod(name, {GPU: "1", GPUMEM: "1000"}))
    pod = api.state.get_pod("default", name)
    assert scheduler.filter(pod, ["node-a"])["NodeNames"] == ["node-a"]
    return api.state.get_pod("default", name)


def bound_on_card(name: str, card: str) -> Obj:
    """A pod another replica placed on `card` of node-a (16000 MiB) and bound there."""
    pod = user_pod(
        name,
        {GPU: "1", GPUMEM: "16000"},
        annotations={
            "hami.io/vgpu-node": "node-a",
            "hami.io/tgpu-devices-allocated": f"{card},TGPU,16000,0:;",
        },
    )
    pod["spec"]["nodeName"] = "node-a"
    return pod


def assert_untouched(api: FakeApiServer, name: str) -> None:
    """No bind-phase, no bind-time, not bound, and the pod holds no lock on node-a."""
    pod = api.state.get_pod("default", name)
    assert BIND_PHASE not in annotations_of(pod)
    assert BIND_TIME not in annotations_of(pod)
    assert not pod["spec"].get("nodeName")
    value = annotations_of(api.state.get_node("node-a")).get(NODE_LOCK)
    assert value is None or parse_node_lock(value).name != name


def test_lock_contention_refuses_the_second_pod_until_the_first_is_allocated(
    api: FakeApiServer, registry: VendorRegistry, extender: tuple[SchedulerService, KubeScheduler]
) -> None:
    service, scheduler = extender
    first = filtered(api, scheduler, "first")
    second = filtered(api, scheduler, "second")
    assert scheduler.bind(first, "node-a") == {"Error": ""}

    answer = scheduler.bind(second, "node-a")
    assert "node lock contention" in answer["Error"]
    assert "default/first" in answer["Error"]
    assert_untouched(api, "second")
    lock = parse_node_lock(annotations_of(api.state.get_node("node-a"))[NODE_LOCK])
    assert lock.name == "first"

    # the device plugin allocates the first pod and releases the lock; the retry binds
    uuid = annotations_of(first)["hami.io/tgpu-devices-allocated"].split(",")[0]
    Allocator(api.state, registry, "node-a").allocate(TGPU, [[f"{uuid}-0"]])
    assert NODE_LOCK not in annotations_of(api.state.get_node("node-a"))
    assert scheduler.bind(second, "node-a") == {"Error": ""}
    assert api.state.get_pod("default", "second")["spec"]["nodeName"] == "node-a"
    text = service.metrics.render()[0].decode()
    assert 'hami_scheduler_failures_total{reason="lock_contention",verb="bind"} 1.0' in text


def test_a_lost_lock_race_409_is_retried(
    api: FakeApiServer, extender: tuple[SchedulerService, KubeScheduler]
) -> None:
    _, scheduler = extender
    pod = filtered(api, scheduler, "racer")
    api.faults.fail_next("PATCH", r"/api/v1/nodes/node-a$", status=409)
    assert scheduler.bind(pod, "node-a") == {"Error": ""}
    assert parse_node_lock(annotations_of(api.state.get_node("node-a"))[NODE_LOCK]).name == "racer"


@pytest.mark.parametrize(
    ("method", "path", "step"),
    [
        ("POST", r"/pods/victim/binding$", "binding"),
        ("PATCH", r"/namespaces/default/pods/victim$", "bind-phase"),
    ],
)
def test_apiserver_5xx_mid_bind_leaves_nothing_behind(
    api: FakeApiServer,
    extender: tuple[SchedulerService, KubeScheduler],
    method: str,
    path: str,
    step: str,
) -> None:
    _, scheduler = extender
    pod = filtered(api, scheduler, "victim")
    api.faults.fail_next(method, path, status=503)
    answer = scheduler.bind(pod, "node-a")
    assert answer["Error"], step
    assert (
        "503" in answer["Error"]
        or "Unavailable" in answer["Error"]
        or "unavailable" in answer["Error"]
    )
    assert_untouched(api, "victim")
    # kube-scheduler retries later and it goes through
    assert scheduler.bind(pod, "node-a") == {"Error": ""}
    assert api.state.get_pod("default", "victim")["spec"]["nodeName"] == "node-a"


def test_rollback_retries_when_the_apiserver_keeps_failing(
    api: FakeApiServer, extender: tuple[SchedulerService, KubeScheduler]
) -> None:
    _, scheduler = extender
    pod = filtered(api, scheduler, "victim")
    before = len(api.requests_matching("PATCH", r"/pods/victim$"))
    # setting bind-phase fails, and so does the first attempt to remove it again
    api.faults.fail_next("PATCH", r"/namespaces/default/pods/victim$", status=500, count=2)
    assert scheduler.bind(pod, "node-a")["Error"]
    assert_untouched(api, "victim")
    patches = api.requests_matching("PATCH", r"/pods/victim$")[before:]
    assert [p.body["metadata"]["annotations"][BIND_PHASE] for p in patches] == [
        "allocating",
        None,
        None,
    ]
    assert NODE_LOCK not in annotations_of(api.state.get_node("node-a"))


def test_bind_checks_before_writing(
    api: FakeApiServer, extender: tuple[SchedulerService, KubeScheduler]
) -> None:
    _, scheduler = extender
    api.state.add_node(gpu_node("node-b"))
    pod = filtered(api, scheduler, "decided")
    # the decision is for node-a: binding elsewhere would hand the pod cards it does not own
    answer = scheduler.bind(pod, "node-b")
    assert "device decision is for node node-a, not node-b" in answer["Error"]
    assert_untouched(api, "decided")
    # a stale uid (the pod was re-created) is refused
    stale = {**pod, "metadata": {**pod["metadata"], "uid": "0000-stale"}}
    assert "was replaced" in scheduler.bind(stale, "node-a")["Error"]
    # an unknown pod, or missing fields
    ghost = {"metadata": {"name": "ghost", "namespace": "default", "uid": ""}}
    assert scheduler.bind(ghost, "node-a") == {"Error": "pod default/ghost not found"}
    assert scheduler.post("bind", {"PodName": "decided"}) == {"Error": "bind args missing Node"}
    assert_untouched(api, "decided")


def test_a_repeated_bind_is_a_success_and_a_bound_pod_stays_put(
    api: FakeApiServer, extender: tuple[SchedulerService, KubeScheduler]
) -> None:
    _, scheduler = extender
    pod = filtered(api, scheduler, "twice")
    assert scheduler.bind(pod, "node-a") == {"Error": ""}
    assert scheduler.bind(pod, "node-a") == {"Error": ""}
    answer = scheduler.bind(pod, "node-b")
    assert answer == {"Error": "pod default/twice is already bound to node node-a"}


def test_pods_without_device_requests_and_lockless_vendors_bind_without_a_lock(
    api: FakeApiServer, extender: tuple[SchedulerService, KubeScheduler]
) -> None:
    _, scheduler = extender
    api.state.add_pod(user_pod("plain", {"cpu": "1"}))
    plain = api.state.get_pod("default", "plain")
    assert scheduler.bind(plain, "node-a") == {"Error": ""}
    assert BIND_PHASE not in annotations_of(api.state.get_pod("default", "plain"))

    cards = [
        DeviceInfo(
            id=card_id("node-l", 0), count=1, devmem=8000, devcore=100, type="L", health=True
        )
    ]
    api.state.add_node(
        {
            "metadata": {
                "name": "node-l",
                "annotations": {"hami.io/node-lockless-register": encode_node_devices(cards)},
            }
        }
    )
    api.state.add_pod(user_pod("whole", {CARD: "1"}))
    whole = api.state.get_pod("default", "whole")

    eventually(
        lambda: scheduler.filter(whole, ["node-l"])["NodeNames"] == ["node-l"],
        what="node-l in the cache",
    )
    whole = api.state.get_pod("default", "whole")
    assert scheduler.bind(whole, "node-l") == {"Error": ""}
    assert annotations_of(api.state.get_pod("default", "whole"))[BIND_PHASE] == "allocating"
    assert NODE_LOCK not in annotations_of(api.state.get_node("node-l"))


def test_a_decision_made_on_a_stale_view_is_refused_at_bind(
    api: FakeApiServer, extender: tuple[SchedulerService, KubeScheduler]
) -> None:
    _, scheduler = extender
    pod = filtered(api, scheduler, "late")
    card = annotations_of(pod)["hami.io/tgpu-devices-allocated"].split(",")[0]
    # after this filter, another replica placed a pod on the same card and bound it
    api.state.add_pod(bound_on_card("early", card))
    answer = scheduler.bind(pod, "node-a")
    assert answer["Error"] == (
        f"pod default/late: tgpu card {card} on node node-a has 384 MiB free of 16384, the pod "
        "takes 1000; the decision was made on a stale view, filter it again"
    )
    assert_untouched(api, "late")


def test_a_binding_whose_reply_is_lost_is_not_undone(
    api: FakeApiServer, registry: VendorRegistry
) -> None:
    api.state.add_node(gpu_node("node-a"))
    cluster = api.kube_cluster(request_timeout=0.5, watch_timeout_seconds=30)
    with (
        running_scheduler(cluster, registry) as (_service, url),
        httpx.Client(base_url=url) as http,
    ):
        scheduler = KubeScheduler(http)
        pod = filtered(api, scheduler, "slow")
        api.faults.delay(r"/pods/slow/binding$", 1.0, method="POST")
        answer = scheduler.bind(pod, "node-a")
        assert "may still land" in answer["Error"]
        api.faults.clear()
        eventually(
            lambda: api.state.get_pod("default", "slow")["spec"].get("nodeName"),
            what="the late Binding",
        )
        # the pod is bound: its lock and bind-phase are there for the device plugin
        assert annotations_of(api.state.get_pod("default", "slow"))[BIND_PHASE] == "allocating"
        lock = annotations_of(api.state.get_node("node-a"))[NODE_LOCK]
        assert parse_node_lock(lock).name == "slow"
        assert scheduler.bind(pod, "node-a") == {"Error": ""}
    cluster.close()


def capacity_checks(service: SchedulerService) -> dict[str, float]:
    """`hami_scheduler_bind_capacity_checks_total` by source."""
    counter = service.metrics.capacity_checks
    return {
        sample.labels["source"]: sample.value
        for metric in counter.collect()
        for sample in metric.samples
        if sample.name.endswith("_total")
    }


def node_pod_lists(api: FakeApiServer) -> int:
    """Pod LISTs filtered by node the apiserver answered (watches not counted)."""
    return sum(
        1
        for r in api.requests_matching("GET", r"^/api/v1/pods$")
        if "spec.nodeName" in r.query.get("fieldSelector", "") and "watch" not in r.query
    )


def test_capacity_is_checked_from_the_watch_cache_once_it_shows_the_bind(
    api: FakeApiServer, extender: tuple[SchedulerService, KubeScheduler]
) -> None:
    service, scheduler = extender
    pod = filtered(api, scheduler, "quick")
    api.clear_requests()
    assert scheduler.bind(pod, "node-a") == {"Error": ""}
    assert node_pod_lists(api) == 0
    assert capacity_checks(service) == {"cache": 1.0}


def test_a_bind_the_pod_watch_lags_behind_lists_the_nodes_pods(
    api: FakeApiServer, registry: VendorRegistry
) -> None:
    api.state.add_node(gpu_node("node-a"))
    cluster = api.kube_cluster(request_timeout=5.0, watch_timeout_seconds=30)
    settings = fast_settings(bind_cache_wait=0.2)
    with running_scheduler(cluster, registry, settings) as (service, url):
        scheduler = KubeScheduler(httpx.Client(base_url=url))
        pod = filtered(api, scheduler, "late")
        card = annotations_of(pod)["hami.io/tgpu-devices-allocated"].split(",")[0]
        # the pod watch breaks and takes a second to come back: the bind's own write is not
        # shown within bind_cache_wait, and neither is a pod bound meanwhile on the same card
        api.faults.delay(r"^/api/v1/pods$", 1.0, method="GET")
        assert api.faults.drop_watches() >= 1
        api.state.add_pod(bound_on_card("early", card))
        api.clear_requests()
        answer = scheduler.bind(pod, "node-a")
        api.faults.clear()
        assert "has 384 MiB free of 16384, the pod takes 1000" in answer["Error"]
        assert node_pod_lists(api) == 1
        assert capacity_checks(service) == {"list": 1.0}
        assert_untouched(api, "late")
    cluster.close()
