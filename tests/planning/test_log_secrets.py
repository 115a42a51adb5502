"""Configured secrets never reach a log record, whoever logs them (okxlab/log_secrets.py)."""

from __future__ import annotations

import io
import logging

import pytest

from okxlab import log_secrets
from okxlab.config import parse_config
from okxlab.secrets import configured_secrets


def test_secrets_the_config_names_are_scrubbed_from_every_log_record(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOG_OKX_SECRET", "OKXsecretLogged-4e1f9a")
    monkeypatch.setenv("OKXLAB_DATABASE_URL", "postgresql://okxlab:DBpwLogged-77c2@db.internal/okxlab")
    config = parse_config('[[agents]]\nname = "a"\nplanner = "strategy"\nstrategy = "builtin:buy_and_hold"\n'
                          'symbols = ["BTC-USDT-SWAP"]\n[agents.okx]\napi_key_env = "LOG_OKX_KEY"\n'
                          'secret_env = "LOG_OKX_SECRET"\npassphrase_env = "LOG_OKX_PASS"\n', "<test>")
    log_secrets.install(configured_secrets(config))
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(logging.Formatter("%(name)s %(message)s"))
    lib = logging.getLogger("some.library")
    lib.addHandler(handler)
    lib.setLevel(logging.DEBUG)
    try:
        lib.info("signing with %s for %s", "OKXsecretLogged-4e1f9a", "postgresql://okxlab:DBpwLogged-77c2@db")
        try:
            raise ConnectionError("could not connect: password DBpwLogged-77c2 refused")
        except ConnectionError:
            lib.exception("connect failed")
    finally:
        lib.removeHandler(handler)
        log_secrets.install(())
    text = out.getvalue()
    assert "OKXsecretLogged-4e1f9a" not in text and "DBpwLogged-77c2" not in text
    # the message (2), the exception and the source line the traceback quotes (2)
    assert text.count("[redacted]") == 4 and "Traceback" in text and "connect failed" in text
