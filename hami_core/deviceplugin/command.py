"""`hami device-plugin` (the node's long-running service) and `hami discover` (what is here?)."""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Mapping
from typing import Any

from hami_core.config import load_device_config
from hami_core.deviceplugin.agent import VendorState, discover_vendor
from hami_core.deviceplugin.manager import DEFAULT_PLUGIN_DIR
from hami_core.errors import ConfigError, VendorConflict
from hami_core.plugins import VendorRegistry, load_vendors

__all__ = ["add_commands", "run_device_plugin", "run_discover"]

log = logging.getLogger(__name__)


def add_commands(subparsers: Any) -> None:
    """Add `device-plugin` and `discover` to the `hami` sub-command parsers."""
    dp = subparsers.add_parser(
        "device-plugin",
        help="run the node agent and the kubelet device plugins on this node",
        description=(
            "Discover this node's accelerators, register them on the Node object every "
            "--interval seconds, and serve one kubelet device plugin per resource name of each "
            "vendor found, re-registering when the kubelet restarts. Runs until SIGTERM."
        ),
    )
    dp.add_argument(
        "--node-name",
        default=os.environ.get("NODE_NAME"),
        help="this node's name (default: $NODE_NAME)",
    )
    dp.add_argument(
        "--plugin-dir",
        default=DEFAULT_PLUGIN_DIR,
        help=f"the kubelet's device-plugin directory (default: {DEFAULT_PLUGIN_DIR})",
    )
    dp.add_argument(
        "--kubelet-socket",
        default=None,
        help="the kubelet's registration socket (default: <plugin-dir>/kubelet.sock)",
    )
    dp.add_argument(
        "--config",
        metavar="DEVICE_CONFIG",
        default=None,
        help="device config file (HAMi's device-config.yaml; default: none)",
    )
    dp.add_argument(
        "--interval",
        type=float,
        default=30.0,
        help="seconds between full register passes (default: 30)",
    )
    dp.add_argument(
        "--health-interval",
        type=float,
        default=5.0,
        help="seconds between health polls (default: 5)",
    )
    dp.add_argument(
        "--kubeconfig",
        default=None,
        help="kubeconfig file (default: in-cluster, else $KUBECONFIG or ~/.kube/config)",
    )
    dp.set_defaults(func=run_device_plugin)

    disc = subparsers.add_parser(
        "discover",
        help="show the accelerators on this machine, per vendor",
        description=(
            "Ask every installed vendor plugin (or --vendor) for the accelerators on this "
            "machine and how each is offered (split count, memory, cores). A vendor whose "
            "library or tool is absent prints '<vendor>: unavailable: <why>'."
        ),
    )
    disc.add_argument("--vendor", default=None, help="only this vendor key")
    disc.add_argument("--json", action="store_true", help="print JSON instead of text")
    disc.add_argument("--config", metavar="DEVICE_CONFIG", default=None, help="device config file")
    disc.set_defaults(func=run_discover)


def _load(config_path: str | None) -> tuple[VendorRegistry, dict[str, Any]] | str:
    try:
        config = load_device_config(config_path)
        return load_vendors(), config
    except (ConfigError, VendorConflict) as exc:
        return str(exc)


def run_device_plugin(args: argparse.Namespace) -> int:
    """Run the node agent and device plugins until SIGTERM/SIGINT; the exit code."""
    if not args.node_name:
        print("hami device-plugin: --node-name or $NODE_NAME is required", file=sys.stderr)
        return 2
    loaded = _load(args.config)
    if isinstance(loaded, str):
        print(f"hami device-plugin: {loaded}", file=sys.stderr)
        return 2
    registry, config = loaded
    from hami_core.deviceplugin.node import DevicePluginNode
    from hami_core.k8s.cluster import ClusterError
    from hami_core.k8s.kube import KubeCluster

    try:
        cluster = KubeCluster.from_environment(args.kubeconfig)
    except ClusterError as exc:
        print(f"hami device-plugin: {exc}", file=sys.stderr)
        return 1
    for err in registry.errors:
        log.warning("vendor %s could not be loaded: %s", err.plugin, err.error)
    node = DevicePluginNode(
        cluster,
        registry,
        args.node_name,
        config=config,
        plugin_dir=args.plugin_dir,
        kubelet_socket=args.kubelet_socket,
        interval=args.interval,
        health_interval=args.health_interval,
    )
    stop = threading.Event()

    def _stop(signum: int, _frame: object) -> None:
        log.info("received %s, stopping", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    node.start()
    gc.freeze()  # startup objects (client models, plugins) leave the collector's hot path
    log.info("device plugin running on node %s: %s", args.node_name, node.plugins.resources())
    try:
        stop.wait()
    finally:
        node.stop()
        cluster.close()
    return 0


def _device_rows(state: VendorState) -> list[dict[str, Any]]:
    offered = {i.id: i for i in state.infos}
    rows = []
    for d in state.devices:
        info = offered.get(d.uuid)
        rows.append(
            {
                "uuid": d.uuid,
                "index": d.index,
                "model": d.model,
                "memory_mib": d.memory_mib,
                "cores": d.cores,
                "numa": d.numa,
                "health": d.health,
                "mode": d.mode,
                "paths": list(d.paths),
                "split": info.count if info else None,
                "registered_memory_mib": info.devmem if info else None,
                "registered_cores": info.devcore if info else None,
                "type": info.type if info else None,
            }
        )
    return rows


def _as_json(states: Mapping[str, VendorState], broken: Mapping[str, str]) -> str:
    out = []
    for key, state in states.items():
        status = "ok" if state.ok else ("unavailable" if state.unavailable else "error")
        out.append(
            {
                "vendor": key,
                "status": status,
                "reason": state.unavailable or state.error,
                "resources": list(state.spec.advertised),
                "devices": _device_rows(state),
            }
        )
    for key, why in broken.items():
        out.append(
            {"vendor": key, "status": "unavailable", "reason": why, "resources": [], "devices": []}
        )
    return json.dumps({"vendors": out}, indent=2)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _as_text(states: Mapping[str, VendorState], broken: Mapping[str, str]) -> str:
    lines = []
    for key, state in states.items():
        if state.unavailable is not None:
            lines.append(f"{key}: unavailable: {_one_line(state.unavailable)}")
            continue
        if state.error is not None:
            lines.append(f"{key}: error: {_one_line(state.error)}")
            continue
        lines.append(f"{key}: {len(state.devices)} device(s)")
        for row in _device_rows(state):
            health = "healthy" if row["health"] else "UNHEALTHY"
            lines.append(
                f"  [{row['index']}] {row['uuid']}  {row['model']}  {row['memory_mib']} MiB  "
                f"cores {row['cores']}  numa {row['numa']}  {health}  split {row['split']}"
            )
    lines.extend(f"{key}: unavailable: {_one_line(why)}" for key, why in broken.items())
    return "\n".join(lines)


def run_discover(args: argparse.Namespace) -> int:
    """Print this machine's accelerators per vendor; 1 if a vendor failed, 2 on bad input."""
    loaded = _load(args.config)
    if isinstance(loaded, str):
        print(f"hami discover: {loaded}", file=sys.stderr)
        return 2
    registry, config = loaded
    specs = registry.specs()
    broken = {e.plugin: f"failed to load: {e.error}" for e in registry.errors}
    if args.vendor is not None:
        specs = [s for s in specs if s.key == args.vendor]
        broken = {k: v for k, v in broken.items() if k == args.vendor}
        if not specs and not broken:
            known = ", ".join(s.key for s in registry.specs()) or "none"
            print(
                f"hami discover: vendor {args.vendor!r} is not installed (installed: {known})",
                file=sys.stderr,
            )
            return 2
    states = {s.key: discover_vendor(registry, s, config) for s in specs}
    print(_as_json(states, broken) if args.json else _as_text(states, broken))
    return 1 if any(s.error for s in states.values()) else 0
