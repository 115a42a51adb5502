"""Simulated OKX accounts: one per API key, single-currency (USDT) cross margin, net position mode.

Cash, realised PnL and fees are plain floats updated fill by fill with no intermediate rounding, so a
ledger rebuilt from the fills (fillPnl + fee per fill) reconciles with `cashBal` to well under a cent.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

DEFAULT_LEVER = 3.0  # OKX's default cross leverage for a new account (set-leverage changes it)


def mask_key(key: str) -> str:
    """An API key as the simulator shows it anywhere: its first 4 characters (fewer for a short key) and "…"."""
    return key[: min(4, len(key) // 2)] + "…"


@dataclass
class Position:
    inst_id: str
    pos_id: str
    pos: float = 0.0  # signed contracts (net mode)
    avg_px: float = 0.0
    realized_pnl: float = 0.0  # closing PnL plus fees since the position opened
    pnl: float = 0.0  # closing PnL only
    fee: float = 0.0  # fees (negative = paid)
    c_time: int = 0
    u_time: int = 0
    last_trade_id: str = ""
    direction: str = ""  # "long" | "short": the side it opened on
    max_pos: float = 0.0  # largest size reached (contracts)
    close_qty: float = 0.0  # contracts closed so far
    close_notional: float = 0.0  # sum of close price x contracts, for closeAvgPx
    funding_fee: float = 0.0  # funding paid (negative) or received since the position opened


@dataclass
class Account:
    api_key: str
    secret: str
    passphrase: str
    label: str = ""
    initial_equity: float = 10_000.0
    balances: dict[str, float] = field(default_factory=dict)  # the trading account (18)
    funding: dict[str, float] = field(default_factory=dict)  # the funding account (6): only transfers fill it
    positions: dict[str, Position] = field(default_factory=dict)
    leverage: dict[str, float] = field(default_factory=dict)
    cl_ord_ids: dict[str, str] = field(default_factory=dict)  # clOrdId -> ordId (unique forever)
    algo_cl_ord_ids: dict[str, str] = field(default_factory=dict)  # algoClOrdId -> algoId
    u_time: int = 0

    def __post_init__(self) -> None:
        if not self.balances:
            self.balances = {"USDT": float(self.initial_equity)}

    @property
    def uid(self) -> str:
        return str(int(hashlib.sha256(self.api_key.encode()).hexdigest()[:15], 16))

    def lever(self, inst_id: str) -> float:
        return self.leverage.get(inst_id, DEFAULT_LEVER)

    def credit(self, ccy: str, amount: float) -> None:
        self.balances[ccy] = self.balances.get(ccy, 0.0) + amount

    @property
    def name(self) -> str:
        """How the account is shown: its label, else its masked key (never the key itself)."""
        return self.label or mask_key(self.api_key)

    def public(self) -> dict[str, object]:
        """What the admin API shows about the account: no key material (key masked; no secret, no passphrase)."""
        return {"account": self.name, "key": mask_key(self.api_key), "label": self.label, "uid": self.uid,
                "balances": dict(self.balances), "initial_equity": self.initial_equity,
                "positions": {k: {"pos": p.pos, "avgPx": p.avg_px, "realizedPnl": p.realized_pnl}
                              for k, p in self.positions.items() if p.pos}}
