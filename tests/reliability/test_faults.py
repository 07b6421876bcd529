"""Faults: the system converges, and nothing is left half-written.

Everything talks real HTTP to the fake apiserver (the `kubernetes` client, 1 s request timeout)
and real gRPC between the fake kubelet and the device plugin. Faults are injected with
`FakeApiServer.faults` (5xx, 409, slow answers whose writes still land, dropped watches) during
filter, bind, the register loop and `Allocate`; the kubelet and the device plugin restart; the
node-lock holder is deleted; a node's handshake times out. Each test measures how long the
system takes to converge (kube-scheduler and the kubelet retrying as they do) and checks the
state left in the apiserver with `half_written`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path

import grpc
import pytest
from plant import NODE, Plant, Served, expected, plant, wait_seen, write_cards
from rel_kit import (
    ALLOCATED,
    ASSIGNED_NODE,
    BIND_PHASE,
    HANDSHAKE,
    NODE_LOCK,
    NS,
    TO_ALLOCATE,
    XPU,
    Ask,
    eventually,
    inconsistent,
    notes_of,
    xpu_pod,
)

from hami_core.deviceplugin.node import DevicePluginNode
from hami_core.k8s.cluster import NotFound
from hami_core.k8s.kube import KubeCluster
from hami_core.k8s.memory import MemoryCluster
from hami_core.protocol import format_requesting
from hami_core.testing import FakeApiServer

TIMEOUT = 1.0
"""The clients' request timeout (s); a slow answer takes longer."""
SLOW = 1.5


# ---------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def api() -> Iterator[FakeApiServer]:
    """The fake apiserver, holding the bare node."""
    with FakeApiServer() as server:
        server.state.add_node(
            {"metadata": {"name": NODE, "labels": {"kubernetes.io/hostname": NODE}}}
        )
        yield server


@pytest.fixture(scope="module")
def clients(api: FakeApiServer) -> Iterator[tuple[KubeCluster, KubeCluster]]:
    """The scheduler's and the device plugin's `kubernetes` clients."""
    sched = api.kube_cluster(request_timeout=TIMEOUT, watch_timeout_seconds=30)
    plugin = api.kube_cluster(request_timeout=TIMEOUT)
    yield sched, plugin
    sched.close()
    plugin.close()


@pytest.fixture(scope="module")
def devices(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two 16 GB example cards."""
    return write_cards(tmp_path_factory.mktemp("cards") / "cards.json", 2, memory=16000)


@pytest.fixture(scope="module")
def stack(
    api: FakeApiServer, clients: tuple[KubeCluster, KubeCluster], devices: Path
) -> Iterator[Plant]:
    """The scheduler replica and the node, shared by the tests of this module."""
    with plant(clients[0], clients[1], devices) as p:
        yield p


@pytest.fixture
def node(stack: Plant, api: FakeApiServer) -> Iterator[Plant]:
    """The stack, with no pod, fault or lock left from an earlier test."""
    yield stack
    api.faults.clear()
    time.sleep(0.05)
    for pod in api.state.list_pods():
        api.state.delete_pod(NS, pod["metadata"]["name"])
    api.state.patch_node_metadata(NODE, annotations={NODE_LOCK: None})
    wait_seen(stack.service, api.state)


# ---------------------------------------------------------------------- steps and checks


def half_written(store: MemoryCluster) -> list[str]:
    """What a crashed or failed step may have left behind, read from the store:
    - a bound pod whose annotations disagree with its spec or each other (`inconsistent`);
    - an unbound pod carrying `bind-phase` (a bind that failed must take it back);
    - a node lock held by anything but a bound, pending pod still being allocated;
    - a pod marked `success` with devices left to allocate, or `failed` still holding the lock.
    """
    problems = inconsistent(store)
    for pod in store.list_pods():
        name = pod["metadata"]["name"]
        notes = notes_of(pod)
        if not pod["spec"].get("nodeName") and BIND_PHASE in notes:
            problems.append(f"{name}: not bound but bind-phase {notes[BIND_PHASE]}")
    lock = notes_of(store.get_node(NODE)).get(NODE_LOCK)
    if lock is not None:
        holder = lock.rsplit(",", 1)[-1]
        try:
            pod = store.get_pod(NS, holder)
        except NotFound:
            problems.append(f"lock held by deleted pod {holder}")
        else:
            ok = (
                pod["spec"].get("nodeName") == NODE
                and pod["status"].get("phase") == "Pending"
                and notes_of(pod).get(BIND_PHASE) == "allocating"
            )
            if not ok:
                problems.append(f"lock held by {holder}, which is not being allocated")
    return problems


def schedule(node: Plant, store: MemoryCluster, name: str, *, deadline: float = 10.0) -> int:
    """kube-scheduler's loop for one pod: filter and bind until bound (a short backoff between
    attempts); returns how many attempts failed."""
    failures = 0
    stop = time.monotonic() + deadline
    while node.schedule(store, name) != "":
        failures += 1
        assert time.monotonic() < stop, f"{name} was not bound within {deadline} s"
        time.sleep(0.05)
    return failures


def start(node: Plant, store: MemoryCluster, name: str) -> list[Served]:
    """The kubelet admits a bound pod: one `Allocate` per container, in order."""
    pod = store.get_pod(NS, name)
    served = []
    for i, c in enumerate(pod["spec"]["containers"]):
        outcome = node.allocate(int(c["resources"]["limits"][XPU]))
        assert isinstance(outcome, Served), f"{name}/c{i}: Allocate refused: {outcome}"
        assert outcome == expected(pod, i), f"{name}/c{i} got another container's devices"
        served.append(outcome)
    assert notes_of(store.get_pod(NS, name))[BIND_PHASE] == "success"
    return served


def converge(what: str, check: Callable[[], object], timeout: float = 10.0) -> float:
    """Wait until `check()` is truthy; print and return the seconds it took."""
    took = eventually(check, timeout, what)
    print(f"RELIABILITY converge[{what}]: {took:.3f}s")
    return took


def run_pod(node: Plant, store: MemoryCluster, name: str, asks: list[Ask]) -> float:
    """Create, schedule (retrying) and start a pod; the seconds it took."""
    begin = time.monotonic()
    if name not in {p["metadata"]["name"] for p in store.list_pods()}:
        store.add_pod(xpu_pod(name, asks))
    schedule(node, store, name)
    start(node, store, name)
    return time.monotonic() - begin


def report(what: str, seconds: float) -> None:
    """Print a convergence figure for docs/reliability.md."""
    print(f"RELIABILITY converge[{what}]: {seconds:.3f}s")


# ---------------------------------------------------------------------- filter


@pytest.mark.parametrize("status", [500, 503, 409])
def test_filter_patch_refused(node: Plant, api: FakeApiServer, status: int) -> None:
    store = api.state
    store.add_pod(xpu_pod("f0", [Ask(1, 4000)]))
    api.faults.fail_next("PATCH", r"/namespaces/default/pods/f0$", status)
    result = node.filter(store.get_pod(NS, "f0"))
    assert result["Error"] and result["NodeNames"] is None
    assert ASSIGNED_NODE not in notes_of(store.get_pod(NS, "f0"))
    assert node.service.cache.reservations() == {}
    report(f"filter PATCH {status}", run_pod(node, store, "f0", []))
    assert half_written(store) == []


def test_filter_patch_slow_lands_after_the_timeout(node: Plant, api: FakeApiServer) -> None:
    """The decision patch answers after the client gave up, yet it is written: the filter
    reports an error, kube-scheduler filters again, and the second decision replaces it."""
    store = api.state
    store.add_pod(xpu_pod("f1", [Ask(1, 4000)]))
    api.faults.delay(r"/namespaces/default/pods/f1$", SLOW, method="PATCH")
    begin = time.monotonic()
    result = node.filter(store.get_pod(NS, "f1"))
    assert result["Error"], result
    api.faults.clear()
    eventually(lambda: ASSIGNED_NODE in notes_of(store.get_pod(NS, "f1")), 5, "the late write")
    run_pod(node, store, "f1", [])
    report("filter PATCH slow", time.monotonic() - begin)
    assert half_written(store) == []
    wait_seen(node.service, store)


# ---------------------------------------------------------------------- bind


@pytest.mark.parametrize("status", [500, 409])
def test_binding_refused_is_rolled_back(node: Plant, api: FakeApiServer, status: int) -> None:
    store = api.state
    store.add_pod(xpu_pod("b0", [Ask(1, 4000)]))
    result = node.filter(store.get_pod(NS, "b0"))
    assert result["NodeNames"] == [NODE]
    api.faults.fail_next("POST", r"/pods/b0/binding$", status)
    assert node.bind(store.get_pod(NS, "b0")) != ""
    assert half_written(store) == []
    assert not store.get_pod(NS, "b0")["spec"].get("nodeName")
    assert NODE_LOCK not in notes_of(store.get_node(NODE))
    report(f"binding POST {status}", run_pod(node, store, "b0", []))
    assert half_written(store) == []


def test_node_lock_conflicts_are_retried(node: Plant, api: FakeApiServer) -> None:
    store = api.state
    store.add_pod(xpu_pod("b1", [Ask(1, 4000)]))
    api.faults.fail_next("PATCH", r"/api/v1/nodes/node-a$", 409, count=2)
    begin = time.monotonic()
    assert schedule(node, store, "b1") == 0, "two 409s on the lock must not fail the bind"
    start(node, store, "b1")
    report("node lock PATCH 409 x2", time.monotonic() - begin)
    assert half_written(store) == []


def test_bind_phase_patch_refused_is_rolled_back(node: Plant, api: FakeApiServer) -> None:
    store = api.state
    store.add_pod(xpu_pod("b2", [Ask(1, 4000)]))
    assert node.filter(store.get_pod(NS, "b2"))["NodeNames"] == [NODE]
    api.faults.fail_next("PATCH", r"/namespaces/default/pods/b2$", 503)
    assert node.bind(store.get_pod(NS, "b2")) != ""
    assert half_written(store) == []
    assert NODE_LOCK not in notes_of(store.get_node(NODE))
    report("bind-phase PATCH 503", run_pod(node, store, "b2", []))


def test_a_slow_binding_that_lands_is_not_half_undone(node: Plant, api: FakeApiServer) -> None:
    """The Binding is created but answers after the client timeout. The pod IS bound, so its
    bind-phase and node lock must stay (or the bind must report success); otherwise another
    pod binds under no lock and the kubelet's Allocate for this pod is served that pod's
    devices (the same defect as the oversubscription suite's lost-reply regression)."""
    store = api.state
    store.add_pod(xpu_pod("b3", [Ask(1, 4000)]))
    assert node.filter(store.get_pod(NS, "b3"))["NodeNames"] == [NODE]
    api.faults.delay(r"/pods/b3/binding$", SLOW, method="POST")
    node.bind(store.get_pod(NS, "b3"))
    api.faults.clear()
    eventually(lambda: store.get_pod(NS, "b3")["spec"].get("nodeName"), 5, "the late binding")
    assert half_written(store) == []


# ---------------------------------------------------------------------- register loop


def test_register_pass_survives_a_failed_write(node: Plant, api: FakeApiServer) -> None:
    store = api.state
    store.patch_node_metadata(NODE, annotations={HANDSHAKE: None})
    api.faults.fail_next("PATCH", r"/api/v1/nodes/node-a$", 500)
    begin = time.monotonic()
    first = node.service.register.run_once(write=True)
    assert NODE in first.failed
    assert HANDSHAKE not in notes_of(store.get_node(NODE))

    def stamped() -> bool:
        node.service.register.run_once(write=True)
        return HANDSHAKE in notes_of(store.get_node(NODE))

    eventually(stamped, 5, "a handshake stamp")
    report("register PATCH 500", time.monotonic() - begin)
    assert notes_of(store.get_node(NODE))[HANDSHAKE].startswith("Requesting_")


def test_handshake_timeout_takes_the_node_out_and_back(node: Plant, api: FakeApiServer) -> None:
    """The device plugin stops answering: allocatable drops to 0 and the last `Requesting_`
    stamp is older than the timeout, so the node's cards are no longer offered; when the
    kubelet reports them again they come back."""
    store = api.state
    old = datetime.now() - timedelta(seconds=120)
    store.update_status("nodes", NODE, {"allocatable": {XPU: "0"}, "capacity": {XPU: "0"}})
    store.patch_node_metadata(NODE, annotations={HANDSHAKE: format_requesting(old)})
    begin = time.monotonic()

    def out() -> bool:
        node.service.register.run_once(write=True)
        with node.service.cache.locked():
            state = node.service.cache.node(NODE)
            return state is not None and "example" in state.unhealthy

    eventually(out, 5, "the node's cards withdrawn")
    report("handshake timeout: cards withdrawn", time.monotonic() - begin)
    store.add_pod(xpu_pod("h0", [Ask(1, 1000)]))
    result = node.filter(store.get_pod(NS, "h0"))
    assert result["NodeNames"] is None and NODE in (result["FailedNodes"] or {}), result
    back = time.monotonic()
    store.update_status("nodes", NODE, {"allocatable": {XPU: "20"}, "capacity": {XPU: "20"}})

    def healthy() -> bool:
        node.service.register.run_once(write=True)
        with node.service.cache.locked():
            state = node.service.cache.node(NODE)
            return state is not None and not state.unhealthy

    eventually(healthy, 5, "the node's cards back")
    report("handshake recovered", time.monotonic() - back)
    run_pod(node, store, "h0", [])
    assert half_written(store) == []


# ---------------------------------------------------------------------- watches


def test_dropped_watches_while_scheduling(node: Plant, api: FakeApiServer) -> None:
    """Watches are cut again and again while pods are scheduled and started: the replica's
    cache ends equal to the store, and no card is overbooked on the way."""
    store = api.state
    stop = threading.Event()
    drops = []

    def cutter() -> None:
        while not stop.wait(0.05):
            drops.append(api.faults.drop_watches())

    thread = threading.Thread(target=cutter, daemon=True)
    thread.start()
    try:
        for i in range(6):
            run_pod(node, store, f"w{i}", [Ask(1, 2000)])
    finally:
        stop.set()
        thread.join()
    begin = time.monotonic()
    wait_seen(node.service, store)
    report("dropped watches: cache equal to the store", time.monotonic() - begin)
    assert sum(drops) > 0
    assert half_written(store) == []


# ---------------------------------------------------------------------- Allocate


@pytest.mark.parametrize("status", [500, 503])
def test_allocate_patch_refused_fails_the_pod_cleanly(
    node: Plant, api: FakeApiServer, status: int
) -> None:
    store = api.state
    store.add_pod(xpu_pod("a0", [Ask(1, 3000)]))
    schedule(node, store, "a0")
    before = notes_of(store.get_pod(NS, "a0"))[TO_ALLOCATE]
    api.faults.fail_next("PATCH", r"/namespaces/default/pods/a0$", status)
    assert node.allocate(1) == "UNAVAILABLE"
    notes = notes_of(store.get_pod(NS, "a0"))
    assert notes[BIND_PHASE] == "failed"
    assert notes[TO_ALLOCATE] == before
    assert NODE_LOCK not in notes_of(store.get_node(NODE))
    store.update_status("pods", "a0", {"phase": "Failed"}, namespace=NS)  # the kubelet's verdict
    assert half_written(store) == []
    report(f"Allocate PATCH {status}: next pod runs", run_pod(node, store, "a1", [Ask(1, 3000)]))


def test_allocate_conflict_is_retried(node: Plant, api: FakeApiServer) -> None:
    store = api.state
    store.add_pod(xpu_pod("a2", [Ask(1, 3000), Ask(1, 2000)]))
    schedule(node, store, "a2")
    api.faults.fail_next("PATCH", r"/namespaces/default/pods/a2$", 409, count=2)
    begin = time.monotonic()
    start(node, store, "a2")
    report("Allocate PATCH 409 x2", time.monotonic() - begin)
    assert half_written(store) == []


def test_allocate_answered_late_is_not_half_applied(node: Plant, api: FakeApiServer) -> None:
    """The plugin's write of the popped container answers after the client timeout (but
    lands). Whatever the kubelet is told, the pod must end consistent: served and `success`,
    or refused and `failed` with the lock released."""
    store = api.state
    store.add_pod(xpu_pod("a3", [Ask(1, 3000)]))
    schedule(node, store, "a3")
    api.faults.delay(r"/namespaces/default/pods/a3$", SLOW, method="PATCH")
    outcome = node.allocate(1)
    api.faults.clear()
    time.sleep(SLOW + 0.2)
    notes = notes_of(store.get_pod(NS, "a3"))
    if isinstance(outcome, Served):
        assert notes[BIND_PHASE] == "success"
    else:
        assert notes[BIND_PHASE] == "failed", (outcome, notes)
        store.update_status("pods", "a3", {"phase": "Failed"}, namespace=NS)
    assert half_written(store) == []


# ---------------------------------------------------------------------- restarts


def test_kubelet_restart(node: Plant, api: FakeApiServer) -> None:
    store = api.state
    before = node.kubelet.registration_count(XPU)
    begin = time.monotonic()
    node.kubelet.restart()
    node.kubelet.wait_registered(XPU, count=before + 1, timeout=10)
    node.kubelet.wait_devices(XPU)
    report("kubelet restart: plugin registered again", time.monotonic() - begin)
    run_pod(node, store, "k0", [Ask(1, 1000)])
    assert half_written(store) == []


def test_device_plugin_restart_between_two_containers(
    node: Plant, api: FakeApiServer, devices: Path, clients: tuple[KubeCluster, KubeCluster]
) -> None:
    """A pod of two containers: the first is allocated, then the device-plugin process
    restarts (a new allocator, nothing in memory); the second is still served its own
    devices, and the pod ends `success`."""
    store = api.state
    store.add_pod(xpu_pod("d0", [Ask(1, 3000), Ask(2, 1000)]))
    schedule(node, store, "d0")
    pod = store.get_pod(NS, "d0")
    first = node.allocate(1)
    assert first == expected(pod, 0)
    before = node.kubelet.registration_count(XPU)
    begin = time.monotonic()
    node.node.stop()
    fresh = DevicePluginNode(
        clients[1],
        node.service.registry,
        NODE,
        plugin_dir=node.kubelet.plugin_dir,
        interval=3600.0,
        health_interval=3600.0,
        poll=0.05,
    )
    fresh.start()
    node.node = fresh
    node.kubelet.wait_registered(XPU, count=before + 1, timeout=10)
    report("device plugin restart: registered again", time.monotonic() - begin)
    second = node.allocate(2)
    assert second == expected(pod, 1)
    assert notes_of(store.get_pod(NS, "d0"))[BIND_PHASE] == "success"
    assert half_written(store) == []


def test_plugin_restart_during_a_multi_container_allocate(
    node: Plant, api: FakeApiServer, clients: tuple[KubeCluster, KubeCluster]
) -> None:
    """One `Allocate` for both containers races a plugin restart (its old server gets a
    grace period): either both containers are served and the pod is `success`, or the call
    fails and nothing was popped; a retried call then serves both."""
    store = api.state
    store.add_pod(xpu_pod("d1", [Ask(1, 3000), Ask(1, 2000)]))
    schedule(node, store, "d1")
    pod = store.get_pod(NS, "d1")
    api.faults.delay(r"/namespaces/default/pods/d1$", 0.3, method="PATCH")
    answer: list[object] = []

    def call() -> None:
        try:
            answer.append(node.kubelet.allocate_containers(XPU, [node.ids(1), node.ids(1, 5)]))
        except grpc.RpcError as exc:
            answer.append(exc.code().name)

    thread = threading.Thread(target=call)
    thread.start()
    time.sleep(0.1)
    begin = time.monotonic()
    node.node.plugins.server(XPU).restart()
    thread.join(10)
    api.faults.clear()
    report("plugin restart during a 2-container Allocate", time.monotonic() - begin)
    notes = notes_of(store.get_pod(NS, "d1"))
    if isinstance(answer[0], str):
        assert notes[TO_ALLOCATE] == notes[ALLOCATED], "a failed call popped containers"
        retried = node.kubelet.allocate_containers(XPU, [node.ids(1), node.ids(1, 5)])
        responses = list(retried.container_responses)
    else:
        responses = list(answer[0].container_responses)  # type: ignore[attr-defined]
    got = [r.envs["EXAMPLE_MEMORY_LIMIT_0"] for r in responses]
    assert got == [expected(pod, 0).memory[0], expected(pod, 1).memory[0]]
    assert notes_of(store.get_pod(NS, "d1"))[BIND_PHASE] == "success"
    assert half_written(store) == []


def test_node_lock_holder_deleted(node: Plant, api: FakeApiServer) -> None:
    """The pod holding the node lock is deleted before its Allocate: the next pod's bind
    breaks the lock at once instead of waiting for the 5-minute timeout."""
    store = api.state
    store.add_pod(xpu_pod("l0", [Ask(1, 1000)]))
    schedule(node, store, "l0")
    assert notes_of(store.get_node(NODE))[NODE_LOCK].endswith(",default,l0")
    store.delete_pod(NS, "l0")
    begin = time.monotonic()
    store.add_pod(xpu_pod("l1", [Ask(1, 1000)]))
    assert schedule(node, store, "l1") == 0
    report("node lock holder deleted: next bind", time.monotonic() - begin)
    start(node, store, "l1")
    assert half_written(store) == []
