"""The security console: live alerts, the containment ladder, kill switches and charts (``/console``)."""

from __future__ import annotations

from rempart.web.pages import PageRouter

router = PageRouter()
