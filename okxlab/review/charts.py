"""Equity and drawdown charts of one leaderboard, as PNG bytes.

Figures are built with matplotlib's object API and the Agg canvas, never pyplot: no global state, so charts
can be drawn in worker threads, and no display is needed.
"""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
from matplotlib.figure import Figure
from matplotlib.ticker import PercentFormatter

from okxlab.review.leaderboard import Leaderboard, benchmark_curve
from okxlab.review.metrics import AgentMetrics


def _series(m: AgentMetrics) -> tuple[pd.DatetimeIndex, np.ndarray] | None:
    """The agent's equity with its opening, as times and values (the opening at its own time)."""
    if m.opening is None or m.opened_at is None:
        return None
    times = pd.DatetimeIndex([pd.Timestamp(m.opened_at)]).append(m.curve.index)
    values = np.concatenate([[m.opening], m.curve.to_numpy(dtype=float)])
    return times, values


def _figure(lb: Leaderboard, title: str) -> tuple[Figure, object]:
    s = lb.settings
    fig = Figure(figsize=(s.chart_width, s.chart_height), dpi=s.chart_dpi, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.set_title(title, fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=1))
    locator = AutoDateLocator()
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))
    return fig, ax


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    return buf.getvalue()


def equity_chart(lb: Leaderboard) -> bytes:
    """Each agent's return since the window opened, with buy-and-hold and cash for scale."""
    fig, ax = _figure(lb, f"Return on equity — book {lb.book} (UTC)")
    drawn = False
    for entry in lb.entries:
        found = _series(entry.metrics)
        if found is None:
            continue
        times, values = found
        ax.step(times, values / values[0] - 1.0, where="post", label=entry.metrics.agent, linewidth=1.4)
        drawn = True
    if not lb.prices.empty:
        times = lb.prices.index
        ax.step(times, benchmark_curve(lb, times), where="post", linestyle="--", color="0.45", linewidth=1.0,
                label=f"buy & hold {lb.settings.benchmark}")
        drawn = True
    ax.axhline(0.0, color="0.2", linewidth=0.8, label="cash")
    if drawn:
        ax.legend(fontsize=8, loc="best")
    else:
        ax.text(0.5, 0.5, "no equity in this window", transform=ax.transAxes, ha="center", va="center")
    return _png(fig)


def drawdown_chart(lb: Leaderboard) -> bytes:
    """Each agent's fall below its running peak."""
    fig, ax = _figure(lb, f"Drawdown — book {lb.book} (UTC)")
    drawn = False
    for entry in lb.entries:
        found = _series(entry.metrics)
        if found is None:
            continue
        times, values = found
        dd = values / np.maximum.accumulate(values) - 1.0
        ax.step(times, dd, where="post", label=entry.metrics.agent, linewidth=1.4)
        drawn = True
    if drawn:
        ax.legend(fontsize=8, loc="lower left")
    else:
        ax.text(0.5, 0.5, "no equity in this window", transform=ax.transAxes, ha="center", va="center")
    return _png(fig)
