"""Detection for the request path: the app's engine, and guards for the professional channels.

The rights-check route (and any professional route that discloses data) does::

    actor = Actor.of_practice(caller, device=...)
    detection.guard(actor, insurer_id=...)          # kill switches, no round trip
    outcome = ...                                   # the lookup
    detection.observe(actor, hit=..., beneficiary_id=..., insurer_id=..., attempt=Attempt(...))
    # only now may the answer leave; observe raises a problem (429/403/503) when it must not

``observe`` is one round trip to the counter store. Quote, approval and claim routes call
``detection.follow_up(practice_id=..., beneficiary_id=...)`` so that checks followed by care are
not counted as "never followed". Tests replace ``app.state.detection`` (a controllable clock, a
fresh Redis namespace) before the first request.
"""

from __future__ import annotations

import threading
from typing import Annotated

from fastapi import Depends, Request

from rempart.detection.actor import Actor
from rempart.detection.engine import DetectionEngine
from rempart.detection.models import KillChannel
from rempart.identity.deps import PracticeCaller, StaffCaller
from rempart.identity.principal import PracticePrincipal, StaffPrincipal

_build_lock = threading.Lock()


def get_detection(request: Request) -> DetectionEngine:
    engine: DetectionEngine | None = getattr(request.app.state, "detection", None)
    if engine is None:
        with _build_lock:
            engine = getattr(request.app.state, "detection", None)
            if engine is None:
                engine = DetectionEngine.build(request.app.state.runtime)
                request.app.state.detection = engine
    return engine


DetectionDep = Annotated[DetectionEngine, Depends(get_detection)]


def guarded_practice(caller: PracticeCaller, detection: DetectionDep) -> PracticePrincipal:
    """A ``PracticeCaller`` whose channel, profession and practice are not switched off."""
    detection.guard(Actor.of_practice(caller))
    return caller


def guarded_staff(caller: StaffCaller, detection: DetectionDep) -> StaffPrincipal:
    """An insurer's staff member, unless the back office or their insurer is switched off."""
    detection.guard(Actor(channel=KillChannel.BACK_OFFICE), insurer_id=caller.insurer_id)
    return caller


GuardedPracticeCaller = Annotated[PracticePrincipal, Depends(guarded_practice)]
GuardedStaffCaller = Annotated[StaffPrincipal, Depends(guarded_staff)]
