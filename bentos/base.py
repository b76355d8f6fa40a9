"""The serving base every service uses: request building blocks, strict handling of what reaches an endpoint, and
the settings and overload behaviour of an online service.

- `service_config(...)`: the `@bentoml.service(...)` settings every online service shares (workers, timeout, no
  per-request access log); `@online_service(max_queue_ms=...)` above it adds `RecycleConnections`, `ShedLoad`
  and `StrictJSONRequests`.
- `ShedLoad`: a request that would wait more than `max_queue_ms` for the worker (or find `max_in_flight` requests
  admitted before it) is answered at once with 503, a
  `Retry-After` header and `{"error": ...}`, before its body is read: overload is a status code, never a dropped
  connection or an unbounded queue (README, "Serving capacity"). Online endpoints are `async def` (see ShedLoad).
- `RecycleConnections`: a keep-alive connection is closed after a number of requests, so connections spread over
  the workers by load.

- `Id`: an id string with a safe alphabet (1-64 characters of letters, digits and `_.:-`).
- `Strict`: a pydantic model that refuses unknown fields; every input_spec model derives from it.
- `strict_requests`: a class decorator, put above `@bentoml.service(...)`, that checks every POST to one of the
  service's API routes before BentoML parses it (an ASGI middleware, attached with BentoML's own
  `Service.add_asgi_middleware`). A bad request is a 4xx naming the problem, whatever its body or content type:

  - 415 when the Content-Type is not `application/json` (parameters aside; a charset, when given, must be UTF-8).
    Without this, BentoML picks its parser from the Content-Type: a JSON body labelled `multipart/form-data` is
    parsed as a form and the parse error is a 500.
    A request with no Content-Type at all is accepted and read as JSON: that is what BentoML does with it too,
    clients sending raw bytes (`requests.post(url, data=...)`, `httpx.post(url, content=...)`) send none, and the
    body still has to pass the checks below, so nothing unchecked gets through.
  - 413 when the body is larger than `max_body_bytes` (1 MiB by default), by its Content-Length or as it streams in.
  - 400 when the body is empty, not UTF-8, not JSON (RFC 8259: NaN and Infinity are refused; nesting deeper than
    200 levels, pydantic's own limit, is refused too), or not a JSON object.

  Errors are JSON: `{"error": "<what is wrong and what to send>"}`, plus `"field"` where one field is at fault,
  `"expected"` (415) and `"limit_bytes"` (413). A body that passes goes on to BentoML unchanged, where the
  endpoint's `input_spec` model validates it: a pydantic validation error there is BentoML's own 400,
  `{"error": "N validation error(s) for <Model>", "detail": [{"loc": [<field path>], "msg": ..., "type": ...}]}`,
  which names the field in `loc`. Other routes (/readyz, /livez, /metrics, /docs.json, /docs, ...) and other
  methods pass through untouched.
"""

from __future__ import annotations

import json
import sys
import time
import typing as t
from collections.abc import Iterable
from typing import Annotated

import pydantic_core
from datetime import datetime, timezone

from pydantic import AfterValidator, BaseModel, ConfigDict, StringConstraints

Id = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:\-]+$")]


def _in_utc(ts: datetime) -> datetime:
    if ts.tzinfo is None:
        raise ValueError("give a timezone (UTC), e.g. 2026-04-05T10:00:00Z")
    if not 1970 < ts.year < 9999:  # and no overflow when it moves to UTC
        raise ValueError("must be between the years 1971 and 9998")
    return ts.astimezone(timezone.utc)


# A request's time: timezone-aware, moved to UTC; a naive or out-of-range time is a 400 naming the field.
UtcTimestamp = Annotated[datetime, AfterValidator(_in_utc)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def case_setting(case: str, name: str, kind: type, default, low, high):
    """The case's setting MLSD_<CASE>_<NAME> (README, the case's settings) as the served bento takes it: a number
    between `low` and `high`, `default` when unset."""
    import os

    variable = f"MLSD_{case}_{name}"
    raw = os.environ.get(variable)
    try:
        value = kind(raw) if raw else default
    except ValueError:
        raise ValueError(f"{variable}={raw!r} is not valid: give a number") from None
    if not low <= value <= high:
        raise ValueError(f"{variable}={raw!r} is not valid: must be between {low} and {high}")
    return value


MAX_BODY_BYTES = 1024 * 1024
JSON = "application/json"

Scope = dict[str, t.Any]
Message = dict[str, t.Any]
Receive = t.Callable[[], t.Awaitable[Message]]
Send = t.Callable[[Message], t.Awaitable[None]]


class RequestProblem(Exception):
    def __init__(self, status: int, error: str, **extra: t.Any) -> None:
        super().__init__(error)
        self.status = status
        self.body = {"error": error, **extra}


def check_content_type(value: str | None) -> None:
    """Raises RequestProblem(415) unless `value` is absent or application/json (charset, if any, UTF-8)."""
    if value is None:
        return
    media_type, *params = (part.strip() for part in value.split(";"))
    if media_type.lower() != JSON:
        shown = media_type or "(empty)"
        raise RequestProblem(415, f"unsupported Content-Type {shown!r}: send the body as {JSON}", expected=JSON)
    for param in params:
        name, _, charset = param.partition("=")
        if name.strip().lower() == "charset" and charset.strip().strip('"').lower() not in ("utf-8", "utf8"):
            raise RequestProblem(
                415, f"unsupported charset {charset.strip()!r}: send the body as {JSON} in UTF-8", expected=JSON
            )


def check_content_length(value: str | None, limit: int) -> None:
    if value is None:
        return
    if not value.strip().isdigit():
        raise RequestProblem(400, f"invalid Content-Length {value!r}", field="Content-Length")
    if int(value) > limit:
        raise RequestProblem(413, f"request body of {int(value)} bytes is larger than the {limit} bytes allowed",
                             limit_bytes=limit)


def check_json_object(body: bytes) -> None:
    """Raises RequestProblem(400) unless `body` is one JSON object in UTF-8.

    Parsed with pydantic-core's parser, the one the endpoint's `input_spec` model then reads the body with (so both
    agree on what JSON is), and about 2.5 times as fast as the json module: 7 ms a MiB.
    """
    if not body.strip():
        raise RequestProblem(400, "empty request body: send a JSON object")
    try:
        value = pydantic_core.from_json(body, allow_inf_nan=False)
    except ValueError as exc:
        raise RequestProblem(400, f"request body is not valid JSON: {_json_problem(body, exc)}") from None
    if not isinstance(value, dict):
        kind = {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(type(value), "a number")
        raise RequestProblem(400, f"request body must be a JSON object of the endpoint's fields, got {kind}")


def _json_problem(body: bytes, exc: ValueError) -> str:
    """The parser's message, or a plainer one for two common causes (only on the error path)."""
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as bad:
        return f"it is not UTF-8 (byte {bad.start}); send UTF-8"
    try:
        pydantic_core.from_json(body, allow_inf_nan=True)
    except ValueError:
        return str(exc)
    return "NaN and Infinity are not JSON numbers; send null"


class StrictJSONRequests:
    """ASGI middleware: checks content type, size and JSON shape of POST bodies to `routes` (see the module doc)."""

    def __init__(self, app: t.Any, routes: Iterable[str], max_body_bytes: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.routes = frozenset(routes)
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] not in self.routes:
            await self.app(scope, receive, send)
            return
        headers: dict[str, str] = {}
        for name, value in scope["headers"]:  # the first of repeated headers, as Starlette's Headers.get does
            headers.setdefault(name.decode("latin-1").lower(), value.decode("latin-1"))
        try:
            check_content_type(headers.get("content-type"))
            check_content_length(headers.get("content-length"), self.max_body_bytes)
            body = await self._read_body(receive)
            check_json_object(body)
        except RequestProblem as problem:
            await self._answer(send, problem)
            return
        await self.app(scope, _replay(body, receive), send)

    async def _read_body(self, receive: Receive) -> bytes:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise RequestProblem(400, "client disconnected before sending the whole body")
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                raise RequestProblem(413, f"request body is larger than the {self.max_body_bytes} bytes allowed",
                                     limit_bytes=self.max_body_bytes)
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    @staticmethod
    async def _answer(send: Send, problem: RequestProblem) -> None:
        content = json.dumps(problem.body).encode()
        await send({
            "type": "http.response.start",
            "status": problem.status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(content)).encode())],
        })
        await send({"type": "http.response.body", "body": content})


def _replay(body: bytes, receive: Receive) -> Receive:
    """A receive() that gives the body already read, then whatever the client sends next (a disconnect)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


def api_routes(service: t.Any) -> list[str]:
    """The POST routes that carry an endpoint's input: each API's route (and its /submit for a task)."""
    def join(*parts: str | None) -> str:  # as BentoML joins its service's path_prefix (None when unset) and routes
        return "/" + "/".join(part.strip("/") for part in parts if part and part.strip("/"))

    routes = []
    for method in service.apis.values():
        route = join(service.path_prefix, method.route)
        routes.append(route)
        if method.is_task:
            routes.append(join(route, "submit"))
    return routes


def strict_requests(service: t.Any = None, /, *, max_body_bytes: int = MAX_BODY_BYTES) -> t.Any:
    """Class decorator for a `@bentoml.service` (put it above): attaches StrictJSONRequests to its API routes.

    `@strict_requests` or `@strict_requests(max_body_bytes=...)`; returns the same Service.
    """

    def apply(service: t.Any) -> t.Any:
        import bentoml

        if not isinstance(service, bentoml.Service):
            raise TypeError("@strict_requests goes above @bentoml.service(...): it needs the Service, got "
                            f"{service!r}")
        service.add_asgi_middleware(StrictJSONRequests, routes=api_routes(service), max_body_bytes=max_body_bytes)
        return service

    return apply if service is None else apply(service)


# ---- Online service settings and overload ----------------------------------------------------------------------

RETRY_AFTER_SECONDS = 1
SWITCH_INTERVAL_SECONDS = 0.001


def service_config(*, workers: int = 2, timeout: float = 1.0, **extra: t.Any) -> dict[str, t.Any]:
    """Keyword arguments for `@bentoml.service` shared by the online services.

    - workers: one process per core of the 2-core target machine (one Python process cannot use both).
    - timeout: seconds before BentoML answers 504. An online answer later than a second is of no use to its caller,
      and the setting has a cost: BentoML's timeout timer is never cancelled, so each request's future, context and
      trace span live until it fires. At 1,000 requests/s and BentoML's default of 60 s, that kept hundreds of
      thousands of objects alive and garbage collection paused a worker for 70 to 140 ms (README, "Serving capacity").
    - BentoML's own `max_concurrency` stays unset: it answers 429 with no Retry-After; `ShedLoad` does that job.
    - No access log line per request: the bare endpoint answered about 1,490 requests/s with it and 2,130 without;
      the Prometheus metrics at /metrics count requests, statuses and latencies.
    """
    return {"workers": workers, "traffic": {"timeout": timeout}, "logging": {"access": {"enabled": False}}, **extra}


class ShedLoad:
    """ASGI middleware: a request to `routes` that would wait longer than `max_queue_ms`, or find `max_in_flight`
    requests already admitted in this worker, is answered 503 at once.

    The online endpoints are `async def`: each request is computed on the worker's event loop, one after another
    (one worker per core; measured, about 40% more throughput than BentoML's thread hand-over on the bare endpoint,
    and an eighth of its p99 on ad click at 800 requests/s). Requests then queue in the loop, not in a count this
    middleware could see, so the wait is measured directly: a timer due every 2 ms runs late by as long as the loop
    is busy, and how overdue it is when a request comes in is what that request has waited for its turn. Requests
    read in one go are admitted before any of them computes (each waits at its first await), so the admitted ones
    are counted too: `max_in_flight` of them take about `max_queue_ms` to compute. Past either, answering 503 at
    once lets the loop catch up, and accepted requests keep a bounded latency under any load. It wraps the whole
    app (`_wrap_outermost`): turning a request away before BentoML's middlewares costs a fraction of doing it
    inside them.
    """

    TICK_SECONDS = 0.002
    IDLE_SECONDS = 1.0  # the timer stops after a second with no request (an idle worker wakes for nothing)

    def __init__(self, app: t.Any, routes: Iterable[str], max_queue_ms: float, max_in_flight: int) -> None:
        self.app = app
        self.routes = frozenset(routes)
        self.max_queue = max_queue_ms / 1000
        self.max_in_flight = max_in_flight
        self.in_flight = 0
        self._due = 0.0  # when the pending tick is due (time.monotonic)
        self._last_request = 0.0
        self._watching = False
        body = json.dumps({"error": f"the service is at capacity (requests would wait over {max_queue_ms:g} ms): "
                                    f"retry after {RETRY_AFTER_SECONDS} s"}).encode()
        self._busy_start = {
            "type": "http.response.start",
            "status": 503,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                        (b"retry-after", str(RETRY_AFTER_SECONDS).encode())],
        }
        self._busy_body = {"type": "http.response.body", "body": body}

    def queue_seconds(self, now: float) -> float:
        """How long the loop has been too busy to run the pending tick: what a request arriving now has waited.

        Only the pending tick counts: a past tick's lateness tells of a stall that is over (one large request, say),
        and a client sending its next request right after it must not be turned away for it.
        """
        return max(0.0, now - self._due) if self._watching else 0.0

    async def _watch(self) -> None:
        import asyncio

        # A task, not a timer callback: its wake-up runs after the request tasks that were read in the same loop
        # iteration, so those (which arrived while the loop was busy) are judged against the overdue time.
        try:
            while time.monotonic() - self._last_request < self.IDLE_SECONDS:
                self._due = time.monotonic() + self.TICK_SECONDS
                await asyncio.sleep(self.TICK_SECONDS)
        finally:
            self._watching = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.app(scope, receive, _freeze_after_startup(send))
            return
        if scope["type"] != "http" or scope["path"] not in self.routes:
            await self.app(scope, receive, send)
            return
        import asyncio

        # The live clock, not the loop's: uvloop's loop.time() stands still through an iteration, and one long
        # iteration (many requests read at once) is exactly the wait to see.
        now = self._last_request = time.monotonic()
        if not self._watching:
            self._watching, self._due = True, now + self.TICK_SECONDS
            self._watcher = asyncio.get_running_loop().create_task(self._watch())  # held: tasks are weakly referenced
        # The wait counts only with requests in flight: a client that sends its next request once answered finds
        # none, and a stall just over (one large request) must not turn it away; under load, requests overlap
        # (BentoML's stack awaits each in a task of its own).
        if self.in_flight >= self.max_in_flight or (self.in_flight and self.queue_seconds(now) > self.max_queue):
            await send(self._busy_start)
            await send(self._busy_body)
            return
        self.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1


class RecycleConnections:
    """ASGI middleware: closes a keep-alive connection after `requests_per_connection` requests to `routes`.

    The workers share one listening socket, and a worker accepts whatever connections arrive while it waits: a
    client opening its connections at once can land most of them on one worker, which then does most of the work
    while the other idles (13 and 51 of 64 connections, measured). A closed connection is opened again by the
    client, and the worker with time to spare is the likelier to accept it, so recycling connections spreads them
    by load. It is what proxies do too (nginx closes a keep-alive connection after 1,000 requests by default).
    """

    def __init__(self, app: t.Any, routes: Iterable[str], requests_per_connection: int) -> None:
        self.app = app
        self.routes = frozenset(routes)
        self.requests_per_connection = requests_per_connection
        self.served: dict[tuple, int] = {}  # (client host, port) of an open connection -> requests answered

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        client = scope.get("client")
        if scope["type"] != "http" or scope["path"] not in self.routes or client is None:
            await self.app(scope, receive, send)
            return
        connection = tuple(client)
        served = self.served.get(connection, 0) + 1
        if served < self.requests_per_connection:
            if len(self.served) > 100_000:  # connections closed by their clients leave their count behind
                self.served.clear()
            self.served[connection] = served
            await self.app(scope, receive, send)
            return
        self.served.pop(connection, None)

        async def closing_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), (b"connection", b"close")]}
            await send(message)

        await self.app(scope, receive, closing_send)


def _freeze_after_startup(send: Send) -> Send:
    """`send` that settles the worker once it has started (models loaded, libraries imported):

    - `gc.freeze()` moves every object then alive out of the garbage collector's reach: a full collection then
      scans only what requests create, not the hundred thousand objects of the loaded stack (a gen-2 pause of 5 to
      9 ms rather than 70 to 90, measured on the bare endpoint).
    - A 1 ms GIL switch interval (Python's default is 5): a request is read and answered on the event loop thread
      and computed on a worker thread, and each hand-over can wait a whole interval for the other thread to let go.
      Measured at 400 requests/s on ad click: p99 6 ms against 22 ms at the default.
    """

    async def frozen_send(message: Message) -> None:
        if message["type"] == "lifespan.startup.complete":
            import gc

            gc.collect()
            gc.freeze()
            sys.setswitchinterval(SWITCH_INTERVAL_SECONDS)
        await send(message)

    return frozen_send


def _wrap_outermost(service: t.Any, middleware: type, **options: t.Any) -> None:
    """Puts `middleware` around the whole ASGI app the worker serves, outside BentoML's own middlewares.

    `Service.add_asgi_middleware` adds inside them, and they cost a request about 0.25 ms of CPU before it reaches
    the first added (a tracing span, metrics, timeout timer, routing): to turn a request away at twice capacity,
    that is most of what the worker has. The worker builds its app with `service.to_asgi()`; the service becomes
    an instance of a subclass whose `to_asgi` wraps that app (BentoML's Service is a slotted attrs class, so the
    method is overridden on a class, not on the instance). `middlewares_outside` lists what was put there.
    """
    base = type(service)
    wrapped = list(getattr(service, "middlewares_outside", ()))

    class OnlineService(base):  # type: ignore[misc, valid-type]
        __slots__ = ()
        middlewares_outside = (*wrapped, (middleware, options))

        def to_asgi(self, *args: t.Any, **kwargs: t.Any) -> t.Any:
            app = base.to_asgi(self, *args, **kwargs)
            for cls, kw in reversed(self.middlewares_outside):
                app = cls(app, **kw)
            return app

    service.__class__ = OnlineService


def online_service(service: t.Any = None, /, *, max_queue_ms: float, max_in_flight: int,
                   max_body_bytes: int = MAX_BODY_BYTES,
                   requests_per_connection: int = 100) -> t.Any:
    """Class decorator for an online `@bentoml.service` (put it above): recycled connections, load shedding, then
    strict requests, on the service's API routes."""

    def apply(service: t.Any) -> t.Any:
        import bentoml

        if not isinstance(service, bentoml.Service):
            raise TypeError(f"@online_service goes above @bentoml.service(...): it needs the Service, got {service!r}")
        routes = api_routes(service)
        _wrap_outermost(service, ShedLoad, routes=routes, max_queue_ms=max_queue_ms, max_in_flight=max_in_flight)
        # Inside BentoML's own middlewares (metrics, tracing), first added outermost.
        service.add_asgi_middleware(RecycleConnections, routes=routes, requests_per_connection=requests_per_connection)
        service.add_asgi_middleware(StrictJSONRequests, routes=routes, max_body_bytes=max_body_bytes)
        return service

    return apply if service is None else apply(service)
