"""The /api/v5 endpoint table and the dispatcher shared by the HTTP server and `World.call`."""

from __future__ import annotations

import logging
from typing import Any

from okxlab.simulator import api_account as acc
from okxlab.simulator import api_ledger as led
from okxlab.simulator import api_market as mkt
from okxlab.simulator import api_trade as trd
from okxlab.simulator.accounts import Account
from okxlab.simulator.errors import OkxError

log = logging.getLogger(__name__)

# (method, endpoint) -> (handler, private)
ROUTES: dict[tuple[str, str], tuple[Any, bool]] = {
    ("GET", "public/time"): (mkt.server_time, False),
    ("GET", "system/status"): (mkt.system_status, False),
    ("GET", "public/instruments"): (mkt.instruments, False),
    ("GET", "public/mark-price"): (mkt.mark_price, False),
    ("GET", "public/funding-rate"): (led.funding_rate_now, False),
    ("GET", "public/funding-rate-history"): (led.funding_rate_history, False),
    ("GET", "public/open-interest"): (led.open_interest, False),
    ("GET", "rubik/stat/contracts/open-interest-history"): (led.open_interest_history, False),
    ("GET", "market/ticker"): (mkt.ticker, False),
    ("GET", "market/tickers"): (mkt.tickers, False),
    ("GET", "market/candles"): (mkt.candles, False),
    ("GET", "market/history-candles"): (mkt.history_candles, False),
    ("GET", "market/mark-price-candles"): (mkt.mark_price_candles, False),
    ("GET", "market/history-mark-price-candles"): (mkt.mark_price_candles, False),
    ("GET", "market/index-candles"): (mkt.index_candles, False),
    ("GET", "market/history-index-candles"): (mkt.index_candles, False),
    ("GET", "market/books"): (mkt.books, False),
    ("GET", "market/books-full"): (mkt.books_full, False),
    ("GET", "market/trades"): (mkt.trades, False),
    ("GET", "market/history-trades"): (mkt.trades, False),
    ("GET", "account/balance"): (acc.balance, True),
    ("GET", "account/positions"): (acc.positions, True),
    ("GET", "account/positions-history"): (acc.positions_history, True),
    ("GET", "account/config"): (acc.config, True),
    ("POST", "account/set-position-mode"): (acc.set_position_mode, True),
    ("GET", "account/leverage-info"): (acc.leverage_info, True),
    ("POST", "account/set-leverage"): (acc.set_leverage, True),
    ("GET", "account/trade-fee"): (acc.trade_fee, True),
    ("GET", "asset/balances"): (led.funding_balances, True),
    ("GET", "account/bills"): (led.bills, True),
    ("GET", "account/bills-archive"): (led.bills_archive, True),
    ("GET", "account/interest-accrued"): (led.empty, True),
    ("GET", "asset/bills"): (led.asset_bills, True),
    ("POST", "asset/transfer"): (led.asset_transfer, True),
    ("GET", "asset/transfer-state"): (led.transfer_state, True),
    ("GET", "asset/deposit-history"): (led.empty, True),
    ("GET", "asset/withdrawal-history"): (led.empty, True),
    ("GET", "asset/currencies"): (acc.currencies, True),
    ("POST", "trade/order"): (trd.place_order, True),
    ("POST", "trade/batch-orders"): (trd.batch_orders, True),
    ("POST", "trade/cancel-order"): (trd.cancel_order, True),
    ("POST", "trade/cancel-batch-orders"): (trd.cancel_batch_orders, True),
    ("POST", "trade/amend-order"): (trd.amend_order, True),
    ("POST", "trade/amend-batch-orders"): (trd.amend_batch_orders, True),
    ("GET", "trade/order"): (trd.get_order, True),
    ("GET", "trade/orders-pending"): (trd.orders_pending, True),
    ("GET", "trade/orders-history"): (trd.orders_history, True),
    ("GET", "trade/orders-history-archive"): (trd.orders_history, True),
    ("GET", "trade/fills"): (trd.fills, True),
    ("GET", "trade/fills-history"): (trd.fills_history, True),
    ("POST", "trade/order-algo"): (trd.place_algo, True),
    ("POST", "trade/cancel-algos"): (trd.cancel_algos, True),
    ("POST", "trade/amend-algos"): (trd.amend_algos, True),
    ("GET", "trade/order-algo"): (trd.get_algo, True),
    ("GET", "trade/orders-algo-pending"): (trd.algos_pending, True),
    ("GET", "trade/orders-algo-history"): (trd.algos_history, True),
    ("POST", "trade/close-position"): (trd.close_position, True),
}
_ENDPOINTS = {endpoint for _method, endpoint in ROUTES}


def not_found() -> dict[str, Any]:
    """OKX's answer to a path it does not serve: HTTP 404 with code "404" "Not Found" (docs/simulator.md). Not
    50005 ("API endpoint is inactive or unavailable"), which ccxt maps to ExchangeNotAvailable, a retryable
    outage: a client would retry a request that can never succeed."""
    return {"code": "404", "msg": "Not Found", "data": []}


def is_private(method: str, endpoint: str) -> bool:
    route = ROUTES.get((method, endpoint))
    return bool(route and route[1])


def known(method: str, endpoint: str) -> tuple[bool, bool]:
    """(endpoint exists, method allowed)."""
    return endpoint in _ENDPOINTS, (method, endpoint) in ROUTES


def dispatch(world, method: str, endpoint: str, query: dict[str, Any], body: Any,
             account: Account | None) -> tuple[int, dict[str, Any]]:
    """Run one request against a world: (HTTP status, OKX JSON payload). Never raises."""
    exists, allowed = known(method, endpoint)
    if not exists:
        return 404, not_found()
    if not allowed:
        return 405, OkxError("50115").envelope()
    handler, private = ROUTES[(method, endpoint)]
    try:
        if private and account is None:
            raise OkxError("50111")
        world.sync()
        result = handler(world, account, query, body)
    except OkxError as exc:
        return exc.http_status, exc.envelope()
    except Exception:  # a bug must still look like OKX, not a traceback
        log.exception("simulator error on %s %s", method, endpoint)
        return 500, OkxError("50026").envelope()
    if isinstance(result, trd.Reply):
        return 200, result.payload()
    return 200, {"code": "0", "msg": "", "data": result}
