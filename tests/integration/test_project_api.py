"""The Python API under the CLI: every command's method of ``Project``, called without click.

One tiny real project (penguins, dummy + linear, no tuning) is trained once; the prediction
server is started through ``Project.serve()`` in a process of its own, fed over HTTP, and its
prediction log is what ``Project.monitor()`` and ``Project.serve_metrics()`` read.
"""

from __future__ import annotations

import http.client
import json
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl
import pytest

from tests.integration.conftest import free_port, stop, wait_http
from tests.unit.ops.monitoring._projects import penguins_project

if TYPE_CHECKING:
    from modelyard.recipe import Project

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(300)]


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> Project:
    from modelyard import Project

    root = tmp_path_factory.mktemp("api")
    yaml = penguins_project(root, shared_data)
    # a budget that a busy machine cannot run out of before the two tiny models are fitted
    yaml.write_text(yaml.read_text().replace("cv_sample: 2000}", "cv_sample: 2000, budget: 10m}"))
    trained = Project.from_yaml(yaml)
    result = trained.run()
    assert result.registration is not None and result.registration.version == "1"
    return trained


def _features(shared_data: Path) -> pl.DataFrame:
    return pl.read_csv(shared_data / "penguins.csv", null_values="NA").drop_nulls()


@dataclass
class Served:
    statuses: list[int]
    rows: int
    log_dir: Path
    output: str
    port: int


@pytest.fixture(scope="module")
def served(project: Project, shared_data: Path) -> Iterator[Served]:
    """``Project.serve()`` in its own process, sent 300 rows in batches of 50, then stopped
    (SIGTERM drains the prediction log)."""
    port = free_port()
    assert project.config_path is not None
    code = (
        "from modelyard import Project\n"
        f"Project.from_yaml({str(project.config_path)!r}).serve(port={port})"
    )
    log = project.config.workdir.parent / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-c", code], stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    try:
        wait_http(f"http://127.0.0.1:{port}/ready", timeout=120, proc=proc, log=log)
        records = _features(shared_data).drop("species").head(300).to_dicts()
        statuses = []
        for i in range(0, len(records), 50):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            body = json.dumps(records[i : i + 50]).encode()
            conn.request("POST", "/predict", body, {"Content-Type": "application/json"})
            response = conn.getresponse()
            response.read()
            statuses.append(response.status)
            conn.close()
    finally:
        stop(proc)  # type: ignore[arg-type]
    yield Served(statuses, len(records), project.config.serving.prediction_log.path,
                 log.read_text(), port)  # fmt: skip


def test_serve_answers_predict_with_the_champion(served: Served) -> None:
    assert served.statuses == [200] * 6
    assert f"modelyard serve: penguins@champion on http://127.0.0.1:{served.port}" in served.output


def test_monitor_reads_the_prediction_log_and_writes_its_report(
    project: Project, served: Served
) -> None:
    result = project.monitor(log=served.log_dir)
    report = result.report
    assert sum(w.rows for w in report.windows) == served.rows
    assert len(report.windows) == 2  # windows of 200 rows (monitoring.windows in the project)
    assert result.html == project.config.output_dir / "monitoring.html"
    assert "<svg" in result.html.read_text()
    assert json.loads(result.json.read_text())["windows"][0]["rows"] == 200
    assert result.retrain is None and result.alerts == report.alerts


def test_serve_metrics_exports_the_monitor_to_prometheus(project: Project, served: Served) -> None:
    port = free_port()
    halt = threading.Event()
    lines: list[str] = []
    worker = threading.Thread(
        target=project.serve_metrics,
        kwargs={"log": served.log_dir, "port": port, "interval": 0.5, "stop": halt,
                "announce": lines.append},
    )  # fmt: skip
    worker.start()
    try:
        deadline, text = time.monotonic() + 60, ""
        while "modelyard_monitor" not in text and time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
                    text = r.read().decode()
            except OSError:
                time.sleep(0.2)
    finally:
        halt.set()
        worker.join(30)
    assert not worker.is_alive()
    assert lines == [f"serving monitoring metrics on http://127.0.0.1:{port}/metrics"]
    assert "modelyard_monitor" in text


def test_alert_config_writes_rules_dashboard_and_prometheus_yml(
    project: Project, tmp_path: Path
) -> None:
    written = project.alert_config(tmp_path / "prom", alert_for="10m")
    assert [p.name for p in written] == [
        "modelyard-alerts.yml",
        "modelyard-dashboard.json",
        "prometheus.yml",
    ]
    assert "10m" in written[0].read_text()


def test_package_writes_a_build_context_of_the_champion(project: Project, tmp_path: Path) -> None:
    result = project.package(tmp_path / "context", image="example/penguins:1")
    assert result.image == "example/penguins:1"
    assert (tmp_path / "context" / "Dockerfile").is_file()
    assert (tmp_path / "context" / "model" / "MLmodel").is_file()
    assert "k8s/deployment.yaml" in result.files


def test_drift_reads_as_the_project_does_and_reports_the_target_apart(
    project: Project, shared_data: Path, tmp_path: Path
) -> None:
    from modelyard.ops.monitoring.compare import drift_files

    penguins = _features(shared_data)
    penguins.filter(pl.col("species") != "Gentoo").write_csv(tmp_path / "a.csv")
    penguins.filter(pl.col("species") == "Gentoo").write_csv(tmp_path / "b.csv")
    html = tmp_path / "drift.html"
    report = project.drift(tmp_path / "a.csv", tmp_path / "b.csv", html=html)
    assert report.target is not None and report.target.column == "species"
    assert report.target.drifted
    assert "species" not in [f.column for f in report.features]
    assert {"island", "body_mass_g"} <= set(report.drifted_features)
    assert 'data-column="body_mass_g"' in html.read_text()
    # two plain files, no project: no target unless one is named
    plain = drift_files(tmp_path / "a.csv", tmp_path / "b.csv")
    assert plain.target is None and "species" in plain.drifted_features
    named = drift_files(tmp_path / "a.csv", tmp_path / "b.csv", target="species")
    assert named.target is not None and named.target.column == "species"


STREAM = """\
version: 1
name: penguins_stream
data:
  source: {path: reference.csv}
  target: species
ingest:
  from: incoming
  format: csv
  read: {null_values: ["NA"]}
  max_rows: 100
  max_seconds: 1
  poll_seconds: 0.2
  settle_seconds: 0
  dataset: data/ingested
"""


def test_ingest_follows_a_watched_folder_until_idle(tmp_path: Path, shared_data: Path) -> None:
    from modelyard import Project
    from modelyard.errors import ModelyardError

    penguins = pl.read_csv(shared_data / "penguins.csv", infer_schema=False)
    (tmp_path / "reference.csv").write_text(penguins.head(172).write_csv())
    (tmp_path / "modelyard.yaml").write_text(STREAM)
    stream = Project.from_yaml(tmp_path)
    with pytest.raises(ModelyardError, match="there is none yet"):
        stream.ingest(until_idle=0.5)
    stream.run(until="contract")  # the contract every batch is validated against
    (tmp_path / "incoming").mkdir()
    (tmp_path / "incoming" / "a.csv").write_text(penguins.slice(172, 150).write_csv())
    batches: list[int] = []
    stats = stream.ingest(until_idle=1.0, on_batch=lambda b: batches.append(b.records))
    assert stats.records == 150 and sum(batches) == 150 and stats.stopped_by == "idle"
    assert stats.valid + stats.quarantined == 150 and stats.valid > 0  # unseen species: quarantined
    assert list((tmp_path / "data" / "ingested").rglob("*.parquet"))
