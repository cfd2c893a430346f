"""Performance before labels: confidence-based performance estimation (CBPE).

A classifier whose probabilities are calibrated says how often it is right: among records
predicted positive with probability 0.8, about 80 % are positive. So the expected confusion
matrix of a window follows from its probabilities alone, and every metric built on it can be
estimated before a single label arrives (the method NannyML calls CBPE; this is our own code).

1. **Calibrate** on the reference: isotonic regression of the target on the model's
   out-of-fold probabilities from the model search (:func:`fit_calibration`, saved with each
   registered version as ``calibration.json`` by :func:`calibration_from_search`). Binary: one
   map for the positive class. Multiclass: one map per class (one-vs-rest), rows renormalised.
2. **Estimate** per window (:func:`estimate`), with ``q`` the calibrated probability of a record's
   class and ``ŷ`` the label the model served:

   - accuracy = mean of ``q[ŷ]`` (the calibrated probability of the predicted class);
   - binary precision / recall / F1 from the expected confusion matrix ``TP = Σ_{ŷ=1} q``,
     ``FP = Σ_{ŷ=1} (1 - q)``, ``FN = Σ_{ŷ=0} q``;
   - binary ROC AUC: expected TPR and FPR at every threshold of the model's raw score (records
     ranked by that score, each counting ``q`` as a positive and ``1 - q`` as a negative), and the
     area under that curve (the trapezoid rule, ties grouped as scikit-learn does);
   - multiclass F1 (macro): the binary F1 of each class one-vs-rest, averaged.

What it cannot see: a change of P(y | x) (concept drift), and inputs far outside the training
data, where the model's probabilities are not calibrated. It does see covariate shift (P(x)
moves, P(y | x) stays), which is what most drift is. Regression is not estimated: CBPE needs
class probabilities, and the alternative (a second model trained to predict the first one's
error) would need its own validation; see docs/monitoring.md.

Everything here is numpy on arrays; the only sklearn use is :class:`IsotonicRegression` while
fitting. A calibration is plain JSON (the isotonic breakpoints), applied with ``np.interp``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from modelyard.errors import ModelyardError

if TYPE_CHECKING:
    import polars as pl

    from modelyard.modeling.search.ensemble import Choice
    from modelyard.modeling.search.results import OutOfFold

CALIBRATION_FILE = "calibration.json"
"""The run artifact holding a registered version's :class:`Calibration`."""
FORMAT_VERSION = 1
ESTIMATED_METRICS: dict[str, tuple[str, ...]] = {
    "binary": ("roc_auc", "f1", "precision", "recall", "accuracy"),
    "multiclass": ("f1_macro", "accuracy"),
}
"""The metrics :func:`estimate` gives, named as the task's realised metrics are."""


class IsotonicMap(BaseModel):
    """A non-decreasing piecewise-linear map from [0, 1] to [0, 1] (isotonic breakpoints)."""

    model_config = ConfigDict(extra="forbid")

    x: list[float]
    y: list[float]

    def __call__(self, p: np.ndarray) -> np.ndarray:
        return np.asarray(np.interp(p, np.asarray(self.x), np.asarray(self.y)), dtype=float)


class Calibration(BaseModel):
    """Isotonic maps from the model's probabilities to calibrated ones."""

    model_config = ConfigDict(extra="forbid")

    format_version: int = FORMAT_VERSION
    task: Literal["binary", "multiclass"]
    classes: list[str]
    """The classes in the order of the model's probability columns."""
    positive: str | None = None
    """Binary: the positive class (its probability is the score)."""
    maps: list[IsotonicMap]
    """Binary: one map (the positive class); multiclass: one per class."""
    rows: int
    """Reference records it was fitted on."""
    source: str = "out-of-fold predictions of the model search"

    def apply(self, proba: np.ndarray) -> np.ndarray:
        """Calibrated probabilities (rows x classes, rows summing to 1)."""
        proba = _check_proba(proba, len(self.classes))
        if self.task == "binary":
            pos = self.classes.index(self.positive or self.classes[-1])
            q = np.clip(self.maps[0](proba[:, pos]), 0.0, 1.0)
            out = np.empty_like(proba)
            out[:, pos] = q
            out[:, 1 - pos] = 1.0 - q
            return out
        cal = np.column_stack([m(proba[:, k]) for k, m in enumerate(self.maps)])
        total = cal.sum(axis=1, keepdims=True)
        # A row every map sends to 0 keeps the model's own probabilities.
        return np.where(total > 0, cal / np.where(total > 0, total, 1.0), proba)


def _check_proba(proba: Any, n_classes: int) -> np.ndarray:
    arr = np.asarray(proba, dtype=float)
    if arr.ndim != 2 or arr.shape[1] != n_classes:
        raise ModelyardError(
            "the probabilities do not match the calibration's classes",
            where="performance estimation",
            expected=f"rows x {n_classes} probabilities",
            found=f"shape {arr.shape}",
            fix="Monitor the log with the calibration of the version that served it.",
        )
    if not np.all(np.isfinite(arr)):
        raise ModelyardError(
            "the probabilities hold NaN or infinite values",
            where="performance estimation",
            fix="Leave out the records without probabilities before estimating.",
        )
    return arr


def _isotonic(p: np.ndarray, target: np.ndarray) -> IsotonicMap:
    from sklearn.isotonic import IsotonicRegression

    iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip")
    iso.fit(p, target)
    x = np.asarray(iso.X_thresholds_, dtype=float)
    y = np.asarray(iso.y_thresholds_, dtype=float)
    if x.size == 1:  # one distinct score: a constant map
        x, y = np.array([0.0, 1.0]), np.array([y[0], y[0]])
    return IsotonicMap(x=[float(v) for v in x], y=[float(v) for v in y])


def fit_calibration(
    y: Sequence[Any] | np.ndarray, proba: Any, classes: Sequence[Any], *, source: str | None = None
) -> Calibration:
    """Fit isotonic maps of ``proba`` (rows x classes, in ``classes`` order) to the labels ``y``
    (class names, or integer codes into ``classes``)."""
    names = [str(c) for c in classes]
    if len(names) < 2:
        raise ModelyardError(
            "calibration needs at least two classes",
            where="performance estimation",
            found=str(names),
        )
    arr = _check_proba(proba, len(names))
    labels = np.asarray(y)
    if labels.shape[0] != arr.shape[0]:
        raise ModelyardError(
            "labels and probabilities differ in length",
            where="performance estimation",
            found=f"{labels.shape[0]} labels, {arr.shape[0]} rows of probabilities",
        )
    if labels.dtype.kind in "iu":
        codes = labels.astype(int)
    else:
        index = {c: i for i, c in enumerate(names)}
        unknown = sorted({str(v) for v in labels.tolist()} - set(index))
        if unknown:
            raise ModelyardError(
                "labels hold classes the model does not know",
                where="performance estimation",
                expected=str(names),
                found=str(unknown[:10]),
            )
        codes = np.asarray([index[str(v)] for v in labels.tolist()], dtype=int)
    extra = {"source": source} if source else {}
    if len(names) == 2:
        from modelyard.modeling.tasks import positive_class

        positive = positive_class(names)
        pos = names.index(positive)
        return Calibration(
            task="binary", classes=names, positive=positive,
            maps=[_isotonic(arr[:, pos], (codes == pos).astype(float))], rows=len(codes), **extra,
        )  # fmt: skip
    maps = [_isotonic(arr[:, k], (codes == k).astype(float)) for k in range(len(names))]
    return Calibration(task="multiclass", classes=names, maps=maps, rows=len(codes), **extra)


def calibration_from_search(choice: Choice, oof: OutOfFold) -> Calibration | None:
    """The calibration of the chosen model, fitted on its out-of-fold probabilities (the
    members' weighted blend, as the ensemble was selected on). ``None`` for regression or
    when too few rows were covered."""
    if oof.classes is None or not all(m.key in oof.predictions for m in choice.members):
        return None
    mask = oof.covered
    if int(mask.sum()) < 2:
        return None
    proba = sum(m.weight * oof.predictions[m.key][mask] for m in choice.members)
    return fit_calibration(oof.y[mask], np.asarray(proba), oof.classes)


# --------------------------------------------------------------------------- estimation


def expected_auc(score: np.ndarray, q: np.ndarray) -> float:
    """ROC AUC expected when record ``i`` is positive with probability ``q[i]``, ranking by
    ``score`` (NaN when the window holds no expected positive or negative)."""
    order = np.argsort(-score, kind="mergesort")
    s, w = score[order], q[order]
    ends = np.r_[np.flatnonzero(np.diff(s)), s.size - 1]  # last index of each distinct score
    tp = np.r_[0.0, np.cumsum(w)[ends]]
    fp = np.r_[0.0, np.cumsum(1.0 - w)[ends]]
    if tp[-1] <= 0 or fp[-1] <= 0:
        return math.nan
    return float(np.trapezoid(tp / tp[-1], fp / fp[-1]))


def _f1(tp: float, fp: float, fn: float) -> float:
    return 2 * tp / (2 * tp + fp + fn) if tp + fp + fn > 0 else 0.0


def estimate(
    calibration: Calibration, proba: Any, predicted: Sequence[Any] | np.ndarray | None = None
) -> dict[str, float]:
    """Expected metrics of records with the model's probabilities ``proba`` (rows x classes,
    in the calibration's class order) and served labels ``predicted`` (class names; default
    the most probable class). Empty for no rows."""
    raw = _check_proba(proba, len(calibration.classes))
    n = raw.shape[0]
    if n == 0:
        return {}
    cal = calibration.apply(raw)
    if predicted is None:
        pred = raw.argmax(axis=1)
    else:
        index = {c: i for i, c in enumerate(calibration.classes)}
        given = [
            str(v) for v in (predicted.tolist() if isinstance(predicted, np.ndarray) else predicted)
        ]
        if len(given) != n or any(v not in index for v in given):
            raise ModelyardError(
                "the served labels do not match the probabilities",
                where="performance estimation",
                expected=f"{n} labels among {calibration.classes}",
                found=f"{len(given)} labels: {sorted(set(given) - set(index))[:5] or 'lengths differ'}",
            )
        pred = np.asarray([index[v] for v in given], dtype=int)
    correct = cal[np.arange(n), pred]
    out = {"accuracy": float(correct.mean())}
    if calibration.task == "binary":
        pos = calibration.classes.index(calibration.positive or calibration.classes[-1])
        q = cal[:, pos]
        yhat = pred == pos
        tp, fp = float(q[yhat].sum()), float((1.0 - q[yhat]).sum())
        fn = float(q[~yhat].sum())
        out["precision"] = tp / (tp + fp) if tp + fp > 0 else 0.0
        out["recall"] = tp / (tp + fn) if tp + fn > 0 else 0.0
        out["f1"] = _f1(tp, fp, fn)
        auc = expected_auc(raw[:, pos], q)
        if math.isfinite(auc):
            out["roc_auc"] = auc
    else:
        f1s = []
        for k in range(len(calibration.classes)):
            yhat = pred == k
            q = cal[:, k]
            tp = float(q[yhat].sum())
            f1s.append(_f1(tp, float((1.0 - q[yhat]).sum()), float(q[~yhat].sum())))
        out["f1_macro"] = float(np.mean(f1s))
    return {k: out[k] for k in ESTIMATED_METRICS[calibration.task] if k in out}


def estimate_frame(calibration: Calibration, rows: pl.DataFrame) -> tuple[dict[str, float], int]:
    """:func:`estimate` of log rows (``proba_<class>``, ``prediction``): the metrics and the
    number of records they cover (records without every probability are left out)."""
    import polars as pl

    cols = [f"proba_{c}" for c in calibration.classes]
    missing = [c for c in cols if c not in rows.columns]
    if missing:
        raise ModelyardError(
            "the prediction log lacks probability columns of the calibrated model",
            where="prediction log",
            expected=str(cols),
            found=str([c for c in rows.columns if c.startswith("proba_")]),
            fix="Monitor the log of the version the calibration belongs to (the champion).",
        )
    usable = rows.filter(pl.all_horizontal(pl.col(cols).is_not_null()))
    if usable.height == 0:
        return {}, 0
    proba = usable.select(pl.col(cols).cast(pl.Float64)).to_numpy()
    predicted = None
    if "prediction" in usable.columns and usable.get_column("prediction").null_count() == 0:
        served = usable.get_column("prediction").cast(pl.String).to_list()
        if set(served) <= set(calibration.classes):
            predicted = served
    return estimate(calibration, proba, predicted), usable.height


class EstimateSummary(BaseModel):
    """How the monitor's estimates were made (or why there are none)."""

    available: bool
    reason: str
    calibration_rows: int = 0
    metrics: list[str] = Field(default_factory=list)


def load_calibration(client: Any, run_id: str | None) -> Calibration | None:
    """The :data:`CALIBRATION_FILE` of a registered version's run (``client``: an MLflow
    client), or ``None`` when the run has none (versions registered before it was saved, or
    regression). A file that cannot be read is an error: an unreadable calibration must not
    silently turn the estimates off."""
    import json
    import tempfile
    from pathlib import Path

    if run_id is None:
        return None
    names = {a.path for a in client.list_artifacts(run_id)}
    if CALIBRATION_FILE not in names:
        return None
    with tempfile.TemporaryDirectory(prefix="modelyard-calibration-") as tmp:
        path = client.download_artifacts(run_id, CALIBRATION_FILE, tmp)
        try:
            return Calibration.model_validate(json.loads(Path(path).read_text(encoding="utf-8")))
        except (OSError, ValueError) as exc:
            raise ModelyardError(
                "the model's calibration cannot be read",
                where=f"run {run_id} / {CALIBRATION_FILE}",
                expected=f"a modelyard calibration (format {FORMAT_VERSION})",
                found=str(exc).splitlines()[0][:200],
                fix="Retrain the model (modelyard run) to write a new one.",
            ) from None
