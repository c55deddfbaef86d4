"""ASGI entry point for ``uvicorn rempart.asgi:app`` (each server process builds its own runtime)."""

from __future__ import annotations

from rempart.app import create_app
from rempart.config import get_settings
from rempart.runtime import Runtime

app = create_app(Runtime.build(get_settings()))
