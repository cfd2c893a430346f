"""The unit of work of a search: one model configuration fitted on one fold (runs on workers).

:func:`fit_fold` fits a configuration on a fold's training rows (boosted families stop early
on the fold's validation rows), predicts the validation rows and scores them.
:func:`fit_member` refits a configuration on every training row for the final model.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from modelyard.modeling.search.data import SearchData
from modelyard.modeling.zoo import family


@dataclass
class FoldResult:
    """What one fit on one fold gave."""

    score: float
    predictions: np.ndarray
    """On the fold's validation rows: class probabilities (columns in ``SearchData.classes``
    order) or predicted values."""
    rounds: int | None
    """Boosted families: the rounds early stopping kept."""
    seconds: float
    """Wall-clock seconds of the fit and the prediction."""


def predict(estimator: Any, X: Any, n_classes: int) -> np.ndarray:
    """Probabilities over all ``n_classes`` codes (a fold may lack a class: its column is 0),
    or predicted values when ``n_classes`` is 0."""
    if n_classes == 0:
        return np.asarray(estimator.predict(X), dtype=np.float64)
    proba = np.asarray(estimator.predict_proba(X), dtype=np.float64)
    seen = np.asarray(estimator.classes_, dtype=np.int64)
    if len(seen) == n_classes and np.array_equal(seen, np.arange(n_classes)):
        return proba
    full = np.zeros((proba.shape[0], n_classes), dtype=np.float64)
    full[:, seen] = proba
    return full


def fit_fold(data: SearchData, name: str, params: dict[str, Any], fold: int) -> FoldResult:
    """Fit family ``name`` with ``params`` on fold ``fold`` of ``data``; score its validation."""
    fam = family(name)
    part = data.folds[fold]
    started = time.perf_counter()
    estimator = fam.build(data.task, params, data.seed)
    y_train = data.y[part.train]
    y_valid = data.y[part.valid]
    eval_set = (part.X_valid, y_valid) if fam.boosted else None
    rounds = fam.fit(estimator, part.X_train, y_train, part.w_train, eval_set)
    predictions = predict(estimator, part.X_valid, data.n_classes)
    seconds = time.perf_counter() - started
    return FoldResult(data.score(y_valid, predictions), predictions, rounds, seconds)


@dataclass
class TrainingSet:
    """Every training row, preprocessed by the final preprocessor (sent to workers once)."""

    task: str
    X: Any
    y: np.ndarray
    """Class codes or values."""
    w: np.ndarray | None
    seed: int


def fit_member(data: TrainingSet, name: str, params: dict[str, Any]) -> Any:
    """Fit family ``name`` with ``params`` (rounds included) on every training row."""
    fam = family(name)
    estimator = fam.build(data.task, params, data.seed)  # type: ignore[arg-type]
    fam.fit(estimator, data.X, data.y, data.w, None)
    return estimator
