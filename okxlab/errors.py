"""Errors a user can act on. The CLI prints them as one line and exits non-zero, with no traceback."""


class UserError(Exception):
    """Something the user must fix (bad input, bad config, missing key). The message says what to do."""

    exit_code = 2


class ConfigError(UserError):
    """The config file or the environment is wrong."""


class NotFound(UserError):
    """An agent, run, schedule or file that does not exist."""


class TransientError(Exception):
    """Worth retrying: the condition is expected to pass (the exchange or a dependency is briefly away)."""
