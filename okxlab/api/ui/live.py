"""Live pushes: one LISTEN connection per API process fans Postgres notifications (migration 0006's triggers: a
run ended, a fill booked, an order or trading state changed, a control or a replay moved) out to every open page
as server-sent events. No page polls the database: a page re-reads only the part an event concerns.

SQLite (the embedded demo) has no NOTIFY: there the stream carries only keep-alives, and the pages show the
finished demo.
"""

from __future__ import annotations

import asyncio
import json
import logging
import select
import threading
import time
from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy.engine import make_url

log = logging.getLogger("okxlab.api.live")

CHANNEL = "okxlab_events"
KEEPALIVE_S = 15.0
CLOSE = "_close"  # the server is stopping: a stream ends when it reads this
QUEUE_SIZE = 1000  # events per page; a page that falls this far behind is told to re-read everything


class EventHub:
    """Notifications from Postgres, delivered to asyncio subscribers (one queue per open page)."""

    def __init__(self, database_url: str) -> None:
        self.url = make_url(database_url)
        self.enabled = self.url.get_backend_name() == "postgresql"
        self._subscribers: set[tuple[asyncio.AbstractEventLoop, asyncio.Queue[dict[str, Any]]]] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.listening = threading.Event()  # set while a LISTEN connection is open

    def start(self) -> EventHub:
        if self.enabled and self._thread is None:
            self._thread = threading.Thread(target=self._run, name="okxlab-live", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def subscribe(self) -> asyncio.Queue[dict[str, Any]]:
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(QUEUE_SIZE)
        with self._lock:
            self._subscribers.add((asyncio.get_running_loop(), queue))
        return queue

    def unsubscribe(self, queue: asyncio.Queue[dict[str, Any]]) -> None:
        with self._lock:
            self._subscribers = {(loop, q) for loop, q in self._subscribers if q is not queue}

    def publish(self, event: dict[str, Any]) -> None:
        with self._lock:
            targets = list(self._subscribers)
        for loop, queue in targets:
            try:
                loop.call_soon_threadsafe(_offer, queue, event)
            except RuntimeError:  # the page's loop has closed; it unsubscribes on its way out
                pass

    def close_streams(self) -> None:
        """End every open page's stream (the server is stopping; browsers reconnect to the next one)."""
        self.publish({"kind": CLOSE})

    def _connect(self) -> Any:
        import psycopg2

        u = self.url
        conn = psycopg2.connect(host=u.host, port=u.port, user=u.username, password=u.password, dbname=u.database,
                                **dict(u.query), connect_timeout=5)
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(f"LISTEN {CHANNEL}")
        return conn

    def _run(self) -> None:
        delay = 0.5
        while not self._stop.is_set():
            try:
                conn = self._connect()
            except Exception as exc:  # the database is down: try again, a little later each time
                log.warning("live events: cannot listen (%s); retrying in %.0f s", type(exc).__name__, delay)
                self._stop.wait(delay)
                delay = min(delay * 2, 30.0)
                continue
            delay = 0.5
            self.listening.set()
            self.publish({"kind": "resync"})  # anything missed while not listening: pages re-read all they show
            try:
                self._pump(conn)
            except Exception as exc:  # connection lost; reconnect
                log.warning("live events: connection lost (%s)", type(exc).__name__)
            finally:
                self.listening.clear()
                try:
                    conn.close()
                except Exception:  # already gone
                    pass

    def _pump(self, conn: Any) -> None:
        while not self._stop.is_set():
            if select.select([conn], [], [], 1.0)[0]:
                conn.poll()
                while conn.notifies:
                    note = conn.notifies.pop(0)
                    try:
                        event = json.loads(note.payload)
                    except ValueError:
                        continue
                    event["at"] = time.time()
                    self.publish(event)


def _offer(queue: asyncio.Queue[dict[str, Any]], event: dict[str, Any]) -> None:
    try:
        queue.put_nowait(event)
    except asyncio.QueueFull:  # a stalled page: drop what it has not read and make it re-read everything
        while not queue.empty():
            queue.get_nowait()
        queue.put_nowait({"kind": "resync"})


async def stream(hub: EventHub, is_disconnected: Any) -> AsyncIterator[str]:
    """The text/event-stream of one page: `event: <kind>` and the JSON payload, keep-alive comments between."""
    queue = hub.subscribe()
    try:
        yield "retry: 2000\n\n"
        while True:
            try:
                event = await asyncio.wait_for(queue.get(), KEEPALIVE_S)
            except TimeoutError:
                if await is_disconnected():
                    return
                yield ": keep-alive\n\n"
                continue
            if event.get("kind") == CLOSE:
                return
            yield f"event: {event.get('kind', 'message')}\ndata: {json.dumps(event, default=str)}\n\n"
    finally:
        hub.unsubscribe(queue)
