"""bench/automl.py's pure parts: the yaml it gives modelyard, its metrics, its splits.

The bench itself (minutes, peers in another venv) runs outside CI; these checks keep its
harness honest, and fail when a configuration change breaks the yaml the bench writes.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import accuracy_score, roc_auc_score

from modelyard.config.loader import load_config
from modelyard.scaffold import scaffold
from tests.unit._bench import load_bench

automl = load_bench("automl")
peer = load_bench("_peer_run")


# --------------------------------------------------------------------------- the yaml


def _init_project(tmp_path: Path, frame: pd.DataFrame, target: str) -> Path:
    frame.to_csv(tmp_path / "train.csv", index=False)
    frame.to_csv(tmp_path / "test.csv", index=False)
    text, _ = scaffold(
        tmp_path / "train.csv", target=target, name=None, out=tmp_path / "modelyard.yaml"
    )
    (tmp_path / "modelyard.yaml").write_text(text)
    return tmp_path / "modelyard.yaml"


def _frame(n: int = 60) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "day": pd.date_range("2011-01-01", periods=n, freq="D").strftime("%Y-%m-%d"),
            "x": rng.normal(size=n),
            "colour": rng.choice(["red", "blue"], size=n),
            "y": rng.normal(size=n),
        }
    )


@pytest.mark.parametrize("budget", [None, 20.0, 120.0])
def test_the_yaml_the_bench_writes_is_a_valid_project(tmp_path: Path, budget: Any) -> None:
    ds = automl.Dataset(
        "t", "y", "regression", ("r2",), automl.load_diamonds, "x", read={"parse_dates": ["day"]}
    )
    path = _init_project(tmp_path, _frame(), "y")
    edits = automl.edit_modelyard_yaml(path, ds, budget)
    config = load_config(path)  # a schema change that breaks the bench's edits fails here
    assert config.data.test is not None and config.data.test.path == tmp_path / "test.csv"
    assert config.data.source.read.parse_dates == ["day"]
    assert config.data.task == "regression"
    assert "data.test.path: test.csv" in edits
    if budget is None:
        assert config.models.budget == "auto"
    else:  # one wall-clock budget for exploration, tuning and the final fit
        assert config.models.budget == pytest.approx(budget)
        assert config.tuning.n_trials is None


def test_the_bench_sets_the_task_when_init_infers_another(tmp_path: Path) -> None:
    frame = _frame().assign(y=np.arange(60) % 3)  # init infers multiclass from 3 whole values
    path = _init_project(tmp_path, frame, "y")
    ds = automl.Dataset("t", "y", "regression", ("r2",), automl.load_diamonds, "x")
    edits = automl.edit_modelyard_yaml(path, ds, None)
    assert load_config(path).data.task == "regression"
    assert "data.task: regression (init inferred multiclass)" in edits


# --------------------------------------------------------------------------- metrics


@settings(max_examples=40, deadline=None)
@given(
    y=st.lists(st.sampled_from([0, 1]), min_size=4, max_size=40).filter(lambda v: len(set(v)) == 2),
    seed=st.integers(0, 2**16),
)
def test_binary_metrics_do_not_depend_on_how_a_tool_writes_its_labels(
    y: list[int], seed: int
) -> None:
    """Tools write 1, 1.0 or "1" for the same class; the bench scores them all the same."""
    p1 = np.random.default_rng(seed).random(len(y))
    pred = (p1 >= 0.5).astype(int)
    expected = {"roc_auc": roc_auc_score(y, p1), "accuracy": accuracy_score(y, pred)}
    for cast in (int, float, str):
        frame = pd.DataFrame(
            {"prediction": [cast(v) for v in pred], "proba_0": 1 - p1, "proba_1": p1}
        )
        frame = frame.rename(columns={"proba_0": f"proba_{cast(0)}", "proba_1": f"proba_{cast(1)}"})
        for truth in (np.array(y), np.array(y, dtype=float), np.array(y).astype(str)):
            got = automl.score("binary", ("roc_auc", "accuracy"), truth, frame)
            assert got == pytest.approx(expected)


def test_regression_metrics() -> None:
    frame = pd.DataFrame({"prediction": [1.0, 2.0, 4.0]})
    got = automl.score("regression", ("r2", "rmse"), [1.0, 2.0, 3.0], frame)
    assert got["rmse"] == pytest.approx(np.sqrt(1 / 3))
    assert got["r2"] == pytest.approx(0.5)


def test_hgb_frames_use_the_training_levels() -> None:
    train = pd.DataFrame({"c": ["a", "b", None], "flag": [True, False, True], "n": [1, 2, 3]})
    test = pd.DataFrame({"c": ["b", "zzz"], "flag": [False, True], "n": [4, 5]})
    tr, te = peer.hgb_frames(train, test)
    assert list(tr["c"].cat.categories) == ["a", "b"]
    assert te["c"].tolist()[0] == "b" and pd.isna(te["c"].tolist()[1])  # unseen -> missing
    assert tr["flag"].tolist() == [1.0, 0.0, 1.0]


# --------------------------------------------------------------------------- splits (real data)


@pytest.mark.parametrize("name", ["penguins", "titanic", "bike_sharing"])
def test_splits_are_written_once_the_same_way(
    name: str, shared_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MODELYARD_DATA", str(shared_data))
    ds = automl.DATASETS[name]
    first = automl.write_split(ds, tmp_path / "a", 42)
    again = automl.write_split(ds, tmp_path / "b", 42)
    assert first.info["md5"] == again.info["md5"]
    train, test = pd.read_csv(first.train), pd.read_csv(first.test)
    assert list(train.columns) == list(test.columns)
    if name == "bike_sharing":
        assert train["dteday"].max() < automl.BIKE_CUTOFF <= test["dteday"].min()
        assert not {"instant", "casual", "registered"} & set(train.columns)
        return
    assert len(test) == pytest.approx(0.2 * (len(train) + len(test)), abs=1)
    shares = train[ds.target].value_counts(normalize=True)
    test_shares = test[ds.target].value_counts(normalize=True)
    assert (shares - test_shares).abs().max() < 0.02  # stratified
    assert "alive" not in train.columns  # titanic's leak is dropped for every tool
    shutil.rmtree(tmp_path)
