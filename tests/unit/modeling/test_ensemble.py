"""Greedy ensemble selection on out-of-fold predictions, and the fitted weighted ensemble."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelyard.errors import ModelyardError
from modelyard.modeling.search.data import score_predictions
from modelyard.modeling.search.ensemble import WeightedEnsemble, choose, select
from modelyard.modeling.search.results import LeaderboardRow, OutOfFold
from modelyard.modeling.zoo import make_model


def _oof(n: int = 400, seed: int = 0) -> tuple[OutOfFold, list[LeaderboardRow]]:
    """Three binary 'models': two noisy views of the truth with independent errors, and noise."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    signal = y * 2.0 - 1.0

    def proba(noise: float, scale: float) -> np.ndarray:
        p = 1 / (1 + np.exp(-(scale * signal + rng.normal(0, noise, n))))
        return np.column_stack([1 - p, p])

    preds = {"a": proba(1.5, 1.0), "b": proba(1.5, 1.0), "junk": proba(5.0, 0.0)}
    oof = OutOfFold(y=y, covered=np.ones(n, dtype=bool), classes=["0", "1"], predictions=preds)
    rows = []
    for key, p in preds.items():
        score = score_predictions("binary", "roc_auc", ["0", "1"], y, p)
        rows.append(
            LeaderboardRow(
                name=key, family="linear", mean=score, std=0.0, params={"C": 1.0}, key=key
            )
        )
    return oof, rows


def test_two_models_with_independent_errors_blend_better_than_either() -> None:
    oof, rows = _oof()
    choice = choose(rows, oof, task="binary", metric="roc_auc", greater_is_better=True)
    assert choice.name == "ensemble"
    weights = {m.key: m.weight for m in choice.members}
    assert set(weights) == {"a", "b"}  # the noise model never enters
    assert sum(weights.values()) == pytest.approx(1.0)
    assert choice.best_single is not None and choice.score > choice.best_single
    assert "weighted ensemble" in choice.reason


def test_without_ensembling_the_best_single_model_is_chosen() -> None:
    oof, rows = _oof()
    choice = choose(
        rows, oof, task="binary", metric="roc_auc", greater_is_better=True, ensemble=False
    )
    best = max(rows, key=lambda r: r.mean or 0)
    assert [m.key for m in choice.members] == [best.key]
    assert choice.name == best.name


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), n_models=st.integers(1, 5))
def test_selection_is_never_worse_than_the_best_single_model(seed: int, n_models: int) -> None:
    """Regression, rmse: the first round takes the best single model; later rounds only add
    what helps, so the kept ensemble scores at least as well."""
    rng = np.random.default_rng(seed)
    y = rng.normal(size=200)
    preds = {str(i): y + rng.normal(0, rng.uniform(0.1, 2), 200) for i in range(n_models)}
    oof = OutOfFold(y=y, covered=np.ones(200, dtype=bool), classes=None, predictions=preds)
    picked = select(oof, list(preds), task="regression", metric="rmse", greater_is_better=False)
    best = min(score_predictions("regression", "rmse", None, y, p) for p in preds.values())
    assert picked.score <= best + 1e-12
    assert sum(picked.weights.values()) == pytest.approx(1.0)


def test_rows_outside_the_folds_are_ignored() -> None:
    """A time split leaves the first rows out of every validation fold (NaN predictions)."""
    oof, rows = _oof()
    covered = np.ones(len(oof.y), dtype=bool)
    covered[:100] = False
    for p in oof.predictions.values():
        p[:100] = np.nan
    oof = OutOfFold(oof.y, covered, oof.classes, oof.predictions)
    choice = choose(rows, oof, task="binary", metric="roc_auc", greater_is_better=True)
    assert np.isfinite(choice.score)


def test_no_complete_configuration_is_a_clear_error() -> None:
    oof, _ = _oof()
    failed = LeaderboardRow(
        name="xgboost", family="xgboost", mean=None, std=None, state="failed",
        error="ValueError: bad",
    )  # fmt: skip
    with pytest.raises(ModelyardError, match="xgboost: ValueError: bad"):
        choose([failed], oof, task="binary", metric="roc_auc", greater_is_better=True)


def test_weighted_ensemble_averages_members_and_keeps_labels() -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 4))
    labels = np.where(X[:, 0] + X[:, 1] > 0, "yes", "no")
    codes = (labels == "yes").astype(int)
    members = []
    for name in ("linear", "lightgbm"):
        model = make_model(
            name, "binary", seed=0, params={"n_estimators": 30} if name == "lightgbm" else {}
        )
        members.append((name, model.fit(X, codes)))
    ensemble = WeightedEnsemble.of_fitted(members, [0.75, 0.25], ["no", "yes"])
    expected = 0.75 * members[0][1].predict_proba(X) + 0.25 * members[1][1].predict_proba(X)
    np.testing.assert_allclose(ensemble.predict_proba(X), expected)
    assert list(ensemble.classes_) == ["no", "yes"]
    assert set(ensemble.predict(X)) <= {"no", "yes"}
    again = pickle.loads(pickle.dumps(ensemble))
    np.testing.assert_array_equal(again.predict_proba(X), ensemble.predict_proba(X))
    refit = WeightedEnsemble(members=members, weights=[1, 1], classes=["no", "yes"]).fit(X, labels)
    np.testing.assert_allclose(refit.predict_proba(X).sum(axis=1), 1.0)


def test_a_member_that_never_saw_a_class_gets_a_zero_column() -> None:
    rng = np.random.default_rng(1)
    X = rng.normal(size=(200, 3))
    codes = rng.integers(0, 3, 200)
    full = make_model("linear", "multiclass", seed=0).fit(X, codes)
    partial = make_model("linear", "multiclass", seed=0).fit(X[codes != 2], codes[codes != 2])
    ensemble = WeightedEnsemble.of_fitted(
        [("a", full), ("b", partial)], [0.5, 0.5], ["x", "y", "z"]
    )
    proba = ensemble.predict_proba(X)
    assert proba.shape == (200, 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    np.testing.assert_allclose(proba[:, 2], 0.5 * full.predict_proba(X)[:, 2])


def test_regression_ensemble_is_the_weighted_mean() -> None:
    rng = np.random.default_rng(2)
    X = rng.normal(size=(100, 2))
    y = X[:, 0] * 3
    a = make_model("linear", "regression", seed=0).fit(X, y)
    b = make_model("dummy", "regression", seed=0).fit(X, y)
    ensemble = WeightedEnsemble.of_fitted([("a", a), ("b", b)], [3, 1], None)
    np.testing.assert_allclose(ensemble.predict(X), 0.75 * a.predict(X) + 0.25 * b.predict(X))
    with pytest.raises(AttributeError):
        ensemble.predict_proba(X)


def test_a_model_that_changes_no_ranking_collects_no_weight() -> None:
    """For ROC AUC, averaging in a constant prediction changes no ranking; rounding noise once
    let the dummy baseline take 0.89 of the weight on adult (calibration ruined)."""
    oof, rows = _oof(n=2000, seed=3)
    y = oof.y
    constant = np.tile([0.76, 0.24], (len(y), 1))
    oof.predictions["flat"] = constant
    rows.append(LeaderboardRow(name="flat", family="linear", mean=0.5, std=0.0, key="flat"))
    rows.append(LeaderboardRow(name="dummy", family="dummy", mean=0.5, std=0.0, key="flat"))
    choice = choose(rows, oof, task="binary", metric="roc_auc", greater_is_better=True)
    assert "flat" not in {m.key for m in choice.members}
    assert all(m.family != "dummy" for m in choice.members)
