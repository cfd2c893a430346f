"""A real Prometheus (Debian's package) fires ``ModelyardEstimatedPerformanceDrop`` from the
rules of ``monitor --emit-config``, scraping the monitoring exporter (:func:`serve_exporter`)
while no label has arrived for the window that dropped.

The exporter's report comes from the monitor itself: a calibrated model's log whose first day
is like the reference and whose second day moves to a region where the model is unsure
(covariate shift). Until the second day is read, nothing fires; then the estimate drops and
the alert fires, with the estimated accuracy queryable beside the realised one.
"""

from __future__ import annotations

import shutil
import subprocess
import threading
from pathlib import Path
from typing import Any

import pytest

from modelyard.config.schema import MonitoringSection
from tests.conftest import skip_or_fail
from tests.integration.conftest import free_port, stop, wait_http
from tests.integration.monitoring.test_prometheus import _api, _until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]


def test_a_real_prometheus_fires_on_the_estimated_drop(tmp_path: Path) -> None:
    import polars as pl

    from modelyard.ops.monitoring.monitor import MonitorReport, monitor
    from modelyard.ops.monitoring.prometheus import emit_config, serve_exporter
    from tests.unit.ops.monitoring._synthetic import CONTRACT
    from tests.unit.ops.monitoring.test_estimate import _shifted_log

    exe = shutil.which("prometheus")
    if exe is None:
        skip_or_fail("the prometheus binary is missing (apt-get install prometheus)")
    assert exe is not None
    ref, log, calibration = _shifted_log()
    settings = MonitoringSection.model_validate({"windows": {"size": "1d"}, "min_rows": 100})
    # no label at all: the drop can only come from the estimate
    log = log.with_columns(pl.lit(None, dtype=pl.String).alias("label"))
    day1 = log.filter(pl.col("event_time").dt.day() == 1)
    state: dict[str, pl.DataFrame] = {"log": day1}

    def refresh() -> MonitorReport:
        return monitor(
            state["log"], ref, CONTRACT, settings=settings, metric="accuracy",
            reference_metric=0.85, calibration=calibration,
        )  # fmt: skip

    assert not refresh().alerts
    emit_config(tmp_path / "rules", settings, for_="0s")
    exporter_port, prom_port = free_port(), free_port()
    stop_exporter = threading.Event()
    thread = threading.Thread(
        target=serve_exporter, args=(refresh,),
        kwargs={"host": "127.0.0.1", "port": exporter_port, "interval": 0.5, "stop": stop_exporter},
        daemon=True,
    )  # fmt: skip
    thread.start()
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        f"rule_files: [{tmp_path / 'rules' / 'modelyard-alerts.yml'}]\n"
        "scrape_configs:\n  - job_name: modelyard\n    static_configs:\n"
        f"      - targets: ['127.0.0.1:{exporter_port}']\n"
    )
    prom_log = tmp_path / "prometheus.log"
    proc = subprocess.Popen(
        [exe, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
         f"--web.listen-address=127.0.0.1:{prom_port}"],
        stdout=prom_log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        wait_http(f"http://127.0.0.1:{prom_port}/-/ready", timeout=60, proc=proc, log=prom_log)

        def estimated() -> list[Any]:
            q = 'modelyard_estimated_performance{metric="accuracy"}'
            return list(_api(prom_port, "/api/v1/query", query=q)["result"])

        calm = _until("the estimate is scraped", estimated, 30)
        assert float(calm[0]["value"][1]) == pytest.approx(0.85, abs=0.03)

        def firing() -> list[dict[str, Any]]:
            return [
                a for a in _api(prom_port, "/api/v1/alerts")["alerts"]
                if a["labels"]["alertname"] == "ModelyardEstimatedPerformanceDrop"
                and a["state"] == "firing"
            ]  # fmt: skip

        assert not firing()
        state["log"] = log  # day 2 arrives, still without labels
        fired = _until("the estimated-drop alert fires", firing, 30)
        assert fired[0]["labels"]["metric"] == "accuracy"
        assert float(fired[0]["value"]) > 0.1
        realised = _api(prom_port, "/api/v1/query", query="modelyard_window_performance")
        assert realised["result"] == []  # no label: only the estimate saw it
    finally:
        stop_exporter.set()
        thread.join(10)
        stop(proc)
