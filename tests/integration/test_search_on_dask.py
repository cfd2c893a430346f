"""The model search on a real Dask cluster (``dask scheduler`` + two ``dask worker`` processes,
fixture ``dask_cluster``): the same results as serial, and a worker killed mid-search costs no
run."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from modelyard import Project
from tests.integration.dask_cluster import DaskCluster

pytestmark = pytest.mark.integration

CONFIG = """\
version: 1
name: dask_search
seed: 11
data:
  source:
    path: {data}/penguins.csv
    read: {{null_values: ["NA"]}}
  target: species
split:
  cv_folds: 3
models:
  candidates: [dummy, linear, lightgbm, xgboost, extra_trees]
tuning:
  top_k: 1
  n_trials: 4
evaluation:
  permutation_importance: false
compute:
{compute}
"""


def _project(folder: Path, data: Path, compute: str) -> Project:
    folder.mkdir(parents=True)
    (folder / "modelyard.yaml").write_text(CONFIG.format(data=data, compute=compute))
    return Project.from_yaml(folder / "modelyard.yaml")


def _outcome(result: Any) -> Any:
    board = result.output("explore").leaderboard
    tuning = result.output("tune").results
    choice = result.output("train").choice
    return (
        [(r.name, r.state, r.scores, r.params) for r in board.rows],
        [(t.name, [(h.number, h.value, h.params) for h in t.history]) for t in tuning],
        (choice.name, choice.score, [(m.key, m.weight) for m in choice.members]),
    )


def test_the_search_on_a_dask_cluster_equals_serial(
    dask_cluster: DaskCluster, shared_data: Path, tmp_path: Path
) -> None:
    dask_cluster.wait_for_workers(2)
    on_dask = _project(
        tmp_path / "dask", shared_data, f"  executor: dask\n  address: {dask_cluster.address}"
    ).run(until="train")
    serial = _project(tmp_path / "serial", shared_data, "  executor: serial").run(until="train")
    assert _outcome(on_dask) == _outcome(serial)
    search = on_dask.output("explore").leaderboard.search
    assert search is not None and dask_cluster.address in search.executor


def test_a_worker_killed_mid_search_costs_no_run(
    dask_cluster: DaskCluster, shared_data: Path, tmp_path: Path
) -> None:
    dask_cluster.wait_for_workers(2)
    project = _project(
        tmp_path / "killed", shared_data, f"  executor: dask\n  address: {dask_cluster.address}"
    )
    killed = threading.Event()

    def listener(event: Any) -> None:  # kill a worker once exploration has fitted a model
        from modelyard.engine.events import StepProgress

        first = isinstance(event, StepProgress) and event.step == "explore" and event.note
        if first and not killed.is_set():
            killed.set()
            dask_cluster.kill_worker(0)

    result = project.run(until="train", listener=listener)
    assert killed.is_set()
    board = result.output("explore").leaderboard
    assert {r.state for r in board.rows} <= {"complete", "pruned", "failed"}
    for row in board.rows:  # a fit on the lost worker is re-run elsewhere, or recorded
        assert row.state != "failed" or "worker" in (row.error or "").lower()
    assert result.output("train").choice.members
