"""The API docs page (``/docs``): Swagger UI served by the prediction server itself.

FastAPI's default page loads Swagger UI's script and style from a CDN, so it is blank where
the server has no Internet access (a private network, an air-gapped cluster, a laptop offline).
Here the page loads them from ``/docs/<asset>`` routes of the same server. The files come from
the ``fastapi-swagger`` package (in the ``serve`` extra), which ships the Swagger UI
distribution (Swagger UI: Apache-2.0; the package: MIT). They are read once and kept in memory.
"""

from __future__ import annotations

import functools
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.openapi.docs import get_swagger_ui_html

DOCS_PATH = "/docs"
ASSETS = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "favicon-32x32.png": "image/png",
}
"""The files of the page, by name, with their media type."""
ASSET_PATHS = frozenset(f"{DOCS_PATH}/{name}" for name in ASSETS)
"""Open like ``/docs`` itself: the page needs them before any token could be entered."""
_PACKAGE = "fastapi_swagger.resources"


@functools.cache
def asset(name: str) -> bytes:
    """The bytes of one of :data:`ASSETS`."""
    from importlib import resources

    return resources.files(_PACKAGE).joinpath(name).read_bytes()


def add_docs(app: FastAPI) -> None:
    """Add ``/docs`` and its assets to ``app`` (a FastAPI app made with ``docs_url=None``)."""

    @app.get(DOCS_PATH, include_in_schema=False)
    async def docs(request: Request) -> Response:
        root = str(request.scope.get("root_path", "")).rstrip("/")
        return get_swagger_ui_html(
            openapi_url=root + (app.openapi_url or "/openapi.json"),
            title=f"{app.title} - API docs",
            swagger_js_url=f"{root}{DOCS_PATH}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{DOCS_PATH}/swagger-ui.css",
            swagger_favicon_url=f"{root}{DOCS_PATH}/favicon-32x32.png",
        )

    def endpoint(name: str, media_type: str) -> Any:
        async def serve_asset() -> Response:
            return Response(
                asset(name),
                media_type=media_type,
                headers={"Cache-Control": "public, max-age=86400"},
            )

        return serve_asset

    for name, media_type in ASSETS.items():
        app.add_api_route(
            f"{DOCS_PATH}/{name}",
            endpoint(name, media_type),
            methods=["GET"],
            include_in_schema=False,
        )
