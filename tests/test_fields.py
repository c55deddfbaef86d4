"""Amounts in euros as a person types them in the portal's forms (quote, prior approval, claim), and
the same amounts written back into a form in either language."""

from __future__ import annotations

import pytest

from rempart.fields import NotEuros, cents_to_euros, euros_to_cents


@pytest.mark.parametrize(
    ("typed", "cents"),
    [
        ("12,50", 1250),
        ("12.50", 1250),
        ("12", 1200),
        ("1 234,5", 123_450),
        ("1\u202f234,50", 123_450),  # the thin no-break space French writes between thousands
        ("0,05", 5),
        ("12,50 €", 1250),
        ("12.50 EUR", 1250),
        (" 150,00 ", 15_000),
    ],
)
def test_amounts_typed_in_euros_become_cents(typed: str, cents: int) -> None:
    assert euros_to_cents(typed) == cents


@pytest.mark.parametrize("typed", ["", "12,505", "-3", "1e3", "12,,5", "douze", "NaN", "Infinity", "1234567890"])
def test_amounts_that_are_not_euros_are_refused(typed: str) -> None:
    with pytest.raises(NotEuros):
        euros_to_cents(typed)


@pytest.mark.parametrize(("cents", "french", "english"), [(25_000, "250,00", "250.00"), (5, "0,05", "0.05")])
def test_cents_are_written_back_as_a_person_types_them(cents: int, french: str, english: str) -> None:
    assert cents_to_euros(cents, "fr") == french
    assert cents_to_euros(cents, "en") == english
    assert euros_to_cents(cents_to_euros(cents, "fr")) == cents


def test_no_amount_is_written_back_as_an_empty_field() -> None:
    assert cents_to_euros(None, "fr") == ""
