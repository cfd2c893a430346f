"""The Label Studio ML backend routes of the prediction app (in-process), against the
protocol Label Studio 1.23 speaks: /health, /setup, /predict, /webhook (+ /predict/progress)."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelyard.labels.formats import labelstudio as fmt
from modelyard.labels.records import LabelSpec, QueueItem
from modelyard.labels.store import LabelSet
from modelyard.ops.serving.app import ServeSettings, create_app
from tests.unit.ops.serving._world import NAME, World
from tests.unit.ops.serving.test_app import _records

P = "/label-studio"
NOW = "2026-12-05T10:00:00.000000Z"


def _client(world: World, tmp: Path, *, labels: bool = True, token: str | None = None, **kw: Any) -> TestClient:  # fmt: skip
    extra = {"label_studio": {"labels": str(tmp / "labels")}} if labels else {}
    extra["label_studio"] = {**extra.get("label_studio", {}), **kw.pop("ls", {})}
    s = ServeSettings(model=f"{NAME}@champion", tracking_uri=world.tracking_uri, poll_seconds=0,
                      extra=extra, **kw)  # fmt: skip
    return TestClient(create_app(s, token=token))


@pytest.fixture
def client(world: World, tmp_path: Path) -> Iterator[TestClient]:
    with _client(world, tmp_path) as c:
        yield c


@pytest.fixture(scope="module")
def classes(world: World) -> list[str]:
    return sorted(world.data.train["species"].unique().tolist())


def spec_of(classes: list[str]) -> LabelSpec:
    return LabelSpec(target="species", task="multiclass", classes=tuple(classes))


def tasks_of(world: World, classes: list[str], n: int, tmp: Path) -> list[dict[str, Any]]:
    rows = _records(world.data.test)[:n]
    items = [QueueItem(key=f"row-{i}", row=r, score=0.5, reason="", model_version="m")
             for i, r in enumerate(rows)]  # fmt: skip
    fmt.export(items, spec_of(classes), tmp / "export")
    tasks = json.loads((tmp / "export" / "tasks.json").read_text())
    return [{"id": i + 1, "data": t["data"], "meta": {}, "project": 3} for i, t in enumerate(tasks)]


def config_of(classes: list[str]) -> str:
    return fmt.label_config(spec_of(classes))


def annotation_event(action: str, key: Any, label: Any, *, task_id: int = 1, **ann: Any) -> dict[str, Any]:  # fmt: skip
    result = [{"value": {"choices": [label]}, "from_name": "label", "to_name": "row", "type": "choices"}]  # fmt: skip
    annotation = {"id": 10 + task_id, "completed_by": 4, "result": result, "was_cancelled": False,
                  "created_at": NOW, "updated_at": NOW, "task": task_id, "project": 3, **ann}  # fmt: skip
    data = {"row": {}} if key is None else {"key": key, "row": {}}
    return {"action": action, "annotation": annotation, "task": {"id": task_id, "data": data},
            "project": {"id": 3, "label_config": "<View/>"}}  # fmt: skip


def test_health_and_setup(client: TestClient, classes: list[str]) -> None:
    for path in (P, P + "/", P + "/health"):
        got = client.get(path)
        assert got.status_code == 200 and got.json()["status"] == "UP"
    body = {"project": "3.1733390000", "schema": config_of(classes), "hostname": "http://x",
            "access_token": "secret", "extra_params": None}  # fmt: skip
    got = client.post(P + "/setup", json=body)
    assert got.status_code == 200, got.text
    assert got.json() == {"model_version": client.get(P).json()["model_version"]}


@pytest.mark.parametrize(
    ("schema", "message"),
    [
        (
            "<View><Choices name='label' toName='row'><Choice value='Adelie'/></Choices></View>",
            "do not offer the classes",
        ),
        ("<View><Number name='label' toName='row'/></View>", "needs <Choices>"),
        ("<View><Table name='row' value='$row'/></View>", "no <Choices> or <Number>"),
        ("<View><Choices", "not XML"),
        ('<!DOCTYPE x [<!ENTITY a "aaaa">]><View/>', "DOCTYPE"),
        (42, "XML text"),
    ],
)
def test_setup_refuses_a_config_the_model_cannot_fill(client: TestClient, schema: Any, message: str) -> None:  # fmt: skip
    got = client.post(P + "/setup", json={"project": "1.1", "schema": schema})
    assert got.status_code == 422
    assert message in got.json()["detail"]


def test_predict_answers_one_prediction_per_task_in_order(
    client: TestClient, world: World, classes: list[str], tmp_path: Path
) -> None:
    tasks = tasks_of(world, classes, 40, tmp_path)
    flat = {
        "id": 99,
        "data": {"key": "flat", **tasks[0]["data"]["row"], "comment": "not a feature"},
    }
    broken = {"id": 100, "data": {"key": "bad", "row": {**tasks[0]["data"]["row"], "bill_length_mm": "long"}}}  # fmt: skip
    no_data = {"id": 101}
    sent = [*tasks, flat, broken, no_data]
    got = client.post(P + "/predict", json={"tasks": sent, "project": "3.1", "label_config": config_of(classes),
                                            "params": {"login": None, "password": None, "context": None}})  # fmt: skip
    assert got.status_code == 200, got.text
    results = got.json()["results"]
    assert len(results) == len(sent)
    direct = client.post("/predict", json=[t["data"]["row"] for t in tasks]).json()["predictions"]
    for res, want in zip(results, direct, strict=False):
        assert res["result"] == [{"from_name": "label", "to_name": "row", "type": "choices",
                                  "value": {"choices": [want["prediction"]]}}]  # fmt: skip
        assert res["score"] == want["probabilities"][want["prediction"]]
        assert res["model_version"] == f"{NAME} v1"
    assert results[40]["result"] == results[0]["result"]  # flat data, extra fields left out
    assert "result" not in results[41] and "data contract" in results[41]["error"]
    assert "result" not in results[42] and "no 'data'" in results[42]["error"]
    progress = client.get(P + "/predict/progress").json()
    assert progress["running"] == []
    assert progress["finished"][-1]["tasks"] == progress["finished"][-1]["done"] == len(sent)


def test_predict_without_a_config_uses_the_exported_names(client: TestClient, world: World, classes: list[str], tmp_path: Path) -> None:  # fmt: skip
    got = client.post(P + "/predict", json={"tasks": tasks_of(world, classes, 3, tmp_path)})
    assert [r["result"][0]["from_name"] for r in got.json()["results"]] == ["label"] * 3


def test_predict_takes_bodies_larger_than_the_servers_own_limit(world: World, classes: list[str], tmp_path: Path) -> None:  # fmt: skip
    tasks = tasks_of(world, classes, 60, tmp_path)
    with _client(world, tmp_path, max_body_bytes=2_000, ls={"chunk_tasks": 7}) as c:
        assert c.post("/predict", json=[t["data"]["row"] for t in tasks]).status_code == 413
        got = c.post(P + "/predict", json={"tasks": tasks})
        assert got.status_code == 200 and len(got.json()["results"]) == 60
    with _client(world, tmp_path, ls={"max_body_bytes": 1_000}) as c:
        assert c.post(P + "/predict", json={"tasks": tasks}).json()["reason"] == "body_too_large"
    with _client(world, tmp_path, ls={"max_tasks": 5}) as c:
        assert (
            c.post(P + "/predict", json={"tasks": tasks[:6]}).json()["reason"] == "too_many_tasks"
        )
        assert c.post(P + "/predict", json={"tasks": tasks[:5]}).status_code == 200


@pytest.mark.parametrize(
    ("body", "status"),
    [(b"", 400), (b"{", 400), (b"[]", 422), (b'{"tasks": 3}', 422), (b'{"tasks": [], "label_config": 5}', 422),
     (b'{"tasks": [NaN]}', 400), (b"[" * 50_000, 400)],
)  # fmt: skip
def test_predict_refuses_bad_bodies(client: TestClient, body: bytes, status: int) -> None:
    got = client.post(P + "/predict", content=body, headers={"content-type": "application/json"})
    assert got.status_code == status
    assert got.json()["detail"]


def test_webhook_appends_created_and_updated_annotations(client: TestClient, tmp_path: Path, classes: list[str]) -> None:  # fmt: skip
    labels = LabelSet(tmp_path / "labels")
    got = client.post(
        P + "/webhook", json=annotation_event("ANNOTATION_CREATED", "row-1", classes[0])
    )
    assert got.status_code == 201 and got.json()["appended"] == 1
    updated = annotation_event(
        "ANNOTATION_UPDATED", "row-1", classes[1], updated_at="2026-12-05T11:00:00Z"
    )
    assert client.post(P + "/webhook", json=updated).status_code == 201
    bulk = annotation_event("ANNOTATIONS_CREATED", "row-2", classes[2], task_id=2)
    second = annotation_event("ANNOTATIONS_CREATED", "row-3", classes[0], task_id=3)
    bulk["annotation"] = [bulk["annotation"], second["annotation"]]
    bulk["task"] = [bulk["task"], second["task"]]
    assert client.post(P + "/webhook", json=bulk).json()["appended"] == 2
    records = labels.read()
    assert labels.version == 3
    assert [(r.key, r.label, r.annotator, r.source, r.task) for r in records] == [
        ("row-1", classes[0], "user 4", "label-studio-webhook", "1"),
        ("row-1", classes[1], "user 4", "label-studio-webhook", "1"),
        ("row-2", classes[2], "user 4", "label-studio-webhook", "2"),
        ("row-3", classes[0], "user 4", "label-studio-webhook", "3"),
    ]
    assert records[1].at.hour == 11 and records[1].extra["event"] == "ANNOTATION_UPDATED"
    assert records[0].extra["project"] == 3


def test_webhook_ignores_other_actions_and_skips(client: TestClient, tmp_path: Path, classes: list[str]) -> None:  # fmt: skip
    for action in ("TASKS_CREATED", "PROJECT_UPDATED", "ANNOTATIONS_DELETED", "START_TRAINING"):
        got = client.post(P + "/webhook", json={"action": action, "project": {"id": 3}})
        assert got.status_code == 200 and got.json()["status"] == "ignored"
    skipped = annotation_event(
        "ANNOTATION_CREATED", "row-1", classes[0], was_cancelled=True, result=[]
    )
    got = client.post(P + "/webhook", json=skipped)
    assert got.status_code == 201 and got.json()["appended"] == 0 and got.json()["skipped"]
    assert LabelSet(tmp_path / "labels").version == 0


def test_webhook_refuses_bad_annotations_and_appends_nothing(client: TestClient, tmp_path: Path, classes: list[str]) -> None:  # fmt: skip
    bad = [
        (annotation_event("ANNOTATION_CREATED", "row-1", "Dodo"), 422, "not one of the classes"),
        (annotation_event("ANNOTATION_CREATED", None, classes[0]), 422, "no 'key'"),
        ({**annotation_event("ANNOTATION_CREATED", "r", classes[0]), "annotation": [1]}, 422, "'annotation' object"),
        ({"action": "ANNOTATIONS_CREATED", "annotation": []}, 422, "holds no annotation"),
        ({"annotation": {}}, 422, "webhook payload"),
        ([1, 2], 422, "webhook payload"),
    ]  # fmt: skip
    good = annotation_event("ANNOTATIONS_CREATED", "row-2", classes[2], task_id=2)
    mixed = annotation_event("ANNOTATIONS_CREATED", "row-3", "Dodo", task_id=3)
    good["annotation"] = [good["annotation"], mixed["annotation"]]
    good["task"] = [good["task"], mixed["task"]]
    bad.append((good, 422, "nothing was appended"))
    for body, status, message in bad:
        got = client.post(P + "/webhook", json=body)
        assert got.status_code == status, body
        assert message in json.dumps(got.json()), got.json()
    assert LabelSet(tmp_path / "labels").version == 0
    ok = client.post(
        P + "/webhook", json=annotation_event("ANNOTATION_CREATED", "row-1", classes[0])
    )
    assert ok.status_code == 201 and LabelSet(tmp_path / "labels").version == 1  # not poisoned


def test_webhook_without_a_label_set_is_refused(world: World, tmp_path: Path, classes: list[str]) -> None:  # fmt: skip
    with _client(world, tmp_path, labels=False) as c:
        got = c.post(
            P + "/webhook", json=annotation_event("ANNOTATION_CREATED", "row-1", classes[0])
        )
        assert got.status_code == 409 and "--labels" in got.json()["detail"]


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(payload=st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(
        st.sampled_from(["action", "annotation", "task", "result", "data", "key", "choices", "value", "id"]),
        kids, max_size=5),
    max_leaves=20,
), action=st.sampled_from(["ANNOTATION_CREATED", "ANNOTATIONS_CREATED", "ANNOTATION_UPDATED", "X"]))  # fmt: skip
def test_hostile_webhooks_get_a_4xx_or_2xx_never_a_500(client: TestClient, tmp_path: Path, payload: Any, action: str) -> None:  # fmt: skip
    if isinstance(payload, dict):
        payload = {**payload, "action": action}
    got = client.post(P + "/webhook", json=payload)
    assert got.status_code in (200, 201, 400, 409, 422), got.text
    for path in ("/predict", "/setup"):
        assert client.post(P + path, json=payload).status_code in (200, 400, 413, 422)


def test_label_studio_basic_auth_with_the_token(world: World, tmp_path: Path) -> None:
    def basic(password: str) -> dict[str, str]:
        return {"Authorization": "Basic " + base64.b64encode(f"ls:{password}".encode()).decode()}

    with _client(world, tmp_path, token="s3cret") as c:
        assert c.get(P + "/health").status_code == 401
        assert c.get(P + "/health", headers=basic("s3cret")).status_code == 200
        assert c.get(P + "/health", headers=basic("wrong")).status_code == 401
        assert c.get(P + "/health", headers={"Authorization": "Bearer s3cret"}).status_code == 200
        assert c.get(P + "/health", headers={"Authorization": "Basic %%%"}).status_code == 401
        assert (
            c.get("/model", headers=basic("s3cret")).status_code == 401
        )  # only the backend's routes


def test_serve_keeps_the_label_set_next_to_the_project_unless_told(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import importlib

    from click.testing import CliRunner

    from modelyard.ops.serving import launch, server

    commands = importlib.import_module("modelyard.cli.serve")  # the package exports the command

    seen: list[ServeSettings] = []
    monkeypatch.setattr(server, "run_server", lambda s, launch, token: seen.append(s))
    monkeypatch.setattr(launch, "check_model_exists", lambda model, uri: None)
    project = Path(__file__).resolve().parents[4] / "examples" / "quickstart"
    runner = CliRunner()
    assert runner.invoke(commands.serve, ["-c", str(project / "modelyard.yaml")]).exit_code == 0
    assert seen[-1].extra["label_studio"]["labels"] == str(project / "labels")
    got = runner.invoke(commands.serve, ["-c", str(project), "--labels", str(tmp_path / "l")])
    assert got.exit_code == 0 and seen[-1].extra["label_studio"]["labels"] == str(tmp_path / "l")
    got = runner.invoke(commands.serve, ["--model", str(tmp_path)])  # no project: no label set
    assert got.exit_code == 0 and "label_studio" not in seen[-1].extra
    (tmp_path / "file").write_text("x")
    got = runner.invoke(commands.serve, ["-c", str(project), "--labels", str(tmp_path / "file")])
    assert got.exit_code == 2 and "is a file" in got.output
