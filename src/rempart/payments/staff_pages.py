"""The insurer's back office: payment runs (preview, run, second approval) and remittances."""

from __future__ import annotations

from rempart.web.pages import PageRouter

router = PageRouter()
