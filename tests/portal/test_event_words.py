"""Every kind of security event reads as words on the pages that list them: the account's own
events and the practice's (a new kind without words would show its code)."""

from __future__ import annotations

from rempart.detection.pages import EVENT_WORDS as PRACTICE_WORDS
from rempart.identity.account_pages import EVENT_WORDS as ACCOUNT_WORDS
from rempart.identity.models import SecurityEventKind
from rempart.web import i18n


def test_every_security_event_kind_has_words_on_both_pages_in_both_languages() -> None:
    for kind in SecurityEventKind:
        for words in (ACCOUNT_WORDS, PRACTICE_WORDS):
            assert kind.value in {str(k) for k in words}, kind
    with i18n.speaking("fr"):
        for words in (ACCOUNT_WORDS, PRACTICE_WORDS):
            for english in words.values():
                assert i18n.gettext(english) != english, english
