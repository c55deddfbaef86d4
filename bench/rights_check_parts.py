"""Where a rights check's time goes, part by part, in process: ``python -m bench.rights_check_parts``.

``bench.rights_check`` measures the whole request over HTTP; this one times each part the route
runs, on one core, without HTTP or threads, against the bare indexed lookup of
``bench.rights_check_app`` run the same way in the same run:

- ``auth``: ``authenticate_token`` — a session, the one query for token, client, practice and acting
  professional, the DPoP proof's signature, claims and replay check (Redis when it answers);
- ``check``: ``check_rights`` and the commit — insurer, blind index candidates, contract and
  coverage lookups, the rights-check row and the access event;
- ``detection``: ``observe`` — one round trip to the counter store (Redis when it answers);
- ``answer``: the response body;
- ``bare``: a session, the insurer's id (cached, as the bare route caches it) and one indexed SELECT.

Each part reports CPU and wall time per call (medians of ``--rounds`` rounds of ``--calls`` calls),
and the whole check as a multiple of the bare lookup. Bounded: a few seconds per backend.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

from joserfc import jwt
from sqlalchemy import select

from bench.common import ShiftedClock, backends, scratch_runtime, working_day_offset
from bench.rights_check import AMC, ASSERTION_TYPE, CHECK_PATH, GRANT_TYPE, build_world, dpop_proof, redis_available
from rempart.detection.engine import DetectionEngine
from rempart.eligibility.api import detection_actor, json_response, observe
from rempart.eligibility.schemas import RightsCheckOut
from rempart.eligibility.service import RightsAnswer, RightsQuery, check_rights
from rempart.identity.context import IdentityServices
from rempart.identity.tokens import authenticate_token, issue_token
from rempart.insurers.models import Insurer
from rempart.members.models import Contract


def timed(fn: Callable[[], object], *, calls: int, rounds: int) -> tuple[float, float]:
    """Median CPU and wall microseconds per call."""
    fn()
    cpu, wall = [], []
    for _ in range(rounds):
        c0, w0 = time.process_time(), time.perf_counter()
        for _ in range(calls):
            fn()
        cpu.append((time.process_time() - c0) / calls * 1e6)
        wall.append((time.perf_counter() - w0) / calls * 1e6)
    return statistics.median(cpu), statistics.median(wall)


def run_backend(backend: str, args: argparse.Namespace) -> dict[str, tuple[float, float]]:
    redis_url = redis_available()
    with scratch_runtime(backend, redis_url=redis_url) as runtime:
        world = build_world(runtime, members=600, practices=2, per_practice=4)
        pharmacy = world.pharmacies[0]
        identity = IdentityServices.build(runtime.settings, prefix=f"bench{uuid.uuid4().hex[:8]}")
        now = int(time.time())
        assertion = jwt.encode(
            {"alg": "ES256", "kid": pharmacy.signing_key.thumbprint()},
            {
                "iss": str(pharmacy.client_id),
                "sub": str(pharmacy.client_id),
                "aud": identity.token_url,
                "iat": now,
                "exp": now + 60,
                "jti": uuid.uuid4().hex,
            },
            pharmacy.signing_key,
            algorithms=["ES256"],
        )
        with runtime.sessions.begin() as session:
            _client, issued = issue_token(
                session=session,
                replay=identity.replay,
                form={"grant_type": GRANT_TYPE, "client_assertion_type": ASSERTION_TYPE, "client_assertion": assertion},
                dpop_proof=dpop_proof(pharmacy.dpop_key, method="POST", url=identity.token_url, iat=now),
                token_url=identity.token_url,
                now=datetime.now(UTC),
            )
        token, url = issued.access_token, identity.url_of(CHECK_PATH)
        total = args.calls * (args.rounds + 1) + 1
        proofs: Iterator[str] = iter(
            [dpop_proof(pharmacy.dpop_key, method="POST", url=url, iat=now, access_token=token) for _ in range(total)]
        )

        def auth() -> None:
            with runtime.sessions() as session:
                authenticate_token(
                    session=session,
                    replay=identity.replay,
                    authorization=f"DPoP {token}",
                    dpop_proof=next(proofs),
                    method="POST",
                    url=url,
                    now=datetime.now(UTC),
                    acting_rpps=pharmacy.rpps,
                )

        caller = pharmacy.caller()
        patient = pharmacy.patients[0]
        query = RightsQuery(AMC, patient.member_number, patient.nir, patient.birth_date, patient.birth_rank)

        def check() -> RightsAnswer:
            with runtime.sessions() as session:
                outcome = check_rights(  # commits the access event itself
                    session=session, keys=runtime.keys, caller=caller, query=query, now=datetime.now(UTC)
                )
            assert isinstance(outcome, RightsAnswer)
            return outcome

        answer = check()
        engine = DetectionEngine.build(runtime, clock=ShiftedClock(working_day_offset()))
        actor = detection_actor(caller)
        with runtime.sessions() as session:
            insurer_id = session.scalar(select(Insurer.id).where(Insurer.amc_number == AMC))

        def bare() -> None:
            with runtime.sessions() as session:
                session.scalar(
                    select(Contract.id).where(
                        Contract.insurer_id == insurer_id, Contract.member_number == patient.member_number
                    )
                )

        parts = {
            "auth": timed(auth, calls=args.calls, rounds=args.rounds),
            "check": timed(check, calls=args.calls, rounds=args.rounds),
            "detection": timed(lambda: observe(engine, actor, query, answer), calls=args.calls, rounds=args.rounds),
            "answer": timed(lambda: json_response(RightsCheckOut.of(answer)), calls=args.calls, rounds=args.rounds),
            "bare": timed(bare, calls=args.calls, rounds=args.rounds),
        }
        engine.drain()
        engine.close()
        return parts


def report(backend: str, parts: dict[str, tuple[float, float]]) -> None:
    work = {name: value for name, value in parts.items() if name != "bare"}
    cpu_total = sum(cpu for cpu, _ in work.values())
    bare_cpu, bare_wall = parts["bare"]
    print(f"\n[{backend}] per call, median (µs): cpu / wall, and share of the check's CPU")
    for name, (cpu, wall) in work.items():
        print(f"  {name:<10}{cpu:>8.0f} /{wall:>7.0f}   {cpu / cpu_total:>5.0%}")
    print(f"  {'check, all':<10}{cpu_total:>8.0f}")
    print(f"  {'bare':<10}{bare_cpu:>8.0f} /{bare_wall:>7.0f}")
    print(f"  a rights check's own work costs {cpu_total / bare_cpu:.1f}x the bare lookup's (framework not counted)")


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.rights_check_parts", description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", action="append", choices=["sqlite", "postgresql"])
    parser.add_argument("--calls", type=int, default=200, help="calls per round")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    results = {backend: run_backend(backend, args) for backend in args.backend or backends()}
    for backend, parts in results.items():
        report(backend, parts)


if __name__ == "__main__":
    main(sys.argv[1:])
