"""OKX v5 error codes and messages the simulator answers with.

Codes, HTTP statuses and messages are OKX's own (docs-v5 "Error Code" section: REST API / Public /
General, API and Trade classes, and Account 59xxx), so ccxt maps them to the same exceptions it raises
against OKX. `{param0}` placeholders are filled in the way OKX fills them.
"""

from __future__ import annotations

from typing import Any

# code -> (HTTP status, message)
MESSAGES: dict[str, tuple[int, str]] = {
    "1": (200, "Operation failed."),
    "2": (200, "Bulk operation partially succeeded."),
    "50000": (400, "Body for POST request cannot be empty."),
    "50002": (400, "JSON syntax error"),
    "50005": (410, "API endpoint is inactive or unavailable."),
    "50011": (429, "Too Many Requests"),
    "50014": (400, "Parameter {param0} can not be empty."),
    "50015": (400, "Either parameter {param0} or {param1} is required"),
    "50026": (500, "System error. Try again later"),
    "50101": (401, "APIKey does not match current environment."),
    "50102": (401, "Timestamp request expired."),
    "50103": (401, 'Request header "OK-ACCESS-KEY" cannot be empty.'),
    "50104": (401, 'Request header "OK-ACCESS-PASSPHRASE" cannot be empty.'),
    "50105": (401, 'Request header "OK-ACCESS-PASSPHRASE" incorrect.'),
    "50106": (401, 'Request header "OK-ACCESS-SIGN" cannot be empty.'),
    "50107": (401, 'Request header "OK-ACCESS-TIMESTAMP" cannot be empty.'),
    "50111": (401, "Invalid OK-ACCESS-KEY."),
    "50112": (401, "Invalid OK-ACCESS-TIMESTAMP."),
    "50113": (401, "Invalid signature."),
    "50115": (405, "Invalid request method."),
    "51000": (400, "Parameter {param0} error"),
    "51001": (200, "Instrument ID, Instrument ID code or Spread ID doesn't exist."),
    "51003": (200, "Either client order ID or order ID is required."),
    "51006": (200, "Order price is not within the price limit (max buy price: {param0} , min sell price: {param1} )"),
    "51008": (200, "Order failed. Insufficient {param0} margin in account"),
    "51010": (200, "Request unsupported under current account mode"),
    "51016": (200, "Client order ID already exists."),
    "51020": (200, "Your order should meet or exceed the minimum order amount."),
    "51021": (200, "The pair or contract is not yet listed"),
    "51022": (200, "Contract suspended."),
    "51023": (200, "Position doesn't exist."),
    "51046": (200, "The take profit trigger price must be higher than the order price"),
    "51047": (200, "The stop loss trigger price must be lower than the order price"),
    "51048": (200, "The take profit trigger price must be lower than the order price"),
    "51049": (200, "The stop loss trigger price must be higher than the order price"),
    "51050": (200, "The take profit trigger price must be higher than the best ask price"),
    "51051": (200, "The stop loss trigger price must be lower than the best ask price"),
    "51052": (200, "The take profit trigger price must be lower than the best bid price"),
    "51053": (200, "The stop loss trigger price must be higher than the best bid price"),
    "51065": (200, "algoClOrdId already exists."),
    "51100": (200, "Unable to place order. Take profit/Stop loss conditions cannot be added to reduce-only orders."),
    "51111": (200, "Maximum {param0} orders can be placed in bulk."),
    "51121": (200, "Order quantity must be a multiple of the lot size."),
    "51122": (200, "Order price should higher than the min price {param0}"),
    "51137": (200, "The highest price limit for buy orders is {param0}."),
    "51138": (200, "The lowest price limit for sell orders is {param0}."),
    "51139": (200, "Reduce-only feature is unavailable for the spot transactions by spot mode."),
    "51169": (200, "Order failed because you don't have any positions in this direction for this contract to reduce or close."),
    "51170": (200, "Failed to place order. A reduce-only order can\u2019t be the same trading direction as your existing positions."),
    "51201": (200, "The value of a market order can't exceed {param0}."),
    "51202": (200, "Market order amount exceeds the maximum amount."),
    "51203": (200, "Order amount exceeds the limit {param0}."),
    "51204": (200, "The price for the limit order cannot be empty."),
    "51252": (200, "Algo order amount is out of the available range."),
    "51275": (200, "The amount of single stop-market order cannot exceed the upper limit."),
    "51277": (200, "TP trigger price cannot be higher than the last price."),
    "51278": (200, "SL trigger price cannot be lower than the last price."),
    "51279": (200, "TP trigger price cannot be lower than the last price."),
    "51280": (200, "SL trigger price cannot be higher than the last price."),
    "51400": (200, "Order cancellation failed as the order has been filled, canceled or does not exist."),
    "51500": (200, "You must enter a price, quantity, or TP/SL"),
    "51503": (200, "Your order has already been filled or canceled."),
    "51511": (200, "Modification failed as the order price did not meet the requirement for Post Only."),
    "51603": (200, "Order does not exist."),
    "52000": (200, "No market data found."),
    "54000": (200, "Margin trading is not supported."),
    "59102": (200, "Leverage exceeds the maximum limit. Please lower the leverage."),
}


class OkxError(Exception):
    """An OKX-style failure: becomes {"code", "msg", "data": []} (or an sCode/sMsg row in a batch)."""

    def __init__(self, code: str, msg: str | None = None, http_status: int | None = None, **params: Any):
        status, template = MESSAGES.get(code, (200, msg or "Operation failed."))
        if msg is None:
            msg = template.format(**params) if params else template
        super().__init__(f"{code}: {msg}")
        self.code = code
        self.msg = msg
        self.http_status = http_status if http_status is not None else status

    def envelope(self) -> dict[str, Any]:
        return {"code": self.code, "msg": self.msg, "data": []}


def param_error(name: str) -> OkxError:
    """OKX's answer to a malformed parameter: 51000 "Parameter <name> error"."""
    return OkxError("51000", param0=name)


def missing(name: str) -> OkxError:
    """OKX's answer to a missing required parameter: 50014."""
    return OkxError("50014", param0=name)
