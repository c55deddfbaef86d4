"""The portal's counter against the service it calls, in the same run: ``python -m bench.portal_counter``.

For each backend (SQLite, and PostgreSQL when it answers) a pharmacy with a professional's portal
account (its session opened as a passkey sign-in opens one) checks its regular patients:

- ``page``: ``POST /counter`` through the app in process (the ASGI test client, no socket): the
  session cookie and the form's CSRF token, the professional's guards and detection, the rights
  check and its access event, the coverage card rendered in French;
- ``service``: ``check_rights`` called directly with the same caller and detection admission: the
  floor under the page (lookup, coverage, access event, detection);
- ``form``: ``GET /counter``, the empty form: the shell alone (session, menu, template);
- ``health``: ``GET /healthz``, the floor of a request through the same app and client.

The phases alternate ``--rounds`` times so that the machine's other work falls on each alike, and
the report gives milliseconds per check (median of the rounds) and what the page adds to the
service. Detection sees a Tuesday morning (``bench.common.working_day_offset``). Bounded: ``--checks``
per phase and round (default 200); about half a minute per backend.
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from bench.common import ShiftedClock, backends, load_population, scratch_runtime, working_day_offset
from rempart.app import create_app
from rempart.detection.engine import DetectionEngine
from rempart.eligibility.admission import DetectionAdmission, detection_actor
from rempart.eligibility.service import RightsQuery, check_rights
from rempart.identity.accounts import invite_account
from rempart.identity.context import IdentityServices
from rempart.identity.models import Account, AccountStatus
from rempart.identity.permissions import Role, permissions_of
from rempart.identity.principal import Channel, PracticePrincipal
from rempart.identity.sessions import cookie_name, open_session
from rempart.members.models import BeneficiaryRole
from rempart.members.validation import MemberRecord
from rempart.professionals.models import Profession
from rempart.professionals.service import attach_professional, create_practice, register_professional
from rempart.runtime import Runtime

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
RPPS = "10003450094"  # a valid RPPS (Luhn), the bench's pharmacist


@dataclass
class Counter:
    client: TestClient
    csrf: str
    caller: PracticePrincipal


def open_counter(runtime: Runtime, app: FastAPI) -> Counter:
    identity = app.state.identity = IdentityServices.build(runtime.settings)
    now = datetime.now(UTC)
    with runtime.sessions.begin() as session:
        practice = create_practice(
            session=session, name="Pharmacie du Banc", profession=Profession.PHARMACIST, finess="750000001"
        )
        professional = register_professional(session=session, rpps=RPPS, profession=Profession.PHARMACIST)
        attach_professional(session=session, practice_id=practice.id, professional_id=professional.id, now=now)
        invitation = invite_account(
            session=session,
            login="banc@pharmacie.bench",
            roles={Role.PROFESSIONAL},
            now=now,
            invited_by=None,
            practice_id=practice.id,
            professional_id=professional.id,
        )
        account = session.scalar(select(Account).where(Account.id == invitation.account.id))
        assert account is not None
        account.status = AccountStatus.ACTIVE  # as enrolment leaves it, its passkey made
        opened = open_session(session=session, account=account, now=now, address="127.0.0.1", user_agent="bench")
        caller = PracticePrincipal(
            practice_id=practice.id,
            professional_id=professional.id,
            rpps=RPPS,
            profession=Profession.PHARMACIST,
            permissions=permissions_of(frozenset({Role.PROFESSIONAL})),
            channel=Channel.PORTAL,
            account_id=account.id,
            address="127.0.0.1",
            credential_ref="ses:" + str(opened.row.ref),
            authenticated_at=now,
        )
    # Entered once: one event loop for every request (a client used without ``with`` starts a
    # thread and a loop per request, which would cost more than the page itself).
    client = TestClient(app, base_url=identity.origin).__enter__()
    client.cookies.set(cookie_name(identity), opened.token)
    page = client.get("/counter")
    assert page.status_code == 200, page.status_code
    found = _CSRF.search(page.text)
    assert found
    return Counter(client=client, csrf=found.group(1), caller=caller)


def timed(action: Callable[[int], None], count: int) -> float:
    """Milliseconds per call of ``action`` over ``count`` calls."""
    started = time.perf_counter()
    for n in range(count):
        action(n)
    return (time.perf_counter() - started) * 1000 / count


def run_backend(backend: str, args: argparse.Namespace) -> dict[str, list[float]]:
    with scratch_runtime(backend, audit_sealer_in_app=False) as runtime:
        today = datetime.now(UTC).date()
        insurer, records = load_population(
            runtime, amc_number="88450101", name="Mutuelle du Banc", members=300, seed=7, today=today
        )
        regulars = [
            r for r in records if r.role is BeneficiaryRole.HOLDER and r.contract_start <= today and not r.contract_end
        ][:8]
        app = create_app(runtime)
        engine = DetectionEngine.build(runtime, clock=ShiftedClock(working_day_offset()))
        app.state.detection = engine
        counter = open_counter(runtime, app)
        admission = DetectionAdmission(engine, detection_actor(counter.caller))

        def form(patient: MemberRecord) -> dict[str, str]:
            return {
                "csrf_token": counter.csrf,
                "amc_number": insurer.amc_number,
                "member_number": patient.member_number,
                "nir": patient.nir,
                "birth_date": patient.birth_date.isoformat(),
                "birth_rank": str(patient.birth_rank),
            }

        def page(n: int) -> None:
            answer = counter.client.post("/counter", data=form(regulars[n % len(regulars)]))
            assert answer.status_code == 200, answer.status_code

        def service(n: int) -> None:
            patient = regulars[n % len(regulars)]
            with runtime.sessions() as session:
                check_rights(
                    session=session,
                    keys=runtime.keys,
                    caller=counter.caller,
                    query=RightsQuery(
                        amc_number=insurer.amc_number,
                        member_number=patient.member_number,
                        nir=patient.nir,
                        birth_date=patient.birth_date,
                        birth_rank=patient.birth_rank,
                        care_date=today,
                    ),
                    now=datetime.now(UTC),
                    admission=admission,
                )

        def empty_form(n: int) -> None:
            assert counter.client.get("/counter").status_code == 200

        def health(n: int) -> None:
            assert counter.client.get("/healthz").status_code == 200

        results: dict[str, list[float]] = {"page": [], "service": [], "form": [], "health": []}
        timed(page, 20)  # warm the caches (templates, keys, detection)
        timed(service, 20)
        for _ in range(args.rounds):
            results["page"].append(timed(page, args.checks))
            results["service"].append(timed(service, args.checks))
            results["form"].append(timed(empty_form, args.checks))
            results["health"].append(timed(health, args.checks))
        counter.client.__exit__(None, None, None)
        engine.close()
        return results


def report(backend: str, results: dict[str, list[float]]) -> None:
    page, service, form, health = (statistics.median(results[k]) for k in ("page", "service", "form", "health"))
    print(f"{backend}: median of {len(results['page'])} rounds, milliseconds per request")
    print(f"  page     POST /counter, coverage card   {page:6.2f} ms")
    print(f"  service  check_rights, same admission   {service:6.2f} ms")
    print(f"  form     GET /counter, the empty form   {form:6.2f} ms")
    print(f"  health   GET /healthz (app and client)  {health:6.2f} ms")
    print(f"  the page adds {page - service:.2f} ms to the service ({page / service:.2f}x)", flush=True)


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.portal_counter", description=__doc__.split("\n\n")[0])
    parser.add_argument("--checks", type=int, default=200, help="requests per phase and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--backends", nargs="*", default=None, help="sqlite, postgresql (default: those that answer)")
    args = parser.parse_args(argv)
    for backend in args.backends or backends():
        report(backend, run_backend(backend, args))


if __name__ == "__main__":
    main(sys.argv[1:])
