"""Plugging identity and the access log into containment, once those domains exist."""

from __future__ import annotations

from rempart.detection.hooks import ContainmentHooks, RecordOnly


def default_hooks() -> ContainmentHooks:
    return RecordOnly()
