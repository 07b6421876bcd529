"""The terminal view of a simulation: a table of pods, a table of cards, a summary line.

Large runs are cut down so the terminal stays readable: beyond `MAX_POD_ROWS` pods only the pods
that did not run are listed, and beyond `MAX_CARD_ROWS` cards one row per node replaces one row
per card (`--json` and `--report` always hold everything).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from rich import box
from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from hami_core.model import ContainerDevice
from hami_core.simulate.outcome import CardFill, PodOutcome, SimulationResult

__all__ = [
    "MAX_CARD_ROWS",
    "MAX_POD_ROWS",
    "bar",
    "card_refs",
    "cards_table",
    "mib",
    "pair",
    "pods_table",
    "print_result",
    "result_text",
    "summary",
]

MAX_POD_ROWS = 200
MAX_CARD_ROWS = 400

_STAGE_STYLE = {
    "scheduled": "green",
    "skipped": "dim",
    "denied": "red",
    "unschedulable": "red",
    "bind-failed": "red",
    "allocate-failed": "yellow",
    "error": "bold red",
}


def mib(value: int) -> str:
    """MiB in the unit a person reads best (`512 MiB`, `40 GiB`, `1.5 GiB`)."""
    if value >= 1024:
        gib = value / 1024
        return f"{gib:.0f} GiB" if gib == int(gib) else f"{gib:.1f} GiB"
    return f"{value} MiB"


def pair(used: int, total: int) -> str:
    """`used/total` memory in one unit (`9.8/80 GiB`, `512/1024 MiB`)."""
    if total >= 1024:
        return f"{_gib(used)}/{_gib(total)} GiB"
    return f"{used}/{total} MiB"


def _gib(mib_value: int) -> str:
    gib = mib_value / 1024
    return f"{gib:.0f}" if gib == int(gib) else f"{gib:.1f}"


def bar(used: int, total: int, width: int = 6) -> Text:
    """A small fill bar with its percentage (green, yellow from 70 %, red from 90 %)."""
    share = used / total if total > 0 else 0.0
    filled = min(width, round(share * width))
    style = "red" if share >= 0.9 else "yellow" if share >= 0.7 else "green"
    text = Text("█" * filled, style=style)
    text.append("░" * (width - filled), style="dim")
    text.append(f" {share * 100:3.0f}%")
    return text


def result_text(pod: PodOutcome) -> str:
    """The pod's stage, with its reason (`unschedulable: 4/4 CardInsufficientMemory [...]`)."""
    if pod.reason is None:
        return pod.stage
    if pod.reason.startswith(pod.stage.split("-")[0]):
        return pod.reason
    return f"{pod.stage}: {pod.reason}"


def _index(result: SimulationResult) -> dict[tuple[str, str], CardFill]:
    return {(c.node, c.id): c for cards in result.nodes.values() for c in cards}


def card_refs(
    pod: PodOutcome, cards: Mapping[tuple[str, str], CardFill]
) -> list[tuple[str, CardFill | None, str]]:
    """The pod's distinct cards as `(common word, card or None, uuid)`, in decision order."""
    out: list[tuple[str, CardFill | None, str]] = []
    seen: set[str] = set()
    for word, containers in pod.devices.items():
        for devices in containers:
            for d in devices:
                if d.uuid in seen:
                    continue
                seen.add(d.uuid)
                out.append((word, cards.get((pod.node or "", d.uuid)), d.uuid))
    return out


def _totals(devices: Iterable[tuple[ContainerDevice, ...]]) -> tuple[int, int]:
    mem = cores = 0
    for container in devices:
        for d in container:
            mem += d.usedmem
            cores += d.usedcores
    return mem, cores


def pods_table(result: SimulationResult, *, limit: int = MAX_POD_ROWS) -> tuple[Table, int]:
    """The pod table and how many scheduled pods were left out of it to keep it short."""
    cards = _index(result)
    table = Table(title="Pods", title_justify="left", box=box.SIMPLE_HEAD)
    columns: tuple[tuple[str, dict[str, Any]], ...] = (
        ("pod", {"overflow": "fold"}),
        ("node", {}),
        ("cards", {}),
        ("memory", {"justify": "right"}),
        ("cores", {"justify": "right"}),
        ("result", {"no_wrap": True, "min_width": 15}),
    )
    for col, kw in columns:
        table.add_column(col, **kw)
    pods = list(result.pods)
    hidden = 0
    if len(pods) > limit:
        shown = [p for p in pods if p.stage not in ("scheduled", "skipped")]
        hidden = len(pods) - len(shown)
        pods = shown
    for pod in pods:
        refs = card_refs(pod, cards)
        words = {w for w, _, _ in refs}
        shown_cards = ", ".join(
            (f"{w} " if len(words) > 1 else "") + (f"#{c.index}" if c is not None else u)
            for w, c, u in refs
        )
        if refs and len(words) == 1:
            shown_cards = f"{next(iter(words))} {shown_cards}"
        mem, cores = 0, 0
        for containers in pod.devices.values():
            m, c = _totals(containers)
            mem, cores = mem + m, cores + c
        style = _STAGE_STYLE.get(pod.stage, "")
        outcome = Text(pod.stage, style=style)
        table.add_row(
            pod.key,
            pod.node or "-",
            shown_cards or "-",
            mib(mem) if refs else "-",
            str(cores) if refs else "-",
            outcome,
        )
    return table, hidden


def _fill(used: int, total: int, text: str, bars: bool) -> list[RenderableType]:
    if bars:
        return [text, bar(used, total)]
    share = used / total * 100 if total > 0 else 0.0
    return [f"{text} {share:3.0f}%"]


def cards_table(
    result: SimulationResult, *, limit: int = MAX_CARD_ROWS, ids: bool = False, bars: bool = True
) -> Table:
    """One row per card (slots, memory and cores used of the totals, with fill bars when
    `bars`; with `ids`, the card's id), or one per node when there are more than `limit`
    cards."""
    total = sum(len(c) for c in result.nodes.values())
    per_node = total > limit
    table = Table(title="Nodes" if per_node else "Cards", title_justify="left", box=box.SIMPLE_HEAD)
    table.add_column("node")
    if not per_node:
        table.add_column("card")
        table.add_column("type", overflow="fold")
    else:
        table.add_column("cards", justify="right")
    table.add_column("slots", justify="right")
    table.add_column("memory", justify="right", no_wrap=True)
    if bars:
        table.add_column("mem fill", no_wrap=True)
    table.add_column("cores", justify="right", no_wrap=True)
    if bars:
        table.add_column("core fill", no_wrap=True)
    if ids and not per_node:
        table.add_column("id", no_wrap=True)
    for node, node_cards in result.nodes.items():
        if per_node:
            used = sum(c.used for c in node_cards)
            count = sum(c.count for c in node_cards)
            um = sum(c.usedmem for c in node_cards)
            tm = sum(c.totalmem for c in node_cards)
            uc = sum(c.usedcores for c in node_cards)
            tc = sum(c.totalcores for c in node_cards)
            table.add_row(
                node,
                str(len(node_cards)),
                f"{used}/{count}",
                *_fill(um, tm, pair(um, tm), bars),
                *_fill(uc, tc, f"{uc}/{tc}", bars),
            )
            continue
        if not node_cards:
            error = result.node_errors.get(node)
            table.add_row(node, "-", Text(error, style="red") if error else "no cards")
            continue
        for i, c in enumerate(node_cards):
            card = Text(f"#{c.index}")
            if not c.health:
                card.append(" unhealthy", style="red")
            row: list[RenderableType] = [
                node if i == 0 else "",
                card,
                c.type,
                f"{c.used}/{c.count}",
                *_fill(c.usedmem, c.totalmem, pair(c.usedmem, c.totalmem), bars),
                *_fill(c.usedcores, c.totalcores, f"{c.usedcores}/{c.totalcores}", bars),
            ]
            if ids:
                row.append(c.id)
            table.add_row(*row)
    return table


def summary(result: SimulationResult) -> str:
    """`12 pods: 10 scheduled, 1 unschedulable, 1 denied` (stages in a fixed order)."""
    counts = result.counts()
    order = (
        "scheduled",
        "unschedulable",
        "denied",
        "allocate-failed",
        "bind-failed",
        "skipped",
        "error",
    )
    parts = [f"{counts[s]} {s}" for s in order if counts.get(s)]
    n = len(result.pods)
    return f"{n} pod{'s' if n != 1 else ''}: {', '.join(parts) if parts else 'none'}"


def print_result(result: SimulationResult, console: Console) -> None:
    """Print both tables, the summary and any warnings."""
    parts: list[RenderableType] = []
    pods, hidden = pods_table(result)
    if pods.row_count:
        parts.append(pods)
    if hidden:
        parts.append(
            Text(
                f"({hidden} pods that were scheduled or skipped are not listed; --json and "
                "--report list every pod)",
                style="dim",
            )
        )
    reasons = [p for p in result.pods if p.reason is not None and p.stage != "skipped"]
    if reasons:
        parts.append(Text("\nWhy these pods did not run", style="bold"))
        for pod in reasons:
            line = Text(f"  {pod.key}: ", style=_STAGE_STYLE.get(pod.stage, ""))
            line.append(result_text(pod))
            parts.append(line)
    parts.append(cards_table(result, ids=console.width >= 150, bars=console.width >= 110))
    parts.append(Text(summary(result), style="bold"))
    for warning in result.warnings:
        parts.append(Text(f"warning: {warning}", style="yellow"))
    console.print(Group(*parts))
