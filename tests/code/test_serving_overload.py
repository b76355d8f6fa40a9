"""The serving kit's overload middlewares, driven as ASGI apps (no server): shedding by the loop's wait, recycled
connections, and the worker settling once started."""

from __future__ import annotations

import asyncio
import gc
import time

from bentos.base import RETRY_AFTER_SECONDS, RecycleConnections, ShedLoad

ROUTE = "/rank"


async def _answer(scope, receive, send):
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": b"{}"})


def _busy_app(seconds: float):
    """An endpoint computing on the event loop for `seconds` after the stack's first await (as the online services
    do: BentoML's stack runs each request in a task of its own and awaits it)."""

    async def app(scope, receive, send):
        await asyncio.sleep(0)
        time.sleep(seconds)
        await _answer(scope, receive, send)

    return app


async def _call(app, path=ROUTE, client=("127.0.0.1", 50_000)) -> tuple[int, dict]:
    sent = []

    async def receive():
        return {"type": "http.request", "body": b"{}", "more_body": False}

    async def send(message):
        sent.append(message)

    await app({"type": "http", "method": "POST", "path": path, "headers": [], "client": client}, receive, send)
    start = sent[0]
    return start["status"], {k.decode(): v.decode() for k, v in start.get("headers", [])}


def test_requests_pass_while_the_loop_keeps_up():
    shed = ShedLoad(_busy_app(0.001), routes=[ROUTE], max_queue_ms=20, max_in_flight=100)

    async def steady():
        statuses = []
        for _ in range(50):
            statuses.append((await _call(shed))[0])
            await asyncio.sleep(0.003)  # the loop has time between requests
        return statuses

    assert set(asyncio.run(steady())) == {200}


def test_a_burst_the_loop_cannot_keep_up_with_is_answered_503_with_retry_after():
    shed = ShedLoad(_busy_app(0.01), routes=[ROUTE], max_queue_ms=20, max_in_flight=100)

    async def burst():
        await _call(shed)  # starts the watch
        first = [asyncio.create_task(_call(shed)) for _ in range(3)]
        await asyncio.sleep(0)  # they are in, and compute for 30 ms: the timer falls behind
        later = [asyncio.create_task(_call(shed)) for _ in range(20)]  # read while the loop was busy
        return await asyncio.gather(*first, *later)

    answers = asyncio.run(burst())
    statuses = [status for status, _ in answers]
    assert statuses[:3] == [200] * 3 and statuses.count(503) >= 15, statuses
    for status, headers in answers:
        if status == 503:
            assert headers["retry-after"] == str(RETRY_AFTER_SECONDS) and headers["content-type"] == "application/json"


def test_a_stall_that_is_over_turns_no_one_away():
    """One long request (a large batch, say) delays the timer; the client's next request, sent after, passes."""
    shed = ShedLoad(_busy_app(0.05), routes=[ROUTE], max_queue_ms=20, max_in_flight=100)

    async def one_client():
        statuses = []
        for _ in range(5):
            statuses.append((await _call(shed))[0])
            await asyncio.sleep(0.001)  # the loop runs the overdue timer, then the client sends again
        return statuses

    assert asyncio.run(one_client()) == [200] * 5


def test_requests_admitted_at_once_are_counted():
    """Requests read in one go pass the wait check before any computes: past max_in_flight the rest are shed."""

    async def waits_then_computes(scope, receive, send):
        await asyncio.sleep(0.01)  # the first await of the stack (reading the body) lets the others in
        await _answer(scope, receive, send)

    shed = ShedLoad(waits_then_computes, routes=[ROUTE], max_queue_ms=1_000, max_in_flight=4)

    async def burst():
        return await asyncio.gather(*(_call(shed) for _ in range(10)))

    assert sorted(status for status, _ in asyncio.run(burst())) == [200] * 4 + [503] * 6


def test_other_routes_are_never_shed():
    shed = ShedLoad(_busy_app(0.01), routes=[ROUTE], max_queue_ms=1, max_in_flight=100)

    async def burst():
        await _call(shed)
        return await asyncio.gather(*(_call(shed, path="/readyz") for _ in range(20)))

    assert {status for status, _ in asyncio.run(burst())} == {200}


def test_the_watch_stops_when_requests_stop():
    shed = ShedLoad(_answer, routes=[ROUTE], max_queue_ms=20, max_in_flight=100)
    shed.IDLE_SECONDS = 0.05

    async def one_then_idle():
        await _call(shed)
        watching = shed._watching
        await asyncio.sleep(0.2)
        return watching, shed._watching

    assert asyncio.run(one_then_idle()) == (True, False)


def test_the_worker_freezes_what_it_loaded_once_started():
    async def lifespan_app(scope, receive, send):
        await send({"type": "lifespan.startup.complete"})

    shed = ShedLoad(lifespan_app, routes=[ROUTE], max_queue_ms=20, max_in_flight=100)
    gc.unfreeze()
    try:
        asyncio.run(shed({"type": "lifespan"}, None, _ignore))
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()


async def _ignore(message):
    return None


def test_a_connection_is_closed_after_its_share_of_requests():
    recycle = RecycleConnections(_answer, routes=[ROUTE], requests_per_connection=3)

    async def on(client, n):
        return [await _call(recycle, client=client) for _ in range(n)]

    first = asyncio.run(on(("10.0.0.1", 1), 4))
    assert [h.get("connection") for _, h in first] == [None, None, "close", None]
    other = asyncio.run(on(("10.0.0.2", 2), 2))  # connections are counted apart
    assert [h.get("connection") for _, h in other] == [None, None]
    assert asyncio.run(_call(recycle, path="/metrics", client=("10.0.0.2", 2)))[1].get("connection") is None
