"""Tracking + registry on the embedded SQLite store: versions, aliases, rollback, audit, loading.

MLflow operations cost seconds here (the first one creates the database), so one module-scoped
fixture logs the two versions every test reads; the tests run in file order on that state.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from modelyard.config.schema import GateSection, TrackingSection
from modelyard.errors import ModelyardError
from modelyard.ops.gate import decide
from modelyard.ops.registry import Registry
from modelyard.ops.tracking import TrackedRun, default_tracking_uri, log_training_run
from tests.unit.ops._penguins import FEATURES, TARGET, Penguins, load_penguins, pipeline

NAME = "penguins"
GATE = GateSection(min_metric=0.5, min_improvement=0.01)


@dataclass
class World:
    data: Penguins
    workdir: Path
    registry: Registry
    runs: list[TrackedRun]
    models: list[Any]
    scores: list[float]


def _log(world_dir: Path, data: Penguins, model: Any, score: float, fingerprint: str) -> TrackedRun:
    return log_training_run(
        tracking=TrackingSection(),
        workdir=world_dir,
        project=NAME,
        params={"model": type(model[-1]).__name__, "split": {"test_size": 0.25}, "token": "***"},
        metrics={"accuracy": score},
        model=model,
        contract=data.contract,
        task="multiclass",
        input_example=data.train[FEATURES].head(5),
        artifacts={"reports/leaderboard.json": json.dumps({"best": 1}), "raw.bin": b"\x00\x01"},
        tags={"data_fingerprint": fingerprint, "code_version": "test"},
    )


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    from sklearn.dummy import DummyClassifier
    from sklearn.linear_model import LogisticRegression

    data = load_penguins()
    workdir = tmp_path_factory.mktemp("project") / ".modelyard"
    from sklearn.pipeline import Pipeline

    from modelyard.config.schema import FeaturesSection
    from modelyard.modeling.features import build_preprocessor

    # version 1: the real modelyard preprocessor (its functions must travel by value)
    real = build_preprocessor(data.contract, FeaturesSection(), task="multiclass")
    models = [
        Pipeline([("features", real), ("model", LogisticRegression(max_iter=500))]).fit(
            data.train[FEATURES], data.train[TARGET]
        ),
        pipeline(DummyClassifier(strategy="prior")).fit(data.train[FEATURES], data.train[TARGET]),
    ]
    scores = [float(m.score(data.test[FEATURES], data.test[TARGET])) for m in models]
    runs = [
        _log(workdir, data, m, s, f"fp{i}")
        for i, (m, s) in enumerate(zip(models, scores, strict=True))
    ]
    registry = Registry(default_tracking_uri(workdir), NAME, workdir / "audit.jsonl")
    return World(data, workdir, registry, runs, models, scores)


def test_runs_are_tracked_under_the_workdir(world: World) -> None:
    first, second = world.runs
    assert (first.registered_version, second.registered_version) == ("1", "2")
    assert first.tracking_uri == f"sqlite:///{world.workdir.resolve()}/mlflow.db"
    assert first.model_uri.startswith("models:/m-")
    client = world.registry.client
    run = client.get_run(first.run_id).data
    assert run.metrics == {"accuracy": world.scores[0]}
    assert run.params["split.test_size"] == "0.25"
    assert run.tags["data_fingerprint"] == "fp0"
    names = {a.path for a in client.list_artifacts(first.run_id)}
    assert {"contract.yaml", "raw.bin", "reports"} <= names
    # artifacts live under the workdir, nowhere else
    model_dir = next((world.workdir / "mlartifacts" / "models").glob("m-*/artifacts"))
    files = {p.name for p in model_dir.iterdir()}
    assert {"MLmodel", "python_model.pkl", "requirements.txt", "contract.yaml"} <= files
    assert not {"uv.lock", "pyproject.toml"} & files  # no stray copy of the repo's uv project
    requirements = (model_dir / "requirements.txt").read_text().split()
    assert any(r.startswith("scikit-learn==") for r in requirements)
    assert any(r.startswith("mlflow-skinny==") for r in requirements)
    assert not any(r.startswith("modelyard") for r in requirements)


def test_versions_carry_lineage_tags(world: World) -> None:
    versions = world.registry.versions()
    assert [v.version for v in versions] == ["1", "2"]
    v1 = world.registry.show("1")
    assert v1.run_id == world.runs[0].run_id
    assert v1.tags["modelyard.run_id"] == world.runs[0].run_id
    assert v1.tags["data_fingerprint"] == "fp0"
    assert v1.tags["code_version"] == "test"
    assert v1.metrics == {"accuracy": world.scores[0]}
    assert v1.created.tzinfo is not None
    assert world.registry.champion() is None


def test_gate_promotes_the_first_and_keeps_the_worse_second_as_challenger(world: World) -> None:
    reg = world.registry
    good, bad = world.scores
    assert bad < good
    first = decide(
        metric="accuracy",
        greater_is_better=True,
        candidate=good,
        champion=None,
        options=GATE,
        data_valid=True,
    )
    reg.apply(first, "1", command="modelyard train")
    second = decide(
        metric="accuracy",
        greater_is_better=True,
        candidate=bad,
        champion=good,
        options=GATE,
        data_valid=True,
    )
    assert not second.promote
    reg.apply(second, "2", command="modelyard train")

    champion, challenger = reg.champion(), reg.challenger()
    assert champion is not None and champion.version == "1"
    assert challenger is not None and challenger.version == "2"
    assert champion.tags["modelyard.gate"] == "promoted"
    v2 = reg.show("2")
    assert v2.aliases == ["challenger"]
    assert v2.tags["modelyard.gate"] == "rejected"
    assert "worse than the champion" in v2.tags["modelyard.gate.reasons"]
    assert v2.tags["modelyard.gate.reasons"].splitlines() == second.reasons


def test_local_code_travels_by_value(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import pickle

    import cloudpickle
    from sklearn.dummy import DummyClassifier
    from sklearn.preprocessing import FunctionTransformer

    from modelyard.ops.pyfunc import ModelyardPyfunc
    from modelyard.ops.tracking import _by_value, pickle_plan

    (tmp_path / "my_local_feats.py").write_text("def double(X):\n    return X * 2\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import my_local_feats  # type: ignore[import-not-found]

    data = load_penguins()
    numeric = data.train[["bill_length_mm"]].fillna(0.0)
    model = pipeline(DummyClassifier())
    model.steps[0] = ("features", FunctionTransformer(my_local_feats.double))
    model.fit(numeric, data.train[TARGET])
    wrapper = ModelyardPyfunc.from_pipeline(model, features=["bill_length_mm"], task="multiclass")

    plan = pickle_plan(wrapper)
    assert plan.by_value == ("modelyard", "my_local_feats")
    assert not any("my_local_feats" in r or "modelyard" in r for r in plan.requirements)
    with _by_value(*plan.by_value):
        blob = cloudpickle.dumps(wrapper)
    monkeypatch.delitem(sys.modules, "my_local_feats")
    (tmp_path / "my_local_feats.py").unlink()
    again = pickle.loads(blob)
    assert again.predict(None, numeric.head(3))["prediction"].tolist() == list(
        model.predict(numeric.head(3))
    )


def test_champion_loads_in_a_fresh_process_without_modelyard(world: World, tmp_path: Path) -> None:
    sample = world.data.test[FEATURES].head(20)
    sample_path = tmp_path / "sample.json"
    sample.to_json(sample_path, orient="split")
    script = f"""
import importlib.abc, json, sys
class NoModelyard(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "modelyard" or name.startswith("modelyard."):
            raise ImportError("modelyard is blocked in this process")
sys.meta_path.insert(0, NoModelyard())
import pandas as pd, mlflow.pyfunc
model = mlflow.pyfunc.load_model("models:/{NAME}@champion")
frame = pd.read_json({str(sample_path)!r}, orient="split")
print(model.predict(frame).to_json(orient="split", double_precision=15))
"""
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": world.runs[0].tracking_uri,
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "DO_NOT_TRACK": "true",
    }
    env.pop("PYTHONPATH", None)
    clean = tmp_path / "cwd"
    clean.mkdir()
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=clean,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    got = pd.read_json(io.StringIO(done.stdout.strip().splitlines()[-1]), orient="split")

    model = world.models[0]
    classes = [str(c) for c in model.classes_]
    assert list(got.columns) == ["prediction", *(f"proba_{c}" for c in classes)]
    assert list(got["prediction"]) == list(model.predict(sample))
    np.testing.assert_allclose(
        got[[f"proba_{c}" for c in classes]].to_numpy(), model.predict_proba(sample), rtol=1e-6
    )


def test_load_champion_uses_the_registry_uri_not_the_global_one(world: World) -> None:
    import mlflow

    assert mlflow.get_tracking_uri() != world.registry.tracking_uri
    loaded = world.registry.load_champion()
    sample = world.data.test[FEATURES].head(10)
    out = loaded.predict(sample)
    np.testing.assert_allclose(
        out.filter(like="proba_").to_numpy(), world.models[0].predict_proba(sample), rtol=1e-6
    )


def test_manual_promote_then_rollback_restores_the_previous_champion(world: World) -> None:
    reg = world.registry
    with pytest.raises(ModelyardError, match="refused by the promotion gate") as err:
        reg.promote("2", reason="try the baseline", command="modelyard models promote 2")
    assert "worse than the champion" in str(err.value) and "--force" in str(err.value)
    assert reg.challenger() is not None  # nothing moved
    promoted = reg.promote(
        "2", reason="try the baseline in production", command="modelyard models promote 2",
        force=True,
    )  # fmt: skip
    assert promoted.aliases == ["champion"]  # and no longer challenger
    assert reg.challenger() is None

    back = reg.rollback(command="modelyard models rollback")
    assert back.version == "1"
    champion = reg.champion()
    assert champion is not None and champion.version == "1"
    with pytest.raises(ModelyardError, match="no earlier champion"):
        reg.rollback(command="modelyard models rollback")


def test_audit_log_shows_every_move_in_order(world: World) -> None:
    lines = (world.workdir / "audit.jsonl").read_text().splitlines()
    entries = [json.loads(line) for line in lines]
    moves = [(e["alias"], e["from_version"], e["to_version"], e["command"]) for e in entries]
    assert moves == [
        ("champion", None, "1", "modelyard train"),
        ("challenger", None, "2", "modelyard train"),
        ("champion", "1", "2", "modelyard models promote 2"),
        ("challenger", "2", None, "modelyard models promote 2"),
        ("champion", "2", "1", "modelyard models rollback"),
    ]
    assert entries[2]["reason"] == "try the baseline in production"
    assert [e["forced"] for e in entries] == [False, False, True, False, False]
    assert "worse than the champion" in entries[1]["reason"]
    for e in entries:
        assert e["model"] == NAME
        assert e["user"]
        assert e["time"].endswith("+00:00")
    assert [e.action for e in world.registry.history()] == [
        "gate",
        "gate",
        "promote",
        "promote",
        "rollback",
    ]


def test_unknown_version_is_a_readable_error(world: World) -> None:
    with pytest.raises(ModelyardError) as err:
        world.registry.show("9")
    message = str(err.value)
    assert "no version '9'" in message
    assert "modelyard models list" in message


def test_unregistered_model_has_no_versions(world: World) -> None:
    other = Registry(world.registry.tracking_uri, "nobody", world.workdir / "other.jsonl")
    assert other.versions() == []
    assert other.champion() is None
    with pytest.raises(ModelyardError, match="no champion"):
        other.rollback(command="x")


# ------------------------------------------------------------------ the light read path (issue 12)


def _client_registry(world: World) -> Registry:
    """The same registry, every read through MlflowClient (the reference)."""
    from modelyard.ops.registry_store import ClientReader

    reference = Registry(world.registry.tracking_uri, NAME, world.registry.audit_log)
    reference._reader = ClientReader(lambda: reference.client)
    return reference


def test_sql_reader_reads_what_the_mlflow_client_reads(world: World) -> None:
    from modelyard.ops.registry_store import SqliteReader, _Fallback

    light = Registry(world.registry.tracking_uri, NAME, world.registry.audit_log)
    reference = _client_registry(world)
    # a NaN metric and a tag with odd characters must come back as MLflow returns them
    run_id = world.runs[1].run_id
    reference.client.log_metric(run_id, "nan_metric", float("nan"))
    reference.client.set_model_version_tag(NAME, "2", "note", "a 'quoted'\nline é")
    got, want = light.versions(), reference.versions()
    assert len(want) >= 2
    assert [v.model_dump(exclude={"metrics"}) for v in got] == [
        v.model_dump(exclude={"metrics"}) for v in want
    ]
    for g, w in zip(got, want, strict=True):  # NaN != NaN: compare as text
        assert json.dumps(g.metrics, sort_keys=True) == json.dumps(w.metrics, sort_keys=True)
    assert "nan_metric" in got[1].metrics
    assert light.show("2").tags["note"] == "a 'quoted'\nline é"
    assert light.champion() == reference.champion()
    assert light.challenger() == reference.challenger()
    for version in ("1", "2"):
        assert light.location(version) == reference.location(version)
    assert light.reader.aliases("nobody") == {} == reference.reader.aliases("nobody")
    assert light.reader.version(NAME, "abc") is None
    # and it was the SQL path that answered, not a silent fallback to MLflow
    assert isinstance(light.reader, _Fallback) and isinstance(light.reader.light, SqliteReader)
    assert not light.reader.used_fallback


def test_sql_reader_hides_a_deleted_version_as_mlflow_does(world: World, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "mlflow.db"
    shutil.copy(world.workdir / "mlflow.db", copy)
    uri = f"sqlite:///{copy}"
    light = Registry(uri, NAME, tmp_path / "audit.jsonl")
    reference = Registry(uri, NAME, tmp_path / "audit.jsonl")
    from modelyard.ops.registry_store import ClientReader

    reference._reader = ClientReader(lambda: reference.client)
    reference.client.delete_model_version(NAME, "1")
    assert [v.version for v in light.versions()] == [v.version for v in reference.versions()]
    assert "1" not in [v.version for v in light.versions()]
    with pytest.raises(ModelyardError, match="no version '1'"):
        light.show("1")


def test_sql_reader_falls_back_to_mlflow_on_an_unknown_schema(tmp_path: Path) -> None:
    import sqlite3

    from modelyard.ops.registry_store import ClientReader, open_reader

    db = tmp_path / "other.db"
    sqlite3.connect(db).execute("CREATE TABLE model_versions (name TEXT)").connection.commit()
    calls: list[str] = []

    class Client:
        def get_registered_model(self, name: str) -> Any:
            calls.append(name)
            return type("M", (), {"aliases": {"champion": 3}})()

    reader = open_reader(f"sqlite:///{db}", Client)  # type: ignore[arg-type]
    assert reader.aliases("m") == {"champion": "3"}
    assert calls == ["m"]
    assert isinstance(reader.fallback, ClientReader)  # type: ignore[attr-defined]


def test_a_missing_store_has_no_versions_and_is_not_created(tmp_path: Path) -> None:
    db = tmp_path / "nothing" / "mlflow.db"
    registry = Registry(f"sqlite:///{db}", NAME, tmp_path / "audit.jsonl")
    assert registry.versions() == []
    assert registry.champion() is None
    assert not db.exists()


def test_native_flavour_predicts_exactly_like_the_pyfunc(world: World) -> None:
    import mlflow.pyfunc

    from modelyard.ops.native import NativeModel

    sample = world.data.test[FEATURES].head(50).reset_index(drop=True)
    for version in ("1", "2"):
        native = world.registry.load_version(version)
        assert isinstance(native, NativeModel)
        with world.registry.local_copy(version) as local:
            pyfunc = mlflow.pyfunc.load_model(str(local))
        pd.testing.assert_frame_equal(native.predict(sample), pyfunc.predict(sample))


def test_native_flavour_loads_without_modelyard_or_mlflow(world: World, tmp_path: Path) -> None:
    sample = world.data.test[FEATURES].head(20)
    sample_path = tmp_path / "sample.json"
    sample.to_json(sample_path, orient="split")
    with world.registry.local_copy("1") as local:
        pipeline_file = local / "modelyard" / "pipeline.pkl"
    script = f"""
import importlib.abc, sys
class Blocked(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("modelyard", "mlflow"):
            raise ImportError(name + " is blocked in this process")
sys.meta_path.insert(0, Blocked())
import cloudpickle, pandas as pd
pipeline = cloudpickle.load(open({str(pipeline_file)!r}, "rb"))
frame = pd.read_json({str(sample_path)!r}, orient="split")
print(pd.DataFrame(pipeline.predict_proba(frame)).to_json(orient="split", double_precision=15))
"""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    clean = tmp_path / "cwd"
    clean.mkdir()
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=clean, env=env, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    got = pd.read_json(io.StringIO(done.stdout.strip().splitlines()[-1]), orient="split")
    np.testing.assert_allclose(got.to_numpy(), world.models[0].predict_proba(sample), rtol=1e-9)


def test_models_list_and_show_import_no_ml_library(world: World, tmp_path: Path) -> None:
    project = world.workdir.parent
    (project / "modelyard.yaml").write_text(
        "version: 1\nname: penguins\ndata:\n  source:\n    builtin: breast_cancer\n"
        "  target: target\n",
        encoding="utf-8",
    )
    heavy = ("mlflow", "sklearn", "pandas", "sqlalchemy", "alembic", "scipy", "polars", "numpy")
    script = f"""
import sys
from importlib.metadata import entry_points
main = entry_points(group="console_scripts")["modelyard"].load()
for args in (["models", "list", "--json"], ["models", "show", "1", "--json"],
             ["models", "history"]):
    try:
        main(args=[*args, "-c", {str(project / "modelyard.yaml")!r}], prog_name="modelyard")
    except SystemExit as exc:
        assert not exc.code, exc.code
print("IMPORTED", sorted({{m.split(".")[0] for m in sys.modules}} & set({heavy!r})))
"""
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-1] == "IMPORTED []"
    listed, _ = json.JSONDecoder().raw_decode(done.stdout)
    assert [row["version"] for row in listed] == [v.version for v in world.registry.versions()]


def test_batch_scoring_loads_the_champion_without_mlflow(world: World, tmp_path: Path) -> None:
    sample_path = tmp_path / "sample.json"
    world.data.test[FEATURES].head(10).to_json(sample_path, orient="split")
    script = f"""
import sys
import pandas as pd
from modelyard.ops.registry import ModelRef, Registry
registry = Registry({world.registry.tracking_uri!r}, {NAME!r}, {str(tmp_path / "a.jsonl")!r})
model = registry.load_version(registry.resolve(ModelRef(name={NAME!r}, version="1")))
out = model.predict(pd.read_json({str(sample_path)!r}, orient="split"))
assert len(out) == 10, out
print("MLFLOW", sorted(m for m in sys.modules if m.split(".")[0] == "mlflow"))
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-1] == "MLFLOW []"
