"""The baseline (dummy), linear models and the multi-layer perceptron."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator

from modelyard.data.contract import Task
from modelyard.modeling.zoo import Family, is_classification
from modelyard.modeling.zoo.space import Choice, Float, Int, Space


class Dummy(Family):
    """The baseline every model must beat: the class prior, or the mean."""

    name = "dummy"

    def portfolio(self, task: Task) -> list[dict[str, Any]]:
        return [{"strategy": "prior" if is_classification(task) else "mean"}]

    def estimator(self, task: Task, seed: int) -> Any:
        from sklearn.dummy import DummyClassifier, DummyRegressor

        return DummyClassifier(random_state=seed) if is_classification(task) else DummyRegressor()


class Linear(Family):
    """Logistic regression (classification) or ridge regression, on scaled features."""

    name = "linear"

    def fixed(self, task: Task) -> dict[str, Any]:
        return {"max_iter": 1000} if is_classification(task) else {}

    def portfolio(self, task: Task) -> list[dict[str, Any]]:
        return [{"C": 1.0}] if is_classification(task) else [{"alpha": 1.0}]

    def space(self, task: Task) -> Space:
        if is_classification(task):
            return {"C": Float(1e-3, 1e2, log=True)}
        return {"alpha": Float(1e-3, 1e3, log=True)}

    def estimator(self, task: Task, seed: int) -> Any:
        from sklearn.linear_model import LogisticRegression, Ridge

        return LogisticRegression(random_state=seed) if is_classification(task) else Ridge()


class MLP(Family):
    """scikit-learn's multi-layer perceptron with early stopping on an internal split; for
    regression the target is standardised (prices in the thousands train poorly otherwise)."""

    name = "mlp"

    def fixed(self, task: Task) -> dict[str, Any]:
        return {"max_iter": 200, "early_stopping": True, "n_iter_no_change": 10}

    def portfolio(self, task: Task) -> list[dict[str, Any]]:
        return [
            {
                "width": 128,
                "layers": 2,
                "alpha": 1e-4,
                "learning_rate_init": 1e-3,
                "batch_size": 256,
            }
        ]

    def space(self, task: Task) -> Space:
        return {
            "width": Choice((32, 64, 128, 256)),
            "layers": Int(1, 3),
            "alpha": Float(1e-6, 1e-1, log=True),
            "learning_rate_init": Float(1e-4, 1e-2, log=True),
            "batch_size": Choice((64, 128, 256, 512)),
        }

    def estimator(self, task: Task, seed: int) -> Any:
        return ShapedMLP(task=task, random_state=seed)


class ShapedMLP(BaseEstimator):  # type: ignore[misc]
    """An MLP sized by ``width`` and ``layers`` (each layer half the previous one's width)."""

    def __init__(
        self,
        *,
        task: str = "binary",
        width: int = 128,
        layers: int = 2,
        alpha: float = 1e-4,
        learning_rate_init: float = 1e-3,
        batch_size: int = 256,
        max_iter: int = 200,
        early_stopping: bool = True,
        n_iter_no_change: int = 10,
        random_state: int = 0,
    ) -> None:
        self.task = task
        self.width = width
        self.layers = layers
        self.alpha = alpha
        self.learning_rate_init = learning_rate_init
        self.batch_size = batch_size
        self.max_iter = max_iter
        self.early_stopping = early_stopping
        self.n_iter_no_change = n_iter_no_change
        self.random_state = random_state

    def _network(self) -> Any:
        from sklearn.neural_network import MLPClassifier, MLPRegressor

        sizes = tuple(max(8, int(self.width) // (2**i)) for i in range(int(self.layers)))
        kwargs = {
            "hidden_layer_sizes": sizes,
            "alpha": self.alpha,
            "learning_rate_init": self.learning_rate_init,
            "batch_size": self.batch_size,
            "max_iter": self.max_iter,
            "early_stopping": self.early_stopping,
            "n_iter_no_change": self.n_iter_no_change,
            "random_state": self.random_state,
        }
        if is_classification(self.task):
            return MLPClassifier(**kwargs)
        from sklearn.compose import TransformedTargetRegressor
        from sklearn.preprocessing import StandardScaler

        return TransformedTargetRegressor(
            regressor=MLPRegressor(**kwargs), transformer=StandardScaler()
        )

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> ShapedMLP:
        self.model_ = self._network()
        if sample_weight is not None:
            self.model_.fit(X, y, sample_weight=np.asarray(sample_weight, dtype=np.float64))
        else:
            self.model_.fit(X, y)
        if is_classification(self.task):
            self.classes_ = self.model_.classes_
        return self

    def predict(self, X: Any) -> np.ndarray:
        return np.asarray(self.model_.predict(X))

    def predict_proba(self, X: Any) -> np.ndarray:
        return np.asarray(self.model_.predict_proba(X), dtype=np.float64)
