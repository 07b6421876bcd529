"""`hami scheduler` (the extender and webhook service) and `hami scheduler print-config`."""

from __future__ import annotations

import argparse
import gc
import logging
import os
import re
import sys
import threading
from typing import Any

from hami_core.config import load_device_config
from hami_core.errors import ConfigError, VendorConflict
from hami_core.plugins import load_vendors
from hami_core.protocol import GPU_POLICIES, NODE_POLICIES, ProtocolError
from hami_core.scheduler.settings import DEFAULT_MAX_BODY_BYTES, SchedulerSettings

__all__ = [
    "add_commands",
    "parse_bind_address",
    "parse_duration",
    "run_print_config",
    "run_scheduler",
]

log = logging.getLogger(__name__)

_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(value: str) -> float:
    """Seconds from a Go duration (`5m`, `1h30m`, `28s`, `500ms`) or a plain number of seconds."""
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        pos, seconds = 0, 0.0
        for match in _DURATION.finditer(text):
            if match.start() != pos:
                break
            seconds += float(match.group(1)) * _UNITS[match.group(2)]
            pos = match.end()
        if pos != len(text) or not text:
            raise argparse.ArgumentTypeError(
                f"{value!r} is not a duration (examples: 300, 28s, 5m, 1h30m)"
            ) from None
    if seconds <= 0:
        raise argparse.ArgumentTypeError(f"{value!r}: a duration must be positive")
    return seconds


def _duration_or_zero(value: str) -> float:
    """`parse_duration`, also accepting 0 (`0`, `0s`)."""
    text = value.strip()
    if text in ("0", "0s", "0ms"):
        return 0.0
    return parse_duration(text)


def parse_bind_address(value: str) -> tuple[str, int]:
    """`host:port` (`[::1]:8080` for IPv6; an empty host means all interfaces)."""
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"{value!r}: expected host:port, e.g. 127.0.0.1:8080")
    host = host.strip("[]") or "0.0.0.0"
    return host, int(port)


def _positive_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number") from None
    if number <= 0:
        raise argparse.ArgumentTypeError(f"{value!r}: must be positive")
    return number


def _positive_float(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number") from None
    if number <= 0:
        raise argparse.ArgumentTypeError(f"{value!r}: must be positive")
    return number


def add_commands(subparsers: Any) -> None:
    """Add `scheduler` (with its `print-config` sub-command) to the `hami` sub-parsers."""
    p = subparsers.add_parser(
        "scheduler",
        help="run the scheduler extender and admission webhook",
        description=(
            "Run hami's kube-scheduler extender (POST /filter, /bind), the pod mutating webhook "
            "(POST /webhook), /healthz, /readyz and /metrics. Keeps a usage cache from watches "
            "of nodes and pods; one replica at a time (holder of a coordination.k8s.io Lease) "
            "writes the node handshakes. Runs until SIGTERM. 'hami scheduler print-config' "
            "prints the KubeSchedulerConfiguration that points kube-scheduler at it."
        ),
    )
    p.add_argument(
        "--bind-address",
        type=parse_bind_address,
        default=("127.0.0.1", 8080),
        metavar="HOST:PORT",
        help="where to listen (default: 127.0.0.1:8080)",
    )
    p.add_argument("--cert-file", default=None, help="TLS certificate (reloaded when it changes)")
    p.add_argument("--key-file", default=None, help="TLS private key")
    p.add_argument(
        "--kubeconfig",
        default=None,
        help="kubeconfig file (default: in-cluster, else $KUBECONFIG or ~/.kube/config)",
    )
    p.add_argument(
        "--scheduler-name",
        default="hami-scheduler",
        help="the scheduler name the webhook sets on pods using devices (default: hami-scheduler)",
    )
    p.add_argument(
        "--node-scheduler-policy",
        default="binpack",
        choices=sorted(NODE_POLICIES),
        help="default node policy; a pod's hami.io/node-scheduler-policy wins (default: binpack)",
    )
    p.add_argument(
        "--gpu-scheduler-policy",
        default="spread",
        help=(
            f"default card policy or comma chain of {', '.join(sorted(GPU_POLICIES))}; a pod's "
            "hami.io/gpu-scheduler-policy wins (default: spread)"
        ),
    )
    p.add_argument("--device-config", default=None, help="device config file (device-config.yaml)")
    p.add_argument(
        "--node-lock-timeout",
        type=parse_duration,
        default=300.0,
        help="age after which a node lock may be broken (default: 5m)",
    )
    p.add_argument(
        "--bind-cache-wait",
        type=_duration_or_zero,
        default=1.0,
        help=(
            "how long a bind waits for the pod watch to show its own write before it checks "
            "capacity against a LIST of the node's pods instead of the cache; 0 always lists "
            "(default: 1s)"
        ),
    )
    p.add_argument(
        "--qps", type=_positive_float, default=100.0, help="apiserver requests/s (default: 100)"
    )
    p.add_argument(
        "--burst", type=_positive_int, default=200, help="apiserver request burst (default: 200)"
    )
    p.add_argument(
        "--lease-namespace",
        default=os.environ.get("POD_NAMESPACE") or "kube-system",
        help="namespace of the leader-election Lease (default: $POD_NAMESPACE or kube-system)",
    )
    p.add_argument(
        "--lease-name",
        default="hami-scheduler-extender",
        help="name of the leader-election Lease (default: hami-scheduler-extender)",
    )
    p.add_argument(
        "--identity", default=None, help="leader-election identity (default: $POD_NAME or host)"
    )
    p.add_argument(
        "--lease-duration", type=parse_duration, default=15.0, help="Lease duration (default: 15s)"
    )
    p.add_argument(
        "--renew-deadline",
        type=parse_duration,
        default=10.0,
        help="how long a leader may fail to renew before stepping down (default: 10s)",
    )
    p.add_argument(
        "--retry-period",
        type=parse_duration,
        default=2.0,
        help="time between election rounds (default: 2s)",
    )
    p.add_argument(
        "--register-interval",
        type=parse_duration,
        default=15.0,
        help="time between node handshake passes (default: 15s)",
    )
    p.add_argument(
        "--strip-forged-annotations",
        action="store_true",
        help="remove scheduler-only annotations a user sets on a new pod instead of refusing it",
    )
    p.add_argument(
        "--success-events",
        action="store_true",
        help="also record FilteringSucceed/BindingSucceed pod events (failures always are)",
    )
    p.add_argument(
        "--force-overwrite-default-scheduler",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="take over pods that name default-scheduler (default: yes)",
    )
    p.add_argument(
        "--max-body-bytes",
        type=_positive_int,
        default=DEFAULT_MAX_BODY_BYTES,
        help=f"largest request body accepted (default: {DEFAULT_MAX_BODY_BYTES})",
    )
    p.set_defaults(func=run_scheduler)

    sub = p.add_subparsers(dest="scheduler_command", metavar="<subcommand>")
    pc = sub.add_parser(
        "print-config",
        help="print the KubeSchedulerConfiguration for kube-scheduler",
        description=(
            "Print the kubescheduler.config.k8s.io/v1 KubeSchedulerConfiguration that makes a "
            "stock kube-scheduler call this extender: a profile named after the scheduler, and "
            "the extender stanza with managedResources generated from the installed vendors "
            "(ignoredByScheduler as each vendor's spec says). HAMI_VENDORS and "
            "HAMI_DISABLED_VENDORS select the vendors."
        ),
    )
    pc.add_argument(
        "--scheduler-name",
        default=argparse.SUPPRESS,
        help="profile and leader-election name (default: hami-scheduler)",
    )
    pc.add_argument(
        "--url-prefix",
        default=None,
        help=(
            "where kube-scheduler reaches the extender (default: from --bind-address, https "
            "when --cert-file is given)"
        ),
    )
    pc.add_argument(
        "--http-timeout", default="30s", help="extender call timeout, a duration (default: 30s)"
    )
    pc.add_argument(
        "--lease-namespace",
        default=argparse.SUPPRESS,
        help="kube-scheduler's leader-election namespace",
    )
    pc.add_argument(
        "--no-leader-elect", action="store_true", help="run kube-scheduler without leader election"
    )
    pc.set_defaults(func=run_print_config)


def _url_prefix(args: argparse.Namespace) -> str:
    if args.url_prefix:
        return str(args.url_prefix)
    host, port = args.bind_address
    if host in ("0.0.0.0", "::"):
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    scheme = "https" if args.cert_file else "http"
    return f"{scheme}://{host}:{port}"


def run_print_config(args: argparse.Namespace) -> int:
    """Print the KubeSchedulerConfiguration as YAML; 2 on a vendor conflict or bad flag."""
    from hami_core.scheduler.schedconfig import render_configuration, scheduler_configuration

    try:
        parse_duration(args.http_timeout)
        registry = load_vendors()
    except (argparse.ArgumentTypeError, VendorConflict) as exc:
        print(f"hami scheduler print-config: {exc}", file=sys.stderr)
        return 2
    for err in registry.errors:
        print(f"hami scheduler print-config: vendor {err.plugin}: {err.error}", file=sys.stderr)
    configuration = scheduler_configuration(
        registry,
        scheduler_name=args.scheduler_name,
        url_prefix=_url_prefix(args),
        http_timeout=args.http_timeout,
        leader_elect=not args.no_leader_elect,
        lease_namespace=args.lease_namespace,
    )
    sys.stdout.write(render_configuration(configuration))
    return 0


def settings_from(args: argparse.Namespace) -> SchedulerSettings:
    """The service settings the parsed `hami scheduler` flags describe (`ConfigError` if bad)."""
    extra: dict[str, Any] = {}
    if args.identity:
        extra["identity"] = args.identity
    return SchedulerSettings(
        scheduler_name=args.scheduler_name,
        node_policy=args.node_scheduler_policy,
        gpu_policy=args.gpu_scheduler_policy,
        node_lock_timeout=args.node_lock_timeout,
        bind_cache_wait=args.bind_cache_wait,
        max_body_bytes=args.max_body_bytes,
        strip_forged_annotations=args.strip_forged_annotations,
        success_events=args.success_events,
        force_overwrite_default_scheduler=args.force_overwrite_default_scheduler,
        lease_namespace=args.lease_namespace,
        lease_name=args.lease_name,
        lease_duration=args.lease_duration,
        renew_deadline=args.renew_deadline,
        retry_period=args.retry_period,
        register_interval=args.register_interval,
        **extra,
    )


GC_THRESHOLDS = (50_000, 20, 100)
"""The collector's thresholds for the scheduler process: each filter allocates thousands of
short-lived objects that reference counting frees, and with the default (700, 10, 10) the
collector kept walking them (and the caches) often enough to cost a fifth of the extender's
throughput (`benchmarks/extender.py`)."""


def run_scheduler(args: argparse.Namespace) -> int:
    """Run the service until SIGTERM/SIGINT; 2 on bad configuration, 1 without a cluster."""
    from hami_core.k8s.cluster import ClusterError
    from hami_core.k8s.kube import KubeCluster
    from hami_core.scheduler.service import SchedulerService

    if bool(args.cert_file) != bool(args.key_file):
        print("hami scheduler: --cert-file and --key-file go together", file=sys.stderr)
        return 2
    try:
        settings = settings_from(args)
        config = load_device_config(args.device_config)
        registry = load_vendors()
    except (ConfigError, VendorConflict) as exc:
        print(f"hami scheduler: {exc}", file=sys.stderr)
        return 2
    for err in registry.errors:
        log.warning("vendor %s could not be loaded: %s", err.plugin, err.error)
    try:
        cluster = KubeCluster.from_environment(args.kubeconfig, qps=args.qps, burst=args.burst)
    except ClusterError as exc:
        print(f"hami scheduler: {exc}", file=sys.stderr)
        return 1
    try:
        service = SchedulerService(cluster, registry, config, settings)
    except (ProtocolError, ConfigError) as exc:
        print(f"hami scheduler: {exc}", file=sys.stderr)
        cluster.close()
        return 2
    host, port = args.bind_address
    log.info(
        "hami scheduler %s on %s:%s, vendors: %s",
        settings.identity,
        host,
        port,
        ", ".join(s.key for s in registry.specs()) or "none",
    )
    gc.set_threshold(*GC_THRESHOLDS)
    service.start()

    def freeze_when_synced() -> None:
        # Once the caches hold the cluster, keep their long-lived objects out of the
        # collector's full passes (fewer, shorter GC pauses during filter).
        if service.informer.wait_synced(3600):
            gc.freeze()

    threading.Thread(target=freeze_when_synced, name="hami-gc-freeze", daemon=True).start()
    try:
        service.serve(host, port, certfile=args.cert_file, keyfile=args.key_file)
    except ConfigError as exc:
        print(f"hami scheduler: {exc}", file=sys.stderr)
        return 2
    finally:
        service.stop()
        cluster.close()
    return 0
