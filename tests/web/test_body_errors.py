"""A malformed JSON body's error says where, in lines and columns (``rempart.web.body_errors``)."""

from __future__ import annotations

import json

import pytest

from rempart.web.body_errors import describe_json_error


def _offset(body: str) -> int:
    # Where FastAPI's json_invalid error locates it: the parser's character offset.
    with pytest.raises(json.JSONDecodeError) as caught:
        json.loads(body)
    return caught.value.pos


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ('{\n  "card": {\n    "amc_number": ,\n', "line 3, column 19: expected a value after ':'"),
        ('{"a": 1,}', "line 1, column 9: a trailing ',' before '}'"),
        ("[1, 2,]", "line 1, column 7: a trailing ',' before ']'"),
        ('{"a": 1 "b": 2}', "line 1, column 9: expected ',' between two items, or the closing '}' or ']'"),
        ('{"a" 1}', "line 1, column 6: expected ':' after the member name"),
        ("{a: 1}", "line 1, column 2: expected a member name in double quotes"),
        ('{"a": "unclosed}', "line 1, column 7: a string is not closed by a double quote"),
        ('{"a": 1}\n{"b": 2}', "line 2, column 1: more data after the end of the JSON value"),
        ('{"a": ', "line 1, column 7: the body ends where a value was expected"),
        ('{"a": 1', "line 1, column 8: the body ends before the object or array is closed"),
        ('{"a": "\\q"}', "line 1, column 8: an invalid escape sequence inside a string"),
        ('{"a": "x\ty"}', "line 1, column 9: a control character (such as a line break or a tab) inside a string"),
        ('{"a": nope}', "line 1, column 7: expected a value after ':'"),
        (
            "nope",
            (
                "line 1, column 1: expected a value"
                " (a string in double quotes, a number, true, false, null, an object or an array)"
            ),
        ),
    ],
)
def test_the_error_is_placed_and_explained(body: str, expected: str) -> None:
    assert describe_json_error(body.encode(), _offset(body)) == expected
    assert describe_json_error(body, _offset(body)) == expected


def test_columns_count_characters_not_bytes() -> None:
    body = '{"nom": "Éloïse", "x": }'
    assert describe_json_error(body.encode(), _offset(body)).startswith("line 1, column 24:")


def test_the_body_is_never_quoted() -> None:
    body = '{"nir": "185057800608436" "birth_date": "1985-05-01"}'
    said = describe_json_error(body.encode(), _offset(body))
    assert "185057800608436" not in said
    assert "1985" not in said
    assert "birth_date" not in said


def test_an_offset_that_does_not_match_still_gives_a_position() -> None:
    assert describe_json_error(b"{}\n{}", 99) == "line 2, column 3: the JSON is not well-formed here"
