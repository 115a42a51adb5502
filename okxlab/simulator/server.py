"""The HTTP face of the simulator: OKX's /api/v5 for each world, plus a loopback admin API.

URLs:  http://HOST:PORT/api/v5/...            the default world
       http://HOST:PORT/w/<world>/api/v5/...  another world (ccxt signs only the /api/v5/... part)
       http://HOST:PORT/admin/...             admin API, with the header X-Sim-Admin-Token (see docs/simulator.md)

One aiohttp event loop serves everything, so requests are processed one at a time against the engine.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from okxlab.errors import UserError
from okxlab.simulator import auth, router
from okxlab.simulator.accounts import Account
from okxlab.simulator.clock import iso, parse_time
from okxlab.simulator.errors import OkxError
from okxlab.simulator.faults import Faults
from okxlab.simulator.simulator import DEFAULT_WORLD, AccountSpec, Simulator
from okxlab.simulator.token import TOKEN_ENV, TOKEN_HEADER, env_token, new_token, token_matches

log = logging.getLogger(__name__)
_SIM = web.AppKey("simulator", Simulator)
MAX_HEADER = 64 * 1024  # bytes per header line or request line (aiohttp's default, 8190, is below a long query)


class _ProtocolErrorsInOneLine(logging.Filter):
    """Requests aiohttp's HTTP parser cannot read (a header line over MAX_HEADER, garbage instead of HTTP) are
    answered by aiohttp itself with a plain 400; what it logs about them is one line, not a traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, HttpProcessingError):
            record.msg = f"{record.msg}: {type(exc).__name__}: {' '.join(str(exc).split())[:200]}"
            record.exc_info, record.exc_text = None, None
        return True


_HTTP_LOG = logging.getLogger("okxlab.simulator.http")
_HTTP_LOG.addFilter(_ProtocolErrorsInOneLine())
_TOKEN = web.AppKey("admin_token", str)


def _okx(payload: dict[str, Any], status: int = 200) -> web.Response:
    return web.Response(text=json.dumps(payload, separators=(",", ":")), status=status,
                        content_type="application/json")


def _err(exc: OkxError) -> web.Response:
    return _okx(exc.envelope(), exc.http_status)


MAX_BODY = 1 << 20  # bytes; OKX's largest request (20 orders in a batch) is a few kB
MAX_DEPTH = 16  # nesting of a JSON body; OKX's deepest (a batch of orders with attachAlgoOrds) is 4


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")  # NaN, Infinity: Python's extension, not JSON


def parse_json(text: str) -> Any:
    """A request body as JSON, or ValueError: invalid, non-standard (NaN), or nested deeper than MAX_DEPTH.

    Python's parser recurses, so a deeply nested body raises RecursionError; and a moderately deep one would
    recurse again wherever it is copied or stored. Both are refused here, as one syntax error.
    """
    try:
        data = json.loads(text, parse_constant=_no_constant)
    except RecursionError:
        raise ValueError("nested too deeply") from None
    stack = [(data, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > MAX_DEPTH:
                raise ValueError("nested too deeply")
            stack.extend((v, depth + 1) for v in (item.values() if isinstance(item, dict) else item))
    return data


async def _body_text(request: web.Request) -> str:
    """The raw body as text; OkxError when it is too large or not UTF-8 (OKX's bodies are UTF-8 JSON)."""
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise OkxError("51000", param0="body", http_status=413) from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise OkxError("50002") from None


@web.middleware
async def _json_errors(request: web.Request, handler) -> web.StreamResponse:
    """Whatever goes wrong, the answer is JSON in the shape of the API asked (OKX's or the admin's), never
    aiohttp's plain text; an unexpected exception is logged and answered as OKX's system error."""
    admin = request.path.startswith("/admin/")
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        if admin:
            return _bad(exc.reason, exc.status)
        if exc.status == 404:
            return _okx(router.not_found(), 404)
        code = {405: "50115", 413: "51000"}.get(exc.status, "50002" if exc.status < 500 else "50026")
        return _okx(OkxError(code, param0="body").envelope(), exc.status)
    except (asyncio.CancelledError, ConnectionError):
        raise
    except Exception:
        log.exception("simulator error on %s %s", request.method, request.path)
        return _bad("internal error", 500) if admin else _err(OkxError("50026"))


async def _api(request: web.Request) -> web.StreamResponse:
    sim = request.app[_SIM]
    name = request.match_info.get("world", DEFAULT_WORLD)
    world = sim.worlds.get(name)
    if world is None:
        return _okx({**router.not_found(), "msg": f"Not Found (no simulator world {name!r})"}, 404)
    endpoint = request.match_info["tail"].strip("/")
    method = request.method
    raw_path = request.raw_path
    request_path = raw_path[len(f"/w/{name}"):] if "world" in request.match_info else raw_path
    try:
        body_text = await _body_text(request)
    except OkxError as exc:
        return _err(exc)
    outcome = None
    faults = world.faults
    if faults.active and faults.applies(endpoint):
        if faults.latency_ms:
            await asyncio.sleep(faults.latency_ms / 1000)
        with sim.lock:
            outcome = faults.draw(endpoint)
        if outcome == "5xx":
            return _err(OkxError("50026"))
        if outcome == "rate_limit":
            return _err(OkxError("50011"))
    exists, _ = router.known(method, endpoint)
    body: Any = None
    if method == "POST" and exists:
        if not body_text.strip():
            return _err(OkxError("50000"))
        try:
            body = parse_json(body_text)
        except ValueError:
            return _err(OkxError("50002"))
    query = {k: v for k, v in request.query.items()}
    account = None
    if router.is_private(method, endpoint):
        try:
            account = auth.authenticate(request.headers, method, request_path, body_text, world.accounts)
        except OkxError as exc:
            return _err(exc)
    with sim.lock:
        status, payload = router.dispatch(world, method, endpoint, query, body, account)
        # Durable before the client hears of it (a POST may change what the revision misses: cancel, leverage).
        sim.save([name], force=method == "POST")
    if outcome == "lost":
        # The order is placed; the client never hears about it (it sees the connection drop).
        request.transport.close()
        raise asyncio.CancelledError
    return _okx(payload, status)


# ---- admin API -------------------------------------------------------------------------------------------
def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status)


def _bad(message: str, status: int = 400) -> web.Response:
    return web.json_response({"error": message}, status=status)


async def _payload(request: web.Request) -> dict[str, Any]:
    try:
        text = await _body_text(request)
    except OkxError as exc:
        raise ValueError("the request body must be UTF-8 JSON of at most 1 MB") from exc
    if not text.strip():
        return {}
    try:
        data = parse_json(text)
    except ValueError as exc:
        raise ValueError(f"the request body is not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ValueError("the request body must be a JSON object")
    return data


def _authorized(request: web.Request) -> bool:
    return token_matches(request.headers.get(TOKEN_HEADER), request.app[_TOKEN])


def _admin(handler):
    async def wrapped(request: web.Request) -> web.Response:
        sim = request.app[_SIM]
        if not _authorized(request):  # before the body is read: nothing of it is parsed for a stranger
            return _bad(f"missing or wrong {TOKEN_HEADER} header: the admin API needs the simulator's token "
                        f"(${TOKEN_ENV}, or the sim-admin-token file in the simulator's data directory)", 401)
        try:
            data = await _payload(request) if request.method in ("POST", "PUT") else {}
            with sim.lock:
                try:
                    return handler(sim, request, data)
                finally:  # what the request changed, and what reading synced (a realtime world's fills)
                    name = request.match_info.get("name")
                    changed = request.method != "GET" and name is not None  # a new world saved itself
                    sim.save([name] if changed else None, force=changed)
        except KeyError as exc:
            return _bad(str(exc.args[0]) if exc.args else "not found", 404)
        except (ValueError, TypeError, ArithmeticError, UserError) as exc:
            return _bad(str(exc))
    return wrapped


def _world(sim: Simulator, request: web.Request):
    world = sim.world(request.match_info["name"])
    world.sync()
    return world


async def _health(request: web.Request) -> web.Response:
    """Open to anyone (a liveness probe): the world names only with the token."""
    if not _authorized(request):
        return _json({"ok": True})
    with request.app[_SIM].lock:
        return _json({"ok": True, "worlds": sorted(request.app[_SIM].worlds)})


@_admin
def _data(sim, request, data):
    """What data each instrument has: its whole range, each stretch at one bar size (`ranges`), which OKX bars
    are real data or derived from the price path, and where its funding rates come from; plus every world's
    clock (a candle request for a time after it answers nothing, as OKX does for the future)."""
    from okxlab.marketdata.bars import parse_bar
    from okxlab.simulator.ledger import funding_source

    out = {}
    for inst_id, spec in sim.market.specs.items():
        path = sim.market.path(inst_id)
        segs = path.segments() if path else []
        finest = min((d for _s, _e, d in segs), default=0)
        coarsest = max((d for _s, _e, d in segs), default=0)
        bars = {}
        for name in ("1m", "3m", "5m", "15m", "30m", "1H", "2H", "4H", "6H", "12H", "1D", "1W", "1M"):
            ms = parse_bar(name).nominal_ms
            bars[name] = ("data" if ms >= coarsest else "data where the data is this fine, else derived"
                          if ms >= finest else "derived from the price path") if path else "none"
        out[inst_id] = {"instType": spec.inst_type, "start": path.start_ms if path else None,
                        "end": path.end_ms if path else None,
                        "start_iso": iso(path.start_ms) if path else None, "end_iso": iso(path.end_ms) if path else None,
                        "base_bars_ms": sorted({int(d) for d in path.dur}) if path else [],
                        "ranges": [{"bar": _bar_name(d), "start": a, "end": b, "start_iso": iso(a), "end_iso": iso(b)}
                                   for a, b, d in segs],
                        "bars": bars, "funding": funding_source(sim.market, inst_id) if spec.is_swap else None}
    clocks = {}
    for name, world in sim.worlds.items():
        world.sync()
        clocks[name] = {"now": world.now, "now_iso": iso(world.now), "clock": world.clock.kind}
    return _json({"instruments": out, "worlds": clocks})


def _bar_name(ms: int) -> str:
    for unit, size in (("D", 86_400_000), ("H", 3_600_000), ("m", 60_000)):
        if ms % size == 0:
            return f"{ms // size}{unit}"
    return f"{ms}ms"


@_admin
def _list_worlds(sim, request, data):
    out = []
    for world in sim.worlds.values():
        world.sync()
        out.append(world.state())
    return _json(out)


@_admin
def _create_world(sim, request, data):
    known = {"name", "clock", "start", "speed", "accounts", "agents", "faults"}
    unknown = set(data) - known
    if unknown:
        raise ValueError(f"unknown field(s) {', '.join(sorted(unknown))}; known: {', '.join(sorted(known))}")
    accounts = [AccountSpec.from_dict(a) for a in data.get("accounts") or []]
    faults = Faults.from_dict(data["faults"]) if data.get("faults") else None
    agents = data.get("agents", True)
    if not isinstance(agents, bool):
        raise ValueError("agents must be true or false")
    world = sim.create_world(data.get("name"), clock=data.get("clock", "replay"), start=data.get("start"),
                             speed=data.get("speed", 1.0), accounts=accounts, agents=agents, faults=faults)
    return _json(world.state(), 201)


@_admin
def _get_world(sim, request, data):
    return _json(_world(sim, request).state())


@_admin
def _delete_world(sim, request, data):
    sim.delete_world(request.match_info["name"])
    return _json({"deleted": request.match_info["name"]})


@_admin
def _set_clock(sim, request, data):
    world = _world(sim, request)
    ts = parse_time(data.get("ts"))
    if ts is None:
        raise ValueError("give ts: milliseconds since the epoch or an ISO-8601 time")
    before = world.events_processed
    world.set_clock(ts)
    return _json({"now": world.now, "now_iso": iso(world.now), "events": world.events_processed - before})


@_admin
def _add_account(sim, request, data):
    world = _world(sim, request)
    spec = AccountSpec.from_dict(data)
    acct = world.add_account(spec.api_key, spec.secret, spec.passphrase, spec.equity, spec.label)
    return _json(acct.public(), 201)


@_admin
def _faults(sim, request, data):
    world = _world(sim, request)
    if request.method == "POST":
        world.faults = Faults.from_dict(data)
    return _json(world.faults.to_dict())


def _account_name(world, api_key: str) -> str:
    """Answers name the account (label or masked key); the key itself is only ever an input."""
    acct: Account | None = world.accounts.get(api_key)
    return acct.name if acct is not None else "?"


@_admin
def _orders(sim, request, data):
    world = _world(sim, request)
    key = request.query.get("api_key")
    orders = [{"account": _account_name(world, o.api_key), "raw": o.raw, **o.payload(world.spec(o.inst_id))}
              for o in world.orders.values() if not key or o.api_key == key]
    algos = [{"account": _account_name(world, a.api_key), "raw": a.raw,
              **a.payload(world.spec(a.inst_id), world.last(a.inst_id))}
             for a in world.algos.values() if not key or a.api_key == key]
    rejected = [{"account": _account_name(world, r["api_key"]), **{k: v for k, v in r.items() if k != "api_key"}}
                for r in world.rejections if not key or r["api_key"] == key]
    return _json({"orders": orders, "algos": algos, "rejections": rejected})


@_admin
def _fills(sim, request, data):
    world = _world(sim, request)
    key = request.query.get("api_key")
    return _json([{"account": _account_name(world, f.api_key), **f.payload(world.spec(f.inst_id))}
                  for f in world.fills if not key or f.api_key == key])


async def _not_found(request: web.Request) -> web.Response:
    if request.path.startswith("/admin/"):
        return _bad(f"no admin endpoint {request.method} {request.path} (see docs/simulator.md)", 404)
    return _okx(router.not_found(), 404)


def build_app(sim: Simulator, admin_token: str) -> web.Application:
    if not admin_token:
        raise ValueError("the admin API needs a token")
    app = web.Application(client_max_size=MAX_BODY, middlewares=[_json_errors])
    app[_SIM] = sim
    app[_TOKEN] = admin_token
    r = app.router
    r.add_route("*", "/api/v5/{tail:.*}", _api)
    r.add_route("*", "/w/{world}/api/v5/{tail:.*}", _api)
    r.add_get("/admin/health", _health)
    r.add_get("/admin/data", _data)
    r.add_get("/admin/worlds", _list_worlds)
    r.add_post("/admin/worlds", _create_world)
    r.add_get("/admin/worlds/{name}", _get_world)
    r.add_delete("/admin/worlds/{name}", _delete_world)
    r.add_post("/admin/worlds/{name}/clock", _set_clock)
    r.add_post("/admin/worlds/{name}/accounts", _add_account)
    r.add_get("/admin/worlds/{name}/faults", _faults)
    r.add_post("/admin/worlds/{name}/faults", _faults)
    r.add_get("/admin/worlds/{name}/orders", _orders)
    r.add_get("/admin/worlds/{name}/fills", _fills)
    r.add_route("*", "/{tail:.*}", _not_found)
    return app


class SimServer:
    """The simulator served over HTTP from a background thread.

        with SimServer(Simulator(agents=False)).start() as server:
            server.url, server.world_url("w1"), server.admin.set_clock("w1", ts)
    """

    def __init__(self, simulator: Simulator | None = None, host: str = "127.0.0.1", port: int = 0,
                 admin_token: str | None = None, **simulator_kwargs: Any):
        self.simulator = simulator if simulator is not None else Simulator(**simulator_kwargs)
        self.host, self.port = host, port
        # The environment's token when set (a client in another process finds it there), else one of its own.
        self.admin_token = admin_token or env_token() or new_token()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self._admin = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def world_url(self, name: str = DEFAULT_WORLD) -> str:
        """The base URL to give ccxt (`urls['api'] = {'rest': ...}`) for a world."""
        return self.url if name == DEFAULT_WORLD else f"{self.url}/w/{name}"

    @property
    def admin(self):
        """An AdminClient for this server (one per server, reusing its HTTP connection)."""
        from okxlab.simulator.admin import AdminClient

        if self._admin is None or self._admin.base_url != self.url:
            self._admin = AdminClient(self.url, token=self.admin_token)
        return self._admin

    def start(self) -> SimServer:
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                runner = web.AppRunner(build_app(self.simulator, self.admin_token), access_log=None,
                                       handle_signals=False, logger=_HTTP_LOG, max_line_size=MAX_HEADER,
                                       max_field_size=MAX_HEADER)
                loop.run_until_complete(runner.setup())
                site = web.TCPSite(runner, self.host, self.port)
                loop.run_until_complete(site.start())
                self._runner = runner
                self.port = runner.addresses[0][1]
            except BaseException as exc:  # report bind errors to the caller
                failure.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(runner.cleanup())
            loop.close()

        self._thread = threading.Thread(target=run, name="okxlab-sim", daemon=True)
        self._thread.start()
        ready.wait()
        if failure:
            exc = failure[0]
            if isinstance(exc, OSError):
                raise UserError(f"cannot listen on {self.host}:{self.port}: {exc.strerror or exc} "
                                f"(choose another --port)") from None
            raise exc
        return self

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
        self._thread = None

    def __enter__(self) -> SimServer:
        return self if self._thread is not None else self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
