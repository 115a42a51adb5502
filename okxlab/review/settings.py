"""The `[review]` table of the config file: how leaderboards judge noise, what the benchmark is, chart size.

Defined with the rest of the file's schema (okxlab/config_schema.py), which okxlab.config checks at load; the
review code imports it from here. Mail settings come from the environment (okxlab/settings.py), so the
password never sits in a file next to the rest. The time of the nightly report is OKXLAB_REPORT_TIME.
"""

from okxlab.config_schema import ReviewSettings

__all__ = ["ReviewSettings"]
