"""What a practice is told when its access is slowed, refused or suspended.

Operators see the signal and its figures in the alert. A practice admin (and the person whose
account was contained) reads a sentence instead: what kind of use was unusual, and what to do, but
no signal name, threshold or window, which would tell whoever holds a stolen key how to stay under
them.
"""

from __future__ import annotations

_WHAT = {
    "distinct": "Unusually many patients were checked with this access.",
    "new": "Unusually many patients new to the practice were checked with this access.",
    "insurers": "Unusually many patients were checked with this access.",
    "off": "Patients were checked with this access outside the practice's usual hours.",
    "misses": "Many checks with this access matched no patient's card.",
    "locked": "Many checks with this access matched no patient's card.",
    "unclaimed": "Many checks with this access were not followed by care billed by the practice.",
    "fresh": "This access was used from a network the practice does not usually work from.",
    "spread": "Patients checked with this access were being checked at many other practices.",
    "repeated": "This access was used unusually on several days.",
    "refused": "Requests went on while this access was paused.",
}
_DO = (
    " If you do not recognise this use, revoke the access (or its software keys) and contact the"
    " platform's security team; if you do, contact them to have it reviewed."
)


def for_practice(signal: str) -> str:
    """The sentence for the practice, from the signal that fired (``distinct_1h``, ``…_repeat``)."""
    family = signal.partition("_")[0]
    return _WHAT.get(family, "This access was used unusually.") + _DO
