"""A small HTTP/1.1 load generator for the services' overload tests and benchmarks (no dependency, asyncio).

Two ways to load a service:
- `closed_loop`: N connections each sending its next request as soon as the last is answered (capacity).
- `open_loop`: requests sent at a fixed rate whatever the service does, as real clients do; a request's latency
  runs from its scheduled time, so time spent waiting for a free connection counts (no coordinated omission).
  It opens connections as it needs them (up to `max_connections`).

Each request's outcome records its status (0 for a connection error or timeout: a dropped connection, reset, or
no answer), its latency and the `Retry-After` header. Bodies are encoded once, before the clock starts, and the
responses are parsed just enough to find the status and the body's end, so the generator costs little of the
machine it shares with the service (`wrk`, in bench/, measures the closed loop with no Python at all).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass


@dataclass(frozen=True)
class Outcome:
    status: int  # 0: connection error or timeout
    latency: float  # seconds, from the scheduled send time (open loop) or the send (closed loop)
    retry_after: str | None = None


class _Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, host: str, port: int) -> _Connection:
        reader, writer = await asyncio.open_connection(host, port)
        return cls(reader, writer)

    async def exchange(self, request: bytes) -> tuple[int, str | None, bool]:
        """(status, Retry-After, keep-alive) of one request on this connection."""
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        length, retry_after, keep_alive = 0, None, True
        for line in lines[1:]:
            name, _, value = line.partition(":")
            name = name.strip().lower()
            if name == "content-length":
                length = int(value)
            elif name == "retry-after":
                retry_after = value.strip()
            elif name == "connection" and value.strip().lower() == "close":
                keep_alive = False
        if length:
            await self.reader.readexactly(length)
        return status, retry_after, keep_alive

    def close(self) -> None:
        self.writer.close()


def encode_posts(host: str, port: int, path: str, bodies: list[bytes]) -> list[bytes]:
    return [
        f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n".encode() + body
        for body in bodies
    ]


async def _send(pool: list[_Connection], host: str, port: int, request: bytes, timeout: float) -> tuple[int, str | None]:
    connection = pool.pop() if pool else None
    try:
        if connection is not None:
            try:
                status, retry_after, keep_alive = await asyncio.wait_for(connection.exchange(request), timeout)
            except (ConnectionResetError, BrokenPipeError, asyncio.IncompleteReadError) as stale:
                # A kept-alive connection the server closed while it idled (its keep-alive timeout) ends before a
                # byte of the answer: the request was never read, and HTTP clients send it again on a new
                # connection. Anything else, or the same on a new connection, is a dropped connection.
                if isinstance(stale, asyncio.IncompleteReadError) and stale.partial:
                    raise
                connection.close()
                connection = None
        if connection is None:
            connection = await asyncio.wait_for(_Connection.open(host, port), timeout)
            status, retry_after, keep_alive = await asyncio.wait_for(connection.exchange(request), timeout)
    except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, asyncio.TimeoutError, ValueError,
            IndexError):
        if connection is not None:
            connection.close()
        return 0, None
    if keep_alive:
        pool.append(connection)
    else:
        connection.close()
    return status, retry_after


async def _open_loop(host, port, requests, rate, seconds, max_connections, timeout) -> list[Outcome]:
    pool: list[_Connection] = []
    in_flight = asyncio.Semaphore(max_connections)
    outcomes: list[Outcome] = []
    total = int(rate * seconds)
    start = time.perf_counter() + 0.05

    async def one(i: int, scheduled: float) -> None:
        async with in_flight:
            status, retry_after = await _send(pool, host, port, requests[i % len(requests)], timeout)
        outcomes.append(Outcome(status, time.perf_counter() - scheduled, retry_after))

    tasks = []
    for i in range(total):
        scheduled = start + i / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(i, scheduled)))
    await asyncio.gather(*tasks)
    for connection in pool:
        connection.close()
    return outcomes


async def _closed_loop(host, port, requests, connections, seconds, timeout) -> list[Outcome]:
    outcomes: list[Outcome] = []
    stop = time.perf_counter() + seconds

    async def client(k: int) -> None:
        pool: list[_Connection] = []
        i = k
        while time.perf_counter() < stop:
            sent = time.perf_counter()
            status, retry_after = await _send(pool, host, port, requests[i % len(requests)], timeout)
            outcomes.append(Outcome(status, time.perf_counter() - sent, retry_after))
            i += connections
        for connection in pool:
            connection.close()

    await asyncio.gather(*(client(k) for k in range(connections)))
    return outcomes


def open_loop(url: str, path: str, bodies: list[bytes], rate: float, seconds: float, *,
              max_connections: int = 1024, timeout: float = 10.0) -> list[Outcome]:
    """POST `bodies` (in turn) to `url + path` at `rate` requests/s for `seconds`."""
    host, port = _host_port(url)
    requests = encode_posts(host, port, path, bodies)
    return _run(_open_loop(host, port, requests, rate, seconds, max_connections, timeout))


def closed_loop(url: str, path: str, bodies: list[bytes], connections: int, seconds: float, *,
                timeout: float = 10.0) -> list[Outcome]:
    host, port = _host_port(url)
    requests = encode_posts(host, port, path, bodies)
    return _run(_closed_loop(host, port, requests, connections, seconds, timeout))


def _run(coroutine):
    try:  # uvloop (BentoML's own event loop) costs the machine about half what asyncio's does per request
        import uvloop
    except ImportError:
        return asyncio.run(coroutine)
    return uvloop.run(coroutine)


def _host_port(url: str) -> tuple[str, int]:
    rest = url.split("://", 1)[-1].rstrip("/")
    host, _, port = rest.rpartition(":")
    return host, int(port)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


@dataclass(frozen=True)
class LoadSummary:
    sent: int
    statuses: dict[int, int]
    connection_errors: int
    ok_p50_ms: float
    ok_p99_ms: float
    rejected_p99_ms: float  # 503/429 answers
    rejected_without_retry_after: int
    seconds: float

    @property
    def ok(self) -> int:
        return self.statuses.get(200, 0)

    def line(self) -> str:
        shown = ", ".join(f"{status or 'connection error'}: {n}" for status, n in sorted(self.statuses.items()))
        return (f"{self.sent} requests ({shown}); 200 p50 {self.ok_p50_ms:.1f} ms, p99 {self.ok_p99_ms:.1f} ms; "
                f"rejected p99 {self.rejected_p99_ms:.1f} ms")


def summarize(outcomes: list[Outcome], seconds: float) -> LoadSummary:
    ok = [o.latency for o in outcomes if o.status == 200]
    rejected = [o for o in outcomes if o.status in (429, 503)]
    return LoadSummary(
        sent=len(outcomes),
        statuses=dict(Counter(o.status for o in outcomes)),
        connection_errors=sum(o.status == 0 for o in outcomes),
        ok_p50_ms=percentile(ok, 0.50) * 1000,
        ok_p99_ms=percentile(ok, 0.99) * 1000,
        rejected_p99_ms=percentile([o.latency for o in rejected], 0.99) * 1000,
        rejected_without_retry_after=sum(o.retry_after is None for o in rejected),
        seconds=seconds,
    )


def main() -> None:
    """`python -m bentos.load URL PATH BODIES_FILE RATE SECONDS`: an open-loop run in a lean process of its own (a
    load generator sharing a process with a loaded model stack pauses for that stack's garbage collection and
    reports its own pauses as the service's latency). Prints the LoadSummary as JSON."""
    import gc
    import json
    import sys
    from dataclasses import asdict
    from pathlib import Path

    url, path, bodies_file, rate, seconds = sys.argv[1:6]
    bodies = [line for line in Path(bodies_file).read_bytes().splitlines() if line.strip()]
    gc.disable()  # a few seconds of small objects: nothing to collect that matters, and no pause to report
    started = time.perf_counter()
    outcomes = open_loop(url, path, bodies, float(rate), float(seconds))
    print(json.dumps(asdict(summarize(outcomes, time.perf_counter() - started))))


if __name__ == "__main__":
    main()
