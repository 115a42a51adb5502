"""The LLM planner: prompt -> model (through the `openai` SDK) -> JSON -> plan schema, with one repair.

Flow for one run:
1. build the deterministic prompt (prompt.py) and its sha256;
2. ask the model (or take the recorded answer from the replay cache unless `ctx.fresh_llm`);
3. extract the JSON object (extract.py) and validate it (schema.validate_plan);
4. if that fails, ask once more, quoting the problems; if the second answer fails too, the result's error is
   `invalid_plan: ...` and nothing trades.
Transport failures (timeouts, 429, 5xx, connection) are retried with backoff by the SDK itself
(`max_retries`); when those run out the result's error is `llm_error: ...`.

Every request, cached or not, failed or not, becomes an LlmCall in the result: the audit trail.
The API key is read from the environment only to build the SDK client, is never stored on the planner or
in any result, and is scrubbed from every error text we record.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

import openai
from openai.types.chat import ChatCompletion

from okxlab.errors import ConfigError
from okxlab.planning.base import LlmCall, PlanContext, PlanResult
from okxlab.planning.cache import CachedResponse, ResponseCache
from okxlab.planning.extract import extract_json
from okxlab.planning.prompt import SERIES_BARS, Message, build_prompt, render_messages, sha256_text
from okxlab.planning.providers import (
    NO_KEY,
    LlmSettings,
    Price,
    estimate_cost,
    require_api_key,
)
from okxlab.planning.schema import validate_plan

log = logging.getLogger(__name__)

INVALID_PLAN = "invalid_plan"
LLM_ERROR = "llm_error"
REPAIR_ECHO_CHARS = 8_000  # how much of a bad answer is sent back in the repair request
MAX_PROBLEMS_QUOTED = 20
MAX_ERROR_CHARS = 300
_RETRIED_STATUSES = {408, 409, 429}  # plus every 5xx: what the SDK retries on its own


# ---- secrets never leave ----------------------------------------------------------------------------------

_KEY_LIKE = [
    (re.compile(r"(?i)\bbearer\s+[^\s\"',;]+"), "Bearer [redacted]"),
    (re.compile(r"\bsk-[A-Za-z0-9_\-]{6,}"), "sk-[redacted]"),
]
_TOKEN_END = frozenset("\"',;:")
_STARS = re.compile(r"\*{3,}")


def _in_token(ch: str) -> bool:
    return not ch.isspace() and ch not in _TOKEN_END


def _mask_starred(text: str) -> str:
    """Each token holding 3+ stars (a masked key a provider echoes: "sk-ab****wxyz") becomes [redacted].

    Walked by hand rather than with a regex around the stars: a backtracking regex takes quadratic time on a
    model's 200,000-character token, and the answers scrubbed here are anything a model cares to send."""
    out, pos = [], 0
    for m in _STARS.finditer(text):
        start, end = m.start(), m.end()
        if start < pos:  # inside a token already masked
            continue
        while start > pos and _in_token(text[start - 1]):
            start -= 1
        while end < len(text) and _in_token(text[end]):
            end += 1
        out += [text[pos:start], "[redacted]"]
        pos = end
    return "".join(out) + text[pos:] if out else text


def _without_pieces(text: str, secret: str) -> str:
    """`text` without any 8+ character piece of `secret` (providers echo parts of a bad key: "sk-abc...wxyz")."""
    # Every such piece holds one of the secret's 8-character windows: a text holding none is left at once,
    # without the quadratic walk over all pieces.
    if not any(secret[i:i + 8] in text for i in range(len(secret) - 7)):
        return text
    for size in range(len(secret) - 1, 7, -1):
        for i in range(len(secret) - size + 1):
            piece = secret[i:i + size]
            if piece in text:
                text = text.replace(piece, "[redacted]")
    return text


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """`text` without any of `secrets`, any 8+ character piece of them, or anything shaped like a key.
    Linear in the text's length: it runs on whatever a model answers."""
    for secret in secrets:
        if not secret or secret == NO_KEY:
            continue
        text = text.replace(secret, "[redacted]")
        if len(secret) >= 12:
            text = _without_pieces(text, secret)
    for pattern, replacement in _KEY_LIKE:
        text = pattern.sub(replacement, text)
    return _mask_starred(text)


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_ERROR_CHARS else text[: MAX_ERROR_CHARS - 3] + "..."


def _status_reason(exc: openai.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, Mapping):
        message = body.get("message") or body.get("error") or ""
    else:
        message = body if isinstance(body, str) else ""
    return str(message)[:200]


class _NotACompletion(Exception):
    pass


# ---- the planner ------------------------------------------------------------------------------------------

class _Client:
    """Builds the SDK client on first use (a cache hit needs none) and closes it after the run."""

    def __init__(self, settings: LlmSettings) -> None:
        self._settings = settings
        self._client: openai.OpenAI | None = None
        self.secret: str | None = None  # kept only for the run, to scrub error texts

    def get(self) -> openai.OpenAI:
        if self._client is None:
            s = self._settings
            self.secret = require_api_key(s)
            self._client = openai.OpenAI(api_key=self.secret, base_url=s.base_url, timeout=s.timeout,
                                         max_retries=s.max_retries)
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
        self._client, self.secret = None, None


class LlmPlanner:
    """A Planner backed by a chat model. Safe to share between threads; holds no key and no per-run state."""

    def __init__(
        self,
        agent: str,
        settings: LlmSettings,
        *,
        prices: Mapping[str, Price] | None = None,
        cache: ResponseCache | None = None,
        series_bars: int = SERIES_BARS,
        secrets: Iterable[str] = (),
    ) -> None:
        require_api_key(settings)  # a missing key is a start-up error for this agent, not a mid-run crash
        self.agent = agent
        self.settings = settings
        self.prices = dict(prices or {})
        self.cache = cache
        self.series_bars = series_bars
        self.secrets = tuple(secrets)  # every configured secret: scrubbed from the model's answers
        self.name = f"llm:{settings.label}"

    def __repr__(self) -> str:
        return f"LlmPlanner(agent={self.agent!r}, model={self.settings.label!r}, base_url={self.settings.base_url!r})"

    # -- the Planner protocol --
    def plan(self, ctx: PlanContext) -> PlanResult:
        prompt = build_prompt(ctx, series_bars=self.series_bars)
        result = PlanResult(document=None, raw="", planner=self.name, prompt=prompt.text, prompt_sha256=prompt.sha256)
        client = _Client(self.settings)
        try:
            first, finish = self._call(client, "plan", prompt.messages, fresh=ctx.fresh_llm)
            result.llm_calls.append(first)
            if first.error is not None:
                result.error = f"{LLM_ERROR}: {first.error}"
                return result
            result.raw = first.response or ""
            result.document, problems = self._check(first, finish, ctx)
            if not problems:
                return result

            messages = [*prompt.messages, *repair_messages(first.response or "", problems)]
            second, finish = self._call(client, "repair", messages, fresh=ctx.fresh_llm)
            result.llm_calls.append(second)
            if second.error is not None:
                result.error = _short(f"{LLM_ERROR}: {second.error} (while repairing: {problems[0]})")
                return result
            result.raw = second.response or ""
            result.document, problems = self._check(second, finish, ctx)
            if problems:
                more = f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""
                result.error = f"{INVALID_PLAN}: {_short(problems[0])}{more}"
            return result
        finally:
            client.close()

    # -- one request --
    def _call(self, client: _Client, purpose: str, messages: list[Message], *, fresh: bool) -> tuple[LlmCall, str | None]:
        """One request (or cache hit) as an audit record, and the model's finish_reason."""
        s = self.settings
        text = render_messages(messages)
        call = LlmCall(provider=s.provider, model=s.model, purpose=purpose, prompt=text, prompt_sha256=sha256_text(text))
        started = time.perf_counter()
        if self.cache is not None and not fresh:
            hit = self.cache.get(s.provider, s.model, call.prompt_sha256)
            if hit is not None:
                call.response, call.tokens_in, call.tokens_out = hit.text, hit.tokens_in, hit.tokens_out
                call.cost_usd, call.cached = 0.0, True  # nothing was spent this time
                call.latency_ms = round((time.perf_counter() - started) * 1000, 3)
                self._log(call)
                return call, hit.finish_reason

        finish_reason: str | None = None
        try:
            kwargs: dict[str, Any] = {"model": s.model, "messages": messages, "temperature": s.temperature,
                                      "max_tokens": s.max_tokens}
            if s.json_mode:
                kwargs["response_format"] = {"type": "json_object"}
            completion = client.get().chat.completions.create(**kwargs)
            if not isinstance(completion, ChatCompletion) or not completion.choices:
                raise _NotACompletion
            choice = completion.choices[0]
            # A model may repeat anything it saw or was told, keys included: its answer is kept (stored,
            # cached, quoted back in the repair request) only without them.
            call.response = redact((choice.message.content if choice.message is not None else None) or "",
                                   (client.secret or "", *self.secrets))
            finish_reason = choice.finish_reason
            if completion.usage is not None:
                call.tokens_in = completion.usage.prompt_tokens
                call.tokens_out = completion.usage.completion_tokens
            call.cost_usd = estimate_cost(self.prices, s.label, call.tokens_in, call.tokens_out)
        except ConfigError as exc:  # the key vanished from the environment since start-up
            call.error = str(exc)
        except openai.APITimeoutError:
            call.error = f"timeout: no answer within {s.timeout:g}s" + self._retried_note()
        except openai.APIConnectionError:
            call.error = f"connection error: cannot reach {urlsplit(s.base_url).netloc}" + self._retried_note()
        except openai.APIStatusError as exc:
            retried = exc.status_code in _RETRIED_STATUSES or exc.status_code >= 500
            reason = _status_reason(exc)
            call.error = f"HTTP {exc.status_code}" + (f": {reason}" if reason else "") + (self._retried_note() if retried else "")
        except openai.OpenAIError as exc:
            call.error = f"{type(exc).__name__}: {exc}"
        except Exception as exc:  # a 200 whose body is not a chat completion (a proxy's HTML page, no choices)
            call.error = f"unexpected answer from the server: not a chat completion ({type(exc).__name__})"
        call.latency_ms = round((time.perf_counter() - started) * 1000, 3)
        if call.error is not None:
            call.error = _short(redact(call.error, (client.secret or "", *self.secrets)))
            call.response = None
        elif self.cache is not None:
            try:
                self.cache.put(s.provider, s.model, call.prompt_sha256,
                               CachedResponse(call.response or "", call.tokens_in, call.tokens_out, finish_reason))
            except Exception as exc:  # the answer is paid for and in hand: losing its replay copy is not fatal
                log.warning("llm cache: could not record the answer for %s (%s)", call.prompt_sha256[:12],
                            type(exc).__name__)
        self._log(call)
        return call, finish_reason

    def _retried_note(self) -> str:
        n = self.settings.max_retries
        return f" (after {n} {'retry' if n == 1 else 'retries'})" if n else ""

    def _check(self, call: LlmCall, finish_reason: str | None, ctx: PlanContext) -> tuple[Any, list[str]]:
        """The answer's JSON document and what is wrong with it (empty when it is a valid plan)."""
        extraction = extract_json(call.response)
        if extraction.document is None:
            problem = extraction.error or "no JSON object found in the answer"
            if finish_reason == "length":
                problem += f"; the answer stopped at max_tokens ({self.settings.max_tokens}), so keep it shorter"
            return None, [problem]
        return extraction.document, [str(p) for p in validate_plan(extraction.document, list(ctx.symbols))]

    def _log(self, call: LlmCall) -> None:
        log.info(
            "llm %s agent=%s model=%s prompt=%s cached=%s tokens=%s/%s latency_ms=%s error=%s",
            call.purpose, self.agent, self.settings.label, call.prompt_sha256[:12], call.cached,
            call.tokens_in, call.tokens_out, call.latency_ms, call.error,
        )


def repair_messages(answer: str, problems: list[str]) -> list[Message]:
    """The two messages appended to the conversation for the one repair request."""
    echoed = answer if len(answer) <= REPAIR_ECHO_CHARS else answer[:REPAIR_ECHO_CHARS] + "\n[... cut]"
    quoted = problems[:MAX_PROBLEMS_QUOTED]
    lines = [f"Your answer could not be used. Problems ({len(problems)}):"]
    lines += [f"- {p}" for p in quoted]
    if len(problems) > len(quoted):
        lines.append(f"- ... and {len(problems) - len(quoted)} more")
    lines.append("Reply again with the corrected JSON object only, in the format given in the system message.")
    return [{"role": "assistant", "content": echoed or "(empty answer)"}, {"role": "user", "content": "\n".join(lines)}]
