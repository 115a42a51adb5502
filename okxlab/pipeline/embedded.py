"""A real Celery worker running in a thread of the current process.

`okxlab demo` uses it with the in-process broker (`memory://`): the same tasks, queues, routes, acks and
retries as production, with no server to install. Tests use it against Redis too. It is a WorkController,
the object `celery worker` itself runs, not eager execution.
"""

from __future__ import annotations

import threading

from celery import Celery
from celery.worker import WorkController


class _Controller(WorkController):
    """Signals when its consumer is ready, so callers start sending only once tasks will be taken."""

    def __init__(self, *args, **kwargs) -> None:  # noqa: ANN002, ANN003
        self.ready = threading.Event()
        super().__init__(*args, **kwargs)

    def on_consumer_ready(self, consumer) -> None:  # noqa: ANN001
        super().on_consumer_ready(consumer)
        self.ready.set()


class EmbeddedWorker:
    def __init__(self, app: Celery, queues: list[str], *, concurrency: int = 4, hostname: str = "embedded@okxlab"):
        self.app = app
        self.queues = queues
        self.concurrency = concurrency
        self.hostname = hostname
        self._controller: _Controller | None = None
        self._thread: threading.Thread | None = None
        self.error: BaseException | None = None

    def start(self, timeout: float = 30.0) -> EmbeddedWorker:
        app = self.app
        if app.conf.broker_url.startswith("memory://"):
            # The in-process transport polls its queues; poll often so a stage hand-off takes milliseconds.
            app.conf.broker_transport_options = {**app.conf.broker_transport_options, "polling_interval": 0.005}
        app.loader.import_default_modules()
        app.finalize()
        app.set_current()
        app.set_default()  # canvas objects built without an explicit app (chains) must resolve to this one
        self._controller = _Controller(
            app=app, hostname=self.hostname, pool_cls="threads", concurrency=self.concurrency, queues=self.queues,
            loglevel="WARNING", without_heartbeat=True, without_mingle=True, without_gossip=True,
            ready_callback=None,
        )

        def run() -> None:
            try:
                self._controller.start()
            except BaseException as exc:  # surfaced by start() below instead of dying silently
                self.error = exc
                self._controller.ready.set()

        self._thread = threading.Thread(target=run, name=f"celery-{self.hostname}", daemon=True)
        self._thread.start()
        if not self._controller.ready.wait(timeout) or self.error is not None:
            raise RuntimeError(f"the embedded Celery worker did not start: {self.error or 'timeout'}")
        return self

    def stop(self, timeout: float = 30.0) -> None:
        if self._controller is not None:
            self._controller.stop(in_sighandler=False)
        if self._thread is not None:
            self._thread.join(timeout)
        self._controller = self._thread = None

    def __enter__(self) -> EmbeddedWorker:
        return self.start()

    def __exit__(self, *exc) -> None:  # noqa: ANN002
        self.stop()
