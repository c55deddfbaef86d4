"""The login and enrolment pages work under the strict CSP: no inline script, no inline style."""

from __future__ import annotations

import re

from fastapi import FastAPI

from tests.support.portal import PortalUser


def test_login_and_enrolment_pages_load_their_script_from_this_origin(app: FastAPI) -> None:
    browser = PortalUser.browser(app)
    for path in ("/login", "/enrol"):
        page = browser.get(path)
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        assert "script-src 'self'" in page.headers["content-security-policy"]
        html = page.text
        # Every <script> has a src on this origin and no body; no inline handlers or styles.
        scripts = re.findall(r"<script([^>]*)>(.*?)</script>", html, flags=re.S)
        assert scripts
        assert all('src="/static/' in attrs and not body.strip() for attrs, body in scripts)
        assert not re.search(r"\son[a-z]+\s*=", html)
        assert "style=" not in html
        assert 'type="password"' not in html

    script = browser.get("/static/passkeys.js")
    assert script.status_code == 200
    assert script.headers["content-type"].startswith("text/javascript")
    assert "navigator.credentials.get" in script.text
    assert browser.get("/static/../app.py").status_code == 404
    assert browser.get("/static/other.js").status_code == 404
