"""What a caller sees of a refusal: an RFC 9457 problem with our stable type and a human detail."""

from __future__ import annotations

from typing import Any

import httpx2 as httpx

from rempart.errors import PROBLEM_BASE, PROBLEM_JSON


def problem_of(response: httpx.Response, status: int, slug: str) -> dict[str, Any]:
    """The problem ``response`` carries, once checked to be ``status`` of type ``slug`` with a detail."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    body: dict[str, Any] = response.json()
    assert body["type"] == PROBLEM_BASE + slug
    assert body["status"] == status
    assert body["detail"]
    return body
