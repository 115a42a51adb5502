"""Any instrument: OKX's own public/instruments rows are shipped and served as OKX wrote them, `--data` gives
candles for any of them, `--instruments` adds others from a saved public/instruments answer, and what the
simulator cannot settle (inverse contracts, futures, options) is refused in one line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from okxlab.errors import UserError
from okxlab.simulator import MarketData, SimServer, Simulator, ccxt_okx
from okxlab.simulator.instruments import DEFAULT_SPECS, SHIPPED, load_specs, spec_from_okx

START = 1_672_531_200_000  # 2023-01-01T00:00Z


def _candles(path: Path, base: float, bars: int = 200, step_ms: int = 3_600_000) -> Path:
    rows = [f"{START + i * step_ms},{base * (1 + 0.001 * (i % 7)):.4f},{base * 1.01:.4f},{base * 0.99:.4f},"
            f"{base * (1 + 0.001 * ((i + 1) % 7)):.4f},{1000 + i}" for i in range(bars)]
    path.write_text("ts,open,high,low,close,volume\n" + "\n".join(rows) + "\n")
    return path


def test_the_shipped_specs_are_served_as_okx_wrote_them() -> None:
    rows = json.loads(SHIPPED.read_text())["data"]
    assert {r["instId"] for r in rows} == set(DEFAULT_SPECS) >= {"BTC-USDT-SWAP", "ETH-USDT-SWAP", "BTC-USDT",
                                                                  "ETH-USDT", "LTC-USDT-SWAP", "SUSHI-USDT-SWAP"}
    for row in rows:
        served = DEFAULT_SPECS[row["instId"]].payload(row["state"])
        # spot rows carry OKX's margin leverage, which a cash-only spot account here cannot use
        differ = {k for k, v in row.items() if served.get(k) != v} - ({"lever"} if row["instType"] == "SPOT" else set())
        assert not differ, (row["instId"], {k: (row[k], served.get(k)) for k in differ})


def test_data_for_a_shipped_instrument_lists_it_and_trades_it(tmp_path: Path) -> None:
    market = MarketData.load((_candles(tmp_path / "LTC-USDT-SWAP_1H.csv", 70.0),))
    assert "LTC-USDT-SWAP" in market.specs and "ADA-USDT-SWAP" not in market.specs  # listed: those with data
    sim = Simulator(market, agents=False, default_clock="replay")
    with SimServer(sim).start() as server:
        server.admin.create_world("ltc", clock="replay", start="2023-01-05T00:00:00Z", agents=False,
                                  accounts=[{"api_key": "k", "secret": "s", "passphrase": "Pp1"}])
        okx = ccxt_okx(server.world_url("ltc"), "k", "s", "Pp1", enableRateLimit=False)
        m = okx.load_markets()["LTC/USDT:USDT"]
        assert (m["contractSize"], m["precision"]["price"], m["limits"]["leverage"]["max"]) == (1.0, 0.01, 50.0)
        bars = okx.fetch_ohlcv("LTC/USDT:USDT", "1h", since=START, limit=5)
        assert [b[0] for b in bars] == [START + i * 3_600_000 for i in range(5)]
        order = okx.create_order("LTC/USDT:USDT", "market", "buy", 3)
        filled = okx.fetch_order(order["id"], "LTC/USDT:USDT")
        assert filled["status"] == "closed" and filled["filled"] == 3 and 60 < filled["average"] < 80
        position = okx.fetch_positions(["LTC/USDT:USDT"])[0]
        assert position["contracts"] == 3 and position["contractSize"] == 1.0


def test_an_instruments_file_adds_any_linear_swap(tmp_path: Path) -> None:
    row = {**json.loads(SHIPPED.read_text())["data"][4], "instId": "DOGE-USDT-SWAP", "ctValCcy": "DOGE",
           "instFamily": "DOGE-USDT", "uly": "DOGE-USDT", "ctVal": "1000", "tickSz": "0.00001", "lotSz": "0.01",
           "minSz": "0.01", "lever": "75"}
    answer = tmp_path / "instruments.json"
    answer.write_text(json.dumps({"code": "0", "msg": "", "data": [row]}))
    market = MarketData.load((_candles(tmp_path / "DOGE-USDT-SWAP_1H.csv", 0.08),), instrument_paths=(answer,))
    doge = market.spec("DOGE-USDT-SWAP")
    assert (doge.ct_val, doge.tick_sz, doge.max_lever, doge.taker_fee) == (1000.0, 0.00001, 75.0, 0.0005)
    assert doge.code > max(s.code for s in DEFAULT_SPECS.values() if s.is_swap)  # no clash with the shipped ones
    with pytest.raises(UserError, match="no instrument spec for it .*--instruments FILE"):
        MarketData.load((_candles(tmp_path / "PEPE-USDT-SWAP_1H.csv", 0.001),))


@pytest.mark.parametrize(("change", "says"), [
    ({"instId": "BTC-USD-SWAP", "ctType": "inverse", "settleCcy": "BTC"}, "only linear USDT-margined swaps"),
    ({"instType": "OPTION"}, "instType 'OPTION' is not simulated"),
    ({"tickSz": None}, "instruments file"),
])
def test_what_cannot_be_simulated_is_refused_in_one_line(tmp_path: Path, change: dict, says: str) -> None:
    row = {**json.loads(SHIPPED.read_text())["data"][4], **change}
    answer = tmp_path / "instruments.json"
    answer.write_text(json.dumps([{k: v for k, v in row.items() if v is not None}]))
    with pytest.raises(UserError, match=says):
        load_specs(answer)
    result = subprocess.run([sys.executable, "-m", "okxlab.cli.main", "sim", "--no-state", "--no-agents",
                             "--instruments", str(answer)], capture_output=True, text=True, timeout=120)
    assert result.returncode != 0 and says.split()[0] in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr


def test_a_row_is_read_with_okx_types() -> None:
    row = json.loads(SHIPPED.read_text())["data"][0]  # BTC-USDT spot
    spec = spec_from_okx(row, 1)
    assert (spec.inst_type, spec.lot_sz, spec.min_sz, spec.max_mkt_amt, spec.maker_fee) == ("SPOT", 1e-8, 1e-5,
                                                                                          1_000_000.0, 0.0008)
