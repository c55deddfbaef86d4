"""Request plumbing every router uses: the app's runtime and the request's session.

Dependencies that do no I/O are ``async``: FastAPI runs them on the event loop, where a ``def`` one
would cost a hop to the thread pool and back (a tenth of a millisecond each, under load).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from rempart.runtime import Runtime


async def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


async def get_session(runtime: RuntimeDep) -> AsyncIterator[Session]:
    """The request's session. Opening one does no I/O (it connects on its first statement); closing
    one that still holds a connection rolls back and returns it to the pool, in a worker thread."""
    session = runtime.sessions()
    try:
        yield session
    finally:
        if session.in_transaction():
            await run_in_threadpool(session.close)
        else:
            session.close()


SessionDep = Annotated[Session, Depends(get_session)]
