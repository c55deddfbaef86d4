"""A list's next page, as the answer says it: ``next`` in the body and ``Link: <...>; rel="next"``."""

from __future__ import annotations

from typing import Any

from fastapi import Query, Request, Response
from pydantic import BaseModel

from rempart.pagination import Cursor

CURSOR_DESCRIPTION = "the opaque cursor of a previous answer's `next` link; absent for the first page"
CursorParam: Any = Query(default=None, max_length=200, description=CURSOR_DESCRIPTION)


def next_link(request: Request, cursor: Cursor | str | None) -> str | None:
    """This request's URL with the next page's cursor (every other parameter kept), or ``None``. A
    ``str`` is a cursor already encoded (the access log's own, older than ``Cursor``)."""
    if cursor is None:
        return None
    return str(request.url.include_query_params(cursor=cursor if isinstance(cursor, str) else cursor.encode()))


def with_next(response: Response, link: str | None) -> Response:
    if link is not None:
        response.headers["Link"] = f'<{link}>; rel="next"'
    return response


def paged_json(body: BaseModel, link: str | None) -> Response:
    """A list's page: ``next`` in the body and the ``Link`` header on every page but the last, where
    neither appears (the answer of a one-page list is what it was before lists had pages)."""
    content = body.model_dump_json(exclude=None if link is not None else {"next"})
    return with_next(Response(content, media_type="application/json"), link)
