"""A tiny trained project for the batch-scoring tests: penguins with an ``id`` column (so the
contract has a ``unique`` column), a declared check, and inputs that break, drift and repeat.

Also a script: ``python -m tests.unit.ops._predict_project YAML DATA OUT MARKER WHERE
BATCH_ROWS`` runs ``Project.predict`` and, at ``WHERE`` (``scoring``: after the second batch;
``publish``: the output's temporary file written, before its rename), writes its pid to
MARKER and sleeps until it is killed.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

import polars as pl

CONFIG = """\
version: 1
name: scoring
seed: 0
data:
  source: {{path: train.csv}}
  target: species
  columns: {{id: [id]}}
validation:
  checks: [{{column: bill_length_mm, min: 0}}]
compute: {{executor: {executor}, workers: 2}}
models: {{candidates: [dummy, linear], ensemble: false, cv_sample: 2000}}
tuning: {{top_k: 0}}
evaluation: {{permutation_importance: false, threshold: default}}
"""


def penguins(shared_data: Path) -> pl.DataFrame:
    """The penguins, as text (as a CSV is read), with an ``id`` column first."""
    frame = pl.read_csv(shared_data / "penguins.csv", infer_schema=False)
    return frame.with_row_index("id").with_columns(pl.col("id").cast(pl.String))


def trained(root: Path, shared_data: Path) -> Path:
    """``root/modelyard.yaml``, trained and registered (version 1, the champion)."""
    from modelyard import Project

    penguins(shared_data).write_csv(root / "train.csv")
    yaml = root / "modelyard.yaml"
    yaml.write_text(CONFIG.format(executor="serial"))
    result = Project.from_yaml(yaml).run()
    assert result.registration is not None and result.registration.version == "1"
    return yaml


def scoring_input(shared_data: Path, copies: int = 3, *, labelled: bool = False) -> pl.DataFrame:
    """``copies`` x the penguins (ids made unique), then: text in a number column and a
    negative length (invalid: quarantined), a flipper length and an island unlike the
    training data (drift: scored, flagged), and ids repeated within and across stretches of
    the file (duplicates of a ``unique`` column: quarantined, the first one kept)."""
    base = penguins(shared_data)
    frame = pl.concat(
        [base.with_columns((pl.col("id").cast(pl.Int64) + k * 1000).cast(pl.String))
         for k in range(copies)]
    )  # fmt: skip
    n = frame.height
    col = {name: frame[name].to_list() for name in frame.columns}
    for i in range(5, n, 97):
        col["bill_length_mm"][i] = "abc"
    for i in range(11, n, 131):
        col["bill_length_mm"][i] = "-3.5"
    for i in range(17, n, 89):
        col["flipper_length_mm"][i] = "999"
    for i in range(23, n, 113):
        col["island"][i] = "Atlantis"
    for i in range(40, n, 71):
        col["id"][i] = col["id"][i - 37]  # a repeat 37 rows later
    col["id"][n - 1] = col["id"][0]  # the last row repeats the first
    out = pl.DataFrame(col)
    return out if labelled else out.drop("species")


def predict(
    yaml: Path, data: Path, out: Path, *, executor: str = "serial", address: str | None = None,
    **kw: Any,
) -> Any:  # fmt: skip
    """``Project.predict`` with ``compute.executor`` set to ``executor`` (and ``address``)."""
    from modelyard import Project
    from modelyard.config.schema import ComputeSection

    project = Project.from_yaml(yaml)
    compute = ComputeSection(executor=executor, workers=2, address=address)
    project = Project(project.config.model_copy(update={"compute": compute}), config_path=yaml)
    return project.predict(data, out=out, **kw)


def _main(yaml: str, data: str, out: str, marker: str, where: str, batch_rows: str) -> None:
    def stop() -> None:
        Path(marker).write_text(str(os.getpid()))
        while True:
            time.sleep(1)

    def progress(done: int, read: int) -> None:
        if where == "scoring" and done >= 2 * int(batch_rows):
            stop()

    if where == "publish":
        replace = Path.replace

        def replace_then_wait(self: Path, target: Any) -> Any:
            if Path(target).name == Path(out).name:
                stop()
            return replace(self, target)

        Path.replace = replace_then_wait  # type: ignore[method-assign]
    predict(Path(yaml), Path(data), Path(out), batch_rows=int(batch_rows), progress=progress)


if __name__ == "__main__":
    _main(*sys.argv[1:])
