"""Where a malformed JSON body goes wrong, in words a developer finds it by.

FastAPI reports an unreadable JSON body as a ``json_invalid`` error located at
``("body", <character offset>)``: "field 44" helps nobody. :func:`describe_json_error` turns the
offset into a line and a column and says what the parser expected there
(``line 3, column 14: expected a value after ':'``).

It never quotes the body: a value next to the mistake may be a NIR or a name. Only the JSON
punctuation the parser stopped at or after is named, from a fixed list.
"""

from __future__ import annotations

import json

# Punctuation that may be named in a message; anything else is "a character".
_NAMEABLE = frozenset("{}[]:,\"'")


def _position(text: str, offset: int) -> tuple[int, int]:
    """1-based line and column of ``offset`` in ``text`` (columns count characters)."""
    offset = max(0, min(offset, len(text)))
    line = text.count("\n", 0, offset) + 1
    column = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return line, column


def _previous_mark(text: str, offset: int) -> str | None:
    """The last non-blank character before ``offset``, when it is JSON punctuation."""
    before = text[:offset].rstrip()
    if before and before[-1] in _NAMEABLE:
        return before[-1]
    return None


def _next_mark(text: str, offset: int) -> str | None:
    rest = text[offset:].lstrip()
    if rest and rest[0] in _NAMEABLE:
        return rest[0]
    return None


# The parser's messages that need no context, in plain words.
_PLAIN = (
    ("Expecting ':'", "expected ':' after the member name"),
    ("Unterminated string", "a string is not closed by a double quote"),
    ("Invalid control character", "a control character (such as a line break or a tab) inside a string"),
    ("Invalid \\u", "an invalid escape sequence inside a string"),
    ("Invalid \\escape", "an invalid escape sequence inside a string"),
    ("Extra data", "more data after the end of the JSON value"),
)


def _missing_value(text: str, offset: int) -> str:
    previous, following = _previous_mark(text, offset), _next_mark(text, offset)
    if not text[offset:].strip():
        return "the body ends where a value was expected"
    if previous == "," and following in {"]", "}"}:
        return f"a trailing ',' before '{following}'"
    if previous in {":", ",", "["}:
        return f"expected a value after '{previous}'"
    return "expected a value (a string in double quotes, a number, true, false, null, an object or an array)"


def _reason(text: str, offset: int, parser_message: str) -> str:
    if parser_message.startswith("Expecting value"):
        return _missing_value(text, offset)
    if parser_message.startswith("Expecting property name"):
        if _previous_mark(text, offset) == "," and _next_mark(text, offset) == "}":
            return "a trailing ',' before '}'"
        return "expected a member name in double quotes"
    if parser_message.startswith("Expecting ','"):
        if not text[offset:].strip():
            return "the body ends before the object or array is closed"
        return "expected ',' between two items, or the closing '}' or ']'"
    return next(
        (words for start, words in _PLAIN if parser_message.startswith(start)), "the JSON is not well-formed here"
    )


def describe_json_error(body: bytes | str, offset: int) -> str:
    """``line L, column C: what was expected``, for a JSON body that did not parse at ``offset``
    (a character offset in the decoded body, as FastAPI's ``json_invalid`` error gives it)."""
    text = body.decode("utf-8", errors="replace") if isinstance(body, bytes) else body
    message = ""
    try:
        json.loads(text)
    except json.JSONDecodeError as error:
        # The same parser as FastAPI's: its message at the same place says what it expected.
        if error.pos == offset:
            message = error.msg
    except (ValueError, RecursionError):
        pass
    line, column = _position(text, offset)
    return f"line {line}, column {column}: {_reason(text, offset, message)}"
