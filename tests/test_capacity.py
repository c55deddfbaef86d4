"""A rush never freezes a server process (``rempart.web.capacity``): requests beyond its capacity
wait without holding a thread or a connection, then get a 503 problem; the database pool has a
connection for every request in flight and every thread."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Annotated

import anyio.to_thread
import pytest
from fastapi import APIRouter, Depends
from fastapi.testclient import TestClient
from sqlalchemy import text
from starlette.types import Message, Receive, Scope, Send

from rempart.app import create_app
from rempart.config import Settings
from rempart.identity.deps import PUBLIC
from rempart.runtime import Runtime
from rempart.web.capacity import BACKGROUND_CONNECTIONS, RequestCapacity
from rempart.web.deps import SessionDep

RUSH = 60  # requests at once, against a process that takes 4


@pytest.fixture
def small(settings: Settings) -> Iterator[Runtime]:
    """A process sized for 4 requests in flight and 2 worker threads; a connection that cannot be
    had within 3 s fails its request (instead of the pool's 30 s)."""
    runtime = Runtime.build(settings.model_copy(update={"max_in_flight": 4, "server_threads": 2}), pool_timeout=3)
    yield runtime
    runtime.close()


def _two_steps(runtime: Runtime) -> TestClient:
    """The app with a route shaped like every authenticated one: a synchronous dependency queries
    the request's session (its connection is now held), then the synchronous route queries it
    again, each step in a worker thread."""
    app = create_app(runtime)
    app.include_router(_probe)
    return TestClient(app)


_probe = APIRouter()


def _first_step(session: SessionDep) -> int:
    return int(session.execute(text("SELECT 1")).scalar_one())


@_probe.get("/api/v1/probe/two-steps", dependencies=[PUBLIC])
def _second_step(session: SessionDep, first: Annotated[int, Depends(_first_step)]) -> dict[str, int]:
    return {"sum": first + int(session.execute(text("SELECT 1")).scalar_one())}


@_probe.get("/api/v1/probe/threads", dependencies=[PUBLIC])
async def _threads() -> dict[str, float]:
    return {"threads": anyio.to_thread.current_default_thread_limiter().total_tokens}


def test_the_pool_has_a_connection_for_every_request_in_flight_and_every_thread(small: Runtime) -> None:
    assert small.engine.pool.size() == 4 + 2 + BACKGROUND_CONNECTIONS  # type: ignore[attr-defined]
    with _two_steps(small) as client:
        assert client.get("/api/v1/probe/threads").json() == {"threads": 2}


def test_a_rush_of_requests_holding_connections_across_two_steps_is_all_answered(small: Runtime) -> None:
    # Without the limit, the 2 threads would soon both wait for a connection while the requests
    # holding all 10 waited for a thread: every request would fail after the pool's timeout.
    with _two_steps(small) as client, ThreadPoolExecutor(RUSH) as pool:
        responses = list(pool.map(lambda _: client.get("/api/v1/probe/two-steps"), range(RUSH)))
    assert [r.status_code for r in responses] == [200] * RUSH
    assert all(r.json() == {"sum": 2} for r in responses)


def test_a_request_that_cannot_get_a_place_in_time_gets_a_503_problem() -> None:
    release = asyncio.Event()

    async def slow_app(scope: Scope, receive: Receive, send: Send) -> None:
        await release.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"done"})

    capacity = RequestCapacity(slow_app, max_in_flight=1, threads=2, wait=0.2)

    async def call() -> list[Message]:
        sent: list[Message] = []

        async def receive() -> Message:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: Message) -> None:
            sent.append(message)

        await capacity({"type": "http", "method": "GET", "path": "/", "headers": []}, receive, send)
        return sent

    async def rush() -> tuple[list[Message], list[Message]]:
        first = asyncio.create_task(call())
        await asyncio.sleep(0.01)  # the first one takes the only place
        second = await call()  # waits 0.2 s, then is turned away
        release.set()
        return await first, second

    first, second = asyncio.run(rush())
    assert first[0]["status"] == 200
    start, body = second
    assert start["status"] == 503
    headers = dict(start["headers"])
    assert headers[b"content-type"] == b"application/problem+json"
    assert headers[b"retry-after"] == b"1"
    problem = json.loads(body["body"])
    assert problem["type"].endswith("/server-busy")
    assert problem["status"] == 503
    assert "nothing was done" in problem["detail"]
