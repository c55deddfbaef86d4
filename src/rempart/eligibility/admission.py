"""Detection as the rights check sees it, for every channel that checks rights (the API and the
portal): the caller's actor, and the ``Admission`` the service calls between the lookup and the
answer. One module, so that a check from a browser is watched exactly like one from practice
software."""

from __future__ import annotations

from rempart.detection.actor import Actor, Attempt
from rempart.detection.engine import DetectionEngine
from rempart.eligibility.service import RightsMiss, RightsOutcome, RightsQuery
from rempart.identity.principal import PracticePrincipal


def detection_actor(caller: PracticePrincipal) -> Actor:
    # Practice software is one device per client (its key); the portal's device is its session.
    return Actor.of_practice(caller, device=str(caller.client_id) if caller.client_id else caller.credential_ref)


def observe(detection: DetectionEngine, actor: Actor, query: RightsQuery, outcome: RightsOutcome) -> None:
    hit = not isinstance(outcome, RightsMiss)
    detection.observe(
        actor,
        hit=hit,
        beneficiary_id=outcome.beneficiary_id if hit else None,
        insurer_id=outcome.insurer_id,
        attempt=Attempt(
            amc_number=query.amc_number,
            member_number=query.member_number,
            nir=query.nir,
            birth_date=query.birth_date,
            birth_rank=query.birth_rank,
        ),
    )


class DetectionAdmission:
    """The rights check's ``Admission``: the detection engine, for this caller's actor."""

    def __init__(self, detection: DetectionEngine, actor: Actor) -> None:
        self.detection = detection
        self.actor = actor

    @classmethod
    def of(cls, detection: DetectionEngine, caller: PracticePrincipal) -> DetectionAdmission:
        return cls(detection, detection_actor(caller))

    def admit(self, query: RightsQuery, outcome: RightsOutcome) -> None:
        observe(self.detection, self.actor, query, outcome)
