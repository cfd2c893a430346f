"""Learning tasks and their metrics.

Conventions used everywhere in modelyard:

- **Labels** of classification tasks are compared as strings (:func:`modelyard.modeling.
  features.target_array` gives string labels, so a fitted classifier's ``classes_`` are
  strings too).
- **The positive class** of a binary task is the *greater* of the two labels in sorted order,
  i.e. ``classes_[1]`` of a fitted scikit-learn classifier and the column ``predict_proba(X)[:,
  1]``: ``"1"`` for 0/1, ``"yes"`` for no/yes, ``"true"`` for false/true, ``">50K"`` for
  ``"<=50K"``/``">50K"``. It does not depend on class frequencies, so it is stable across
  samples of the data. ``roc_auc``, ``pr_auc``, ``brier``, ``f1``, ``precision`` and ``recall``
  are all about that class.
- **Metric values** are reported in their natural sign (``rmse`` is positive);
  :func:`greater_is_better` says which way is better, and :func:`sklearn_scorer` turns a metric
  into a scikit-learn scorer (greater is better, so losses are negated, as in
  ``neg_root_mean_squared_error``).

>>> import numpy as np
>>> round(score("regression", "rmse", np.array([1.0, 2.0]), y_pred=np.array([1.0, 4.0])), 4)
1.4142
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from modelyard.data.contract import Task, did_you_mean
from modelyard.errors import ModelyardError

ArrayLike = npt.ArrayLike

METRICS: dict[Task, tuple[str, ...]] = {
    "binary": ("roc_auc", "pr_auc", "log_loss", "f1", "precision", "recall", "accuracy", "brier"),
    "multiclass": ("f1_macro", "accuracy", "log_loss"),
    "regression": ("rmse", "mae", "r2", "mape"),
}
"""The metrics of each task, in report order. ``mape`` is left out of :func:`compute_metrics`
when the true values contain a zero (it is undefined there)."""

_DEFAULT: dict[Task, str] = {"binary": "roc_auc", "multiclass": "f1_macro", "regression": "rmse"}
_LOWER_IS_BETTER = frozenset({"log_loss", "brier", "rmse", "mae", "mape"})
_NEEDS_PROBA = frozenset({"roc_auc", "pr_auc", "log_loss", "brier"})


def _check_task(task: str) -> Task:
    if task not in METRICS:
        raise ModelyardError(
            f"unknown task '{task}'{did_you_mean(task, METRICS)}",
            expected=f"one of {list(METRICS)}",
            found=repr(task),
        )
    return task


def default_metric(task: Task) -> str:
    """The metric optimised by default: roc_auc (binary), f1_macro (multiclass), rmse."""
    return _DEFAULT[_check_task(task)]


def resolve_metric(task: Task, name: str) -> str:
    """``"auto"`` becomes the task's default; any other name must be one of the task's metrics.

    >>> resolve_metric("binary", "auto")
    'roc_auc'
    """
    task = _check_task(task)
    if name == "auto":
        return _DEFAULT[task]
    if name in METRICS[task]:
        return name
    other = [t for t, names in METRICS.items() if name in names]
    hint = (
        f" ('{name}' is a metric of {other[0]} tasks)"
        if other
        else did_you_mean(name, METRICS[task])
    )
    raise ModelyardError(
        f"unknown metric '{name}' for a {task} task{hint}",
        where="models.metric",
        expected=f"'auto' or one of {list(METRICS[task])}",
        found=repr(name),
        fix="Set models.metric in modelyard.yaml to one of these.",
    )


def greater_is_better(metric: str) -> bool:
    """Whether a larger value of ``metric`` is better (false for losses and errors)."""
    if not any(metric in names for names in METRICS.values()):
        all_names = sorted({m for names in METRICS.values() for m in names})
        raise ModelyardError(
            f"unknown metric '{metric}'{did_you_mean(metric, all_names)}",
            expected=f"one of {all_names}",
        )
    return metric not in _LOWER_IS_BETTER


def positive_class(classes: Sequence[Any]) -> str:
    """The positive class of a binary task: the greater of the two labels, as a string."""
    labels = sorted(classes)
    if len(labels) != 2:
        raise ModelyardError(
            f"a binary task needs exactly two classes, found {len(labels)}",
            found=str([str(c) for c in labels][:10]),
        )
    return str(labels[1])


# --------------------------------------------------------------------------- computation


class _Prepared:
    """Inputs of the metric functions, converted once."""

    def __init__(
        self,
        task: Task,
        y_true: ArrayLike,
        y_pred: ArrayLike | None,
        y_proba: ArrayLike | None,
        classes: Sequence[Any] | None,
    ) -> None:
        self.task = task
        if task == "regression":
            self.y = np.asarray(y_true, dtype=np.float64)
            self.pred = None if y_pred is None else np.asarray(y_pred, dtype=np.float64)
            return
        y = np.asarray(y_true).astype(str)
        pred = None if y_pred is None else np.asarray(y_pred).astype(str)
        if classes is None:
            pool = [y] if pred is None else [y, pred]
            classes = list(np.unique(np.concatenate(pool)))
        self.classes = [str(c) for c in classes]
        self.y = y
        self.pred = pred
        self.proba: np.ndarray | None = None
        self.pos: str | None = None
        self.p_pos: np.ndarray | None = None
        if task == "binary":
            if len(self.classes) == 2:
                self.pos = positive_class(list(classes))
            elif len(self.classes) == 1:
                self.pos = self.classes[0]
        if y_proba is not None:
            proba = np.asarray(y_proba, dtype=np.float64)
            if task == "binary":
                if proba.ndim == 1:
                    self.p_pos = proba
                elif self.pos is not None and self.pos in self.classes:
                    self.p_pos = proba[:, self.classes.index(self.pos)]
            else:
                self.proba = proba

    def need_pred(self) -> np.ndarray:
        if self.pred is None:
            raise ModelyardError("this metric needs predictions (y_pred), none were given")
        return self.pred

    def need_p_pos(self) -> tuple[np.ndarray, np.ndarray]:
        if self.p_pos is None:
            raise ModelyardError(
                "this metric needs predicted probabilities (y_proba), none were given",
                fix="Use a model with predict_proba, or a metric computed from labels (f1, accuracy).",
            )
        return (self.y == self.pos).astype(np.int64), self.p_pos


def _both_classes(y01: np.ndarray) -> bool:
    return 0 < int(y01.sum()) < len(y01)


def _roc_auc(p: _Prepared) -> float:
    from sklearn.metrics import roc_auc_score

    y01, prob = p.need_p_pos()
    return float(roc_auc_score(y01, prob)) if _both_classes(y01) else math.nan


def _pr_auc(p: _Prepared) -> float:
    from sklearn.metrics import average_precision_score

    y01, prob = p.need_p_pos()
    return float(average_precision_score(y01, prob)) if y01.sum() > 0 else math.nan


def _log_loss(p: _Prepared) -> float:
    from sklearn.metrics import log_loss

    if p.task == "binary":
        y01, prob = p.need_p_pos()
        return float(log_loss(y01, np.clip(prob, 0.0, 1.0), labels=[0, 1]))
    if p.proba is None:
        raise ModelyardError("log_loss needs predicted probabilities (y_proba), none were given")
    return float(log_loss(p.y, p.proba, labels=p.classes))


def _brier(p: _Prepared) -> float:
    y01, prob = p.need_p_pos()
    return float(np.mean((prob - y01) ** 2))


def _binary_counts(p: _Prepared) -> tuple[int, int, int]:
    pred = p.need_pred()
    tp = int(np.sum((pred == p.pos) & (p.y == p.pos)))
    fp = int(np.sum((pred == p.pos) & (p.y != p.pos)))
    fn = int(np.sum((pred != p.pos) & (p.y == p.pos)))
    return tp, fp, fn


def _precision(p: _Prepared) -> float:
    tp, fp, _ = _binary_counts(p)
    return tp / (tp + fp) if tp + fp else 0.0


def _recall(p: _Prepared) -> float:
    tp, _, fn = _binary_counts(p)
    return tp / (tp + fn) if tp + fn else math.nan


def _f1(p: _Prepared) -> float:
    tp, fp, fn = _binary_counts(p)
    return 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0


def _accuracy(p: _Prepared) -> float:
    pred = p.need_pred()
    if p.task == "regression":
        raise ModelyardError("accuracy is not a regression metric")
    return float(np.mean(pred == p.y)) if len(p.y) else math.nan


def _f1_macro(p: _Prepared) -> float:
    from sklearn.metrics import f1_score

    return float(f1_score(p.y, p.need_pred(), average="macro", zero_division=0))


def _rmse(p: _Prepared) -> float:
    return float(np.sqrt(np.mean((p.y - _reg_pred(p)) ** 2)))


def _mae(p: _Prepared) -> float:
    return float(np.mean(np.abs(p.y - _reg_pred(p))))


def _r2(p: _Prepared) -> float:
    pred = _reg_pred(p)
    total = float(np.sum((p.y - p.y.mean()) ** 2))
    if total == 0.0:
        return math.nan
    return 1.0 - float(np.sum((p.y - pred) ** 2)) / total


def _mape(p: _Prepared) -> float:
    pred = _reg_pred(p)
    if np.any(p.y == 0):
        return math.nan
    return float(np.mean(np.abs((p.y - pred) / p.y)))


def _reg_pred(p: _Prepared) -> np.ndarray:
    pred = p.need_pred()
    return pred.astype(np.float64)


_FUNCS: dict[str, Callable[[_Prepared], float]] = {
    "roc_auc": _roc_auc,
    "pr_auc": _pr_auc,
    "log_loss": _log_loss,
    "brier": _brier,
    "f1": _f1,
    "precision": _precision,
    "recall": _recall,
    "accuracy": _accuracy,
    "f1_macro": _f1_macro,
    "rmse": _rmse,
    "mae": _mae,
    "r2": _r2,
    "mape": _mape,
}


def score(
    task: Task,
    metric: str,
    y_true: ArrayLike,
    *,
    y_pred: ArrayLike | None,
    y_proba: ArrayLike | None = None,
    classes: Sequence[Any] | None = None,
) -> float:
    """One metric. ``y_proba`` is ``predict_proba`` output with columns in ``classes`` order
    (for binary tasks also accepted: a 1-D array of the positive class's probability).
    ``classes`` defaults to the sorted labels seen in ``y_true`` and ``y_pred``. Undefined
    values (roc_auc with one class present, mape with a zero target) are NaN.
    """
    task = _check_task(task)
    metric = resolve_metric(task, metric)
    return _FUNCS[metric](_Prepared(task, y_true, y_pred, y_proba, classes))


def compute_metrics(
    task: Task,
    y_true: ArrayLike,
    *,
    y_pred: ArrayLike | None,
    y_proba: ArrayLike | None = None,
    classes: Sequence[Any] | None = None,
) -> dict[str, float]:
    """All metrics of ``task`` that the inputs allow, in :data:`METRICS` order.

    Probability metrics are left out when ``y_proba`` is None, label metrics when ``y_pred``
    is None, and ``mape`` when a true value is zero.

    >>> import numpy as np
    >>> compute_metrics("regression", np.array([1.0, 2.0]), y_pred=np.array([1.0, 4.0]))["mae"]
    1.0
    """
    task = _check_task(task)
    prep = _Prepared(task, y_true, y_pred, y_proba, classes)
    out: dict[str, float] = {}
    for name in METRICS[task]:
        if name in _NEEDS_PROBA and y_proba is None:
            continue
        if name not in _NEEDS_PROBA and y_pred is None:
            continue
        if name == "mape" and np.any(prep.y == 0):
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out[name] = _FUNCS[name](prep)
    return out


BASELINE = {
    "binary": "the training class shares, predicted for every row",
    "multiclass": "the training class shares, predicted for every row",
    "regression": "the training mean, predicted for every row",
}
"""What the baseline of each task predicts (the ``dummy`` family's model)."""


def baseline_score(task: Task, metric: str, y_train: ArrayLike, y_test: ArrayLike) -> float:
    """``metric`` on ``y_test`` of the baseline fitted on ``y_train``: scikit-learn's
    ``DummyClassifier`` (the training class shares as probabilities, the most frequent class
    as the label) or ``DummyRegressor`` (the mean), as the ``dummy`` family fits them.

    A model that does not beat this has learnt nothing from its features. NaN where the
    metric is undefined (roc_auc with one class in ``y_test``), or where it needs a
    probability of a test label the training rows never had.

    >>> import numpy as np
    >>> baseline_score("binary", "roc_auc", np.array(["a", "b", "b"]), np.array(["a", "b"]))
    0.5
    >>> baseline_score("regression", "rmse", np.array([1.0, 3.0]), np.array([2.0, 4.0]))
    1.4142135623730951
    """
    from sklearn.dummy import DummyClassifier, DummyRegressor

    task = _check_task(task)
    metric = resolve_metric(task, metric)
    train = np.asarray(y_train)
    test = np.asarray(y_test)
    if len(train) == 0 or len(test) == 0:
        return math.nan
    blank = np.zeros((len(test), 1))
    if task == "regression":
        reg = DummyRegressor(strategy="mean").fit(np.zeros((len(train), 1)), train.astype(float))
        return score(task, metric, test, y_pred=reg.predict(blank))
    clf = DummyClassifier(strategy="prior").fit(np.zeros((len(train), 1)), train.astype(str))
    classes = [str(c) for c in clf.classes_]
    truth = test.astype(str)
    unseen = sorted(set(np.unique(truth)) - set(classes))
    if unseen and metric in _NEEDS_PROBA:
        return math.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return score(
            task, metric, truth, y_pred=clf.predict(blank).astype(str),
            y_proba=None if unseen else clf.predict_proba(blank), classes=classes + unseen,
        )  # fmt: skip


class MetricScorer:
    """A scikit-learn scorer ``scorer(estimator, X, y) -> float`` for one metric.

    Greater is better: losses are negated (the value of ``rmse`` 3.0 scores -3.0). Picklable,
    so it works with ``cross_validate(..., n_jobs=...)`` and ``permutation_importance``.
    """

    def __init__(self, task: Task, metric: str) -> None:
        self.task = _check_task(task)
        self.metric = resolve_metric(task, metric)
        self.sign = 1.0 if greater_is_better(self.metric) else -1.0

    def __call__(self, estimator: Any, X: Any, y: ArrayLike) -> float:
        classes = getattr(estimator, "classes_", None)
        proba = None
        pred = None
        if self.metric in _NEEDS_PROBA:
            proba = estimator.predict_proba(X)
        else:
            pred = estimator.predict(X)
        value = score(self.task, self.metric, y, y_pred=pred, y_proba=proba, classes=classes)
        return self.sign * value

    def __repr__(self) -> str:
        return f"MetricScorer(task={self.task!r}, metric={self.metric!r})"


def sklearn_scorer(task: Task, metric: str) -> MetricScorer:
    """A scorer for ``cross_validate(scoring=...)``; greater is better (losses negated)."""
    return MetricScorer(task, metric)
