"""Every HTTP route of an app, nested routers included (FastAPI keeps included routers nested)."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts


@dataclass(frozen=True)
class Route:
    path: str
    methods: frozenset[str]
    dependant: Dependant
    original: APIRoute


def api_routes(app: FastAPI) -> list[Route]:
    found = []
    for context in iter_route_contexts(app.routes):
        original = context.original_route
        if not isinstance(original, APIRoute) or context.path is None:
            continue
        found.append(
            Route(
                path=context.path,
                methods=frozenset(context.methods or ()),
                dependant=context.dependant,
                original=original,
            )
        )
    return found
