"""Incidents over HTTP: the app with every professional response recorded and searched for the
members' identities (tests/e2e/conftest.py)."""

from __future__ import annotations

from tests.e2e.conftest import (  # noqa: F401  (fixtures, registered by being imported here)
    app,
    app_runtime,
    clock,
    no_identity_in_professional_responses,
    population,
    recorder,
    scanned,
)
