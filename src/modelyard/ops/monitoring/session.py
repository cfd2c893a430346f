"""A project's prediction log checked against its reference: what
:meth:`modelyard.recipe.Project.monitor` and ``modelyard monitor`` run.

The inputs (contract, reference table, log folder, the champion's test score) are gathered once
by :func:`monitor_inputs`; :func:`check_log` reads the log and runs
:func:`modelyard.ops.monitoring.monitor.monitor`; :func:`serve_metrics` serves the result to
Prometheus, re-read every interval.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import polars as pl

    from modelyard.config.schema import ProjectConfig
    from modelyard.data.contract import DataContract
    from modelyard.ops.monitoring.monitor import MonitorReport
    from modelyard.ops.monitoring.retrain import RetrainResult


@dataclass
class MonitorInputs:
    """What the prediction log is compared with."""

    contract: DataContract
    reference: pl.DataFrame
    log_dir: Path
    reference_metric: float | None
    """The champion's test score (the performance baseline), when there is a champion."""
    calibration: Any = None
    """The champion's calibration (performance estimated before labels), when it has one."""
    reference_total: int | None = None
    """The rows of the reference data when ``reference`` is a sample of them."""


@dataclass
class MonitorResult:
    """What :meth:`modelyard.recipe.Project.monitor` did and wrote."""

    report: MonitorReport
    html: Path
    json: Path
    retrain: RetrainResult | None = None

    @property
    def alerts(self) -> list[str]:
        return list(self.report.alerts)


REFERENCE_ROWS = 200_000
"""The reference the log is compared with is a seeded sample of at most this many rows of the
reference data (read in memory bounded by it), unless the whole of it is asked for (retraining
trains on all of it)."""


def monitor_inputs(
    config: ProjectConfig,
    contract: DataContract,
    *,
    champion_metrics: Mapping[str, float] | None,
    log_dir: Path | None = None,
    reference: Path | None = None,
    calibration: Any = None,
    whole: bool = False,
) -> MonitorInputs:
    """The reference table (``reference``, else ``monitoring.reference``, else the training
    source; a seeded sample of :data:`REFERENCE_ROWS` rows unless ``whole``; the lines that
    are not rows set aside, as ingest does), the log folder (``log_dir``, else
    ``serving.prediction_log.path``) and the test score of the project's metric among
    ``champion_metrics``."""
    from modelyard.config.schema import Source
    from modelyard.data.sources import read_source_rows

    data = config.data
    ref_path = reference or config.monitoring.reference
    sample = None if whole else REFERENCE_ROWS
    if ref_path is not None:
        source = Source.model_validate({"path": ref_path})
        read = read_source_rows(source, sample=sample, seed=config.seed)
    else:
        read = read_source_rows(
            data.source, sample=sample, seed=config.seed, normalize=data.normalize,
            drop=data.columns.drop,
        )  # fmt: skip
    frame = read.rows
    total = read.total_rows if frame.height < read.total_rows else None
    metric = None
    if champion_metrics is not None and contract.task is not None:
        from modelyard.modeling.tasks import default_metric, resolve_metric

        name = config.models.metric
        name = (
            default_metric(contract.task) if name == "auto" else resolve_metric(contract.task, name)
        )
        metric = champion_metrics.get(f"test_{name}", champion_metrics.get(name))
    return MonitorInputs(
        contract, frame, log_dir or config.serving.prediction_log.path, metric, calibration, total
    )


def check_log(config: ProjectConfig, inputs: MonitorInputs) -> tuple[MonitorReport, pl.DataFrame]:
    """Read the prediction log and monitor it window by window; the report and the log's rows."""
    from modelyard.ops.monitoring.log import read_prediction_log
    from modelyard.ops.monitoring.monitor import monitor as run_monitor

    log = read_prediction_log(inputs.log_dir, contract=inputs.contract)
    report = run_monitor(
        log.rows,
        inputs.reference,
        inputs.contract,
        settings=config.monitoring,
        metric=config.models.metric,
        reference_metric=inputs.reference_metric,
        calibration=inputs.calibration,
        reference_total=inputs.reference_total,
    )
    return report, log.rows


def serve_metrics(
    config: ProjectConfig,
    inputs: MonitorInputs,
    *,
    host: str | None = None,
    port: int | None = None,
    interval: float | None = None,
    stop: threading.Event | None = None,
    announce: Callable[[str], None] | None = None,
) -> None:
    """Serve the monitoring metrics on ``/metrics`` and re-read the log every ``interval``
    seconds (default ``monitoring.interval_seconds``) until ``stop`` is set; without ``stop``,
    in the main thread, SIGINT and SIGTERM stop it."""
    import logging
    import signal

    from modelyard.ops.monitoring.prometheus import serve_exporter

    event = stop or threading.Event()
    previous: dict[signal.Signals, Any] = {}
    if stop is None and threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            previous[sig] = signal.signal(sig, lambda *_: event.set())
    log = logging.getLogger("modelyard.monitor")
    bind = host or config.serving.host
    at = port or config.monitoring.port
    if announce is not None:
        announce(f"serving monitoring metrics on http://{bind}:{at}/metrics")
    try:
        serve_exporter(
            lambda: check_log(config, inputs)[0], host=bind, port=at,
            interval=interval or config.monitoring.interval_seconds, stop=event,
            on_error=lambda exc: log.warning("monitoring refresh failed: %s", exc),
        )  # fmt: skip
    finally:  # the caller's handlers again (a notebook keeps its Ctrl-C)
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def alert_config(config: ProjectConfig, folder: Path, *, alert_for: str = "5m") -> list[Path]:
    """Write Prometheus alert rules, a Grafana dashboard and a prometheus.yml into ``folder``."""
    from modelyard.ops.monitoring.prometheus import emit_config

    return emit_config(
        folder, config.monitoring, for_=alert_for,
        targets=[f"{config.serving.host}:{config.serving.port}",
                 f"{config.serving.host}:{config.monitoring.port}"],
    )  # fmt: skip
