"""The insurer's back office: breach notices, their clock and the export bundle."""

from __future__ import annotations

from rempart.web.pages import PageRouter

router = PageRouter()
