"""One process state or none (``rempart.serving``), with real ``rempart serve`` and ``rempart demo``
processes on 127.0.0.1: without Redis one server per database, and no more (``--workers N`` is
refused, a second server is refused while the first serves on); with Redis several servers share the
first-use records, so a client assertion or a DPoP proof used at one is refused at another. And a
local caller's ``X-Forwarded-For`` is not believed unless REMPART_TRUSTED_PROXIES names it."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from joserfc.jwk import ECKey
from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import Connection, make_url

from rempart.app import create_app
from rempart.config import Settings
from rempart.db import make_engine
from rempart.identity.context import TOKEN_PATH
from rempart.identity.deps import ACTING_RPPS_HEADER
from rempart.identity.models import SecurityEvent
from rempart.identity.tokens import ASSERTION_TYPE, GRANT_TYPE
from rempart.runtime import Runtime
from rempart.serving import SERVING_KEY
from tests.conftest import REDIS_URL
from tests.support.practice_client import PracticeClient, client_assertion, dpop_proof

REMPART = Path(sys.executable).with_name("rempart")
ORIGIN = "http://localhost:8000"  # the load balancer's: every server checks proofs against it
STARTS_WITHIN = 30.0  # seconds: a server imports the app (a few seconds on a loaded machine)
WHOAMI = "/api/v1/auth/whoami"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env(**settings: str) -> dict[str, str]:
    """This environment without its REMPART_ settings, and with ``settings`` (as REMPART_<NAME>)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("REMPART_")}
    env.update({f"REMPART_{name.upper()}": value for name, value in settings.items()})
    return env


def _serves(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


@dataclass
class Server:
    process: subprocess.Popen[str]
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def output(self) -> str:
        return self.log.read_text()


@contextmanager
def servers(tmp_path: Path, *commands: tuple[list[str], dict[str, str]]) -> Iterator[list[Server]]:
    """``rempart <command> --port P`` for each command (each on a free port), started together and
    serving /healthz; interrupted (then killed) on leaving."""
    started: list[Server] = []
    try:
        for args, env in commands:
            port = _free_port()
            log = tmp_path / f"server-{port}.log"
            with log.open("w") as out:
                process = subprocess.Popen(
                    [str(REMPART), *args, "--port", str(port)],
                    cwd=tmp_path,
                    env=env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    text=True,
                )
            started.append(Server(process, port, log))
        deadline = time.monotonic() + STARTS_WITHIN
        for server in started:
            while not _serves(server.port):
                assert server.process.poll() is None, f"the server stopped: {server.output()}"
                assert time.monotonic() < deadline, "the server did not serve /healthz in time"
                time.sleep(0.2)
        yield started
    finally:
        for server in started:
            if server.process.poll() is None:
                server.process.send_signal(signal.SIGINT)
        for server in started:
            try:
                server.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.process.kill()
                server.process.wait()


def _refused(args: list[str], env: dict[str, str], cwd: Path) -> str:
    """What a refused ``rempart`` command says: exit 1, a readable message, no traceback."""
    result = subprocess.run(
        [str(REMPART), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=STARTS_WITHIN, check=False
    )
    assert result.returncode == 1, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stdout + result.stderr
    return " ".join(result.stderr.split())


def _sqlite_database(tmp_path: Path, sqlite_template: Path) -> str:
    path = tmp_path / "rempart.db"
    shutil.copy(sqlite_template, path)
    return f"sqlite:///{path}"


# -- without Redis: one server process per database -----------------------------------------------


def test_serve_with_several_workers_but_no_redis_is_refused_before_anything_starts(
    tmp_path: Path, sqlite_template: Path, kek_file: Path
) -> None:
    port = _free_port()
    env = _env(database_url=_sqlite_database(tmp_path, sqlite_template), kek_file=str(kek_file))

    said = _refused(["serve", "--workers", "3", "--port", str(port)], env, tmp_path)

    assert "--workers 3 needs REMPART_REDIS_URL" in said
    assert "DPoP proof" in said
    assert "Set REMPART_REDIS_URL" in said
    assert "--workers 1" in said
    assert not _serves(port)


def test_a_second_server_on_the_same_database_without_redis_is_refused_while_the_first_serves(
    database_url: str, kek_file: Path, tmp_path: Path
) -> None:
    env = _env(database_url=database_url, kek_file=str(kek_file), public_origin=ORIGIN)
    with servers(tmp_path, (["serve"], env)) as [first]:
        port = _free_port()

        said = _refused(["serve", "--port", str(port)], env, tmp_path)

        assert "another Rempart server is already serving this database without REMPART_REDIS_URL" in said
        assert "Set REMPART_REDIS_URL" in said
        assert "stop the other server" in said
        assert not _serves(port)
        assert _serves(first.port)
    # The lease goes with the server that held it: another one may serve now.
    with servers(tmp_path, (["serve"], env)):
        pass


def test_demo_refuses_to_serve_a_database_another_server_serves_without_redis(
    tmp_path: Path, sqlite_template: Path, kek_file: Path
) -> None:
    url = _sqlite_database(tmp_path, sqlite_template)
    env = _env(database_url=url, kek_file=str(kek_file))
    with servers(tmp_path, (["serve"], env)) as [first]:
        said = _refused(["demo", "--members", "3", "--port", str(_free_port()), "--db", url], env, tmp_path)

        assert "another Rempart server is already serving this database" in said
        assert _serves(first.port)
    assert not (tmp_path / "var" / "demo.json").exists()  # refused before loading anything


def _lease_holder(connection: Connection) -> int | None:
    """The PostgreSQL backend holding the serving lease of this database."""
    pid = connection.scalar(
        text(
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 2"
            " AND classid::bigint = :space AND objid::bigint = :key"
            " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        ),
        {"space": SERVING_KEY[0], "key": SERVING_KEY[1]},
    )
    return None if pid is None else int(pid)


def _wait_for(condition: Callable[[], bool], *, within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.2)


def test_a_postgresql_lease_whose_connection_is_cut_is_taken_back_or_the_server_stops(
    pg_database: str, kek_file: Path, tmp_path: Path
) -> None:
    env = _env(database_url=pg_database, kek_file=str(kek_file), public_origin=ORIGIN)
    engine = create_engine(make_url(pg_database), isolation_level="AUTOCOMMIT")
    try:
        with servers(tmp_path, (["serve"], env)) as [server], engine.connect() as connection:
            first = _lease_holder(connection)
            assert first is not None

            # Cut (as a database restart or an idle timeout would): the server takes its lease back.
            connection.execute(text("SELECT pg_terminate_backend(:pid, 5000)"), {"pid": first})
            _wait_for(
                lambda: _lease_holder(connection) not in {None, first}, within=15, what="the lease was not taken back"
            )
            assert _serves(server.port)

            # Cut again, and another takes the lease first: the server stops rather than serve beside it.
            deadline = time.monotonic() + 10
            take = text("SELECT pg_try_advisory_lock(:space, :key)")
            while not connection.scalar(take, {"space": SERVING_KEY[0], "key": SERVING_KEY[1]}):
                holder = _lease_holder(connection)
                if holder is not None:
                    connection.execute(text("SELECT pg_terminate_backend(:pid, 5000)"), {"pid": holder})
                assert time.monotonic() < deadline, "could not take the lease from the server"
            server.process.wait(timeout=15)

            assert server.process.returncode != 0
            assert "lost its lease on the database" in " ".join(server.output().split())
            assert "Traceback" not in server.output()
    finally:
        engine.dispose()


# -- with Redis: several servers share the first-use records --------------------------------------


@dataclass
class Software:
    """Practice software registered in the database the servers share."""

    client_id: uuid.UUID
    signing_key: ECKey
    dpop_key: ECKey
    rpps: str

    def assertion(self) -> str:
        return client_assertion(
            self.signing_key, client_id=self.client_id, audience=ORIGIN + TOKEN_PATH, iat=int(time.time())
        )

    def proof(self, method: str, path: str, *, access_token: str | None = None) -> str:
        return dpop_proof(
            self.dpop_key, method=method, url=ORIGIN + path, iat=int(time.time()), access_token=access_token
        )

    def token_request(self, server: Server, *, assertion: str, proof: str) -> httpx.Response:
        form = {"grant_type": GRANT_TYPE, "client_assertion_type": ASSERTION_TYPE, "client_assertion": assertion}
        return httpx.post(server.url + TOKEN_PATH, data=form, headers={"DPoP": proof}, timeout=10)

    def whoami(self, server: Server, *, token: str, proof: str) -> httpx.Response:
        headers = {"Authorization": f"DPoP {token}", "DPoP": proof, ACTING_RPPS_HEADER: self.rpps}
        return httpx.get(server.url + WHOAMI, headers=headers, timeout=10)


def _register_software(runtime: Runtime) -> Software:
    practice = PracticeClient.register(create_app(runtime), runtime)
    return Software(practice.client_id, practice.signing_key, practice.dpop_key, practice.rpps)


def _detail(response: httpx.Response) -> str:
    return str(response.json()["detail"])


def test_an_assertion_or_a_dpop_proof_used_at_one_server_is_refused_at_another(
    runtime: Runtime, kek_file: Path, tmp_path: Path
) -> None:
    if not REDIS_URL:
        pytest.skip("several servers share their first-use records in Redis: set REMPART_TEST_REDIS_URL")
    software = _register_software(runtime)
    env = _env(
        database_url=runtime.settings.database_url, kek_file=str(kek_file), public_origin=ORIGIN, redis_url=REDIS_URL
    )
    with servers(tmp_path, (["serve"], env), (["serve"], env)) as [a, b]:
        assertion = software.assertion()
        issued = software.token_request(a, assertion=assertion, proof=software.proof("POST", TOKEN_PATH))
        assert issued.status_code == 200, issued.text
        token = issued.json()["access_token"]

        # (a) The same client assertion at another server: refused, even with a fresh proof.
        again = software.token_request(b, assertion=assertion, proof=software.proof("POST", TOKEN_PATH))
        assert again.status_code == 401, again.text
        assert again.json()["error"] == "invalid_client"
        assert "already used" in _detail(again)
        fresh = software.token_request(b, assertion=software.assertion(), proof=software.proof("POST", TOKEN_PATH))
        assert fresh.status_code == 200, fresh.text

        # (b) The same DPoP proof, with the same token, at another server: refused.
        proof = software.proof("GET", WHOAMI, access_token=token)
        assert software.whoami(a, token=token, proof=proof).status_code == 200
        replayed = software.whoami(b, token=token, proof=proof)
        assert replayed.status_code == 401, replayed.text
        assert "already used" in _detail(replayed)
        fresh_proof = software.proof("GET", WHOAMI, access_token=token)
        assert software.whoami(b, token=token, proof=fresh_proof).status_code == 200


# -- X-Forwarded-For ------------------------------------------------------------------------------


def _refused_token_address(url: str, database_url: str, *, client_id: uuid.UUID, signing_key: ECKey) -> str | None:
    """Ask ``url`` for a token without a DPoP proof, saying X-Forwarded-For: 203.0.113.7; return the
    address the refusal was recorded under (the practice's security events)."""
    assertion = client_assertion(signing_key, client_id=client_id, audience=ORIGIN + TOKEN_PATH, iat=int(time.time()))
    form = {"grant_type": GRANT_TYPE, "client_assertion_type": ASSERTION_TYPE, "client_assertion": assertion}
    response = httpx.post(url + TOKEN_PATH, data=form, headers={"X-Forwarded-For": "203.0.113.7"}, timeout=10)
    assert response.status_code in {400, 401}, response.text
    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            return connection.scalar(select(SecurityEvent.address).where(SecurityEvent.client_id == client_id))
    finally:
        engine.dispose()


@pytest.mark.parametrize(("trusted", "recorded"), [("", "127.0.0.1"), ("127.0.0.1", "203.0.113.7")])
def test_serve_believes_x_forwarded_for_only_from_the_trusted_proxies(
    tmp_path: Path, sqlite_template: Path, kek_file: Path, trusted: str, recorded: str
) -> None:
    url = _sqlite_database(tmp_path, sqlite_template)
    runtime = Runtime.build(Settings(database_url=url, kek_file=kek_file, var_dir=tmp_path / "var"))
    try:
        software = _register_software(runtime)
    finally:
        runtime.close()
    env = _env(database_url=url, kek_file=str(kek_file), public_origin=ORIGIN, trusted_proxies=trusted)
    with servers(tmp_path, (["serve"], env)) as [server]:
        address = _refused_token_address(
            server.url, url, client_id=software.client_id, signing_key=software.signing_key
        )
    assert address == recorded


def test_demo_does_not_believe_x_forwarded_for_from_a_local_caller(tmp_path: Path) -> None:
    with servers(tmp_path, (["demo", "--members", "3"], _env())) as [server]:
        doc = json.loads((tmp_path / "var" / "demo.json").read_text())
        software = doc["practice_software"][0]
        address = _refused_token_address(
            server.url,
            f"sqlite:///{tmp_path / 'var' / 'rempart.db'}",
            client_id=uuid.UUID(software["client_id"]),
            signing_key=ECKey.import_key(software["private_jwk"]),
        )
    assert address == "127.0.0.1"
