"""The `hami` command line: one entry point, a sub-command per job.

`hami vendors` lists the installed vendor plugins. The services and tools add their own
sub-commands (`scheduler`, `device-plugin`, `discover`, `simulate`).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Sequence
from typing import Any

from hami_core import __version__
from hami_core.errors import VendorConflict
from hami_core.plugins import VendorRegistry, load_vendors

__all__ = ["build_parser", "main", "vendors_table"]

CommandAdder = Callable[[Any], None]


def vendors_table(registry: VendorRegistry) -> list[dict[str, Any]]:
    """One row per vendor (loaded, disabled or broken), as `hami vendors --json` prints it."""
    rows: list[dict[str, Any]] = []
    for loaded in (registry.vendors[k] for k in sorted(registry.vendors)):
        spec = loaded.spec
        rows.append(
            {
                "key": spec.key,
                "common_word": spec.common_word,
                "distribution": loaded.distribution,
                "version": loaded.version,
                "resources": list(spec.resource_names()),
                "mounting": spec.mounting,
                "register_format": spec.register_format,
                "status": "loaded",
                "error": None,
            }
        )
    for err in registry.errors:
        rows.append(
            {
                "key": err.plugin,
                "common_word": None,
                "distribution": err.distribution,
                "version": err.version,
                "resources": [],
                "mounting": None,
                "register_format": None,
                "status": "error",
                "error": err.error,
            }
        )
    return rows


def _cmd_vendors(args: argparse.Namespace) -> int:
    try:
        registry = load_vendors()
    except VendorConflict as exc:
        print(f"hami: {exc}", file=sys.stderr)
        return 2
    rows = vendors_table(registry)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table(title="hami vendors")
    for col in ("key", "distribution", "version", "resources", "mounting", "status"):
        table.add_column(col)
    for row in rows:
        status = row["status"] if row["error"] is None else f"error: {row['error']}"
        table.add_row(
            row["key"],
            row["distribution"],
            row["version"],
            "\n".join(row["resources"]),
            row["mounting"] or "",
            status,
        )
    Console(width=160).print(table)
    if registry.disabled:
        print(f"disabled: {', '.join(registry.disabled)}")
    return 0


def _command_adders() -> list[CommandAdder]:
    """The sub-commands contributed by hami's services and tools."""
    from hami_core.deviceplugin.command import add_commands as device_plugin_commands
    from hami_core.scheduler.command import add_commands as scheduler_commands
    from hami_core.simulate.command import add_commands as simulate_commands

    return [scheduler_commands, device_plugin_commands, simulate_commands]


def build_parser() -> argparse.ArgumentParser:
    """The full `hami` argument parser."""
    parser = argparse.ArgumentParser(
        prog="hami",
        description=(
            "Share AI accelerators between Kubernetes pods, wire-compatible with HAMi. "
            "Run 'hami <command> --help' for each command."
        ),
    )
    parser.add_argument("--version", action="version", version=f"hami {__version__}")
    parser.add_argument(
        "--log-level",
        default="INFO",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="log verbosity (default: INFO)",
    )
    sub = parser.add_subparsers(dest="command", metavar="<command>")
    vendors = sub.add_parser(
        "vendors",
        help="list installed vendor plugins",
        description=(
            "List the vendor plugins installed in this environment (entry-point group "
            "'hami.vendors'): key, distribution, version, resource names, mounting mode and "
            "status. A vendor that fails to import is shown with its error. HAMI_VENDORS and "
            "HAMI_DISABLED_VENDORS (comma lists) select which vendors load."
        ),
    )
    vendors.add_argument("--json", action="store_true", help="print JSON instead of a table")
    vendors.set_defaults(func=_cmd_vendors)
    for add in _command_adders():
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the `hami` command line; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=getattr(logging, args.log_level),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 2
    result: int = func(args)
    return result


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
