"""Tables bigger than one batch, as a user runs them: a run killed mid-ingest leaves no partial
dataset and the next run completes it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from tests.conftest import assert_packed
from tests.e2e.test_cli import EXE, modelyard

pytestmark = pytest.mark.e2e

PROJECT = """\
version: 1
name: big
seed: 3
data:
  source: {{path: data.csv}}
  target: y
  batch_rows: {batch}
compute:
  executor: serial
"""


def _write_csv(path: Path, rows: int) -> None:
    rng = np.random.default_rng(0)
    frame = pl.DataFrame(
        {
            "a": rng.normal(size=rows).round(4),
            "b": rng.integers(0, 1000, rows),
            "c": rng.choice(["red", "green", "blue"], rows),
            "y": rng.integers(0, 2, rows),
        }
    )
    frame.write_csv(path)


def test_a_run_killed_mid_ingest_leaves_no_partial_dataset_and_resumes(tmp_path: Path) -> None:
    rows = 400_000
    _write_csv(tmp_path / "data.csv", rows)
    (tmp_path / "modelyard.yaml").write_text(PROJECT.format(batch=2_000))
    workdir = tmp_path / ".modelyard"
    process = subprocess.Popen(
        [EXE, "run", "--until", "ingest"], cwd=tmp_path, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, start_new_session=True, env={**os.environ, "NO_COLOR": "1"},
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while not list(workdir.glob("tmp/scratch-ingest-*/rows/part-00001.parquet")):
        assert process.poll() is None, "the ingest finished before it could be killed"
        assert time.monotonic() < deadline, "the ingest never wrote a part"
        time.sleep(0.005)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL
    assert not list(workdir.glob("artifacts/ingest/*/meta.json")), "a partial dataset was kept"
    leftovers = list(workdir.glob("tmp/scratch-ingest-*"))
    assert leftovers, "the killed run left nothing behind: was it killed mid-ingest?"

    resumed = modelyard("run", "--until", "ingest", "--json", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    steps = {s["name"]: s["status"] for s in json.loads(resumed.stdout)["steps"]}
    assert steps == {"ingest": "ran"}
    assert not any(folder.exists() for folder in leftovers), "the next run cleared them"
    (artifact,) = workdir.glob("artifacts/ingest/*")
    parts = sorted(artifact.glob("value.rows/part-*.parquet"))
    sizes = [pl.scan_parquet(p).select(pl.len()).collect().item() for p in parts]
    assert sum(sizes) == rows
    assert_packed(sizes, 2_000)
