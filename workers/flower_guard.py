"""Flower, as okxlab starts it (`celery -A workers flower`): on loopback unless told otherwise, never without auth.

Flower shows every task's arguments, the broker and the workers, and can shut workers down, so okxlab refuses
to start it unless its EFFECTIVE settings authenticate every page: the settings Flower itself will use, read
with Flower's own parsing in Flower's order (FLOWER_* environment variables, then its config file,
`flowerconfig.py` or --conf, then the command line). Flower parses them again right after, from the same
inputs, to the same result. A flag that merely looks like auth (`--auth=`, `--auth_provider=...` without a
usable `--auth`, `FLOWER_BASIC_AUTH=` empty) is refused.

Two of Flower's defaults change:
- the address: Flower's default, '', listens on every interface; okxlab's is 127.0.0.1. --address,
  FLOWER_ADDRESS or `address` in the config file choose another one (0.0.0.0 for every interface).
- /metrics: Flower serves it without auth (task names, worker host names, rates); okxlab puts it behind
  the same sign-in as the pages. /healthcheck stays open: it answers "OK" and nothing else, for probes.
"""

from __future__ import annotations

import sys
from typing import Any

LOOPBACK = "127.0.0.1"
NEEDS = "Flower needs authentication: "
HOW = ("set FLOWER_BASIC_AUTH=user:password (or --basic-auth=user:password), or use OAuth with --auth=EMAIL_REGEX, "
       "--auth_provider, --oauth2_key, --oauth2_secret and --oauth2_redirect_uri")
OAUTH_SETTINGS = ("oauth2_key", "oauth2_secret", "oauth2_redirect_uri")


# celery's global options that take a value (celery/bin/celery.py); the subcommand is the first other word.
_CELERY_VALUE_OPTIONS = {"-A", "--app", "-b", "--broker", "--result-backend", "--loader", "--config", "--workdir"}


def flower_args(argv: list[str]) -> list[str] | None:
    """Flower's own arguments when this process is `celery ... flower ...`; None for every other process.

    Read from argv, not click: celery imports this app while loading its command plugins (okxlab's `replay`),
    before it parses anything. The `celery` module check keeps e.g. `pytest -k flower` from matching."""
    if "celery.bin.celery" not in sys.modules:
        return None
    rest = argv[1:]
    i = 0
    while i < len(rest):
        word = rest[i]
        if word == "flower":
            return rest[i + 1:]
        if not word.startswith("-"):
            return None  # another subcommand
        i += 2 if word in _CELERY_VALUE_OPTIONS else 1
    return None


def refuse_reason(args: list[str], environ: dict[str, str]) -> str | None:
    """Apply Flower's options as Flower will (okxlab's address default first) and put /metrics behind auth.
    Returns why Flower must not start, or None."""
    from flower.command import apply_env_options, apply_options
    from tornado.options import options

    options.address = LOOPBACK  # set before Flower's sources are applied, so any of them overrides it
    try:
        apply_env_options()
        apply_options(sys.argv[0], args)
    except Exception as exc:  # noqa: BLE001 (a config file is Python; tornado and int() raise their own types)
        return f"Flower's options cannot be read: {type(exc).__name__}: {exc}"
    if not options.unix_socket and not options.address:
        return ("Flower's address is empty, which listens on every interface: leave it out for 127.0.0.1, or give "
                "the address to listen on (--address=0.0.0.0 for every interface)")
    return auth_problem(options, environ) or protect_metrics()


def auth_problem(opts: Any, environ: dict[str, str]) -> str | None:  # noqa: ANN401 (tornado's options object)
    """Why these Flower settings would serve a page without authentication (or let nobody sign in), or None."""
    basic = list(opts.basic_auth or [])
    if basic and not all(_user_password(c) for c in basic):
        return NEEDS + ("basic auth must be user:password with both parts non-empty (FLOWER_BASIC_AUTH or "
                        "--basic-auth; several separated by commas)")
    if opts.auth:
        problem = _oauth_problem(opts, environ)
        return NEEDS + problem if problem else None
    if basic:
        return None
    if opts.auth_provider:
        return NEEDS + (f"--auth_provider={opts.auth_provider} signs nobody in without --auth=EMAIL_REGEX, "
                        "--oauth2_key, --oauth2_secret and --oauth2_redirect_uri; or set FLOWER_BASIC_AUTH=user:password")
    return NEEDS + HOW


def _user_password(credential: str) -> bool:
    user, colon, password = credential.partition(":")
    return bool(colon and user.strip() and password)


def _oauth_problem(opts: Any, environ: dict[str, str]) -> str | None:  # noqa: ANN401
    from celery.utils.imports import symbol_by_name
    from flower.utils.authentication import validate_auth_option

    if not validate_auth_option(opts.auth):
        return f"--auth={opts.auth!r} is not an email address, a list of them (a|b) or one with a single * before @"
    if not opts.auth_provider:
        return "--auth needs --auth_provider (e.g. flower.views.auth.GithubLoginHandler); without it nobody signs in"
    try:
        symbol_by_name(opts.auth_provider)
    except (ImportError, AttributeError, ValueError) as exc:
        return f"--auth_provider={opts.auth_provider} cannot be imported ({exc})"
    # Flower reads these from its options or, failing that, from FLOWER_OAUTH2_* (flower/command.py)
    missing = [f"--{name}" for name in OAUTH_SETTINGS
               if not (getattr(opts, name) or environ.get(f"FLOWER_{name.upper()}"))]
    if missing:
        return f"OAuth needs {', '.join(missing)} (or FLOWER_OAUTH2_KEY / _SECRET / _REDIRECT_URI)"
    return None


def protect_metrics() -> str | None:
    """Flower's /metrics handler behind the same check as its pages (tornado's @authenticated, which Flower's
    views use). If this Flower has no such handler, refuse rather than serve it open."""
    try:
        from flower.views.monitor import Metrics
        from tornado.web import authenticated
    except ImportError as exc:
        return f"cannot put Flower's /metrics behind authentication ({exc}); check the installed Flower version"
    if not getattr(Metrics.get, "okxlab_authenticated", False):
        Metrics.get = authenticated(Metrics.get)
        Metrics.get.okxlab_authenticated = True
    return None
