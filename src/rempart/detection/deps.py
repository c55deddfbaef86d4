"""Detection for the request path: the app's engine, and guards for the professional channels.

The rights-check route (and any professional route that discloses data) does::

    actor = Actor.of_practice(caller, device=...)
    detection.guard(actor, insurer_id=...)          # kill switches, no round trip
    outcome = ...                                   # the lookup
    detection.observe(actor, hit=..., beneficiary_id=..., insurer_id=..., attempt=Attempt(...))
    # only now may the answer leave; observe raises a problem (429/403/503) when it must not

``observe`` is one round trip to the counter store. The claim route calls
``detection.claimed(practice_id=..., beneficiary_id=...)``: a check followed by care no longer
waits for a claim (a quote or a prior approval is not care). The engine is the runtime's
(``Runtime.detection``); tests give an app one of its own in ``app.state.detection`` (a
controllable clock, a fresh Redis namespace) before the first request.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from rempart.detection.actor import Actor
from rempart.detection.engine import DetectionEngine
from rempart.detection.models import KillChannel
from rempart.identity.deps import PracticeCaller, StaffCaller
from rempart.identity.principal import PracticePrincipal, StaffPrincipal
from rempart.runtime import Runtime


async def get_detection(request: Request) -> DetectionEngine:
    """The app's own engine when a test gave it one, else the runtime's (built on first use)."""
    engine: DetectionEngine | None = getattr(request.app.state, "detection", None)
    if engine is None:
        runtime: Runtime = request.app.state.runtime
        engine = runtime.detection
    return engine


DetectionDep = Annotated[DetectionEngine, Depends(get_detection)]


async def _guard(detection: DetectionEngine, actor: Actor, insurer_id: uuid.UUID | None = None) -> None:
    # The switches are cached for up to ``kill_switch_cache``; refreshing them is a round trip to
    # the counter store (and sometimes the database), which must not block the event loop.
    if not detection.guard_from_cache(actor, insurer_id=insurer_id):
        await run_in_threadpool(detection.guard, actor, insurer_id=insurer_id)


async def guarded_practice(caller: PracticeCaller, detection: DetectionDep) -> PracticePrincipal:
    """A ``PracticeCaller`` whose channel, profession and practice are not switched off."""
    await _guard(detection, Actor.of_practice(caller))
    return caller


async def guarded_staff(caller: StaffCaller, detection: DetectionDep) -> StaffPrincipal:
    """An insurer's staff member, unless the back office or their insurer is switched off."""
    await _guard(detection, Actor(channel=KillChannel.BACK_OFFICE), caller.insurer_id)
    return caller


GuardedPracticeCaller = Annotated[PracticePrincipal, Depends(guarded_practice)]
GuardedStaffCaller = Annotated[StaffPrincipal, Depends(guarded_staff)]
