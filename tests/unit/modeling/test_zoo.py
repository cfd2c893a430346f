"""The model zoo: every family fits real data, keeps string labels, clones, is deterministic.

The small helpers at the top (real data + a simple preprocessor) are shared by the other
modeling test modules.
"""

from __future__ import annotations

import functools
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from modelyard.errors import ModelyardError
from modelyard.modeling import zoo

DATA = Path("/work/shared/data")
SPECIES = ["Adelie", "Chinstrap", "Gentoo"]


@functools.cache
def penguins() -> tuple[pd.DataFrame, np.ndarray]:
    """Penguins, 3 species (string labels), rows without a target dropped."""
    df = pd.read_csv(DATA / "penguins.csv").dropna(subset=["species"])
    y = df.pop("species").to_numpy(dtype=object)
    return df.reset_index(drop=True), y


@functools.cache
def diamonds(n: int = 600) -> tuple[pd.DataFrame, np.ndarray]:
    """A seeded sample of diamonds, target ``price``."""
    df = pd.read_csv(DATA / "diamonds.csv").sample(n=n, random_state=0).reset_index(drop=True)
    y = df.pop("price").to_numpy(dtype=np.float64)
    return df, y


def preprocessor(X: pd.DataFrame) -> ColumnTransformer:
    """Median-impute + scale numbers, impute + one-hot encode strings."""
    cat = [c for c in X.columns if X[c].dtype == object]
    num = [c for c in X.columns if c not in cat]
    return ColumnTransformer(
        [
            (
                "num",
                Pipeline(
                    [("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())]
                ),
                num,
            ),
            (
                "cat",
                Pipeline(
                    [
                        ("impute", SimpleImputer(strategy="most_frequent")),
                        ("onehot", OneHotEncoder(handle_unknown="ignore", sparse_output=False)),
                    ]
                ),
                cat,
            ),
        ]
    )


@pytest.fixture(autouse=True)
def one_thread() -> Any:
    """One thread everywhere. On a busy 2-core CI machine, OpenMP pools spin-wait: a 0.1 s
    HistGradientBoosting fit took 2-28 s with 2 threads, a LightGBM one 60 s."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        yield


def fast(name: str) -> dict[str, Any]:
    """Smaller, one-thread models, so the unit tests stay quick (defaults are benchmarked in
    ``bench/adult_models.py``)."""
    return {
        "random_forest": {"n_estimators": 30, "n_jobs": 1},
        "xgboost": {"n_estimators": 60, "learning_rate": 0.1, "n_jobs": 1},
        "lightgbm": {"n_estimators": 60, "learning_rate": 0.1, "n_jobs": 1},
        "mlp": {"max_iter": 300},
    }.get(name, {})


def _fit(name: str, task: str, X: pd.DataFrame, y: np.ndarray, seed: int = 0) -> Pipeline:
    model = zoo.make_model(name, task, params=fast(name), seed=seed)  # type: ignore[arg-type]
    return Pipeline([("features", preprocessor(X)), ("model", model)]).fit(X, y)


@pytest.mark.parametrize("name", zoo.MODEL_NAMES)
def test_classifier_keeps_string_labels_and_sums_probabilities_to_one(name: str) -> None:
    X, y = penguins()
    pipe = _fit(name, "multiclass", X, y)
    assert list(pipe.classes_) == SPECIES
    proba = pipe.predict_proba(X)
    assert proba.shape == (len(X), 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-6)
    pred = pipe.predict(X)
    assert set(pred) <= set(SPECIES)
    accuracy = float(np.mean(pred == y))
    if name == "dummy":
        assert accuracy == pytest.approx(np.mean(y == "Adelie"))
    else:
        assert accuracy > 0.9, f"{name} training accuracy {accuracy:.3f}"


@pytest.mark.parametrize("name", zoo.MODEL_NAMES)
def test_regressor_fits_diamonds(name: str) -> None:
    X, y = diamonds()
    pipe = _fit(name, "regression", X, y)
    pred = pipe.predict(X)
    assert pred.shape == (len(X),)
    r2 = 1 - np.sum((y - pred) ** 2) / np.sum((y - y.mean()) ** 2)
    if name == "dummy":
        assert r2 == pytest.approx(0.0, abs=1e-9)
    else:
        assert r2 > 0.8, f"{name} training R2 {r2:.3f}"


@pytest.mark.parametrize("name", zoo.MODEL_NAMES)
def test_same_seed_same_predictions_pickle_and_clone_round_trip(name: str) -> None:
    X, y = penguins()
    fitted = _fit(name, "multiclass", X, y, seed=3)
    a = fitted.predict_proba(X)
    b = _fit(name, "multiclass", X, y, seed=3).predict_proba(X)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(fitted)).predict_proba(X), a)
    model = zoo.make_model(name, "multiclass", params=fast(name), seed=3)
    twin = clone(model)
    assert type(twin) is type(model)
    assert twin.get_params() == model.get_params()


def test_xgboost_wrapper_passes_scikit_learns_estimator_checks() -> None:
    from sklearn.utils.estimator_checks import check_estimator

    expected = {
        "check_class_weight_classifiers": "class_weight is 'none' or 'balanced', not a dict",
        "check_all_zero_sample_weights_error": "XGBoost's own message",
    }
    results = check_estimator(
        zoo.XGBoostClassifier(n_estimators=5, n_jobs=1),
        expected_failed_checks=expected,
        on_fail=None,
    )
    failed = [r["check_name"] for r in results if r["status"] == "failed"]
    assert failed == []
    assert len(results) > 50


def test_xgboost_wrapper_follows_the_estimator_contract() -> None:
    X, y = penguins()
    model = zoo.make_model("xgboost", "multiclass", seed=0, params={"max_depth": 3})
    assert isinstance(model, zoo.XGBoostClassifier)
    assert model.get_params()["max_depth"] == 3
    assert clone(model).set_params(n_estimators=7).n_estimators == 7
    assert not hasattr(model, "classes_")  # the constructor only stores
    pipe = Pipeline([("features", preprocessor(X)), ("model", model)]).fit(X, y)
    again = pickle.loads(pickle.dumps(pipe))
    np.testing.assert_array_equal(again.predict_proba(X), pipe.predict_proba(X))
    binary = y != "Adelie"
    labels = np.where(binary, ">50K", "<=50K")
    fitted = clone(pipe).fit(X, labels)
    assert list(fitted.classes_) == ["<=50K", ">50K"]
    assert fitted.predict_proba(X).shape == (len(X), 2)


@pytest.mark.parametrize(
    "name", ["linear", "random_forest", "hist_gradient_boosting", "xgboost", "lightgbm", "mlp"]
)
def test_balanced_class_weight_raises_minority_probability(name: str) -> None:
    X, y = penguins()
    minority = "Chinstrap"
    labels = np.where(y == minority, minority, "other")
    col = 0  # "Chinstrap" sorts before "other"

    def mean_minority_proba(class_weight: str) -> float:
        model = zoo.make_model(name, "binary", params=fast(name), seed=0, class_weight=class_weight)
        pipe = Pipeline([("features", preprocessor(X)), ("model", model)]).fit(X, labels)
        assert list(pipe.classes_) == [minority, "other"]
        return float(pipe.predict_proba(X)[:, col].mean())

    assert mean_minority_proba("balanced") > mean_minority_proba("none")


def test_unknown_names_and_parameters_are_clear_errors() -> None:
    with pytest.raises(ModelyardError, match="did you mean 'lightgbm'"):
        zoo.make_model("lightgbn", "binary", seed=0)
    with pytest.raises(ModelyardError, match="did you mean 'n_estimators'"):
        zoo.make_model("random_forest", "binary", seed=0, params={"n_estimator": 5})
    with pytest.raises(ModelyardError, match="class weighting"):
        zoo.make_model("linear", "binary", seed=0, class_weight="auto")


@pytest.mark.parametrize("name", zoo.MODEL_NAMES)
@pytest.mark.parametrize("task", ["binary", "regression"])
def test_search_space_contains_the_defaults_and_builds_models(name: str, task: str) -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=0))
    study.enqueue_trial(zoo.default_trial_params(name, task))  # type: ignore[arg-type]
    first = study.ask()
    assert zoo.suggest_params(name, task, first) == zoo.default_params(name, task)  # type: ignore[arg-type]
    for _ in range(3):
        params = zoo.suggest_params(name, task, study.ask())  # type: ignore[arg-type]
        zoo.make_model(name, task, params=params, seed=0)  # type: ignore[arg-type]


def test_defaults_are_fresh_copies() -> None:
    zoo.default_params("lightgbm", "binary")["n_estimators"] = 1
    assert zoo.default_params("lightgbm", "binary")["n_estimators"] != 1


def test_hist_gradient_boosting_fits_a_class_with_a_single_row() -> None:
    """kddcup99 has classes with one or two rows; early stopping's stratified split failed there."""
    from modelyard.modeling.zoo import make_model

    rng = np.random.default_rng(0)
    X = rng.normal(size=(11_000, 3))
    y = np.where(X[:, 0] > 0, "a", "b").astype(object)
    y[0] = "rare"
    model = make_model("hist_gradient_boosting", "multiclass", seed=0, params={"max_iter": 5})
    model.fit(X, y)
    assert list(model.classes_) == ["a", "b", "rare"]
