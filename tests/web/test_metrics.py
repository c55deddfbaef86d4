"""``/metrics``: HTTP figures by route template, the platform's figures, and who may read them."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import create_engine
from sqlalchemy.orm import sessionmaker

from rempart.app import create_app
from rempart.audit.keys import LocalSigningKeys
from rempart.config import Settings
from rempart.detection import service as detection
from rempart.detection.models import ContainmentLevel, SubjectKind
from rempart.metrics_collectors import PlatformCollector
from rempart.runtime import Runtime
from rempart.web.metrics import HttpMetrics, Metrics
from rempart.web.metrics import router as metrics_router
from tests.audit.conftest import record_events, seal

LOCAL = ("127.0.0.1", 51000)
TOKEN = "t" * 40


def _app(runtime: Runtime | None, *, token: str = "") -> FastAPI:
    """What create_app does, with a route of its own that takes an id in its path."""
    app = FastAPI()
    metrics = Metrics(token=token)
    if runtime is not None:
        metrics.register(PlatformCollector(runtime.sessions))
    app.state.metrics = metrics

    @app.get("/api/v1/things/{thing_id}")
    def thing(thing_id: str) -> dict[str, str]:
        return {"id": thing_id}

    app.include_router(metrics_router)
    app.add_middleware(HttpMetrics, metrics=metrics)
    return app


@pytest.fixture
def local() -> Iterator[TestClient]:
    with TestClient(_app(None, token=TOKEN), client=LOCAL) as c:
        yield c


def _value(text: str, name: str, **labels: str) -> float | None:
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        series, _, value = line.rpartition(" ")
        metric, _, raw_labels = series.partition("{")
        if metric != name:
            continue
        got = ",".join(sorted(raw_labels.rstrip("}").split(","))) if raw_labels else ""
        if got == wanted:
            return float(value)
    return None


def test_requests_are_counted_by_route_template_never_by_raw_path(local: TestClient) -> None:
    ids = [str(uuid.uuid4()) for _ in range(3)]
    for ident in ids:
        assert local.get(f"/api/v1/things/{ident}").status_code == 200
    local.get("/api/v1/no/such/path/185057800608436")
    local.post("/api/v1/things/x")
    text = local.get("/metrics").text
    route = "/api/v1/things/{thing_id}"
    assert _value(text, "rempart_http_requests_total", route=route, method="GET", status="200") == 3
    assert _value(text, "rempart_http_requests_total", route="<unmatched>", method="GET", status="404") == 1
    assert _value(text, "rempart_http_requests_total", route=route, method="POST", status="405") == 1
    assert _value(text, "rempart_http_request_duration_seconds_count", route=route, method="GET") == 3
    for ident in ids:
        assert ident not in text
    assert "185057800608436" not in text


def test_loopback_reads_without_a_token() -> None:
    with TestClient(_app(None), client=LOCAL) as c:
        response = c.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong-token"},
        {"Authorization": f"Bearer {TOKEN}x"},
    ],
)
def test_from_elsewhere_metrics_do_not_exist_without_the_token(headers: dict[str, str]) -> None:
    with TestClient(_app(None, token=TOKEN), client=("203.0.113.9", 40000)) as c:
        response = c.get("/metrics", headers=headers)
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert "rempart_" not in response.text


def test_the_token_opens_them_from_anywhere() -> None:
    with TestClient(_app(None, token=TOKEN), client=("203.0.113.9", 40000)) as c:
        response = c.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200
    assert "rempart_http_requests_total" in response.text


def test_without_a_token_set_no_bearer_opens_them() -> None:
    with TestClient(_app(None), client=("203.0.113.9", 40000)) as c:
        assert c.get("/metrics", headers={"Authorization": "Bearer "}).status_code == 404


@pytest.mark.parametrize("header", ["X-Forwarded-For", "Forwarded", "X-Real-IP"])
def test_a_proxied_request_is_not_local(header: str) -> None:
    # A reverse proxy on the same host makes every outside request arrive from 127.0.0.1.
    with TestClient(_app(None), client=LOCAL) as c:
        assert c.get("/metrics", headers={header: "203.0.113.9"}).status_code == 404


def test_the_platform_figures(runtime: Runtime) -> None:
    signer = LocalSigningKeys.from_document(LocalSigningKeys.new_document("metrics-test-1"))
    record_events(runtime, 3)
    seal(runtime, signer, now=datetime.now(UTC) - timedelta(minutes=5))
    record_events(runtime, 2, start=datetime.now(UTC) - timedelta(seconds=90))
    now = datetime.now(UTC)
    account = uuid.uuid4()
    with runtime.sessions.begin() as session:
        for level in (ContainmentLevel.SLOW, ContainmentLevel.STEP_UP):
            detection.record_step(
                session,
                kind=SubjectKind.ACCOUNT,
                subject_id=account,
                practice_id=None,
                level=level,
                until=now + timedelta(minutes=10),
                signal="distinct_beneficiaries_hour",
                detail={},
                now=now,
            )
    with TestClient(_app(runtime), client=LOCAL) as c:
        text = c.get("/metrics").text
    assert _value(text, "rempart_platform_metrics_up") == 1
    since = _value(text, "rempart_audit_seconds_since_last_checkpoint")
    assert since is not None
    assert 290 <= since < 600
    oldest = _value(text, "rempart_audit_oldest_unsealed_event_age_seconds")
    assert oldest is not None
    assert 85 <= oldest < 400
    assert _value(text, "rempart_audit_unsealed_events") == 2
    steps = "rempart_detection_containment_steps_total"
    for step in ("slow", "step_up"):
        assert _value(text, steps, subject_kind="account", step=step, signal="distinct_beneficiaries_hour") == 1
    assert _value(text, "rempart_detection_contained_subjects", subject_kind="account", level="step_up") == 1
    assert _value(text, "rempart_import_jobs", status="failed") == 0
    # Counts by closed labels only: no uuid anywhere.
    assert not re.search(r"[0-9a-f]{8}-[0-9a-f]{4}-", text)


def test_an_unreadable_database_fails_the_figures_not_the_scrape(tmp_path: Path) -> None:
    unreachable = sessionmaker(create_engine(f"sqlite:///{tmp_path}/no/such/dir/rempart.db"))
    app = _app(None)
    app.state.metrics.register(PlatformCollector(unreachable))
    with TestClient(app, client=LOCAL) as c:
        response = c.get("/metrics")
    assert response.status_code == 200
    assert _value(response.text, "rempart_platform_metrics_up") == 0
    assert "rempart_http_requests_total" in response.text


def test_with_the_app_s_own_routes(runtime: Runtime) -> None:
    """The lines create_app takes, on the real app: a claim's route is named by its template."""
    app = create_app(runtime)
    metrics = Metrics(token=runtime.settings.metrics_token)
    metrics.register(PlatformCollector(runtime.sessions))
    app.state.metrics = metrics
    app.include_router(metrics_router)
    app.add_middleware(HttpMetrics, metrics=metrics)
    claim = uuid.uuid4()
    with TestClient(app, client=LOCAL) as c:
        c.get(f"/api/v1/claims/{claim}")
        c.get("/healthz")
        text = c.get("/metrics").text
    assert str(claim) not in text
    assert _value(text, "rempart_http_requests_total", route="/healthz", method="GET", status="200") == 1
    assert re.search(
        r'rempart_http_requests_total\{method="GET",route="/api/v1/claims/\{[a-z_]+\}",status="401"\}', text
    )


def test_a_short_metrics_token_is_refused() -> None:
    with pytest.raises(ValueError, match="REMPART_METRICS_TOKEN"):
        Settings(metrics_token="too-short")
