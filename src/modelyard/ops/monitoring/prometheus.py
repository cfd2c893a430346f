"""Prometheus metrics of monitoring, alert rules and a Grafana dashboard.

Gauges (the latest judged window of the latest :class:`~.monitor.MonitorReport`)::

    modelyard_drift_score{feature, method}             psi | wasserstein | jensen_shannon |
                                                       missing_delta (as |change|) |
                                                       new_category_share
    modelyard_feature_drift{feature}                   1 drifted, 0 not (no series: no verdict)
    modelyard_dataset_drift                            1 when the dataset verdict is drift
    modelyard_drift_share                              share of the features that drifted
    modelyard_drift_threshold{method}                  the configured thresholds
    modelyard_prediction_drift_score{output, method}   prediction, proba_<class>
    modelyard_label_drift_score{target, method}        the labels (feedback) vs the reference target
    modelyard_label_drift{target}                      1 drifted, 0 not (no series: no verdict)
    modelyard_window_rows{status}                      records of the window (served|flagged|rejected)
    modelyard_window_rejected_share / _flagged_share   live data quality
    modelyard_window_performance{metric}               the task's metrics on labelled records
    modelyard_reference_performance{metric}            the model's test score (primary metric)
    modelyard_performance_drop{metric}                 reference - window, positive = worse
    modelyard_labelled_rows                            labelled records in the window
    modelyard_estimated_performance{metric}            the task's metrics estimated without labels
                                                       (classifiers; latest window with an estimate)
    modelyard_estimated_performance_drop{metric}       reference - estimate, positive = worse
    modelyard_estimated_rows                           records the estimate covers
    modelyard_monitor_last_run_timestamp_seconds       when the log was last read

:class:`MonitorCollector` holds the latest report; register it on any registry (the serving
app's, or the one of ``modelyard monitor --serve``, see :func:`serve_exporter`).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import yaml

from modelyard.ops.monitoring.monitor import MonitorReport

ALERTS_FILE = "modelyard-alerts.yml"
DASHBOARD_FILE = "modelyard-dashboard.json"
PROMETHEUS_FILE = "prometheus.yml"


class MonitorCollector:
    """A prometheus_client collector exposing the latest monitoring report."""

    def __init__(self, report: MonitorReport | None = None) -> None:
        self.report = report
        self.updated = time.time() if report is not None else None
        self._lock = threading.Lock()

    def update(self, report: MonitorReport) -> None:
        with self._lock:
            self.report = report
            self.updated = time.time()

    def describe(self) -> list[Any]:
        return []

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily

        with self._lock:
            report, updated = self.report, self.updated

        def gauge(name: str, doc: str, labels: list[str] | None = None) -> GaugeMetricFamily:
            return GaugeMetricFamily(name, doc, labels=labels or [])

        last = gauge("modelyard_monitor_last_run_timestamp_seconds", "When the log was last read.")
        if updated is not None:
            last.add_metric([], updated)
        yield last
        if report is None:
            return
        s = report.settings.thresholds
        thr = gauge("modelyard_drift_threshold", "Drift thresholds by method.", ["method"])
        for method, value in (
            ("psi", s.psi), ("wasserstein", s.wasserstein), ("jensen_shannon", s.jensen_shannon),
            ("missing_delta", s.missing_rate), ("new_category_share", s.new_category_rate),
            ("p_value", s.p_value), ("share", s.share),
            ("performance_drop", report.settings.performance_drop),
        ):  # fmt: skip
            thr.add_metric([method], value)
        yield thr
        window = report.latest()
        if window is None:
            return
        score = gauge(
            "modelyard_drift_score", "Per-feature drift effect size.", ["feature", "method"]
        )
        flag = gauge("modelyard_feature_drift", "1 when the feature drifted.", ["feature"])
        for f in window.drift.features:
            for method, value in f.scores().items():
                score.add_metric([f.column, method], value)
            if f.drifted is not None:
                flag.add_metric([f.column], 1.0 if f.drifted else 0.0)
        yield score
        yield flag
        if window.drift.drifted is not None:
            yield _single(
                "modelyard_dataset_drift",
                "1 when the dataset drifted.",
                float(window.drift.drifted),
            )
        if window.drift.drift_share is not None:
            yield _single(
                "modelyard_drift_share", "Share of features that drifted.", window.drift.drift_share
            )
        pred = gauge(
            "modelyard_prediction_drift_score",
            "Prediction drift effect size.",
            ["output", "method"],
        )
        for f in window.prediction_drift:
            for method, value in f.scores().items():
                pred.add_metric([f.column, method], value)
        yield pred
        label_score = gauge(
            "modelyard_label_drift_score", "Label drift effect size.", ["target", "method"]
        )
        label_flag = gauge("modelyard_label_drift", "1 when the labels drifted.", ["target"])
        judged = [w for w in report.windows if w.label_drift and w.label_drift.drifted is not None]
        label_drift = judged[-1].label_drift if judged else None
        if label_drift is not None:
            for method, value in label_drift.scores().items():
                label_score.add_metric([label_drift.column, method], value)
            label_flag.add_metric([label_drift.column], 1.0 if label_drift.drifted else 0.0)
        yield label_score
        yield label_flag
        rows = gauge("modelyard_window_rows", "Records of the latest window by status.", ["status"])
        flagged = round(window.flagged_share * window.rows)
        rejected = round(window.rejected_share * window.rows)
        rows.add_metric(["served"], window.served - flagged)
        rows.add_metric(["flagged"], flagged)
        rows.add_metric(["rejected"], rejected)
        yield rows
        yield _single(
            "modelyard_window_rejected_share", "Share of rejected records.", window.rejected_share
        )
        yield _single(
            "modelyard_window_flagged_share", "Share of flagged records.", window.flagged_share
        )
        perf_window = report.latest_performance() or window
        yield _single(
            "modelyard_labelled_rows", "Labelled records in the window.", perf_window.labelled
        )
        perf = gauge(
            "modelyard_window_performance", "Task metrics on labelled records.", ["metric"]
        )
        for name, value in perf_window.performance.items():
            perf.add_metric([name], value)
        yield perf
        if report.metric and report.reference_metric is not None:
            yield _single(
                "modelyard_reference_performance", "The model's test score.", report.reference_metric,
                ("metric", report.metric),
            )  # fmt: skip
            if perf_window.performance_drop is not None:
                yield _single(
                    "modelyard_performance_drop", "Reference minus window metric (positive: worse).",
                    perf_window.performance_drop, ("metric", report.metric),
                )  # fmt: skip
        yield from _estimates(report)


def _estimates(report: MonitorReport) -> Iterator[Any]:
    """The estimated metrics of the latest window with an estimate (nothing without one)."""
    from prometheus_client.core import GaugeMetricFamily

    window = report.latest_estimate()
    if window is None:
        return
    est = GaugeMetricFamily(
        "modelyard_estimated_performance",
        "Task metrics estimated before labels from calibrated probabilities (CBPE).",
        labels=["metric"],
    )
    for name, value in window.estimated.items():
        est.add_metric([name], value)
    yield est
    yield _single(
        "modelyard_estimated_rows",
        "Records the performance estimate covers.",
        window.estimated_rows,
    )
    if report.metric and window.estimated_drop is not None:
        yield _single(
            "modelyard_estimated_performance_drop",
            "Reference minus estimated metric (positive: worse).",
            window.estimated_drop, ("metric", report.metric),
        )  # fmt: skip


def _single(name: str, doc: str, value: float, label: tuple[str, str] | None = None) -> Any:
    from prometheus_client.core import GaugeMetricFamily

    g = GaugeMetricFamily(name, doc, labels=[label[0]] if label else [])
    g.add_metric([label[1]] if label else [], float(value))
    return g


def serve_exporter(
    refresh: Callable[[], MonitorReport],
    *,
    host: str = "127.0.0.1",
    port: int = 9108,
    interval: float = 60.0,
    stop: threading.Event | None = None,
    on_error: Callable[[Exception], None] | None = None,
) -> None:
    """Serve ``/metrics`` on ``host:port`` and call ``refresh`` every ``interval`` seconds
    until ``stop`` is set (blocks). A failing refresh keeps the previous values."""
    from prometheus_client import CollectorRegistry, start_http_server

    registry = CollectorRegistry(auto_describe=False)
    collector = MonitorCollector()
    registry.register(collector)
    server, thread = start_http_server(port, addr=host, registry=registry)
    stop = stop or threading.Event()
    try:
        while not stop.is_set():
            try:
                collector.update(refresh())
            except Exception as exc:  # keep serving the last report
                if on_error is not None:
                    on_error(exc)
            stop.wait(interval)
    finally:
        server.shutdown()
        thread.join(5)


# --------------------------------------------------------------------------- emitted config


def alert_rules(
    report_settings: Any, *, for_: str = "5m", error_rate: float = 0.05, latency_p99: float = 0.5,
    rejected_share: float = 0.1,
) -> dict[str, Any]:  # fmt: skip
    """Prometheus alert rules: drift, performance drop (realised and estimated), error rate,
    latency, data quality."""
    drop = report_settings.performance_drop
    rules = [
        {
            "alert": "ModelyardDatasetDrift",
            "expr": "modelyard_dataset_drift == 1",
            "for": for_,
            "labels": {"severity": "warning"},
            "annotations": {
                "summary": "Input data drifted",
                "description": "{{ $value }}: at least the configured share of the features "
                "drifted in the latest monitoring window (modelyard monitor).",
            },
        },
        {
            "alert": "ModelyardFeatureDrift",
            "expr": "modelyard_feature_drift == 1",
            "for": for_,
            "labels": {"severity": "info"},
            "annotations": {"summary": "Feature {{ $labels.feature }} drifted"},
        },
        {
            "alert": "ModelyardLabelDrift",
            "expr": "modelyard_label_drift == 1",
            "for": for_,
            "labels": {"severity": "warning"},
            "annotations": {
                "summary": "The labels of {{ $labels.target }} drifted",
                "description": "The labels that arrived through /feedback in the latest judged "
                "window differ from the reference's target (modelyard monitor).",
            },
        },
        {
            "alert": "ModelyardPerformanceDrop",
            "expr": f"modelyard_performance_drop > {drop}",
            "for": for_,
            "labels": {"severity": "critical"},
            "annotations": {
                "summary": "Model performance dropped",
                "description": "{{ $labels.metric }} is {{ $value }} worse than at training.",
            },
        },
        {
            "alert": "ModelyardEstimatedPerformanceDrop",
            "expr": f"modelyard_estimated_performance_drop > {drop}",
            "for": for_,
            "labels": {"severity": "warning"},
            "annotations": {
                "summary": "Model performance is estimated to have dropped",
                "description": "{{ $labels.metric }} is estimated {{ $value }} worse than at "
                "training, from the calibrated probabilities of the latest window (no labels "
                "needed; modelyard monitor).",
            },
        },
        {
            "alert": "ModelyardHighErrorRate",
            "expr": 'sum(rate(modelyard_http_requests_total{status=~"5.."}[5m])) / '
            f"sum(rate(modelyard_http_requests_total[5m])) > {error_rate}",
            "for": for_,
            "labels": {"severity": "critical"},
            "annotations": {"summary": f"More than {error_rate:.0%} of requests fail with 5xx"},
        },
        {
            "alert": "ModelyardHighLatency",
            "expr": "histogram_quantile(0.99, sum by (le) "
            f"(rate(modelyard_http_request_duration_seconds_bucket[5m]))) > {latency_p99}",
            "for": for_,
            "labels": {"severity": "warning"},
            "annotations": {"summary": f"p99 latency above {latency_p99} s"},
        },
        {
            "alert": "ModelyardRejectedRequests",
            "expr": f"modelyard_window_rejected_share > {rejected_share}",
            "for": for_,
            "labels": {"severity": "warning"},
            "annotations": {"summary": "Many requests break the data contract"},
        },
    ]
    return {"groups": [{"name": "modelyard", "rules": rules}]}


PANELS: list[tuple[str, str, str]] = [
    ("Drift score (PSI) by feature", 'modelyard_drift_score{method="psi"}', "{{feature}}"),
    ("Drift score (Wasserstein / std) by feature", 'modelyard_drift_score{method="wasserstein"}', "{{feature}}"),
    ("Drift score (Jensen-Shannon) by feature", 'modelyard_drift_score{method="jensen_shannon"}', "{{feature}}"),
    ("Share of drifted features", "modelyard_drift_share", "share"),
    ("Prediction drift", "modelyard_prediction_drift_score", "{{output}} {{method}}"),
    ("Windowed performance", "modelyard_window_performance", "{{metric}}"),
    ("Estimated performance (before labels)", "modelyard_estimated_performance", "{{metric}}"),
    ("Rejected / flagged share (live data quality)", "modelyard_window_rejected_share", "rejected"),
    ("Requests per second", "sum by (route, status) (rate(modelyard_http_requests_total[1m]))", "{{route}} {{status}}"),
    ("5xx error share", '(sum(rate(modelyard_http_requests_total{status=~"5.."}[1m])) or vector(0)) / sum(rate(modelyard_http_requests_total[1m]))', "errors"),
    ("Latency p50 / p99 (s)", "histogram_quantile(0.99, sum by (le) (rate(modelyard_http_request_duration_seconds_bucket[1m])))", "p99"),
    ("Predictions by class", "sum by (prediction) (rate(modelyard_predictions_total[1m]))", "{{prediction}}"),
]  # fmt: skip
"""(title, PromQL, legend) of every dashboard panel."""


def dashboard(*, title: str = "modelyard model monitoring") -> dict[str, Any]:
    """A Grafana dashboard (JSON model) with one time-series panel per :data:`PANELS` entry."""
    panels = []
    for i, (name, expr, legend) in enumerate(PANELS):
        panels.append(
            {
                "id": i + 1,
                "type": "timeseries",
                "title": name,
                "datasource": {"type": "prometheus", "uid": "${datasource}"},
                "gridPos": {"h": 8, "w": 12, "x": 12 * (i % 2), "y": 8 * (i // 2)},
                "targets": [{"refId": "A", "expr": expr, "legendFormat": legend}],
            }
        )
    return {
        "title": title,
        "uid": "modelyard-monitoring",
        "schemaVersion": 39,
        "time": {"from": "now-6h", "to": "now"},
        "refresh": "30s",
        "templating": {
            "list": [{"name": "datasource", "type": "datasource", "query": "prometheus"}]
        },
        "panels": panels,
    }


def emit_config(
    folder: Path,
    settings: Any,
    *,
    for_: str = "5m",
    targets: list[str] | None = None,
    scrape_interval: str = "15s",
) -> list[Path]:
    """Write the alert rules, the dashboard and a minimal prometheus.yml into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    rules = folder / ALERTS_FILE
    rules.write_text(
        yaml.safe_dump(alert_rules(settings, for_=for_), sort_keys=False), encoding="utf-8"
    )
    dash = folder / DASHBOARD_FILE
    dash.write_text(json.dumps(dashboard(), indent=2), encoding="utf-8")
    prom = folder / PROMETHEUS_FILE
    config = {
        "global": {"scrape_interval": scrape_interval, "evaluation_interval": scrape_interval},
        "rule_files": [ALERTS_FILE],
        "scrape_configs": [
            {
                "job_name": "modelyard",
                "static_configs": [{"targets": targets or ["127.0.0.1:8080", "127.0.0.1:9108"]}],
            }
        ],
    }
    prom.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return [rules, dash, prom]
