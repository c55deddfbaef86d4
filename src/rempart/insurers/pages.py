"""The insurer's back office: its products and formulas (``/insurer/products``)."""

from __future__ import annotations

from rempart.web.pages import PageRouter

router = PageRouter()
