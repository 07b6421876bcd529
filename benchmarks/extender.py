"""Filter + bind throughput of the extender over HTTP, against a baseline of direct calls.

A server process builds an in-memory cluster (`MemoryCluster`) of N nodes with G GPUs each
(80 GiB, split 10, registered as HAMi's NVIDIA device plugin writes them) and R running pods,
and starts the scheduler service on it (informer, usage cache, leader election, register loop).
Each node's device plugin is played inside the cluster: the moment a pod is bound it is marked
`bind-phase: success` and its node lock released, so the next pod placed there can bind.

Per mode, W warm-up pods (unmeasured) and then S series of P new pods, one after the other as
kube-scheduler's scheduling loop sends them (the candidate lists are drawn before the clock
starts: kube-scheduler's own filtering is not what is measured):

* baseline: in the server process, the service's filter and bind handlers called directly;
* http: from this process (kube-scheduler's place), POST `/filter` with Go-cased
  `ExtenderArgs` (C candidate node names) and POST `/bind` with `ExtenderBindingArgs` to the
  service served by uvicorn on a loopback port, over a keep-alive connection with TCP_NODELAY
  (as Go's net package sets it), written and read straight on the socket so the client's own
  cost stays small next to the server's (it still shares the machine's cores with it).

Prints, for the median series of each mode, pods/s (wall clock over the series) and per CPU
second of the server process (all its threads: handlers, HTTP, informer, events), filter and
bind latency percentiles, and the engine's mean share of a filter (`Engine.schedule` timed in
the server); then every series' rate and the ratio. The server runs with the garbage-collector
settings of `hami scheduler`. Goal at `--nodes 1000`: >= 500 pods/s over HTTP.

Run: `python benchmarks/extender.py [--nodes 1000] [--gpus 8] [--running 2000] [--pods 1000]
[--repeat 3] [--warmup 300] [--candidates 100] [--shapes 1]` (`--candidates 0` sends every
node, as kube-scheduler does when it finds every node feasible in a small cluster; `--shapes 0`
gives every pod a shape of its own, so no memo helps).
"""

from __future__ import annotations

import argparse
import gc
import multiprocessing
import random
import socket
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any
from urllib.parse import urlsplit

import orjson

from hami_core import hookimpl
from hami_core.k8s.memory import MemoryCluster
from hami_core.model import AnnotationKeys, ResourceNames, VendorSpec
from hami_core.nodelock import release_node_lock
from hami_core.plugins import VendorRegistry, load_vendors
from hami_core.protocol import ContainerDevice, DeviceInfo, encode_node_devices, encode_pod_devices
from hami_core.protocol.keys import BIND_PHASE, BIND_PHASE_SUCCESS
from hami_core.scheduler import SchedulerService, SchedulerSettings
from hami_core.scheduler.command import GC_THRESHOLDS
from hami_core.scheduler.wire import parse_bind_args, parse_filter_args

GOAL_PODS_PER_S = 500.0
CARD_MIB = 81559
SPLIT = 10
NAMESPACE = "bench"

SPEC = VendorSpec(
    key="nvidia",
    common_word="NVIDIA",
    resources=ResourceNames(
        count="nvidia.com/gpu",
        memory="nvidia.com/gpumem",
        memory_percentage="nvidia.com/gpumem-percentage",
        cores="nvidia.com/gpucores",
    ),
    annotations=AnnotationKeys(
        node_register="hami.io/node-nvidia-register",
        handshake="hami.io/node-handshake",
        to_allocate="hami.io/vgpu-devices-to-allocate",
        allocated="hami.io/vgpu-devices-allocated",
    ),
    register_format="json",
    mounting="runtime",
    advertised=("nvidia.com/gpu",),
    exclusive_by_default=True,
)


class NvidiaLike:
    """A vendor with NVIDIA's names whose rules are hami's generic ones."""

    @hookimpl
    def hami_vendor(self) -> VendorSpec:
        """The NVIDIA-like spec."""
        return SPEC


def registry() -> VendorRegistry:
    """A registry with only the NVIDIA-like vendor."""
    return load_vendors(environ={}, entry_points_=[], plugins=[("nvidia", NvidiaLike())])


class InstantDevicePlugins(MemoryCluster):
    """A cluster whose nodes' device plugins allocate a pod the moment it is bound."""

    def bind_pod(self, namespace: str, name: str, uid: str | None, node: str) -> None:
        """Bind, then do what the node's device plugin does once Allocate is done."""
        super().bind_pod(namespace, name, uid, node)
        self.patch_pod_metadata(namespace, name, annotations={BIND_PHASE: BIND_PHASE_SUCCESS})
        release_node_lock(self, node, namespace, name)


def card_ids(i: int, gpus: int) -> list[str]:
    """The UUIDs of node i's cards."""
    return [f"GPU-{i:08x}-{g:04x}-4e5f-8a9b-{i * gpus + g:012x}" for g in range(gpus)]


def node_obj(i: int, gpus: int) -> dict[str, Any]:
    """Node i with its register annotation and allocatable GPUs."""
    cards = [
        DeviceInfo(
            id=uuid,
            index=g,
            count=SPLIT,
            devmem=CARD_MIB,
            devcore=100,
            type="NVIDIA-NVIDIA H100 80GB HBM3",
            numa=g * 2 // gpus,
            mode="hami-core",
            health=True,
        )
        for g, uuid in enumerate(card_ids(i, gpus))
    ]
    count = str(gpus * SPLIT)
    return {
        "metadata": {
            "name": f"node-{i:05d}",
            "annotations": {"hami.io/node-nvidia-register": encode_node_devices(cards)},
        },
        "status": {"capacity": {"nvidia.com/gpu": count}, "allocatable": {"nvidia.com/gpu": count}},
    }


def running_pod(i: int, node: int, gpus: int, rng: random.Random) -> dict[str, Any]:
    """A running pod holding a 4000 MiB, 10 % share of one of node `node`'s cards."""
    share = ContainerDevice(rng.choice(card_ids(node, gpus)), "NVIDIA", 4000, 10)
    value = encode_pod_devices([[share]])
    name = f"node-{node:05d}"
    return {
        "metadata": {
            "name": f"run-{i}",
            "namespace": NAMESPACE,
            "annotations": {
                "hami.io/vgpu-node": name,
                "hami.io/vgpu-devices-to-allocate": "",
                "hami.io/vgpu-devices-allocated": value,
                BIND_PHASE: BIND_PHASE_SUCCESS,
            },
        },
        "spec": {"nodeName": name, "containers": [{"name": "main"}]},
        "status": {"phase": "Running"},
    }


def new_pod(name: str, shape: int = 0) -> dict[str, Any]:
    """A pending pod asking for one 4000 MiB (plus `shape` MiB), 20 % share."""
    memory = str(4000 + shape)
    limits = {"nvidia.com/gpu": "1", "nvidia.com/gpumem": memory, "nvidia.com/gpucores": "20"}
    return {
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "schedulerName": "hami-scheduler",
            "containers": [{"name": "main", "image": "train", "resources": {"limits": limits}}],
        },
    }


@dataclass
class Series:
    """One measured series: wall seconds for all pods, per-call latencies (s), and the server
    process's CPU seconds over the series."""

    seconds: float
    filters: list[float]
    binds: list[float]
    cpu: float = 0.0

    def rate(self) -> float:
        """Pods per second (wall clock)."""
        return len(self.filters) / self.seconds

    def capacity(self) -> float:
        """Pods per second of the server process's CPU time (all its threads)."""
        return len(self.filters) / self.cpu if self.cpu > 0 else float("nan")

    def line(self, label: str, engine_ms: float) -> str:
        """One printed line of figures."""
        return (
            f"{label:>24}: {self.rate():6.1f} pods/s ({self.capacity():6.1f} per server CPU "
            f"second) | filter p50 {pct(self.filters, 0.5):5.2f} "
            f"ms p99 {pct(self.filters, 0.99):6.2f} ms (engine mean {engine_ms:5.2f} ms) | "
            f"bind p50 {pct(self.binds, 0.5):5.2f} ms p99 {pct(self.binds, 0.99):6.2f} ms"
        )


def pct(samples: Sequence[float], q: float) -> float:
    """The q-quantile in milliseconds."""
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] * 1000


Call = Callable[[dict[str, Any]], dict[str, Any]]
Pods = list[dict[str, Any]]


def run_series(
    pods: Sequence[dict[str, Any]], candidates: Callable[[], list[str]], filt: Call, bind: Call
) -> Series:
    """Filter and bind each pod in turn, as kube-scheduler's scheduling loop does."""
    filters: list[float] = []
    binds: list[float] = []
    # kube-scheduler's own node filtering is not what is measured: draw the lists first
    drawn = [candidates() for _ in pods]
    start = time.perf_counter()
    for pod, nodes in zip(pods, drawn, strict=True):
        meta = pod["metadata"]
        t0 = time.perf_counter()
        result = filt({"Pod": pod, "Nodes": None, "NodeNames": nodes})
        t1 = time.perf_counter()
        assert not result["Error"] and result["NodeNames"], result
        args = {
            "PodName": meta["name"],
            "PodNamespace": NAMESPACE,
            "PodUID": meta["uid"],
            "Node": result["NodeNames"][0],
        }
        answer = bind(args)
        t2 = time.perf_counter()
        assert answer == {"Error": ""}, answer
        filters.append(t1 - t0)
        binds.append(t2 - t1)
    return Series(time.perf_counter() - start, filters, binds)


def sampler(names: list[str], size: int, seed: int) -> Callable[[], list[str]]:
    """Candidate lists of `size` names (every node when `size` covers them all)."""
    rng = random.Random(seed)
    if size >= len(names):
        return lambda: names
    return lambda: rng.sample(names, size)


def series_pods(cluster: MemoryCluster, label: str, args: argparse.Namespace) -> list[Pods]:
    """Fresh pending pods: the warm-up batch, then one batch per measured series."""
    sizes = [args.warmup] + [args.pods] * args.repeat

    shapes, per_batch = int(args.shapes), int(args.pods)

    def shape(batch: int, i: int) -> int:  # --shapes 0: every pod its own
        n = batch * per_batch + i
        return n % shapes if shapes > 0 else n

    return [
        [cluster.add_pod(new_pod(f"{label}-{b}-{i}", shape(b, i))) for i in range(size)]
        for b, size in enumerate(sizes)
    ]


def server(conn: Connection, args: argparse.Namespace) -> None:
    """The server process: cluster, service, the direct series, then HTTP until told to stop."""
    rng = random.Random(args.seed)
    cluster = InstantDevicePlugins(history_limit=1000)
    for i in range(args.nodes):
        cluster.add_node(node_obj(i, args.gpus))
    for i in range(args.running):
        cluster.add_pod(running_pod(i, rng.randrange(args.nodes), args.gpus, rng))
    names = [f"node-{i:05d}" for i in range(args.nodes)]
    size = args.nodes if args.candidates <= 0 else min(args.candidates, args.nodes)

    settings = SchedulerSettings(identity="bench", register_interval=3600.0)
    service = SchedulerService(cluster, registry(), {}, settings)
    service.start()
    assert service.informer.wait_synced(120), "the caches did not sync"
    gc.set_threshold(*GC_THRESHOLDS)  # as `hami scheduler` runs
    gc.freeze()  # as `hami scheduler` does once its caches are filled

    engine: list[float] = []
    schedule = service.engine.schedule

    def timed_schedule(*a: Any, **kw: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return schedule(*a, **kw)
        finally:
            engine.append(time.perf_counter() - t0)

    service.engine.schedule = timed_schedule  # type: ignore[method-assign]

    warmup, *batches = series_pods(cluster, "direct", args)
    candidates = sampler(names, size, args.seed)

    def filt(body: dict[str, Any]) -> dict[str, Any]:
        return service.filter(parse_filter_args(orjson.loads(orjson.dumps(body))))

    def bind(body: dict[str, Any]) -> dict[str, Any]:
        return service.bind(parse_bind_args(body))

    run_series(warmup, candidates, filt, bind)
    engine.clear()
    direct = []
    for batch in batches:
        cpu = time.process_time()
        done = run_series(batch, candidates, filt, bind)
        done.cpu = time.process_time() - cpu
        direct.append(done)
    direct_engine = statistics.mean(engine) * 1000
    http_batches = series_pods(cluster, "http", args)
    with service.serve_in_thread() as running:
        conn.send((running.url, http_batches, names, size))
        conn.recv()  # the client's warm-up is done
        engine.clear()
        cpu = time.process_time()
        conn.recv()  # the client is done
        http_cpu = time.process_time() - cpu
    conn.send((direct, direct_engine, statistics.mean(engine) * 1000, http_cpu))
    service.stop()


def median_series(runs: Sequence[Series]) -> Series:
    """The series with the median rate (the middle one of an odd count)."""
    return sorted(runs, key=Series.rate)[len(runs) // 2]


class ExtenderClient:
    """kube-scheduler's side of the wire: one keep-alive HTTP/1.1 connection with TCP_NODELAY
    (as Go's net/http keeps them), JSON bodies, any status but 200 an error.

    The requests are written and the responses read straight on the socket (a status line,
    headers, a `Content-Length` body: what uvicorn answers), so the client costs about what
    kube-scheduler's Go client does and the figure is the server's, not Python's http.client
    header parsing (which took a fifth of the wall time)."""

    def __init__(self, url: str) -> None:
        address = urlsplit(url)
        host, port = address.hostname or "", address.port or 80
        self.host = f"{host}:{port}".encode()
        self.sock = socket.create_connection((host, port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.pending = b""

    def __enter__(self) -> ExtenderClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.sock.close()

    def call(self, method: str, path: str, body: bytes = b"") -> bytes:
        """One request; the response body (asserting HTTP 200)."""
        head = f"{method} {path} HTTP/1.1\r\nContent-Length: {len(body)}\r\n".encode()
        kind = b"Content-Type: application/json\r\n" if body else b""
        self.sock.sendall(head + b"Host: " + self.host + b"\r\n" + kind + b"\r\n" + body)
        data = self.pending
        while b"\r\n\r\n" not in data:
            data += self._recv()
        header, _, data = data.partition(b"\r\n\r\n")
        lines = header.split(b"\r\n")
        status = int(lines[0].split(b" ", 2)[1])
        fields = dict(line.split(b":", 1) for line in lines[1:])
        length = int({k.strip().lower(): v for k, v in fields.items()}[b"content-length"])
        while len(data) < length:
            data += self._recv()
        self.pending = data[length:]
        assert status == 200, (status, data[:length])
        return data[:length]

    def _recv(self) -> bytes:
        chunk = self.sock.recv(1 << 16)
        assert chunk, "the server closed the connection"
        return chunk

    def verb(self, name: str) -> Call:
        """A call of one extender verb: POST the Go-cased arguments, decode the answer."""

        def call(body: dict[str, Any]) -> dict[str, Any]:
            result: dict[str, Any] = orjson.loads(self.call("POST", f"/{name}", orjson.dumps(body)))
            return result

        return call


def main() -> None:
    """Start the server process, run the HTTP series from here, print figures and the goal."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--gpus", type=int, default=8)
    parser.add_argument("--running", type=int, default=2000, help="pods already running")
    parser.add_argument("--pods", type=int, default=1000, help="pods scheduled per series")
    parser.add_argument(
        "--repeat", type=int, default=3, help="measured series per mode (the median is shown)"
    )
    parser.add_argument(
        "--warmup", type=int, default=300, help="pods scheduled, unmeasured, before each mode"
    )
    parser.add_argument(
        "--candidates", type=int, default=100, help="node names per filter (0: every node)"
    )
    parser.add_argument(
        "--shapes",
        type=int,
        default=1,
        help="distinct pod shapes (memory asks) the pods cycle through (0: every pod its own)",
    )
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe()
    process = context.Process(target=server, args=(theirs, args), daemon=True)
    process.start()
    url, (warmup, *batches), names, size = ours.recv()
    print(
        f"cluster: {args.nodes} nodes x {args.gpus} GPUs, {args.running} running pods; "
        f"{args.warmup} warm-up pods, then {args.repeat} series of {args.pods} pods per mode; "
        f"{size} candidate nodes per filter; "
        + (f"{args.shapes} pod shape(s)" if args.shapes > 0 else "every pod a shape of its own")
    )
    candidates = sampler(names, size, args.seed + 1)
    with ExtenderClient(url) as client:
        client.call("GET", "/healthz")
        filt, bind = client.verb("filter"), client.verb("bind")
        run_series(warmup, candidates, filt, bind)
        ours.send("warm")
        http = [run_series(batch, candidates, filt, bind) for batch in batches]
    ours.send("done")
    direct, direct_engine, http_engine, http_cpu = ours.recv()
    process.join(30)

    for run in http:  # the server's CPU over all HTTP series, shared out by wall time
        run.cpu = http_cpu * run.seconds / sum(r.seconds for r in http)
    best_direct, over_http = median_series(direct), median_series(http)
    print(best_direct.line("baseline (direct calls)", direct_engine))
    print(over_http.line("http (uvicorn)", http_engine))
    print(
        "http series: "
        + ", ".join(f"{r.rate():.0f}" for r in http)
        + " pods/s; direct series: "
        + ", ".join(f"{r.rate():.0f}" for r in direct)
        + " pods/s"
    )
    print(
        f"http / direct: {over_http.rate() / best_direct.rate():.2f}x wall, "
        f"{over_http.capacity() / best_direct.capacity():.2f}x per server CPU second"
    )
    verdict = "yes" if over_http.rate() >= GOAL_PODS_PER_S else "no"
    print(f"goal: >= {GOAL_PODS_PER_S:.0f} pods/s over HTTP at {args.nodes} nodes: {verdict}")


if __name__ == "__main__":
    main()
