"""The FHIR facade's routes of its own: the CapabilityStatement and Rempart's code systems. The
resources live beside: ``eligibility.py``, ``claims.py``, ``reconciliation.py``.

Every ``/fhir`` answer is ``application/fhir+json``; every error an OperationOutcome (``rempart.app``
renders problems so on these paths); a request for XML gets a 406.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from rempart.errors import NotFound
from rempart.fhir.capability import capability_statement
from rempart.fhir.codes import code_system
from rempart.fhir.parse import FHIR_ROUTER_DEPENDENCIES
from rempart.web.fhir_wire import fhir_response

router = APIRouter(prefix="/fhir", tags=["FHIR"], dependencies=FHIR_ROUTER_DEPENDENCIES)

PUBLISHED = "2026-12-07"


@router.get("/metadata", summary="CapabilityStatement")
def metadata(request: Request) -> Response:
    """What the facade supports; public, like FHIR servers' ``/metadata``."""
    base = str(request.base_url).rstrip("/") + "/fhir"
    return fhir_response(capability_statement(base_url=base, published=PUBLISHED))


@router.get("/CodeSystem/{system_id}", summary="Read one of Rempart's code systems")
def read_code_system(system_id: str) -> Response:
    found = code_system(system_id)
    if found is None:
        raise NotFound("no code system with this id")
    return fhir_response(found)
