"""Writing many records at once: ids reserved up front, rows sent in batches by a background thread.

In-process replays produce the same records as the pipeline (runs, stage records, every stage's table), tens
of thousands of runs at a time. Row by row through the ORM that is a few milliseconds per row; here rows are
plain dicts, ids are reserved from each table's sequence in blocks (so rows can refer to each other before
they are written), and each batch goes to the database in one transaction:

- Postgres: `COPY ... FROM STDIN (FORMAT csv)` per table, in foreign-key order, on a connection of its own,
  from a background thread, so the database parses and indexes one batch while Python computes the next;
- SQLite (and anything else): executemany inserts through SQLAlchemy Core, in the same order.

A batch that fails stops the writer; `close()` raises its error.
"""

from __future__ import annotations

import csv
import io
import queue
import threading
import time
from datetime import date, datetime
from typing import Any

import orjson
from sqlalchemy import JSON, func, insert, select, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Engine

from okxlab.db import models as m

# Foreign-key order: a table comes after every table it refers to.
TABLES: tuple[type[m.Base], ...] = (
    m.Run, m.StageRecord, m.MarketSnapshot, m.AccountSnapshot, m.QualityCheck, m.FeatureSet, m.PlanRecord,
    m.PlanValidation, m.RiskVerdictRecord, m.Order, m.Fill, m.PositionRecord, m.EquitySnapshot, m.AuditEvent,
)


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


class IdBlocks:
    """Ids for new rows of one table, reserved from the database in blocks."""

    def __init__(self, engine: Engine, model: type[m.Base], block: int = 1000):
        self.engine, self.model, self.block = engine, model, block
        self._free: list[int] = []
        self._next_sqlite: int | None = None
        self._sequence: str | None = None

    def take(self) -> int:
        if not self._free:
            self._free = self._reserve(self.block)[::-1]
            self.block = min(self.block * 2, 100_000)  # a table that keeps asking gets bigger blocks
        return self._free.pop()

    def expect(self, n: int) -> None:
        """About n more rows are coming: reserve them in one block (drawing ids costs ~1 µs each in Postgres, so
        blocks that overshoot are not free)."""
        if n > len(self._free):
            self._free = self._reserve(n - len(self._free))[::-1] + self._free

    def _reserve(self, n: int) -> list[int]:
        table = self.model.__tablename__
        with self.engine.begin() as conn:
            if self.engine.dialect.name == "postgresql":
                # One round trip: the range drawn, and the values themselves only when somebody else drew from the
                # sequence meanwhile (they are not one range then).
                if self._sequence is None:  # looked up once: per row it costs 5x the draw itself
                    self._sequence = conn.scalar(text(f"SELECT pg_get_serial_sequence('{table}', 'id')"))
                lo, hi, values = conn.execute(text(
                    "WITH s AS (SELECT nextval(CAST(:seq AS regclass)) AS v FROM generate_series(1, :n)) "
                    "SELECT min(v), max(v), CASE WHEN max(v) - min(v) + 1 = count(*) "
                    "THEN NULL ELSE array_agg(v ORDER BY v) END FROM s"), {"n": n, "seq": self._sequence}).one()
                return list(range(lo, hi + 1)) if values is None else list(values)
            if self._next_sqlite is None:  # SQLite: the replay is the only writer of its rows
                self._next_sqlite = int(conn.scalar(select(func.coalesce(func.max(self.model.id), 0))) or 0) + 1
        first = self._next_sqlite
        self._next_sqlite += n
        return list(range(first, first + n))


class BulkWriter:
    """Collects rows per table and writes them in batches (see the module docstring). Every row gives every
    column (the ORM's Python-side defaults do not apply here); a missing key is written as NULL.

    On Postgres, rows are encoded as CSV by the caller's thread when a batch is flushed (the csv module and the
    json encoder are C code), and only `COPY` runs in the background thread, which mostly waits on the socket.
    A writer thread that encoded rows itself would hold the GIL in long stretches and stall the caller's
    thread every time it came back from a C call (numpy, TA-Lib): about twice as slow overall."""

    def __init__(self, engine: Engine, *, background: bool = True, max_pending: int = 4):
        self.engine = engine
        self.postgres = engine.dialect.name == "postgresql"
        self.rows: dict[type[m.Base], list[dict[str, Any]]] = {t: [] for t in TABLES}
        self._pending = 0
        self.ids = {t: IdBlocks(engine, t) for t in TABLES if "id" in t.__table__.columns and t is not m.Run}
        self.written = 0
        self.encode_seconds = 0.0  # CPU time spent turning rows into CSV (caller's thread)
        self.copy_seconds = 0.0  # wall time the database took to take them (writer thread)
        self._columns = {t: [c.key for c in t.__table__.columns] for t in TABLES}
        self._json = {t: {c.key for c in t.__table__.columns if isinstance(c.type, JSON | JSONB)
                          or getattr(c.type, "impl", None).__class__ in (JSON, JSONB)} for t in TABLES}
        self._error: BaseException | None = None
        self._queue: queue.Queue[list[tuple[type[m.Base], Any]] | None] = queue.Queue(max_pending)
        self._thread: threading.Thread | None = None
        if background:
            self._thread = threading.Thread(target=self._drain, name="okxlab-bulk-writer", daemon=True)
            self._thread.start()

    def new_id(self, model: type[m.Base]) -> int:
        return self.ids[model].take()

    def expect(self, counts: dict[type[m.Base], int]) -> None:
        """Rows about to come per table (see IdBlocks.expect)."""
        for model, n in counts.items():
            if n > 0:
                self.ids[model].expect(n)

    def add(self, model: type[m.Base], row: dict[str, Any]) -> None:
        self.rows[model].append(row)
        self._pending += 1

    def pending(self) -> int:
        """Rows added since the last flush."""
        return self._pending

    def flush(self) -> None:
        """Hand the rows collected so far to the writer (blocks while too many batches are queued)."""
        batch: list[tuple[type[m.Base], Any]] = [(t, rows) for t, rows in self.rows.items() if rows]
        if not batch:
            return
        self.rows = {t: [] for t in TABLES}
        self._pending = 0
        if self._error is not None:
            raise RuntimeError(f"writing replay records failed: {self._error}") from self._error
        if self.postgres:
            t0 = time.thread_time()
            batch = [(t, (len(rows), self._csv(t, rows))) for t, rows in batch]
            self.encode_seconds += time.thread_time() - t0
        if self._thread is None:
            self._write(batch)
        else:
            self._queue.put(batch)

    def close(self) -> None:
        self.flush()
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._thread = None
        if self._error is not None:
            raise RuntimeError(f"writing replay records failed: {self._error}") from self._error

    def _csv(self, model: type[m.Base], rows: list[dict[str, Any]]) -> str:
        """Rows as COPY CSV: NULL is \\N, JSON columns as JSON text, the rest as Python prints them (floats in
        full precision, times in ISO form, booleans as True/False, which Postgres all reads)."""
        cols = self._columns[model]
        json_cols = self._json[model]
        dumps, opts = orjson.dumps, orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY
        out = []
        for r in rows:
            values = []
            for c in cols:
                v = r.get(c)
                if v is None:
                    v = "\\N"
                elif c in json_cols:
                    # orjson: several times faster than json.dumps, the same text for what replays store (times in
                    # ISO form, numpy scalars as numbers); NaN and infinity become null (JSON has neither)
                    v = dumps(v, default=_json_default, option=opts).decode()
                values.append(v)
            out.append(values)
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerows(out)
        return buf.getvalue()

    # ---- the writer thread ---------------------------------------------------------------------------
    def _drain(self) -> None:
        while True:
            batch = self._queue.get()
            if batch is None:
                return
            if self._error is None:
                try:
                    self._write(batch)
                except BaseException as exc:  # noqa: BLE001 - reported by flush()/close()
                    self._error = exc

    def _write(self, batch: list[tuple[type[m.Base], Any]]) -> None:
        if self.postgres:
            raw = self.engine.raw_connection()
            try:
                with raw.cursor() as cur:
                    for model, (count, text_) in batch:
                        t1 = time.perf_counter()
                        quoted = ", ".join(f'"{c}"' for c in self._columns[model])
                        cur.copy_expert(f'COPY "{model.__tablename__}" ({quoted}) FROM STDIN '
                                        "WITH (FORMAT csv, NULL '\\N')", io.StringIO(text_), size=1 << 20)
                        self.copy_seconds += time.perf_counter() - t1
                        self.written += count
                raw.commit()
            except BaseException:
                raw.rollback()
                raise
            finally:
                raw.close()
            return
        with self.engine.begin() as conn:
            for model, rows in batch:
                cols = self._columns[model]
                conn.execute(insert(model.__table__), [{c: r.get(c) for c in cols} for r in rows])
                self.written += len(rows)
