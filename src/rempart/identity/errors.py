"""Authentication and authorisation errors, each with a stable problem type.

The OAuth ``error`` code rides along on token-endpoint and token errors so that OAuth client
libraries understand them too.
"""

from __future__ import annotations

from typing import Any

from rempart.errors import Forbidden, RempartError, Unauthenticated
from rempart.identity.jose import SIGNING_ALGORITHMS


class _OAuthProblem(RempartError):
    oauth_error: str = ""

    def problem(self, instance: str | None = None) -> dict[str, Any]:
        body = super().problem(instance)
        if self.oauth_error:
            body.setdefault("error", self.oauth_error)
        return body

    def challenge(self) -> str:
        """The ``WWW-Authenticate`` value of a 401 (RFC 9449, section 7.1): the error code and the
        proof algorithms accepted, so that an OAuth library knows what to fix."""
        algs = f'algs="{" ".join(SIGNING_ALGORITHMS)}"'
        return f'DPoP error="{self.oauth_error}", {algs}' if self.oauth_error else f"DPoP {algs}"


class NotSignedIn(_OAuthProblem, Unauthenticated):
    """No credentials at all: the challenge names no error, only how to authenticate."""


class InvalidTokenRequest(_OAuthProblem):
    status = 400
    slug = "invalid-token-request"
    title = "The token request is not valid"
    oauth_error = "invalid_request"


class InvalidClient(_OAuthProblem, Unauthenticated):
    slug = "invalid-client"
    title = "Client authentication failed"
    oauth_error = "invalid_client"


class ClientRevoked(_OAuthProblem, Unauthenticated):
    slug = "client-revoked"
    title = "This client has been revoked"
    oauth_error = "invalid_client"


class ClientSuspended(_OAuthProblem, Forbidden):
    """The client authenticated, but detection or a security operator suspended it: unlike a
    revoked client it works again, with the same keys, once an operator lifts the suspension."""

    status = 403
    slug = "client-suspended"
    title = "This client is suspended"
    oauth_error = "unauthorized_client"

    def __init__(self) -> None:
        super().__init__(
            "This practice software's access is suspended by the Rempart security team after unusual use, "
            "and its tokens are revoked. The practice should contact the Rempart security team to have it "
            "lifted. Meanwhile, apply third-party payment with the beneficiary's signed offline attestation.",
            extra={"offline_attestation": True, "attestation_keys": "/.well-known/rempart/attestation-keys"},
        )


class ClientExpired(_OAuthProblem, Unauthenticated):
    slug = "client-expired"
    title = "This client's credentials have expired"
    oauth_error = "invalid_client"


class InvalidAccessToken(_OAuthProblem, Unauthenticated):
    slug = "invalid-token"
    title = "The access token is not valid"
    oauth_error = "invalid_token"


class AccessTokenExpired(_OAuthProblem, Unauthenticated):
    slug = "token-expired"
    title = "The access token has expired"
    oauth_error = "invalid_token"


class InvalidDPoPProof(_OAuthProblem, Unauthenticated):
    slug = "invalid-dpop-proof"
    title = "The DPoP proof is not valid"
    oauth_error = "invalid_dpop_proof"


class PracticeSuspended(Forbidden):
    slug = "practice-suspended"
    title = "This practice is suspended"


class ActingProfessionalRefused(Forbidden):
    slug = "acting-professional-refused"
    title = "The acting professional cannot act for this practice"


class PermissionDenied(Forbidden):
    slug = "permission-denied"
    title = "Not allowed"
