"""How much work a server process takes on at once, so that a rush never freezes it.

A request keeps its database connection from its first statement to its end, including while it
waits for a worker thread between two steps (authentication, then the route). If more requests
were in flight than the pool has connections, the threads could all end up waiting for a
connection while the requests holding the connections wait for a thread: every request would hang
until the pool's timeout. A burst of pharmacies at nine in the morning did exactly that to a
server with the library defaults (40 threads, 15 connections).

So each process works on at most ``max_in_flight`` requests (``REMPART_MAX_IN_FLIGHT``); the
others wait, without a thread or a connection, up to ``WAIT`` seconds, then get a 503 problem
with ``Retry-After``. The pool has a connection for every request in flight, one more for every
thread (work that opens a session of its own while its request holds one) and a few for the
process's own background work (``pool_capacity``), so a thread never waits for a connection.
"""

from __future__ import annotations

import asyncio
import json

import anyio.to_thread
from starlette.types import ASGIApp, Receive, Scope, Send

from rempart.errors import PROBLEM_BASE, PROBLEM_JSON
from rempart.logs import get_logger

log = get_logger("rempart.web.capacity")

# Connections for what a process does outside requests: the access log's sealer, the kill-switch
# refresh and detection's recorder, with room to spare.
BACKGROUND_CONNECTIONS = 4
# How long a request may wait for a place before it is told to come back.
WAIT = 10.0  # seconds
RETRY_AFTER = 1  # second

_BUSY = json.dumps(
    {
        "type": PROBLEM_BASE + "server-busy",
        "title": "Server busy",
        "status": 503,
        "detail": "Too many requests are being answered right now; nothing was done. Try again in a moment.",
    }
).encode()


def pool_capacity(*, max_in_flight: int, threads: int) -> int:
    """Database connections a process needs so that no thread ever waits for one."""
    return max_in_flight + threads + BACKGROUND_CONNECTIONS


class RequestCapacity:
    """ASGI middleware: at most ``max_in_flight`` HTTP requests inside the app at once, and the
    process's worker threads set to ``threads`` when it starts."""

    def __init__(self, app: ASGIApp, *, max_in_flight: int, threads: int, wait: float = WAIT) -> None:
        self.app = app
        self.max_in_flight = max_in_flight
        self.threads = threads
        self.wait = wait
        self._places: asyncio.Semaphore | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            # The default pool of worker threads is the event loop's: set it once the loop runs.
            anyio.to_thread.current_default_thread_limiter().total_tokens = self.threads
            await self.app(scope, receive, send)
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        places = self._places_here()
        try:
            await asyncio.wait_for(places.acquire(), self.wait)
        except TimeoutError:
            log.warning("server_busy", max_in_flight=self.max_in_flight)
            await _busy(send)
            return
        try:
            await self.app(scope, receive, send)
        finally:
            places.release()

    def _places_here(self) -> asyncio.Semaphore:
        # One semaphore per event loop (a server has one; test clients may start several in turn).
        loop = asyncio.get_running_loop()
        if self._places is None or self._loop is not loop:
            self._places, self._loop = asyncio.Semaphore(self.max_in_flight), loop
        return self._places


async def _busy(send: Send) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 503,
            "headers": [
                (b"content-type", PROBLEM_JSON.encode()),
                (b"content-length", str(len(_BUSY)).encode()),
                (b"retry-after", str(RETRY_AFTER).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": _BUSY})
