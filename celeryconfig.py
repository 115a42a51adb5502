"""Celery configuration for okxlab: queues, routes, delivery guarantees, limits, beat. One place for all of it.

The broker comes from OKXLAB_BROKER_URL (Redis or RabbitMQ in production; the in-process `memory://`
broker when unset, for the embedded quick start). Every variable is read through okxlab.settings, checked
here once for every worker and beat: a bad one stops them with one line, before anything runs.
"""

from kombu import Exchange, Queue

from okxlab.errors import ConfigError
from okxlab.pipeline.stages import STAGE_TIME_LIMITS, STAGES
from okxlab.settings import current as _current_settings
from schedules.beat import beat_schedule as _beat_schedule

SERVICE_QUEUES = ("dispatch", "review", "replay")

try:
    _settings = _current_settings()
except ConfigError as exc:
    raise SystemExit(f"okxlab: error: {exc}") from None  # not an Exception: celery shows it as one line

broker_url = _settings.broker
broker_connection_retry_on_startup = True
# Redis re-delivers an unacknowledged message (its worker died) after this long. It should exceed the longest
# task (plan, 600 s) plus the longest retry countdown, or a task still running is delivered a second time
# (harmless, stages are idempotent, but wasted work). The reliability tests lower it to see redelivery.
_VISIBILITY = _settings.broker_visibility_timeout
broker_transport_options = {
    "visibility_timeout": _VISIBILITY,
    # Look for overdue messages every quarter of the timeout (kombu's default sweep is every 100 s).
    "unacked_restore_interval": max(1, min(100, int(_VISIBILITY / 4))),
    "unacked_restore_throttle": 1,
}
if _settings.broker_prefix:
    # Several okxlab deployments (or test sessions) sharing one Redis keep their queues apart.
    broker_transport_options["global_keyprefix"] = _settings.broker_prefix

# Progress lives in Postgres, not in a result backend.
task_ignore_result = True
result_backend = None
task_serializer = "json"
result_serializer = "json"
accept_content = ["json"]
timezone = "UTC"
enable_utc = True

_exchange = Exchange("okxlab", type="direct")
task_queues = tuple(Queue(name, _exchange, routing_key=name) for name in (*STAGES, *SERVICE_QUEUES))
task_default_queue = "dispatch"
task_default_exchange = "okxlab"
task_default_routing_key = "dispatch"
task_routes = {
    **{f"okxlab.{stage}": {"queue": stage, "routing_key": stage} for stage in STAGES},
    "okxlab.dispatch": {"queue": "dispatch", "routing_key": "dispatch"},
    "okxlab.reconcile_runs": {"queue": "dispatch", "routing_key": "dispatch"},
    "okxlab.nightly_report": {"queue": "review", "routing_key": "review"},
    "okxlab.reconcile_ledgers": {"queue": "review", "routing_key": "review"},
    "okxlab.replay_range": {"queue": "replay", "routing_key": "replay"},
}

# Celery's consumer, except that a failed clean-up of a lost broker connection never ends the worker
# (workers/consumer.py explains the kombu failure it survives).
worker_consumer = "workers.consumer:Consumer"

# At-least-once delivery that survives a worker crash; stages are idempotent, so a redelivery is harmless.
task_acks_late = True
task_reject_on_worker_lost = True
worker_prefetch_multiplier = 1
task_annotations = {
    f"okxlab.{stage}": {"time_limit": limit, "soft_time_limit": limit - 10} for stage, limit in STAGE_TIME_LIMITS.items()
}

# Flower shows tasks from events.
worker_send_task_events = True
task_send_sent_event = True

beat_schedule = _beat_schedule()
# Beat's own state (last run of each fixed entry) lives in the data directory, not the working directory.
beat_scheduler = "schedules.beat:HomeScheduler"
beat_schedule_filename = str(_settings.home_dir / "celerybeat-schedule")
