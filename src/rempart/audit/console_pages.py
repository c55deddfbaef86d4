"""The security console: break-glass requests and approvals (``/console/break-glass``)."""

from __future__ import annotations

from rempart.web.pages import PageRouter

router = PageRouter()
