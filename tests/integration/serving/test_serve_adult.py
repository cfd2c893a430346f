"""``modelyard serve`` as a real uvicorn process on 127.0.0.1 with the adult champion.

adult.test rows one by one and in batches give exactly the registered pyfunc's predictions;
/metrics counters move; served and rejected requests land in the prediction log; values outside
the training data are predicted and flagged while the declared checks of modelyard.yaml reject;
hostile bodies get a 4xx and leave the keep-alive connection usable; a schemathesis run (with
hostile and arbitrary strings) finds no 5xx; overload sheds with 503 and keeps the accepted
requests fast; SIGTERM answers every request in flight.
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
from tests.integration.serving._load import hammer, p99

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

SERVE = "from modelyard.cli.serve import serve; serve()"


@dataclass
class Running:
    adult: Adult
    port: int
    proc: subprocess.Popen[bytes]
    log_dir: Path
    root: Path


CHECKS = """validation:
  checks:
    - {column: age, min: 17, max: 90}
    - {expression: '"capital-gain" >= 0 AND "capital-loss" >= 0', name: non_negative_capital}
    - {column: income, not_null: true}
"""
"""Declared checks as in examples/adult (the last reads the target: not applied online)."""


def start(adult: Adult, root: Path, *, config: str = "", workers: int = 1) -> Running:
    port = free_port()
    log_dir = root / "predlog"
    (root / "modelyard.yaml").write_text(
        f"version: 1\nname: adult\ndata: {{source: {{builtin: iris}}}}\n{CHECKS}"
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
    bad = {**server.adult.records[0], "workclass": 7}
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
        line.startswith('modelyard_contract_violations_total{check="type",column="workclass"}')
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
    assert any(
        '"workclass": 7' in p["features"] and "workclass" in p["violations"] for p in rejected
    )
    assert any(f["request_id"] == request_id for f in feedback)


def test_values_outside_the_training_data_are_predicted_and_declared_checks_apply(
    server: Running,
) -> None:
    # issue 11 item 7: out-of-range values got a 422; the declared checks were not applied
    contract = server.adult.contract
    top = float(contract.column("fnlwgt").max)
    rec = server.adult.records[2]
    far = {**rec, "fnlwgt": int(top * 1.18), "native-country": "Atlantis"}
    status, body = post(server.port, "/predict", [rec, far])
    assert status == 200, body
    plain, flagged = body["predictions"]
    assert "drift" not in plain
    assert {(d["column"], d["check"]) for d in flagged["drift"]} == {
        ("fnlwgt", "range"),
        ("native-country", "category"),
    }
    status, body = post(server.port, "/predict", [{**rec, "age": 95}, {**rec, "capital-gain": -5}])
    assert status == 422
    assert {(e["record"], e["check"]) for e in body["errors"]} == {
        (0, "age.min+max"),
        (1, "non_negative_capital"),
    }
    _, text = get(server.port, "/metrics")
    assert 'modelyard_drifted_values_total{check="range",column="fnlwgt"} 1.0' in text
    assert (
        'modelyard_contract_violations_total{check="non_negative_capital",column="_record"}' in text
    )


def _local_port(response: Any) -> int:
    return int(response.extensions["network_stream"].get_extra_info("client_addr")[1])


def test_hostile_bodies_get_a_4xx_and_the_connection_stays_usable(server: Running) -> None:
    # issue 11 item 13: these were 500s, and the keep-alive connection was closed under the client
    import httpx2 as httpx

    good = server.adult.records[0]
    hostile = [
        ("deep nesting", b"[" * 5000 + b"]" * 5000, "application/json", 400),
        ("deep objects", b'{"a":' * 3000 + b"1" + b"}" * 3000, "application/json", 400),
        ("int beyond float", b'{"age": 1' + b"0" * 400 + b"}", "application/json", 422),
        ("lone surrogate", b'{"workclass": "\\ud800"}', "application/json", 400),
        ("text/plain", json.dumps(good).encode(), "text/plain", 415),
        ("malformed", b'{"age": ', "application/json", 400),
        ("too large", b"[" + b"{}," * 400_000 + b"{}]", "application/json", 413),
        ("unknown field", b'{"agee": 3}', "application/json", 422),
    ]
    with httpx.Client(base_url=f"http://127.0.0.1:{server.port}", timeout=30) as client:
        first = client.post("/predict", json=good)
        assert first.status_code == 200
        port = _local_port(first)
        for name, body, content_type, status in hostile:
            res = client.post("/predict", content=body, headers={"content-type": content_type})
            assert res.status_code == status, (name, res.text[:300])
            assert res.headers["content-type"] == "application/json" and res.json()["reason"]
            assert "connection" not in res.headers, name
            ok = client.post("/predict", json=good)
            assert ok.status_code == 200, name
            assert _local_port(res) == _local_port(ok) == port, name  # one connection


def test_an_oversized_chunked_body_is_413(server: Running) -> None:
    # issue 11 item 19: it was a 400 (the truncated body read as malformed JSON)
    record = json.dumps(server.adult.records[0]).encode()
    chunks = [b"["] + [record + b","] * 6000 + [record + b"]"]
    assert sum(map(len, chunks)) > 1_048_576
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    conn.request(
        "POST", "/predict", body=iter(chunks), headers={"Content-Type": "application/json"},
        encode_chunked=True,
    )  # fmt: skip
    res = conn.getresponse()
    payload = json.loads(res.read())
    assert res.status == 413 and payload["reason"] == "body_too_large"
    status, _ = post(server.port, "/predict", server.adult.records[0], conn)  # still usable
    assert status == 200
    conn.close()


def test_schemathesis_finds_no_server_error(server: Running) -> None:
    st = shutil.which("schemathesis") or str(Path(sys.executable).with_name("schemathesis"))
    if not Path(st).exists():
        skip_or_fail("schemathesis is not installed")
    url = f"http://127.0.0.1:{server.port}"
    hooks = Path(__file__).with_name("schemathesis_hooks.py")  # hostile and arbitrary bodies
    done = subprocess.run(
        [st, "run", f"{url}/openapi.json", "--url", url, "--checks", "not_a_server_error",
         "--max-examples", "60", "--generation-deterministic", "--phases", "examples,coverage,fuzzing",
         "--workers", "2"],
        capture_output=True, text=True, timeout=240, cwd=server.root,
        env={**os.environ, "SCHEMATHESIS_HOOKS": str(hooks)},
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert get(server.port, "/health")[0] == 200
    # issue 11 item 12: the prediction log still writes and lost nothing
    status, text = get(server.port, "/ready")
    assert status == 200, text
    log = json.loads(text)["prediction_log"]
    assert log["status"] == "ok" and log["dropped"] == 0, log
    _, metrics = get(server.port, "/metrics")
    assert "modelyard_prediction_log_dropped_total 0.0" in metrics
    assert 'status="500"' not in metrics


def test_overload_is_shed_and_accepted_requests_stay_fast(adult: Adult, tmp_path: Path) -> None:
    # issue 11 item 14: single records predicted on the event loop were never counted, so
    # max_concurrency never shed: 64 connections against max_concurrency 16 gave 0 x 503 and
    # a p99 of 7.6 s. Capacity here: 2 requests in flight; the load: 4x that, closed-loop
    # clients that retry at once. One worker predicts one request at a time, so the accepted
    # p99 grows with max_concurrency x the service time: the bound holds for a small limit.
    # Latencies on a shared 2-core machine are noisy: the best of 3 measurements counts.
    run = start(adult, tmp_path, config="  max_concurrency: 2\n")
    body = json.dumps(adult.records[0]).encode()
    try:
        hammer(run.port, body, clients=1, seconds=1)  # warm up
        at_capacity = hammer(run.port, body, clients=2, seconds=2)
        assert set(at_capacity.statuses) == {200}, Counter(at_capacity.statuses)
        ratios = []
        for _ in range(3):
            unloaded = hammer(run.port, body, clients=1, seconds=2)
            assert set(unloaded.statuses) == {200} and unloaded.errors == 0
            over = hammer(run.port, body, clients=8, seconds=3)
            seen = Counter(over.statuses)
            assert set(seen) == {200, 503} and over.errors == 0, (seen, over.errors)
            assert seen[503] > seen[200] / 2, seen  # the excess is shed
            assert all(r for s, r in zip(over.statuses, over.retry_after, strict=True) if s == 503)
            ratios.append(p99(over.accepted()) / p99(unloaded.latencies))
            if ratios[-1] < 10:
                break
        assert min(ratios) < 10, f"accepted p99 / unloaded p99: {ratios}"
        assert get(run.port, "/health")[0] == 200 and run.proc.poll() is None
    finally:
        stop(run)


def test_sigterm_answers_every_request_in_flight(adult: Adult, tmp_path: Path) -> None:
    # issue 11 item 14: SIGTERM under load reset 3 of 32 requests in flight (uvicorn closed
    # keep-alive connections whose request was still unread in the socket)
    run = start(adult, tmp_path)
    body = json.dumps(adult.records[0]).encode()
    headers = {"Content-Type": "application/json"}
    conns = [http.client.HTTPConnection("127.0.0.1", run.port, timeout=60) for _ in range(33)]
    try:
        for conn in conns:  # keep-alive connections, as clients hold them
            assert post(run.port, "/predict", adult.records[0], conn)[0] == 200
        late = conns.pop()
        for conn in conns:
            conn.request("POST", "/predict", body, headers)
        run.proc.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        answers: list[int | str] = []
        for conn in conns:
            try:
                res = conn.getresponse()
                res.read()
                answers.append(res.status)
            except (OSError, http.client.HTTPException) as exc:
                answers.append(type(exc).__name__)
        assert answers == [200] * 32, Counter(answers)
        # The mechanism, deterministically: uvicorn used to close idle keep-alive connections
        # at its next tick (0.1 s) after the signal, whatever a client had just sent on them;
        # the server now keeps reading for drain_seconds (0.5 s) first.
        time.sleep(max(0.0, signalled + 0.25 - time.monotonic()))
        late.request("POST", "/predict", body, headers)
        res = late.getresponse()
        res.read()
        assert res.status == 200
        assert run.proc.wait(40) in (0, -signal.SIGTERM)
    finally:
        for conn in [*conns, late]:
            conn.close()
        stop(run)


def test_sigterm_finishes_big_batches_in_flight(adult: Adult, tmp_path: Path) -> None:
    run = start(adult, tmp_path, config="  max_body_bytes: 20000000\n")
    try:
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
