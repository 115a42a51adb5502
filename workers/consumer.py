"""The worker's consumer: celery's own, except that losing the broker never ends the worker.

With celery 5.7 and kombu 5.7 on Redis, when the broker connection drops while the worker holds
unacknowledged messages (with task_acks_late, every task in progress), the consumer's clean-up takes the
connection's transport apart (`collect()`) and then closes its channel, which tries to put those messages
back through the transport that is gone: AttributeError ('NoneType' object has no attribute 'hostname').
Celery takes that for an unrecoverable error and the worker process exits instead of reconnecting. The same
error comes again once it has reconnected, when a task that was running finishes and its late ack goes
through the old channel. Found by tests/reliability/test_redis_restart.py.

This consumer lets the clean-up fail and carries on reconnecting (nothing could have been put back through
a lost connection: those messages stay in Redis' unacked set until the visibility timeout, or died with the
broker and the reconciler drives their runs on), and gives the old transport its settings back, so late
acks on old channels open a connection of their own like any other Redis command.
"""

from __future__ import annotations

import logging

from celery.worker.consumer import Consumer as CeleryConsumer

log = logging.getLogger("okxlab.worker")


class Consumer(CeleryConsumer):
    def on_connection_error_after_connected(self, exc: BaseException) -> None:
        connection = self.connection
        transport = getattr(connection, "_transport", None)  # the channels of tasks in progress keep it
        try:
            super().on_connection_error_after_connected(exc)
        except AttributeError as err:  # kombu closing a channel of a torn-down transport (see above)
            log.warning("consumer: cleaning up the lost broker connection failed (%r); reconnecting anyway", err)
            self.connection = None
        finally:
            if transport is not None and getattr(transport, "client", None) is None:
                transport.client = connection
