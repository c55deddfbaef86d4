"""docs/examples/practice_client.py, the integration guide's runnable client, works: against the app
(in process) with the credentials and patients ``rempart demo`` writes."""

from __future__ import annotations

import importlib.util
import json
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from fastapi.testclient import TestClient

from rempart.app import create_app
from rempart.demo import build_demo
from rempart.detection.clock import ManualClock
from rempart.detection.engine import DetectionEngine
from rempart.identity.context import IdentityServices
from rempart.runtime import Runtime
from tests.conftest import REDIS_URL
from tests.detection.conftest import drop_prefix

EXAMPLE = Path(__file__).resolve().parent.parent / "docs" / "examples" / "practice_client.py"


def _example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("practice_client_example", EXAMPLE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def served(runtime: Runtime) -> Iterator[tuple[TestClient, Path]]:
    """The demo's data and demo.json, and the app answering them (real clocks, as `rempart serve`)."""
    doc = build_demo(runtime=runtime, members=30)
    demo = runtime.settings.var_dir / "demo.json"
    assert json.loads(demo.read_text())["practice_software"] == doc["practice_software"]
    app = create_app(runtime)
    prefix = f"t{uuid.uuid4().hex}"
    app.state.identity = IdentityServices.build(runtime.settings, prefix=prefix)
    app.state.detection = DetectionEngine.build(runtime, prefix=prefix)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client, demo
    app.state.detection.close()
    if REDIS_URL:
        drop_prefix(REDIS_URL, prefix)


def _run(capsys: pytest.CaptureFixture[str], client: TestClient, *argv: str) -> tuple[int, dict[str, Any]]:
    code = _example().main(["--base", "http://127.0.0.1:8000", *argv], http=client)
    return code, json.loads(capsys.readouterr().out)


def test_the_example_against_the_demo(
    served: tuple[TestClient, Path], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """One test, several calls: building the demo is the slow part."""
    client, demo = served
    doc = json.loads(demo.read_text())

    # The pharmacy checks a demo patient: coverage only, never the NIR back.
    code, printed = _run(capsys, client, "--demo", str(demo))
    assert code == 0, printed
    assert printed["status"] == 200
    assert printed["rights"]["check_id"]
    assert doc["patients"][0]["nir"] not in json.dumps(printed)

    # The optician too.
    code, printed = _run(capsys, client, "--demo", str(demo), "--profession", "optician", "--patient", "1")
    assert code == 0, printed

    # Own credentials (a key file), and a wrong date of birth: the one no-match problem.
    software, patient = doc["practice_software"][0], doc["patients"][2]
    key = tmp_path / "client.jwk.json"
    key.write_text(json.dumps(software["private_jwk"]))
    year, month, day = patient["birth_date"].split("-")
    wrong_day = f"{year}-{month}-{'02' if day == '01' else '01'}"
    code, printed = _run(
        capsys,
        client,
        *("--client-id", software["client_id"], "--key", str(key), "--rpps", software["rpps"]),
        *("--token-url", software["token_url"], "--amc", patient["card"]["amc_number"]),
        *("--member", patient["card"]["member_number"], "--nir", patient["nir"], "--birth-date", wrong_day),
    )
    assert code == 1
    assert printed["status"] == 404
    assert printed["problem"]["type"].endswith("/no-matching-rights")

    # The token is kept until it nearly expires; a proof for another URL is refused (401, DPoP).
    example = _example()
    practice = example.PracticeSoftware(
        http=client,
        base="http://127.0.0.1:8000",
        token_url=software["token_url"],
        client_id=software["client_id"],
        signing_key=example.ECKey.import_key(software["private_jwk"]),
        rpps=software["rpps"],
    )
    token = practice.token()
    assert practice.token() == token
    answer = client.post(
        "http://127.0.0.1:8000/api/v1/rights-checks",
        json={},
        headers={
            "Authorization": f"DPoP {token}",
            "DPoP": example.dpop_proof(
                practice.dpop_key, method="POST", url=practice.origin + "/api/v1/claims", access_token=token
            ),
            "X-Acting-RPPS": practice.rpps,
        },
    )
    assert answer.status_code == 401
    assert answer.headers["WWW-Authenticate"].startswith("DPoP")


def _answered_before_slow_down(client: TestClient, demo: Path, profession: str, *, local_hour: int) -> int:
    """Distinct demo patients a new practice's software checks, one after the other, before the
    first ``slow-down``, with detection's clock on a Monday at ``local_hour`` in Paris."""
    example = _example()
    doc = json.loads(demo.read_text())
    software = next(s for s in doc["practice_software"] if s["profession"] == profession)
    app: Any = client.app
    prefix = f"t{uuid.uuid4().hex}"
    # December: Paris is UTC+1.
    clock = ManualClock(datetime(2026, 12, 7, local_hour - 1, 0, tzinfo=UTC))
    app.state.detection = DetectionEngine.build(app.state.runtime, clock=clock, prefix=prefix)
    practice = example.PracticeSoftware(
        http=client,
        base="http://127.0.0.1:8000",
        token_url=software["token_url"],
        client_id=software["client_id"],
        signing_key=example.ECKey.import_key(software["private_jwk"]),
        rpps=software["rpps"],
    )
    try:
        for answered, patient in enumerate(doc["patients"]):
            body = {**patient["card"], "nir": patient["nir"], "birth_date": patient["birth_date"]}
            answer = practice.call("POST", "/api/v1/rights-checks", json_body={**body, "birth_rank": 1})
            if answer.status_code == 429:
                assert answer.json()["type"].endswith("/slow-down")
                assert int(answer.headers["Retry-After"]) > 0
                return answered
            assert answer.status_code == 200, answer.text
        return len(doc["patients"])
    finally:
        app.state.detection.close()
        if REDIS_URL:
            drop_prefix(REDIS_URL, prefix)


def test_what_the_guide_says_a_test_practice_meets(served: tuple[TestClient, Path]) -> None:
    """docs/integration.md: an optician's software is slowed after the 5th distinct patient within
    5 minutes (the 3rd off-hours); a pharmacy's after the 8th off-hours."""
    client, demo = served
    assert len(json.loads(demo.read_text())["patients"]) > 8
    assert _answered_before_slow_down(client, demo, "optician", local_hour=10) == 5
    assert _answered_before_slow_down(client, demo, "optician", local_hour=21) == 3
    assert _answered_before_slow_down(client, demo, "pharmacist", local_hour=21) == 8
