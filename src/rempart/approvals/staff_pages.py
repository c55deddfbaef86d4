"""The insurer's back office: prior approvals waiting for a person's decision."""

from __future__ import annotations

from rempart.web.pages import PageRouter

router = PageRouter()
