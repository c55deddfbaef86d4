"""The beneficiary's portal: their rights per care domain and the ceilings left (``/me/rights``)."""

from __future__ import annotations

from rempart.web.pages import PageRouter

router = PageRouter()
