"""Every secret the configuration points at, so that none of them is stored or shown.

Secrets live only in environment variables; the config names them (an agent's LLM `api_key_env`, its OKX
`api_key_env` / `secret_env` / `passphrase_env`). Anything okxlab receives from outside and keeps — a
model's answer above all, which may echo whatever it was shown or told — is scrubbed of these values
before it is stored, logged or sent on (okxlab/planning/llm.py).
"""

from __future__ import annotations

import os

from okxlab import settings
from okxlab.config import Config

# Variables that hold a secret whatever the config says (besides the ones the config names): the LLM keys, and
# okxlab's own secret settings. A URL is not a secret as a whole; its password is (below).
SECRET_VARIABLES = ("DEEPSEEK_API_KEY", "DASHSCOPE_API_KEY", "OPENAI_API_KEY",
                    *(name for name in settings.SECRET_VARIABLES if not name.endswith("_URL")))
URL_VARIABLES = tuple(name for name in settings.SECRET_VARIABLES if name.endswith("_URL"))
MIN_LENGTH = 6  # shorter values would scrub ordinary words; no real key or password is that short


def _url_password(name: str) -> str | None:
    # The raw variable, not the checked settings: scrubbing must work even while another setting is wrong.
    raw = os.environ.get(name)
    if not raw:
        return None
    try:
        from sqlalchemy.engine import make_url

        return make_url(raw).password
    except Exception:  # a URL that does not parse holds no password we could find either
        return None


def configured_secrets(config: Config) -> tuple[str, ...]:
    """The values of every secret variable named by `config` or known to okxlab, as set now, longest first
    (so a secret that contains another is scrubbed whole)."""
    names = set(SECRET_VARIABLES)
    for agent in config.agents:
        names.update(v for v in agent.okx.values() if isinstance(v, str))
        key_env = agent.llm.get("api_key_env") if isinstance(agent.llm, dict) else None
        if isinstance(key_env, str):
            names.add(key_env)
    values = {os.environ.get(name, "").strip() for name in names}
    values.update(_url_password(name) or "" for name in URL_VARIABLES)
    flower = os.environ.get("FLOWER_BASIC_AUTH", "")
    values.update(part.split(":", 1)[1] for part in flower.split(",") if ":" in part)
    return tuple(sorted((v for v in values if len(v) >= MIN_LENGTH), key=len, reverse=True))
