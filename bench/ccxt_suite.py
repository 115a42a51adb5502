"""Run ccxt's own bundled okx test suite (ccxt/test/tests_init.py, shipped in the wheel) against the simulator.

    python bench/ccxt_suite.py                      # an in-process simulator on an ephemeral port
    python bench/ccxt_suite.py --url http://127.0.0.1:8765 --key K --secret S --passphrase P   # a running one
    python bench/ccxt_suite.py --json out.json --log suite.log

It prints one line per tested method (passed / FAILED with the suite's reason / warning / skipped) and the
counts. The suite is run unmodified, as `tests_init.py okx --sandbox --private --fundedTests --sync --info`,
in a child process. What the runner arranges around it (docs/simulator.md, "ccxt's own okx test suite"):

- The suite refuses to run against a ccxt imported from site-packages (it wants a source checkout), so the
  child imports ccxt through symlinks in a scratch directory (the same installed files, another path; the
  test script itself is copied there, as Python resolves a symlinked script's directory).
- It reads the keys and settings from keys.local.json and the skips from skip-tests.json in the directory two
  levels above ccxt/test: both are written in that scratch directory. The keys point `urls['api']` and
  `urls['test']` (what `--sandbox` switches to) at the simulator, and set `has['future']` and `has['option']`
  to False: the simulator lists no futures or options, and the suite's loadMarkets test fails on an empty type
  that `has` claims. No test is skipped (skip-tests.json is empty).
- The suite's Python createOrder test is run with four small fixes (`_patch_create_order`): it indexes the
  balance by the base currency (KeyError for an account that holds none), concatenates a float into a string
  (TypeError), subscripts the exchange object (TypeError) and raises an undefined `Error` (NameError); all
  are Python-only faults of the transpiled test, which never reaches an order without the fixes.
- The default world starts at 2022-02-01 (`--start`), where the shipped data has both BTC-USDT (the suite's
  spot symbol) and BTC-USDT-SWAP (its swap symbol).
- psutil, which the suite imports for a websocket test only, is replaced by an empty module when missing.
- The simulator is started with a realtime clock at 1x from its default start, and one account with
  10,000 USDT, as `okxlab sim` would.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

_LINE = re.compile(r"^\[(?P<kind>[A-Z_:]+)\]\s*(?P<rest>.*)$")


PATCHED_TEST = "test/exchange/sync/test_create_order.py"


def _patch_create_order(text: str) -> str:
    """Three Python-only faults of the suite's createOrder test, fixed before it runs (the only changes made to
    the suite): (1) it indexes the balance by the market's base currency, a KeyError for an account that holds
    none of it (OKX, like the simulator, lists no zero balance), so it reads it with .get; (2) it concatenates
    the quote balance, a float, into a debug string (a TypeError in Python; JavaScript converts it), so it
    wraps it in str(); (3) its debug printer reads `exchange['id']`, but a Python exchange is not subscriptable
    (TypeError), so it reads `exchange.id`; (4) it reports a failed scenario with `raise Error(...)`, a name
    Python does not define (NameError, hiding the reason), so it raises Exception. A line not found (another
    ccxt version) is left as shipped."""
    for old, new in (
            ("initial_base_balance = balance[market['base']]['free']",
             "initial_base_balance = balance.get(market['base'], {}).get('free')"),
            ("'/' + initial_quote_balance + ' '", "'/' + str(initial_quote_balance) + ' '"),
            ("str((exchange['id']))", "str((exchange.id))"),
            ("raise Error(", "raise Exception(")):
        text = text.replace(old, new)
    return text


def _mirror(src: Path, dst: Path, copies: dict[str, Any], prefix: str = "") -> None:
    """dst mirrors src with symlinks, except the files named in `copies` (paths relative to the top): those
    are real copies (run through the function given, if any), in real directories."""
    dst.mkdir(parents=True, exist_ok=True)
    for entry in src.iterdir():
        rel = prefix + entry.name
        if entry.name == "__pycache__":
            continue
        if rel in copies:
            text = entry.read_text(encoding="utf-8")
            (dst / entry.name).write_text(copies[rel](text) if copies[rel] else text, encoding="utf-8")
        elif any(c.startswith(rel + "/") for c in copies):
            _mirror(entry, dst / entry.name, copies, rel + "/")
        else:
            os.symlink(entry, dst / entry.name)


def _scratch(url: str, key: str, secret: str, passphrase: str) -> Path:
    import ccxt

    d = Path(tempfile.mkdtemp(prefix="ccxt-suite-"))
    (d / "pkgs").mkdir()
    real = Path(ccxt.__file__).resolve().parent
    _mirror(real, d / "pkgs" / "ccxt", {"test/tests_init.py": None, PATCHED_TEST: _patch_create_order})
    settings = {"okx": {"apiKey": key, "secret": secret, "password": passphrase,
                        "urls": {"api": {"rest": url}, "test": {"rest": url}},
                        # the simulator lists no FUTURES or OPTION instruments (empty lists, as a venue without
                        # them answers); the suite's loadMarkets test wants a market of every type `has` claims
                        "has": {"future": False, "option": False}}}
    # tests_helpers: ROOT_DIR = <ccxt>/test/../../../ , i.e. the directory holding pkgs/
    (d / "keys.local.json").write_text(json.dumps(settings))
    (d / "skip-tests.json").write_text(json.dumps({}))
    try:  # the suite imports its websocket tests too; one of them imports psutil, not a ccxt dependency
        import psutil  # noqa: F401
    except ImportError:
        (d / "pkgs" / "psutil.py").write_text('"""A stand-in: only ccxt.pro\'s abnormal-close test uses psutil."""\n')
    return d


_EXC = re.compile(r"^(?:[a-z_]+\.)*[A-Z][A-Za-z]*(?:Error|Exception|Exceeded|Funds|Denied|NotFound|Order|Symbol|"
                  r"Request|Nonce|Available|Maintenance|Suspended|Enabled|Supported|Failed): ")


def _reason(lines: list[str], i: int) -> str:
    """The exception line ending the traceback printed after line i (the last one: the outermost)."""
    found = ""
    for line in lines[i + 1:]:
        if line.startswith("["):
            break
        if _EXC.match(line):
            found = line
    return found[:400]


def parse(output: str) -> dict[str, Any]:
    """Per method: passed, failed (with the suite's message), warning or skipped."""
    methods: dict[str, dict[str, str]] = {}
    lines = output.splitlines()
    args_of: dict[str, str] = {}
    section = ""
    for i, line in enumerate(lines):
        if "### SPOT TESTS ###" in line or "### SWAP TESTS ###" in line:
            section = "spot" if "SPOT" in line else "swap"
        m = _LINE.match(line.strip())
        if not m:
            continue
        kind, rest = m["kind"], m["rest"]
        parts = rest.split()
        if kind == "INFO" and parts[:1] == ["TESTING"] and len(parts) >= 3 and parts[1] == "okx":
            args_of[parts[2]] = " ".join(parts[3:]).strip("()")
        elif kind == "INFO" and rest.startswith("TESTING DONE") and len(parts) >= 4:
            methods[f"{parts[3]} {args_of.get(parts[3], '')}".strip()] = {"status": "passed"}
        elif kind == "INFO" and parts[0] in ("SKIPPED_TEST", "UNSUPPORTED_TEST", "IGNORED_TEST",
                                             "UNIMPLEMENTED_TEST") and len(parts) >= 3:
            methods[f"{parts[2]} ({section or 'private'})"] = {"status": "skipped", "reason": parts[0]}
        elif kind in ("TEST_FAILURE", "TEST_WARNING") and len(parts) >= 3 and parts[0] == "okx" \
                and "Failed methods" not in rest:
            methods[f"{parts[1]} {parts[2]}"] = {"status": "failed" if kind == "TEST_FAILURE" else "warning",
                                                 "reason": _reason(lines, i) or rest[:300]}
    counts: dict[str, int] = {}
    for v in methods.values():
        counts[v["status"]] = counts.get(v["status"], 0) + 1
    crashed = "<UNHANDLED EXCEPTION>" in output
    return {"counts": counts, "methods": methods, "crashed": crashed}


def run_suite(url: str, key: str, secret: str, passphrase: str, timeout: float = 900.0,
              extra: list[str] | None = None) -> tuple[str, int]:
    d = _scratch(url, key, secret, passphrase)
    script = d / "pkgs" / "ccxt" / "test" / "tests_init.py"
    env = {**os.environ, "PYTHONPATH": str(d / "pkgs"), "PYTHONDONTWRITEBYTECODE": "1"}
    cmd = [sys.executable, str(script), "okx", *(extra or []), "--sandbox", "--private", "--fundedTests",
           "--sync", "--info"]
    proc = subprocess.run(cmd, cwd=d, env=env, capture_output=True, text=True, timeout=timeout)
    return proc.stdout + proc.stderr, proc.returncode


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--url", help="a running simulator's base URL (default: start one in-process)")
    ap.add_argument("--key")
    ap.add_argument("--secret")
    ap.add_argument("--passphrase")
    ap.add_argument("--symbol", help="the suite's symbol argument (e.g. BTC/USDT:USDT); default: its own choice")
    ap.add_argument("--start", default="2022-02-01T00:00:00Z",
                    help="the in-process simulator's start (default: where BTC-USDT and BTC-USDT-SWAP both have data)")
    ap.add_argument("--timeout", type=float, default=1800.0)
    ap.add_argument("--json", help="write the counts and per-method results here")
    ap.add_argument("--log", help="write the suite's whole output here")
    args = ap.parse_args(argv)
    server = None
    if args.url:
        if not (args.key and args.secret and args.passphrase):
            ap.error("--url needs --key, --secret and --passphrase")
        url, key, secret, passphrase = args.url, args.key, args.secret, args.passphrase
    else:
        from okxlab.simulator import SimServer, Simulator
        from okxlab.simulator.simulator import AccountSpec

        key, secret, passphrase = f"suite-{secrets.token_hex(4)}", secrets.token_hex(16), "Suite-pass1"
        sim = Simulator(agents=False, accounts=[AccountSpec(key, secret, passphrase)], default_clock="realtime",
                        start=args.start)
        server = SimServer(sim).start()
        url = server.url
        print(f"simulator at {url}, default world starting at {args.start}")
    started = time.time()
    try:
        output, rc = run_suite(url, key, secret, passphrase, args.timeout, [args.symbol] if args.symbol else None)
    finally:
        if server is not None:
            server.stop()
    result = parse(output)
    result["returncode"] = rc
    result["seconds"] = round(time.time() - started, 1)
    if args.log:
        Path(args.log).write_text(output)
    for name, v in sorted(result["methods"].items()):
        line = f"{v['status']:8} {name}"
        if v.get("reason"):
            line += f"  {v['reason']}"
        print(line)
    print(f"ccxt okx suite: {result['counts']}, exit code {rc}, {result['seconds']} s"
          + (" (the suite crashed)" if result["crashed"] else ""))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
