"""The portal's account pages (HTML), on the page shell of ``rempart.web.pages``."""

from __future__ import annotations

from rempart.web.pages import PageRouter

router = PageRouter()
