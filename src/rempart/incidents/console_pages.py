"""The security console: incidents with their 72-hour clock (``/console/incidents``)."""

from __future__ import annotations

from rempart.web.pages import PageRouter

router = PageRouter()
