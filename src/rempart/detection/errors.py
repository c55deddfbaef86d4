"""What a contained or cut-off caller is told: a clear problem+json, no hint of which signal fired."""

from __future__ import annotations

from rempart.errors import Forbidden, RempartError, ServiceUnavailable

ATTESTATION_KEYS = "/.well-known/rempart/attestation-keys"
_OFFLINE = (
    "Apply third-party payment with the beneficiary's signed offline attestation (the QR code of their "
    "card), verified against the insurer's published keys; claims made under it are accepted later."
)


class SlowDown(RempartError):
    status = 429
    slug = "slow-down"
    title = "Too many checks"

    def __init__(self, retry_after_seconds: int) -> None:
        super().__init__(
            f"Rights checks from this access are slowed down: wait {retry_after_seconds} s before the next one.",
            extra={"retry_after": retry_after_seconds},
        )


class StepUpRequired(Forbidden):
    """Portal: confirm presence with a passkey before checking more rights."""

    slug = "step-up-required"
    title = "Confirm it is you"

    def __init__(self) -> None:
        super().__init__("Confirm with your passkey to continue checking rights.", extra={"step_up": "passkey"})


class ChecksRefused(Forbidden):
    """API: the client's checks are refused for a while."""

    slug = "checks-refused"
    title = "Checks refused for now"

    def __init__(self, retry_after_seconds: int) -> None:
        super().__init__(
            "Rights checks from this client are refused for now because its use does not look like care "
            "at a counter. If this is expected, the practice should contact the Rempart security team.",
            extra={"retry_after": retry_after_seconds},
        )


class AccessSuspended(Forbidden):
    slug = "access-suspended"
    title = "Access suspended"

    def __init__(self) -> None:
        super().__init__(
            "This access is suspended by the security team and all its sessions and tokens are revoked. "
            "The practice should contact the Rempart security team."
        )


class IdentityLocked(RempartError):
    """This card and NIR did not match here a moment ago with another date of birth: refused for a
    while, whatever the date now given (so that a date cannot be guessed), without saying whether
    it would match."""

    status = 429
    slug = "identity-locked"
    title = "This card was just checked with another date of birth"

    def __init__(self, retry_after_minutes: int) -> None:
        super().__init__(
            "This card and NIR did not match a moment ago with another date of birth, so checks of this card "
            f"from this practice are paused for {retry_after_minutes} min, whatever the date given now. Check the "
            "card and the date of birth with the patient; if they are right, call the insurer, or apply "
            "third-party payment with the patient's signed offline attestation (the QR code of their card).",
            extra={
                "retry_after": retry_after_minutes * 60,
                "offline_attestation": True,
                "attestation_keys": ATTESTATION_KEYS,
            },
        )


class ChannelDisconnected(ServiceUnavailable):
    slug = "channel-disconnected"
    title = "This channel is disconnected"

    def __init__(self, *, offline_attestation: bool) -> None:
        if offline_attestation:
            super().__init__(
                "The security team has disconnected this channel for now. " + _OFFLINE,
                extra={"offline_attestation": True, "attestation_keys": ATTESTATION_KEYS},
            )
        else:
            super().__init__("The security team has disconnected this channel for now.")
