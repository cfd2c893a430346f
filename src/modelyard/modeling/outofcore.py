"""The final fit on every training row of a table that does not fit in memory.

Two families train on every row without loading them all; each fit is one task on the
executor (serial, local or Dask: the same result) that streams the training table's parts
through the preprocessor fitted on the search sample, then boosts the rounds the search chose:

- XGBoost (:func:`fit_xgboost_external`): chunks of at most :data:`CHUNK_ROWS` rows into the
  external-memory ``ExtMemQuantileDMatrix`` (an ``xgboost.DataIter``; the quantised pages are
  cached on disk). One chunk is held at a time.
- LightGBM (:func:`fit_lightgbm_sequence`): one ``lightgbm.Sequence`` per part; LightGBM
  samples rows for its bins, then builds its binned ``Dataset`` block by block (at most a
  byte per value in memory). One part's frame and one block of :data:`BLOCK_ROWS`
  preprocessed rows are held at a time; the binned data and LightGBM's training arrays stay
  in memory (:func:`lightgbm_refit_bytes` estimates them).

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
BLOCK_ROWS = 100_000
"""Rows preprocessed and handed to LightGBM's binned ``Dataset`` at once."""


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
    """The target (class codes) and weights of every row, as ``float32`` (what LightGBM
    stores: the same values it would convert them to), and the rows of each part: only those
    columns are read."""
    import polars as pl

    target = problem.contract.target or ""
    columns = [target] + ([problem.weight_column] if problem.weight_column else [])
    weighted = problem.weight_column is not None or balance is not None
    ys: list[np.ndarray] = []
    ws: list[np.ndarray] = []
    rows: list[int] = []
    for path in parts:
        frame = pl.read_parquet(path, columns=columns)
        rows.append(frame.height)
        codes: np.ndarray | None = None
        if classes is not None:
            labels = frame[target].cast(pl.String)
            found = labels.replace_strict(
                classes, list(range(len(classes))), default=None, return_dtype=pl.Int32
            )
            if found.null_count():
                unknown = sorted({str(v) for v in labels.filter(found.is_null()).unique()})
                raise ModelyardError(
                    f"training rows of {path} have class(es) {unknown[:5]} that the search "
                    "sample lacks",
                    where="train",
                    fix="This is a bug: the sample keeps every class; please report it.",
                )
            codes = found.to_numpy()
            ys.append(codes.astype(np.float32))
        else:
            ys.append(frame[target].cast(pl.Float64).to_numpy().astype(np.float32))
        if weighted:
            w = np.ones(frame.height)
            if problem.weight_column:
                w = frame[problem.weight_column].cast(pl.Float64).fill_null(0.0).to_numpy()
            if balance is not None:
                assert codes is not None
                w = w * balance[codes]
            ws.append(w.astype(np.float32))  # the product in float64, as before
        del frame
    y = np.concatenate(ys) if ys else np.zeros(0, np.float32)
    ys.clear()
    return y, (np.concatenate(ws) if weighted else None), rows


class _Blocks:
    """The rows of the parts, preprocessed a block of :data:`BLOCK_ROWS` rows at a time: one
    part's frame and one block's matrix are held (a whole part's preprocessing held several
    copies of it: 650 MB for 400,000 rows x 43 features). The preprocessor is fitted, so a
    block's rows get the values they would get in a whole part."""

    def __init__(self, problem: Problem, preprocessor: Any) -> None:
        self.problem = problem
        self.preprocessor = preprocessor
        self._frame: tuple[str, Any] | None = None
        self._block: tuple[str, int, np.ndarray] | None = None

    def clear(self) -> None:
        self._frame = self._block = None

    def block(self, path: str, number: int) -> np.ndarray:
        if self._block is not None and self._block[:2] == (path, number):
            return self._block[2]
        import polars as pl

        self._block = None
        if self._frame is None or self._frame[0] != path:
            self._frame = None
            self._frame = (path, pl.read_parquet(path))
        X, _, _ = self.problem.xy(self._frame[1].slice(number * BLOCK_ROWS, BLOCK_ROWS))
        out = self.preprocessor.transform(X)
        if hasattr(out, "toarray"):
            out = out.toarray()
        matrix = np.asarray(out, dtype=np.float64)
        self._block = (path, number, matrix)
        return matrix

    def rows(self, path: str, total: int, index: Any) -> np.ndarray:
        """``index`` (a row, or a slice of rows) of the part at ``path`` of ``total`` rows."""
        if isinstance(index, slice):
            start, stop, step = index.indices(total)
            if step != 1:
                raise IndexError("a part is read in order, by rows or slices of step 1")
            pieces = []
            while start < stop:
                number, offset = divmod(start, BLOCK_ROWS)
                end = min(stop, (number + 1) * BLOCK_ROWS)
                pieces.append(self.block(path, number)[offset : offset + end - start])
                start = end
            if not pieces:
                return self.block(path, 0)[:0]
            return pieces[0] if len(pieces) == 1 else np.concatenate(pieces)
        row = int(index)
        if row < 0:
            row += total
        number, offset = divmod(row, BLOCK_ROWS)
        picked: np.ndarray = self.block(path, number)[offset]
        return picked


def _release_free_memory() -> None:
    """Give the C heap's free pages back to the system (glibc's ``malloc_trim``; nothing
    elsewhere): the freed transients of the Dataset's construction, which the training's
    arrays would not all reuse."""
    import contextlib
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    if name:
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(name).malloc_trim(0)


def lightgbm_params(
    problem: Problem, params: dict[str, Any], n_classes: int, seed: int, threads: int
) -> tuple[dict[str, Any], int]:
    """LightGBM's native parameters for the family's ``params``, and the rounds to boost."""
    from modelyard.modeling.zoo import family

    template = family("lightgbm").build(problem.task, params, seed)
    own = template.get_params()
    rounds = int(own.pop("n_estimators"))
    for name in ("class_weight", "importance_type", "objective", "n_jobs"):
        own.pop(name, None)
    objective = {0: "regression", 2: "binary"}.get(n_classes, "multiclass")
    native = {k: v for k, v in own.items() if v is not None}
    # column-wise histograms: LightGBM's automatic choice builds the row-wise copy of the
    # binned data too, to time both (at 4M rows x 43 features: a 450 MB peak, 348 col-wise)
    native.update(objective=objective, num_threads=threads, verbose=-1, force_col_wise=True)
    if n_classes > 2:
        native["num_class"] = n_classes
    return native, rounds


def lightgbm_refit_bytes(rows: int, features: int, classes: int, weighted: bool) -> int:
    """About the peak memory of :func:`fit_lightgbm_sequence` above its process's own, in
    bytes, from ``bench/lightgbm_refit_memory.py`` (binary, 43 features: 0.42, 0.76 and 1.95
    GB measured at 2.4M, 8M and 24M rows; 0.46, 0.76 and 2.27 GB estimated).

    The Dataset, per row: the binned data (at most a byte per feature: Exclusive Feature
    Bundling and 4-bit bins make it less) and the label (and weight) as float32, in Python and
    in LightGBM. Then the larger of what its construction holds besides (the rows sampled for
    the bins, 200,000 at most, and the block being pushed) and the training's arrays (per row:
    8 bytes of score and 8 of gradient and hessian per tree of a round, 28 for bagging, the
    data partition and the ordered gradients)."""
    trees = classes if classes > 2 else 1
    dataset = rows * (features + 8 + (8 if weighted else 0))
    construction = min(rows, 200_000) * features * 24 + BLOCK_ROWS * features * 8 * 4
    return dataset + max(construction, rows * (16 * trees + 28))


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

    started = time.perf_counter()
    n_classes = len(classes) if classes is not None else 0
    native, rounds = lightgbm_params(problem, params, n_classes, seed, threads)
    y, w, sizes = _targets(parts, problem, classes, balance)
    blocks = _Blocks(problem, preprocessor)

    class Part(lgb.Sequence):
        batch_size = BLOCK_ROWS  # LightGBM pushes one block at a time

        def __init__(self, path: str, rows: int) -> None:
            self.path = path
            self.rows = rows

        def __len__(self) -> int:
            return self.rows

        def __getitem__(self, index: Any) -> np.ndarray:
            return blocks.rows(self.path, self.rows, index)

    sequences = [Part(p, n) for p, n in zip(parts, sizes, strict=True) if n]
    dataset = lgb.Dataset(sequences, label=y, weight=w, params=native, free_raw_data=True)
    del y, w  # the Dataset keeps the label (float32) as long as it lives
    dataset.construct()
    blocks.clear()
    n_parts = len(sequences)
    del sequences
    _release_free_memory()  # the parts' transients, before the training's own arrays
    booster = lgb.train(native, dataset, num_boost_round=rounds)
    rows = int(dataset.num_data())
    features = int(dataset.num_feature())
    del dataset
    estimator = LightGBMBooster(booster, n_classes, features)
    return ExternalFit(
        estimator, rows, n_parts, time.perf_counter() - started,
        method=f"lightgbm.Dataset binned from {n_parts} part(s)",
    )  # fmt: skip
