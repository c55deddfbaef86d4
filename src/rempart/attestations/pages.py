"""The beneficiary's portal: their card, its offline QR attestation and printable PDF (``/me``)."""

from __future__ import annotations

from rempart.web.pages import PageRouter

router = PageRouter()
