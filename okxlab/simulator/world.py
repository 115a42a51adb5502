"""A World: one market clock with its accounts, orders, algo orders and fills, and the matching engine.

Everything here is plain Python with no I/O and no wall clock: the same data, clock moves and requests
always produce the same ids, fills and balances. The HTTP server is a thin layer over `World.call`.

Matching rules (documented for users in docs/simulator.md):
- market orders, and the marketable part of limit/IOC/FOK orders, take liquidity from the book
  synthesised around the path price at the clock (taker fee, one fill per level touched);
- market orders deplete the book they take from, for their account, until the next base bar (`book_side`);
- resting limit orders fill at their own price (maker fee) when the path trades at or through it, up to a
  share of the volume the bar trades there; the rest keeps resting for the next bars (`_fill_resting`);
- algo orders (stop loss / take profit, attached or standalone, and trigger orders) fire when the path
  reaches their trigger price and then place a market (or limit) order at that moment;
- when a swap position goes to zero, its remaining reduce-only algo orders are canceled;
- a cross-margin account whose equity falls to its maintenance margin is liquidated at market.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from okxlab.simulator.accounts import Account, Position, mask_key
from okxlab.simulator.clock import RealtimeClock, ReplayClock
from okxlab.simulator.errors import OkxError, param_error
from okxlab.simulator.faults import Faults
from okxlab.simulator.instruments import InstrumentSpec
from okxlab.simulator.ledger import FUNDING_PERIOD_MS, fill_bills, settle_funding
from okxlab.simulator.market import MAX_BOOK_DEPTH, Level, MarketData, walk
from okxlab.simulator.orders import AlgoOrder, AttachedAlgo, Fill, Order, fnum

Clock = ReplayClock | RealtimeClock


@dataclass
class _Event:
    ts: int
    seq: int
    kind: str  # "fill" | "algo" | "liquidation"
    target: Any
    px: float
    detail: str = ""  # "sl" | "tp" | "trigger"


class World:
    def __init__(self, name: str, market: MarketData, clock: Clock, faults: Faults | None = None,
                 id_base: int = 0):
        self.name = name
        # Ids (ordId, algoId, tradeId, billId, posId) are id_base + a counter per kind. A simulator that keeps
        # its state gives each world a base above every id it ever gave (see Simulator), so no id is reused,
        # across restarts and fresh starts alike; an in-process one starts at 0.
        self.id_base = id_base
        self.agents = True  # whether it was given the configured agents' accounts (provisioned again on resume)
        self.market = market
        self.clock = clock
        self.now: int = clock.start_ms
        self.faults = faults or Faults()
        self.accounts: dict[str, Account] = {}
        self.orders: dict[str, Order] = {}
        self.algos: dict[str, AlgoOrder] = {}
        self.fills: list[Fill] = []
        self.rejections: list[dict[str, Any]] = []  # order requests refused with an sCode (raw, as received)
        self.closed_positions: list[tuple[str, Position, float]] = []  # (api_key, position, close avg px)
        # Every balance change, as OKX bills (okxlab/simulator/ledger.py): fills, funding, transfers. Append-only.
        self.bills: list[dict[str, Any]] = []
        # The last funding time (a multiple of 8 h) settled: positions pay or receive funding at each later one.
        self.funding_settled: int = clock.start_ms // FUNDING_PERIOD_MS * FUNDING_PERIOD_MS
        self._resting: dict[str, Order] = {}  # open orders waiting for the path, by ordId
        self._live_algos: dict[str, AlgoOrder] = {}
        self._since: dict[str, int] = {}  # item id -> last time it was known not to trigger
        self._liq_guard: dict[str, int] = {}  # account -> no liquidation check before this time
        self._liq_cache: dict[str, tuple[tuple[Any, ...], float | None]] = {}  # account -> (inputs, price)
        self._taken: dict[str, list[int]] = {}  # "apiKey|instId|ask" (or bid) -> [base bar start, lots taken in it]
        self._counters = {"ord": 0, "algo": 0, "trade": 0, "bill": 0, "pos": 0, "seq": 0}
        self.events_processed = 0

    # ---- ids and accounts ----------------------------------------------------------------------------
    def _next(self, kind: str) -> int:
        self._counters[kind] += 1
        return self._counters[kind]

    def _id(self, kind: str) -> int:
        return self.id_base + self._next(kind)

    def _ord_id(self) -> str:
        return f"1{self._id('ord'):018d}"

    def _algo_id(self) -> str:
        return f"2{self._id('algo'):018d}"

    def max_id(self) -> int:
        """The largest number any id of this world has used."""
        return self.id_base + max(v for k, v in self._counters.items() if k != "seq")

    def revision(self) -> tuple[Any, ...]:
        """Changes whenever the world's state does through matching or an order request (ids handed out,
        events processed, refusals, fills, accounts; a replay clock's time). What it misses, explicit changes
        (cancel, amend, leverage, faults), the server saves on every POST anyway."""
        return (tuple(self._counters.values()), self.events_processed, len(self.rejections), len(self.fills),
                len(self.accounts), self.now if self.clock.kind == "replay" else None, len(self.bills),
                self.funding_settled)

    def add_account(self, api_key: str, secret: str, passphrase: str, equity: float = 10_000.0,
                    label: str = "") -> Account:
        if api_key in self.accounts:
            raise ValueError(f"world {self.name!r} already has an account with API key {mask_key(api_key)}")
        acct = Account(api_key, secret, passphrase, label=label, initial_equity=float(equity))
        acct.u_time = self.now
        self.accounts[api_key] = acct
        return acct

    # ---- clock ---------------------------------------------------------------------------------------
    def set_clock(self, ts_ms: int) -> int:
        """Move a replay world's clock forward to `ts_ms`, filling and triggering along the way."""
        if self.clock.kind != "replay":
            raise ValueError(f"world {self.name!r} has a realtime clock; only replay clocks can be set")
        if ts_ms < self.now:
            raise ValueError(f"the clock only moves forward (now {self.now}, asked for {ts_ms})")
        self._advance(int(ts_ms))
        return self.now

    def sync(self) -> None:
        """Bring a realtime world up to the wall clock (called before serving each request)."""
        if self.clock.kind == "realtime":
            self._advance(self.clock.now(self.now))

    def _advance(self, t1: int) -> None:
        """Walk the path to t1: fills, stops and liquidations in time order, and funding at each funding time
        passed (after what happened before it, before what happens after)."""
        while self.funding_settled + FUNDING_PERIOD_MS <= t1:
            at = self.funding_settled + FUNDING_PERIOD_MS
            if not (self._has_positions() or self._resting or self._live_algos):
                # nothing can open a position before t1: no funding is due up to it
                self.funding_settled = t1 // FUNDING_PERIOD_MS * FUNDING_PERIOD_MS
                break
            self._advance_events(at)
            settle_funding(self, at)
        self._advance_events(t1)

    def _advance_events(self, t1: int) -> None:
        while self._resting or self._live_algos or self._has_positions():
            ev = self._next_event(t1)
            if ev is None:
                break
            self.now = ev.ts
            self.events_processed += 1
            self._handle(ev)
        self._glide(max(self.now, t1))

    def next_event_at(self, t1: int) -> int | None:
        """When the next fill, stop or liquidation would happen if the clock moved to t1 (None: nothing up to
        t1). Changes nothing."""
        if not (self._resting or self._live_algos or self._has_positions()):
            return None
        ev = self._next_event(t1)
        funding = self.funding_settled + FUNDING_PERIOD_MS
        if self._has_positions() and funding <= t1 and (ev is None or funding <= ev.ts):
            return funding  # funding changes balances: the clock must be set (not glided) past it
        return None if ev is None else ev.ts

    def glide(self, t1: int) -> None:
        """Move the clock to t1 when nothing happens before it (`next_event_at(t1)` is None): what
        `set_clock` does then, without scanning the path again."""
        if self._has_positions():
            while self.funding_settled + FUNDING_PERIOD_MS <= t1:  # (next_event_at stops before these)
                self.funding_settled += FUNDING_PERIOD_MS
                settle_funding(self, self.funding_settled)
        else:
            self.funding_settled = max(self.funding_settled, t1 // FUNDING_PERIOD_MS * FUNDING_PERIOD_MS)
        self._glide(t1)

    def _glide(self, t1: int) -> None:
        self.now = t1
        for key, since in self._since.items():  # nothing fires up to t1: later scans start there
            self._since[key] = max(since, t1)  # (a partly filled order's is at the end of its bar already)

    def resting_orders(self, api_key: str | None = None) -> int:
        """How many orders rest on the book waiting for the price path (of one account, or of all)."""
        if api_key is None:
            return len(self._resting)
        return sum(o.api_key == api_key for o in self._resting.values())

    def _has_positions(self) -> bool:
        return any(p.pos for a in self.accounts.values() for p in a.positions.values())

    def _next_event(self, t1: int) -> _Event | None:
        best: _Event | None = None

        def offer(ev: _Event) -> None:
            nonlocal best
            if best is None or (ev.ts, ev.seq) < (best.ts, best.seq):
                best = ev

        for order in self._resting.values():
            path = self.market.path(order.inst_id)
            if path is None or order.px is None:
                continue
            cross = path.first_cross(self._since[order.ord_id], t1, order.px, down=order.side == "buy")
            if cross is not None:
                offer(_Event(cross.ts, order.seq, "fill", order, order.px))
        for algo in self._live_algos.values():
            path = self.market.path(algo.inst_id)
            if path is None:
                continue
            since = self._since[algo.algo_id]
            for which, level, down in _algo_levels(algo):
                cross = path.first_cross(since, t1, level, down)
                if cross is not None:
                    offer(_Event(cross.ts, algo.seq, "algo", algo, cross.px, which))
        for acct in self.accounts.values():
            for pos in acct.positions.values():
                if not pos.pos:
                    continue
                liq = self.liquidation_px(acct, pos.inst_id)
                path = self.market.path(pos.inst_id)
                if liq is None or path is None:
                    continue
                since = max(self.now, self._liq_guard.get(acct.api_key, self.now))
                cross = path.first_cross(since, t1, liq, down=pos.pos > 0)
                if cross is not None:
                    offer(_Event(cross.ts, -1, "liquidation", acct, cross.px))
        return best

    def _handle(self, ev: _Event) -> None:
        if ev.kind == "fill":
            order: Order = ev.target
            self._fill_resting(order)
        elif ev.kind == "algo":
            self._trigger(ev.target, ev.detail, ev.px)
        else:
            self._maybe_liquidate(ev.target)

    # ---- prices --------------------------------------------------------------------------------------
    def spec(self, inst_id: str) -> InstrumentSpec:
        spec = self.market.spec(inst_id)
        if spec is None:
            raise OkxError("51001")
        return spec

    def last(self, inst_id: str) -> float | None:
        return self.market.last(inst_id, self.now)

    def mark(self, inst_id: str, raw: bool = False) -> float:
        """Price used to value positions (unrealised PnL, margin, liquidation): the modelled mark price
        (`MarketData.mark_price`, on the tick grid unless `raw`), or the last close when the instrument has no
        price now."""
        path = self.market.path(inst_id)
        if path is None:
            return 0.0
        px = self.market.mark_price(inst_id, self.now)
        if px is not None:
            return px if raw else self.spec(inst_id).round_px(px)
        px = path.last_known(self.now)
        return px if px is not None else 0.0

    def index(self, inst_id: str) -> float:
        """The index price now on the tick grid (`MarketData.index_price`), else as `mark`."""
        px = self.market.index_price(inst_id, self.now)
        return self.spec(inst_id).round_px(px) if px is not None else self.mark(inst_id)

    # ---- books and depletion -------------------------------------------------------------------------
    # Depletion is per account: an account's orders walk a book missing what its own orders took in this bar.
    # Agents sharing a world never move each other's fills, so concurrent agents replay deterministically
    # whatever order their workers send in, and the arena compares them on the same market.
    def _taken_lots(self, api_key: str, inst_id: str, ask: bool) -> int:
        """Lots this account's orders took from this side in the base bar covering the clock."""
        rec = self._taken.get(f"{api_key}|{inst_id}|{'ask' if ask else 'bid'}")
        path = self.market.path(inst_id)
        bounds = path.bar_bounds(self.now) if path is not None else None
        return rec[1] if rec is not None and bounds is not None and rec[0] == bounds[0] else 0

    def _deplete(self, api_key: str, inst_id: str, ask: bool, lots: int) -> None:
        """Remember `lots` taken by this account from one side of the book in the current base bar (forgotten
        at the next)."""
        path = self.market.path(inst_id)
        bounds = path.bar_bounds(self.now) if path is not None else None
        if bounds is None or lots <= 0:
            return
        self._taken[f"{api_key}|{inst_id}|{'ask' if ask else 'bid'}"] = [
            bounds[0], self._taken_lots(api_key, inst_id, ask) + lots]

    def book_side(self, spec: InstrumentSpec, mid: float, ask: bool, depth: int = MAX_BOOK_DEPTH,
                  api_key: str | None = None) -> Iterator[Level]:
        """One side of the book now: depth scaled to the bar's volume, minus what this account (if any) took
        from it in this bar."""
        taken = self._taken_lots(api_key, spec.inst_id, ask) if api_key is not None else 0
        return self.market.levels(spec, mid, ask, depth, self.market.level_usd(spec.inst_id, self.now, mid), taken)

    def book(self, spec: InstrumentSpec, mid: float, depth: int) -> tuple[list[Level], list[Level]]:
        """The public book now: (asks ascending, bids descending), `depth` levels each, without depletion."""
        return list(self.book_side(spec, mid, True, depth)), list(self.book_side(spec, mid, False, depth))

    def tradable_price(self, spec: InstrumentSpec) -> float:
        """Raw path price now, or the OKX error for an instrument without a price at this time."""
        path = self.market.path(spec.inst_id)
        px = path.price_at(self.now) if path else None
        if px is None:
            if path is not None and self.now < path.start_ms:
                raise OkxError("51021")
            raise OkxError("51022")
        return px

    # ---- margin --------------------------------------------------------------------------------------
    def margin(self, acct: Account, raw: bool = False) -> dict[str, float]:
        """USDT cash, unrealised PnL, equity, initial/maintenance margin, order margin, available equity."""
        cash = acct.balances.get("USDT", 0.0)
        upl = imr = mmr = notional = 0.0
        for pos in acct.positions.values():
            if not pos.pos:
                continue
            spec = self.spec(pos.inst_id)
            mark = self.mark(pos.inst_id, raw)
            upl += (mark - pos.avg_px) * pos.pos * spec.ct_val
            value = abs(pos.pos) * spec.ct_val * mark
            notional += value
            imr += value / acct.lever(pos.inst_id)
            mmr += value * spec.mmr
        frozen = 0.0
        for order in self._resting.values():
            if order.api_key != acct.api_key or order.px is None:
                continue
            spec = self.spec(order.inst_id)
            if spec.is_swap and not order.reduce_only:
                frozen += order.remaining * spec.ct_val * order.px / acct.lever(order.inst_id)
            elif not spec.is_swap and order.side == "buy":
                frozen += order.remaining * order.px
        eq = cash + upl
        return {"cash": cash, "upl": upl, "eq": eq, "imr": imr, "mmr": mmr, "frozen": frozen,
                "notional": notional, "avail": eq - imr - frozen}

    def margin_at(self, acct: Account, ts_ms: int) -> dict[str, float]:
        """`margin` as it would read at ts_ms with positions and orders as they are now (a replay's look at a
        stretch where nothing happens)."""
        now = self.now
        self.now = ts_ms
        try:
            return self.margin(acct)
        finally:
            self.now = now

    def frozen_base(self, acct: Account, ccy: str) -> float:
        return sum(o.remaining for o in self._resting.values()
                   if o.api_key == acct.api_key and o.side == "sell" and not self.spec(o.inst_id).is_swap
                   and self.spec(o.inst_id).base_ccy == ccy)

    def liquidation_px(self, acct: Account, inst_id: str) -> float | None:
        """Price of `inst_id` at which equity meets maintenance margin, other prices held where they are."""
        pos = acct.positions.get(inst_id)
        if pos is None or not pos.pos:
            return None
        spec = self.spec(inst_id)
        c, s = spec.ct_val, pos.pos
        if sum(1 for p in acct.positions.values() if p.pos) == 1:
            # The only position: the rest of the account is its cash, whatever the price, so the level only
            # changes with the position or the cash. The path is walked tick by tick and this is asked at
            # every step: remember it.
            key = (inst_id, s, pos.avg_px, acct.balances.get("USDT", 0.0), spec.mmr)
            cached = self._liq_cache.get(acct.api_key)
            if cached is not None and cached[0] == key:
                return cached[1]
            denom = c * (s - abs(s) * spec.mmr)
            px = None if denom == 0 else (pos.avg_px * s * c - acct.balances.get("USDT", 0.0)) / denom
            px = px if px is not None and px > 0 else None
            self._liq_cache[acct.api_key] = (key, px)
            return px
        m = self.margin(acct, raw=True)
        mark = self.mark(inst_id, raw=True)
        upl_here = (mark - pos.avg_px) * s * c
        mm_here = abs(s) * c * mark * spec.mmr
        rest_eq = m["cash"] + m["upl"] - upl_here
        rest_mm = m["mmr"] - mm_here
        denom = c * (s - abs(s) * spec.mmr)
        if denom == 0:
            return None
        px = (rest_mm - rest_eq + pos.avg_px * s * c) / denom
        return px if px > 0 else None

    # ---- placing orders ------------------------------------------------------------------------------
    def place_order(self, acct: Account, req: dict[str, Any], algo: AlgoOrder | None = None) -> Order:
        """Validate and place one order at the clock; raises OkxError (sCode/sMsg) when OKX would refuse it."""
        from okxlab.simulator import params as P

        if not isinstance(req, dict):
            raise param_error("order")
        inst_id = P.text(req, "instId", required=True)
        spec = self.spec(inst_id)
        td_mode = P.choice(req, "tdMode", ("cash", "cross", "isolated", "spot_isolated"), required=True)
        side = P.choice(req, "side", ("buy", "sell"), required=True)
        ord_type = P.choice(req, "ordType", ("market", "limit", "post_only", "fok", "ioc"), required=True)
        sz = P.number(req, "sz", required=True)
        px = P.number(req, "px", required=False)
        if ord_type != "market" and px is None:
            raise OkxError("51204")
        if ord_type == "market":
            px = None
        cl = P.cl_ord_id(req)
        tag = P.tag(req)
        reduce_only = P.boolean(req, "reduceOnly")
        pos_side = P.choice(req, "posSide", ("net", "long", "short"), default="net")
        tgt_ccy = P.choice(req, "tgtCcy", ("base_ccy", "quote_ccy"))
        if pos_side != "net":
            raise param_error("posSide")  # net position mode: long/short are refused as OKX does
        if tgt_ccy == "quote_ccy" and (spec.is_swap or side == "sell" or ord_type != "market"):
            raise param_error("tgtCcy")
        if spec.is_swap and td_mode != "cross":
            raise OkxError("51010") if td_mode == "isolated" else param_error("tdMode")
        if not spec.is_swap and td_mode != "cash":
            raise OkxError("54000")
        if cl and cl in acct.cl_ord_ids:
            raise OkxError("51016")
        attached = self._parse_attached(spec, req)
        if reduce_only and attached:
            raise OkxError("51100")
        if reduce_only and not spec.is_swap:
            raise OkxError("51139")
        # size limits and grid, then the price: above the minimum, inside the price limit, on the grid
        quote_sized = not spec.is_swap and ord_type == "market" and side == "buy" and tgt_ccy == "quote_ccy"
        _check_size(spec, ord_type, sz, quote_sized)
        if px is not None and px < spec.tick_sz:
            raise OkxError("51122", param0=spec.fmt_px(spec.tick_sz))
        raw_px = self.tradable_price(spec)
        if px is not None:
            _check_price(spec, side, px, raw_px, "px")
            if sz * spec.ct_val * px > spec.max_lmt_amt:
                raise OkxError("51203", param0=fnum(spec.max_lmt_amt))
        if reduce_only:
            pos = acct.positions.get(inst_id)
            if pos is None or not pos.pos:
                raise OkxError("51169")
            if (pos.pos > 0) == (side == "buy"):
                raise OkxError("51170")
        ask1, bid1 = self.market.touch(spec, raw_px)
        self._check_attached(spec, side, ord_type, px, attached, ask1, bid1)
        self._check_funds(acct, spec, side, ord_type, sz, px, reduce_only, quote_sized,
                          ask1 if side == "buy" else bid1)
        order = Order(
            ord_id=self._ord_id(), api_key=acct.api_key, inst_id=inst_id, inst_type=spec.inst_type, side=side,
            ord_type=ord_type, sz=sz, px=px, td_mode=td_mode, c_time=self.now, seq=self._next("seq"),
            cl_ord_id=cl, tag=tag, tgt_ccy=tgt_ccy if not spec.is_swap else "", reduce_only=reduce_only,
            lever=acct.lever(inst_id) if spec.is_swap else 0.0, u_time=self.now, attached=attached,
            fee_ccy=spec.quote_ccy if spec.is_swap or side == "sell" else spec.base_ccy,
            raw=dict(req),
        )
        if algo is not None:
            order.algo_id, order.algo_cl_ord_id = algo.algo_id, algo.algo_cl_ord_id
            order.source = "6" if algo.ord_type == "trigger" else "7"
        self.orders[order.ord_id] = order
        if cl:
            acct.cl_ord_ids[cl] = order.ord_id
        self._execute_new(acct, spec, order, self.book_side(spec, raw_px, side == "buy", api_key=acct.api_key))
        return order

    def _parse_attached(self, spec: InstrumentSpec, req: dict[str, Any]) -> list[AttachedAlgo]:
        from okxlab.simulator import params as P

        items = req.get("attachAlgoOrds")
        if items is None and any(req.get(k) not in (None, "") for k in ("tpTriggerPx", "slTriggerPx")):
            items = [{k: req.get(k) for k in ("tpTriggerPx", "tpOrdPx", "slTriggerPx", "slOrdPx")}]
        if items is None or items == []:
            return []
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            raise param_error("attachAlgoOrds")
        out = []
        for item in items:
            tp = P.number(item, "tpTriggerPx")
            sl = P.number(item, "slTriggerPx")
            if tp is None and sl is None:
                raise param_error("attachAlgoOrds")
            tp_ord = P.number(item, "tpOrdPx", allow_minus_one=True)
            sl_ord = P.number(item, "slOrdPx", allow_minus_one=True)
            for name, value in (("tpTriggerPx", tp), ("slTriggerPx", sl), ("tpOrdPx", tp_ord), ("slOrdPx", sl_ord)):
                if value is not None and value != -1 and not spec.on_tick(value):
                    raise param_error(name)
            for name in ("tpTriggerPxType", "slTriggerPxType"):
                P.choice(item, name, ("last", "index", "mark"))
            out.append(AttachedAlgo(
                attach_algo_id=self._algo_id(), attach_algo_cl_ord_id=P.cl_ord_id(item, "attachAlgoClOrdId"),
                tp_trigger_px=tp, tp_ord_px=(tp_ord if tp_ord is not None else -1.0) if tp is not None else None,
                sl_trigger_px=sl, sl_ord_px=(sl_ord if sl_ord is not None else -1.0) if sl is not None else None,
            ))
        return out

    @staticmethod
    def _check_attached(spec: InstrumentSpec, side: str, ord_type: str, px: float | None,
                        attached: list[AttachedAlgo], ask: float, bid: float) -> None:
        buy = side == "buy"
        for a in attached:
            tp, sl = a.tp_trigger_px, a.sl_trigger_px
            if ord_type == "market":
                ref = ask if buy else bid
                if tp is not None and (tp <= ref if buy else tp >= ref):
                    raise OkxError("51050" if buy else "51052")
                if sl is not None and (sl >= ref if buy else sl <= ref):
                    raise OkxError("51051" if buy else "51053")
            elif px is not None:
                if tp is not None and (tp <= px if buy else tp >= px):
                    raise OkxError("51046" if buy else "51048")
                if sl is not None and (sl >= px if buy else sl <= px):
                    raise OkxError("51047" if buy else "51049")

    def _check_funds(self, acct: Account, spec: InstrumentSpec, side: str, ord_type: str, sz: float,
                     px: float | None, reduce_only: bool, quote_sized: bool, touch: float) -> None:
        ref = touch if ord_type == "market" or px is None else px
        if spec.is_swap:
            if reduce_only:
                return
            pos = acct.positions.get(spec.inst_id)
            held = pos.pos if pos else 0.0
            opening = sz if held == 0 or (held > 0) == (side == "buy") else max(0.0, sz - abs(held))
            need = opening * spec.ct_val * ref / acct.lever(spec.inst_id) + sz * spec.ct_val * ref * spec.taker_fee
            if need > self.margin(acct)["avail"] + 1e-9:
                raise OkxError("51008", param0=spec.settle_ccy)
        elif side == "buy":
            need = sz if quote_sized else sz * ref
            if need > self.margin(acct)["avail"] + 1e-9:
                raise OkxError("51008", "Order failed. Insufficient USDT balance in account")
        else:
            have = acct.balances.get(spec.base_ccy, 0.0) - self.frozen_base(acct, spec.base_ccy)
            if sz > have + 1e-12:
                raise OkxError("51008", f"Order failed. Insufficient {spec.base_ccy} balance in account")

    def _execute_new(self, acct: Account, spec: InstrumentSpec, order: Order, levels: Iterator[Level]) -> None:
        buy = order.side == "buy"
        if order.ord_type == "market" and order.tgt_ccy == "quote_ccy":
            takes = _walk_quote(levels, order.sz, spec.lot_sz * spec.ct_val)
        else:
            lots = self._capped_lots(acct, spec, order, spec.lots(order.sz) or 0)
            takes = walk(levels, lots, order.px, buy)
        if order.ord_type == "post_only" and takes:
            return self._cancel(order, "31", "The post-only order will take liquidity in taker orders")
        if order.ord_type == "fok" and sum(n for _, n in takes) < (spec.lots(order.sz) or 0):
            return self._cancel(order, "14", "Order canceled: FOK order could not be filled completely")
        self._deplete(order.api_key, spec.inst_id, buy, sum(n for _, n in takes))
        for px, n in takes:
            self._fill(order, px, n * spec.lot_sz, maker=False)
        if order.tgt_ccy == "quote_ccy" and takes:
            self._complete(order)
        if order.state == "filled":
            return None
        if order.ord_type in ("market", "ioc", "fok") or self._capped_lots(acct, spec, order, 1) == 0:
            reason = "Order canceled: IOC order was partially canceled due to incompletely filled"
            return self._cancel(order, "14" if order.ord_type != "market" else "0", reason)
        self._resting[order.ord_id] = order
        self._since[order.ord_id] = self.now
        return None

    def _capped_lots(self, acct: Account, spec: InstrumentSpec, order: Order, lots: int) -> int:
        """Reduce-only orders never take more than the opposite position."""
        if not order.reduce_only:
            return lots
        pos = acct.positions.get(order.inst_id)
        if pos is None or not pos.pos or (pos.pos > 0) == (order.side == "buy"):
            return 0
        return min(lots, spec.lots(abs(pos.pos)) or 0)

    def _fill_resting(self, order: Order) -> None:
        """The path trades at or through a resting order's price in this base bar: it fills, at its price, up
        to `maker_share` of the volume the bar trades at or through that price from now to the bar's end; the
        rest keeps resting and is looked at again from the next bar (one maker fill per order per bar)."""
        acct = self.accounts[order.api_key]
        spec = self.spec(order.inst_id)
        lots = self._capped_lots(acct, spec, order, round(order.remaining / spec.lot_sz))
        if lots <= 0:
            self._cancel(order, "0", "Order canceled: reduce-only order has no position to reduce")
            return
        path = self.market.path(order.inst_id)
        bounds = path.bar_bounds(self.now)
        through = path.volume_through(self.now, order.px, down=order.side == "buy")  # base currency
        avail = int(self.market.book_model.maker_share * through / (spec.lot_sz * spec.ct_val) + 1e-9)
        take = min(lots, avail)
        if take > 0:
            self._fill(order, order.px, take * spec.lot_sz, maker=True)
        if not order.is_open:
            return
        if take == lots and lots < round(order.remaining / spec.lot_sz) + take:  # capped by reduce-only
            self._cancel(order, "0", "Order canceled: reduce-only order has no position to reduce")
            return
        self._since[order.ord_id] = bounds[1] - 1  # the next fill is in a later bar

    def _cancel(self, order: Order, source: str, reason: str) -> None:
        order.state = "canceled"
        order.cancel_source, order.cancel_reason = source, reason
        order.u_time = self.now
        self._resting.pop(order.ord_id, None)
        self._since.pop(order.ord_id, None)
        if order.acc_fill_sz > 0 and order.attached and not order.attached_created:
            self._create_attached(order)

    def amend_order(self, order: Order, req: dict[str, Any]) -> None:
        """trade/amend-order: new size and/or price, and the attached TP/SL of a pending order."""
        from okxlab.simulator import params as P

        new_sz = P.number(req, "newSz")
        new_px = P.number(req, "newPx")
        changes = {k: P.number(req, k, positive=False, allow_minus_one=True)
                   for k in ("newTpTriggerPx", "newTpOrdPx", "newSlTriggerPx", "newSlOrdPx")}
        if new_sz is None and new_px is None and all(v is None for v in changes.values()):
            raise OkxError("51500")
        if not order.is_open:
            raise OkxError("51503")
        spec = self.spec(order.inst_id)
        for key, value in changes.items():  # 0 removes a TP/SL, -1 is a market order price
            if value is not None and value not in (0, -1) and not spec.on_tick(value):
                raise param_error(key)
        if new_sz is not None:
            if new_sz > spec.max_lmt_sz:
                raise OkxError("51203", param0=fnum(spec.max_lmt_sz))
            if spec.lots(new_sz) is None:
                raise OkxError("51121")
            if new_sz <= order.acc_fill_sz + 1e-12:
                raise param_error("newSz")
        if new_px is not None and new_px < spec.tick_sz:
            raise OkxError("51122", param0=spec.fmt_px(spec.tick_sz))
        buy = order.side == "buy"
        mid = self.tradable_price(spec)
        if new_px is not None:
            _check_price(spec, order.side, new_px, mid, "newPx")
        if new_px is not None and order.ord_type == "post_only" and walk(self.book_side(spec, mid, buy, api_key=order.api_key), 1, new_px, buy):
            raise OkxError("51511")
        if new_sz is not None:
            order.sz = new_sz
        if new_px is not None:
            order.px = new_px
        if any(v is not None for v in changes.values()):
            att = order.attached[0] if order.attached else None
            if att is None:
                att = AttachedAlgo(attach_algo_id=self._algo_id())
                order.attached.append(att)
            for key, field_name in (("newTpTriggerPx", "tp_trigger_px"), ("newSlTriggerPx", "sl_trigger_px"),
                                    ("newTpOrdPx", "tp_ord_px"), ("newSlOrdPx", "sl_ord_px")):
                value = changes[key]
                if value is not None:
                    setattr(att, field_name, None if value == 0 else value)
            if att.tp_trigger_px is not None and att.tp_ord_px is None:
                att.tp_ord_px = -1.0
            if att.sl_trigger_px is not None and att.sl_ord_px is None:
                att.sl_ord_px = -1.0
        order.u_time = self.now
        order.raw.setdefault("_amends", []).append(dict(req))
        acct = self.accounts[order.api_key]
        takes = walk(self.book_side(spec, mid, buy, api_key=order.api_key), self._capped_lots(
            acct, spec, order, round(order.remaining / spec.lot_sz)), order.px, buy)
        self._deplete(order.api_key, spec.inst_id, buy, sum(n for _, n in takes))
        for px, n in takes:
            self._fill(order, px, n * spec.lot_sz, maker=False)
        if order.is_open:  # a new price is looked at from now; the same price keeps waiting for its next bar
            since = self._since.get(order.ord_id, self.now)
            self._since[order.ord_id] = self.now if new_px is not None else max(since, self.now)

    def amend_algo(self, algo: AlgoOrder, req: dict[str, Any]) -> None:
        """trade/amend-algos: new size or trigger/order prices of a live algo order."""
        from okxlab.simulator import params as P

        if not algo.is_live:
            raise OkxError("51503")
        spec = self.spec(algo.inst_id)
        new_sz = P.number(req, "newSz")
        fields = {"newTpTriggerPx": "tp_trigger_px", "newTpOrdPx": "tp_ord_px", "newSlTriggerPx": "sl_trigger_px",
                  "newSlOrdPx": "sl_ord_px", "newTriggerPx": "trigger_px", "newOrdPx": "order_px"}
        values = {k: P.number(req, k, positive=False, allow_minus_one=True) for k in fields}
        if new_sz is None and all(v is None for v in values.values()):
            raise OkxError("51500")
        if new_sz is not None and new_sz > (spec.max_trigger_sz if algo.ord_type == "trigger" else spec.max_stop_sz):
            raise OkxError("51252" if algo.ord_type == "trigger" else "51275")
        if new_sz is not None and spec.lots(new_sz) is None:
            raise OkxError("51121")
        for key, value in values.items():
            if value is not None and value not in (0, -1) and not spec.on_tick(value):
                raise param_error(key)
        if new_sz is not None:
            algo.sz = new_sz
        for key, attr in fields.items():
            if values[key] is not None:
                setattr(algo, attr, None if values[key] == 0 else values[key])
        algo.u_time = self.now
        algo.raw.setdefault("_amends", []).append(dict(req))
        self._live_algos.pop(algo.algo_id, None)
        self._start_algo(algo)

    def record_rejection(self, acct: Account, endpoint: str, raw: Any, exc: OkxError) -> None:
        self.rejections.append({"api_key": acct.api_key, "endpoint": endpoint, "raw": raw, "sCode": exc.code,
                                "sMsg": exc.msg, "ts": self.now})

    def cancel_order(self, order: Order) -> None:
        if not order.is_open:
            raise OkxError("51400")
        self._cancel(order, "1", "Order canceled by user")

    # ---- fills ---------------------------------------------------------------------------------------
    def _fill(self, order: Order, px: float, sz: float, maker: bool) -> Fill:
        acct = self.accounts[order.api_key]
        spec = self.spec(order.inst_id)
        rate = spec.maker_fee if maker else spec.taker_fee
        buy = order.side == "buy"
        pnl = 0.0
        before = acct.positions[spec.inst_id].pos if spec.inst_id in acct.positions else 0.0
        if spec.is_swap:
            pnl = self._apply_position(acct, spec, buy, px, sz)
            fee = -px * sz * spec.ct_val * rate
            acct.credit(spec.settle_ccy, pnl + fee)
            pos = acct.positions[spec.inst_id]
            pos.realized_pnl += pnl + fee
            pos.pnl += pnl
            pos.fee += fee
            fee_ccy = spec.settle_ccy
        elif buy:
            fee = -sz * rate  # OKX charges spot buys in the currency received
            acct.credit(spec.quote_ccy, -px * sz)
            acct.credit(spec.base_ccy, sz + fee)
            fee_ccy = spec.base_ccy
        else:
            fee = -px * sz * rate
            acct.credit(spec.base_ccy, -sz)
            acct.credit(spec.quote_ccy, px * sz + fee)
            fee_ccy = spec.quote_ccy
        trade_id = str(self._id("trade"))
        fill = Fill(trade_id=trade_id, bill_id=f"3{self._id('bill'):018d}", api_key=acct.api_key,
                    ord_id=order.ord_id, cl_ord_id=order.cl_ord_id, tag=order.tag, inst_id=order.inst_id,
                    inst_type=spec.inst_type, side=order.side, fill_px=px, fill_sz=sz, fee=fee, fee_ccy=fee_ccy,
                    fee_rate=-rate, exec_type="M" if maker else "T", fill_pnl=pnl, ts=self.now,
                    mark_px=self.mark(order.inst_id), idx_px=self.index(order.inst_id))
        self.fills.append(fill)
        fill_bills(self, acct, spec, fill, before)
        order.acc_fill_sz = round(order.acc_fill_sz + sz, spec.sz_decimals + 2)
        order.notional_filled += px * sz
        order.fee += fee
        order.fee_ccy = fee_ccy
        order.pnl += pnl
        order.fill_px, order.fill_sz, order.fill_time, order.trade_id = px, sz, self.now, trade_id
        if spec.is_swap and spec.inst_id in acct.positions:
            acct.positions[spec.inst_id].last_trade_id = trade_id
        order.u_time = self.now
        acct.u_time = self.now
        order.state = "partially_filled"
        if order.tgt_ccy != "quote_ccy" and round(order.remaining / spec.lot_sz) <= 0:
            self._complete(order)
        self._after_position_change(acct, spec)
        return fill

    def _complete(self, order: Order) -> None:
        order.state = "filled"
        self._resting.pop(order.ord_id, None)
        self._since.pop(order.ord_id, None)
        if order.attached and not order.attached_created:
            self._create_attached(order)

    def _apply_position(self, acct: Account, spec: InstrumentSpec, buy: bool, px: float, sz: float) -> float:
        """Update the net position with a fill; return the PnL realised by the closing part."""
        pos = acct.positions.get(spec.inst_id)
        if pos is None or not pos.pos:
            pos = Position(spec.inst_id, f"4{self._id('pos'):018d}", c_time=self.now)
            acct.positions[spec.inst_id] = pos
        old = round(pos.pos / spec.lot_sz)
        delta = round(sz / spec.lot_sz) * (1 if buy else -1)
        new = old + delta
        pnl = 0.0
        if old and (old > 0) != (delta > 0):
            closed = min(abs(delta), abs(old))
            pnl = (px - pos.avg_px) * closed * spec.lot_sz * spec.ct_val * (1 if old > 0 else -1)
            pos.close_qty = round(pos.close_qty + closed * spec.lot_sz, spec.sz_decimals)
            pos.close_notional += px * closed * spec.lot_sz
            if new and (new > 0) != (old > 0):
                pos.avg_px = px  # flipped: the rest opens at the fill price
        else:
            pos.avg_px = (pos.avg_px * abs(old) + px * abs(delta)) / abs(new)
        if not pos.direction:
            pos.direction = "long" if delta > 0 else "short"
        pos.pos = round(new * spec.lot_sz, spec.sz_decimals)
        pos.max_pos = max(pos.max_pos, abs(pos.pos))
        pos.u_time = self.now
        return pnl

    def _after_position_change(self, acct: Account, spec: InstrumentSpec) -> None:
        if not spec.is_swap:
            return
        pos = acct.positions.get(spec.inst_id)
        if pos is not None and not pos.pos:
            # Position closed: keep it in the history and cancel the algo orders that would reduce it.
            del acct.positions[spec.inst_id]
            self.closed_positions.append((acct.api_key, pos, self.now))
            for algo in list(self._live_algos.values()):
                if algo.api_key == acct.api_key and algo.inst_id == spec.inst_id and algo.reduce_only:
                    self._end_algo(algo, "canceled")

    # ---- algo orders ---------------------------------------------------------------------------------
    def _create_attached(self, order: Order) -> None:
        order.attached_created = True
        spec = self.spec(order.inst_id)
        acct = self.accounts[order.api_key]
        for a in order.attached:
            algo = AlgoOrder(
                algo_id=a.attach_algo_id, api_key=order.api_key, inst_id=order.inst_id, inst_type=order.inst_type,
                side="sell" if order.side == "buy" else "buy",
                ord_type="oco" if a.tp_trigger_px is not None and a.sl_trigger_px is not None else "conditional",
                sz=order.acc_fill_sz, td_mode=order.td_mode, c_time=self.now, seq=self._next("seq"),
                algo_cl_ord_id=a.attach_algo_cl_ord_id, tag=order.tag, reduce_only=spec.is_swap,
                lever=acct.lever(order.inst_id) if spec.is_swap else 0.0,
                tp_trigger_px=a.tp_trigger_px, tp_ord_px=a.tp_ord_px, sl_trigger_px=a.sl_trigger_px,
                sl_ord_px=a.sl_ord_px, parent_ord_id=order.ord_id, u_time=self.now,
                raw={"attachAlgoOrds": order.raw.get("attachAlgoOrds"), "parentOrdId": order.ord_id},
            )
            if a.attach_algo_cl_ord_id:
                acct.algo_cl_ord_ids[a.attach_algo_cl_ord_id] = algo.algo_id
            self._start_algo(algo)

    def _start_algo(self, algo: AlgoOrder) -> None:
        self.algos[algo.algo_id] = algo
        self._live_algos[algo.algo_id] = algo
        self._since[algo.algo_id] = self.now
        px = self.market.path(algo.inst_id).price_at(self.now) if self.market.path(algo.inst_id) else None
        if px is None:
            return
        for which, level, down in _algo_levels(algo):
            if (px <= level) if down else (px >= level):  # already beyond the trigger: fires now
                self._trigger(algo, which, px)
                return

    def _trigger(self, algo: AlgoOrder, which: str, px: float) -> None:
        acct = self.accounts[algo.api_key]
        spec = self.spec(algo.inst_id)
        algo.trigger_time = self.now
        algo.actual_side = which if which in ("sl", "tp") else algo.side
        ord_px = {"sl": algo.sl_ord_px, "tp": algo.tp_ord_px, "trigger": algo.order_px}[which]
        sz = algo.sz
        if algo.reduce_only or algo.close_fraction:
            pos = acct.positions.get(algo.inst_id)
            held = abs(pos.pos) if pos is not None and (pos.pos > 0) == (algo.side == "sell") else 0.0
            sz = held if sz is None or algo.close_fraction else min(sz, held)
        elif not spec.is_swap and algo.side == "sell":
            lots_held = int((acct.balances.get(spec.base_ccy, 0.0) - self.frozen_base(acct, spec.base_ccy)) / spec.lot_sz)
            sz = min(sz or 0.0, lots_held * spec.lot_sz)
        if not sz or sz <= 0:
            self._end_algo(algo, "order_failed", fail_code="51169")
            return
        req: dict[str, Any] = {"instId": algo.inst_id, "tdMode": algo.td_mode, "side": algo.side,
                               "ordType": "market" if ord_px in (None, -1) else "limit",
                               "sz": spec.fmt_sz(sz), "tag": algo.tag}
        if ord_px not in (None, -1):
            req["px"] = spec.fmt_px(ord_px)
        if algo.reduce_only:
            req["reduceOnly"] = True
        if algo.tgt_ccy:
            req["tgtCcy"] = algo.tgt_ccy
        self._live_algos.pop(algo.algo_id, None)
        try:
            child = self.place_order(acct, req, algo=algo)
        except OkxError as exc:
            self._end_algo(algo, "order_failed", fail_code=exc.code)
            return
        if which == "sl":
            child.exit_sl = (algo.sl_trigger_px, algo.sl_ord_px)
        elif which == "tp":
            child.exit_tp = (algo.tp_trigger_px, algo.tp_ord_px)
        algo.ord_id = child.ord_id
        algo.actual_sz = child.acc_fill_sz if child.acc_fill_sz else child.sz
        algo.actual_px = child.avg_px if child.avg_px is not None else child.px
        self._end_algo(algo, "effective")

    def _end_algo(self, algo: AlgoOrder, state: str, fail_code: str = "0") -> None:
        algo.state = state
        algo.fail_code = fail_code
        algo.u_time = self.now
        self._live_algos.pop(algo.algo_id, None)
        self._since.pop(algo.algo_id, None)

    def place_algo(self, acct: Account, req: dict[str, Any]) -> AlgoOrder:
        """A standalone algo order (trade/order-algo): conditional / oco TP-SL, or a trigger order."""
        from okxlab.simulator import params as P

        if not isinstance(req, dict):
            raise param_error("order")
        inst_id = P.text(req, "instId", required=True)
        spec = self.spec(inst_id)
        td_mode = P.choice(req, "tdMode", ("cash", "cross", "isolated"), required=True)
        side = P.choice(req, "side", ("buy", "sell"), required=True)
        ord_type = P.text(req, "ordType", required=True)
        if ord_type not in ("conditional", "oco", "trigger"):
            raise param_error("ordType")
        close_fraction = P.text(req, "closeFraction")
        if close_fraction not in ("", "1"):
            raise param_error("closeFraction")
        sz = P.number(req, "sz", required=not close_fraction)
        reduce_only = P.boolean(req, "reduceOnly") or bool(close_fraction)
        algo_cl = P.cl_ord_id(req, "algoClOrdId") or P.cl_ord_id(req, "clOrdId")
        tag = P.tag(req)
        tgt_ccy = P.choice(req, "tgtCcy", ("base_ccy", "quote_ccy"))
        pos_side = P.choice(req, "posSide", ("net", "long", "short"), default="net")
        if pos_side != "net":
            raise param_error("posSide")
        if spec.is_swap and td_mode != "cross":
            raise OkxError("51010") if td_mode == "isolated" else param_error("tdMode")
        if not spec.is_swap and td_mode not in ("cash", "cross"):
            raise param_error("tdMode")
        if close_fraction and not spec.is_swap:
            raise param_error("closeFraction")
        if sz is not None:
            limit = (spec.max_mkt_amt or spec.max_trigger_sz) if tgt_ccy == "quote_ccy" else (
                spec.max_trigger_sz if ord_type == "trigger" else spec.max_stop_sz)
            if sz > limit:
                raise OkxError("51252" if ord_type == "trigger" else "51275")
        if sz is not None and tgt_ccy != "quote_ccy":
            if spec.lots(sz) is None:
                raise OkxError("51121")
            if sz < spec.min_sz - 1e-12:
                raise OkxError("51020")
        if algo_cl and algo_cl in acct.algo_cl_ord_ids:
            raise OkxError("51065")
        tp = P.number(req, "tpTriggerPx")
        sl = P.number(req, "slTriggerPx")
        tp_ord = P.number(req, "tpOrdPx", allow_minus_one=True)
        sl_ord = P.number(req, "slOrdPx", allow_minus_one=True)
        trigger = P.number(req, "triggerPx")
        order_px = P.number(req, "orderPx", allow_minus_one=True)
        for name, value in (("tpTriggerPx", tp), ("slTriggerPx", sl), ("tpOrdPx", tp_ord), ("slOrdPx", sl_ord),
                            ("triggerPx", trigger), ("orderPx", order_px)):
            if value is not None and value != -1 and not spec.on_tick(value):
                raise param_error(name)
        last = spec.round_px(self.tradable_price(spec))
        if ord_type == "trigger":
            if trigger is None:
                raise OkxError("50014", param0="triggerPx")
            if order_px is None:
                raise OkxError("50014", param0="orderPx")
        else:
            if tp is None and sl is None:
                raise OkxError("50015", param0="tpTriggerPx", param1="slTriggerPx")
            if ord_type == "oco" and (tp is None or sl is None):
                raise OkxError("50014", param0="slTriggerPx" if sl is None else "tpTriggerPx")
            sell = side == "sell"
            if tp is not None and (tp <= last if sell else tp >= last):
                raise OkxError("51279" if sell else "51277")
            if sl is not None and (sl >= last if sell else sl <= last):
                raise OkxError("51280" if sell else "51278")
        algo = AlgoOrder(
            algo_id=self._algo_id(), api_key=acct.api_key, inst_id=inst_id, inst_type=spec.inst_type, side=side,
            ord_type=ord_type, sz=sz, td_mode=td_mode, c_time=self.now, seq=self._next("seq"),
            algo_cl_ord_id=algo_cl, tag=tag, tgt_ccy=tgt_ccy if not spec.is_swap else "",
            reduce_only=reduce_only and spec.is_swap, close_fraction=close_fraction,
            lever=acct.lever(inst_id) if spec.is_swap else 0.0,
            tp_trigger_px=tp, tp_ord_px=(tp_ord if tp_ord is not None else -1.0) if tp is not None else None,
            sl_trigger_px=sl, sl_ord_px=(sl_ord if sl_ord is not None else -1.0) if sl is not None else None,
            trigger_px=trigger, order_px=order_px, u_time=self.now, raw=dict(req),
        )
        if ord_type == "trigger":
            algo.raw["_trigger_up"] = trigger >= last
        if algo_cl:
            acct.algo_cl_ord_ids[algo_cl] = algo.algo_id
        self._start_algo(algo)
        return algo

    def cancel_algo(self, algo: AlgoOrder) -> None:
        if not algo.is_live:
            raise OkxError("51400")
        self._end_algo(algo, "canceled")

    # ---- liquidation ---------------------------------------------------------------------------------
    def _maybe_liquidate(self, acct: Account) -> None:
        m = self.margin(acct, raw=True)
        if m["eq"] > m["mmr"]:
            # Other positions moved in the account's favour: look again a second later, not every ms.
            self._liq_guard[acct.api_key] = self.now + 1000
            return
        for order in [o for o in self._resting.values() if o.api_key == acct.api_key]:
            self._cancel(order, "0", "Order canceled by system")
        for pos in list(acct.positions.values()):
            if not pos.pos:
                continue
            spec = self.spec(pos.inst_id)
            req = {"instId": pos.inst_id, "tdMode": "cross", "side": "sell" if pos.pos > 0 else "buy",
                   "ordType": "market", "sz": spec.fmt_sz(abs(pos.pos)), "reduceOnly": True}
            try:
                order = self.place_order(acct, req)
                order.category = "full_liquidation"
            except OkxError:
                continue

    # ---- in-process API ------------------------------------------------------------------------------
    def call(self, method: str, endpoint: str, params: dict[str, Any] | None = None, body: Any = None,
             api_key: str | None = None) -> dict[str, Any]:
        """Serve one /api/v5 request in-process (no HTTP, no signature, no faults): the same payload
        the HTTP server would send, as a dict ({"code", "msg", "data"})."""
        from okxlab.simulator.router import dispatch

        acct = self.accounts.get(api_key) if api_key else None
        _status, payload = dispatch(self, method.upper(), endpoint.strip("/"), params or {}, body, acct)
        return payload

    # ---- inspection ----------------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        return {
            "name": self.name, "clock": self.clock.kind, "now": self.now, "start": self.clock.start_ms,
            "speed": getattr(self.clock, "speed", None), "faults": self.faults.to_dict(),
            "accounts": [a.public() for a in self.accounts.values()],
            "open_orders": len(self._resting), "live_algos": len(self._live_algos),
            "orders": len(self.orders), "fills": len(self.fills), "events": self.events_processed,
            "instruments": {k: self.market.state(k, self.now) for k in self.market.specs},
        }


def _check_size(spec: InstrumentSpec, ord_type: str, sz: float, quote_sized: bool) -> None:
    """OKX's size limits (maxMktAmt, maxMktSz, maxLmtSz), then the lot grid and the minimum size."""
    if quote_sized:  # a spot market buy sized in quote currency
        if spec.max_mkt_amt is not None and sz > spec.max_mkt_amt:
            raise OkxError("51201", param0=fnum(spec.max_mkt_amt))
        return
    if ord_type == "market":
        if sz > spec.max_mkt_sz:
            raise OkxError("51202")
    elif sz > spec.max_lmt_sz:
        raise OkxError("51203", param0=fnum(spec.max_lmt_sz))
    if spec.lots(sz) is None:
        raise OkxError("51121")
    if sz < spec.min_sz - 1e-12:
        raise OkxError("51020")


def _check_price(spec: InstrumentSpec, side: str, px: float, ref: float, name: str) -> None:
    """OKX's price limit on the taking side (51006; spot 51137/51138), then the tick grid (51000)."""
    hi, lo = spec.price_limits(ref)
    slack = spec.tick_sz * 1e-6
    if side == "buy" and px > hi + slack:
        raise OkxError("51006", param0=spec.fmt_px(hi), param1=spec.fmt_px(lo)) if spec.is_swap else \
            OkxError("51137", param0=spec.fmt_px(hi))
    if side == "sell" and px < lo - slack:
        raise OkxError("51006", param0=spec.fmt_px(hi), param1=spec.fmt_px(lo)) if spec.is_swap else \
            OkxError("51138", param0=spec.fmt_px(lo))
    if not spec.on_tick(px):
        raise param_error(name)


def _algo_levels(algo: AlgoOrder) -> list[tuple[str, float, bool]]:
    """(which, level, fires when the price is at or below it) for each live trigger of an algo order."""
    if algo.ord_type == "trigger":
        up = bool(algo.raw.get("_trigger_up", True))
        return [("trigger", algo.trigger_px, not up)] if algo.trigger_px is not None else []
    sell = algo.side == "sell"  # closes a long: stop below, take profit above
    out = []
    if algo.sl_trigger_px is not None:
        out.append(("sl", algo.sl_trigger_px, sell))
    if algo.tp_trigger_px is not None:
        out.append(("tp", algo.tp_trigger_px, not sell))
    return out


def _walk_quote(levels, quote: float, unit: float) -> list[tuple[float, int]]:
    """Spend up to `quote` on levels (spot market buy sized in quote currency)."""
    out = []
    left = quote
    for lvl in levels:
        lots = min(lvl.lots, int(left / (lvl.px * unit) + 1e-9))
        if lots <= 0:
            break
        out.append((lvl.px, lots))
        left -= lots * lvl.px * unit
    return out

