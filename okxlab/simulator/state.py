"""The simulator's state on disk, so `okxlab sim` survives a kill -9 and a restart with nothing lost.

Everything a world holds is kept: its clock (a realtime clock's anchor too), faults, id counters, accounts
(balances, funding accounts, positions, leverage), orders, algo orders, fills, bills, refused requests, closed
positions and the last funding time settled.

Why SQLite (WAL, synchronous=FULL) rather than a JSON file rewritten with temp file + fsync + os.replace: the
server saves after every request that changed something, before it answers, and a rewrite costs the whole
state each time (a replay world gathers thousands of orders, so every request would get slower as it goes).
Here a save writes only what can have changed: the world's row and accounts, the orders and algo orders that
were open at the last save or are new (an order that is filled or canceled never changes again), and the fills,
refusals and closed positions appended since. Each save is one transaction, durable when COMMIT returns: a kill
at any point leaves the state of the last request answered (or of the one being answered, which the client
never heard about, as if the answer had been lost). WAL makes those small commits cheap (one fsync each).

Secrets: an account's secret and passphrase are not written when they are those of the simulator's own
configuration (the agents' keys from the environment, `--account`): they are given again at every start.
Only credentials that exist nowhere else (accounts added through the admin API) are kept, in a 0600 file.
"""

from __future__ import annotations

import fcntl
import json
import os
import sqlite3
import time
from dataclasses import asdict, dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any

from okxlab.errors import UserError
from okxlab.simulator.accounts import Account, Position
from okxlab.simulator.clock import RealtimeClock, ReplayClock
from okxlab.simulator.faults import Faults
from okxlab.simulator.ledger import FUNDING_PERIOD_MS
from okxlab.simulator.market import MarketData
from okxlab.simulator.orders import AlgoOrder, AttachedAlgo, Fill, Order
from okxlab.simulator.world import World

SCHEMA = "1"
_TABLES = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS worlds (name TEXT PRIMARY KEY, seq INTEGER NOT NULL, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS accounts (world TEXT, id TEXT, seq INTEGER NOT NULL, data TEXT NOT NULL,
                                     PRIMARY KEY (world, id));
CREATE TABLE IF NOT EXISTS orders (world TEXT, id TEXT, seq INTEGER NOT NULL, data TEXT NOT NULL,
                                   PRIMARY KEY (world, id));
CREATE TABLE IF NOT EXISTS algos (world TEXT, id TEXT, seq INTEGER NOT NULL, data TEXT NOT NULL,
                                  PRIMARY KEY (world, id));
CREATE TABLE IF NOT EXISTS fills (world TEXT, seq INTEGER, data TEXT NOT NULL, PRIMARY KEY (world, seq));
CREATE TABLE IF NOT EXISTS rejections (world TEXT, seq INTEGER, data TEXT NOT NULL, PRIMARY KEY (world, seq));
CREATE TABLE IF NOT EXISTS closed_positions (world TEXT, seq INTEGER, data TEXT NOT NULL, PRIMARY KEY (world, seq));
CREATE TABLE IF NOT EXISTS bills (world TEXT, seq INTEGER, data TEXT NOT NULL, PRIMARY KEY (world, seq));
"""
_PER_WORLD = ("worlds", "accounts", "orders", "algos", "fills", "rejections", "closed_positions", "bills")


class StateError(UserError):
    """The state file cannot be used; the message says what to do."""


@dataclass
class _Saved:
    """What the last save of a world wrote: the next one writes only what can have changed since."""

    seq: int
    revision: tuple[Any, ...] = ()
    orders: int = 0
    algos: int = 0
    fills: int = 0
    rejections: int = 0
    closed: int = 0
    bills: int = 0
    open_orders: set[str] = field(default_factory=set)
    live_algos: set[str] = field(default_factory=set)


def _dumps(data: Any) -> str:
    return json.dumps(data, separators=(",", ":"), default=str)


class StateStore:
    def __init__(self, path: Path, *, fresh: bool = False):
        self.path = path.resolve()
        self._lock: int | None = None
        if self.path.is_dir():
            raise StateError(f"the simulator state {self.path} is a directory; give a file (--state PATH)")
        try:
            self._lock = self._take_lock()
        except OSError as exc:
            raise StateError(f"cannot use the simulator state {self.path}: {exc.strerror or exc}; give a writable "
                             "place (--state PATH, or OKXLAB_HOME)") from None
        floor = 0
        try:
            if fresh:
                floor = _old_id_floor(self.path)
                for p in (self.path, Path(f"{self.path}-wal"), Path(f"{self.path}-shm")):
                    p.unlink(missing_ok=True)
            self.db = self._connect()
            self._prepare(floor)
        except (sqlite3.DatabaseError, OSError) as exc:
            self.close()
            raise StateError(f"cannot use the simulator state {self.path}: {exc}; move it away, or start over "
                             "with --fresh") from None
        # api_key -> (secret, passphrase) of the simulator's own accounts: those are not written (module doc).
        self.config_credentials: dict[str, tuple[str, str]] = {}
        self._saved: dict[str, _Saved] = {}

    # ---- opening -------------------------------------------------------------------------------------
    def _take_lock(self) -> int:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(f"{self.path}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # released by the OS when the process dies
        except BlockingIOError:
            os.close(fd)
            raise StateError(f"another simulator is using {self.path}; stop it, or give this one another --state") \
                from None
        return fd

    def _connect(self) -> sqlite3.Connection:
        if not self.path.exists():  # 0600 before SQLite writes anything; its -wal and -shm files inherit it
            os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o600))
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")  # a commit is on disk when it returns
        return db

    def _prepare(self, id_floor: int) -> None:
        tables = {r[0] for r in self.db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if tables and "meta" not in tables:
            raise sqlite3.DatabaseError("it is not a simulator state (another SQLite database)")
        if not tables:
            self.db.executescript(_TABLES)
            self.db.executemany("INSERT INTO meta VALUES (?, ?)", [
                ("schema", SCHEMA), ("created_ms", str(int(time.time() * 1000))), ("id_floor", str(id_floor))])
            return
        schema = self._meta("schema")
        if schema != SCHEMA:
            raise sqlite3.DatabaseError(f"it was written by another version of the simulator (schema {schema})")
        self.db.executescript(_TABLES)  # tables added since the file was made (bills): created empty

    def _meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    @property
    def id_floor(self) -> int:
        """Ids below this were handed out by a state this one replaced (--fresh)."""
        return int(self._meta("id_floor") or 0)

    def close(self) -> None:
        db = getattr(self, "db", None)
        if db is not None:
            db.close()
            self.db = None
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None

    # ---- saving --------------------------------------------------------------------------------------
    def save(self, world: World, *, force: bool = False) -> bool:
        """Write what changed in `world` since its last save (everything the first time); False when its
        revision shows nothing changed and `force` is not set."""
        saved = self._saved.get(world.name)
        revision = world.revision()
        if saved is not None and not force and saved.revision == revision:
            return False
        if saved is None:
            seq = self.db.execute("SELECT COALESCE(MAX(seq) + 1, 0) FROM worlds").fetchone()[0]
            saved = _Saved(seq=seq)
        name = world.name
        new_orders = list(islice(world.orders.values(), saved.orders, None))
        new_algos = list(islice(world.algos.values(), saved.algos, None))
        changed_orders = [world.orders[i] for i in saved.open_orders]
        changed_algos = [world.algos[i] for i in saved.live_algos]
        cur = self.db.cursor()
        cur.execute("BEGIN IMMEDIATE")
        try:
            cur.execute("INSERT INTO worlds VALUES (?, ?, ?) ON CONFLICT(name) DO UPDATE SET data = excluded.data",
                        (name, saved.seq, _dumps(_world_row(world))))
            cur.executemany(
                "INSERT INTO accounts VALUES (?, ?, ?, ?) ON CONFLICT(world, id) DO UPDATE SET data = excluded.data",
                [(name, a.api_key, i, _dumps(self._account_row(a))) for i, a in enumerate(world.accounts.values())])
            upsert = "INSERT INTO {} VALUES (?, ?, ?, ?) ON CONFLICT(world, id) DO UPDATE SET data = excluded.data"
            cur.executemany(upsert.format("orders"),
                            [(name, o.ord_id, -1, _dumps(asdict(o))) for o in changed_orders]
                            + [(name, o.ord_id, saved.orders + i, _dumps(asdict(o))) for i, o in enumerate(new_orders)])
            cur.executemany(upsert.format("algos"),
                            [(name, a.algo_id, -1, _dumps(asdict(a))) for a in changed_algos]
                            + [(name, a.algo_id, saved.algos + i, _dumps(asdict(a))) for i, a in enumerate(new_algos)])
            for table, items, start, row in (
                    ("fills", world.fills, saved.fills, asdict),
                    ("rejections", world.rejections, saved.rejections, lambda r: r),
                    ("closed_positions", world.closed_positions, saved.closed,
                     lambda c: {"api_key": c[0], "position": asdict(c[1]), "closed_at": c[2]}),
                    ("bills", world.bills, saved.bills, lambda r: r)):
                cur.executemany(f"INSERT INTO {table} VALUES (?, ?, ?)",
                                [(name, start + i, _dumps(row(x))) for i, x in enumerate(items[start:])])
            cur.execute("COMMIT")
        except BaseException:
            cur.execute("ROLLBACK")
            raise
        self._saved[name] = _Saved(
            seq=saved.seq, revision=revision, orders=len(world.orders), algos=len(world.algos),
            fills=len(world.fills), rejections=len(world.rejections), closed=len(world.closed_positions),
            bills=len(world.bills),
            open_orders=set(world._resting), live_algos=set(world._live_algos))
        return True

    def _account_row(self, a: Account) -> dict[str, Any]:
        row = {"api_key": a.api_key, "label": a.label, "initial_equity": a.initial_equity, "balances": a.balances,
               "positions": {k: asdict(p) for k, p in a.positions.items()}, "leverage": a.leverage,
               "u_time": a.u_time, "funding": a.funding}
        if a.secret and self.config_credentials.get(a.api_key) != (a.secret, a.passphrase):
            row["secret"], row["passphrase"] = a.secret, a.passphrase  # nowhere else to find them
        return row

    def delete(self, name: str) -> None:
        cur = self.db.cursor()
        cur.execute("BEGIN IMMEDIATE")
        try:
            for table in _PER_WORLD:
                cur.execute(f"DELETE FROM {table} WHERE {'name' if table == 'worlds' else 'world'} = ?", (name,))
            cur.execute("COMMIT")
        except BaseException:
            cur.execute("ROLLBACK")
            raise
        self._saved.pop(name, None)

    # ---- loading -------------------------------------------------------------------------------------
    def load(self, market: MarketData) -> dict[str, World]:
        """Every saved world, as it was at its last save (none for a new state)."""
        worlds: dict[str, World] = {}
        try:
            for name, seq, data in self.db.execute("SELECT name, seq, data FROM worlds ORDER BY seq"):
                worlds[name] = self._load_world(market, name, seq, json.loads(data))
        except (sqlite3.DatabaseError, ValueError, KeyError, TypeError) as exc:
            raise StateError(f"cannot read the simulator state {self.path} ({type(exc).__name__}: {exc}); "
                             "move it away, or start over with --fresh") from None
        return worlds

    def _rows(self, table: str, name: str) -> list[Any]:
        return [json.loads(d) for (d,) in self.db.execute(f"SELECT data FROM {table} WHERE world = ? ORDER BY seq",
                                                          (name,))]

    def _load_world(self, market: MarketData, name: str, seq: int, d: dict[str, Any]) -> World:
        c = d["clock"]
        clock = (ReplayClock(c["start_ms"]) if c["kind"] == "replay"
                 else RealtimeClock(c["start_ms"], c["speed"], wall_anchor=c["wall_anchor"]))
        world = World(name, market, clock, Faults.from_dict(d["faults"]), id_base=d["id_base"])
        world.agents = d["agents"]
        world.now = d["now"]
        world._counters = dict(d["counters"])
        world.events_processed = d["events_processed"]
        # a state written before funding existed: funding starts at its clock, nothing is charged for the past
        world.funding_settled = d.get("funding_settled", d["now"] // FUNDING_PERIOD_MS * FUNDING_PERIOD_MS)
        world._liq_guard = dict(d["liq_guard"])
        for row in self._rows("accounts", name):
            # Not written for the simulator's own accounts: this start's configuration gives them (or none:
            # an agent no longer configured cannot sign in until it is again).
            secret, passphrase = self.config_credentials.get(row["api_key"], ("", ""))
            acct = Account(row["api_key"], row.get("secret") or secret, row.get("passphrase") or passphrase,
                           label=row["label"], initial_equity=row["initial_equity"], balances=row["balances"],
                           leverage=row["leverage"], u_time=row["u_time"], funding=row.get("funding", {}),
                           positions={k: Position(**p) for k, p in row["positions"].items()})
            world.accounts[acct.api_key] = acct
        for row in self._rows("orders", name):
            row["attached"] = [AttachedAlgo(**a) for a in row["attached"]]
            for key in ("exit_sl", "exit_tp"):
                row[key] = tuple(row[key]) if row[key] is not None else None
            order = Order(**row)
            world.orders[order.ord_id] = order
            if order.cl_ord_id:
                world.accounts[order.api_key].cl_ord_ids[order.cl_ord_id] = order.ord_id
            if order.is_open:
                world._resting[order.ord_id] = order
        for row in self._rows("algos", name):
            algo = AlgoOrder(**row)
            world.algos[algo.algo_id] = algo
            if algo.algo_cl_ord_id:
                world.accounts[algo.api_key].algo_cl_ord_ids[algo.algo_cl_ord_id] = algo.algo_id
            if algo.is_live:
                world._live_algos[algo.algo_id] = algo
        world.fills = [Fill(**row) for row in self._rows("fills", name)]
        world.bills = self._rows("bills", name)
        world.rejections = self._rows("rejections", name)
        world.closed_positions = [(r["api_key"], Position(**r["position"]), r["closed_at"])
                                  for r in self._rows("closed_positions", name)]
        since = d["since"]
        world._since = {k: since.get(k, world.now) for k in (*world._resting, *world._live_algos)}
        world._taken = {k: list(v) for k, v in d.get("taken", {}).items()}  # book depletion in the current bar
        self._saved[name] = _Saved(
            seq=seq, revision=world.revision(), orders=len(world.orders), algos=len(world.algos),
            fills=len(world.fills), rejections=len(world.rejections), closed=len(world.closed_positions),
            bills=len(world.bills),
            open_orders=set(world._resting), live_algos=set(world._live_algos))
        return world


def _world_row(world: World) -> dict[str, Any]:
    clock = world.clock
    return {"agents": world.agents, "now": world.now, "id_base": world.id_base, "counters": world._counters,
            "events_processed": world.events_processed, "liq_guard": world._liq_guard, "since": world._since,
            "taken": world._taken,
            "funding_settled": world.funding_settled,
            "faults": world.faults.to_dict(),
            "clock": {"kind": clock.kind, "start_ms": clock.start_ms, "speed": getattr(clock, "speed", None),
                      "wall_anchor": getattr(clock, "wall_anchor", None)}}


def _old_id_floor(path: Path) -> int:
    """One past the largest id a state handed out (0 when it cannot be read): a fresh start begins above it."""
    if not path.exists():
        return 0
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            floor = int((db.execute("SELECT value FROM meta WHERE key = 'id_floor'").fetchone() or ["0"])[0])
            for (data,) in db.execute("SELECT data FROM worlds"):
                d = json.loads(data)
                floor = max(floor, d["id_base"] + max(v for k, v in d["counters"].items() if k != "seq") + 1)
            return floor
        finally:
            db.close()
    except (sqlite3.DatabaseError, ValueError, KeyError, TypeError):
        return 0
