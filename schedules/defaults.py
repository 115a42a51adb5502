"""Schedules seeded into a new database (once; remove or disable them with `okxlab schedules`)."""

DEFAULT_SCHEDULES = (
    # name, agent (None = every agent), kind, expression
    ("every-4h", None, "interval", "4h"),
)
