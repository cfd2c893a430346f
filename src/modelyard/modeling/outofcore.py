"""The final fit on every training row of a table that does not fit in memory.

Two families train on every row without loading them all; each fit is one task on the
executor (serial, local or Dask: the same result) that streams the training table's parts
through the preprocessor fitted on the search sample, then boosts the rounds the search chose:

- XGBoost (:func:`fit_xgboost_external`): chunks of at most :data:`CHUNK_ROWS` rows into the
  external-memory ``ExtMemQuantileDMatrix`` (an ``xgboost.DataIter``; the quantised pages are
  cached on disk). One chunk is held at a time.
- LightGBM (:func:`fit_lightgbm_sequence`): one ``lightgbm.Sequence`` per part; LightGBM
  samples rows for its bins, then builds its binned ``Dataset`` part by part (one byte per
  value in memory: 8 M rows x 20 columns is 160 MB). One part is held at a time.

The other families (linear models, k-NN, scikit-learn's trees and boosting, CatBoost, the MLP)
cannot: they are fitted on the in-memory sample, and the trained model records which member saw
how many rows (:class:`MemberFit`).
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

OUT_OF_CORE = ("xgboost", "lightgbm")
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
    """What streamed the rows into the library."""


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
    threads: int = 1,
) -> ExternalFit:
    """Fit XGBoost with ``params`` (the search's, with its refit rounds) on every row of
    ``parts``, out of core, on ``threads`` threads; the estimator is the same kind
    :func:`fit_member` returns (fitted on class codes)."""
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
    native.update(tree_method="hist", nthread=threads, verbosity=0)
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
            Parts(), max_bin=int(native.get("max_bin", 256)), nthread=threads
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
    chunks = int(state["chunks"])
    return ExternalFit(
        estimator, rows, chunks, time.perf_counter() - started,
        method=f"xgboost.ExtMemQuantileDMatrix, {chunks} chunks",
    )  # fmt: skip


class LightGBMBooster:
    """A LightGBM booster trained on a table's parts, with the interface of the family's
    scikit-learn estimator that the ensemble uses (fitted on class codes ``0..k-1``).

    It predicts with OpenMP's default threads (``num_threads=0``): every core in the main
    process, one in the executor's workers (their ``OMP_NUM_THREADS`` is 1)."""

    predict_is_argmax = True

    def __init__(self, booster: Any, classes: int, features: int) -> None:
        self.booster_ = booster
        self.n_features_in_ = features
        if classes:
            self.classes_ = np.arange(classes, dtype=np.int64)

    def predict_proba(self, X: Any) -> np.ndarray:
        p = np.asarray(self.booster_.predict(X, num_threads=0), dtype=np.float64)
        if p.ndim == 1:
            return np.column_stack([1.0 - p, p])
        return p

    def predict(self, X: Any) -> np.ndarray:
        if hasattr(self, "classes_"):
            labels: np.ndarray = self.classes_[np.argmax(self.predict_proba(X), axis=1)]
            return labels
        return np.asarray(self.booster_.predict(X, num_threads=0), dtype=np.float64)


def _targets(
    parts: list[str], problem: Problem, classes: list[str] | None, balance: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray | None, list[int]]:
    """The target (class codes) and weights of every row, and the rows of each part: only
    those columns are read."""
    import polars as pl

    target = problem.contract.target or ""
    columns = [target] + ([problem.weight_column] if problem.weight_column else [])
    lookup = {label: i for i, label in enumerate(classes)} if classes is not None else None
    ys: list[np.ndarray] = []
    ws: list[np.ndarray] = []
    rows: list[int] = []
    for path in parts:
        frame = pl.read_parquet(path, columns=columns)
        rows.append(frame.height)
        if lookup is not None:
            labels = frame[target].cast(pl.String).to_list()
            unknown = sorted({str(v) for v in labels} - set(lookup))
            if unknown:
                raise ModelyardError(
                    f"training rows of {path} have class(es) {unknown[:5]} that the search "
                    "sample lacks",
                    where="train",
                    fix="This is a bug: the sample keeps every class; please report it.",
                )
            ys.append(np.fromiter((lookup[str(v)] for v in labels), np.int64, frame.height))
        else:
            ys.append(frame[target].cast(pl.Float64).to_numpy())
        w = np.ones(frame.height)
        if problem.weight_column:
            w = frame[problem.weight_column].cast(float).fill_null(0.0).to_numpy()
        if balance is not None:
            w = w * balance[ys[-1]]
        ws.append(w)
    y = np.concatenate(ys) if ys else np.zeros(0)
    weighted = problem.weight_column is not None or balance is not None
    return y, (np.concatenate(ws) if weighted else None), rows


def fit_lightgbm_sequence(
    parts: list[str],
    problem: Problem,
    preprocessor: Any,
    params: dict[str, Any],
    classes: list[str] | None,
    balance: np.ndarray | None,
    seed: int,
    threads: int = 1,
) -> ExternalFit:
    """Fit LightGBM with ``params`` (the search's, with its refit rounds) on every row of
    ``parts``, on ``threads`` threads: a binned ``Dataset`` built from one
    ``lightgbm.Sequence`` per part."""
    import lightgbm as lgb
    import polars as pl

    from modelyard.modeling.zoo import family

    started = time.perf_counter()
    template = family("lightgbm").build(problem.task, params, seed)
    own = template.get_params()
    rounds = int(own.pop("n_estimators"))
    for name in ("class_weight", "importance_type", "objective", "n_jobs"):
        own.pop(name, None)
    n_classes = len(classes) if classes is not None else 0
    objective = {0: "regression", 2: "binary"}.get(n_classes, "multiclass")
    native = {k: v for k, v in own.items() if v is not None}
    # column-wise histograms: LightGBM's automatic choice builds the row-wise copy of the
    # binned data too, to time both (at 4M rows x 43 features: a 450 MB peak, 348 col-wise)
    native.update(objective=objective, num_threads=threads, verbose=-1, force_col_wise=True)
    if n_classes > 2:
        native["num_class"] = n_classes
    y, w, sizes = _targets(parts, problem, classes, balance)
    held: dict[str, np.ndarray] = {}

    def matrix(path: str) -> np.ndarray:
        """The part, preprocessed (one part is held at a time)."""
        if path not in held:
            held.clear()
            X, _, _ = problem.xy(pl.read_parquet(path))
            out = preprocessor.transform(X)
            if hasattr(out, "toarray"):
                out = out.toarray()
            held[path] = np.asarray(out, dtype=np.float64)
        return held[path]

    class Part(lgb.Sequence):
        batch_size = CHUNK_ROWS

        def __init__(self, path: str, rows: int) -> None:
            self.path = path
            self.rows = rows

        def __len__(self) -> int:
            return self.rows

        def __getitem__(self, index: Any) -> np.ndarray:
            rows: np.ndarray = matrix(self.path)[index]
            return rows

    sequences = [Part(p, n) for p, n in zip(parts, sizes, strict=True) if n]
    dataset = lgb.Dataset(sequences, label=y, weight=w, params=native, free_raw_data=True)
    booster = lgb.train(native, dataset, num_boost_round=rounds)
    rows = int(dataset.num_data())
    features = int(dataset.num_feature())
    held.clear()
    del dataset
    estimator = LightGBMBooster(booster, n_classes, features)
    return ExternalFit(
        estimator, rows, len(sequences), time.perf_counter() - started,
        method=f"lightgbm.Dataset binned from {len(sequences)} part(s)",
    )  # fmt: skip
