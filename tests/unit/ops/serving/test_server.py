"""Server settings from modelyard.yaml."""

from __future__ import annotations

import json
import os
from pathlib import Path

from modelyard.config.loader import load_config
from modelyard.config.schema import Check
from modelyard.ops.serving.app import ServeSettings
from modelyard.ops.serving.server import settings_from_config
from tests.unit.ops.serving._world import NAME, World


def test_the_declared_checks_travel_to_the_server_processes(tmp_path: Path) -> None:
    (tmp_path / "modelyard.yaml").write_text(
        "version: 1\nname: p\ndata: {source: {builtin: iris}}\n"
        "validation:\n  checks:\n"
        "    - {column: species, in: [setosa, versicolor, virginica]}\n"
        "    - {expression: 'petal_length > 0', name: positive}\n"
    )
    config = load_config(tmp_path / "modelyard.yaml")
    settings, _, _ = settings_from_config(config)
    again = ServeSettings.from_json(settings.to_json())  # what a worker process reads
    checks = [Check.model_validate(c) for c in again.checks]
    assert checks == list(config.validation.checks)
    assert json.loads(settings.to_json())["checks"][0] == {
        "column": "species",
        "in": ["setosa", "versicolor", "virginica"],
    }
    assert settings_from_config(None, model="m/1")[0].checks == []


def test_the_build_context_serves_with_the_declared_checks(world: World, tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from modelyard.ops.packaging import package
    from modelyard.ops.registry import parse_model_ref
    from modelyard.ops.serving.app import SETTINGS_FILE_ENV, create_app_from_env
    from modelyard.ops.serving.model import fetch_model

    local, facts = fetch_model(parse_model_ref(f"{NAME}@champion"), world.tracking_uri, tmp_path)
    checks = [{"column": "bill_length_mm", "max": 55}]
    out = tmp_path / "context"
    package(local, out, name=NAME, version=str(facts["version"]), checks=checks)
    assert json.loads((out / "serve.json").read_text())["checks"] == checks
    settings_file = out / "serve.json"
    settings = json.loads(settings_file.read_text())
    settings["model"] = str(out / "model")
    settings_file.write_text(json.dumps(settings))
    old = os.environ.get(SETTINGS_FILE_ENV)
    os.environ[SETTINGS_FILE_ENV] = str(settings_file)
    try:
        with TestClient(create_app_from_env()) as client:
            res = client.post("/predict", json={"bill_length_mm": 58.0})
            assert res.status_code == 422, res.text
            assert res.json()["errors"][0]["check"] == "bill_length_mm.max"
    finally:
        if old is None:
            os.environ.pop(SETTINGS_FILE_ENV)
        else:
            os.environ[SETTINGS_FILE_ENV] = old
