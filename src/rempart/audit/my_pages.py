"""The beneficiary's portal: who accessed my data (``/me/access-log``)."""

from __future__ import annotations

from rempart.web.pages import PageRouter

router = PageRouter()
