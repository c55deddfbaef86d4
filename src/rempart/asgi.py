"""ASGI entry point for ``uvicorn rempart.asgi:app`` (each server process builds its own runtime)."""

from __future__ import annotations

from rempart.app import create_app
from rempart.config import get_settings
from rempart.runtime import Runtime
from rempart.tenancy import use_app_role

_runtime = Runtime.build(get_settings())
# On PostgreSQL the served app works as the role that cannot bypass row-level security; the CLI
# (migrations, imports, audit verify) keeps the owner's connection.
use_app_role(_runtime.engine, _runtime.settings.database_app_role)
app = create_app(_runtime)
