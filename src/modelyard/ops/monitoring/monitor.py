"""Windows of the prediction log against the reference: data drift, prediction drift, live
data quality and performance once labels arrive.

Per window (see :mod:`.windows`):

- **data drift**: :func:`~.drift.column_drift` of every contract feature of the served
  (and flagged) records against the reference data, and the dataset verdict;
- **prediction drift**: the same on ``prediction`` and every ``proba_<class>`` column, against
  ``reference_predictions`` (the model's predictions of the reference data) when given, else
  against the first window with at least ``min_rows`` served records;
- **live data quality**: the share of the window's records that were rejected or flagged
  (lenient serving) for contract violations;
- **performance**: the task's metrics on the records whose label arrived through
  ``/feedback`` (judged from ``min_rows`` labelled records on), and its drop from the model's
  test metric (``reference_metric``; positive = worse);
- **label drift**: those labels against the reference's target column, judged like a feature
  (categories for a classification task) but apart from the features' drift share;
- **estimated performance** (classifiers, when the model's :class:`~.estimate.Calibration` is
  given): the task's metrics expected from the calibrated probabilities of every served record,
  before any label arrives (:mod:`.estimate`), and their drop from ``reference_metric``.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import polars as pl
from pydantic import BaseModel, Field

from modelyard.config.schema import MonitoringSection
from modelyard.data.contract import DataContract, Task
from modelyard.ops.monitoring.drift import (
    DriftReport,
    FeatureDrift,
    Kind,
    column_drift,
    summarise,
)
from modelyard.ops.monitoring.estimate import Calibration, EstimateSummary, estimate_frame
from modelyard.ops.monitoring.windows import resolve_by, split_windows


class WindowReport(BaseModel):
    """Everything measured on one window."""

    label: str
    start: str
    end: str
    rows: int
    """Records in the window (served, flagged and rejected)."""
    served: int
    """Records predicted (served + flagged)."""
    rejected_share: float
    flagged_share: float
    drift: DriftReport
    prediction_drift: list[FeatureDrift] = Field(default_factory=list)
    labelled: int = 0
    label_drift: FeatureDrift | None = None
    """The window's labels (``/feedback``) against the reference's target (None without any
    label; ``insufficient_data`` below ``min_rows`` labels). Not one of the features."""
    performance: dict[str, float] = Field(default_factory=dict)
    """The task's metrics on the labelled records (empty below ``min_rows`` labels)."""
    metric: float | None = None
    """The primary metric on the labelled records."""
    performance_drop: float | None = None
    """Reference metric minus this window's, in the bad direction (positive = worse)."""
    mean_latency_ms: float | None = None
    estimated: dict[str, float] = Field(default_factory=dict)
    """The task's metrics estimated without labels from the calibrated probabilities of the
    served records (empty without a calibration or below ``min_rows`` records)."""
    estimated_rows: int = 0
    """Served records with every probability: what the estimate covers."""
    estimated_metric: float | None = None
    """The primary metric, estimated (None when that metric is not estimated)."""
    estimated_drop: float | None = None
    """Reference metric minus the estimate, in the bad direction (positive = worse)."""


class MonitorReport(BaseModel):
    """All windows, and what crossed a threshold."""

    created: str
    task: Task | None
    metric: str | None
    """The primary metric (the project's selection metric)."""
    greater_is_better: bool = True
    reference_metric: float | None = None
    """The model's test score on that metric (the performance baseline)."""
    model_versions: list[str] = Field(default_factory=list)
    window_by: str
    window_size: str
    reference_rows: int
    reference_total_rows: int | None = None
    """When the reference is a seeded sample: the rows of the data it was drawn from."""
    log_rows: int
    prediction_baseline: str
    """``reference`` (the model's predictions of the reference) or ``first window``."""
    settings: MonitoringSection
    windows: list[WindowReport]
    alerts: list[str] = Field(default_factory=list)
    """Sentences: what crossed its threshold in the latest judged window."""
    estimation: EstimateSummary = Field(
        default_factory=lambda: EstimateSummary(available=False, reason="no calibration given")
    )
    """How performance was estimated before labels (or why it was not)."""

    def latest(self) -> WindowReport | None:
        """The most recent window with a data-drift verdict (else the most recent window)."""
        judged = [w for w in self.windows if w.drift.drifted is not None]
        return judged[-1] if judged else (self.windows[-1] if self.windows else None)

    def latest_performance(self) -> WindowReport | None:
        judged = [w for w in self.windows if w.metric is not None]
        return judged[-1] if judged else None

    def latest_estimate(self) -> WindowReport | None:
        """The most recent window with estimated metrics."""
        judged = [w for w in self.windows if w.estimated]
        return judged[-1] if judged else None


def _iso(value: dt.datetime | int) -> str:
    return value.isoformat() if isinstance(value, dt.datetime) else str(value)


def monitor(
    log: pl.DataFrame,
    reference: pl.DataFrame,
    contract: DataContract,
    *,
    settings: MonitoringSection | None = None,
    metric: str | None = None,
    reference_metric: float | None = None,
    reference_predictions: pl.DataFrame | None = None,
    calibration: Calibration | None = None,
    reference_total: int | None = None,
) -> MonitorReport:
    """Monitor the log rows (:func:`~.log.read_prediction_log`) against the reference frame
    (cast to the contract here). ``metric``: the primary task metric (default: the task's).
    ``calibration``: the served model's (see :mod:`.estimate`), to estimate performance
    before labels. ``reference_total``: the rows of the reference data, when ``reference`` is
    a sample of them (the report says so)."""
    from modelyard.data.validation import cast_to_contract
    from modelyard.modeling.tasks import default_metric, greater_is_better, resolve_metric

    s = settings or MonitoringSection()
    task = contract.task
    metric_name = None
    if task is not None:
        metric_name = (
            resolve_metric(task, metric) if metric and metric != "auto" else default_metric(task)
        )
    ref = cast_to_contract(reference, contract)[0]
    features = [
        c.name for c in contract.features if c.name in ref.columns and c.name in log.columns
    ]
    has_time = any(c.role == "time" for c in contract.columns)
    by = resolve_by(
        s.windows.by,
        has_time_column=has_time and log.get_column("event_time").null_count() < log.height,
    )
    windows = split_windows(log, by=by, size=s.windows.size)
    outputs = [c for c in log.columns if c == "prediction" or c.startswith("proba_")]
    target = contract.target if contract.target in ref.columns else None
    target_kind: Kind | None = "categorical" if task in ("binary", "multiclass") else None
    baseline = "reference" if reference_predictions is not None else "first window"
    pred_ref = reference_predictions
    t = s.thresholds
    estimation = _estimation(calibration, task, log)
    if not estimation.available:
        calibration = None
    reports: list[WindowReport] = []
    for w in windows:
        rows = w.rows
        served = rows.filter(pl.col("status") != "rejected")
        n = rows.height
        feats = [
            column_drift(ref.get_column(c), served.get_column(c), thresholds=t, min_rows=s.min_rows)
            for c in features
        ]
        report = summarise(feats, ref.height, served.height, thresholds=t, min_rows=s.min_rows)
        if pred_ref is None and served.height >= s.min_rows:
            pred_ref = served.select(outputs)
        pred_drift = []
        if pred_ref is not None:
            pred_drift = [
                column_drift(
                    pred_ref.get_column(c), served.get_column(c), thresholds=t, min_rows=s.min_rows
                )
                for c in outputs
                if c in pred_ref.columns
            ]
        wr = WindowReport(
            label=w.label,
            start=_iso(w.start),
            end=_iso(w.end),
            rows=n,
            served=served.height,
            rejected_share=_share(rows, "rejected"),
            flagged_share=_share(rows, "flagged"),
            drift=report,
            prediction_drift=pred_drift,
            mean_latency_ms=_mean(rows.get_column("latency_ms"))
            if "latency_ms" in rows.columns
            else None,
        )
        labelled = (
            served.filter(pl.col("label").is_not_null())
            if "label" in served.columns
            else served.clear()
        )
        wr.labelled = labelled.height
        if target is not None and labelled.height:
            wr.label_drift = column_drift(
                ref.get_column(target), labelled.get_column("label").alias(target),
                thresholds=t, min_rows=s.min_rows, kind=target_kind,
            )  # fmt: skip
        if task is not None and metric_name is not None and labelled.height >= s.min_rows:
            wr.performance = performance(labelled, task)
            wr.metric = wr.performance.get(metric_name)
            if wr.metric is not None and reference_metric is not None:
                sign = 1.0 if greater_is_better(metric_name) else -1.0
                wr.performance_drop = sign * (reference_metric - wr.metric)
        if calibration is not None and metric_name is not None:
            estimated, covered = estimate_frame(calibration, served)
            wr.estimated_rows = covered
            if covered >= s.min_rows:
                wr.estimated = estimated
                wr.estimated_metric = estimated.get(metric_name)
                if wr.estimated_metric is not None and reference_metric is not None:
                    sign = 1.0 if greater_is_better(metric_name) else -1.0
                    wr.estimated_drop = sign * (reference_metric - wr.estimated_metric)
        reports.append(wr)
    out = MonitorReport(
        created=dt.datetime.now(dt.UTC).isoformat(),
        task=task,
        metric=metric_name,
        greater_is_better=greater_is_better(metric_name) if metric_name else True,
        reference_metric=reference_metric,
        model_versions=sorted(
            {str(v) for v in log.get_column("model_version").drop_nulls().unique().to_list()}
        )
        if "model_version" in log.columns
        else [],
        window_by=by,
        window_size=s.windows.size,
        reference_rows=ref.height,
        reference_total_rows=reference_total,
        log_rows=log.height,
        prediction_baseline=baseline,
        settings=s,
        windows=reports,
        estimation=estimation,
    )
    out.alerts = alerts(out)
    return out


def alerts(report: MonitorReport) -> list[str]:
    """What crossed a threshold in the latest judged windows."""
    found = []
    latest = report.latest()
    if latest is not None and latest.drift.drifted:
        found.append(
            f"data drift in window {latest.label}: {len(latest.drift.drifted_features)} of "
            f"{len(latest.drift.features)} features ({', '.join(latest.drift.drifted_features)})"
        )
    judged = [
        (w.label, w.label_drift)
        for w in report.windows
        if w.label_drift is not None and w.label_drift.drifted is not None
    ]
    if judged and judged[-1][1].drifted:
        label, ld = judged[-1]
        found.append(
            f"label drift in window {label}: the labels of target '{ld.column}' moved "
            f"({'; '.join(ld.reasons)})"
        )
    perf = report.latest_performance()
    drop = report.settings.performance_drop
    if perf is not None and perf.performance_drop is not None and perf.performance_drop > drop:
        found.append(
            f"performance drop in window {perf.label}: {report.metric} {perf.metric:.4g} vs "
            f"{report.reference_metric:.4g} at training (drop {perf.performance_drop:.4g} > {drop:g})"
        )
    est = report.latest_estimate()
    if est is not None and est.estimated_drop is not None and est.estimated_drop > drop:
        found.append(
            f"estimated performance drop in window {est.label} (no labels needed): "
            f"{report.metric} {est.estimated_metric:.4g} expected vs {report.reference_metric:.4g} "
            f"at training (drop {est.estimated_drop:.4g} > {drop:g})"
        )
    return found


def _estimation(
    calibration: Calibration | None, task: Task | None, log: pl.DataFrame
) -> EstimateSummary:
    """Whether the windows can be estimated, and why not."""
    from modelyard.ops.monitoring.estimate import ESTIMATED_METRICS

    if task == "regression":
        return EstimateSummary(
            available=False,
            reason="regression is not estimated: confidence-based estimation needs class "
            "probabilities (see the monitoring docs)",
        )
    if calibration is None:
        return EstimateSummary(
            available=False,
            reason="the model has no calibration (versions registered before calibration.json "
            "was saved): retrain to estimate performance before labels",
        )
    cols = [f"proba_{c}" for c in calibration.classes]
    if (task is not None and calibration.task != task) or any(c not in log.columns for c in cols):
        return EstimateSummary(
            available=False,
            reason=f"the calibration ({calibration.task}, classes {calibration.classes}) does not "
            f"match the log's probabilities ({[c for c in log.columns if c.startswith('proba_')]})",
        )
    return EstimateSummary(
        available=True,
        reason=f"isotonic calibration on {calibration.rows:,} {calibration.source}",
        calibration_rows=calibration.rows,
        metrics=list(ESTIMATED_METRICS[calibration.task]),
    )


def _share(rows: pl.DataFrame, status: str) -> float:
    if rows.height == 0:
        return 0.0
    return float((rows.get_column("status") == status).sum()) / rows.height


def _mean(s: pl.Series) -> float | None:
    value = s.mean()
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else None


def performance(
    labelled: pl.DataFrame, task: Task, classes: Sequence[Any] | None = None
) -> dict[str, float]:
    """The task's metrics of labelled log rows (``label``, ``prediction``, ``proba_*``)."""
    from modelyard.modeling.tasks import compute_metrics

    proba_cols = [c for c in labelled.columns if c.startswith("proba_")]
    if task == "regression":
        y = labelled.get_column("label").cast(pl.Float64, strict=False).to_numpy()
        p = labelled.get_column("prediction").cast(pl.Float64, strict=False).to_numpy()
        ok = np.isfinite(y) & np.isfinite(p)
        metrics = compute_metrics(task, y[ok], y_pred=p[ok])
    else:
        y = np.asarray(labelled.get_column("label").cast(pl.String).to_list(), dtype=object)
        p = np.asarray(labelled.get_column("prediction").cast(pl.String).to_list(), dtype=object)
        names = classes or [c[len("proba_") :] for c in proba_cols]
        proba = None
        if proba_cols and labelled.select(pl.col(proba_cols).null_count().sum()).row(0) == tuple(
            0 for _ in proba_cols
        ):
            proba = labelled.select(proba_cols).to_numpy()
        metrics = compute_metrics(
            task, y, y_pred=p, y_proba=proba, classes=list(names) if proba is not None else None
        )
    return {k: float(v) for k, v in metrics.items() if v is not None and math.isfinite(v)}
