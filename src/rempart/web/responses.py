"""How routes answer: JSON bodies serialised once, and the idempotency headers of creations."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Header, Response

# Creations that must happen once (claims, prior approvals) take this header; the same key twice
# returns the first result, marked with ``REPLAYED``.
IdempotencyKey = Annotated[
    str | None,
    Header(alias="Idempotency-Key", description="required: the same key twice returns the first result"),
]
REPLAYED = "Idempotent-Replayed"


def json_response(model: Any, status_code: int = 200) -> Response:
    # Serialised once by pydantic's core; the route's response_model documents the shape.
    return Response(model.model_dump_json(), status_code=status_code, media_type="application/json")
