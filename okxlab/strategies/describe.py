"""Plain-language text for strategies: used by `okxlab strategies show` and in plan rationales."""

from __future__ import annotations

from okxlab.strategies.indicators import INDICATORS
from okxlab.strategies.model import Condition, Group, Operand, Stop, Strategy


def _num(x: float | int) -> str:
    return f"{x:g}"


def operand(op: Operand) -> str:
    """e.g. "EMA(12)", "MACD(12,26,9) signal", "KDJ(9,3,3) J", "close", "CDLHAMMER"."""
    spec = INDICATORS[op.indicator]
    p = op.param_dict
    if op.indicator == "price":
        return op.line
    if op.indicator == "candle":
        return str(p["pattern"])
    args = ",".join(_num(v) for v in p.values())
    text = f"{spec.label}({args})"
    if op.indicator == "kdj":
        return f"{text} {op.line.upper()}"
    if len(spec.lines) > 1 and op.line != spec.lines[0]:
        return f"{text} {'histogram' if op.line == 'hist' else op.line}"
    if op.indicator == "boll":
        return f"{text} middle"
    return text


def _line_name(op: Operand) -> str:
    if op.indicator == "kdj":
        return op.line.upper()
    return {"hist": "histogram", "value": "value"}.get(op.line, op.line)


def _target(cond: Condition) -> str:
    other, op = cond.other, cond.operand
    if other is None:
        return _num(cond.level or 0.0)
    if op is not None and other.indicator == op.indicator and other.params == op.params and op.indicator != "price":
        return f"its {_line_name(other)} line"  # e.g. MACD(12,26,9) crosses above its signal line
    return operand(other)


def condition(cond: Condition) -> str:
    if cond.label:
        return cond.label
    text = _condition(cond)
    return text if cond.within <= 1 else f"{text} (within the last {cond.within} bars)"


def _condition(cond: Condition) -> str:
    s = cond.signal
    if s == "always":
        return "always"
    assert cond.operand is not None
    a = operand(cond.operand)
    if s in ("cross_above", "cross_below"):
        return f"{a} crosses {s.split('_')[1]} {_target(cond)}"
    if s in ("above", "below"):
        return f"{a} is {s} {_target(cond)}"
    if s == "overbought":
        return f"{a} >= {_num(cond.level or 0.0)} (overbought)"
    if s == "oversold":
        return f"{a} <= {_num(cond.level or 0.0)} (oversold)"
    band = operand(Operand(cond.operand.indicator, cond.operand.params, "middle")).removesuffix(" middle")
    if s == "touch_upper":
        return f"high touches the {band} upper band"
    if s == "touch_lower":
        return f"low touches the {band} lower band"
    if s == "break_upper":
        return f"close breaks above the {band} upper band"
    if s == "break_lower":
        return f"close breaks below the {band} lower band"
    if s.endswith("_alignment"):
        label = INDICATORS[cond.operand.indicator].label
        sign = " > " if s.startswith("bullish") else " < "
        return sign.join(f"{label}({p})" for p in cond.periods) + f" ({s.split('_')[0]} alignment)"
    if s == "bullish_divergence":
        return f"bullish divergence: low under the last {cond.lookback} bars' low while {a} is higher"
    if s == "bearish_divergence":
        return f"bearish divergence: high over the last {cond.lookback} bars' high while {a} is lower"
    if s.startswith("pattern_"):
        kind = s.split("_")[1]
        return f"{a} pattern" if kind == "present" else f"{a} {kind}"
    raise ValueError(f"no description for signal {s}")


def stop(spec: Stop, what: str) -> str:
    if spec.kind == "percent":
        return f"{what} {_num(spec.value)}% from the close"
    return f"{what} {_num(spec.value)} x ATR({spec.atr_period}) from the close"


def group_inline(group: Group) -> str:
    """One line, e.g. "A and (B or C)"."""
    joiner = " and " if group.logic == "and" else " or "
    parts = [f"({group_inline(i)})" if isinstance(i, Group) and len(i.items) > 1 else
             group_inline(i) if isinstance(i, Group) else condition(i) for i in group.items]
    return joiner.join(parts)


def group_lines(group: Group, indent: str = "  ") -> list[str]:
    head = "all of" if group.logic == "and" else "any of"
    out = [f"{head}:"]
    for item in group.items:
        if isinstance(item, Group):
            sub = group_lines(item, indent)
            out.append(f"{indent}- {sub[0]}")
            out.extend(f"{indent}  {line}" for line in sub[1:])
        else:
            out.append(f"{indent}- {condition(item)}")
    return out


def strategy_text(strategy: Strategy) -> str:
    """A readable rendering of the whole strategy, parameters in force included."""
    lines = [f"{strategy.name} ({strategy.schema_version}) from {strategy.source}"]
    if strategy.description:
        lines.append(f"  {strategy.description}")
    if strategy.parameter_specs:
        lines.append("parameters:")
        for name, spec in strategy.parameter_specs.items():
            value = strategy.parameters[name]
            bounds = [f"{k[:3]} {_num(spec[k])}" for k in ("minimum", "maximum") if k in spec]
            note = " (overridden)" if name in strategy.overrides else ""
            extra = f"  [{spec['type']}{', ' + ', '.join(bounds) if bounds else ''}]"
            desc = f"  {spec['description']}" if spec.get("description") else ""
            lines.append(f"  {name} = {_num(value)}{note}{extra}{desc}")
    if not strategy.entries:
        lines.append("entries: none (never opens a position)")
    for kind, side, group in strategy.groups():
        body = group_lines(group)
        lines.append(f"{side} {kind} when {body[0]}")
        lines.extend(body[1:])
    for side in ("long", "short"):
        if side in strategy.entries and side not in strategy.exits:
            lines.append(f"{side} exit: stops only")
    if strategy.stop_loss or strategy.take_profit:
        parts = [stop(s, w) for s, w in ((strategy.stop_loss, "stop loss"), (strategy.take_profit, "take profit")) if s]
        lines.append("stops: " + "; ".join(parts))
    if strategy.entries:
        lines.append(f"leverage: {_num(strategy.leverage)}")
        if strategy.sizing:
            what = "at risk at the stop" if strategy.sizing.mode == "risk_usdt" else "notional"
            lines.append(f"sizing: {_num(strategy.sizing.equity_pct)}% of equity {what}")
        else:
            lines.append("sizing: the agent's risk budget (risk_budget_pct of equity at risk at the stop)")
    return "\n".join(lines)
