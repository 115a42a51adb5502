"""The report as text, HTML and JSON. Both text and HTML are rendered from one list of blocks (headings,
paragraphs, tables, images), so the two can never say different things."""

from __future__ import annotations

import html
import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import date, datetime
from typing import Any

from okxlab.review.leaderboard import HEADERS, pct, ratio, rows, table
from okxlab.review.metrics import AgentMetrics
from okxlab.review.report import BookSection, ReportData

REPORT_VERSION = 1


@dataclass(frozen=True)
class Block:
    kind: str  # h1 | h2 | h3 | p | table | img
    text: str = ""
    headers: Sequence[str] = ()
    rows: Sequence[Sequence[str]] = ()


def _ts(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value else "-"


def _num(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _price(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.2f}" if abs(value) >= 100 else f"{value:.6g}"


def _hours(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds / 3600:.1f} h"


def _window(section: BookSection) -> str:
    w = section.window
    if w.start is None and w.end is None:
        return "the whole replay"
    if w != section.scheduled:  # the book keeps its own clock (the simulator's market time)
        return (f"market time {_ts(w.start)} → {_ts(w.end) if w.end else 'its latest run'} UTC, the book's own "
                f"clock, for its runs scheduled {_ts(section.scheduled.start)} → {_ts(section.scheduled.end)} UTC")
    return f"{_ts(w.start)} → {_ts(w.end)} UTC"


def subject(data: ReportData) -> str:
    head = f"{data.settings.subject_prefix} {data.day.isoformat()}"
    if not data.sections:
        return f"{head}: no runs"
    first = data.sections[0]
    entries = first.leaderboard.entries
    if not entries or entries[0].metrics.performance.total_return is None:
        return f"{head}: {len(data.sections)} book(s)"
    best = entries[0].metrics
    return f"{head}: {len(entries)} agent(s) on {first.book}, best {best.agent} {pct(best.performance.total_return)}"


def _agent_rows(metrics: list[AgentMetrics]) -> list[list[str]]:
    out = []
    for m in metrics:
        p, a = m.performance, m.activity
        dd = p.max_drawdown
        out.append([m.agent, pct(p.total_return), ratio(p.sharpe), ratio(p.sortino), pct(p.volatility, signed=False),
                    pct(dd.depth, signed=False) + (f" ({_ts(dd.peak_at)} → {_ts(dd.trough_at)})" if dd.peak_at else ""),
                    str(p.trades), pct(p.win_rate, signed=False), ratio(p.profit_factor), _hours(p.avg_holding_seconds),
                    _num(a.fees), _num(a.avg_slippage_bps, 1),
                    f"{a.decisions['accept']}/{a.decisions['amend']}/{a.decisions['reject']}", str(a.invalid_plans),
                    f"{a.llm.tokens_in:,}/{a.llm.tokens_out:,}", f"${a.llm.cost_usd:,.4f}"])
    return out


AGENT_HEADERS = ["AGENT", "RETURN", "SHARPE", "SORTINO", "VOL (ANN.)", "MAX DD (PEAK → TROUGH)", "TRADES", "WIN",
                 "PROFIT F.", "AVG HOLD", "FEES", "SLIP BPS", "ACC/AMD/REJ", "INVALID", "TOKENS IN/OUT", "LLM COST"]


def _section_blocks(section: BookSection) -> list[Block]:
    lb = section.leaderboard
    metrics = [e.metrics for e in lb.entries]
    s = lb.settings
    blocks = [Block("h2", f"Book {section.book} — {_window(section)}"),
              Block("h3", "Leaderboard"),
              Block("table", headers=HEADERS, rows=rows(lb)),
              Block("p", f"Baselines on the same window: cash (0%) and buy & hold {s.benchmark} "
                         f"({pct(lb.buy_and_hold.total_return)}"
                         + (f", {_price(lb.buy_and_hold.price_start)} → {_price(lb.buy_and_hold.price_end)}"
                            if lb.buy_and_hold.price_start else f"; {lb.buy_and_hold.note}") + "). "
                         f"Brackets: {s.confidence:.0%} interval of the summed per-period return difference, paired "
                         f"circular block bootstrap, {s.bootstrap_samples} samples; 'noise' means it contains 0; "
                         f"'few periods' means fewer than {s.min_periods} periods, too few to call any lead real. "
                         "Ratios are annualised from the bar spacing, so they are large and unstable on one day.")]
    for name in section.charts:
        blocks.append(Block("img", name))
    blocks += [Block("h3", "Agents"), Block("table", headers=AGENT_HEADERS, rows=_agent_rows(metrics))]
    reasons = [[m.agent, outcome, reason, str(n)] for m in metrics
               for outcome, counts in (("reject", m.activity.rejected_by_reason), ("amend", m.activity.amended_by_reason))
               for reason, n in counts.items()]
    blocks.append(Block("h3", "Decisions rejected or amended, by reason"))
    blocks.append(Block("table", headers=["AGENT", "OUTCOME", "REASON", "DECISIONS"], rows=reasons) if reasons
                  else Block("p", "None."))
    blocks.append(Block("h3", "Trades"))
    trades = [[agent, t.symbol, t.side, _ts(t.opened_at), _ts(t.closed_at) if t.closed_at else "open",
               _price(t.entry_price), _price(t.exit_price), f"{t.contracts:g}",
               _num(t.net_pnl) if t.closed_at else "-", _num(t.fees), t.exit_reason or "-"]
              for agent, t in section.trades]
    blocks.append(Block("table", headers=["AGENT", "SYMBOL", "SIDE", "OPENED", "CLOSED", "ENTRY", "EXIT", "CONTRACTS",
                                          "NET PNL", "FEES", "EXIT REASON"], rows=trades) if trades
                  else Block("p", "No trades closed or open in this window."))
    blocks.append(Block("h3", "Risk events (halts, rejections, pauses)"))
    blocks.append(Block("table", headers=["TIME", "KIND", "AGENT", "MESSAGE"],
                        rows=[[_ts(e["ts"]), e["kind"], e["agent"] or "-", e["message"]] for e in section.risk_events])
                  if section.risk_events else Block("p", "None."))
    blocks.append(Block("h3", "Invalid plans"))
    blocks.append(Block("table", headers=["SCHEDULED FOR", "AGENT", "RUN", "PROBLEMS"],
                        rows=[[_ts(i["scheduled_for"]), i["agent"], i["run_id"], "; ".join(i["problems"])]
                              for i in section.invalid_plans]) if section.invalid_plans else Block("p", "None."))
    blocks.append(Block("h3", "LLM cost"))
    total = sum(r["cost_usd"] for r in section.llm_by_model)
    blocks.append(Block("table", headers=["PROVIDER", "MODEL", "CALLS", "CACHED", "TOKENS IN", "TOKENS OUT", "COST"],
                        rows=[[r["provider"], r["model"], str(r["calls"]), str(r["cached"]), f"{r['tokens_in']:,}",
                               f"{r['tokens_out']:,}", f"${r['cost_usd']:,.4f}"] for r in section.llm_by_model]
                        + [["total", "", "", "", "", "", f"${total:,.4f}"]]) if section.llm_by_model
                  else Block("p", "No LLM calls."))
    blocks.append(Block("h3", "Pipeline health"))
    blocks.append(Block("p", "Runs: " + (", ".join(f"{k} {v}" for k, v in section.runs_by_status.items()) or "none")))
    blocks.append(Block("table", headers=["STAGE", "DONE", "FAILED", "RUNNING", "RETRIED", "RUNS ENDED HERE", "P50 MS",
                                          "P95 MS", "WAIT P50", "WAIT P95"],
                        rows=[[h.stage, str(h.done), str(h.failed), str(h.running), str(h.retried),
                               ", ".join(f"{k} {v}" for k, v in h.ended_here.items()) or "-",
                               _num(h.latency.p50_ms, 0), _num(h.latency.p95_ms, 0),
                               _num(h.latency.queue_wait_p50_ms, 0), _num(h.latency.queue_wait_p95_ms, 0)]
                              for h in section.stages]))
    if section.run_problems:
        blocks.append(Block("table", headers=["ENDED", "REASON", "RUNS"],
                            rows=[[p["status"], p["reason"], str(p["runs"])] for p in section.run_problems]))
    return blocks


def blocks(data: ReportData) -> list[Block]:
    out = [Block("h1", f"okxlab review — {data.day.isoformat()} (UTC)"),
           Block("p", f"Generated {_ts(data.generated_at)} UTC. "
                      + (f"{len(data.sections)} book(s): {', '.join(s.book for s in data.sections)}."
                         if data.sections else "No runs were scheduled that day."))]
    for section in data.sections:
        out += _section_blocks(section)
    if data.global_events:
        out += [Block("h2", "Operator and global risk events"),
                Block("table", headers=["TIME", "KIND", "ACTOR", "MESSAGE"],
                      rows=[[_ts(e["ts"]), e["kind"], e["actor"], e["message"]] for e in data.global_events])]
    return out


# ---- text ------------------------------------------------------------------------------------------------------

def render_text(data: ReportData) -> str:
    parts = []
    for b in blocks(data):
        if b.kind == "h1":
            parts.append(f"{b.text}\n{'=' * len(b.text)}")
        elif b.kind == "h2":
            parts.append(f"\n{b.text}\n{'-' * len(b.text)}")
        elif b.kind == "h3":
            parts.append(f"{b.text}:")
        elif b.kind == "table":
            parts.append(table(b.headers, b.rows))
        elif b.kind == "img":
            parts.append(f"[chart: {b.text}]")
        else:
            parts.append(b.text)
    return "\n\n".join(parts) + "\n"


# ---- HTML ------------------------------------------------------------------------------------------------------

_STYLE = ("body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;font-size:14px;color:#222;margin:16px}"
          "table{border-collapse:collapse;margin:6px 0 14px}th,td{border:1px solid #ccc;padding:3px 7px;"
          "text-align:left;font-size:12px;white-space:nowrap}th{background:#f0f0f0}h2{margin-top:28px;"
          "border-bottom:2px solid #333}h3{margin-bottom:4px}img{display:block;max-width:100%;margin:8px 0}")


def render_html(data: ReportData, image_src: Callable[[str], str]) -> str:
    """The page; `image_src` turns a chart's file name into its src (a relative path, or a cid: URL)."""
    e = html.escape
    body = []
    for b in blocks(data):
        if b.kind in ("h1", "h2", "h3"):
            body.append(f"<{b.kind}>{e(b.text)}</{b.kind}>")
        elif b.kind == "table":
            head = "".join(f"<th>{e(h)}</th>" for h in b.headers)
            cells = "".join("<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>" for row in b.rows)
            body.append(f"<table><thead><tr>{head}</tr></thead><tbody>{cells}</tbody></table>")
        elif b.kind == "img":
            body.append(f'<img src="{e(image_src(b.text))}" alt="{e(b.text)}">')
        else:
            body.append(f"<p>{e(b.text)}</p>")
    title = e(f"okxlab review {data.day.isoformat()}")
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
            f"<style>{_STYLE}</style></head>\n<body>\n" + "\n".join(body) + "\n</body></html>\n")


# ---- JSON ------------------------------------------------------------------------------------------------------

def report_json(data: ReportData) -> dict[str, Any]:
    return {
        "version": REPORT_VERSION,
        "day": data.day,
        "generated_at": data.generated_at,
        "books": [{"book": s.book, "window": s.window.to_json(), "scheduled": s.scheduled.to_json(),
                   "leaderboard": s.leaderboard.to_json(),
                   "agents": [e.metrics.to_json() for e in s.leaderboard.entries],
                   "trades": [{"agent": agent, **t.to_json()} for agent, t in s.trades],
                   "risk_events": s.risk_events, "invalid_plans": s.invalid_plans, "llm_by_model": s.llm_by_model,
                   "runs_by_status": s.runs_by_status, "stages": [asdict(h) for h in s.stages],
                   "run_problems": s.run_problems, "charts": list(s.charts)} for s in data.sections],
        "global_events": data.global_events,
    }


def _default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise TypeError(f"cannot serialise {type(value).__name__}")


def json_text(value: Any) -> str:
    return json.dumps(value, default=_default, indent=2) + "\n"
