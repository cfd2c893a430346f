"""The final fit on every training row of a table that does not fit in memory.

XGBoost trains out of core: :func:`fit_xgboost_external` is one task (run on the executor)
that streams the training table's parts through the preprocessor fitted on the search sample,
a chunk of at most :data:`CHUNK_ROWS` rows at a time, into XGBoost's external-memory
``ExtMemQuantileDMatrix`` (an ``xgboost.DataIter``: the quantised pages are cached on disk),
then boosts the rounds the search chose. No more than one chunk is held at once.

The other families (linear models, k-NN, scikit-learn's trees and boosting, LightGBM and
CatBoost here) cannot: they are fitted on the in-memory sample, and the trained model records
which member saw how many rows (:class:`MemberFit`).
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from modelyard.errors import ModelyardError

if TYPE_CHECKING:
    from modelyard.modeling.stages import Problem

OUT_OF_CORE = ("xgboost",)
"""The families refitted on every row of a table of several parts."""
CHUNK_ROWS = 200_000
"""Rows preprocessed and handed to XGBoost at once."""


@dataclass(frozen=True)
class MemberFit:
    """How one member of the final model was fitted."""

    name: str
    family: str
    rows: int
    """Training rows it was fitted on."""
    how: str
    """``all rows, out of core (XGBoost external memory)``, ``in memory``, or ``the sample:
    <reason>``."""
    seconds: float = 0.0


@dataclass(frozen=True)
class ExternalFit:
    """What :func:`fit_xgboost_external` returns."""

    estimator: Any
    rows: int
    chunks: int
    seconds: float
    method: str = "xgboost.ExtMemQuantileDMatrix"


def _chunks(
    parts: list[str], problem: Problem, preprocessor: Any, classes: list[str] | None,
    balance: np.ndarray | None,
) -> Iterator[tuple[Any, np.ndarray, np.ndarray | None]]:  # fmt: skip
    """``(X, y, w)`` per chunk of the parts, preprocessed; ``y`` as class codes."""
    import polars as pl

    lookup = {label: i for i, label in enumerate(classes)} if classes is not None else None
    for path in parts:
        frame = pl.read_parquet(path)
        for start in range(0, frame.height, CHUNK_ROWS):
            chunk = frame.slice(start, CHUNK_ROWS)
            X, y, w = problem.xy(chunk)
            if lookup is not None:
                labels = np.asarray(y).astype(str)
                unknown = sorted(set(np.unique(labels)) - set(lookup))
                if unknown:
                    raise ModelyardError(
                        f"training rows of {path} have class(es) {unknown[:5]} that the "
                        "search sample lacks",
                        where="train",
                        fix="This is a bug: the sample keeps every class; please report it.",
                    )
                codes = np.fromiter((lookup[v] for v in labels), np.int64, len(labels))
                if balance is not None:
                    w = balance[codes] if w is None else w * balance[codes]
                y = codes
            else:
                y = np.asarray(y, dtype=np.float64)
            yield preprocessor.transform(X), y, w


def fit_xgboost_external(
    parts: list[str],
    problem: Problem,
    preprocessor: Any,
    params: dict[str, Any],
    classes: list[str] | None,
    balance: np.ndarray | None,
    seed: int,
    cache: str,
) -> ExternalFit:
    """Fit XGBoost with ``params`` (the search's, with its refit rounds) on every row of
    ``parts``, out of core; the estimator is the same kind :func:`fit_member` returns (fitted
    on class codes)."""
    import xgboost as xgb

    from modelyard.modeling.zoo import family
    from modelyard.modeling.zoo.boosting import XGBoostClassifier

    started = time.perf_counter()
    fam = family("xgboost")
    template = fam.build(problem.task, params, seed)
    rounds = int(template.get_params()["n_estimators"])
    if isinstance(template, XGBoostClassifier):
        own = template.get_params()
        own.pop("early_stopping_rounds", None)
        native = xgb.XGBClassifier(tree_method="hist", **own).get_xgb_params()
    else:
        native = template.get_xgb_params()
    native = {k: v for k, v in native.items() if v is not None}
    n_classes = len(classes) if classes is not None else 0
    if n_classes > 2:
        native.update(objective="multi:softprob", num_class=n_classes)
    elif n_classes == 2:
        native["objective"] = "binary:logistic"
    native.update(tree_method="hist", nthread=1, verbosity=0)
    folder = Path(cache)
    folder.mkdir(parents=True, exist_ok=True)
    state: dict[str, Any] = {"rows": 0, "chunks": 0, "features": None}

    class Parts(xgb.DataIter):
        def __init__(self) -> None:
            self._it: Iterator[Any] | None = None
            super().__init__(cache_prefix=str(folder / "xgb"))

        def reset(self) -> None:
            self._it = None

        def next(self, input_data: Any) -> bool:
            if self._it is None:
                self._it = _chunks(parts, problem, preprocessor, classes, balance)
                state["rows"] = state["chunks"] = 0
            for X, y, w in self._it:
                if len(y) == 0:
                    continue
                state["rows"] += len(y)
                state["chunks"] += 1
                state["features"] = X.shape[1]
                input_data(data=X, label=y, weight=w)
                return True
            return False

    try:
        matrix = xgb.ExtMemQuantileDMatrix(
            Parts(), max_bin=int(native.get("max_bin", 256)), nthread=1
        )
        booster = xgb.train(native, matrix, num_boost_round=rounds)
        rows = int(matrix.num_row())
        del matrix
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    raw = booster.save_raw("json")
    if classes is not None:
        inner = xgb.XGBClassifier()
        inner.load_model(raw)
        estimator = XGBoostClassifier(**template.get_params())
        estimator.model_ = inner
        estimator.classes_ = np.arange(n_classes, dtype=np.int64)
        estimator.n_features_in_ = int(state["features"] or booster.num_features())
    else:
        estimator = xgb.XGBRegressor()
        estimator.load_model(raw)
    return ExternalFit(estimator, rows, int(state["chunks"]), time.perf_counter() - started)
