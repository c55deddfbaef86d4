"""Attestations over HTTP: the app with every response recorded and searched for the identities of
the members loaded (tests/e2e/conftest.py) — an attestation must never carry one in clear."""

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
