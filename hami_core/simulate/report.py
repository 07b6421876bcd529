"""`--report`: one self-contained HTML page (inline CSS and SVG, no scripts, no external assets).

It shows the counts, a chart of card fill (a memory bar and a cores bar per card, grouped by
node, with each card's numbers in its tooltip), the fill by card type, the pod table and the
card table.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

from hami_core.simulate.outcome import CardFill, PodOutcome, SimulationResult
from hami_core.simulate.render import card_refs, mib, result_text, summary

__all__ = ["ReportContext", "render_report"]

_MEM = "#2563eb"
_CORE = "#f59e0b"
_TRACK = "#e5e7eb"
_BAR_H = 72
_BAR_W = 9
_CARD_W = 28

_CSS = """
:root { --mem: #2563eb; --core: #f59e0b; --track: #e5e7eb; --ink: #111827; --muted: #6b7280; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--ink);
  margin: 0; background: #f9fafb; }
header, section { max-width: 1200px; margin: 0 auto; padding: 16px 24px; }
h1 { font-size: 22px; margin: 8px 0 4px; } h2 { font-size: 17px; margin: 18px 0 10px; }
.meta { color: var(--muted); margin: 0; }
.stats { display: flex; flex-wrap: wrap; gap: 10px; margin-top: 12px; }
.stat { background: #fff; border: 1px solid #e5e7eb; border-radius: 8px; padding: 8px 14px; }
.stat b { display: block; font-size: 20px; }
.stat.bad b { color: #b91c1c; } .stat.good b { color: #15803d; }
.legend span { display: inline-flex; align-items: center; gap: 6px; margin-right: 16px; }
.legend i { width: 12px; height: 12px; border-radius: 2px; display: inline-block; }
.nodes { display: flex; flex-wrap: wrap; gap: 10px; }
figure.node { margin: 0; background: #fff; border: 1px solid #e5e7eb; border-radius: 8px;
  padding: 8px 10px 4px; }
figure.node figcaption { font-weight: 600; font-size: 12px; margin-bottom: 4px;
  white-space: nowrap; }
figure.node figcaption small { color: var(--muted); font-weight: 400; }
svg text { font: 10px system-ui, sans-serif; fill: var(--muted); }
table { border-collapse: collapse; width: 100%; background: #fff; font-size: 13px; }
th, td { border-bottom: 1px solid #e5e7eb; padding: 5px 8px; text-align: left;
  vertical-align: top; }
th { background: #f3f4f6; position: sticky; top: 0; }
td.num { text-align: right; white-space: nowrap; font-variant-numeric: tabular-nums; }
tr.scheduled td.result { color: #15803d; } tr.skipped td.result { color: var(--muted); }
tr.allocate-failed td.result { color: #b45309; }
tr.denied td.result, tr.unschedulable td.result, tr.bind-failed td.result,
tr.error td.result { color: #b91c1c; }
.warn { background: #fffbeb; border: 1px solid #fde68a; border-radius: 8px; padding: 8px 12px; }
.mono { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: 12px; }
"""


@dataclass(frozen=True, slots=True)
class ReportContext:
    """What the page says it simulated (shown under the title)."""

    inventory: str
    workloads: Sequence[str] = ()
    node_policy: str = "binpack"
    gpu_policy: str = "spread"
    seed: int = 0


def _pct(used: int, total: int) -> float:
    return min(1.0, used / total) if total > 0 else 0.0


def _card_svg(card: CardFill, x: int) -> str:
    mem = _pct(card.usedmem, card.totalmem)
    core = _pct(card.usedcores, card.totalcores)
    tip = (
        f"#{card.index} {card.id} ({card.type})\nslots {card.used}/{card.count}\n"
        f"memory {mib(card.usedmem)} / {mib(card.totalmem)} ({mem * 100:.0f}%)\n"
        f"cores {card.usedcores}/{card.totalcores} ({core * 100:.0f}%)"
        + ("" if card.health else "\nunhealthy")
    )
    parts = [f'<g transform="translate({x},0)"><title>{escape(tip)}</title>']
    for offset, share, colour in ((0, mem, _MEM), (_BAR_W + 2, core, _CORE)):
        height = round(share * _BAR_H, 1)
        parts.append(
            f'<rect x="{offset}" y="0" width="{_BAR_W}" height="{_BAR_H}" rx="2" '
            f'fill="{_TRACK}"/>'
            f'<rect x="{offset}" y="{_BAR_H - height}" width="{_BAR_W}" height="{height}" '
            f'rx="2" fill="{colour}"/>'
        )
    if not card.health:
        parts.append(
            f'<rect x="-1" y="-1" width="{2 * _BAR_W + 4}" height="{_BAR_H + 2}" fill="none" '
            'stroke="#b91c1c" stroke-width="1.5"/>'
        )
    parts.append(f'<text x="{_BAR_W}" y="{_BAR_H + 12}" text-anchor="middle">#{card.index}</text>')
    parts.append("</g>")
    return "".join(parts)


def _node_figure(name: str, cards: Sequence[CardFill], error: str | None) -> str:
    types = sorted({c.type for c in cards})
    caption = f"{escape(name)} <small>{escape(', '.join(types))}</small>"
    if not cards:
        note = escape(error) if error else "no cards"
        return (
            f'<figure class="node"><figcaption>{caption}</figcaption><small>{note}</small></figure>'
        )
    width = len(cards) * _CARD_W
    body = "".join(_card_svg(c, 2 + i * _CARD_W) for i, c in enumerate(cards))
    return (
        f'<figure class="node"><figcaption>{caption}</figcaption>'
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{_BAR_H + 16}" '
        f'viewBox="0 0 {width} {_BAR_H + 16}" role="img" '
        f'aria-label="card fill of node {escape(name)}">{body}</svg></figure>'
    )


def _type_rows(result: SimulationResult) -> str:
    groups: dict[str, list[CardFill]] = {}
    for cards in result.nodes.values():
        for c in cards:
            groups.setdefault(c.type, []).append(c)
    rows = []
    for card_type, group in sorted(groups.items()):
        um, tm = sum(c.usedmem for c in group), sum(c.totalmem for c in group)
        uc, tc = sum(c.usedcores for c in group), sum(c.totalcores for c in group)
        bars = []
        for share, colour in ((_pct(um, tm), _MEM), (_pct(uc, tc), _CORE)):
            bars.append(
                '<svg xmlns="http://www.w3.org/2000/svg" width="160" height="12" role="img">'
                f'<rect width="160" height="12" rx="3" fill="{_TRACK}"/>'
                f'<rect width="{share * 160:.1f}" height="12" rx="3" fill="{colour}"/></svg>'
                f" {share * 100:.0f}%"
            )
        rows.append(
            f"<tr><td>{escape(card_type)}</td><td class=num>{len(group)}</td>"
            f"<td>{bars[0]}</td><td class=num>{mib(um)} / {mib(tm)}</td>"
            f"<td>{bars[1]}</td><td class=num>{uc}/{tc}</td></tr>"
        )
    return (
        "<table><thead><tr><th>card type</th><th>cards</th><th>memory fill</th><th>memory</th>"
        "<th>core fill</th><th>cores</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table>"
    )


def _pod_row(pod: PodOutcome, cards: dict[tuple[str, str], CardFill]) -> str:
    refs = card_refs(pod, cards)
    shown = ", ".join(f"{w} #{c.index}" if c is not None else f"{w} {u}" for w, c, u in refs)
    mem = sum(d.usedmem for cs in pod.devices.values() for c in cs for d in c)
    cores = sum(d.usedcores for cs in pod.devices.values() for c in cs for d in c)
    result = result_text(pod)
    return (
        f'<tr class="{escape(pod.stage)}"><td>{escape(pod.key)}</td>'
        f"<td>{escape(pod.node or '-')}</td><td>{escape(shown or '-')}</td>"
        f"<td class=num>{mib(mem) if refs else '-'}</td>"
        f"<td class=num>{cores if refs else '-'}</td>"
        f'<td class="result">{escape(result)}</td></tr>'
    )


def _card_rows(result: SimulationResult) -> str:
    rows = []
    for node, cards in result.nodes.items():
        for c in cards:
            rows.append(
                f"<tr><td>{escape(node)}</td><td class=num>#{c.index}</td>"
                f'<td class="mono">{escape(c.id)}</td><td>{escape(c.type)}</td>'
                f"<td class=num>{c.used}/{c.count}</td>"
                f"<td class=num>{mib(c.usedmem)} / {mib(c.totalmem)}</td>"
                f"<td class=num>{_pct(c.usedmem, c.totalmem) * 100:.0f}%</td>"
                f"<td class=num>{c.usedcores}/{c.totalcores}</td>"
                f"<td class=num>{_pct(c.usedcores, c.totalcores) * 100:.0f}%</td>"
                f"<td>{'yes' if c.health else 'no'}</td></tr>"
            )
    return "".join(rows)


def render_report(result: SimulationResult, context: ReportContext) -> str:
    """The whole page as one HTML string."""
    counts = result.counts()
    cards = {(c.node, c.id): c for cs in result.nodes.values() for c in cs}
    all_cards = list(cards.values())
    not_run = sum(v for k, v in counts.items() if k not in ("scheduled", "skipped"))
    mem_fill = _pct(sum(c.usedmem for c in all_cards), sum(c.totalmem for c in all_cards))
    core_fill = _pct(sum(c.usedcores for c in all_cards), sum(c.totalcores for c in all_cards))
    stats = [
        ("pods", str(len(result.pods)), ""),
        ("scheduled", str(counts.get("scheduled", 0)), "good"),
        ("did not run", str(not_run), "bad" if not_run else ""),
        ("nodes", str(len(result.nodes)), ""),
        ("cards", str(len(all_cards)), ""),
        ("memory fill", f"{mem_fill * 100:.0f}%", ""),
        ("core fill", f"{core_fill * 100:.0f}%", ""),
    ]
    workloads = ", ".join(context.workloads) or "none"
    head = (
        f"<header><h1>hami simulate</h1><p class=meta>inventory {escape(context.inventory)}; "
        f"workload {escape(workloads)}; node policy {escape(context.node_policy)}, GPU policy "
        f"{escape(context.gpu_policy)}, seed {context.seed}</p>"
        f"<p class=meta>{escape(summary(result))}</p><div class=stats>"
        + "".join(
            f'<div class="stat {cls}"><b>{escape(value)}</b>{escape(label)}</div>'
            for label, value, cls in stats
        )
        + "</div></header>"
    )
    warnings = ""
    if result.warnings:
        warnings = (
            "<section><h2>Warnings</h2><div class=warn><ul>"
            + "".join(f"<li>{escape(w)}</li>" for w in result.warnings)
            + "</ul></div></section>"
        )
    chart = (
        '<section id="fill"><h2>Card fill</h2><p class="legend">'
        '<span><i style="background:var(--mem)"></i>memory</span>'
        '<span><i style="background:var(--core)"></i>cores</span>'
        "<span>hover a card for its numbers</span></p><div class=nodes>"
        + "".join(
            _node_figure(name, cs, result.node_errors.get(name))
            for name, cs in result.nodes.items()
        )
        + "</div><h2>Fill by card type</h2>"
        + _type_rows(result)
        + "</section>"
    )
    pods = (
        '<section id="pods"><h2>Pods</h2><table><thead><tr><th>pod</th><th>node</th>'
        "<th>cards</th><th>memory</th><th>cores</th><th>result</th></tr></thead><tbody>"
        + "".join(_pod_row(p, cards) for p in result.pods)
        + "</tbody></table></section>"
    )
    card_table = (
        '<section id="cards"><h2>Cards</h2><table><thead><tr><th>node</th><th>#</th>'
        "<th>id</th><th>type</th><th>slots</th><th>memory</th><th>mem %</th><th>cores</th>"
        "<th>core %</th><th>healthy</th></tr></thead><tbody>"
        + _card_rows(result)
        + "</tbody></table></section>"
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>hami simulate: {escape(context.inventory)}</title><style>{_CSS}</style></head>"
        f"<body>{head}{warnings}{chart}{pods}{card_table}</body></html>\n"
    )
