"""Evaluation of a fitted model on the hold-out test set (a big test set is predicted in
chunks, side by side on the executor).

What is reported (:class:`Evaluation`):

- ``metrics``: every metric of the task (:data:`~modelyard.modeling.tasks.METRICS`), label
  metrics from ``model.predict`` (for binary tasks: probability >= 0.5, scikit-learn's rule),
  probability metrics from ``model.predict_proba``.
- binary only, the **decision threshold**: ``threshold`` is the one to deploy and
  ``threshold_metrics`` the label metrics (f1, precision, recall, accuracy) at it; the
  confusion matrix is drawn at it too. Where it comes from (``threshold_source``):

  * ``"given"``: passed in by the caller, who chose it on out-of-fold predictions of the
    training data (the honest way; see :func:`choose_threshold`);
  * ``"default"``: 0.5 (``evaluation.threshold: default``);
  * ``"test"``: chosen here on the test predictions because no threshold was given. Its
    ``threshold_metrics`` are then optimistic (the threshold saw the test labels); the headline
    ``metrics`` are not affected.

- the positive class (binary) is the greater label (``classes_[1]``), see
  :mod:`modelyard.modeling.tasks`.
- curves (binary): ROC, precision-recall and a 10-bin calibration curve, at most 200 points;
  a confusion matrix for classification; residuals for regression (at most 1,000 sampled
  points plus a summary); permutation importance of the input columns (200 to 2,000 test
  rows by the table's width and classes, 2 to 5 repeats, one task per column on the
  executor); per-slice metrics for ``evaluation.slices`` columns (a numeric column with
  more than 20 values is cut into quartiles; missing values are their own slice).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import polars as pl
from pydantic import BaseModel, ConfigDict

from modelyard.compute import Executor
from modelyard.config.schema import EvaluationSection
from modelyard.data.contract import DataContract, Task, did_you_mean
from modelyard.data.table import Table
from modelyard.errors import ModelyardError, name_list
from modelyard.modeling.tasks import compute_metrics, positive_class, resolve_metric, sklearn_scorer

MAX_CURVE_POINTS = 200
MAX_RESIDUAL_POINTS = 1000
MAX_IMPORTANCE_ROWS = 2000
MIN_IMPORTANCE_ROWS = 200
IMPORTANCE_CELLS = 60_000
"""Permutation importance predicts about this many row-columns in all: a wide table, or one
with many classes (a boosted model grows a tree per class), gets fewer rows."""
PARALLEL_ROWS = 20_000
"""Test sets at least this big are predicted in chunks, side by side on the executor."""
IMPORTANCE_REPEATS = 5
IMPORTANCE_PREDICTIONS = 100
"""At most this many shuffled predictions in all: wide tables get fewer repeats (at least 2)."""
_SLICE_MAX_VALUES = 20
_MISSING = "(missing)"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ConfusionMatrix(_Model):
    labels: list[str]
    """Class labels, in the order of the matrix rows (true) and columns (predicted)."""
    matrix: list[list[int]]


class CurvePoint(_Model):
    x: float
    y: float
    threshold: float | None = None


class CalibrationPoint(_Model):
    predicted: float
    """Mean predicted probability of the positive class in the bin."""
    observed: float
    """Share of positives in the bin."""
    count: int


class Residuals(_Model):
    predicted: list[float]
    actual: list[float]
    summary: dict[str, float]
    """mean, std, mae, median_abs and p95_abs of ``actual - predicted`` over all test rows."""


class Importance(_Model):
    feature: str
    mean: float
    std: float


class SliceMetrics(_Model):
    column: str
    value: str
    rows: int
    metrics: dict[str, float]


class Evaluation(_Model):
    """The evaluation of one model on the hold-out test set."""

    task: Task
    metric: str
    metrics: dict[str, float]
    rows: int
    positive_class: str | None = None
    threshold: float | None = None
    threshold_source: Literal["given", "default", "test"] | None = None
    threshold_metrics: dict[str, float] | None = None
    confusion_matrix: ConfusionMatrix | None = None
    roc_curve: list[CurvePoint] | None = None
    pr_curve: list[CurvePoint] | None = None
    calibration: list[CalibrationPoint] | None = None
    residuals: Residuals | None = None
    permutation_importance: list[Importance] | None = None
    slices: list[SliceMetrics] = []
    unseen_classes: list[str] = []
    """Test labels the model never saw in training (probability metrics are left out then)."""

    @property
    def score(self) -> float:
        """The value of the selected metric."""
        return self.metrics.get(self.metric, math.nan)


# --------------------------------------------------------------------------- thresholds


def choose_threshold(
    y_true: Any,
    p_positive: Any,
    *,
    positive: str,
    method: Literal["default", "f1", "cost"],
    cost_ratio: float = 1.0,
) -> float:
    """The decision threshold on the positive class's probability (predict positive if >=).

    ``f1`` maximises F1; ``cost`` minimises ``cost_ratio * FN + FP``; ``default`` is 0.5.
    Call it on out-of-fold predictions of the training data and pass the result to
    :func:`evaluate` to keep the test set unseen.
    """
    if method == "default":
        return 0.5
    y = np.asarray(y_true).astype(str) == str(positive)
    p = np.asarray(p_positive, dtype=np.float64)
    if y.all() or not y.any():
        return 0.5
    order = np.argsort(-p, kind="stable")
    p_sorted, y_sorted = p[order], y[order]
    # candidate thresholds: each distinct probability, predicting positive for p >= it
    last = np.r_[np.flatnonzero(np.diff(p_sorted)), len(p_sorted) - 1]
    tp = np.cumsum(y_sorted)[last].astype(np.float64)
    fp = (last + 1 - tp).astype(np.float64)
    fn = y.sum() - tp
    if method == "f1":
        value = 2 * tp / (2 * tp + fp + fn)
        best = int(np.argmax(value))
    else:
        cost = cost_ratio * fn + fp
        # also consider predicting nothing positive (threshold above every probability)
        if y.sum() * cost_ratio < cost.min():
            return float(np.nextafter(p.max(), np.inf))
        best = int(np.argmin(cost))
    return float(p_sorted[last[best]])


# --------------------------------------------------------------------------- helpers


def _downsample(n: int, limit: int = MAX_CURVE_POINTS) -> np.ndarray:
    if n <= limit:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, limit).round().astype(np.int64))


def _points(xs: np.ndarray, ys: np.ndarray, ts: np.ndarray | None) -> list[CurvePoint]:
    idx = _downsample(len(xs))
    out = []
    for i in idx:
        t = None if ts is None or i >= len(ts) or not np.isfinite(ts[i]) else float(ts[i])
        out.append(CurvePoint(x=float(xs[i]), y=float(ys[i]), threshold=t))
    return out


def _curves(
    y01: np.ndarray, p: np.ndarray
) -> tuple[list[CurvePoint], list[CurvePoint], list[CalibrationPoint]]:
    from sklearn.metrics import precision_recall_curve, roc_curve

    fpr, tpr, roc_t = roc_curve(y01, p)
    precision, recall, pr_t = precision_recall_curve(y01, p)
    # precision_recall_curve runs from high recall to low; report it by increasing recall
    pr = _points(recall[::-1], precision[::-1], np.r_[np.inf, pr_t[::-1]])
    bins = np.clip((p * 10).astype(np.int64), 0, 9)
    calibration = []
    for b in range(10):
        mask = bins == b
        if mask.any():
            calibration.append(
                CalibrationPoint(
                    predicted=float(p[mask].mean()),
                    observed=float(y01[mask].mean()),
                    count=int(mask.sum()),
                )
            )
    return _points(fpr, tpr, roc_t), pr, calibration


def _residuals(y: np.ndarray, pred: np.ndarray, seed: int) -> Residuals:
    err = y - pred
    abs_err = np.abs(err)
    summary = {
        "mean": float(err.mean()),
        "std": float(err.std()),
        "mae": float(abs_err.mean()),
        "median_abs": float(np.median(abs_err)),
        "p95_abs": float(np.quantile(abs_err, 0.95)),
    }
    idx = np.arange(len(y))
    if len(y) > MAX_RESIDUAL_POINTS:
        idx = np.sort(
            np.random.default_rng(seed).choice(len(y), MAX_RESIDUAL_POINTS, replace=False)
        )
    return Residuals(
        predicted=[float(v) for v in pred[idx]],
        actual=[float(v) for v in y[idx]],
        summary=summary,
    )


def _slice_values(s: pl.Series) -> tuple[np.ndarray, list[str]]:
    """Per row the slice label of ``s``, and the labels in display order."""
    nonnull = s.drop_nulls()
    if s.dtype.is_numeric() and nonnull.n_unique() > _SLICE_MAX_VALUES:
        values = s.cast(pl.Float64).to_numpy()
        edges = np.unique(np.nanquantile(values, [0.0, 0.25, 0.5, 0.75, 1.0]))
        labels_arr = np.full(len(values), _MISSING, dtype=object)
        ok = ~np.isnan(values)
        which = np.clip(np.searchsorted(edges, values[ok], side="right") - 1, 0, len(edges) - 2)
        names = [
            f"[{edges[i]:.4g}, {edges[i + 1]:.4g}{']' if i == len(edges) - 2 else ')'}"
            for i in range(len(edges) - 1)
        ]
        labels_arr[ok] = [names[i] for i in which]
        order = [n for n in names if (labels_arr == n).any()]
    else:
        labels_arr = np.asarray(
            [_MISSING if v is None else str(v) for v in s.to_list()], dtype=object
        )
        uniq, counts = np.unique(labels_arr, return_counts=True)
        order = [
            str(u) for u, _ in sorted(zip(uniq, counts, strict=True), key=lambda t: (-t[1], t[0]))
        ]
    if (labels_arr == _MISSING).any() and _MISSING not in order:
        order.append(_MISSING)
    return labels_arr, order


def _check_slices(test: pl.DataFrame, slices: Sequence[str]) -> None:
    for name in slices:
        if name not in test.columns:
            raise ModelyardError(
                f"the slice column '{name}' is not in the test data{did_you_mean(name, test.columns)}",
                where="evaluation.slices",
                expected=f"one of {name_list(test.columns)}",
                fix="Correct the column name in evaluation.slices.",
            )


# --------------------------------------------------------------------------- evaluate


def evaluate(
    model: Any,
    test: pl.DataFrame,
    contract: DataContract,
    options: EvaluationSection,
    *,
    task: Task,
    metric: str,
    seed: int,
    threshold: float | None = None,
    exclude: Sequence[str] = (),
    executor: Executor | None = None,
    table: Table | None = None,
) -> Evaluation:
    """Evaluate the fitted ``model`` (it takes :func:`~modelyard.modeling.features.to_pandas`
    frames) on the ``test`` rows. ``threshold``: a binary decision threshold chosen elsewhere
    (out-of-fold); when None it is 0.5 or chosen on the test set, as the module docstring says.
    ``exclude``: columns left out of the model input, as given to ``to_pandas`` at training
    (e.g. the sample-weight column).

    ``table``: every test row of a big test set, ``test`` being a sample of it. The table is
    then predicted part by part on the executor (only the labels, predictions and slice
    columns are kept), every metric, curve and slice is computed on all its rows, and the
    permutation importance on the sample.
    """
    from modelyard.modeling.features import target_array, to_pandas  # scikit-learn: on use

    metric = resolve_metric(task, metric)
    _check_slices(test, options.slices)
    X = to_pandas(test, contract, exclude=exclude)
    if table is None:
        y = target_array(test, contract)
        if len(y) == 0:
            raise ModelyardError("the test set is empty", where="evaluation")
        predicted = _predict_all(model, X, task, executor)
        slice_frame = test.select(list(options.slices))
        X_imp, y_imp = X, None
    else:
        y, predicted, slice_frame = _stream(
            model, table, contract, task, exclude, list(options.slices), executor
        )
        if len(y) == 0:
            raise ModelyardError("the test set is empty", where="evaluation")
        X_imp, y_imp = X, np.asarray(target_array(test, contract))
        if task != "regression":
            y_imp = y_imp.astype(str)
    n = len(y)
    pred, proba = predicted.values, predicted.proba

    if task == "regression":
        assert pred is not None
        result = Evaluation(
            task=task,
            metric=metric,
            metrics=compute_metrics(task, y, y_pred=pred),
            rows=n,
            residuals=_residuals(y, pred, seed),
        )
        proba = None
        classes: list[str] | None = None
        label_pred: np.ndarray = pred
    else:
        classes = [str(c) for c in model.classes_]
        label_pred = predicted.labels
        y = np.asarray(y).astype(str)
        unseen = sorted(set(np.unique(y)) - set(classes))
        # a label the model never saw (a group split, a test file) has no probability column:
        # probability metrics are undefined there, label metrics count it as always wrong
        result = Evaluation(
            task=task,
            metric=metric,
            metrics=compute_metrics(
                task, y, y_pred=label_pred, y_proba=None if unseen else proba,
                classes=classes + unseen,
            ),
            rows=n,
            unseen_classes=unseen,
        )  # fmt: skip
        cm_pred = label_pred
        if task == "binary" and len(classes) == 2 and proba is not None:
            pos = positive_class(classes)
            neg = next(c for c in classes if c != pos)
            p_pos = proba[:, classes.index(pos)]
            if threshold is not None:
                source: Literal["given", "default", "test"] = "given"
            elif options.threshold == "default":
                threshold, source = 0.5, "default"
            else:
                threshold = choose_threshold(
                    y, p_pos, positive=pos, method=options.threshold, cost_ratio=options.cost_ratio
                )
                source = "test"
            cm_pred = np.where(p_pos >= threshold, pos, neg)
            at_t = compute_metrics(task, y, y_pred=cm_pred, classes=classes)
            result.positive_class = pos
            result.threshold = float(threshold)
            result.threshold_source = source
            result.threshold_metrics = at_t
            y01 = (y == pos).astype(np.int64)
            if 0 < y01.sum() < n:
                result.roc_curve, result.pr_curve, result.calibration = _curves(y01, p_pos)
        labels = sorted(set(classes) | set(np.unique(y)) | set(np.unique(cm_pred)))
        index = {c: i for i, c in enumerate(labels)}
        matrix = np.zeros((len(labels), len(labels)), dtype=np.int64)
        np.add.at(matrix, ([index[v] for v in y], [index[v] for v in cm_pred]), 1)
        result.confusion_matrix = ConfusionMatrix(labels=labels, matrix=matrix.tolist())

    if y_imp is None:  # every test row is in memory: the importance uses them
        y_imp = y
    seen = np.ones(len(y_imp), dtype=bool)
    if result.unseen_classes:  # proba is None for metrics; importance on the known labels
        seen = ~np.isin(y_imp, result.unseen_classes)
        proba, classes = None, (classes or []) + result.unseen_classes
    if options.permutation_importance and seen.any():
        rows = importance_rows(X_imp.shape[1], len(classes) if classes else 0)
        result.permutation_importance = _importance(
            model, X_imp[seen].reset_index(drop=True), y_imp[seen], task=task, metric=metric,
            seed=seed, executor=executor, rows=rows,
        )  # fmt: skip

    result.slices = _slices(
        slice_frame, options.slices, task=task, y=y, pred=label_pred, proba=proba, classes=classes
    )
    return result


class _Predicted:
    """A model's predictions on some rows: values (regression), or class probabilities (when
    the model has them) and labels."""

    def __init__(
        self, values: np.ndarray | None, proba: np.ndarray | None, labels: np.ndarray
    ) -> None:
        self.values = values
        self.proba = proba
        self.labels = labels

    @staticmethod
    def concat(parts: Sequence[_Predicted]) -> _Predicted:
        def cat(arrays: list[np.ndarray | None]) -> np.ndarray | None:
            return None if any(a is None for a in arrays) else np.concatenate(arrays)  # type: ignore[arg-type]

        labels = cat([p.labels for p in parts])
        assert labels is not None
        return _Predicted(cat([p.values for p in parts]), cat([p.proba for p in parts]), labels)


def _predict_all(model: Any, X: Any, task: Task, executor: Executor | None) -> _Predicted:
    """Values, or probabilities and labels, of ``model`` on ``X`` (the rules of the module
    docstring: labels are the argmax of the probabilities when the model says it predicts so)."""
    if task == "regression":
        pred = np.asarray(predict(model, X, "predict", executor), dtype=np.float64)
        return _Predicted(pred, None, pred)
    classes = [str(c) for c in model.classes_]
    proba = (
        np.asarray(predict(model, X, "predict_proba", executor), dtype=np.float64)
        if hasattr(model, "predict_proba")
        else None
    )
    final = model.steps[-1][1] if hasattr(model, "steps") else model
    if proba is not None and getattr(final, "predict_is_argmax", False):
        labels = np.asarray(classes, dtype=object)[np.argmax(proba, axis=1)].astype(str)
    else:
        labels = np.asarray(model.predict(X)).astype(str)
    return _Predicted(None, proba, labels)


def _predict_part(
    model: Any,
    path: str,
    contract: DataContract,
    exclude: Sequence[str],
    task: Task,
    slices: list[str],
) -> tuple[np.ndarray, _Predicted, pl.DataFrame]:
    """One test part: its labels, the model's predictions, and its slice columns."""
    from modelyard.modeling.features import target_array, to_pandas

    part = pl.read_parquet(path)
    y = target_array(part, contract)
    if part.height == 0:
        empty = np.zeros(0)
        width = (
            len(model.classes_) if task != "regression" and hasattr(model, "predict_proba") else 0
        )
        return (
            y,
            _Predicted(
                empty if task == "regression" else None,
                np.zeros((0, width)) if width else None,
                empty.astype(str) if task != "regression" else empty,
            ),
            part.select(slices),
        )
    return (
        y,
        _predict_all(model, to_pandas(part, contract, exclude=exclude), task, None),
        part.select(slices),
    )


def _stream(
    model: Any,
    table: Table,
    contract: DataContract,
    task: Task,
    exclude: Sequence[str],
    slices: list[str],
    executor: Executor | None,
) -> tuple[np.ndarray, _Predicted, pl.DataFrame]:
    """Every row of ``table`` predicted, part by part on the executor, in table order."""
    from modelyard.compute import map_in_order

    parts = table.parts()
    shared = executor.share(model) if executor is not None and len(parts) > 1 else None
    try:
        ref = shared if shared is not None else model
        calls = [(ref, str(p), contract, list(exclude), task, slices) for p in parts]
        results = list(map_in_order(executor if shared is not None else None, _predict_part, calls))
    finally:
        if shared is not None and executor is not None:
            executor.unshare(shared)
    y = np.concatenate([r[0] for r in results])
    predicted = _Predicted.concat([r[1] for r in results])
    frame = pl.concat([r[2] for r in results], how="vertical")
    return y, predicted, frame


def importance_rows(columns: int, classes: int) -> int:
    """Rows for permutation importance (see :data:`IMPORTANCE_CELLS`); a pure function of the
    table's shape, so the importances do not depend on the machine.

    >>> importance_rows(14, 2), importance_rows(41, 23)
    (2000, 200)
    """
    weight = max(1, columns) * max(1.0, classes / 3)
    rows = int(IMPORTANCE_CELLS / weight)
    return max(MIN_IMPORTANCE_ROWS, min(MAX_IMPORTANCE_ROWS, rows))


def predict(model: Any, X: Any, method: str, executor: Executor | None) -> np.ndarray:
    """``model.<method>(X)``; a big ``X`` in chunks, side by side on the executor."""
    n = len(X)
    if executor is None or executor.workers < 2 or n < PARALLEL_ROWS:
        return np.asarray(getattr(model, method)(X))
    chunks = min(executor.workers * 2, max(2, n // (PARALLEL_ROWS // 4)))
    bounds = np.linspace(0, n, chunks + 1).astype(int)
    shared = executor.share(model)
    try:
        futures = [
            executor.submit(_predict_task, shared, method, X.iloc[a:b])
            for a, b in itertools.pairwise(bounds)
        ]
        return np.concatenate([np.asarray(f.result()) for f in futures])
    finally:
        executor.unshare(shared)


def _predict_task(model: Any, method: str, X: Any) -> Any:
    return getattr(model, method)(X)


def _importance(
    model: Any,
    X: Any,
    y: np.ndarray,
    *,
    task: Task,
    metric: str,
    seed: int,
    executor: Executor | None = None,
    rows: int = 2000,
) -> list[Importance]:
    """Permutation importance of each input column: the metric's drop when that column's
    values are shuffled (:data:`IMPORTANCE_REPEATS` times, fewer for wide tables), on at most
    :data:`MAX_IMPORTANCE_ROWS` rows. One task per column on the executor (each column's
    shuffles are seeded by its position, so every executor gives the same numbers)."""
    if len(y) > rows:
        idx = np.sort(np.random.default_rng(seed).choice(len(y), rows, replace=False))
        X, y = X.iloc[idx].reset_index(drop=True), y[idx]
    scorer = sklearn_scorer(task, metric)
    baseline = float(scorer(model, X, y))
    columns = list(X.columns)
    if executor is None:
        drops = [
            permutation_drop(model, X, y, scorer, baseline, i, seed) for i in range(len(columns))
        ]
    else:
        shared = executor.share((model, X, y, scorer, baseline))
        try:
            futures = [executor.submit(_drop_task, shared, i, seed) for i in range(len(columns))]
            drops = [f.result() for f in futures]
        finally:
            executor.unshare(shared)
    out = [
        Importance(feature=str(name), mean=float(np.mean(d)), std=float(np.std(d)))
        for name, d in zip(columns, drops, strict=True)
    ]
    return sorted(out, key=lambda i: -i.mean if math.isfinite(i.mean) else math.inf)


def permutation_drop(
    model: Any, X: Any, y: np.ndarray, scorer: Any, baseline: float, column: int, seed: int
) -> list[float]:
    """How much the score drops when column ``column`` of ``X`` is shuffled, per repeat."""
    rng = np.random.default_rng([seed, column])
    shuffled = X.copy()
    name = X.columns[column]
    original = X[name].to_numpy()
    repeats = max(2, min(IMPORTANCE_REPEATS, IMPORTANCE_PREDICTIONS // max(1, X.shape[1])))
    drops = []
    for _ in range(repeats):
        shuffled[name] = original[rng.permutation(len(original))]
        drops.append(baseline - float(scorer(model, shuffled, y)))
    return drops


def _drop_task(shared: tuple[Any, ...], column: int, seed: int) -> list[float]:
    model, X, y, scorer, baseline = shared
    return permutation_drop(model, X, y, scorer, baseline, column, seed)


def _slices(
    test: pl.DataFrame,
    columns: Sequence[str],
    *,
    task: Task,
    y: np.ndarray,
    pred: np.ndarray,
    proba: np.ndarray | None,
    classes: list[str] | None,
) -> list[SliceMetrics]:
    out: list[SliceMetrics] = []
    for name in columns:
        labels, order = _slice_values(test.get_column(name))
        for value in order:
            mask = labels == value
            metrics = compute_metrics(
                task,
                y[mask],
                y_pred=pred[mask],
                y_proba=None if proba is None else proba[mask],
                classes=classes,
            )
            out.append(
                SliceMetrics(column=name, value=value, rows=int(mask.sum()), metrics=metrics)
            )
    return out
