"""The prediction app in-process (Starlette's TestClient): routes, hostile requests, the
prediction log, auth, lenient mode, reload, and the fast path against the registered pyfunc."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from modelyard.ops.registry import Registry, parse_model_ref
from modelyard.ops.serving.app import ServeSettings, create_app
from modelyard.ops.serving.model import load_served_model
from modelyard.ops.serving.predlog import read_log
from tests.unit.ops._penguins import FEATURES
from tests.unit.ops.serving._world import NAME, World


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    out = []
    for rec in frame[FEATURES].to_dict("records"):
        out.append(
            {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in rec.items()}
        )
    for rec in out:  # the contract says int: send JSON integers
        for k in ("flipper_length_mm", "body_mass_g"):
            if rec[k] is not None:
                rec[k] = int(rec[k])
    return out


def _client(world: World, tmp: Path, **kw: Any) -> TestClient:
    token = kw.pop("token", None)
    settings = ServeSettings(
        model=kw.pop("model", f"{NAME}@champion"),
        tracking_uri=world.tracking_uri,
        log_path=str(tmp / "log"),
        poll_seconds=0,
        **kw,
    )
    return TestClient(create_app(settings, token=token))


@pytest.fixture
def client(world: World, tmp_path: Path) -> Iterator[TestClient]:
    with _client(world, tmp_path) as c:
        yield c


def _pyfunc(world: World, version: str) -> Any:
    return Registry(world.tracking_uri, NAME, world.workdir / "audit.jsonl").load_version(version)


@pytest.mark.parametrize("version", ["1", "2"])
def test_fast_path_equals_the_registered_pyfunc(world: World, version: str) -> None:
    served = load_served_model(
        parse_model_ref(f"{NAME}/{version}"), tracking_uri=world.tracking_uri
    )
    assert served.compiled is not None, served.fast_reason
    test = world.data.test
    expected = _pyfunc(world, version).predict(test[FEATURES].reset_index(drop=True))
    checked = [served.checker.check(r) for r in _records(test)]
    assert not [c.violations for c in checked if c.violations]
    rows = [c.values for c in checked]
    one_by_one = [served.predict([r]) for r in rows]
    labels = [p.predictions[0] for p in one_by_one]
    assert labels == expected["prediction"].tolist()
    proba = np.array([[p.probabilities[0][c] for c in served.classes] for p in one_by_one])  # type: ignore[index]
    want = expected[[f"proba_{c}" for c in served.classes]].to_numpy()  # type: ignore[union-attr]
    if version == "1":  # trees: bit for bit
        assert np.array_equal(proba, want)
    else:
        np.testing.assert_allclose(proba, want, rtol=1e-12, atol=0)
    batch = served.predict(rows)
    assert batch.predictions == labels


def test_predict_one_and_many_and_metadata(client: TestClient, world: World) -> None:
    recs = _records(world.data.test)
    one = client.post("/predict", json=recs[0])
    assert one.status_code == 200, one.text
    body = one.json()
    assert body["model"] == {"name": NAME, "version": "1"}
    assert len(body["predictions"]) == 1 and body["request_id"]
    probs = body["predictions"][0]["probabilities"]
    assert set(probs) == {"Adelie", "Chinstrap", "Gentoo"}
    assert abs(sum(probs.values()) - 1) < 1e-9
    many = client.post("/predict", json=recs[:20], headers={"X-Request-ID": "abc"})
    assert many.status_code == 200 and many.json()["request_id"] == "abc"
    assert len(many.json()["predictions"]) == 20
    model = client.get("/model").json()
    assert model["version"] == "1" and model["fast_path"] is True
    assert model["contract"]["target"] == "species" and "accuracy" in model["metrics"]
    assert client.get("/health").status_code == 200
    assert client.get("/ready").json()["status"] == "ready"
    assert client.get("/ping").status_code == 200


HOSTILE: list[tuple[str, bytes, int, str]] = [
    ("malformed", b'{"island": ', 400, "malformed_json"),
    ("empty body", b"", 400, "empty_body"),
    ("nan literal", b'{"island": "Biscoe", "bill_length_mm": NaN}', 400, "malformed_json"),
    ("infinity", b'{"bill_length_mm": Infinity}', 400, "malformed_json"),
    ("overflow to inf", b'{"bill_length_mm": 1e999}', 422, "contract_violation"),
    ("empty batch", b"[]", 422, "empty_batch"),
    ("scalar", b"42", 422, "not_a_record"),
    ("null", b"null", 422, "not_a_record"),
    ("wrong type", b'{"island": 3}', 422, "contract_violation"),
    ("record not object", b"[1]", 422, "contract_violation"),
    ("unknown field", b'{"islnd": "Biscoe"}', 422, "contract_violation"),
    ("target sent", b'{"species": "Adelie"}', 422, "contract_violation"),
    ("bad utf8", b'{"island": "\xff"}', 400, "malformed_json"),
]


@pytest.mark.parametrize(("name", "body", "status", "reason"), HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_requests_are_4xx_with_reasons(
    client: TestClient, name: str, body: bytes, status: int, reason: str
) -> None:
    res = client.post("/predict", content=body, headers={"content-type": "application/json"})
    assert res.status_code == status, res.text
    assert res.json()["reason"] == reason
    if reason == "contract_violation":
        errors = res.json()["errors"]
        assert errors and all({"record", "column", "check", "message"} <= set(e) for e in errors)


def test_violations_are_per_field(client: TestClient) -> None:
    res = client.post("/predict", json=[{"island": "Atlantis", "body_mass_g": 3.5}, {}])
    assert res.status_code == 422
    got = {(e["record"], e["column"], e["check"]) for e in res.json()["errors"]}
    assert (0, "island", "type") not in got
    assert (0, "body_mass_g", "type") in got  # int column, 3.5


def test_limits(world: World, tmp_path: Path) -> None:
    with _client(world, tmp_path, max_body_bytes=2048, max_batch_rows=3) as c:
        big = c.post("/predict", content=b"[" + b"{}," * 2000 + b"{}]")
        assert big.status_code == 413
        many = c.post("/predict", json=[{}] * 4)
        assert many.status_code == 413 and many.json()["reason"] == "batch_too_large"


def test_bearer_token(world: World, tmp_path: Path) -> None:
    with _client(world, tmp_path, token="s3cret") as c:
        assert c.post("/predict", json={}).status_code == 401
        bad = c.post("/predict", json={}, headers={"Authorization": "Bearer nope"})
        assert bad.status_code == 401 and bad.headers["www-authenticate"] == "Bearer"
        ok = c.post(
            "/predict",
            json=_records(world.data.test)[0],
            headers={"Authorization": "Bearer s3cret"},
        )
        assert ok.status_code == 200
        assert c.get("/health").status_code == 200 and c.get("/metrics").status_code == 200


def test_lenient_predicts_and_flags(world: World, tmp_path: Path) -> None:
    with _client(world, tmp_path, lenient=True) as c:
        rec = {**_records(world.data.test)[0], "island": "Atlantis", "extra": 1}
        res = c.post("/predict", json=[rec, 7])
        assert res.status_code == 200, res.text
        first, second = res.json()["predictions"]
        assert first["prediction"] in {"Adelie", "Chinstrap", "Gentoo"}
        assert {v["check"] for v in first["violations"]} == {"category", "unknown_field"} or {
            v["column"] for v in first["violations"]
        } >= {"extra"}
        assert second["violations"][0]["check"] == "record"
    preds, _ = read_log(tmp_path / "log")
    assert {p["status"] for p in preds} == {"flagged"}


def test_prediction_log_has_served_and_rejected_and_feedback(world: World, tmp_path: Path) -> None:
    recs = _records(world.data.test)
    with _client(world, tmp_path) as c:
        ok = c.post("/predict", json=recs[:3]).json()
        c.post("/predict", json={"island": 3})
        c.post("/predict", content=b"{oops")
        fb = c.post("/feedback", json={"request_id": ok["request_id"], "labels": ["Adelie"] * 3})
        assert fb.status_code == 202
        assert c.post("/feedback", json={"request_id": "x", "labels": ["Dodo"]}).status_code == 422
    # leaving the client ran the shutdown: the log is drained and durable
    preds, feedback = read_log(tmp_path / "log")
    served = [p for p in preds if p["status"] == "served"]
    rejected = [p for p in preds if p["status"] == "rejected"]
    assert len(served) == 3 and len(rejected) == 2
    assert json.loads(served[0]["features"])["island"] == recs[0]["island"]
    assert json.loads(served[0]["prediction"]) in {"Adelie", "Chinstrap", "Gentoo"}
    assert served[0]["model_version"] == "1" and served[0]["arrival_time"]
    raw = {json.dumps(json.loads(p["features"]), sort_keys=True) for p in rejected}
    assert any('"island": 3' in r for r in raw) and any("{oops" in r for r in raw)
    assert all(json.loads(p["violations"]) for p in rejected)
    assert [f["row"] for f in feedback] == [0, 1, 2]


def test_metrics_count_requests_violations_and_model_info(client: TestClient, world: World) -> None:
    client.post("/predict", json=_records(world.data.test)[0])
    client.post("/predict", json={"island": 3})
    text = client.get("/metrics").text
    assert 'modelyard_http_requests_total{method="POST",route="/predict",status="200"} 1.0' in text
    assert 'modelyard_http_requests_total{method="POST",route="/predict",status="422"} 1.0' in text
    assert 'modelyard_contract_violations_total{check="type",column="island"} 1.0' in text
    assert 'modelyard_model_info{name="penguins",version="1"} 1.0' in text
    assert "modelyard_http_request_duration_seconds_bucket" in text
    assert 'modelyard_predictions_total{model_version="1"' in text


def test_sagemaker_invocations_json_and_csv(client: TestClient, world: World) -> None:
    recs = _records(world.data.test)[:2]
    res = client.post("/invocations", json={"instances": recs})
    assert res.status_code == 200 and len(res.json()["predictions"]) == 2
    line = ",".join("" if recs[0][f] is None else str(recs[0][f]) for f in FEATURES)
    csv_res = client.post(
        "/invocations", content=line.encode(), headers={"content-type": "text/csv"}
    )
    assert csv_res.status_code == 200, csv_res.text
    assert csv_res.json()["predictions"][0] == res.json()["predictions"][0]


def test_openapi_documents_the_record_schema(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    record = spec["components"]["schemas"]["Record"]
    assert "island" in record["properties"] and record["example"]
    body = spec["paths"]["/predict"]["post"]["requestBody"]["content"]["application/json"]
    assert body["schema"]["$ref"] == "#/components/schemas/PredictRequest"


def test_reload_follows_the_alias_without_dropping_requests(world: World, tmp_path: Path) -> None:
    registry = Registry(world.tracking_uri, NAME, world.workdir / "audit.jsonl")
    rec = _records(world.data.test)[0]
    try:
        with _client(world, tmp_path) as c:
            assert c.post("/predict", json=rec).json()["model"]["version"] == "1"
            assert c.post("/reload").json() == {"changed": False, "version": "1"}
            registry.promote("2", reason="test", command="test")
            assert c.post("/reload").json() == {"changed": True, "version": "2"}
            assert c.post("/predict", json=rec).json()["model"]["version"] == "2"
            text = c.get("/metrics").text
            assert 'modelyard_model_info{name="penguins",version="2"} 1.0' in text
            assert 'modelyard_model_info{name="penguins",version="1"} 0.0' in text
    finally:
        registry.promote("1", reason="test", command="test")
