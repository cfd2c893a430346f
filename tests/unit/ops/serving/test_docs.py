"""``/docs`` loads Swagger UI from the server itself (no CDN), its assets are served and open
without the bearer token, and the OpenAPI example is the contract's typical row."""

from __future__ import annotations

import re
from pathlib import Path

from fastapi.testclient import TestClient

from modelyard.ops.serving.app import ServeSettings, create_app
from modelyard.ops.serving.docs import ASSETS
from modelyard.ops.serving.request import example_record, request_model
from tests.unit.ops._penguins import load_penguins
from tests.unit.ops.serving._world import NAME, World

EXTERNAL = re.compile(r"""(?:src|href|url)\s*[=:]\s*["']?\s*(?:https?:)?//""", re.I)


def _client(world: World, tmp: Path, token: str | None = None) -> TestClient:
    settings = ServeSettings(
        model=f"{NAME}@champion", tracking_uri=world.tracking_uri, log_path=str(tmp / "log")
    )
    return TestClient(create_app(settings, token=token))


def test_docs_load_swagger_ui_from_the_server_even_with_a_token(
    world: World, tmp_path: Path
) -> None:
    with _client(world, tmp_path, token="s3cret") as c:
        page = c.get("/docs")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert not EXTERNAL.search(page.text), EXTERNAL.findall(page.text)
        linked = set(re.findall(r"""(?:src|href)="([^"]+)\"""", page.text))
        assert linked == {f"/docs/{name}" for name in ASSETS}
        for url in linked:
            got = c.get(url)
            assert got.status_code == 200, url
            assert got.headers["content-type"] == ASSETS[url.rsplit("/", 1)[1]]
        assert b"SwaggerUIBundle" in c.get("/docs/swagger-ui-bundle.js").content
        assert c.get("/openapi.json").status_code == 200
        assert c.get("/docs/other.js").status_code == 401  # not an asset: guarded
        assert c.post("/predict", json={}).status_code == 401  # the token still guards the rest


def test_docs_follow_the_root_path_behind_a_proxy(world: World, tmp_path: Path) -> None:
    settings = ServeSettings(
        model=f"{NAME}@champion", tracking_uri=world.tracking_uri, log_path=str(tmp_path / "l")
    )
    with TestClient(create_app(settings), root_path="/models/penguins") as c:
        page = c.get("/docs").text
        assert c.get("/docs/other.js").status_code == 404
        assert c.get("/redoc").status_code == 404  # a page from a CDN: not served
    assert "url: '/models/penguins/openapi.json'" in page
    assert 'src="/models/penguins/docs/swagger-ui-bundle.js"' in page


def test_the_example_is_the_contracts_typical_row() -> None:
    contract = load_penguins().contract
    typical = contract.model_copy(
        update={
            "columns": [
                c.model_copy(update={"typical": {"str": "Biscoe", "int": 197}.get(c.type, 44.5)})
                for c in contract.columns
            ]
        }
    )
    example = example_record(typical)
    assert example == {c.name: c.typical for c in typical.columns if c.role == "feature"}
    schema = request_model(typical).model_json_schema()
    assert schema["example"] == example
    assert example_record(contract) != example  # without typical values: a fallback
