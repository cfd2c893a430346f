"""`modelyard ingest --follow` on a watched folder, then the pipeline trains on the dataset."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import polars as pl

from tests.e2e.test_cli import modelyard

CONFIG = """\
version: 1
name: penguins_stream
data:
  source:
    dataset: data/ingested
  target: species
contract:
  path: contract.yaml
ingest:
  from: incoming
  format: csv
  read: {null_values: ["NA"]}
  max_rows: 100
  max_seconds: 1
  poll_seconds: 0.2
  settle_seconds: 0
  dataset: data/ingested
"""


def test_watched_folder_is_ingested_once_and_feeds_the_pipeline(
    tmp_path: Path, shared_data: Path
) -> None:
    penguins = pl.read_csv(shared_data / "penguins.csv", infer_schema=False)
    # the contract comes from a reference run on the first half
    (tmp_path / "reference.csv").write_text(penguins.head(172).write_csv())
    (tmp_path / "modelyard.yaml").write_text(
        CONFIG.replace("dataset: data/ingested\n  target", "path: reference.csv\n  target", 1)
    )
    assert modelyard("run", "--until", "contract", cwd=tmp_path).returncode == 0
    assert (tmp_path / "contract.yaml").is_file()
    (tmp_path / "modelyard.yaml").write_text(CONFIG)

    incoming = tmp_path / "incoming"
    incoming.mkdir()
    (incoming / "a.csv").write_text(penguins.slice(172, 100).write_csv())
    bad = penguins.slice(272, 72).with_columns(
        pl.when(pl.int_range(pl.len()) == 0)
        .then(pl.lit("heavy"))
        .otherwise(pl.col("body_mass_g"))
        .alias("body_mass_g")
    )
    (incoming / "b.csv").write_text(bad.write_csv())
    done = modelyard("ingest", "--follow", "--until-idle", "2", "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    stats = json.loads(done.stdout)
    assert stats["records"] == 172
    assert stats["quarantined"] >= 1  # "heavy" is not a number

    again = json.loads(
        modelyard("ingest", "--follow", "--until-idle", "1", "--json", cwd=tmp_path).stdout
    )
    assert again["records"] == 0  # each file is ingested once

    shutil.copy(incoming / "a.csv", incoming / "c.csv")  # a new file arrives
    third = json.loads(
        modelyard("ingest", "--follow", "--until-idle", "2", "--json", cwd=tmp_path).stdout
    )
    assert third["records"] == 100

    run = modelyard("run", "--until", "validate", "--json", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)["validation"]["train"]
    assert report["rows"] == stats["valid"] + third["valid"]
