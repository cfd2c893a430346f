"""The committed reference and JSON Schema are exactly what the schema generates."""

from __future__ import annotations

import json
from pathlib import Path

from modelyard.config.reference import json_schema, markdown_reference

DOCS = Path(__file__).resolve().parents[3] / "docs"
REGENERATE = "regenerate with: uv run python -m modelyard.config.reference docs"


def test_configuration_reference_is_current() -> None:
    assert (DOCS / "configuration.md").read_text() == markdown_reference(), REGENERATE


def test_json_schema_is_current_and_forbids_unknown_keys() -> None:
    committed = json.loads((DOCS / "modelyard.schema.json").read_text())
    assert committed == json_schema(), REGENERATE
    assert committed["additionalProperties"] is False
    assert {"version", "name", "data"} <= set(committed["required"])
