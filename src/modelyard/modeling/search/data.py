"""What every fit of a search needs, prepared once and sent to each worker once.

:class:`SearchData` holds the cross-validation folds of the search sample with the preprocessing
already applied (the preprocessor does not depend on the model, so it is fitted once per fold,
not once per model and fold), the target as class codes, the row weights, and how to score.
Its :attr:`~SearchData.key` is a digest of all of that (and of the libraries and modelyard code
that fit models): equal keys mean equal fits, which is what the fit cache relies on.
"""

from __future__ import annotations

import hashlib
import importlib.metadata as md
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from modelyard.data.contract import Task
from modelyard.modeling.tasks import score

_LIBRARIES = ("scikit-learn", "lightgbm", "xgboost-cpu", "catboost", "numpy", "optuna")


@dataclass
class Fold:
    """One cross-validation fold, preprocessed (``X_*`` are what the models see)."""

    train: np.ndarray
    """Row positions (in the search sample) of the training part."""
    valid: np.ndarray
    """Row positions of the validation part."""
    X_train: Any
    X_valid: Any
    w_train: np.ndarray | None


@dataclass
class SearchData:
    """The folds of the search sample, the target and the metric (see the module docstring)."""

    task: Task
    metric: str
    classes: list[str] | None
    """Classification: the labels, sorted; ``y`` holds their positions (codes)."""
    y: np.ndarray
    folds: list[Fold]
    seed: int
    key: str = field(default="")

    @property
    def n_rows(self) -> int:
        return len(self.y)

    @property
    def n_classes(self) -> int:
        return len(self.classes) if self.classes is not None else 0

    def score(self, y_codes: np.ndarray, predictions: np.ndarray) -> float:
        """The metric of ``predictions`` (probabilities, or values) against ``y_codes``."""
        return score_predictions(self.task, self.metric, self.classes, y_codes, predictions)

    def covered(self) -> np.ndarray:
        """Rows some fold validates (all of them, except the first rows of a time split)."""
        mask = np.zeros(self.n_rows, dtype=bool)
        for fold in self.folds:
            mask[fold.valid] = True
        return mask


def score_predictions(
    task: Task,
    metric: str,
    classes: list[str] | None,
    y_codes: np.ndarray,
    predictions: np.ndarray,
) -> float:
    """The metric of out-of-fold ``predictions``: class probabilities in ``classes`` order
    (labels are their argmax), or values for regression."""
    if classes is None:
        return score(task, metric, y_codes, y_pred=predictions)
    labels = np.asarray(classes, dtype=object)
    return score(
        task,
        metric,
        labels[np.asarray(y_codes, dtype=np.int64)],
        y_pred=labels[np.argmax(predictions, axis=1)],
        y_proba=predictions,
        classes=classes,
    )


def encode_target(y: np.ndarray, task: Task) -> tuple[np.ndarray, list[str] | None]:
    """Class codes and sorted labels for classification; float values for regression."""
    if task == "regression":
        return np.asarray(y, dtype=np.float64), None
    labels, codes = np.unique(np.asarray(y).astype(str), return_inverse=True)
    return codes.astype(np.int64), [str(label) for label in labels]


def balanced_weights(codes: np.ndarray, n_classes: int) -> np.ndarray:
    """Row weights inversely proportional to each class's frequency (scikit-learn's
    ``class_weight="balanced"``: ``n_rows / (n_classes_present * count)``)."""
    counts = np.bincount(codes, minlength=n_classes).astype(np.float64)
    present = int(np.count_nonzero(counts))
    with np.errstate(divide="ignore"):
        per_class = np.where(counts > 0, len(codes) / (present * counts), 0.0)
    return np.asarray(per_class[codes], dtype=np.float64)


def prepare(
    X: Any,
    y: np.ndarray,
    *,
    task: Task,
    metric: str,
    folds: list[tuple[np.ndarray, np.ndarray]],
    preprocessor: Any,
    seed: int,
    sample_weight: np.ndarray | None = None,
    class_weight: str = "none",
    code_version: str = "",
) -> SearchData:
    """Fit a clone of ``preprocessor`` on each fold's training rows and transform both parts.

    ``class_weight="balanced"`` multiplies the row weights by :func:`balanced_weights` of each
    fold's training part.
    """
    from sklearn.base import clone

    codes, classes = encode_target(y, task)
    prepared: list[Fold] = []
    for train, valid in folds:
        pre = clone(preprocessor)
        X_train = pre.fit_transform(_rows(X, train), codes[train])
        X_valid = pre.transform(_rows(X, valid))
        w = None if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)[train]
        if class_weight == "balanced" and classes is not None:
            balance = balanced_weights(codes[train], len(classes))
            w = balance if w is None else w * balance
        prepared.append(Fold(np.asarray(train), np.asarray(valid), X_train, X_valid, w))
    data = SearchData(task=task, metric=metric, classes=classes, y=codes, folds=prepared, seed=seed)
    data.key = _digest(data, code_version)
    return data


def _rows(X: Any, idx: np.ndarray) -> Any:
    return X.iloc[idx] if hasattr(X, "iloc") else X[idx]


def _digest(data: SearchData, code_version: str) -> str:
    h = hashlib.blake2b(digest_size=16)
    versions = []
    for name in _LIBRARIES:
        try:
            versions.append(f"{name}={md.version(name)}")
        except md.PackageNotFoundError:
            versions.append(f"{name}=-")
    meta = [data.task, data.metric, str(data.classes), str(data.seed), code_version, *versions]
    h.update("\0".join(meta).encode())
    _update(h, data.y)
    for fold in data.folds:
        for part in (fold.train, fold.valid, fold.X_train, fold.X_valid, fold.w_train):
            _update(h, part)
    return h.hexdigest()


def _update(h: Any, value: Any) -> None:
    if value is None:
        h.update(b"none")
        return
    if hasattr(value, "tocsr"):  # a scipy sparse matrix
        csr = value.tocsr()
        for part in (csr.data, csr.indices, csr.indptr):
            _update(h, part)
        h.update(str(csr.shape).encode())
        return
    array = np.ascontiguousarray(value)
    h.update(f"{array.dtype}{array.shape}".encode())
    if array.dtype == object:
        h.update(repr(array.tolist()).encode())
    else:
        h.update(array.tobytes())
