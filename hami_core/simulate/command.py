"""`hami simulate`: what-if scheduling on a laptop, with the services' own code.

Exit status: 0 when the simulation ran (whether or not every pod fitted); 2 when an input is
invalid (the message names the file, the object and the field) or an option is unknown.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from hami_core.config import load_device_config
from hami_core.errors import ConfigError, VendorConflict
from hami_core.plugins import load_vendors
from hami_core.protocol import NODE_POLICIES, ProtocolError, parse_gpu_policy, parse_node_policy
from hami_core.simulate.errors import InputError
from hami_core.simulate.inventory import load_inventory
from hami_core.simulate.outcome import PodOutcome, SimulationResult
from hami_core.simulate.render import print_result
from hami_core.simulate.report import ReportContext, render_report
from hami_core.simulate.simulator import Simulator
from hami_core.simulate.workload import WorkloadPod, load_workloads

__all__ = ["add_commands", "run"]

DESCRIPTION = """\
Schedule pods on a cluster that exists only in a file, with the same webhook, scheduling
engine, bind and device-plugin Allocate code as the hami services, and show where each pod
went (or why it did not fit, in HAMi's 'n/N Reason' form) and how full each card ends up.

INVENTORY is either a shorthand (a mapping with 'nodes:', each node with its 'devices:') or a
cluster snapshot ('kubectl get nodes,pods -A -o yaml'): its bound pods count as usage.
Each WORKLOAD file holds Pods, Deployments, ReplicaSets, StatefulSets or Jobs; they are
scheduled in order. Exit status 0 when the simulation ran, 2 when an input is invalid.
"""


def add_commands(subparsers: Any) -> None:
    """Add `simulate` to the `hami` command line."""
    parser = subparsers.add_parser(
        "simulate",
        help="what-if scheduling from an inventory or a cluster snapshot",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("inventory", metavar="INVENTORY", help="inventory or snapshot file")
    parser.add_argument(
        "workloads", metavar="WORKLOAD", nargs="*", help="pod or workload manifests, in order"
    )
    parser.add_argument(
        "--config", metavar="DEVICE_CONFIG", help="HAMi device-config.yaml (vendor sections)"
    )
    parser.add_argument(
        "--node-policy",
        choices=list(NODE_POLICIES),
        default="binpack",
        help="how nodes are chosen (default: binpack; a pod's annotation overrides it)",
    )
    parser.add_argument(
        "--gpu-policy",
        default="spread",
        metavar="POLICY",
        help="how cards are chosen: binpack, spread, topology-aware, mutex, numa, or a comma "
        "chain of them (default: spread; a pod's annotation overrides it)",
    )
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--report", metavar="FILE", help="also write an HTML report to FILE")
    parser.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seed for generated card UUIDs and any other random choice (default: 0)",
    )
    parser.set_defaults(func=run)


@contextmanager
def _quiet(level: str) -> Iterator[None]:
    """Keep the services' per-pod log lines off the terminal unless DEBUG was asked for."""
    root = logging.getLogger()
    before = root.level
    if level != "DEBUG":
        root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(before)


def _fail(message: str) -> int:
    print(f"hami simulate: {message}", file=sys.stderr)
    return 2


def _run_with_progress(
    simulator: Simulator, pods: list[WorkloadPod], show: bool
) -> SimulationResult:
    if not show or len(pods) < 2:
        return simulator.run(pods)
    console = Console(stderr=True)
    with Progress(
        TextColumn("[bold]simulating"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[placed]} placed"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as progress:
        task = progress.add_task("pods", total=len(pods), placed=0)
        placed = 0

        def advance(outcome: PodOutcome) -> None:
            nonlocal placed
            placed += outcome.stage == "scheduled"
            progress.update(task, advance=1, placed=placed)

        return simulator.run(pods, advance)


def run(args: argparse.Namespace) -> int:
    """Run `hami simulate` with parsed arguments; returns the exit status."""
    try:
        parse_node_policy(args.node_policy)
    except ProtocolError as exc:
        return _fail(f"--node-policy: {exc}")
    try:
        parse_gpu_policy(args.gpu_policy)
    except ProtocolError as exc:
        return _fail(f"--gpu-policy: {exc}")
    with _quiet(getattr(args, "log_level", "INFO")):
        try:
            registry = load_vendors()
        except VendorConflict as exc:
            return _fail(str(exc))
        for error in registry.errors:
            print(
                f"hami simulate: warning: vendor {error.plugin} not loaded: {error.error}",
                file=sys.stderr,
            )
        try:
            config = load_device_config(args.config)
        except ConfigError as exc:
            return _fail(str(exc))
        try:
            inventory = load_inventory(args.inventory, registry, config, seed=args.seed)
            pods = load_workloads(args.workloads)
        except InputError as exc:
            return _fail(str(exc))
        except ConfigError as exc:  # a vendor section the vendor cannot use
            return _fail(f"{args.config or 'device config'}: {exc}")
        simulator = Simulator(
            registry, config, inventory, node_policy=args.node_policy, gpu_policy=args.gpu_policy
        )
        show = not args.json and sys.stderr.isatty()
        result = _run_with_progress(simulator, pods, show)
    if args.report:
        context = ReportContext(
            inventory=args.inventory,
            workloads=tuple(args.workloads),
            node_policy=args.node_policy,
            gpu_policy=args.gpu_policy,
            seed=args.seed,
        )
        try:
            Path(args.report).write_text(render_report(result, context), encoding="utf-8")
        except OSError as exc:
            return _fail(f"{args.report}: cannot write the report: {exc.strerror or exc}")
    if args.json:
        for warning in result.warnings:
            print(f"hami simulate: warning: {warning}", file=sys.stderr)
        json.dump(result.to_json(), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print_result(result, Console())
        if args.report:
            print(f"report written to {args.report}")
    return 0
