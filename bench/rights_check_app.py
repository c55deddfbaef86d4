"""The app ``bench.rights_check`` serves: Rempart's own app, plus one bare indexed lookup route.

``uvicorn bench.rights_check_app:app`` builds, in each server process, exactly what
``rempart.asgi`` builds (settings from the environment, the same runtime, middleware and routes) and
adds ``POST /bench/bare-lookup``: parse a small JSON body, one indexed ``SELECT`` through the same
session machinery, a small JSON answer — no authentication, no DPoP, no blind index, no access log,
no detection. It is the ceiling this framework, this database and this machine allow a request, so
the rights check's throughput is reported as a share of it.

Two more routes say where that ceiling comes from: ``GET /bench/noop`` answers on the event loop
(HTTP, middleware, routing and a JSON answer: the framework alone), ``GET /bench/noop-thread`` does
the same in a worker thread (plus the hop every route that reads the database makes). The routes
exist only in this module.
"""

from __future__ import annotations

import os
import uuid

from fastapi import FastAPI
from pydantic import BaseModel
from sqlalchemy import select

from bench.common import CLOCK_OFFSET_VARIABLE, ShiftedClock
from rempart.app import create_app
from rempart.config import get_settings
from rempart.detection.engine import DetectionEngine
from rempart.identity.deps import PUBLIC
from rempart.insurers.models import Insurer
from rempart.members.models import Contract
from rempart.runtime import Runtime
from rempart.tenancy import DEFAULT_APP_ROLE, bind_tenant, use_app_role
from rempart.web.deps import SessionDep


class BareLookupIn(BaseModel):
    amc_number: str
    member_number: str


class BareLookupOut(BaseModel):
    found: bool
    contract_id: uuid.UUID | None


def build() -> FastAPI:
    settings = get_settings()
    # Threads, requests in flight and the database pool: the production settings
    # (REMPART_SERVER_THREADS, REMPART_MAX_IN_FLIGHT), which the benchmark sets.
    runtime = Runtime.build(settings)
    # On PostgreSQL the app runs as the application role, which row-level security binds.
    use_app_role(runtime.engine, settings.database_app_role or DEFAULT_APP_ROLE)
    application = create_app(runtime)
    offset = os.environ.get(CLOCK_OFFSET_VARIABLE)
    if offset:
        application.state.detection = DetectionEngine.build(runtime, clock=ShiftedClock(float(offset)))
    insurers: dict[str, uuid.UUID] = {}

    # One hop to a worker thread, the route itself: the insurer's id is cached in the route rather
    # than by a synchronous dependency, which would cost a hop of its own (bench.rights_check
    # measures one at about 0.15 ms of CPU here).
    @application.post("/bench/bare-lookup", dependencies=[PUBLIC], include_in_schema=False)
    def bare_lookup(body: BareLookupIn, session: SessionDep) -> BareLookupOut:
        insurer = insurers.get(body.amc_number)
        if insurer is None:
            found = session.scalar(select(Insurer.id).where(Insurer.amc_number == body.amc_number))
            insurer = insurers[body.amc_number] = found or uuid.UUID(int=0)
        bind_tenant(session, insurer)
        contract = session.scalar(
            select(Contract.id).where(Contract.insurer_id == insurer, Contract.member_number == body.member_number)
        )
        # Ended as the rights check ends its transaction: a COMMIT. Left open, it would be rolled
        # back when the session closes (one more thread hop), and a ROLLBACK makes psycopg drop
        # every statement it has prepared on that connection (DEALLOCATE ALL, one more round trip,
        # and each statement parsed and planned again): a ceiling that low would flatter the check.
        session.commit()
        return BareLookupOut(found=contract is not None, contract_id=contract)

    @application.get("/bench/noop", dependencies=[PUBLIC], include_in_schema=False)
    async def noop() -> dict[str, bool]:
        return {"ok": True}

    @application.get("/bench/noop-thread", dependencies=[PUBLIC], include_in_schema=False)
    def noop_thread() -> dict[str, bool]:
        return {"ok": True}

    # FastAPI tries routes in order, a few microseconds each: the bench routes go where the rights
    # check's router is, first after the health check, so that all are routed at the same cost.
    routes = application.router.routes
    first = routes.index(next(r for r in routes if getattr(r, "path", None) == "/healthz")) + 1
    for _ in range(3):
        routes.insert(first, routes.pop())
    return application


app = build()
