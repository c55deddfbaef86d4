"""The insurer's back office: member imports with their progress and report, and the member view by member number."""

from __future__ import annotations

from rempart.web.pages import PageRouter

router = PageRouter()
