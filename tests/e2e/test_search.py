"""The model search as a user runs it: a study killed mid-way resumes to the same result, the
wall-clock budget mode says why it stopped, a group split cross-validates by group."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from tests.e2e.test_cli import EXE, modelyard

pytestmark = pytest.mark.e2e

SEARCH = """\
version: 1
name: resume
seed: 7
data:
  source: {builtin: breast_cancer}
  target: target
models:
  candidates: [dummy, linear, lightgbm]
tuning:
  top_k: 2
  n_trials: 8
compute:
  executor: local
  workers: 2
"""


def _project(folder: Path, text: str = SEARCH) -> Path:
    folder.mkdir(parents=True)
    (folder / "modelyard.yaml").write_text(text)
    return folder


def _search_result(folder: Path) -> dict[str, object]:
    report = json.loads((folder / "modelyard-out" / "report.json").read_text())
    tuning = [
        {"name": t["name"], "history": [(h["number"], h["state"], h["value"], h["params"])
                                        for h in t["history"]]}
        for t in report["tuning"]
    ]  # fmt: skip
    choice = {k: report["choice"][k] for k in ("name", "score", "members")}
    return {"tuning": tuning, "choice": choice}


def test_a_study_killed_mid_way_resumes_to_the_result_of_an_uninterrupted_one(
    tmp_path: Path,
) -> None:
    whole = _project(tmp_path / "whole")
    done = modelyard("run", "--until", "train", cwd=whole)
    assert done.returncode == 0, done.stderr

    killed = _project(tmp_path / "killed")
    process = subprocess.Popen(
        [EXE, "run", "--until", "train"], cwd=killed, stderr=subprocess.PIPE, text=True,
        start_new_session=True, env={**os.environ, "NO_COLOR": "1"},
    )  # fmt: skip
    assert process.stderr is not None
    trials_seen = 0
    deadline = time.monotonic() + 240
    for line in process.stderr:  # one line per finished configuration ("tune: ... trial ...")
        if line.strip().startswith("tune:") and " trial " in line:
            trials_seen += 1
            if trials_seen == 5:
                os.killpg(process.pid, signal.SIGKILL)
                break
        assert time.monotonic() < deadline, "tuning never started"
    process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL, "the run finished before it could be killed"

    resumed = modelyard("run", "--until", "train", "--json", cwd=killed)
    assert resumed.returncode == 0, resumed.stderr
    steps = {s["name"]: s["status"] for s in json.loads(resumed.stdout)["steps"]}
    assert steps["explore"] == "cached" and steps["tune"] == "ran"
    assert _search_result(killed) == _search_result(whole)


def test_the_budget_mode_reports_how_the_search_ran_and_prints_progress(tmp_path: Path) -> None:
    config = yaml.safe_load(SEARCH)
    del config["tuning"]["n_trials"]
    config["models"]["budget"] = "20s"
    folder = _project(tmp_path / "budget", yaml.safe_dump(config))
    plan = modelyard("run", "--dry-run", cwd=folder)
    assert "model search: 20 s (models.budget)" in plan.stdout
    run = modelyard("run", "--until", "train", cwd=folder)
    assert run.returncode == 0, run.stderr
    lines = [line for line in run.stderr.splitlines() if line.strip().startswith("explore:")]
    assert len(lines) >= 3  # without a terminal: one line per finished model
    report = json.loads((folder / "modelyard-out" / "report.json").read_text())
    search = report["leaderboard"]["search"]
    assert search["mode"] == "budget" and search["budget_seconds"] == 20
    assert search["stopped_by"] in ("done", "budget")
    assert search["executor"] == "local, 2 workers"
    assert report["choice"]["members"]


def test_a_group_split_cross_validates_by_group(tmp_path: Path, shared_data: Path) -> None:
    """issue 11 item 2: the group split failed at explore (the CV splitter had no groups). On
    penguins by island, the test island holds a species the training islands never had: the
    evaluation says so instead of failing."""
    text = f"""\
version: 1
name: groups
data:
  source:
    path: {shared_data / "penguins.csv"}
    read: {{null_values: ["NA"]}}
  target: species
split:
  method: group
  group_column: island
  cv_folds: 2
models:
  candidates: [dummy, linear, lightgbm]
tuning:
  top_k: 0
  n_trials: 2
"""
    folder = _project(tmp_path / "groups", text)
    run = modelyard("run", "--until", "evaluate", cwd=folder)
    assert run.returncode == 0, run.stderr
    report = json.loads((folder / "modelyard-out" / "report.json").read_text())
    assert report["split"]["method"] == "group"
    assert report["leaderboard"]["n_folds"] == 2
    evaluation = report["evaluation"]
    assert evaluation["rows"] > 0 and "accuracy" in evaluation["metrics"]
    test_species = {"Biscoe": "Gentoo", "Dream": "Chinstrap"}  # each only on that island
    assert set(evaluation["unseen_classes"]) <= set(test_species.values())


def test_an_unknown_executor_is_a_config_error(tmp_path: Path) -> None:
    folder = _project(tmp_path / "bad", SEARCH.replace("executor: local", "executor: sparks"))
    run = modelyard("run", "--dry-run", cwd=folder)
    assert run.returncode == 2
    assert "compute.executor" in run.stderr and "Traceback" not in run.stderr
