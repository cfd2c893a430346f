"""Prometheus metrics of the prediction server.

Names follow the Prometheus conventions (``modelyard_`` prefix, base units, ``_total`` for
counters, ``_seconds`` for durations)::

    modelyard_http_requests_total{route, method, status}        counter
    modelyard_http_request_duration_seconds{route}              histogram
    modelyard_predictions_total{model_version, prediction}      counter   (classifiers: by class)
    modelyard_prediction_value{model_version}                   histogram (regression)
    modelyard_predicted_rows_total{model_version}               counter
    modelyard_contract_violations_total{column, check}          counter   (unknown fields: "_unknown")
    modelyard_drifted_values_total{column, check}               counter   (range | category)
    modelyard_rejected_requests_total{reason}                   counter
    modelyard_prediction_log_dropped_total                      counter   (queue full, write failed)
    modelyard_model_reloads_total                               counter
    modelyard_model_info{name, version}                         gauge     (1: the served version)

With several worker processes, ``PROMETHEUS_MULTIPROC_DIR`` is set before the workers start
(``modelyard serve`` does it) and ``/metrics`` aggregates every process's values
(``prometheus_client`` multiprocess mode; the info gauge uses ``livemax``).
"""

from __future__ import annotations

import os
from typing import Any

_LATENCY_BUCKETS = (
    0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
)  # fmt: skip


def multiprocess() -> bool:
    return bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))


class Metrics:
    """The server's collectors, registered on a private registry (never the global one)."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = CollectorRegistry(auto_describe=True)
        reg = self.registry
        self.requests = Counter(
            "modelyard_http_requests",
            "HTTP requests by route, method and status code.",
            ["route", "method", "status"],
            registry=reg,
        )
        self.latency = Histogram(
            "modelyard_http_request_duration_seconds",
            "Time from request arrival to the end of the response, by route.",
            ["route"],
            buckets=_LATENCY_BUCKETS,
            registry=reg,
        )
        self.predictions = Counter(
            "modelyard_predictions",
            "Predicted labels, by model version and class (classifiers).",
            ["model_version", "prediction"],
            registry=reg,
        )
        self.prediction_value = Histogram(
            "modelyard_prediction_value",
            "Predicted values (regression).",
            ["model_version"],
            registry=reg,
        )
        self.rows = Counter(
            "modelyard_predicted_rows",
            "Records predicted.",
            ["model_version"],
            registry=reg,
        )
        self.violations = Counter(
            "modelyard_contract_violations",
            "Contract violations in requests, by column and rule.",
            ["column", "check"],
            registry=reg,
        )
        self.drift = Counter(
            "modelyard_drifted_values",
            "Values predicted although outside the training data, by column and rule "
            "(range: outside the training range; category: unseen in training).",
            ["column", "check"],
            registry=reg,
        )
        self.rejected = Counter(
            "modelyard_rejected_requests",
            "Requests answered with a 4xx/5xx before prediction, by reason.",
            ["reason"],
            registry=reg,
        )
        self.log_dropped = Counter(
            "modelyard_prediction_log_dropped",
            "Prediction-log records lost: the writer's queue stayed full, or a write failed.",
            registry=reg,
        )
        self.reloads = Counter(
            "modelyard_model_reloads", "Switches to another model version.", registry=reg
        )
        self.model_info = Gauge(
            "modelyard_model_info",
            "The served model version (value 1).",
            ["name", "version"],
            registry=reg,
            multiprocess_mode="livemax",
        )
        self._info: tuple[str, str] | None = None

    def set_model(self, name: str, version: str) -> None:
        if self._info is not None and self._info != (name, version):
            self.model_info.labels(*self._info).set(0)
        self.model_info.labels(name, version).set(1)
        self._info = (name, version)

    def expose(self) -> tuple[bytes, str]:
        """The text exposition (all processes in multiprocess mode) and its content type."""
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        if multiprocess():
            from prometheus_client import CollectorRegistry
            from prometheus_client.multiprocess import MultiProcessCollector

            registry: Any = CollectorRegistry()
            MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
            return generate_latest(registry), CONTENT_TYPE_LATEST
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


def mark_process_dead(pid: int) -> None:
    """Forget a dead worker's live gauges (multiprocess mode)."""
    if multiprocess():
        from prometheus_client import multiprocess as mp

        mp.mark_process_dead(pid)  # type: ignore[no-untyped-call]
