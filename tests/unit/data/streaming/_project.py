"""A tiny streaming project: a contract file and a modelyard.yaml with an ``ingest`` section."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from modelyard.config.loader import load_config
from modelyard.config.schema import ProjectConfig
from modelyard.data.contract import ColumnContract, DataContract, contract_to_yaml

CONTRACT = DataContract(
    columns=[
        ColumnContract(name="id", type="int", nullable=False),
        ColumnContract(name="x", type="float", nullable=False, min=0, max=100),
        ColumnContract(name="label", type="str", nullable=True, categories=["a", "b"]),
    ]
)


def write_project(root: Path, ingest: dict[str, Any]) -> ProjectConfig:
    """modelyard.yaml + contract.yaml under ``root``; returns the loaded config."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "contract.yaml").write_text(contract_to_yaml(CONTRACT), encoding="utf-8")
    (root / "seed.csv").write_text("id,x,label\n1,1.0,a\n", encoding="utf-8")
    doc = {
        "version": 1,
        "name": "stream",
        "data": {"source": {"path": "seed.csv"}},
        "ingest": ingest,
    }
    (root / "modelyard.yaml").write_text(yaml.safe_dump(doc), encoding="utf-8")
    return load_config(root / "modelyard.yaml")


def message(i: int, **overrides: Any) -> bytes:
    record = {"id": i, "x": float(i % 100), "label": "ab"[i % 2], **overrides}
    return json.dumps(record).encode()
