"""`Simulator`: pods through the same webhook, filter, bind and Allocate code as the services,
against a `MemoryCluster`.

For each workload pod, in order:

1. admission: the scheduler's `Webhook` answers an `AdmissionReview` for the pod and its JSON
   patch is applied (a refusal ends the pod: `denied`); the pod is created;
2. kube-scheduler's own filters (`hami_core.simulate.kube`) narrow the nodes; a pod that asks
   nothing of any vendor is left to kube-scheduler (`skipped`);
3. the extender's `FilterVerb` runs the engine over the candidates with a reservation and writes
   the decision onto the pod (no node fits: `unschedulable`, with each node's reason);
4. the extender's `BindVerb` takes the node lock, sets `bind-phase: allocating` and binds;
5. as the kubelet does, each container (init first) is allocated through the device plugin's
   `Allocator`: one call per resource hami's device plugin advertises for the vendor and the
   container asks for, with as many device IDs as it asks; the call that pops the container
   returns the vendor's `hami_mount` answer, and the last one sets `bind-phase: success` and
   releases the lock. A container whose vendor hami's device plugin does not serve for it (no
   to-allocate key, or none of the advertised resources asked for) gets `hami_mount` called
   directly with its allocated devices, as the vendor's own device plugin would serve it, and
   the pod is then marked allocated as that plugin would;
6. the pod runs (`Running`), or, when Allocate failed, the kubelet rejects it (`Failed`: it
   holds nothing).

The usage cache is fed each pod's final object, as the scheduler's informer would. Time is a
simulated clock that starts at `START` and moves one second per pod, so runs repeat exactly.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import jsonpatch

from hami_core.deviceplugin.allocate import (
    AllocateError,
    Allocator,
    containers_of,
    pending_entries,
    quantity,
)
from hami_core.errors import HamiError
from hami_core.k8s.cluster import ClusterError, Obj
from hami_core.k8s.memory import MemoryCluster
from hami_core.model import (
    ContainerAllocation,
    ContainerDevice,
    ContainerRuntimeSpec,
    Device,
    VendorSpec,
)
from hami_core.nodelock import NodeLockError, release_node_lock
from hami_core.plugins import VendorRegistry
from hami_core.protocol import ProtocolError
from hami_core.protocol.keys import BIND_PHASE_SUCCESS
from hami_core.scheduler.bind import BindVerb
from hami_core.scheduler.decisions import decision_keys, usage_view
from hami_core.scheduler.events import EventRecorder
from hami_core.scheduler.filtering import FilterVerb
from hami_core.scheduler.metrics import SchedulerMetrics
from hami_core.scheduler.settings import SchedulerSettings
from hami_core.scheduler.webhook import Webhook
from hami_core.scheduler.wire import BindArgs, FilterArgs
from hami_core.scheduling.cache import UsageCache
from hami_core.scheduling.engine import Engine
from hami_core.scheduling.requests import pod_requests
from hami_core.simulate.inventory import Inventory, load_inventory
from hami_core.simulate.kube import KubeFilter
from hami_core.simulate.outcome import (
    CardFill,
    ContainerOutcome,
    PodOutcome,
    SimulationResult,
    Stage,
    summarise_failures,
)
from hami_core.simulate.workload import WorkloadPod, load_workloads

__all__ = ["START", "SimCluster", "Simulator", "simulate"]

log = logging.getLogger(__name__)

START = 1_735_689_600.0
"""The simulated clock's first reading: 2025-01-01T00:00:00Z."""

COMPONENT = "hami-simulate"

Progress = Callable[[PodOutcome], None]


class SimCluster(MemoryCluster):
    """A `MemoryCluster` that also indexes pods by node, so a node's pods are listed without
    scanning every pod of the cluster (the device plugin lists them on every `Allocate`)."""

    def __init__(self, *, clock: Callable[[], float]) -> None:
        super().__init__(clock=clock, history_limit=1)
        self._on_node: dict[str, set[tuple[str, str]]] = {}

    def _index(self, pod: Obj) -> None:
        node = (pod.get("spec") or {}).get("nodeName")
        if node:
            meta = pod["metadata"]
            self._on_node.setdefault(str(node), set()).add((meta["namespace"], meta["name"]))

    def add_pod(self, pod: Obj) -> Obj:
        """Create a pod (kept in the node index when it is bound)."""
        stored = super().add_pod(pod)
        self._index(stored)
        return stored

    def bind(
        self,
        namespace: str,
        name: str,
        node: str,
        *,
        uid: str | None = None,
        annotations: Mapping[str, str] | None = None,
    ) -> Obj:
        """`pods/binding`, recording the pod under its node."""
        bound = super().bind(namespace, name, node, uid=uid, annotations=annotations)
        self._index(bound)
        return bound

    def list_pods(
        self,
        *,
        namespace: str | None = None,
        node_name: str | None = None,
        label_selector: str | None = None,
    ) -> list[Obj]:
        """As `MemoryCluster.list_pods`; a node's pods come from the index."""
        if node_name is None or namespace is not None or label_selector is not None:
            return super().list_pods(
                namespace=namespace, node_name=node_name, label_selector=label_selector
            )
        out: list[Obj] = []
        for ns, name in sorted(self._on_node.get(node_name, ())):
            try:
                pod = self.get_pod(ns, name)
            except ClusterError:
                continue
            if (pod.get("spec") or {}).get("nodeName") == node_name:
                out.append(pod)
        return out


class _Synced:
    """The cache feed of a simulation: the simulator itself keeps the cache current."""

    def __init__(self, cluster: MemoryCluster) -> None:
        self._cluster = cluster

    def wait_synced(self, timeout: float) -> bool:
        """Always synced: every write is fed to the cache before the next pod."""
        return True

    def assigned_pods(self, nodes: Iterable[str]) -> list[Obj]:
        """The pods bound to these nodes."""
        wanted = set(nodes)
        return [
            p for p in self._cluster.list_pods() if (p.get("spec") or {}).get("nodeName") in wanted
        ]


class _AllocateFailed(Exception):
    pass


def _env(container: Mapping[str, Any]) -> dict[str, str]:
    env: dict[str, str] = {}
    for item in container.get("env") or []:
        if isinstance(item, Mapping) and isinstance(item.get("value"), str) and item.get("name"):
            env[str(item["name"])] = item["value"]
    return env


def _kubelet_calls(
    spec: VendorSpec,
    container: Mapping[str, Any],
    devices: Sequence[ContainerDevice],
    replicas: dict[str, int],
) -> list[tuple[str, list[str]]]:
    """The `Allocate` calls the kubelet makes to hami's device plugin for this container:
    one per advertised resource it asks for, with as many device IDs as it asks of that
    resource (replica IDs `<card>-<k>` of its cards; `replicas` counts those handed out)."""
    calls: list[tuple[str, list[str]]] = []
    for resource in spec.advertised:
        wanted = quantity(container, resource)
        ids: list[str] = []
        for i in range(wanted):
            card = devices[i % len(devices)].uuid
            k = replicas.get(card, 0)
            replicas[card] = k + 1
            ids.append(f"{card}-{k}")
        if ids:
            calls.append((resource, ids))
    return calls


def _meta(pod: Mapping[str, Any]) -> Mapping[str, Any]:
    meta = pod.get("metadata")
    return meta if isinstance(meta, Mapping) else {}


class Simulator:
    """One simulated cluster: nodes and running pods from an `Inventory`, then workload pods
    one at a time (module docstring). Not thread-safe; one run per instance."""

    def __init__(
        self,
        registry: VendorRegistry,
        config: Mapping[str, Any] | None,
        inventory: Inventory,
        *,
        node_policy: str = "binpack",
        gpu_policy: str = "spread",
        start: float = START,
    ) -> None:
        """Build the cluster. Raises `ProtocolError` for an unknown policy."""
        self.registry = registry
        self.config: dict[str, Any] = dict(config or {})
        self.inventory = inventory
        self._now = start
        self.cluster = SimCluster(clock=self._clock)
        self.cache = UsageCache(registry, self.config)
        self.engine = Engine(
            registry, self.config, self.cache, node_policy=node_policy, gpu_policy=gpu_policy
        )
        settings = SchedulerSettings(
            node_policy=node_policy, gpu_policy=gpu_policy, identity=COMPONENT
        )
        metrics = SchedulerMetrics()
        events = EventRecorder(self.cluster, COMPONENT, capacity=1)  # never started: no events
        self.webhook = Webhook(registry, self.config, settings)
        self.filter = FilterVerb(
            self.cluster,
            self.engine,
            _Synced(self.cluster),
            metrics=metrics,
            events=events,
            clock=self._clock,
        )
        self.bind = BindVerb(
            self.cluster,
            registry,
            self.config,
            metrics=metrics,
            events=events,
            node_lock_timeout=settings.node_lock_timeout,
            clock=self._clock,
            sleep=lambda _seconds: None,
        )
        self.kube = KubeFilter(registry.specs())
        self._keys = decision_keys(registry.specs())
        self._allocators: dict[str, Allocator] = {}
        self._outcomes: list[PodOutcome] = []
        self._reviews = 0
        for node in inventory.nodes:
            stored = self.cluster.add_node(node)
            self.cache.upsert_node(stored)
            self.kube.add_node(stored)
        for running in inventory.pods:
            stored = self.cluster.add_pod(running)
            self._observe(stored)
            bound = (stored.get("spec") or {}).get("nodeName")
            if bound and (stored.get("status") or {}).get("phase") not in ("Succeeded", "Failed"):
                self.kube.count(stored, str(bound))

    # ------------------------------------------------------------------ internals

    def _clock(self) -> float:
        return self._now

    def _observe(self, pod: Obj) -> None:
        """What the scheduler's informer does with a pod event."""
        self.cache.upsert_pod(usage_view(pod, self._keys))

    def _cards(self, node: str, vendor: str) -> tuple[Device, ...]:
        """The node's physical cards of `vendor`, as the node agent would hand them to
        `hami_mount`: the inventory's, or (for a snapshot) the registered cards themselves."""
        known = self.inventory.devices.get(node)
        if known is not None:
            return known.get(vendor, ())
        with self.cache.locked():
            state = self.cache.node(node)
            cards = state.vendors.get(vendor) if state is not None else None
            return tuple(
                Device(
                    vendor=vendor,
                    uuid=d.id,
                    index=d.index,
                    model=d.type or vendor,
                    memory_mib=d.totalmem,
                    cores=d.totalcore,
                    numa=d.numa,
                    health=d.health,
                    mode=d.mode or "hami-core",
                )
                for d in (cards.devices if cards is not None else ())
            )

    def _allocator(self, node: str) -> Allocator:
        allocator = self._allocators.get(node)
        if allocator is None:
            allocator = self._allocators[node] = Allocator(
                self.cluster,
                self.registry,
                node,
                config=self.config,
                node_devices=lambda vendor: self._cards(node, vendor),
                dry_run=True,
            )
        return allocator

    def _forget(self, namespace: str, name: str) -> None:
        with contextlib.suppress(ClusterError):
            self.cluster.delete_pod(namespace, name)
        self.cache.remove_pod(namespace, name)

    # ------------------------------------------------------------------ the steps

    def _admit(self, pod: Obj, namespace: str) -> Obj | str:
        """The pod as the webhook mutates it, or the webhook's refusal message."""
        self._reviews += 1
        review = self.webhook.review(
            {
                "apiVersion": "admission.k8s.io/v1",
                "kind": "AdmissionReview",
                "request": {
                    "uid": f"simulate-{self._reviews}",
                    "kind": {"group": "", "version": "v1", "kind": "Pod"},
                    "resource": {"group": "", "version": "v1", "resource": "pods"},
                    "namespace": namespace,
                    "operation": "CREATE",
                    "object": pod,
                },
            }
        )
        response = review.body["response"]
        if not response.get("allowed"):
            return str((response.get("status") or {}).get("message") or "refused")
        patch = response.get("patch")
        if not patch:
            return pod
        operations = json.loads(base64.b64decode(patch))
        patched: Obj = jsonpatch.apply_patch(pod, operations)
        return patched

    def _decided(self, pod: Mapping[str, Any]) -> dict[str, list[list[ContainerDevice]]]:
        """Each vendor's devices per container, as the decision annotations on the pod say."""
        annotations = _meta(pod).get("annotations") or {}
        out: dict[str, list[list[ContainerDevice]]] = {}
        for spec in self.registry.specs():
            value = annotations.get(spec.annotations.allocated)
            if not isinstance(value, str):
                continue
            try:
                out[spec.key] = pending_entries(value)
            except ProtocolError as exc:
                log.warning("%s: %s", spec.annotations.allocated, exc)
        return out

    def _allocate(
        self, pod: Obj, node: str, decided: Mapping[str, list[list[ContainerDevice]]]
    ) -> list[ContainerOutcome]:
        """Every container's Allocate, in the kubelet's order. `_AllocateFailed` on refusal."""
        meta = _meta(pod)
        namespace, name = str(meta.get("namespace") or "default"), str(meta.get("name"))
        containers = containers_of(pod)
        replicas: dict[str, int] = {}
        outcomes: list[ContainerOutcome] = []
        direct: dict[str, VendorSpec] = {}
        for index, container in enumerate(containers):
            answers: list[ContainerRuntimeSpec] = []
            for key, entries in decided.items():
                devices = entries[index] if index < len(entries) else []
                if not devices:
                    continue
                spec = self.registry.spec(key)
                calls = _kubelet_calls(spec, container, devices, replicas)
                if not calls or not spec.annotations.to_allocate:
                    direct[key] = spec
                    answers.append(self._mount(spec, pod, node, container, devices))
                    continue
                for resource, ids in calls:
                    try:
                        answers.extend(self._allocator(node).allocate(spec, [ids], resource))
                    except AllocateError as exc:
                        raise _AllocateFailed(str(exc)) from None
            outcomes.append(ContainerOutcome.merge(str(container.get("name") or ""), answers))
        if direct:
            self._served_directly(namespace, name, node, direct.values())
        return outcomes

    def _served_directly(
        self, namespace: str, name: str, node: str, specs: Iterable[VendorSpec]
    ) -> None:
        """What a vendor's own device plugin does once it served the pod: bind-phase success
        and the node lock released."""
        current = _meta(self.cluster.get_pod(namespace, name)).get("annotations") or {}
        phases = {spec.annotations.bind_phase for spec in specs}
        patch: dict[str, str | None] = {
            key: BIND_PHASE_SUCCESS for key in phases if current.get(key) != BIND_PHASE_SUCCESS
        }
        if patch:
            self.cluster.patch_pod_metadata(namespace, name, annotations=patch)
        try:
            release_node_lock(self.cluster, node, namespace, name)
        except NodeLockError as exc:
            log.warning("pod %s/%s: %s", namespace, name, exc)

    def _mount(
        self,
        spec: VendorSpec,
        pod: Obj,
        node: str,
        container: Mapping[str, Any],
        devices: Sequence[ContainerDevice],
    ) -> ContainerRuntimeSpec:
        """`hami_mount` for a vendor whose own device plugin serves the kubelet."""
        meta = _meta(pod)
        name = str(container.get("name") or "")
        try:
            allocation = ContainerAllocation(
                vendor=spec.key,
                pod_namespace=str(meta.get("namespace") or "default"),
                pod_name=str(meta.get("name") or ""),
                pod_uid=str(meta.get("uid") or ""),
                pod_annotations=dict(meta.get("annotations") or {}),
                container=name,
                container_env=_env(container),
                devices=tuple(devices),
                node_devices=self._cards(node, spec.key),
                config=self.config,
                dry_run=True,
            )
            answer = self.registry.hook.hami_mount(allocation=allocation)
        except Exception as exc:  # a vendor's mount hook failing fails this pod only
            raise _AllocateFailed(
                f"container {name!r}: {spec.key} mount failed: {type(exc).__name__}: {exc}"
            ) from None
        if not isinstance(answer, ContainerRuntimeSpec):
            raise _AllocateFailed(f"container {name!r}: vendor {spec.key} gave no runtime spec")
        return answer

    def _asks(self, pod: Mapping[str, Any]) -> bool:
        try:
            return any(pod_requests(self.registry, pod, self.config))
        except HamiError:
            return True  # the extender reports the bad request

    def _words(
        self, decided: Mapping[str, list[list[ContainerDevice]]]
    ) -> dict[str, tuple[tuple[ContainerDevice, ...], ...]]:
        return {
            self.registry.spec(key).common_word: tuple(tuple(c) for c in entries)
            for key, entries in decided.items()
        }

    def step(self, item: WorkloadPod) -> PodOutcome:
        """Take one workload pod through every step; never raises for the pod's own faults."""
        self._now += 1.0
        meta = _meta(item.pod)
        namespace = str(meta.get("namespace") or "default")
        name = str(meta.get("name") or "")

        def done(stage: Stage, reason: str | None = None, **kw: Any) -> PodOutcome:
            outcome = PodOutcome(namespace, name, item.source, stage, reason=reason, **kw)
            self._outcomes.append(outcome)
            return outcome

        admitted = self._admit(item.pod, namespace)
        if isinstance(admitted, str):
            return done("denied", f"denied by the webhook: {admitted}")
        scheduler = str((admitted.get("spec") or {}).get("schedulerName") or "")
        if scheduler not in ("", "default-scheduler", self.webhook.settings.scheduler_name):
            return done("skipped", f"left to its own scheduler {scheduler!r}")
        try:
            pod = self.cluster.create("pods", admitted, namespace=namespace)
        except ClusterError as exc:
            return done("denied", f"the apiserver refused the pod: {exc}")
        candidates, refused = self.kube.candidates(pod)
        answer = None
        if candidates:
            answer = self.filter(FilterArgs(pod=pod, node_names=candidates, nodes=None))
        elif not self._asks(pod):
            answer = {"NodeNames": []}
        decided: dict[str, list[list[ContainerDevice]]] = {}
        if answer is not None and answer.get("NodeNames") is not None:
            pod = self.cluster.get_pod(namespace, name)
            decided = self._decided(pod)
            if not decided:
                self._forget(namespace, name)  # the extender passed it through
                return done("skipped", "asks for no accelerator (left to kube-scheduler)")
        if answer is None or answer.get("Error") or not answer.get("NodeNames"):
            self._forget(namespace, name)
            if answer is not None and answer.get("Error"):
                return done("unschedulable", str(answer["Error"]))
            failed = {**refused, **((answer or {}).get("FailedNodes") or {})}
            reason = summarise_failures(failed) if failed else "the cluster has no nodes"
            return done("unschedulable", reason, failed=failed)
        node = str(answer["NodeNames"][0])
        words = self._words(decided)
        uid = str(_meta(pod).get("uid") or "")
        bound = self.bind(BindArgs(pod_name=name, pod_namespace=namespace, pod_uid=uid, node=node))
        if bound.get("Error"):
            self._forget(namespace, name)
            return done("bind-failed", f"bind to {node} failed: {bound['Error']}", devices=words)
        pod = self.cluster.get_pod(namespace, name)
        self.kube.count(pod, node)
        try:
            containers = self._allocate(pod, node, decided)
        except _AllocateFailed as exc:
            failed_pod = self.cluster.update_status(
                "pods",
                name,
                {"phase": "Failed", "reason": "UnexpectedAdmissionError", "message": str(exc)},
                namespace=namespace,
            )
            self._observe(failed_pod)
            self.kube.count(pod, node, -1)
            return done("allocate-failed", f"Allocate failed: {exc}", node=node, devices=words)
        running = self.cluster.update_status(
            "pods", name, {**(pod.get("status") or {}), "phase": "Running"}, namespace=namespace
        )
        self._observe(running)
        return done("scheduled", node=node, devices=words, containers=tuple(containers))

    def run(
        self, pods: Iterable[WorkloadPod], progress: Progress | None = None
    ) -> SimulationResult:
        """Schedule every pod in order (calling `progress` after each) and report."""
        for item in pods:
            try:
                outcome = self.step(item)
            except Exception as exc:  # an unexpected fault ends this pod, not the run
                log.debug("pod %s failed unexpectedly", item.source, exc_info=True)
                meta = _meta(item.pod)
                outcome = PodOutcome(
                    str(meta.get("namespace") or "default"),
                    str(meta.get("name") or ""),
                    item.source,
                    "error",
                    reason=f"simulation error: {type(exc).__name__}: {exc}",
                )
                self._outcomes.append(outcome)
            if progress is not None:
                progress(outcome)
        return self.result()

    def result(self) -> SimulationResult:
        """The outcomes so far and every card's fill now."""
        nodes: dict[str, tuple[CardFill, ...]] = {}
        errors: dict[str, str] = {}
        with self.cache.locked():
            for name in self.cache.node_names():
                state = self.cache.node(name)
                if state is None:
                    continue
                cards: list[CardFill] = []
                for vendor in sorted(state.vendors):
                    for d in state.vendors[vendor].devices:
                        cards.append(
                            CardFill(
                                node=name,
                                vendor=vendor,
                                id=d.id,
                                index=d.index,
                                type=d.type,
                                used=d.used,
                                count=d.count,
                                usedmem=d.usedmem,
                                totalmem=d.totalmem,
                                usedcores=d.usedcores,
                                totalcores=d.totalcore,
                                health=d.health and vendor not in state.unhealthy,
                            )
                        )
                nodes[name] = tuple(cards)
                if state.errors:
                    errors[name] = "; ".join(state.errors[v] for v in sorted(state.errors))
        warnings = [*self.inventory.warnings]
        warnings.extend(f"node {n}: {e}" for n, e in errors.items())
        return SimulationResult(
            pods=tuple(self._outcomes), nodes=nodes, warnings=tuple(warnings), node_errors=errors
        )


def simulate(
    inventory: str,
    workloads: Sequence[str] = (),
    *,
    registry: VendorRegistry,
    config: Mapping[str, Any] | None = None,
    node_policy: str = "binpack",
    gpu_policy: str = "spread",
    seed: int = 0,
    progress: Progress | None = None,
) -> SimulationResult:
    """Read the inventory and workload files and run them (the `hami simulate` pipeline).

    Raises `InputError` for a bad file and `ProtocolError` for an unknown policy.
    """
    inv = load_inventory(inventory, registry, config, seed=seed)
    pods = load_workloads(workloads)
    simulator = Simulator(registry, config, inv, node_policy=node_policy, gpu_policy=gpu_policy)
    return simulator.run(pods, progress)
