"""What a client sees of a list's pages: it follows ``next`` (the same URL as the ``Link`` header) to
the last page, which has neither; a cursor no ``next`` link gave is a 422 ``cursor-invalid``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx2 as httpx

from tests.support.problems import problem_of

Get = Callable[..., httpx.Response]


def walk(get: Get, path: str, *, rows: str | None, limit: int, **params: Any) -> list[Any]:
    """Every row of the list at ``path``, page by page (``rows`` names the body's list; ``None``
    for a body that is the list itself, whose next page is in the ``Link`` header only)."""
    answer = get(path, params={**params, "limit": limit})
    seen: list[Any] = []
    while True:
        assert answer.status_code == 200, answer.text
        body = answer.json()
        page = body if rows is None else body[rows]
        seen += page
        header = answer.headers.get("link")
        link = header[1 : header.index(">")] if rows is None and header else None if rows is None else body.get("next")
        if link is None:
            # The last page: no ``next``, no ``Link``, and the body as it was before lists had pages.
            assert "link" not in answer.headers, answer.headers["link"]
            assert rows is None or "next" not in body
            return seen
        assert len(page) == limit
        assert header == f'<{link}>; rel="next"'
        assert f"limit={limit}" in link
        answer = get(link)


def refuses_cursor(get: Get, path: str, cursor: str = "not-a-cursor") -> None:
    """A cursor no ``next`` link gave is a 422 problem, ``cursor-invalid``."""
    problem_of(get(path, params={"cursor": cursor}), 422, "cursor-invalid")
