"""The Celery app (`celery -A workers ...`) and okxlab's tasks: thin wrappers over okxlab's domain functions."""

from workers import tasks  # noqa: F401  (registers the tasks)
from workers.app import app

celery = app
__all__ = ["app", "celery"]
