"""What the content-security policy and CSRF rules ask of every template, read from the files: no
inline script, style or event handler (the CSP would block them, so a page using one is broken),
every posted form carries the page's CSRF token, every field has a label."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

TEMPLATES = Path(__file__).resolve().parents[2] / "src" / "rempart" / "web" / "templates"
ALL = sorted(TEMPLATES.rglob("*.html"))
# Breach-response documents are files in an insurer's zip, opened from a disk, never served by the app
# under its CSP: they carry their own inline <style> so that each file stands alone.
DOCUMENTS = TEMPLATES / "incidents" / "documents"
PAGES = [p for p in ALL if DOCUMENTS not in p.parents]


def _name(path: Path) -> str:
    return str(path.relative_to(TEMPLATES))


def test_there_are_templates() -> None:
    assert len(ALL) >= 6
    assert len(PAGES) < len(ALL)  # the documents are set apart, the pages are all checked


def test_documents_run_no_script_and_handle_no_event() -> None:
    for path in sorted(DOCUMENTS.rglob("*.html")):
        text = path.read_text(encoding="utf-8")
        assert "<script" not in text, _name(path)
        assert not re.search(r"\son[a-z]+\s*=", text), _name(path)


@pytest.mark.parametrize("path", PAGES, ids=_name)
def test_no_inline_script_style_or_handler(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    for tag in re.findall(r"<script\b[^>]*>", text):
        assert "src=" in tag, f"inline script in {_name(path)}: {tag}"
    assert "<style" not in text, f"inline <style> in {_name(path)}"
    assert not re.search(r"\sstyle\s*=", text), f"style attribute in {_name(path)}"
    assert not re.search(r"\son[a-z]+\s*=", text), f"inline event handler in {_name(path)}"
    assert "javascript:" not in text


@pytest.mark.parametrize("path", ALL, ids=_name)
def test_every_posted_form_carries_the_csrf_token(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    for form in re.findall(r"<form\b[^>]*>.*?</form>", text, flags=re.S | re.I):
        opening = form[: form.index(">") + 1]
        if re.search(r'method="post"', opening, flags=re.I):
            assert 'name="csrf_token"' in form, f"{_name(path)}: {opening}"


@pytest.mark.parametrize("path", ALL, ids=_name)
def test_every_field_has_a_label(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    labelled = set(re.findall(r'<label[^>]*\bfor="([^"]+)"', text))
    for tag in re.findall(r"<(?:input|select|textarea)\b[^>]*>", text):
        if re.search(r'type="(hidden|submit|button)"', tag) or "aria-label" in tag or "aria-labelledby" in tag:
            continue
        found = re.search(r'\bid="([^"]+)"', tag)
        assert found, f"{_name(path)}: a field without id (and so without label): {tag}"
        assert found.group(1) in labelled or "{{" in found.group(1), f"{_name(path)}: no label for {tag}"
