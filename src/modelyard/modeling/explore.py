"""Model exploration: every candidate scored by cross-validation into a :class:`Leaderboard`.

Each candidate is ``Pipeline([("features", clone(preprocessor)), ("model", make_model(...))])``,
refitted per fold, scored on the held-out fold by an injected ``scorer``. All candidates see the
very same folds. A candidate that raises is recorded with its ``error`` and ranked last; the
others carry on.
"""

from __future__ import annotations

import math
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd  # type: ignore[import-untyped,unused-ignore]
from pydantic import BaseModel, ConfigDict, Field

from modelyard.data.contract import Task
from modelyard.modeling.zoo import default_params, make_model

__all__ = [
    "Leaderboard",
    "LeaderboardRow",
    "Progress",
    "Scorer",
    "cross_validate",
    "explore",
    "make_pipeline",
]

Scorer = Callable[[np.ndarray, np.ndarray, "np.ndarray | None", "np.ndarray | None"], float]
"""``scorer(y_true, y_pred, y_proba, classes) -> float``; ``y_proba`` and ``classes`` are None
for regression."""

Progress = Callable[[int, int, str], None]
"""``progress(done, total, what)``."""


class LeaderboardRow(BaseModel):
    """One candidate's cross-validated score."""

    model_config = ConfigDict(extra="forbid")

    name: str
    """Model family (see :data:`modelyard.modeling.zoo.MODEL_NAMES`)."""
    mean: float | None
    """Mean of the fold scores (None when the candidate failed)."""
    std: float | None
    """Standard deviation of the fold scores."""
    scores: list[float] = Field(default_factory=list)
    """One score per fold, in fold order."""
    fit_seconds: float | None = None
    """Mean wall-clock seconds of one fold's fit."""
    params: dict[str, Any] = Field(default_factory=dict)
    """The model's hyper-parameters (defaults merged with overrides)."""
    error: str | None = None
    """``ExceptionType: message`` when the candidate failed."""


class Leaderboard(BaseModel):
    """Candidates sorted best first (failed ones last)."""

    model_config = ConfigDict(extra="forbid")

    rows: list[LeaderboardRow]
    greater_is_better: bool
    n_folds: int

    @property
    def best(self) -> LeaderboardRow | None:
        """The best candidate that did not fail."""
        return next((r for r in self.rows if r.error is None and r.mean is not None), None)

    def top(self, k: int, *, exclude: Sequence[str] = ("dummy",)) -> list[LeaderboardRow]:
        """The ``k`` best successful candidates, leaving out ``exclude``."""
        ok = [r for r in self.rows if r.error is None and r.mean is not None]
        return [r for r in ok if r.name not in exclude][:k]


def _sort_key(row: LeaderboardRow, greater_is_better: bool) -> tuple[int, float]:
    if row.error is not None or row.mean is None or math.isnan(row.mean):
        return (1, 0.0)
    return (0, -row.mean if greater_is_better else row.mean)


def sort_rows(rows: Sequence[LeaderboardRow], greater_is_better: bool) -> list[LeaderboardRow]:
    """Best first (stable: ties keep the candidates' order); failures last."""
    return sorted(rows, key=lambda r: _sort_key(r, greater_is_better))


def make_pipeline(preprocessor: Any, model: Any) -> Any:
    """``Pipeline([("features", clone(preprocessor)), ("model", model)])``."""
    from sklearn.base import clone
    from sklearn.pipeline import Pipeline

    return Pipeline([("features", clone(preprocessor)), ("model", model)])


def _take(X: Any, idx: np.ndarray) -> Any:
    return X.iloc[idx] if isinstance(X, pd.DataFrame | pd.Series) else X[idx]


def score_fitted(pipeline: Any, X: Any, y: np.ndarray, scorer: Scorer) -> float:
    """Score a fitted pipeline on ``(X, y)`` with ``scorer``."""
    y_pred = np.asarray(pipeline.predict(X))
    classes = getattr(pipeline, "classes_", None)
    y_proba = None
    if classes is not None and hasattr(pipeline, "predict_proba"):
        y_proba = np.asarray(pipeline.predict_proba(X))
    return float(scorer(y, y_pred, y_proba, None if classes is None else np.asarray(classes)))


def cross_validate(
    pipeline: Any,
    X: Any,
    y: np.ndarray,
    *,
    folds: Sequence[tuple[np.ndarray, np.ndarray]],
    scorer: Scorer,
    sample_weight: np.ndarray | None = None,
    on_fold: Callable[[int, list[float]], None] | None = None,
) -> tuple[list[float], list[float]]:
    """Fit a clone of ``pipeline`` on each fold's training rows, score its held-out rows.

    Returns ``(scores, fit_seconds)``. ``on_fold(i, scores_so_far)`` runs after each fold (the
    tuner reports to Optuna and may raise ``TrialPruned`` there).
    """
    from sklearn.base import clone

    scores: list[float] = []
    seconds: list[float] = []
    for i, (train, valid) in enumerate(folds):
        model = clone(pipeline)
        fit_kw = {} if sample_weight is None else {"model__sample_weight": sample_weight[train]}
        start = time.perf_counter()
        model.fit(_take(X, train), y[train], **fit_kw)
        seconds.append(time.perf_counter() - start)
        scores.append(score_fitted(model, _take(X, valid), y[valid], scorer))
        if on_fold is not None:
            on_fold(i, scores)
    return scores, seconds


def make_folds(
    cv: Any, X: Any, y: np.ndarray, groups: np.ndarray | None = None
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Materialise the splitter's folds once, so every candidate sees the same ones."""
    return [(np.asarray(a), np.asarray(b)) for a, b in cv.split(X, y, groups)]


def _error(exc: BaseException) -> str:
    last = traceback.extract_tb(exc.__traceback__)[-1:] if exc.__traceback__ else []
    where = f" (at {last[0].filename.rsplit('/', 1)[-1]}:{last[0].lineno})" if last else ""
    return f"{type(exc).__name__}: {exc}{where}"


def explore(
    X: pd.DataFrame,
    y: np.ndarray,
    *,
    task: Task,
    candidates: Sequence[str],
    preprocessor: Any,
    cv: Any,
    scorer: Scorer,
    greater_is_better: bool,
    seed: int,
    class_weight: str = "none",
    sample_weight: np.ndarray | None = None,
    params: Mapping[str, Mapping[str, Any]] | None = None,
    groups: np.ndarray | None = None,
    progress: Progress | None = None,
) -> Leaderboard:
    """Cross-validate every candidate on the same folds; the leaderboard is sorted best first.

    ``params`` optionally overrides hyper-parameters per candidate (``{"xgboost": {...}}``);
    ``groups`` goes to ``cv.split`` (group k-fold). ``progress(done, total, name)`` is called
    before each candidate and once at the end.
    """
    y = np.asarray(y)
    folds = make_folds(cv, X, y, groups)
    rows: list[LeaderboardRow] = []
    total = len(candidates)
    for done, name in enumerate(candidates):
        if progress is not None:
            progress(done, total, name)
        overrides = dict((params or {}).get(name, {}))
        try:
            merged = default_params(name, task)
            merged.update(overrides)
            model = make_model(name, task, params=overrides, seed=seed, class_weight=class_weight)
            scores, seconds = cross_validate(
                make_pipeline(preprocessor, model),
                X,
                y,
                folds=folds,
                scorer=scorer,
                sample_weight=sample_weight,
            )
        except Exception as exc:  # one candidate failing must not stop the others
            rows.append(
                LeaderboardRow(
                    name=name, mean=None, std=None, params=_jsonable(overrides), error=_error(exc)
                )
            )
            continue
        rows.append(
            LeaderboardRow(
                name=name,
                mean=float(np.mean(scores)),
                std=float(np.std(scores)),
                scores=[float(s) for s in scores],
                fit_seconds=float(np.mean(seconds)),
                params=_jsonable(merged),
            )
        )
    if progress is not None:
        progress(total, total, "done")
    return Leaderboard(
        rows=sort_rows(rows, greater_is_better),
        greater_is_better=greater_is_better,
        n_folds=len(folds),
    )


def _jsonable(params: Mapping[str, Any]) -> dict[str, Any]:
    """Tuples become lists, numpy scalars Python ones (rows go to JSON and MLflow)."""
    out: dict[str, Any] = {}
    for key, value in params.items():
        if isinstance(value, tuple):
            out[key] = list(value)
        elif isinstance(value, np.generic):
            out[key] = value.item()
        else:
            out[key] = value
    return out
