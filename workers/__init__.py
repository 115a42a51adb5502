"""The Celery app (`celery -A workers ...`) and okxlab's tasks: thin wrappers over okxlab's domain functions."""

# The app first: it refuses an unsafe Flower (workers/flower_guard.py) before the tasks pull in ccxt and pandas.
from workers.app import app  # noqa: I001
from workers import tasks  # noqa: F401  (registers the tasks)

celery = app
__all__ = ["app", "celery"]
