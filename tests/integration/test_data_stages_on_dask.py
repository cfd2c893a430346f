"""The data stages of a table bigger than one batch on a real Dask cluster (``dask scheduler``
+ two ``dask worker`` processes, fixture ``dask_cluster``): every part is processed on the
workers, and the contract, the validation counts and quarantine, the profile and the split are
those of the serial run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

from modelyard import Project
from tests.integration.dask_cluster import DaskCluster

pytestmark = pytest.mark.integration

CONFIG = """\
version: 1
name: dask_data
seed: 5
data:
  source: {{path: {data}}}
  target: y
  batch_rows: 400
validation:
  max_invalid_fraction: 0.2
compute:
{compute}
"""


def _data(path: Path, rows: int = 3_000) -> Path:
    rng = np.random.default_rng(1)
    x = rng.normal(size=rows)
    lines = ["x,n,colour,when,y"]
    for i in range(rows):
        colour = rng.choice(["red", "green", "blue", ""])
        n = "oops" if i % 397 == 5 else str(int(rng.integers(0, 50)))  # invalid for an int
        lines.append(f"{x[i]:.5f},{n},{colour},2024-01-{1 + i % 28:02d},{int(x[i] > 0)}")
        if i % 613 == 7:
            lines.append("1.0,2,red")  # a malformed line: too few fields
    path.write_text("\n".join(lines) + "\n")
    return path


def _project(folder: Path, data: Path, compute: str) -> Project:
    folder.mkdir(parents=True)
    (folder / "modelyard.yaml").write_text(CONFIG.format(data=data, compute=compute))
    return Project.from_yaml(folder / "modelyard.yaml")


def _outcome(result: Any) -> dict[str, Any]:
    validated = result.output("validate")
    split = result.output("split")
    tables = {name: getattr(split, name) for name in ("train_table", "test_table")}
    return {
        "contract": result.output("contract").model_dump(),
        "report": validated.report.model_dump(),
        "valid": validated.valid.collect(),
        "quarantine": validated.quarantine.collect(),
        "profile": result.output("profile").model_dump(),
        "split": {k: (v.collect() if v is not None else None) for k, v in tables.items()},
        "sample": (split.train, split.test),
    }


def _equal(a: Any, b: Any) -> bool:
    if isinstance(a, pl.DataFrame):
        return isinstance(b, pl.DataFrame) and a.equals(b)
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def test_the_data_stages_on_a_dask_cluster_equal_the_serial_run(
    dask_cluster: DaskCluster, tmp_path: Path
) -> None:
    dask_cluster.wait_for_workers(2)
    data = _data(tmp_path / "data.csv")
    address = dask_cluster.address
    on_dask = _project(tmp_path / "dask", data, f"  executor: dask\n  address: {address}")
    serial = _project(tmp_path / "serial", data, "  executor: serial")
    a, b = on_dask.run(until="split"), serial.run(until="split")
    assert a.output("ingest").rows.parts().__len__() > 1  # several parts: the streaming path
    ours, theirs = _outcome(a), _outcome(b)
    for key in ours:
        assert _equal(ours[key], theirs[key]), key
    report = a.output("validate").report
    malformed = sum(1 for i in range(3_000) if i % 613 == 7)
    assert report.rows == 3_000 + malformed
    assert report.rows == report.valid_rows + report.invalid_rows + report.missing_target_rows
    assert report.valid_rows == a.output("validate").valid.num_rows
