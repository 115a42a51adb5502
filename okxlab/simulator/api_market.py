"""Public endpoints: time, status, instruments, tickers, candles, books, trades, mark price, funding.

Everything is derived from the price path at the world's clock: no value after the clock is served.
"""

from __future__ import annotations

import zlib
from typing import Any

from okxlab.marketdata.bars import BarError, parse_bar
from okxlab.simulator import params as P
from okxlab.simulator.errors import OkxError, param_error
from okxlab.simulator.instruments import InstrumentSpec
from okxlab.simulator.market import MAX_BOOK_DEPTH
from okxlab.simulator.orders import fnum
from okxlab.simulator.pricepath import CandleRow, PricePath

INST_TYPES = ("SPOT", "MARGIN", "SWAP", "FUTURES", "OPTION")
TRADE_SPACING_MS = 1_000  # one synthetic public trade per second of market time
TAPE_BIAS = 0.2  # a print is a buy with probability 0.5 + this when the path rose over its second, 0.5 - when it fell


def _vol(x: float) -> str:
    return fnum(round(x, 8))


def _spec(w, q: dict[str, Any]) -> InstrumentSpec:
    return w.spec(P.text(q, "instId", required=True))


def _live_path(w, spec: InstrumentSpec) -> tuple[PricePath, float]:
    path = w.market.path(spec.inst_id)
    px = path.price_at(w.now) if path else None
    if px is None:
        raise OkxError("52000")
    return path, px


def server_time(w, a, q, b) -> list[dict[str, Any]]:
    return [{"ts": str(w.now)}]


def system_status(w, a, q, b) -> list[dict[str, Any]]:
    return []


def instruments(w, a, q, b) -> list[dict[str, Any]]:
    inst_type = P.text(q, "instType", required=True)
    if inst_type not in INST_TYPES:
        raise param_error("instType")
    inst_id = P.text(q, "instId")
    family = P.text(q, "instFamily") or P.text(q, "uly")
    out = []
    for spec in w.market.specs.values():
        if spec.inst_type != inst_type or (inst_id and spec.inst_id != inst_id):
            continue
        if family and f"{spec.base_ccy}-{spec.quote_ccy}" != family:
            continue
        out.append(spec.payload(w.market.state(spec.inst_id, w.now)))
    if inst_id and not out and inst_type in ("SPOT", "SWAP"):
        raise OkxError("51001")
    return out


def _mix(x: int) -> float:
    """splitmix64 of x as a uniform number in [0, 1): a stateless, seeded-by-position random draw."""
    x = (x + 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
    return ((x ^ (x >> 31)) >> 11) / float(1 << 53)


def _tape_side(spec: InstrumentSpec, seq: int, move: float) -> str:
    """The aggressor side of the print at second `seq`: a draw seeded by the instrument and the second (so the
    same print always has the same side), biased towards the path's direction over that second."""
    salt = zlib.crc32(spec.inst_id.encode()) << 32
    p_buy = 0.5 + (TAPE_BIAS if move > 0 else -TAPE_BIAS if move < 0 else 0.0)
    return "buy" if _mix(salt ^ seq) < p_buy else "sell"


def _trades(path: PricePath, spec: InstrumentSpec, t: int, limit: int) -> list[dict[str, Any]]:
    """Synthetic public trades: one per second of the path up to t, newest first. Sides: `_tape_side`; sizes:
    the bar's base volume per second x a seeded factor in [0.2, 1.8)."""
    newest = t // TRADE_SPACING_MS * TRADE_SPACING_MS
    times = [newest - i * TRADE_SPACING_MS for i in range(limit + 1)]
    prices = [path.price_at(x) for x in times]
    unit = spec.lot_sz * spec.ct_val
    out = []
    for i in range(limit):
        if prices[i] is None:
            break
        older = prices[i + 1]
        seq = times[i] // TRADE_SPACING_MS
        side = _tape_side(spec, seq, 0.0 if older is None else prices[i] - older)
        frac = ((seq * 2654435761) & 0xFFFFFFFF) / 2**32
        base = path.base_volume_rate(times[i]) * TRADE_SPACING_MS * (0.2 + 1.6 * frac)
        sz = max(1, round(base / unit)) * spec.lot_sz
        out.append({"instId": spec.inst_id, "side": side, "sz": spec.fmt_sz(sz), "px": spec.fmt_px(prices[i]),
                    "source": "0", "tradeId": str(seq), "ts": str(times[i])})
    return out


def ticker_row(w, spec: InstrumentSpec) -> dict[str, Any] | None:
    path = w.market.path(spec.inst_id)
    px = path.price_at(w.now) if path else None
    if px is None:
        return None
    asks, bids = w.book(spec, px, 1)
    st = path.stats_24h(w.now)
    last = spec.round_px(px)
    vol_base = st["vol24h"]
    if spec.is_swap:
        vol, vol_ccy = vol_base / spec.ct_val, vol_base
    else:
        vol, vol_ccy = vol_base, vol_base * last
    last_sz = _trades(path, spec, w.now, 1)
    return {
        "instType": spec.inst_type, "instId": spec.inst_id, "last": spec.fmt_px(last),
        "lastSz": last_sz[0]["sz"] if last_sz else "0",
        "askPx": spec.fmt_px(asks[0].px), "askSz": spec.fmt_sz(asks[0].lots * spec.lot_sz),
        "bidPx": spec.fmt_px(bids[0].px), "bidSz": spec.fmt_sz(bids[0].lots * spec.lot_sz),
        "open24h": spec.fmt_px(st["open24h"]), "high24h": spec.fmt_px(st["high24h"]),
        "low24h": spec.fmt_px(st["low24h"]), "volCcy24h": _vol(vol_ccy), "vol24h": _vol(vol),
        "ts": str(w.now), "sodUtc0": spec.fmt_px(st["sodUtc0"]), "sodUtc8": spec.fmt_px(st["sodUtc8"]),
    }


def ticker(w, a, q, b) -> list[dict[str, Any]]:
    row = ticker_row(w, _spec(w, q))
    if row is None:
        raise OkxError("52000")
    return [row]


def tickers(w, a, q, b) -> list[dict[str, Any]]:
    inst_type = P.text(q, "instType", required=True)
    if inst_type not in INST_TYPES:
        raise param_error("instType")
    family = P.text(q, "instFamily") or P.text(q, "uly")
    rows = []
    for spec in w.market.specs.values():
        if spec.inst_type == inst_type and (not family or f"{spec.base_ccy}-{spec.quote_ccy}" == family):
            row = ticker_row(w, spec)
            if row is not None:
                rows.append(row)
    return rows


def _candle_path(w, inst_id: str, index: bool) -> tuple[InstrumentSpec, PricePath | None]:
    """The path behind a candle request; index candles take an index id ("BTC-USDT") and use the swap."""
    if index and inst_id in {f"{s.base_ccy}-{s.quote_ccy}" for s in w.market.specs.values()}:
        for candidate in (f"{inst_id}-SWAP", inst_id):
            if w.market.path(candidate) is not None:
                return w.spec(candidate), w.market.path(candidate)
    spec = w.spec(inst_id)
    return spec, w.market.path(inst_id)


def _candles(w, q: dict[str, Any], price: str, max_limit: int) -> list[list[str]]:
    inst_id = P.text(q, "instId", required=True)
    bar = P.text(q, "bar", default="1m")
    try:
        parse_bar(bar)
    except BarError:
        raise param_error("bar") from None
    after = P.integer(q, "after")
    before = P.integer(q, "before")
    limit = P.integer(q, "limit", default=100, lo=1, hi=max_limit)
    spec, path = _candle_path(w, inst_id, index=price == "index")
    if path is None:
        return []
    rows = path.candles(bar, w.now, after, before, limit)
    return [_candle(spec, r, price) for r in rows]


def _candle(spec: InstrumentSpec, r: CandleRow, price: str) -> list[str]:
    ts, o, h, lo, c, vol_base, confirmed = r
    head = [str(ts), spec.fmt_px(o), spec.fmt_px(h), spec.fmt_px(lo), spec.fmt_px(c)]
    confirm = "1" if confirmed else "0"
    if price != "trade":
        return [*head, confirm]
    quote = vol_base * c
    if spec.is_swap:
        return [*head, _vol(vol_base / spec.ct_val), _vol(vol_base), _vol(quote), confirm]
    return [*head, _vol(vol_base), _vol(quote), _vol(quote), confirm]


def candles(w, a, q, b):
    return _candles(w, q, "trade", 300)


def history_candles(w, a, q, b):
    return _candles(w, q, "trade", 300)


def mark_price_candles(w, a, q, b):
    return _candles(w, q, "mark", 100)


def index_candles(w, a, q, b):
    return _candles(w, q, "index", 100)


def _books(w, q: dict[str, Any], max_depth: int) -> list[dict[str, Any]]:
    spec = _spec(w, q)
    depth = P.integer(q, "sz", default=1, lo=1, hi=max_depth)
    _path, px = _live_path(w, spec)
    asks, bids = w.book(spec, px, depth)

    def rows(levels):
        return [[spec.fmt_px(lv.px), spec.fmt_sz(lv.lots * spec.lot_sz), "0", str(1 + (i * 7) % 5)]
                for i, lv in enumerate(levels)]

    return [{"asks": rows(asks), "bids": rows(bids), "ts": str(w.now)}]


def books(w, a, q, b):
    return _books(w, q, MAX_BOOK_DEPTH)


def books_full(w, a, q, b):
    return _books(w, q, 5000)


def trades(w, a, q, b):
    spec = _spec(w, q)
    limit = P.integer(q, "limit", default=100, lo=1, hi=500)
    path, _px = _live_path(w, spec)
    return _trades(path, spec, w.now, limit)


def mark_price(w, a, q, b):
    inst_id = P.text(q, "instId")
    inst_type = P.text(q, "instType")
    if inst_type and inst_type not in INST_TYPES:
        raise param_error("instType")
    out = []
    for spec in ([w.spec(inst_id)] if inst_id else w.market.specs.values()):
        if inst_type and spec.inst_type != inst_type:
            continue
        if w.last(spec.inst_id) is None:
            continue
        out.append({"instType": spec.inst_type, "instId": spec.inst_id, "markPx": spec.fmt_px(w.mark(spec.inst_id)),
                    "ts": str(w.now)})
    return out
