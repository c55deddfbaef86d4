"""Practice software calling Rempart: a DPoP-bound token for a signed client assertion, then a
rights check on behalf of a professional (``docs/integration.md`` explains every step).

Against the demo (``rempart demo`` writes the credentials and sample patients to var/demo.json):

    python docs/examples/practice_client.py --base http://127.0.0.1:8000
    python docs/examples/practice_client.py --base http://127.0.0.1:8000 --profession optician --patient 3

With your own registered client (its private key as a JWK file, never sent anywhere):

    python docs/examples/practice_client.py --base https://rempart.example \\
        --client-id 6f1c… --key my-client.jwk.json --rpps 10101010106 \\
        --amc 88450101 --member 000123 --nir "1 85 05 78 006 084 36" --birth-date 1985-05-01

Needs only ``httpx`` and ``joserfc`` (``cryptography`` underneath). ``--base`` is where to connect;
the URLs that tokens and proofs are bound to are the platform's public origin, which the token URL
names (``--token-url``, or the demo's): behind a proxy or on 127.0.0.1 the two differ.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import sys
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

import httpx
from joserfc import jwt
from joserfc.jwk import ECKey

TOKEN_PATH = "/api/v1/auth/token"  # noqa: S105 - a path, not a secret
GRANT_TYPE = "client_credentials"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
RENEW_BEFORE = 30  # seconds: a token about to expire is renewed rather than refused mid-flight


class Answer(Protocol):
    status_code: int
    headers: Any

    def json(self) -> Any: ...


class Http(Protocol):
    """What the example needs of an HTTP client: ``httpx.Client`` (or a test client) does."""

    def request(self, method: str, url: str, **kwargs: Any) -> Any: ...


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def dpop_proof(key: ECKey, *, method: str, url: str, access_token: str | None = None) -> str:
    """A fresh DPoP proof (RFC 9449): one per request, never reused, bound to the method and the
    URL without its query, and to the access token by its hash (``ath``) once there is one."""
    claims: dict[str, Any] = {"jti": uuid.uuid4().hex, "htm": method.upper(), "htu": url, "iat": int(time.time())}
    if access_token is not None:
        claims["ath"] = _b64url(hashlib.sha256(access_token.encode()).digest())
    header = {"typ": "dpop+jwt", "alg": "ES256", "jwk": key.as_dict(private=False)}
    return jwt.encode(header, claims, key, algorithms=["ES256"])


def client_assertion(key: ECKey, *, client_id: str, token_url: str, lifetime: int = 60) -> str:
    """The signed client assertion of ``private_key_jwt`` (RFC 7523): the client's own key, at most
    a minute of life, used once (``jti``), addressed to the token URL exactly."""
    now = int(time.time())
    claims = {
        "iss": client_id,
        "sub": client_id,
        "aud": token_url,
        "iat": now,
        "exp": now + lifetime,
        "jti": uuid.uuid4().hex,
    }
    return jwt.encode({"alg": "ES256", "kid": key.thumbprint()}, claims, key, algorithms=["ES256"])


class RempartError(Exception):
    """A problem+json answer (RFC 9457): ``type`` is stable, ``detail`` is for people."""

    def __init__(self, status: int, problem: dict[str, Any]) -> None:
        self.status = status
        self.problem = problem
        super().__init__(f"{status} {problem.get('type', '')}: {problem.get('detail', '')}")


class PracticeSoftware:
    """One practice's billing software: its registered client and signing key, a DPoP key of its
    own (made at start: any new key will do, it only has to stay the same for the token's life),
    and the professional at the counter, named by RPPS on every call."""

    def __init__(
        self, *, http: Http | httpx.Client, base: str, token_url: str, client_id: str, signing_key: ECKey, rpps: str
    ) -> None:
        self.http = http
        self.base = base.rstrip("/")
        self.token_url = token_url
        split = urlsplit(token_url)
        self.origin = f"{split.scheme}://{split.netloc}"
        self.client_id = client_id
        self.signing_key = signing_key
        self.dpop_key = ECKey.generate_key("P-256", private=True)
        self.rpps = rpps
        self._token: str | None = None
        self._expires = 0.0

    def token(self) -> str:
        """A 5-minute access token, renewed shortly before it expires."""
        if self._token is not None and time.time() < self._expires - RENEW_BEFORE:
            return self._token
        answer = self.http.request(
            "POST",
            self.base + TOKEN_PATH,
            data={
                "grant_type": GRANT_TYPE,
                "client_assertion_type": ASSERTION_TYPE,
                "client_assertion": client_assertion(
                    self.signing_key, client_id=self.client_id, token_url=self.token_url
                ),
            },
            headers={"DPoP": dpop_proof(self.dpop_key, method="POST", url=self.token_url)},
        )
        if answer.status_code != 200:
            raise RempartError(answer.status_code, answer.json())
        body = answer.json()
        if body.get("token_type") != "DPoP":
            raise RempartError(answer.status_code, {"detail": "expected a DPoP-bound token"})
        self._token = str(body["access_token"])
        self._expires = time.time() + int(body["expires_in"])
        return self._token

    def call(self, method: str, path: str, *, json_body: Any = None, idempotency_key: str | None = None) -> Answer:
        """One API call with the token and a fresh proof for exactly this method and URL."""
        token = self.token()
        headers = {
            "Authorization": f"DPoP {token}",
            "DPoP": dpop_proof(
                self.dpop_key, method=method, url=self.origin + path.split("?", 1)[0], access_token=token
            ),
            "X-Acting-RPPS": self.rpps,
        }
        if idempotency_key is not None:
            headers["Idempotency-Key"] = idempotency_key
        answer: Answer = self.http.request(method, self.base + path, json=json_body, headers=headers)
        return answer

    def check_rights(
        self,
        *,
        card: dict[str, str],
        nir: str,
        birth_date: str,
        birth_rank: int = 1,
        care_domains: Sequence[str] = (),
    ) -> dict[str, Any]:
        """Is this patient covered today, and how? What the patient hands over at the counter:
        the card (AMC number, member number), the NIR and the date of birth."""
        answer = self.call(
            "POST",
            "/api/v1/rights-checks",
            json_body={
                "amc_number": card["amc_number"],
                "member_number": card["member_number"],
                "nir": nir,
                "birth_date": birth_date,
                "birth_rank": birth_rank,
                "care_domains": list(care_domains),
            },
        )
        if answer.status_code != 200:
            raise RempartError(answer.status_code, answer.json())
        result: dict[str, Any] = answer.json()
        return result


# -- the command line ----------------------------------------------------------------------------

_DOMAIN_OF = {"pharmacist": "PHAR", "optician": "OPTI"}


def _arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="A rights check as practice software makes it.")
    parser.add_argument("--base", default="http://127.0.0.1:8000", help="where Rempart answers")
    parser.add_argument("--demo", type=Path, default=Path("var/demo.json"), help="rempart demo's credentials")
    parser.add_argument("--profession", default="pharmacist", help="which demo practice: pharmacist or optician")
    parser.add_argument("--patient", type=int, default=0, help="which demo patient (index in demo.json)")
    own = parser.add_argument_group("your own client instead of the demo's")
    own.add_argument("--client-id")
    own.add_argument("--key", type=Path, help="the client's private key, a JWK file")
    own.add_argument("--rpps", help="the acting professional's RPPS number")
    own.add_argument("--token-url", help="the platform's token URL (default: the demo's, else --base's)")
    own.add_argument("--amc")
    own.add_argument("--member")
    own.add_argument("--nir")
    own.add_argument("--birth-date")
    own.add_argument("--birth-rank", type=int, default=1)
    own.add_argument("--domain", action="append", help="care domain (PHAR, OPTI, …); repeat for several")
    return parser.parse_args(argv)


def _setup(args: argparse.Namespace, http: Http | httpx.Client) -> tuple[PracticeSoftware, dict[str, Any]]:
    if args.client_id:
        key = ECKey.import_key(json.loads(args.key.read_text()))
        software = PracticeSoftware(
            http=http,
            base=args.base,
            token_url=args.token_url or args.base.rstrip("/") + TOKEN_PATH,
            client_id=args.client_id,
            signing_key=key,
            rpps=args.rpps,
        )
        patient = {
            "card": {"amc_number": args.amc, "member_number": args.member},
            "nir": args.nir,
            "birth_date": args.birth_date,
            "birth_rank": args.birth_rank,
        }
        return software, patient
    demo = json.loads(args.demo.read_text())
    chosen = next(s for s in demo["practice_software"] if s["profession"] == args.profession)
    software = PracticeSoftware(
        http=http,
        base=args.base,
        token_url=args.token_url or chosen["token_url"],
        client_id=chosen["client_id"],
        signing_key=ECKey.import_key(chosen["private_jwk"]),
        rpps=chosen["rpps"],
    )
    return software, demo["patients"][args.patient]


def main(argv: Sequence[str] | None = None, *, http: Http | None = None) -> int:
    """Check one patient's rights; print the answer (or the problem) as JSON. 0 when answered."""
    args = _arguments(argv)
    with httpx.Client(timeout=10) as own_http:
        software, patient = _setup(args, http or own_http)
        domains = args.domain or [_DOMAIN_OF.get(args.profession, "PHAR")]
        try:
            rights = software.check_rights(
                card=patient["card"],
                nir=patient["nir"],
                birth_date=patient["birth_date"],
                birth_rank=int(patient.get("birth_rank") or 1),
                care_domains=domains,
            )
        except RempartError as error:
            # "no matching rights" (404) says nothing of which field was wrong, by design.
            sys.stdout.write(json.dumps({"status": error.status, "problem": error.problem}, indent=2) + "\n")
            return 1
    sys.stdout.write(json.dumps({"status": 200, "rights": rights}, indent=2, ensure_ascii=False) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
