"""One node's whole stack for the attribution, fault and security suites.

`Plant` runs, against one store: a scheduler replica (a real `SchedulerService`; its informer
watches the store, its filter and bind are called as kube-scheduler calls them), and one node
running the real `DevicePluginNode` (node agent + device plugin over gRPC) for the installed
example vendor, registered with a `FakeKubelet`. The kubelet's `Allocate` calls go over the
plugin's Unix socket. The cards are described in a JSON file named by `HAMI_EXAMPLE_DEVICES`,
the example vendor's stand-in for a management library.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import grpc
from rel_kit import ALLOCATED, NS, XPU, eventually, example_registry, notes_of, read_shares

from hami_core.deviceplugin.node import DevicePluginNode
from hami_core.k8s.cluster import Cluster, Obj
from hami_core.scheduler import SchedulerService, SchedulerSettings
from hami_core.scheduler.decisions import decision_keys, usage_view
from hami_core.scheduler.wire import parse_bind_args, parse_filter_args
from hami_core.scheduling.cache import UsageCache
from hami_core.testing import FakeKubelet

NODE = "node-a"


def write_cards(path: Path, cards: int, memory: int = 64000) -> Path:
    """The example vendor's device file: `cards` cards of `memory` MiB."""
    path.write_text(
        json.dumps(
            [{"uuid": f"XPU-{i}", "model": "XPU-1", "memory_mib": memory} for i in range(cards)]
        )
    )
    return path


@dataclass(frozen=True, slots=True)
class Served:
    """What one `Allocate` gave one container: card UUIDs and per-card memory limits."""

    devices: tuple[str, ...]
    memory: tuple[str, ...]


def expected(pod: Obj, index: int) -> Served:
    """What container `index` of `pod` must be served, read from its allocated annotation."""
    shares = read_shares(notes_of(pod).get(ALLOCATED, ""))[index]
    return Served(tuple(s.uuid for s in shares), tuple(f"{s.memory}m" for s in shares))


class Plant:
    """A scheduler replica and one device-plugin node over `scheduler_cluster` and
    `plugin_cluster` (which may be the same object)."""

    def __init__(
        self,
        service: SchedulerService,
        node: DevicePluginNode,
        kubelet: FakeKubelet,
    ) -> None:
        self.service = service
        self.node = node
        self.kubelet = kubelet

    def filter(self, pod: Obj, nodes: Sequence[str] = (NODE,)) -> Obj:
        """kube-scheduler's `/filter` call for `pod` (as read from the store now)."""
        return self.service.filter(
            parse_filter_args({"Pod": pod, "Nodes": None, "NodeNames": list(nodes)})
        )

    def bind(self, pod: Obj, node: str = NODE) -> str:
        """kube-scheduler's `/bind` call; returns the `Error` ("" when bound)."""
        meta = pod["metadata"]
        args = {
            "PodName": meta["name"],
            "PodNamespace": meta.get("namespace", NS),
            "PodUID": meta.get("uid", ""),
            "Node": node,
        }
        return str(self.service.bind(parse_bind_args(args))["Error"])

    def schedule(self, cluster: Cluster, name: str) -> str:
        """Filter then bind pod `name`; "" when bound, else why not."""
        result = self.filter(cluster.get_pod(NS, name))
        if not result.get("NodeNames"):
            return str(result.get("Error") or result.get("FailedNodes"))
        return self.bind(cluster.get_pod(NS, name), result["NodeNames"][0])

    def ids(self, count: int, offset: int = 0) -> list[str]:
        """`count` of the kubelet's device IDs for the resource (any will do: the scheduler's
        annotation decides the cards)."""
        listed = [d.id for d in self.kubelet.devices(XPU)]
        return [listed[(offset + i) % len(listed)] for i in range(count)]

    def allocate(self, count: int, offset: int = 0) -> Served | str:
        """The kubelet's `Allocate` for one container of `count` devices, over gRPC; the
        served devices, or the refusal's gRPC code name."""
        try:
            response = self.kubelet.allocate(XPU, self.ids(count, offset))
        except grpc.RpcError as exc:
            return str(exc.code().name)
        envs = dict(response.envs)
        devices = tuple(d for d in envs.get("EXAMPLE_VISIBLE_DEVICES", "").split(",") if d)
        memory = tuple(envs.get(f"EXAMPLE_MEMORY_LIMIT_{i}", "") for i in range(len(devices)))
        return Served(devices, memory)


def fast_settings(**overrides: object) -> SchedulerSettings:
    """Scheduler settings for tests: quick sync, no periodic passes in the way."""
    values: dict[str, object] = {
        "identity": "reliability",
        "sync_timeout": 5.0,
        "register_interval": 3600.0,
        "resync_period": 3600.0,
    }
    values.update(overrides)
    return SchedulerSettings(**values)  # type: ignore[arg-type]


@contextmanager
def plant(
    scheduler_cluster: Cluster,
    plugin_cluster: Cluster,
    devices_file: Path,
    *,
    settings: SchedulerSettings | None = None,
    plugin_dir: Path | None = None,
) -> Iterator[Plant]:
    """Start the node (agent, plugin, kubelet) and the scheduler replica; stop them after."""
    registry = example_registry()
    previous = os.environ.get("HAMI_EXAMPLE_DEVICES")
    os.environ["HAMI_EXAMPLE_DEVICES"] = str(devices_file)
    kubelet = FakeKubelet(plugin_dir).start()
    node = DevicePluginNode(
        plugin_cluster,
        registry,
        NODE,
        plugin_dir=kubelet.plugin_dir,
        interval=3600.0,
        health_interval=3600.0,
        poll=0.05,
    )
    service = SchedulerService(scheduler_cluster, registry, None, settings or fast_settings())
    try:
        node.start()
        kubelet.wait_registered(XPU)
        kubelet.wait_devices(XPU)
        service.informer.start()
        assert service.informer.wait_synced(10.0), "the scheduler's caches did not sync"

        def registered() -> bool:
            with service.cache.locked():
                state = service.cache.node(NODE)
                return state is not None and state.registered()

        eventually(registered, what="the node's cards in the scheduler's cache")
        yield Plant(service, node, kubelet)
    finally:
        service.informer.stop(timeout=2.0)
        node.stop()
        kubelet.stop()
        if previous is None:
            os.environ.pop("HAMI_EXAMPLE_DEVICES", None)
        else:
            os.environ["HAMI_EXAMPLE_DEVICES"] = previous


def wait_seen(service: SchedulerService, cluster: Cluster, timeout: float = 5.0) -> None:
    """Block until the replica's cache counts exactly what the store's pods hold (its watch
    caught up with every pod decision)."""
    keys = decision_keys(service.registry.specs())

    def caught_up() -> bool:
        nodes = cluster.list_nodes()
        pods = [usage_view(p, keys) for p in cluster.list_pods()]
        fresh = UsageCache.rebuild(service.registry, None, nodes, pods).snapshot()
        have = service.cache.snapshot()
        return have.nodes == fresh.nodes

    eventually(caught_up, timeout, "the scheduler's cache to match the store")
