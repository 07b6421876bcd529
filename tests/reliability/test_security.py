"""Security: what a pod's author, a node, or a log reader must not be able to do or see.

- A pod created with hami's decision annotations or label (shared keys, every installed
  vendor's to-allocate/allocated keys, and every other key a vendor's decision writes) is
  refused by the webhook, over HTTP into the real app (or stripped, when configured so).
- A device plugin never serves a pod bound to another node, decided for another node, or
  carrying a decision it cannot trust (a pod that never went through hami's bind).
- The deployment reaches the webhook and the extender only over TLS.
- Request bodies and annotation values are size-capped; a node cannot make the scheduler build
  an unbounded number of cards.
- The apiserver bearer token never appears in any log line or on stdout/stderr, whatever
  fails.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from fuzz_kit import all_vendors
from plant import NODE, Plant, fast_settings, plant, write_cards
from rel_kit import (
    ALLOCATED,
    ASSIGNED_NODE,
    BIND_PHASE,
    NODE_LOCK,
    NS,
    TO_ALLOCATE,
    XPU_MEM,
    Ask,
    CardShape,
    notes_of,
    xpu_node,
    xpu_pod,
)

from hami_core.k8s.memory import MemoryCluster
from hami_core.model import ContainerDevice, FitContext, NodeView, PodView
from hami_core.protocol import ProtocolError, decode_node_devices, decode_pod_devices
from hami_core.protocol.keys import ASSIGNED_TIME, BIND_TIME, NVIDIA_MIG_ALLOCATIONS
from hami_core.scheduler import SchedulerService
from hami_core.scheduling.cache import UsageCache
from hami_core.testing import FakeApiServer

ROOT = Path(__file__).resolve().parents[2]
REGISTRY = all_vendors()


# ---------------------------------------------------------------------- the webhook


def _written_keys() -> dict[str, set[str]]:
    """vendor key → every pod annotation its decision writes (`hami_pod_annotations` on one
    share of one card), plus its declared decision keys."""
    pod = PodView.from_obj({"metadata": {"name": "p", "namespace": NS}, "spec": {}})
    node = NodeView.from_obj({"metadata": {"name": NODE}})
    out: dict[str, set[str]] = {}
    for spec in REGISTRY.specs():
        devices = [[ContainerDevice(uuid="U-0", type=spec.common_word, usedmem=1024, usedcores=10)]]
        context = FitContext(
            pod=pod,
            node=node,
            gpu_policy=("spread",),
            pair_scores={},
            pod_devices={spec.key: devices},
            config={},
        )
        written = REGISTRY.hook.hami_pod_annotations(spec=spec, containers=devices, context=context)
        out[spec.key] = set(written or {}) | set(spec.annotations.decision_keys())
    return out


WRITTEN = _written_keys()
SHARED = [ASSIGNED_NODE, ASSIGNED_TIME, BIND_PHASE, BIND_TIME, NVIDIA_MIG_ALLOCATIONS]


@pytest.fixture(scope="module")
def webhook() -> Iterator[httpx.Client]:
    """The scheduler's app (every vendor loaded) over loopback HTTP."""
    store = MemoryCluster()
    service = SchedulerService(store, REGISTRY, None, fast_settings(max_body_bytes=64 * 1024))
    server = service.serve_in_thread()
    try:
        with httpx.Client(base_url=server.url, timeout=10.0) as client:
            yield client
    finally:
        server.stop()


def _review(pod: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "7f3b",
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "namespace": NS,
            "operation": "CREATE",
            "userInfo": {"username": "mallory"},
            "object": pod,
        },
    }


def _asking(vendor: str) -> dict[str, Any]:
    """A pod whose one container asks for one card of `vendor` (no vendor: of none)."""
    limits = {REGISTRY.spec(vendor).resources.count: "1"} if vendor else {}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "forger", "namespace": NS},
        "spec": {"containers": [{"name": "c", "image": "x", "resources": {"limits": limits}}]},
    }


def _let_through(webhook: httpx.Client, vendor: str, keys: list[str]) -> list[str]:
    """The keys among `keys` a new pod asking for `vendor` may carry past the webhook."""
    through = []
    for key in keys:
        pod = _asking(vendor)
        pod["metadata"]["annotations"] = {key: "GPU-0,NVIDIA,80000,100:;"}
        response = webhook.post("/webhook", json=_review(pod)).json()["response"]
        if response["allowed"] or key not in response["status"]["message"]:
            through.append(key)
    return through


def test_a_forged_shared_decision_annotation_is_refused(webhook: httpx.Client) -> None:
    assert _let_through(webhook, "example", SHARED) == []


@pytest.mark.parametrize("vendor", sorted(WRITTEN))
def test_a_forged_vendor_decision_annotation_is_refused(webhook: httpx.Client, vendor: str) -> None:
    """Every key this vendor's decision writes (`hami_pod_annotations`), not only its
    to-allocate/allocated keys: the device plugin's mount hook may read any of them."""
    through = _let_through(webhook, vendor, sorted(WRITTEN[vendor]))
    assert through == [], f"new pods may carry {vendor}'s decision keys {through}"


@pytest.mark.parametrize(
    "pod",
    [
        _asking(""),
        {**_asking("example"), "spec": {**_asking("example")["spec"], "schedulerName": "other"}},
    ],
    ids=["asks-nothing", "other-scheduler"],
)
def test_forged_keys_are_refused_on_any_pod(webhook: httpx.Client, pod: dict[str, Any]) -> None:
    pod = json.loads(json.dumps(pod))
    pod["metadata"]["annotations"] = {ALLOCATED: "XPU-0,EXAMPLE,1,0:;"}
    pod["metadata"]["labels"] = {ASSIGNED_NODE: NODE}
    response = webhook.post("/webhook", json=_review(pod)).json()["response"]
    assert response["allowed"] is False
    assert ALLOCATED in response["status"]["message"]
    assert f"label {ASSIGNED_NODE}" in response["status"]["message"]


def test_forged_keys_are_stripped_when_configured() -> None:
    service = SchedulerService(
        MemoryCluster(), REGISTRY, None, fast_settings(strip_forged_annotations=True)
    )
    pod = _asking("example")
    pod["metadata"]["annotations"] = {TO_ALLOCATE: "XPU-0,EXAMPLE,80000,0:;", "note": "kept"}
    review = service.webhook.review(_review(pod))
    response = review.body["response"]
    assert response["allowed"] is True
    assert any(TO_ALLOCATE in w for w in response["warnings"])
    import base64

    ops = json.loads(base64.b64decode(response["patch"]))
    assert {
        "op": "remove",
        "path": "/metadata/annotations/hami.io~1example-devices-to-allocate",
    } in ops


# ---------------------------------------------------------------------- the device plugin


@pytest.fixture
def store() -> MemoryCluster:
    """The cluster: node-a (this plugin's) and node-b."""
    mem = MemoryCluster()
    for name in (NODE, "node-b"):
        mem.add_node({"metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}}})
    return mem


@pytest.fixture
def node(store: MemoryCluster, tmp_path: Path) -> Iterator[Plant]:
    """node-a's agent and device plugin, registered with a fake kubelet."""
    with plant(store, store, write_cards(tmp_path / "cards.json", 2)) as p:
        yield p


def _decided(name: str, bound: str | None, decided: str, *, lock: bool) -> dict[str, Any]:
    pod = xpu_pod(name, [Ask(1, 3000)])
    value = "XPU-0,EXAMPLE,3000,0:;"
    pod["metadata"]["annotations"] = {
        ASSIGNED_NODE: decided,
        BIND_PHASE: "allocating",
        "hami.io/bind-time": "1700000000",
        TO_ALLOCATE: value,
        ALLOCATED: value,
    }
    if bound:
        pod["spec"]["nodeName"] = bound
    return pod


@pytest.mark.parametrize(
    ("bound", "decided"),
    [("node-b", NODE), (NODE, "node-b"), ("node-b", "node-b")],
    ids=["bound-elsewhere", "decided-elsewhere", "both-elsewhere"],
)
def test_a_pod_of_another_node_is_never_served(
    node: Plant, store: MemoryCluster, bound: str, decided: str
) -> None:
    store.add_pod(_decided("stranger", bound, decided, lock=True))
    store.patch_node_metadata(
        NODE, annotations={NODE_LOCK: "2024-05-01T10:00:00Z,default,stranger"}
    )
    before = notes_of(store.get_pod(NS, "stranger"))
    assert node.allocate(1) == "NOT_FOUND"
    assert notes_of(store.get_pod(NS, "stranger")) == before


def test_a_pod_that_skipped_hamis_bind_is_never_served(node: Plant, store: MemoryCluster) -> None:
    """A pod created already bound to this node (`spec.nodeName`), carrying a forged decision
    — possible when the webhook is skipped: the deployment lets a pod opt out with the label
    `hami.io/webhook: ignore`, and its failurePolicy is Ignore. hami's bind never ran, so the
    node lock was never taken for it; the plugin must not hand it the forged cards."""
    pod = _decided("sneak", NODE, NODE, lock=False)
    pod["metadata"]["labels"] = {"hami.io/webhook": "ignore"}
    pod["spec"]["containers"][0]["resources"]["limits"][XPU_MEM] = "3000"
    store.add_pod(pod)
    assert NODE_LOCK not in notes_of(store.get_node(NODE))
    outcome = node.allocate(1)
    assert isinstance(outcome, str), f"served a forged decision: {outcome}"
    assert notes_of(store.get_pod(NS, "sneak"))[TO_ALLOCATE] == "XPU-0,EXAMPLE,3000,0:;"


# ---------------------------------------------------------------------- TLS in the deployment


def _objects(directory: Path) -> list[dict[str, Any]]:
    doc = yaml.safe_load((directory / "kustomization.yaml").read_text(encoding="utf-8"))
    out: list[dict[str, Any]] = []
    for entry in doc.get("resources") or []:
        path = directory / entry
        if path.is_dir():
            out.extend(_objects(path))
        else:
            out.extend(d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d)
    return out


DEPLOYED = _objects(ROOT / "deploy" / "kustomize")


def _of(kind: str) -> list[dict[str, Any]]:
    return [o for o in DEPLOYED if o.get("kind") == kind]


def test_the_webhook_is_reached_only_over_tls_with_a_ca() -> None:
    hooks = [w for c in _of("MutatingWebhookConfiguration") for w in c["webhooks"]]
    assert hooks, "no MutatingWebhookConfiguration deployed"
    jobs = [" ".join(c.get("args") or []) for j in _of("Job") for c in _containers(j)]
    for config in _of("MutatingWebhookConfiguration"):
        name = config["metadata"]["name"]
        for hook in config["webhooks"]:
            client = hook["clientConfig"]
            assert "url" not in client, f"{hook['name']}: reached by URL, not through a service"
            service = client["service"]
            assert service.get("port", 443) == 443
            has_ca = bool(client.get("caBundle")) or any(
                f"--webhook-name={name}" in args and "--patch-mutating=true" in args
                for args in jobs
            )
            assert has_ca, f"{hook['name']}: no caBundle and no job that injects one"
            target = _service_target(
                service["name"], service["namespace"], service.get("port", 443)
            )
            assert target in _tls_ports(), f"{hook['name']}: port {target} does not serve TLS"


def test_the_extender_is_called_over_https() -> None:
    configs = [
        yaml.safe_load(text)
        for cm in _of("ConfigMap")
        for text in (cm.get("data") or {}).values()
        if "KubeSchedulerConfiguration" in text
    ]
    assert configs
    for config in configs:
        for extender in config.get("extenders") or []:
            assert extender["urlPrefix"].startswith("https://"), extender["urlPrefix"]
            assert extender.get("enableHTTPS") is True


def _containers(obj: dict[str, Any]) -> list[dict[str, Any]]:
    spec = obj.get("spec", {}).get("template", {}).get("spec", {})
    return list(spec.get("containers") or [])


def _service_target(name: str, namespace: str, port: int) -> str | int:
    for svc in _of("Service"):
        meta = svc["metadata"]
        if meta["name"] == name and meta.get("namespace") == namespace:
            for p in svc["spec"]["ports"]:
                if p["port"] == port:
                    return p.get("targetPort", port)  # type: ignore[no-any-return]
    raise AssertionError(f"service {namespace}/{name} has no port {port}")


def _tls_ports() -> set[str | int]:
    """Container ports (names and numbers) of containers started with a certificate and key,
    listening where their `--bind-address` says."""
    out: set[str | int] = set()
    for deployment in _of("Deployment"):
        for c in _containers(deployment):
            args = " ".join(c.get("args") or [])
            if "--cert-file=" not in args or "--key-file=" not in args:
                continue
            for p in c.get("ports") or []:
                if f":{p['containerPort']}" in args:
                    out.update({p["containerPort"], p.get("name", p["containerPort"])})
    return out


# ---------------------------------------------------------------------- size caps


@pytest.mark.parametrize("path", ["/filter", "/bind", "/webhook"])
def test_request_bodies_over_the_cap_are_refused(webhook: httpx.Client, path: str) -> None:
    big = b'{"x": "' + b"a" * (64 * 1024) + b'"}'
    declared = webhook.post(path, content=big, headers={"Content-Type": "application/json"})
    assert declared.status_code == 413

    def chunks() -> Iterator[bytes]:
        for _ in range(20):
            yield b"a" * 8192

    streamed = webhook.post(path, content=chunks(), headers={"Content-Type": "application/json"})
    assert streamed.status_code == 413


ANNOTATION_CAP = 256 * 1024
"""The apiserver's limit on all of an object's annotations together (TotalAnnotationSizeLimitB):
no real value can be longer, so a decoder may refuse anything beyond it unread."""


def _oversized_register() -> str:
    record = {"id": "GPU-x", "count": 10, "devmem": 1, "devcore": 100, "type": "T", "health": True}
    many = [dict(record, id=f"GPU-{i:06d}") for i in range(4000)]
    value = json.dumps(many)
    assert len(value) > ANNOTATION_CAP
    return value


def test_an_oversized_register_annotation_is_refused_unread() -> None:
    with pytest.raises(ProtocolError, match=r"(?i)too (long|large)|limit|bytes"):
        decode_node_devices(_oversized_register())


def test_an_oversized_pod_annotation_is_refused_unread() -> None:
    value = "GPU-0,NVIDIA,1,0:" * (ANNOTATION_CAP // 16 + 1) + ";"
    assert len(value) > ANNOTATION_CAP
    with pytest.raises(ProtocolError, match=r"(?i)too (long|large)|limit|bytes"):
        decode_pod_devices(value)


CAPACITY_CARDS = 100_000
"""More cards than any node has: a node claiming this many must be refused."""


def _claim(vendor: str) -> dict[str, str]:
    """The capacity under which `vendor`'s reader would make `CAPACITY_CARDS` cards: one card
    per count unit (MetaX), per 16 core groups (Moore Threads), per 100 vcores (Cambricon)."""
    res = REGISTRY.spec(vendor).resources
    if vendor == "metax":
        return {res.count: str(CAPACITY_CARDS)}
    per_card = {"mthreads": 16, "cambricon": 100}[vendor]
    assert res.cores is not None and res.memory is not None
    return {res.cores: str(CAPACITY_CARDS * per_card), res.memory: str(CAPACITY_CARDS)}


@pytest.mark.parametrize("vendor", ["metax", "mthreads", "cambricon"])
def test_a_node_cannot_claim_unbounded_capacity_cards(vendor: str) -> None:
    """Vendors that register through node capacity make one card per few units: a node (or a
    broken device plugin) reporting 100,000 cards' worth must be refused, not expanded — at
    10^9 the scheduler spends minutes and gigabytes on one node event."""
    cache = UsageCache(REGISTRY, {})
    done = threading.Event()
    claim = _claim(vendor)

    def upsert() -> None:
        cache.upsert_node(
            {"metadata": {"name": NODE}, "status": {"capacity": claim, "allocatable": claim}}
        )
        done.set()

    thread = threading.Thread(target=upsert, daemon=True)
    thread.start()
    assert done.wait(60), "reading the node did not finish within a minute"
    with cache.locked():
        state = cache.node(NODE)
        assert state is not None
        cards = len(state.cards(vendor))
        error = state.errors.get(vendor)
    assert cards <= 1024 and (cards == 0) == (error is not None), (cards, error)


# ---------------------------------------------------------------------- tokens in logs


TOKEN = "hami-test-secret-7Qx9vTn2Lk"


def test_the_bearer_token_never_reaches_the_logs(
    tmp_path: Path, capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    """The whole stack with a bearer token, at DEBUG, through successes and failures (a 500,
    a 401 from a client with a wrong token, dropped watches): the token is never logged,
    printed or put in an error message."""
    caplog.set_level(logging.DEBUG)
    messages: list[str] = []
    with FakeApiServer(token=TOKEN) as api:
        api.state.add_node(xpu_node(NODE, [CardShape(count=4, memory=64000)]))
        sched = api.kube_cluster(request_timeout=2.0, watch_timeout_seconds=30)
        plugin = api.kube_cluster(request_timeout=2.0)
        wrong = api.kube_cluster(token="not-the-token")
        try:
            with plant(sched, plugin, write_cards(tmp_path / "cards.json", 2)) as p:
                api.state.add_pod(xpu_pod("t0", [Ask(1, 1000)]))
                assert p.schedule(api.state, "t0") == ""
                assert not isinstance(p.allocate(1), str)
                api.faults.fail_next("PATCH", r"/pods/t1$", 500)
                api.state.add_pod(xpu_pod("t1", [Ask(1, 1000)]))
                messages.append(str(p.filter(api.state.get_pod(NS, "t1"))["Error"]))
                api.faults.drop_watches()
                for call in (lambda: wrong.get_node(NODE), lambda: wrong.list_pods()):
                    try:
                        call()
                    except Exception as exc:
                        messages.append(f"{type(exc).__name__}: {exc}")
        finally:
            for client in (sched, plugin, wrong):
                client.close()
    out, err = capfd.readouterr()
    records = [f"{r.name}: {r.getMessage()} {r.exc_text or ''} {r.args!r}" for r in caplog.records]
    assert any("401" in m or "Unauthorized" in m for m in messages), messages
    assert len(records) > 10, "the stack logged nothing: the check would be empty"
    for where, text in (("stdout", out), ("stderr", err), *(("log", r) for r in records)):
        assert TOKEN not in text, f"the token appears in {where}: {text[:300]}"
    for message in messages:
        assert TOKEN not in message
