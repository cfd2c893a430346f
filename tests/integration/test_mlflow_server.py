"""Tracking and the registry against a real ``mlflow server`` (HTTP, proxied artifacts)."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from modelyard.config.schema import GateSection, TrackingSection
from modelyard.ops.gate import decide
from modelyard.ops.registry import Registry
from modelyard.ops.tracking import log_training_run
from tests.unit.ops._penguins import FEATURES, TARGET, load_penguins, pipeline

pytestmark = pytest.mark.integration

NAME = "penguins-server"


def test_log_register_promote_and_load_through_the_server(
    mlflow_server: str, tmp_path: Path
) -> None:
    from sklearn.tree import DecisionTreeClassifier

    data = load_penguins()
    model = pipeline(DecisionTreeClassifier(max_depth=4, random_state=0))
    model.fit(data.train[FEATURES], data.train[TARGET])
    score = float(model.score(data.test[FEATURES], data.test[TARGET]))

    run = log_training_run(
        tracking=TrackingSection(uri=mlflow_server, experiment="server-test", model_name=NAME),
        workdir=tmp_path / ".modelyard",
        project="penguins",
        params={"model": "decision_tree", "max_depth": 4},
        metrics={"accuracy": score},
        model=model,
        contract=data.contract,
        task="multiclass",
        input_example=data.train[FEATURES].head(5),
        artifacts={"reports/run.json": '{"ok": true}'},
        tags={"data_fingerprint": "fp-server", "code_version": "test"},
    )
    assert run.tracking_uri == mlflow_server
    assert run.registered_version == "1"
    assert not (tmp_path / ".modelyard" / "mlflow.db").exists()  # nothing embedded

    registry = Registry(mlflow_server, NAME, tmp_path / "audit.jsonl")
    decision = decide(
        metric="accuracy",
        greater_is_better=True,
        candidate=score,
        champion=None,
        options=GateSection(min_metric=0.5),
        data_valid=True,
    )
    registry.apply(decision, "1", command="pytest")
    champion = registry.champion()
    assert champion is not None and champion.version == "1"
    assert champion.tags["data_fingerprint"] == "fp-server"
    assert champion.source.startswith("mlflow-artifacts:")  # proxied by the server

    sample = data.test[FEATURES].head(15)
    expected = model.predict_proba(sample)
    in_process = registry.load_champion().predict(sample)
    np.testing.assert_allclose(in_process.filter(like="proba_").to_numpy(), expected, rtol=1e-9)

    # The plain MLflow way, in a fresh process with a clean cwd: models:/NAME@champion.
    sample_path = tmp_path / "sample.json"
    sample.to_json(sample_path, orient="split")
    script = (
        "import pandas as pd, mlflow.pyfunc\n"
        f"m = mlflow.pyfunc.load_model('models:/{NAME}@champion')\n"
        f"f = pd.read_json({str(sample_path)!r}, orient='split')\n"
        "print(m.predict(f).to_json(orient='split', double_precision=15))\n"
    )
    env = {**os.environ, "MLFLOW_TRACKING_URI": mlflow_server, "MLFLOW_DISABLE_TELEMETRY": "true"}
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
    assert list(got["prediction"]) == list(model.predict(sample))
    np.testing.assert_allclose(got.filter(like="proba_").to_numpy(), expected, rtol=1e-6)


def test_the_light_rest_reader_reads_what_the_mlflow_client_reads(
    mlflow_server: str, tmp_path: Path
) -> None:
    """`models list / show` and the champion lookup go through the REST API without MLflow;
    they must return what MlflowClient returns, from a real server."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.tree import DecisionTreeClassifier

    from modelyard.ops.native import NativeModel
    from modelyard.ops.registry_store import ClientReader, RestReader, _Fallback

    name = "penguins-light"
    data = load_penguins()
    models = []
    for i, est in enumerate(
        [DecisionTreeClassifier(max_depth=3, random_state=0), LogisticRegression(max_iter=500)]
    ):
        model = pipeline(est).fit(data.train[FEATURES], data.train[TARGET])
        models.append(model)
        log_training_run(
            tracking=TrackingSection(uri=mlflow_server, experiment="light", model_name=name),
            workdir=tmp_path / ".modelyard",
            project="penguins",
            params={"i": i},
            metrics={"accuracy": float(model.score(data.test[FEATURES], data.test[TARGET])),
                     "undefined": float("nan")},
            model=model,
            contract=data.contract,
            task="multiclass",
            input_example=data.train[FEATURES].head(5),
            artifacts={},
            tags={"code_version": "test", "note": "it's \"quoted\"\né"},
        )  # fmt: skip
    light = Registry(mlflow_server, name, tmp_path / "audit.jsonl")
    light.promote("2", reason="test", command="pytest")
    reference = Registry(mlflow_server, name, tmp_path / "audit.jsonl")
    reference._reader = ClientReader(lambda: reference.client)

    got, want = light.versions(), reference.versions()
    assert [v.version for v in got] == ["1", "2"]
    assert [v.model_dump(exclude={"metrics"}) for v in got] == [
        v.model_dump(exclude={"metrics"}) for v in want
    ]
    assert [repr(v.metrics) for v in got] == [repr(v.metrics) for v in want]  # NaN included
    assert light.show("1").model_dump(exclude={"metrics"}) == reference.show("1").model_dump(
        exclude={"metrics"}
    )
    assert light.champion() is not None and light.champion().version == "2"  # type: ignore[union-attr]
    assert light.location("1") == reference.location("1")
    assert light.reader.version(name, "7") is None
    assert light.reader.aliases("nobody") == {}
    assert isinstance(light.reader, _Fallback) and isinstance(light.reader.light, RestReader)
    assert not light.reader.used_fallback

    sample = data.test[FEATURES].head(15).reset_index(drop=True)
    native = light.load_version("2")
    assert isinstance(native, NativeModel)
    pd.testing.assert_frame_equal(
        native.predict(sample), reference.load_with_contract("2")[0].predict(sample)
    )

    script = (
        "import sys\n"
        "from modelyard.ops.registry import Registry\n"
        f"r = Registry({mlflow_server!r}, {name!r}, {str(tmp_path / 'a.jsonl')!r})\n"
        "assert [v.version for v in r.versions()] == ['1', '2']\n"
        "assert r.champion().version == '2'\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'mlflow'))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-1] == "[]"
