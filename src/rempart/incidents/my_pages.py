"""The beneficiary's portal: the incidents that concern me (``/me/incidents``)."""

from __future__ import annotations

from rempart.web.pages import PageRouter

router = PageRouter()
