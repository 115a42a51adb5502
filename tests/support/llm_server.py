"""A local OpenAI-compatible chat completions server, scripted per test, spoken to over real HTTP.

The real `openai` SDK (and anything else speaking the chat completions API) can be pointed at it with
`base_url=server.base_url`. Nothing leaves 127.0.0.1.

    with LlmServer() as server:
        server.script(
            error(429),                       # the SDK retries this one itself...
            answer('{"decisions": []}'),      # ...and gets this
        )
        ... run code with base_url=server.base_url ...
        assert len(server.chat_requests) == 2
        assert server.chat_requests[0].authorization == "Bearer sk-test"

Replies are consumed one per chat request, in order. When the script is empty the `responder` (a function of
the Request) answers, if one was given; otherwise the server answers 400 "no scripted reply left", which the
SDK does not retry, so a test that asks more than it scripted fails at once and says why.

Reply kinds (constructors below): `answer` (a chat completion with the given content), `error` (an HTTP
status with an OpenAI-style error body; by default with a tiny `retry-after-ms` so SDK retries are fast),
`stall` (wait before answering: for client timeouts), `raw` (any bytes: malformed bodies), `drop` (close
the connection without answering). Every request is recorded (method, path, lower-cased headers, raw and
parsed body) so tests can assert what was sent, and that nothing was.
"""

from __future__ import annotations

import itertools
import json
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["LlmServer", "Reply", "Request", "answer", "drop", "error", "raw", "stall"]


@dataclass(frozen=True)
class Reply:
    """One scripted answer. Use the constructors; the fields are for reading."""

    status: int = 200
    content: str | None = ""  # the assistant message (status 200); None sends "content": null
    usage: tuple[int, int] | None = (120, 40)  # (prompt_tokens, completion_tokens); None omits "usage"
    finish_reason: str = "stop"
    message: str = ""  # error message (status != 200)
    error_type: str = "server_error"
    headers: Mapping[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds to wait before answering
    body: bytes | None = None  # sent verbatim instead of a generated body
    content_type: str = "application/json"
    drop: bool = False  # close the connection without any answer


def answer(content: str | None, *, usage: tuple[int, int] | None = (120, 40), finish_reason: str = "stop",
           delay: float = 0.0) -> Reply:
    """A 200 chat completion whose assistant message is `content`."""
    return Reply(content=content, usage=usage, finish_reason=finish_reason, delay=delay)


_ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
                404: "not_found_error", 429: "rate_limit_error"}


def error(status: int, message: str | None = None, *, retry_after_ms: int | None = 10,
          headers: Mapping[str, str] | None = None, delay: float = 0.0) -> Reply:
    """An HTTP error with an OpenAI-style body {"error": {"message", "type", "code"}}.

    `retry_after_ms` sets the header the SDK honours for its backoff (keeps retries fast in tests); pass None
    to make the SDK use its own exponential backoff (about 0.5 s, 1 s, 2 s...).
    """
    all_headers = dict(headers or {})
    if retry_after_ms is not None:
        all_headers.setdefault("retry-after-ms", str(retry_after_ms))
    return Reply(status=status, content=None, message=message or f"scripted HTTP {status}",
                 error_type=_ERROR_TYPES.get(status, "server_error"), headers=all_headers, delay=delay)


def stall(seconds: float, then: Reply | None = None) -> Reply:
    """Wait `seconds` before answering (with `then`, or an empty completion): longer than the client's timeout."""
    base = then if then is not None else answer("")
    return Reply(**{**base.__dict__, "delay": seconds})


def raw(body: bytes | str, *, status: int = 200, content_type: str = "application/json",
        headers: Mapping[str, str] | None = None) -> Reply:
    """Send `body` verbatim: truncated JSON, HTML from a proxy, an empty body..."""
    data = body.encode() if isinstance(body, str) else body
    return Reply(status=status, body=data, content_type=content_type, headers=dict(headers or {}))


def drop() -> Reply:
    """Close the connection without answering (the client sees a connection error)."""
    return Reply(drop=True)


@dataclass(frozen=True)
class Request:
    """One request as the server received it."""

    method: str
    path: str
    headers: dict[str, str]  # lower-cased names
    raw: bytes
    body: Any  # parsed JSON, or None if the body was not JSON
    received_at: float  # time.monotonic()

    @property
    def authorization(self) -> str | None:
        return self.headers.get("authorization")

    @property
    def model(self) -> str | None:
        return self.body.get("model") if isinstance(self.body, dict) else None

    @property
    def messages(self) -> list[dict[str, Any]]:
        return list(self.body.get("messages", [])) if isinstance(self.body, dict) else []

    @property
    def last_user_message(self) -> str:
        users = [m.get("content") for m in self.messages if m.get("role") == "user"]
        return str(users[-1]) if users else ""

    @property
    def text(self) -> str:
        """Everything the client sent except the Authorization header: to search for leaks."""
        headers = "\n".join(f"{k}: {v}" for k, v in self.headers.items() if k != "authorization")
        return f"{self.method} {self.path}\n{headers}\n\n{self.raw.decode('utf-8', 'replace')}"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _HttpServer

    def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
        return

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def _handle(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        data = self.rfile.read(length) if length else b""
        try:
            body = json.loads(data) if data else None
        except ValueError:
            body = None
        request = Request(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, data, body,
                          time.monotonic())
        owner = self.server.owner
        path = self.path.split("?", 1)[0].rstrip("/")
        if self.command == "GET" and path.endswith("/models"):
            owner._record(request)
            self._send(200, json.dumps({"object": "list", "data": [
                {"id": "scripted", "object": "model", "created": 0, "owned_by": "okxlab-tests"}]}).encode())
            return
        if self.command != "POST" or not path.endswith("/chat/completions"):
            owner._record(request)
            self._send_error(Reply(status=404, message=f"llm_server: no route for {self.command} {path}",
                                   error_type="not_found_error"))
            return
        reply = owner._next_reply(request)
        if reply.delay and owner._stopping.wait(reply.delay):
            return  # the server is stopping
        try:
            if reply.drop:
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
            elif reply.body is not None:
                self._send(reply.status, reply.body, reply.content_type, reply.headers)
            elif reply.status != 200:
                self._send_error(reply)
            else:
                self._send(200, json.dumps(_completion(reply, request, next(owner._ids))).encode(), headers=reply.headers)
        except (BrokenPipeError, ConnectionResetError, OSError):
            pass  # the client gave up (timeout) before the answer

    def _send_error(self, reply: Reply) -> None:
        body = {"error": {"message": reply.message, "type": reply.error_type, "param": None, "code": reply.status}}
        self._send(reply.status, json.dumps(body).encode(), headers=reply.headers)

    def _send(self, status: int, body: bytes, content_type: str = "application/json",
              headers: Mapping[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(body)))
        self.send_header("x-request-id", f"req_{time.monotonic_ns()}")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()


def _completion(reply: Reply, request: Request, n: int) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": f"chatcmpl-scripted-{n}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": request.model or "scripted",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": reply.content},
                     "finish_reason": reply.finish_reason, "logprobs": None}],
    }
    if reply.usage is not None:
        prompt_tokens, completion_tokens = reply.usage
        out["usage"] = {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                        "total_tokens": prompt_tokens + completion_tokens}
    return out


class _HttpServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # stalled handlers must not hold up stop()
    owner: LlmServer

    def __init__(self, address: tuple[str, int]) -> None:
        super().__init__(address, _Handler)
        self.open_sockets: set[socket.socket] = set()
        self.sockets_lock = threading.Lock()

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.sockets_lock:
            self.open_sockets.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self.sockets_lock:
            self.open_sockets.discard(request)
        super().shutdown_request(request)

    def close_open_sockets(self) -> None:
        """End keep-alive connections too, so a stopped server answers nothing."""
        with self.sockets_lock:
            sockets = list(self.open_sockets)
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class LlmServer:
    """The server. Start it with `with LlmServer() as server:` or `start()`/`stop()`."""

    def __init__(self, *, responder: Callable[[Request], Reply] | None = None, host: str = "127.0.0.1") -> None:
        self.responder = responder
        self._host = host
        self._script: deque[Reply] = deque()
        self._requests: list[Request] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._ids = itertools.count(1)
        self._httpd: _HttpServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle --
    def start(self) -> LlmServer:
        if self._httpd is not None:
            return self
        self._stopping.clear()
        self._httpd = _HttpServer((self._host, 0))
        self._httpd.owner = self
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="llm-server", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is None:
            return
        self._stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._httpd.close_open_sockets()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd, self._thread = None, None

    def __enter__(self) -> LlmServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- where --
    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("LlmServer is not started")
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{self._host}:{self.port}"

    @property
    def base_url(self) -> str:
        """What to give the SDK as base_url (the OpenAI convention: ends in /v1)."""
        return f"{self.url}/v1"

    # -- script --
    def script(self, *replies: Reply | str) -> LlmServer:
        """Queue replies for the next chat requests; a plain string is `answer(string)`."""
        with self._lock:
            self._script.extend(answer(r) if isinstance(r, str) else r for r in replies)
        return self

    @property
    def pending(self) -> int:
        """Scripted replies not yet used."""
        with self._lock:
            return len(self._script)

    def reset(self) -> None:
        """Forget the script and the recorded requests."""
        with self._lock:
            self._script.clear()
            self._requests.clear()

    # -- what was asked --
    @property
    def requests(self) -> list[Request]:
        with self._lock:
            return list(self._requests)

    @property
    def chat_requests(self) -> list[Request]:
        return [r for r in self.requests if r.method == "POST" and r.path.split("?", 1)[0].rstrip("/").endswith("/chat/completions")]

    def _record(self, request: Request) -> None:
        with self._lock:
            self._requests.append(request)

    def _next_reply(self, request: Request) -> Reply:
        with self._lock:
            self._requests.append(request)
            if self._script:
                return self._script.popleft()
        if self.responder is not None:
            return self.responder(request)
        return Reply(status=400, message="llm_server: no scripted reply left", error_type="invalid_request_error")
