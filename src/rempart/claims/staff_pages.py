"""The insurer's back office: the claims review queue."""

from __future__ import annotations

from rempart.web.pages import PageRouter

router = PageRouter()
