"""The portal's languages: French first, English on request.

Catalogues are Babel ``.po`` files under ``web/locale`` (the templates' and the pages' words in
English as message ids, French as translations), compiled in memory when the app starts, so no
binary ``.mo`` file is kept in the repository. The language of a request is the ``lang`` cookie
when it names one of ours, else French. Dates and amounts are written by Babel for that language,
in Paris time.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, date, datetime
from decimal import Decimal
from functools import cache
from importlib import resources
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_datetime, format_time
from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_currency, format_decimal
from babel.support import NullTranslations, Translations
from starlette.requests import Request

LANGUAGES = ("fr", "en")
DEFAULT_LANGUAGE = "fr"
LANG_COOKIE = "lang"
PARIS = ZoneInfo("Europe/Paris")

_current: ContextVar[str] = ContextVar("rempart_language", default=DEFAULT_LANGUAGE)


def language_of(request: Request) -> str:
    """The ``lang`` cookie when it names a language of ours, else French."""
    wanted = request.cookies.get(LANG_COOKIE, "")
    return wanted if wanted in LANGUAGES else DEFAULT_LANGUAGE


@cache
def translations(language: str) -> NullTranslations:
    """The compiled catalogue of ``language``: every ``.po`` file of ``web/locale/<language>``
    (one per part of the portal, so that each part keeps its own words), merged. English is the
    message ids themselves."""
    if language == "en":
        return NullTranslations()
    folder = resources.files("rempart").joinpath("web", "locale", language, "LC_MESSAGES")
    merged: Catalog | None = None
    for source in sorted((f for f in folder.iterdir() if f.name.endswith(".po")), key=lambda f: f.name):
        with source.open("rb") as po:
            catalog = read_po(po, locale=language)
        if merged is None:
            merged = catalog
            continue
        for message in catalog:
            if message.id and message.id not in merged:
                merged[message.id] = message
    compiled = io.BytesIO()
    write_mo(compiled, merged if merged is not None else Catalog(locale=language))
    compiled.seek(0)
    return Translations(compiled)


@contextmanager
def speaking(language: str) -> Iterator[None]:
    """Within the block, ``gettext`` and the formatters answer in ``language``."""
    token = _current.set(language if language in LANGUAGES else DEFAULT_LANGUAGE)
    try:
        yield
    finally:
        _current.reset(token)


def current_language() -> str:
    return _current.get()


def gettext(message: str) -> str:
    return translations(_current.get()).gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    return translations(_current.get()).ngettext(singular, plural, n)


def _(message: str) -> str:
    """Marks a message for extraction where it is defined; translated where it is shown."""
    return message


# -- formatting, per language ----------------------------------------------------------------------


def euros(cents: int | None) -> str:
    """``12 345`` cents → ``123,45 €`` in French, ``€123.45`` in English."""
    if cents is None:
        return "—"
    return format_currency(Decimal(cents) / 100, "EUR", locale=_current.get())


def number(value: int | float | Decimal) -> str:
    return format_decimal(value, locale=_current.get())


def day(value: date | None, style: str = "medium") -> str:
    if value is None:
        return "—"
    return format_date(value, format=style, locale=_current.get())


def moment(value: datetime | None, style: str = "medium") -> str:
    """A date and time, in Paris time (stored times are UTC, naive ones included)."""
    if value is None:
        return "—"
    return format_datetime(_aware(value), format=style, tzinfo=PARIS, locale=_current.get())


def clock_time(value: datetime | None) -> str:
    if value is None:
        return "—"
    return format_time(_aware(value), format="short", tzinfo=PARIS, locale=_current.get())


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def iso_utc(value: datetime) -> str:
    """For scripts: an instant as ISO 8601 in UTC, with its ``Z``."""
    return _aware(value).astimezone(UTC).isoformat().replace("+00:00", "Z")
