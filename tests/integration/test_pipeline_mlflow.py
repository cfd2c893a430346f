"""The whole pipeline against a real MLflow server; the gate, rollback and the audit log."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from modelyard import Project

pytestmark = pytest.mark.integration

CONFIG = """\
version: 1
name: penguins_pipeline
seed: 7
data:
  source:
    path: {data}/penguins.csv
  target: species
models:
  candidates: [{candidates}]
  cv_sample: 300
tuning:
  top_k: {top_k}
  n_trials: 3
split:
  cv_folds: 3
evaluation:
  permutation_importance: false
tracking:
  uri: {uri}
gate:
  min_metric: 0.5
"""


def write_config(
    folder: Path,
    data: Path,
    *,
    uri: str = "null",
    candidates: str = "dummy, linear",
    top_k: int = 1,
) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "modelyard.yaml"
    path.write_text(CONFIG.format(data=data, uri=uri, candidates=candidates, top_k=top_k))
    return path


def test_pipeline_registers_on_a_real_server_and_the_champion_loads_by_alias(
    mlflow_server: str, shared_data: Path, tmp_path: Path
) -> None:
    project = Project.from_yaml(write_config(tmp_path / "p", shared_data, uri=mlflow_server))
    result = project.run()
    reg = result.registration
    assert reg is not None and reg.decision.promote
    assert reg.tracking_uri == mlflow_server
    # the run's own predictions, from the model the pipeline trained
    trained = result.output("train")
    split = result.output("split")
    from modelyard.modeling.features import to_pandas

    X = to_pandas(split.test, result.output("contract"))
    expected = trained.model.predict_proba(X)
    # a fresh process loads the champion by alias from the server, as a user would
    X.to_parquet(tmp_path / "X.parquet")
    code = textwrap.dedent(
        f"""
        import json, mlflow.pyfunc, pandas as pd
        mlflow.set_tracking_uri({mlflow_server!r})
        model = mlflow.pyfunc.load_model("models:/{reg.model_name}@champion")
        out = model.predict(pd.read_parquet({str(tmp_path / "X.parquet")!r}))
        print(json.dumps(out[[c for c in out.columns if c.startswith("proba_")]].values.tolist()))
        """
    )
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"}
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    loaded = np.array(json.loads(done.stdout.strip().splitlines()[-1]))
    np.testing.assert_allclose(loaded, expected, rtol=1e-12)

    # every configuration the search tried is a child run of the pipeline's run
    from mlflow.tracking import MlflowClient

    client = MlflowClient(mlflow_server)
    parent = client.get_run(reg.run_id)
    children = client.search_runs(
        [parent.info.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{reg.run_id}'"
    )
    board = result.output("explore").leaderboard
    trials = result.output("tune").rows
    assert len(children) == len(board.rows) + len(trials) > 2
    by_name = {c.info.run_name: c for c in children}
    best = board.best
    assert best is not None
    child = by_name[best.name]
    assert child.data.metrics["cv_f1_macro"] == pytest.approx(best.mean)
    assert child.data.tags["modelyard.stage"] == "explore"
    assert child.info.status == "FINISHED"
    assert {c.data.tags["modelyard.stage"] for c in children} == {"explore", "tune"}


def test_a_worse_model_is_not_promoted_and_rollback_restores_the_previous_champion(
    shared_data: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "gate"
    first = Project.from_yaml(write_config(folder, shared_data)).run()
    assert first.registration is not None and first.registration.decision.promote
    # the same project, now only allowed the dummy baseline: worse on the same test rows
    worse = Project.from_yaml(write_config(folder, shared_data, candidates="dummy", top_k=0)).run()
    decision = worse.registration.decision if worse.registration else None
    assert decision is not None and not decision.promote
    assert any("champion" in r for r in decision.reasons)
    registry = Project.from_yaml(folder / "modelyard.yaml").registry()
    assert registry.champion().version == "1"
    assert registry.challenger().version == "2"
    # promote the worse one by hand (the gate refused it: --force), then roll back
    from modelyard.errors import ModelyardError

    with pytest.raises(ModelyardError, match="refused by the promotion gate"):
        registry.promote("2", reason="trying it", command="test")
    registry.promote("2", reason="trying it", command="test", force=True)
    assert registry.champion().version == "2"
    registry.rollback(command="test rollback")
    assert registry.champion().version == "1"
    log = [
        json.loads(line)
        for line in (folder / ".modelyard" / "audit.jsonl").read_text().splitlines()
    ]
    moves = [(e["alias"], e["from_version"], e["to_version"], e["action"]) for e in log]
    assert ("champion", None, "1", "gate") in moves
    assert ("challenger", None, "2", "gate") in moves
    assert ("champion", "1", "2", "promote") in moves
    assert [e["forced"] for e in log if e["action"] == "promote" and e["alias"] == "champion"] == [
        True
    ]
    assert moves[-1][:3] == ("champion", "2", "1") and moves[-1][3] == "rollback"


def test_unchanged_rerun_trains_nothing_and_a_bigger_budget_reruns_tuning_onwards(
    shared_data: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "cache"
    config = write_config(folder, shared_data)
    Project.from_yaml(config).run()
    again = Project.from_yaml(config).run()
    assert again.ran == []
    config.write_text(config.read_text().replace("n_trials: 3", "n_trials: 5"))
    third = Project.from_yaml(config).run()
    assert third.ran[0] == "tune"
    assert set(third.ran) <= {"tune", "train", "evaluate", "register"}
    assert "explore" in third.cached and "profile" in third.cached
