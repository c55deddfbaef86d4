"""The API reference at ``/api/docs``: Swagger UI on ``/openapi.json``, served from this origin.

FastAPI's own ``/docs`` page loads Swagger UI from a CDN and starts it with an inline script, both
refused by the content-security policy (``web/security.py``). Here the bundle comes from a package
installed from PyPI (``fastapi-offline`` ships Swagger UI 5, which reads OpenAPI 3.1), the page
has no inline script or style, and ``static/api-docs.js`` starts Swagger UI.
"""

from __future__ import annotations

from importlib import resources
from typing import Any

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response
from starlette.exceptions import HTTPException

ASSETS_PACKAGE = "fastapi_offline"
ASSETS = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
}
DOCS_PATH = "/api/docs"
ASSETS_PATH = DOCS_PATH + "/assets"
# The bundle changes only with the package: it may be cached (every other answer is no-store).
_CACHE = {"cache-control": "public, max-age=3600"}

PAGE = f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Rempart API reference</title>
<link rel="icon" href="/favicon.ico">
<link rel="stylesheet" href="{ASSETS_PATH}/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="{ASSETS_PATH}/swagger-ui-bundle.js"></script>
<script src="/static/api-docs.js"></script>
</body>
</html>
"""


def _asset_bytes() -> dict[str, bytes]:
    root = resources.files(ASSETS_PACKAGE).joinpath("static")
    return {name: root.joinpath(name).read_bytes() for name in ASSETS}


_ASSET_BYTES = _asset_bytes()


def api_docs() -> HTMLResponse:
    return HTMLResponse(PAGE)


def api_docs_asset(name: str) -> Response:
    body = _ASSET_BYTES.get(name)
    if body is None:
        raise HTTPException(404)
    return Response(body, media_type=ASSETS[name], headers=_CACHE)


def docs_router(*, public: Any) -> APIRouter:
    """The page and its assets. Routes under ``/api/`` are denied by default: the app that mounts
    them says they are public (``identity.deps.PUBLIC``, which request plumbing cannot import),
    on each route, where ``tests/identity/test_routes.py`` looks."""
    router = APIRouter(include_in_schema=False)
    methods = ["GET", "HEAD"]
    router.add_api_route(DOCS_PATH, api_docs, methods=methods, response_class=HTMLResponse, dependencies=[public])
    router.add_api_route(ASSETS_PATH + "/{name}", api_docs_asset, methods=methods, dependencies=[public])
    return router
