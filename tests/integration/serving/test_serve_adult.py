"""``modelyard serve`` as a real uvicorn process on 127.0.0.1 with the adult champion.

adult.test rows one by one and in batches give exactly the registered pyfunc's predictions;
/metrics counters move; served and rejected requests land in the prediction log; a schemathesis
run finds no 5xx; overload returns only 2xx/503 and the server stays up; SIGTERM finishes the
requests in flight.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from modelyard.ops.serving.predlog import read_log
from tests.conftest import shared_data_dir, skip_or_fail
from tests.integration.conftest import free_port, wait_http
from tests.integration.serving._adult import Adult, build_adult

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

SERVE = "from modelyard.ops.serving.commands import serve; serve()"


@dataclass
class Running:
    adult: Adult
    port: int
    proc: subprocess.Popen[bytes]
    log_dir: Path
    root: Path


def start(adult: Adult, root: Path, *, config: str = "", workers: int = 1) -> Running:
    port = free_port()
    log_dir = root / "predlog"
    (root / "modelyard.yaml").write_text(
        "version: 1\nname: adult\ndata: {source: {builtin: iris}}\n"
        f"serving:\n  prediction_log: {{path: {log_dir}}}\n  reload: {{poll_seconds: 0}}\n{config}"
    )
    out = (root / f"server-{port}.log").open("wb")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-c", SERVE, "-c", str(root / "modelyard.yaml"), "--model",
         "adult@champion", "--tracking-uri", adult.tracking_uri, "--port", str(port),
         "--workers", str(workers)],
        cwd=root, stdout=out, stderr=subprocess.STDOUT, env=env,
    )  # fmt: skip
    wait_http(
        f"http://127.0.0.1:{port}/ready", timeout=90, proc=proc, log=root / f"server-{port}.log"
    )
    return Running(adult, port, proc, log_dir, root)


def stop(run: Running) -> int:
    if run.proc.poll() is None:
        run.proc.send_signal(signal.SIGTERM)
    try:
        return run.proc.wait(40)
    except subprocess.TimeoutExpired:
        run.proc.kill()
        return -9


@pytest.fixture(scope="module")
def adult(tmp_path_factory: pytest.TempPathFactory) -> Adult:
    data = shared_data_dir()
    if not (data / "adult" / "adult.test").is_file():
        skip_or_fail(f"adult data not found under {data}")
    return build_adult(tmp_path_factory.mktemp("adult"), data)


@pytest.fixture(scope="module")
def server(adult: Adult, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    run = start(adult, tmp_path_factory.mktemp("serve"))
    yield run
    stop(run)


def post(
    port: int, path: str, body: Any, conn: http.client.HTTPConnection | None = None
) -> tuple[int, Any]:
    own = conn is None
    conn = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    conn.request("POST", path, data, {"Content-Type": "application/json"})
    res = conn.getresponse()
    payload = res.read()
    if own:
        conn.close()
    try:
        return res.status, json.loads(payload)
    except ValueError:
        return res.status, payload


def get(port: int, path: str) -> tuple[int, str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", path)
    res = conn.getresponse()
    text = res.read().decode()
    conn.close()
    return res.status, text


def _proba(preds: list[dict[str, Any]], classes: list[str]) -> np.ndarray:
    return np.array([[p["probabilities"][c] for c in classes] for p in preds])


def test_predictions_equal_the_registered_pyfunc(server: Running) -> None:
    adult = server.adult
    expected = adult.expected
    classes = [c.removeprefix("proba_") for c in expected.columns if c.startswith("proba_")]
    want = expected[[f"proba_{c}" for c in classes]].to_numpy()
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    single = []
    n_single = 1500
    for rec in adult.records[:n_single]:
        status, body = post(server.port, "/predict", rec, conn)
        assert status == 200, body
        single.extend(body["predictions"])
    conn.close()
    assert [p["prediction"] for p in single] == expected["prediction"][:n_single].tolist()
    assert np.array_equal(_proba(single, classes), want[:n_single])  # trees: bit for bit
    batched: list[dict[str, Any]] = []
    for i in range(0, len(adult.records), 1000):
        status, body = post(server.port, "/predict", adult.records[i : i + 1000])
        assert status == 200, body
        batched.extend(body["predictions"])
    assert [p["prediction"] for p in batched] == expected["prediction"].tolist()
    assert np.array_equal(_proba(batched, classes), want)


def test_rejected_requests_metrics_and_prediction_log(server: Running) -> None:
    bad = {**server.adult.records[0], "workclass": "Astronaut"}
    status, body = post(server.port, "/predict", bad)
    assert status == 422 and body["errors"][0]["column"] == "workclass"
    assert post(server.port, "/predict", b"{not json")[0] == 400
    status, body = post(server.port, "/predict", server.adult.records[1])
    assert status == 200
    request_id = body["request_id"]
    assert post(server.port, "/feedback", {"request_id": request_id, "labels": [">50K"]})[0] == 202
    _, text = get(server.port, "/metrics")
    lines = {line for line in text.splitlines() if not line.startswith("#")}
    assert any(
        line.startswith(
            'modelyard_http_requests_total{method="POST",route="/predict",status="422"}'
        )
        for line in lines
    )
    assert any(
        line.startswith('modelyard_contract_violations_total{check="category",column="workclass"}')
        for line in lines
    )
    assert 'modelyard_model_info{name="adult",version="1"} 1.0' in lines
    served = [
        line
        for line in lines
        if line.startswith(
            'modelyard_http_requests_total{method="POST",route="/predict",status="200"}'
        )
    ]
    assert served and float(served[0].split()[-1]) > 1000
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        preds, feedback = read_log(server.log_dir)
        if any(p["request_id"] == request_id for p in preds) and feedback:
            break
        time.sleep(0.2)
    statuses = Counter(p["status"] for p in preds)
    assert statuses["served"] > 1000 and statuses["rejected"] >= 2
    rejected = [p for p in preds if p["status"] == "rejected"]
    assert any("Astronaut" in p["features"] and "workclass" in p["violations"] for p in rejected)
    assert any(f["request_id"] == request_id for f in feedback)


def test_schemathesis_finds_no_server_error(server: Running) -> None:
    st = shutil.which("schemathesis") or str(Path(sys.executable).with_name("schemathesis"))
    if not Path(st).exists():
        skip_or_fail("schemathesis is not installed")
    url = f"http://127.0.0.1:{server.port}"
    done = subprocess.run(
        [st, "run", f"{url}/openapi.json", "--url", url, "--checks", "not_a_server_error",
         "--max-examples", "40", "--generation-deterministic", "--phases", "examples,coverage,fuzzing",
         "--workers", "2"],
        capture_output=True, text=True, timeout=90, cwd=server.root,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert get(server.port, "/health")[0] == 200


def _hammer(port: int, body: bytes, seconds: float, out: Counter[int]) -> None:
    end = time.monotonic() + seconds
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    while time.monotonic() < end:
        try:
            conn.request("POST", "/predict", body, {"Content-Type": "application/json"})
            res = conn.getresponse()
            res.read()
            out[res.status] += 1
            if res.getheader("connection") == "close":
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        except (OSError, http.client.HTTPException):
            out[0] += 1
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.close()


def test_overload_is_shed_and_shutdown_is_graceful(adult: Adult, tmp_path: Path) -> None:
    run = start(adult, tmp_path, config="  max_concurrency: 2\n  max_body_bytes: 20000000\n")
    body = json.dumps(adult.records[:50]).encode()
    try:
        # capacity with as many clients as the server admits, then twice that
        base: Counter[int] = Counter()
        threads = [
            threading.Thread(target=_hammer, args=(run.port, body, 2.0, base)) for _ in range(2)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        over: Counter[int] = Counter()
        threads = [
            threading.Thread(target=_hammer, args=(run.port, body, 3.0, over)) for _ in range(4)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert base[200] > 0 and set(base) <= {200, 503}
        assert set(over) <= {200, 429, 503}, over
        assert over[200] > 0
        assert get(run.port, "/health")[0] == 200 and run.proc.poll() is None
        # graceful shutdown: big requests in flight when SIGTERM arrives all complete
        big = json.dumps(adult.records[:9500]).encode()
        results: list[int] = []

        def one() -> None:
            try:
                results.append(post(run.port, "/predict", big)[0])
            except (OSError, http.client.HTTPException) as exc:
                results.append(-1)
                raise AssertionError(f"in-flight request lost: {exc}") from exc

        inflight = [threading.Thread(target=one) for _ in range(2)]
        for t in inflight:
            t.start()
        time.sleep(0.4)
        run.proc.send_signal(signal.SIGTERM)
        for t in inflight:
            t.join(60)
        assert results == [200, 200], results
        # uvicorn re-raises the signal once the shutdown is complete
        assert run.proc.wait(40) in (0, -signal.SIGTERM)
        assert "Application shutdown complete" in (run.root / f"server-{run.port}.log").read_text()
    finally:
        stop(run)
