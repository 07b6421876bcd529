"""Test kit for the device plugin: a test vendor plugin, pods as the scheduler leaves them, and
a running node (agent + plugins) wired to a fake kubelet.

`TestGpu` is a complete vendor plugin as a third party would write one (spec, discover, mount;
split and annotate come from hami's generic rules). Its cards live in memory so tests can make
one disappear or turn unhealthy.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from hami_core import hookimpl
from hami_core.deviceplugin.node import DevicePluginNode
from hami_core.k8s.cluster import Cluster, Obj
from hami_core.model import (
    AnnotationKeys,
    ContainerAllocation,
    ContainerDevice,
    ContainerRuntimeSpec,
    Device,
    DeviceInfo,
    DeviceNode,
    Mount,
    ResourceNames,
    VendorSpec,
    VendorUnavailable,
)
from hami_core.nodelock import lock_node
from hami_core.plugins import VendorRegistry, load_vendors
from hami_core.protocol import encode_pod_devices
from hami_core.protocol.keys import BIND_PHASE, BIND_TIME, NODE_LOCK
from hami_core.testing.fake_kubelet import FakeKubelet

NODE = "node-a"
NS = "default"


MEMORY_UNIT_MIB = 1024
"""One unit of the test vendor's memory resource, when it advertises it."""


def spec_for(
    key: str,
    *,
    advertised: Sequence[str] | None = None,
    keys: Mapping[str, str] | None = None,
) -> VendorSpec:
    """The test vendor's spec under `key`: resources `example.com/<key>` (count),
    `example.com/<key>-mem` and `example.com/<key>-cores`; the count is the only advertised
    resource unless `advertised` says otherwise; `keys` overrides annotation keys (e.g.
    `assigned_node`, `bind_phase`, `node_lock`)."""
    return VendorSpec(
        key=key,
        common_word=key.upper(),
        resources=ResourceNames(
            count=f"example.com/{key}",
            memory=f"example.com/{key}-mem",
            cores=f"example.com/{key}-cores",
        ),
        annotations=AnnotationKeys(
            node_register=f"hami.io/node-{key}-register",
            to_allocate=f"hami.io/{key}-devices-to-allocate",
            allocated=f"hami.io/{key}-devices-allocated",
            **dict(keys or {}),
        ),
        register_format="json",
        mounting="builtin",
        advertised=tuple(advertised) if advertised is not None else (f"example.com/{key}",),
        default_split=4,
    )


def card(key: str, index: int, *, memory: int = 16384, numa: int = 0) -> Device:
    """A card of vendor `key`: UUID `<KEY>-<index>`, device node `/dev/<key><index>`."""
    return Device(
        vendor=key,
        uuid=f"{key.upper()}-{index:04d}",
        index=index,
        model=f"{key.upper()}-T{index % 2}",
        memory_mib=memory,
        numa=numa,
        paths=(f"/dev/{key}{index}",),
    )


@dataclass
class TestGpu:
    """A vendor plugin: discovers `cards` (or raises `VendorUnavailable(unavailable)`), and
    mounts each container's cards as device nodes plus env naming them."""

    __test__ = False  # not a test class

    key: str = "testgpu"
    cards: list[Device] = field(default_factory=list)
    unavailable: str | None = None
    mount_error: str | None = None
    mount_delay: float = 0.0
    mounts: list[ContainerAllocation] = field(default_factory=list)
    advertised: tuple[str, ...] | None = None
    """Resource names served to the kubelet (default: the count resource only)."""
    keys: Mapping[str, str] = field(default_factory=dict)
    """Annotation keys that differ from HAMi's (see `spec_for`)."""
    configs: list[Mapping[str, Any]] = field(default_factory=list)
    """The device config each `hami_discover` call was given."""

    @classmethod
    def from_env(cls) -> TestGpu:
        """Built from `$TESTGPU_CARDS` (a card count, or `unavailable:<why>`)."""
        value = os.environ.get("TESTGPU_CARDS", "2")
        if value.startswith("unavailable:"):
            return cls(unavailable=value.split(":", 1)[1])
        return cls(cards=[card("testgpu", i) for i in range(int(value))])

    @property
    def spec(self) -> VendorSpec:
        """This vendor's spec."""
        return spec_for(self.key, advertised=self.advertised, keys=self.keys)

    @property
    def resources(self) -> tuple[str, str, str]:
        """(count, memory, cores) resource names."""
        names = self.spec.resources
        assert names.memory is not None and names.cores is not None
        return names.count, names.memory, names.cores

    @hookimpl
    def hami_vendor(self) -> VendorSpec:
        """This vendor's spec."""
        return self.spec

    @hookimpl
    def hami_discover(self, spec: VendorSpec, config: Mapping[str, Any]) -> list[Device] | None:
        """The cards, or `VendorUnavailable` when set so."""
        if spec.key != self.key:
            return None
        self.configs.append(config)
        if self.unavailable is not None:
            raise VendorUnavailable(self.key, self.unavailable)
        return list(self.cards)

    @hookimpl
    def hami_advertise(self, spec: VendorSpec, resource: str, device: DeviceInfo) -> int | None:
        """One memory unit per `MEMORY_UNIT_MIB`, one core unit per core percent; the split
        count (generic rule) for the count resource."""
        if spec.key != self.key:
            return None
        if resource == spec.resources.memory:
            return device.devmem // MEMORY_UNIT_MIB
        if resource == spec.resources.cores:
            return device.devcore
        return None

    @hookimpl
    def hami_mount(self, allocation: ContainerAllocation) -> ContainerRuntimeSpec | None:
        """Env naming the cards, library and cache mounts, the cards' device nodes."""
        if allocation.vendor != self.key:
            return None
        if self.mount_error is not None:
            raise RuntimeError(self.mount_error)
        self.mounts.append(allocation)
        time.sleep(self.mount_delay)
        prefix = self.key.upper()
        envs = {
            f"{prefix}_VISIBLE_DEVICES": ",".join(d.uuid for d in allocation.devices),
            f"{prefix}_CONTAINER": allocation.container,
            f"{prefix}_CORE_LIMIT": str(allocation.devices[0].usedcores),
        }
        for i, d in enumerate(allocation.devices):
            envs[f"{prefix}_MEMORY_LIMIT_{i}"] = f"{d.usedmem}m"
        mounts = [
            Mount(container_path=f"/usr/local/{self.key}/lib.so", host_path=f"/opt/{self.key}.so"),
            Mount(
                container_path=f"/usr/local/{self.key}/cache",
                host_path=f"/var/cache/{self.key}/{allocation.pod_uid}_{allocation.container}",
                read_only=False,
            ),
        ]
        if allocation.container_env.get("DISABLE_CONTROL") != "true":
            mounts.append(
                Mount(container_path="/etc/ld.so.preload", host_path=f"/opt/{self.key}.preload")
            )
        nodes: list[DeviceNode] = []
        for d in allocation.devices:
            phys = allocation.physical(d.uuid)
            if phys is not None:
                nodes.extend(DeviceNode(container_path=p, host_path=p) for p in phys.paths)
        return ContainerRuntimeSpec(
            envs=envs,
            mounts=tuple(mounts),
            devices=tuple(nodes),
            cdi_devices=tuple(f"example.com/{self.key}={d.uuid}" for d in allocation.devices),
        )


def make_registry(*vendors: TestGpu) -> VendorRegistry:
    """A registry holding exactly these test vendors (plus hami's generic rules)."""
    return load_vendors(environ={}, entry_points_=[], plugins=[(v.key, v) for v in vendors])


def share(vendor: TestGpu, index: int, mem: int = 1000, cores: int = 25) -> ContainerDevice:
    """The share of card `index` the scheduler assigned."""
    return ContainerDevice(vendor.cards[index].uuid, vendor.spec.common_word, mem, cores)


def container(
    name: str,
    vendor_key: str | None = None,
    count: int = 1,
    *,
    limits: Mapping[str, int] | None = None,
    **env: str,
) -> Obj:
    """A container spec, asking for `count` cards of `vendor_key` when given, plus `limits`."""
    wanted = {f"example.com/{vendor_key}": str(count)} if vendor_key else {}
    wanted.update({k: str(v) for k, v in (limits or {}).items()})
    return {
        "name": name,
        "image": "busybox",
        "resources": {"limits": wanted},
        "env": [{"name": k, "value": v} for k, v in env.items()],
    }


def scheduled_pod(
    name: str,
    decisions: Mapping[str, Sequence[Sequence[ContainerDevice]]],
    *,
    containers: Sequence[Obj],
    init_containers: Sequence[Obj] = (),
    node: str = NODE,
    assigned: str | None = None,
    phase: str = "Pending",
    bound: bool = True,
    specs: Sequence[VendorSpec] = (),
) -> Obj:
    """A pod as hami's filter leaves it: decision annotations per vendor key (one entry per
    container, init first) and the assigned-node annotation (`hami.io/vgpu-node`, or the key of
    the vendor's spec in `specs`); already bound to `node` unless `bound` is False (then `bind`
    creates the Binding)."""
    given = {s.key: s for s in specs}
    annotations: dict[str, str] = {}
    for key, per_container in decisions.items():
        value = encode_pod_devices(per_container)
        spec = given.get(key) or spec_for(key)
        annotations[spec.annotations.assigned_node] = assigned or node
        assert spec.annotations.to_allocate is not None
        annotations[spec.annotations.to_allocate] = value
        annotations[spec.annotations.allocated] = value
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": NS, "annotations": annotations},
        "spec": {
            **({"nodeName": node} if bound else {}),
            "schedulerName": "hami-scheduler",
            "initContainers": list(init_containers),
            "containers": list(containers),
        },
        "status": {"phase": phase},
    }


def bind(
    cluster: Cluster,
    name: str,
    *,
    node: str = NODE,
    lock: bool = True,
    spec: VendorSpec | None = None,
) -> None:
    """What the scheduler's bind does after filter: node lock, `bind-phase: allocating`, and
    the Binding when the pod is not bound yet (with `spec`'s keys when given, else HAMi's)."""
    keys = spec.annotations if spec is not None else None
    if lock:
        lock_node(cluster, node, NS, name, key=keys.node_lock if keys else NODE_LOCK)
    phase, stamp = (keys.bind_phase, keys.bind_time) if keys else (BIND_PHASE, BIND_TIME)
    pod = cluster.patch_pod_metadata(
        NS, name, annotations={phase: "allocating", stamp: str(int(time.time()))}
    )
    if not pod["spec"].get("nodeName"):
        cluster.bind_pod(NS, name, pod["metadata"].get("uid"), node)


def pod_annotations(cluster: Cluster, name: str) -> dict[str, str]:
    """The pod's annotations now."""
    return dict(cluster.get_pod(NS, name)["metadata"].get("annotations") or {})


def node_annotations(cluster: Cluster, node: str = NODE) -> dict[str, str]:
    """The node's annotations now."""
    return dict(cluster.get_node(node)["metadata"].get("annotations") or {})


def replicas(kubelet: FakeKubelet, resource: str, uuid: str) -> list[str]:
    """The kubelet device IDs of one card."""
    return [d.id for d in kubelet.devices(resource) if d.id.startswith(uuid + "-")]


def eventually(check: Callable[[], bool], timeout: float = 5.0, what: str = "condition") -> None:
    """Poll `check` every 20 ms until it is true; fail after `timeout` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.02)
    raise AssertionError(f"{what} not reached within {timeout} s")


@contextmanager
def running_node(
    cluster: Cluster,
    registry: VendorRegistry,
    *,
    config: Mapping[str, Any] | None = None,
    node: str = NODE,
) -> Iterator[tuple[DevicePluginNode, FakeKubelet]]:
    """A fake kubelet and the node's agent + device plugins, with short test intervals."""
    with FakeKubelet() as kubelet:
        dp = DevicePluginNode(
            cluster,
            registry,
            node,
            config=config,
            plugin_dir=kubelet.plugin_dir,
            interval=1.0,
            health_interval=0.1,
            poll=0.05,
        )
        dp.start()
        try:
            yield dp, kubelet
        finally:
            dp.stop()


def node_obj(name: str = NODE) -> Obj:
    """A bare Node object."""
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": {}}}


def dump(value: Any) -> str:
    """Stable JSON for comparisons in failure messages."""
    return json.dumps(value, sort_keys=True)
