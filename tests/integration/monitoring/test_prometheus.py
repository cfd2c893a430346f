"""A real Prometheus (Debian's package) scraping a real ``modelyard serve`` and the
``modelyard monitor --serve`` exporter, with the rules of ``monitor --emit-config``.

Every dashboard panel's PromQL returns series; after drifted traffic is sent to the server the
dataset-drift alert fires, as Prometheus' HTTP API (/api/v1/alerts) shows.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.conftest import shared_data_dir, skip_or_fail
from tests.integration.conftest import free_port, stop, wait_http
from tests.integration.serving._adult import EXAMPLE, Adult, build_adult

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

SERVE = "from modelyard.cli.serve import serve; serve()"
MONITOR = "from modelyard.cli.monitor import monitor; monitor()"


def _prometheus() -> str:
    exe = shutil.which("prometheus")
    if exe is None:
        skip_or_fail("the prometheus binary is missing (apt-get install prometheus)")
    assert exe is not None
    return exe


def _api(port: int, path: str, **params: str) -> Any:
    url = f"http://127.0.0.1:{port}{path}"
    if params:
        url += "?" + urllib.parse.urlencode(params)
    with urllib.request.urlopen(url, timeout=10) as resp:
        body = json.loads(resp.read())
    assert body["status"] == "success", body
    return body["data"]


def _post(port: int, path: str, body: Any) -> tuple[int, Any]:
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}", json.dumps(body).encode(),
        {"Content-Type": "application/json"}, method="POST",
    )  # fmt: skip
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def _until(what: str, check: Callable[[], Any], timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.5)
    pytest.fail(f"{what} within {timeout:.0f} s; last: {last}")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    exe = _prometheus()
    data = shared_data_dir()
    if not (data / "adult" / "adult.test").is_file():
        skip_or_fail(f"adult data not found under {data}")
    root = tmp_path_factory.mktemp("monitoring")
    adult: Adult = build_adult(root, data)
    from modelyard.data.contract import contract_to_yaml

    (root / "contract.yaml").write_text(contract_to_yaml(adult.contract))
    yaml = root / "modelyard.yaml"
    yaml.write_text(
        EXAMPLE.read_text()
        + f"\nworkdir: {adult.workdir}\ncontract: {{path: {root / 'contract.yaml'}}}\n"
        "models: {metric: accuracy}\n"
        f"serving:\n  prediction_log: {{path: {root / 'predlog'}}}\n  reload: {{poll_seconds: 0}}\n"
        "monitoring:\n  windows: {by: rows, size: '300'}\n  min_rows: 100\n  interval_seconds: 1\n"
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MODELYARD_DATA": str(data)}
    procs: list[subprocess.Popen[bytes]] = []

    def launch(name: str, args: list[str], url: str) -> None:
        log = root / f"{name}.log"
        proc = subprocess.Popen(
            args, cwd=root, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        procs.append(proc)
        wait_http(url, timeout=90, proc=proc, log=log)

    app_port, exporter_port, prom_port = free_port(), free_port(), free_port()
    try:
        launch(
            "serve",
            [sys.executable, "-c", SERVE, "-c", str(yaml), "--model", "adult@champion",
             "--tracking-uri", adult.tracking_uri, "--port", str(app_port)],
            f"http://127.0.0.1:{app_port}/ready",
        )  # fmt: skip
        rules_dir = root / "prometheus"
        emitted = subprocess.run(
            [sys.executable, "-c", MONITOR, "-c", str(yaml), "--emit-config", str(rules_dir),
             "--alert-for", "0s", "--json"],
            env=env, capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert emitted.returncode == 0, emitted.stderr
        # normal traffic first (adult.test rows, the reference's population), with labels
        _send(app_port, adult.records[:300], labels=True)
        launch(
            "exporter",
            [sys.executable, "-c", MONITOR, "-c", str(yaml), "--serve", "--port",
             str(exporter_port), "--interval", "1"],
            f"http://127.0.0.1:{exporter_port}/metrics",
        )  # fmt: skip
        config = root / "prometheus.yml"
        config.write_text(
            "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
            f"rule_files: [{rules_dir / 'modelyard-alerts.yml'}]\n"
            "scrape_configs:\n  - job_name: modelyard\n    static_configs:\n"
            f"      - targets: ['127.0.0.1:{app_port}', '127.0.0.1:{exporter_port}']\n"
        )
        launch(
            "prometheus",
            [exe, f"--config.file={config}", f"--storage.tsdb.path={root / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{prom_port}"],
            f"http://127.0.0.1:{prom_port}/-/ready",
        )  # fmt: skip
        from modelyard.config.loader import load_config

        yield {
            "adult": adult, "app": app_port, "prom": prom_port, "root": root,
            "dashboard": rules_dir / "modelyard-dashboard.json",
            "checks": list(load_config(yaml).validation.checks),
        }  # fmt: skip
    finally:
        for proc in reversed(procs):
            stop(proc)


def _send(port: int, records: list[dict[str, Any]], *, labels: bool, label: str = "<=50K") -> None:
    for i in range(0, len(records), 50):
        status, body = _post(port, "/predict", records[i : i + 50])
        assert status == 200, body
        if labels:
            fb = [label] * len(body["predictions"])
            status, answer = _post(
                port, "/feedback", {"request_id": body["request_id"], "labels": fb}
            )
            assert status in (200, 202), answer


def _drifted(adult: Adult, n: int, checks: list[Any]) -> list[dict[str, Any]]:
    """In-contract records unlike the reference: every number at its contract maximum (within
    the declared checks of modelyard.yaml, which the server enforces), every category at its
    rarest allowed value."""
    caps = {c.column: c.max for c in checks if c.column is not None and c.max is not None}
    out = []
    for original in adult.records[:n]:
        rec = dict(original)
        for col in adult.contract.features:
            if col.type in ("int", "float") and col.max is not None:
                top = min(float(col.max), caps.get(col.name, float("inf")))
                rec[col.name] = int(top) if col.type == "int" else top
            elif col.categories:
                rec[col.name] = col.categories[-1]
        out.append(rec)
    return out


def test_dashboard_panels_return_series_then_the_drift_alert_fires(stack: dict[str, Any]) -> None:
    prom = stack["prom"]
    _until(
        "both targets up",
        lambda: (
            [t["health"] for t in _api(prom, "/api/v1/targets")["activeTargets"]] == ["up", "up"]
        ),
        30,
    )
    board = json.loads(stack["dashboard"].read_text())
    exprs = [p["targets"][0]["expr"] for p in board["panels"]]
    assert len(exprs) >= 10

    def empty_panels() -> list[str]:
        return [e for e in exprs if not _api(prom, "/api/v1/query", query=e)["result"]]

    _until("every panel's PromQL returns series", lambda: not empty_panels() or None, 60)
    drift_now = _api(prom, "/api/v1/query", query="modelyard_dataset_drift")["result"]
    assert drift_now and drift_now[0]["value"][1] == "0"
    alerts = _api(prom, "/api/v1/alerts")["alerts"]
    assert not [a for a in alerts if a["labels"]["alertname"] == "ModelyardDatasetDrift"]
    rules = _api(prom, "/api/v1/rules")["groups"][0]["rules"]
    assert {r["name"] for r in rules} >= {
        "ModelyardDatasetDrift", "ModelyardPerformanceDrop", "ModelyardHighErrorRate",
        "ModelyardHighLatency",
    }  # fmt: skip

    _send(stack["app"], _drifted(stack["adult"], 300, stack["checks"]), labels=True, label=">50K")

    def firing() -> list[dict[str, Any]]:
        return [
            a for a in _api(prom, "/api/v1/alerts")["alerts"]
            if a["labels"]["alertname"] == "ModelyardDatasetDrift" and a["state"] == "firing"
        ]  # fmt: skip

    fired = _until("the drift alert fires", firing, 60)
    assert fired[0]["annotations"]["summary"] == "Input data drifted"
    share = _api(prom, "/api/v1/query", query="modelyard_drift_share")["result"][0]["value"][1]
    assert float(share) >= 0.5
    # the labels of the drifted traffic all say >50K: the performance gauge moved too
    perf = _api(prom, "/api/v1/query", query='modelyard_window_performance{metric="accuracy"}')
    assert perf["result"]
