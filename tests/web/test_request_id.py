"""Every answer, problem and log line of a request names it (``rempart.web.request_id``)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from fastapi.testclient import TestClient

from rempart.errors import PROBLEM_JSON, NotFound, RempartError
from rempart.logs import configure_logging, get_logger
from rempart.web.request_id import RequestId, accepted_or_new, current_request_id, stamp_problem

log = get_logger("tests.request_id")


def _problem(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
    # What app.problem_response does with the two lines it takes from this module.
    body, headers = stamp_problem(body, headers)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _app() -> FastAPI:
    app = FastAPI()

    def domain_problem(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RempartError)
        return _problem(exc.status, exc.problem())

    def unexpected(_request: Request, exc: Exception) -> Response:
        log.error("unhandled_error", error_type=type(exc).__name__)
        return _problem(500, {"type": "about:blank", "title": "Internal error", "status": 500})

    app.add_exception_handler(RempartError, domain_problem)
    app.add_exception_handler(Exception, unexpected)

    @app.get("/hello")
    def hello() -> dict[str, str | None]:
        log.info("said_hello", count=1)
        return {"seen": current_request_id()}

    @app.get("/async")
    async def hello_async() -> dict[str, str | None]:
        log.info("said_hello_async")
        return {"seen": current_request_id()}

    @app.get("/missing")
    def missing() -> None:
        raise NotFound("Nothing here.")

    @app.get("/broken")
    def broken() -> None:
        raise RuntimeError("boom")

    app.add_middleware(RequestId)
    return app


@pytest.fixture
def client() -> Iterator[TestClient]:
    configure_logging(json=True)
    with TestClient(_app(), raise_server_exceptions=False) as c:
        yield c


def _log_lines(err: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in err.splitlines() if line.startswith("{")]


def test_an_answer_without_an_id_gets_a_fresh_uuid4(client: TestClient) -> None:
    first = client.get("/hello")
    second = client.get("/hello")
    request_id = first.headers["x-request-id"]
    assert uuid.UUID(request_id).version == 4
    assert first.json() == {"seen": request_id}
    assert second.headers["x-request-id"] != request_id


def test_a_well_formed_incoming_id_is_kept(client: TestClient) -> None:
    response = client.get("/hello", headers={"X-Request-ID": "lgc-2026.12_07-0042"})
    assert response.headers["x-request-id"] == "lgc-2026.12_07-0042"
    assert response.json() == {"seen": "lgc-2026.12_07-0042"}


@pytest.mark.parametrize(
    "incoming",
    ["short", "x" * 65, "has space in it", "1 85 05 78 006 084 36", "line\\nbreak", "a/b/c/d/e/f"],
)
def test_a_malformed_incoming_id_is_replaced(client: TestClient, incoming: str) -> None:
    response = client.get("/hello", headers={"X-Request-ID": incoming})
    assert uuid.UUID(response.headers["x-request-id"]).version == 4


def test_only_bytes_of_the_allowed_shape_are_accepted() -> None:
    assert accepted_or_new(b"abcdefgh") == "abcdefgh"
    assert accepted_or_new(b"abcdefg\n") != "abcdefg\n"
    assert accepted_or_new("émile-dupont".encode()) != "émile-dupont"
    assert uuid.UUID(accepted_or_new(None))


def test_a_problem_names_the_request_in_its_header_and_keeps_its_bytes(client: TestClient) -> None:
    first = client.get("/missing", headers={"X-Request-ID": "req-00000001"})
    second = client.get("/missing", headers={"X-Request-ID": "req-00000002"})
    assert first.status_code == 404
    assert first.headers["x-request-id"] == "req-00000001"
    # Refusals that must not tell cases apart answer the same bytes, whichever request asked.
    assert first.content == second.content
    assert "instance" not in first.json()


def test_an_unexpected_error_still_names_the_request(client: TestClient, capsys: pytest.CaptureFixture[str]) -> None:
    response = client.get("/broken", headers={"X-Request-ID": "req-00000500"})
    assert response.status_code == 500
    # Sent from outside every middleware (Starlette's ServerErrorMiddleware): the handler adds both.
    assert response.headers["x-request-id"] == "req-00000500"
    [line] = [entry for entry in _log_lines(capsys.readouterr().err) if entry["event"] == "unhandled_error"]
    assert line["request_id"] == "req-00000500"


def test_every_log_line_of_the_request_carries_its_id(client: TestClient, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    sync_id = client.get("/hello").headers["x-request-id"]
    async_id = client.get("/async").headers["x-request-id"]
    lines = _log_lines(capsys.readouterr().err)
    assert {(entry["event"], entry["request_id"]) for entry in lines} >= {
        ("said_hello", sync_id),
        ("said_hello_async", async_id),
    }


def test_outside_a_request_there_is_no_id() -> None:
    assert current_request_id() is None
    body = {"type": "about:blank"}
    assert stamp_problem(body, None) == (body, None)
