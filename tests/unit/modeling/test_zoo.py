"""The model zoo: every family fits real data, stops early where it boosts, clones, pickles,
is deterministic, and its portfolio lies in its search space.

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

from modelyard.errors import MissingExtraError, ModelyardError
from modelyard.modeling import zoo
from modelyard.modeling.zoo.boosting import XGBoostClassifier
from modelyard.modeling.zoo.space import contains, distributions, sample

DATA = Path(__file__).resolve().parents[4] / "shared" / "data"
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
    numbers = Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())])
    strings = Pipeline(
        [
            ("impute", SimpleImputer(strategy="most_frequent")),
            ("onehot", OneHotEncoder(handle_unknown="ignore", sparse_output=False)),
        ]
    )
    return ColumnTransformer([("num", numbers, num), ("cat", strings, cat)])


@functools.cache
def matrix(which: str) -> tuple[np.ndarray, np.ndarray]:
    """Preprocessed features and the target: penguins as class codes, or diamonds prices."""
    X, y = penguins() if which == "penguins" else diamonds()
    features = preprocessor(X).fit_transform(X)
    if which == "penguins":
        return features, np.unique(y, return_inverse=True)[1]
    return features, y


@pytest.fixture(autouse=True)
def one_thread() -> Any:
    """One thread everywhere, as on the executor's workers (a busy 2-core machine makes
    OpenMP pools spin: a 0.1 s HistGradientBoosting fit took 2-28 s with 2 threads)."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        yield


def fast(name: str) -> dict[str, Any]:
    """Small versions of the defaults, so the unit tests stay quick."""
    return {
        "random_forest": {"n_estimators": 30},
        "extra_trees": {"n_estimators": 30},
        "xgboost": {"n_estimators": 60, "learning_rate": 0.1},
        "lightgbm": {"n_estimators": 60, "learning_rate": 0.1},
        "catboost": {"iterations": 60, "learning_rate": 0.2},
        "mlp": {"max_iter": 300},
    }.get(name, {})


def _fit(name: str, task: str, which: str, seed: int = 0) -> tuple[Any, np.ndarray, np.ndarray]:
    X, y = matrix(which)
    model = zoo.make_model(name, task, params=fast(name), seed=seed)  # type: ignore[arg-type]
    zoo.fit_model(name, model, X, y)
    return model, X, y


AVAILABLE = [name for name in zoo.MODEL_NAMES if zoo.family(name).available()]


@pytest.mark.parametrize("name", AVAILABLE)
def test_classifier_fits_class_codes_and_probabilities_sum_to_one(name: str) -> None:
    model, X, y = _fit(name, "multiclass", "penguins")
    assert list(model.classes_) == [0, 1, 2]
    proba = model.predict_proba(X)
    assert proba.shape == (len(X), 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-6)
    accuracy = float(np.mean(np.argmax(proba, axis=1) == y))
    if name == "dummy":
        assert accuracy == pytest.approx(np.mean(y == 0))
    else:
        assert accuracy > 0.9, f"{name} training accuracy {accuracy:.3f}"


@pytest.mark.parametrize("name", AVAILABLE)
def test_regressor_fits_diamonds(name: str) -> None:
    model, X, y = _fit(name, "regression", "diamonds")
    pred = model.predict(X)
    assert pred.shape == (len(X),)
    r2 = 1 - np.sum((y - pred) ** 2) / np.sum((y - y.mean()) ** 2)
    if name == "dummy":
        assert r2 == pytest.approx(0.0, abs=1e-9)
    else:
        assert r2 > 0.8, f"{name} training R2 {r2:.3f}"


@pytest.mark.parametrize("name", AVAILABLE)
def test_same_seed_same_predictions_pickle_and_clone_round_trip(name: str) -> None:
    fitted, X, _ = _fit(name, "multiclass", "penguins", seed=3)
    a = fitted.predict_proba(X)
    np.testing.assert_array_equal(
        _fit(name, "multiclass", "penguins", seed=3)[0].predict_proba(X), a
    )
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(fitted)).predict_proba(X), a)
    model = zoo.make_model(name, "multiclass", params=fast(name), seed=3)
    twin = clone(model)
    assert type(twin) is type(model)
    assert twin.get_params() == model.get_params()


@pytest.mark.parametrize("name", [n for n in AVAILABLE if zoo.family(n).boosted])
@pytest.mark.parametrize("task", ["multiclass", "regression"])
def test_boosted_families_stop_early_on_the_validation_fold(name: str, task: str) -> None:
    X, y = matrix("penguins" if task == "multiclass" else "diamonds")
    train, valid = np.arange(len(y)) % 4 != 0, np.arange(len(y)) % 4 == 0
    fam = zoo.family(name)
    model = fam.build(task, {**zoo.default_params(name, task), "learning_rate": 0.3}, 0)  # type: ignore[arg-type]
    rounds = fam.fit(model, X[train], y[train], None, (X[valid], y[valid]))
    assert rounds is not None and 1 <= rounds < 1000  # far fewer than the most it may grow
    refit = fam.build(task, fam.with_rounds(zoo.default_params(name, task), rounds), 0)  # type: ignore[arg-type]
    assert fam.fit(refit, X, y, None, None) is None
    assert refit.get_params()[fam.rounds_param] == rounds


@pytest.mark.parametrize("name", [n for n in AVAILABLE if zoo.family(n).boosted])
def test_a_class_missing_from_the_training_fold_does_not_break_early_stopping(name: str) -> None:
    X, y = matrix("penguins")
    train = y != 2  # the training part lacks class 2; the validation part has it
    fam = zoo.family(name)
    model = fam.build("multiclass", zoo.default_params(name, "multiclass"), 0)
    rounds = fam.fit(model, X[train], y[train], None, (X, y))
    assert rounds is not None
    assert list(model.classes_) == [0, 1]


def test_xgboost_wrapper_passes_scikit_learns_estimator_checks() -> None:
    from sklearn.utils.estimator_checks import check_estimator

    expected = {"check_all_zero_sample_weights_error": "XGBoost's own message"}
    results = check_estimator(
        XGBoostClassifier(n_estimators=5, n_jobs=1), expected_failed_checks=expected, on_fail=None
    )
    failed = [r["check_name"] for r in results if r["status"] == "failed"]
    assert failed == []
    assert len(results) > 50


def test_xgboost_wrapper_keeps_string_labels() -> None:
    X, y = penguins()
    model = zoo.make_model(
        "xgboost", "multiclass", seed=0, params={"max_depth": 3, **fast("xgboost")}
    )
    assert isinstance(model, XGBoostClassifier)
    assert not hasattr(model, "classes_")  # the constructor only stores
    pipe = Pipeline([("features", preprocessor(X)), ("model", model)]).fit(X, y)
    assert list(pipe.classes_) == SPECIES
    again = pickle.loads(pickle.dumps(pipe))
    np.testing.assert_array_equal(again.predict_proba(X), pipe.predict_proba(X))


def test_unknown_names_and_parameters_are_clear_errors() -> None:
    with pytest.raises(ModelyardError, match="did you mean 'lightgbm'"):
        zoo.make_model("lightgbn", "binary", seed=0)
    with pytest.raises(ModelyardError, match="did you mean 'min_samples_leaf'"):
        zoo.make_model("random_forest", "binary", seed=0, params={"min_sample_leaf": 5})
    with pytest.raises(ModelyardError, match="unknown task"):
        zoo.make_model("linear", "ranking", seed=0)  # type: ignore[arg-type]


def test_a_family_whose_extra_is_missing_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(type(zoo.family("catboost")), "module", "no_such_module_here")
    assert not zoo.family("catboost").available()
    with pytest.raises(MissingExtraError, match=r"modelyard\[catboost\]"):
        zoo.make_model("catboost", "binary", seed=0)


@pytest.mark.parametrize("name", zoo.MODEL_NAMES)
@pytest.mark.parametrize("task", ["binary", "multiclass", "regression"])
def test_portfolio_lies_in_the_search_space_and_samples_build_models(name: str, task: str) -> None:
    fam = zoo.family(name)
    zoo.check_portfolio(name, task)  # type: ignore[arg-type]
    space = fam.space(task)  # type: ignore[arg-type]
    if not space:
        return
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=0))
    for params in fam.portfolio(task):  # type: ignore[arg-type]
        study.add_trial(
            optuna.create_trial(params=params, distributions=distributions(space), value=0.5)
        )
    for _ in range(3):
        params = sample(space, study.ask())
        assert contains(space, params)
        if fam.available():
            fam.build(task, params, 0)  # type: ignore[arg-type]


def test_defaults_are_fresh_copies() -> None:
    zoo.default_params("lightgbm", "binary")["num_leaves"] = 1
    assert zoo.default_params("lightgbm", "binary")["num_leaves"] != 1


def test_hist_gradient_boosting_fits_a_class_with_a_single_row() -> None:
    """kddcup99 has classes with one or two rows; early stopping's stratified split failed there."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(11_000, 3))
    y = np.where(X[:, 0] > 0, "a", "b").astype(object)
    y[0] = "rare"
    model = zoo.make_model("hist_gradient_boosting", "multiclass", seed=0, params={"max_iter": 5})
    model.fit(X, y)
    assert list(model.classes_) == ["a", "b", "rare"]
