"""The insurer's back office: its members' access log, checkpoints and consistency proof, bulk exports."""

from __future__ import annotations

from rempart.web.pages import PageRouter

router = PageRouter()
