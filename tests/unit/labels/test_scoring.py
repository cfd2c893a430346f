"""How the queue reads the champion: uncertainty (classifier) or spread (regressor), and the
model's preprocessed feature space."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from sklearn.ensemble import RandomForestRegressor
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from modelyard.labelling import Champion, score
from modelyard.labels.records import LabelSpec
from modelyard.modeling.search.ensemble import WeightedEnsemble

RNG = np.random.default_rng(0)
X = RNG.normal(size=(200, 2))
FRAME = pl.DataFrame({"a": X[:, 0], "b": X[:, 1]})


def champion(model: object, y: np.ndarray, classes: list[str] | None = None) -> Champion:
    pipe = Pipeline([("features", StandardScaler()), ("model", model)]).fit(FRAME.to_pandas(), y)
    return Champion(
        pipe, ["a", "b"], "regression" if classes is None else "binary", classes, "7", "m"
    )


def test_a_classifier_is_scored_by_the_uncertainty_of_its_probabilities() -> None:
    y = (X[:, 0] > 0).astype(int)
    signals = score(
        champion(LogisticRegression(), y, ["0", "1"]),
        FRAME,
        LabelSpec("y", "binary", ("0", "1")),
        "entropy",
    )
    assert signals.method == "entropy" and signals.probabilities is not None
    near_boundary = np.argmin(np.abs(X[:, 0]))
    assert signals.scores[near_boundary] == pytest.approx(signals.scores.max(), abs=0.05)
    assert signals.features.shape == (200, 2)
    assert abs(signals.features.mean(axis=0)).max() < 1e-9  # the scaled space the model sees


def test_a_forest_is_scored_by_the_spread_of_its_trees() -> None:
    y = X[:, 0] * 3 + RNG.normal(size=200)
    signals = score(champion(RandomForestRegressor(n_estimators=20, random_state=0), y), FRAME,
                    LabelSpec("y", "regression", None), "entropy")  # fmt: skip
    assert signals.method == "spread of 20 trees" and (signals.scores > 0).any()


def test_an_ensemble_is_scored_by_the_spread_of_its_members() -> None:
    y = X[:, 0] * 3
    ensemble = WeightedEnsemble(
        [
            ("lin", LinearRegression()),
            ("rf", RandomForestRegressor(n_estimators=5, random_state=0)),
        ],
        [0.5, 0.5],
    )
    signals = score(champion(ensemble, y), FRAME, LabelSpec("y", "regression", None), "entropy")
    assert signals.method == "spread of 2 ensemble members"


def test_one_model_without_trees_says_the_queue_orders_by_diversity_alone() -> None:
    signals = score(
        champion(LinearRegression(), X[:, 0]), FRAME, LabelSpec("y", "regression", None), "entropy"
    )
    assert "diversity alone" in signals.method and (signals.scores == 1).all()
