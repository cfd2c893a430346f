"""The promotion gate as a user meets it through the CLI: a leaky column left out, a perfect model
refused, a forced promote, a champion the new data cannot feed, latency recorded and enforced,
and a register killed by SIGKILL failed and cleaned up by the next run."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import time
from pathlib import Path
from typing import Any

import yaml

from tests.e2e.test_cli import EXE, modelyard

CONFIG = """\
version: 1
name: {name}
seed: 7
data:
  source:
    path: {file}
  target: {target}
models:
  candidates: [linear]
tuning:
  top_k: 0
split:
  cv_folds: 3
evaluation:
  permutation_importance: false
"""


def _project(folder: Path, data: Path, name: str, target: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(data, folder / data.name)
    (folder / "modelyard.yaml").write_text(CONFIG.format(name=name, file=data.name, target=target))
    return folder


def _run(folder: Path) -> dict[str, Any]:
    done = modelyard("run", "--json", cwd=folder)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def _edit(folder: Path, change: dict[str, Any]) -> None:
    path = folder / "modelyard.yaml"
    config = yaml.safe_load(path.read_text())
    for dotted, value in change.items():
        *parents, key = dotted.split(".")
        node = config
        for part in parents:
            node = node.setdefault(part, {})
        node[key] = value
    path.write_text(yaml.safe_dump(config, sort_keys=False))


def _signature_inputs(folder: Path, run_id: str) -> list[str]:
    """The input columns of the registered model's signature (its MLmodel file)."""
    for mlmodel in (folder / ".modelyard" / "mlartifacts").glob("**/MLmodel"):
        meta = yaml.safe_load(mlmodel.read_text())
        if meta.get("run_id") == run_id:
            return [col["name"] for col in json.loads(meta["signature"]["inputs"])]
    raise AssertionError(f"no model of run {run_id}")


def test_titanic_leak_is_left_out_a_perfect_model_refused_and_a_changed_champion_not_comparable(
    tmp_path: Path, shared_data: Path
) -> None:
    folder = _project(tmp_path / "titanic", shared_data / "titanic.csv", "titanic", "survived")

    # 1. 'alive' is 'survived' spelled yes/no: left out of the model, and the report says so
    first = _run(folder)
    assert "modeling_contract" in [s["name"] for s in first["steps"]]
    assert list(first["excluded_features"]) == ["alive"]
    assert "determines the target 'survived'" in first["excluded_features"]["alive"]
    decision = first["registration"]["decision"]
    assert decision["promote"] and 0.7 < decision["candidate"] < 0.99
    assert "alive" not in _signature_inputs(folder, first["registration"]["run_id"])
    report = json.loads((folder / "modelyard-out" / "report.json").read_text())
    assert [x["name"] for x in report["features"]["excluded"]] == ["alive"]
    assert 'data-excluded="alive"' in (folder / "modelyard-out" / "report.html").read_text()
    shown = json.loads(modelyard("models", "show", "1", "--json", cwd=folder).stdout)
    p99 = float(shown["tags"]["modelyard.latency.p99_ms"])
    assert p99 > 0 and abs(shown["metrics"]["latency_p99_ms"] - p99) < 1e-4
    assert first["registration"]["latency"]["rows"] == 179  # the whole test split

    # 2. the user keeps it: a perfect model, refused while the leakage alert stands
    _edit(folder, {"features.allow_leaky": ["alive"]})
    second = _run(folder)
    assert second["excluded_features"] == {}
    decision = second["registration"]["decision"]
    assert not decision["promote"] and decision["perfect"]["roc_auc"] == 1.0
    (failed,) = decision["failed"]
    assert "implausibly perfect" in failed and "'alive'" in failed
    assert "alive" in _signature_inputs(folder, second["registration"]["run_id"])

    # 3. promoting it by hand needs --force, and the audit log says it was forced
    plain = modelyard("models", "promote", "2", "--reason", "demo", cwd=folder)
    assert plain.returncode == 2 and "Traceback" not in plain.stderr
    assert "refused by the promotion gate" in plain.stderr and "--force" in plain.stderr
    forced = modelyard("models", "promote", "2", "--reason", "demo", "--force", cwd=folder)
    assert forced.returncode == 0, forced.stderr
    assert "forced past the promotion gate" in forced.stdout
    history = modelyard("models", "history", cwd=folder).stdout.splitlines()
    assert "promote (forced)" in history[-2] and "1 -> 2" in history[-2]
    audit = [json.loads(line) for line in (folder / ".modelyard" / "audit.jsonl").open()]
    assert [e["forced"] for e in audit if e["alias"] == "champion"] == [False, True]

    # 4. the column is dropped from the data: the champion (it takes 'alive') cannot be scored
    #    on the new test rows; no crash, "not comparable", and a latency limit enforced
    _edit(folder, {"features.allow_leaky": [], "data.columns": {"drop": ["alive"]}})
    _edit(folder, {"gate.max_p99_ms": 0.0001})
    contract = yaml.safe_load((folder / "contract.yaml").read_text())
    contract["columns"] = [c for c in contract["columns"] if c["name"] != "alive"]
    (folder / "contract.yaml").write_text(yaml.safe_dump(contract, sort_keys=False))
    third = _run(folder)
    decision = third["registration"]["decision"]
    assert not decision["promote"] and not decision["champion_comparable"]
    assert decision["failed"][0] == (
        "the champion is not comparable: version 2 takes 'alive', which the new test data "
        "lacks (gate.champion_not_comparable is refuse: promote by hand with --force)"
    )
    assert decision["failed"][1].endswith("ms exceeds 0.0001 ms (gate.max_p99_ms)")
    listed = json.loads(modelyard("models", "list", "--json", cwd=folder).stdout)
    assert [(v["version"], v["aliases"], v["gate"]) for v in listed] == [
        ("1", [], "promoted"),
        ("2", ["champion"], "rejected"),
        ("3", ["challenger"], "rejected"),
    ]
    assert all(v["p99_ms"] > 0 for v in listed)


def _runs(db: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(db, timeout=30) as con:
        return list(con.execute("select run_uuid, status from runs order by start_time"))


def test_a_run_killed_mid_register_is_marked_failed_and_cleaned_by_the_next(
    tmp_path: Path, shared_data: Path
) -> None:
    folder = _project(tmp_path / "penguins", shared_data / "penguins.csv", "penguins", "species")
    assert modelyard("run", "--until", "evaluate", cwd=folder).returncode == 0
    db = folder / ".modelyard" / "mlflow.db"
    proc = subprocess.Popen(
        [EXE, "run"], cwd=folder, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 300
        running: list[tuple[str, str]] = []
        while not running:  # the register's MLflow run exists: kill it there, for real
            assert proc.poll() is None, f"the run ended before it was killed: {proc.stderr}"
            assert time.monotonic() < deadline, "the register never started its MLflow run"
            try:
                running = [r for r in _runs(db) if r[1] == "RUNNING"] if db.exists() else []
            except sqlite3.OperationalError:  # the database is being created or locked
                running = []
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    (killed_id, _), *_ = running
    assert _runs(db) == [(killed_id, "RUNNING")]  # left behind, as the issue saw it

    result = _run(folder)
    assert [s["name"] for s in result["steps"] if s["status"] == "ran"] == ["register"]
    registration = result["registration"]
    runs = dict(_runs(db))
    assert runs[killed_id] == "FAILED"
    assert runs[registration["run_id"]] == "FINISHED"
    assert registration["recovered_runs"] == [killed_id]
    with sqlite3.connect(db) as con:
        (why,) = con.execute(
            "select value from tags where run_uuid = ? and key = 'modelyard.interrupted'",
            (killed_id,),
        ).fetchone()
        statuses = {s for (s,) in con.execute("select status from logged_models")}
        aliases = dict(con.execute("select alias, version from registered_model_aliases"))
    assert f"process {proc.pid}" in why
    assert statuses <= {2, 3}  # READY or FAILED (MLflow's codes); none left PENDING (1)
    staging = folder / ".modelyard" / "staging"
    assert not [p for p in staging.iterdir() if p.name.startswith(f"{proc.pid}-")]
    assert aliases == {"champion": int(registration["version"])}
