"""Structured application logs that carry ids, never personal data.

Log calls pass ids and counts as keyword fields. As a second wall, a processor drops any field whose
name says it may hold personal data, and masks anything shaped like a NIR in the message.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

_FORBIDDEN_KEYS = frozenset(
    {"nir", "name", "first_name", "last_name", "birth_date", "date_of_birth", "dob", "address", "email", "body"}
)
_NIR_SHAPE = re.compile(r"\b[12378]\s?\d{2}\s?\d{2}\s?(?:\d{2}|2[AB])\s?\d{3}\s?\d{3}\s?(?:\d{2})?\b", re.I)


def _scrub(_logger: Any, _method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key in list(event):
        if key.lower() in _FORBIDDEN_KEYS:
            event[key] = "[removed]"
        elif isinstance(event[key], str):
            event[key] = _NIR_SHAPE.sub("[nir]", event[key])
    return event


def configure_logging(*, json: bool = False, level: int = logging.INFO) -> None:
    renderer: Any = structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _scrub,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        # Looked up at each call, so that a redirected stderr (tests, daemons) receives the lines.
        logger_factory=lambda *_: structlog.PrintLogger(sys.stderr),
        cache_logger_on_first_use=False,
    )


def get_logger(name: str) -> Any:
    return structlog.get_logger(name)
