"""Test vendors, object builders and the scheduler's real peers for the scheduler's tests.

- `TGPU`: a shareable card with HAMi's NVIDIA-like rules (exclusive by default, a priority
  resource turned into `CUDA_TASK_PRIORITY` by its `hami_mutate`), registered as JSON.
- `LOCKLESS`: whole cards without a node lock (as MetaX and Moore Threads).
- `KubeScheduler`: posts exactly what kube-scheduler sends to an extender (Go field names,
  `Nodes: null` with `nodeCacheCapable`), and applies its rules to the answer.
- `Apiserver`: sends `AdmissionReview`s as the apiserver does and applies the returned patch.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import httpx
import jsonpatch

from hami_core import hookimpl
from hami_core.config import vendor_section
from hami_core.k8s.cluster import Cluster
from hami_core.model import (
    AnnotationKeys,
    ContainerAllocation,
    ContainerRuntimeSpec,
    Mutation,
    ResourceNames,
    VendorSpec,
)
from hami_core.plugins import VendorRegistry, load_vendors
from hami_core.protocol import DeviceInfo, encode_node_devices
from hami_core.scheduler import SchedulerService, SchedulerSettings
from hami_core.scheduling.admission import generic_mutation

Obj = dict[str, Any]

GPU = "hami.test/gpu"
GPUMEM = "hami.test/gpumem"
GPUCORES = "hami.test/gpucores"
PRIORITY = "hami.test/priority"
CARD = "hami.test/card"

TGPU = VendorSpec(
    key="tgpu",
    common_word="TGPU",
    display_name="Test GPU",
    resources=ResourceNames(
        count=GPU,
        memory=GPUMEM,
        memory_percentage="hami.test/gpumem-percentage",
        cores=GPUCORES,
        priority=PRIORITY,
    ),
    annotations=AnnotationKeys(
        node_register="hami.io/node-tgpu-register",
        handshake="hami.io/node-handshake-tgpu",
        to_allocate="hami.io/tgpu-devices-to-allocate",
        allocated="hami.io/tgpu-devices-allocated",
    ),
    register_format="json",
    mounting="runtime",
    advertised=(GPU,),
    ignored_by_scheduler=(GPU, GPUMEM, "hami.test/gpumem-percentage", GPUCORES, PRIORITY),
    exclusive_by_default=True,
)

LOCKLESS = VendorSpec(
    key="lockless",
    common_word="LOCKLESS",
    resources=ResourceNames(count=CARD),
    annotations=AnnotationKeys(
        node_register="hami.io/node-lockless-register",
        to_allocate="hami.io/lockless-devices-to-allocate",
        allocated="hami.io/lockless-devices-allocated",
    ),
    register_format="json",
    mounting="builtin",
    whole_card_only=True,
    default_split=1,
    node_lock=False,
)

REGISTER = "hami.io/node-tgpu-register"
HANDSHAKE = "hami.io/node-handshake-tgpu"
TO_ALLOCATE = "hami.io/tgpu-devices-to-allocate"
ALLOCATED = "hami.io/tgpu-devices-allocated"


class TgpuPlugin:
    """The `tgpu` vendor: generic rules plus a priority env and a visible-devices env."""

    @hookimpl
    def hami_vendor(self) -> VendorSpec:
        """The test GPU's spec."""
        return TGPU

    @hookimpl
    def hami_mutate(
        self,
        spec: VendorSpec,
        container: Mapping[str, Any],
        pod: Mapping[str, Any],
        config: Mapping[str, Any],
    ) -> Mutation | None:
        """Generic defaults, and `CUDA_TASK_PRIORITY` from the priority limit."""
        if spec.key != TGPU.key:
            return None
        mutation = generic_mutation(spec, container, pod, vendor_section(spec, config))
        limits = (container.get("resources") or {}).get("limits") or {}
        if PRIORITY in limits:
            env = {**mutation.env, "CUDA_TASK_PRIORITY": str(limits[PRIORITY])}
            return mutation.model_copy(update={"env": env})
        return mutation

    @hookimpl
    def hami_mount(self, allocation: ContainerAllocation) -> ContainerRuntimeSpec | None:
        """Name the assigned cards for the container runtime."""
        if allocation.vendor != TGPU.key:
            return None
        return ContainerRuntimeSpec(
            envs={"TGPU_VISIBLE_DEVICES": ",".join(d.uuid for d in allocation.devices)}
        )


class LocklessPlugin:
    """The `lockless` vendor: the generic hooks do everything."""

    @hookimpl
    def hami_vendor(self) -> VendorSpec:
        """The lockless card's spec."""
        return LOCKLESS


def make_registry() -> VendorRegistry:
    """A registry with exactly the two test vendors (nothing installed is loaded)."""
    return load_vendors(
        environ={},
        entry_points_=[],
        plugins=[("tgpu", TgpuPlugin()), ("lockless", LocklessPlugin())],
    )


# ---------------------------------------------------------------------- objects


def card_id(node: str, index: int) -> str:
    """The UUID of card `index` on `node`."""
    return f"GPU-{node}-{index:04d}"


def gpu_node(
    name: str,
    *,
    cards: int = 2,
    memory: int = 16384,
    split: int = 4,
    annotations: Mapping[str, str] | None = None,
    allocatable: int | None = None,
) -> Obj:
    """A node registered by a tgpu device plugin: `cards` cards, allocatable count > 0."""
    infos = [
        DeviceInfo(
            id=card_id(name, i),
            index=i,
            count=split,
            devmem=memory,
            devcore=100,
            type="TGPU-T100",
            health=True,
        )
        for i in range(cards)
    ]
    count = str(cards * split if allocatable is None else allocatable)
    return {
        "metadata": {
            "name": name,
            "labels": {"kubernetes.io/hostname": name},
            "annotations": {REGISTER: encode_node_devices(infos), **dict(annotations or {})},
        },
        "status": {"capacity": {GPU: count}, "allocatable": {GPU: count}},
    }


def user_pod(
    name: str,
    limits: Mapping[str, str] | None = None,
    *,
    namespace: str = "default",
    annotations: Mapping[str, str] | None = None,
    labels: Mapping[str, str] | None = None,
    privileged: bool = False,
    **spec: Any,
) -> Obj:
    """A pod as a user writes it: one container `main` with these limits."""
    container: Obj = {"name": "main", "image": "registry.example/train:1"}
    if limits is not None:
        container["resources"] = {"limits": dict(limits)}
    if privileged:
        container["securityContext"] = {"privileged": True}
    meta: Obj = {"name": name, "namespace": namespace}
    if annotations:
        meta["annotations"] = dict(annotations)
    if labels:
        meta["labels"] = dict(labels)
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": meta,
        "spec": {"containers": [container], **spec},
    }


def eventually(check: Callable[[], Any], timeout: float = 5.0, what: str = "condition") -> Any:
    """Poll `check` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def annotations_of(obj: Mapping[str, Any]) -> dict[str, str]:
    """The object's annotations."""
    return dict((obj.get("metadata") or {}).get("annotations") or {})


# ---------------------------------------------------------------------- the service


def fast_settings(**overrides: Any) -> SchedulerSettings:
    """Settings with short periods, so elections and passes happen within a test."""
    values: dict[str, Any] = {
        "identity": f"replica-{uuid.uuid4().hex[:6]}",
        "lease_duration": 1.0,
        "renew_deadline": 0.6,
        "retry_period": 0.1,
        "register_interval": 0.2,
        "sync_timeout": 5.0,
    }
    values.update(overrides)
    return SchedulerSettings(**values)


@contextmanager
def running_scheduler(
    cluster: Cluster,
    registry: VendorRegistry,
    settings: SchedulerSettings | None = None,
    config: Mapping[str, Any] | None = None,
) -> Iterator[tuple[SchedulerService, str]]:
    """A started service served over HTTP on a free loopback port: `(service, url)`."""
    service = SchedulerService(cluster, registry, config, settings or fast_settings())
    service.start()
    server = service.serve_in_thread()
    try:
        assert service.informer.wait_synced(10), "the scheduler's caches did not sync"
        yield service, server.url
    finally:
        server.stop()
        service.stop()


# ---------------------------------------------------------------------- the peers


class KubeScheduler:
    """kube-scheduler's side of the extender protocol (`nodeCacheCapable: true`)."""

    def __init__(self, http: httpx.Client) -> None:
        self.http = http

    def post(self, verb: str, body: Any) -> Obj:
        """POST a Go-marshalled body; any status but 200 is an error, as in kube-scheduler."""
        response = self.http.post(
            f"/{verb}",
            content=json.dumps(body, separators=(",", ":")),
            headers={"Content-Type": "application/json"},
        )
        assert response.status_code == 200, (response.status_code, response.text)
        result: Obj = response.json()
        return result

    def filter(self, pod: Obj, node_names: Sequence[str]) -> Obj:
        """`ExtenderArgs` with names; checks the answer names only input nodes."""
        result = self.post("filter", {"Pod": pod, "Nodes": None, "NodeNames": list(node_names)})
        for name in result.get("NodeNames") or []:
            assert name in node_names, f"extender answered unknown node {name}"
        return result

    def bind(self, pod: Obj, node: str) -> Obj:
        """`ExtenderBindingArgs` for this pod and node."""
        meta = pod["metadata"]
        return self.post(
            "bind",
            {
                "PodName": meta["name"],
                "PodNamespace": meta.get("namespace", "default"),
                "PodUID": meta.get("uid", ""),
                "Node": node,
            },
        )


class Apiserver:
    """The apiserver's side of the webhook: AdmissionReview in, patch applied to the pod."""

    def __init__(self, http: httpx.Client) -> None:
        self.http = http

    def admit(
        self,
        pod: Obj,
        *,
        version: str = "v1",
        operation: str = "CREATE",
        namespace: str = "default",
    ) -> tuple[Obj, Obj]:
        """Send a review of `pod`; returns `(response, the pod with the patch applied)`."""
        uid = str(uuid.uuid4())
        group = {"group": "", "version": "v1", "kind": "Pod"}
        resource = {"group": "", "version": "v1", "resource": "pods"}
        review = {
            "apiVersion": f"admission.k8s.io/{version}",
            "kind": "AdmissionReview",
            "request": {
                "uid": uid,
                "kind": group,
                "resource": resource,
                "requestKind": group,
                "requestResource": resource,
                "name": pod["metadata"].get("name", ""),
                "namespace": namespace,
                "operation": operation,
                "userInfo": {"username": "alice", "groups": ["system:authenticated"]},
                "object": pod,
                "oldObject": None,
                "dryRun": False,
                "options": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"},
            },
        }
        answer = self.http.post("/webhook", json=review)
        assert answer.status_code == 200, (answer.status_code, answer.text)
        body = answer.json()
        assert body["apiVersion"] == review["apiVersion"]
        assert body["kind"] == "AdmissionReview"
        response: Obj = body["response"]
        assert response["uid"] == uid
        mutated = pod
        if "patch" in response:
            assert response["patchType"] == "JSONPatch"
            operations = json.loads(base64.b64decode(response["patch"]))
            mutated = jsonpatch.apply_patch(pod, operations)
        return response, mutated
