"""Label Studio's formats: export -> a simulated annotator -> load gives back the labels."""

from __future__ import annotations

import datetime as dt
import json
import math
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelyard.errors import DataError, ModelyardError
from modelyard.labels.formats import format_module
from modelyard.labels.formats import labelstudio as fmt
from modelyard.labels.records import LabelSpec, QueueItem

NOW = "2026-12-05T10:00:00.123456Z"


def items_for(spec: LabelSpec, keys: list[str], preds: list[Any]) -> list[QueueItem]:
    out = []
    for i, (key, pred) in enumerate(zip(keys, preds, strict=True)):
        probs = None
        if spec.classes is not None:
            probs = {fmt.class_text(c): (0.9 if c == pred else 0.1) for c in spec.classes}
        out.append(QueueItem(key=key, row={"x": i, "when": dt.date(2026, 1, 1), "nan": math.nan},
                             score=1.0 / (i + 1), reason=f"entropy {i}", model_version="m v3",
                             prediction=pred, probabilities=probs))  # fmt: skip
    return out


def annotate(
    tasks: list[dict[str, Any]], labels: list[Any], spec: LabelSpec
) -> list[dict[str, Any]]:
    """What Label Studio's JSON export holds after annotators picked ``labels``: the
    result shape the config's control produces, ids, users, times, one skipped task."""
    config = ET.fromstring(fmt.label_config(spec))
    control = next(e for e in config if e.tag in ("Choices", "Number"))
    exported = []
    for n, (task, label) in enumerate(zip(tasks, labels, strict=True), 1):
        if control.tag == "Choices":
            texts = [c.get("value") for c in control]
            value = {
                "choices": [
                    texts[[fmt.class_text(c) for c in spec.classes].index(fmt.class_text(label))]
                ]
            }  # type: ignore[union-attr]
            kind = "choices"
        else:
            value, kind = {"number": label}, "number"
        result = [{"value": value, "id": f"r{n}", "from_name": control.get("name"),
                   "to_name": control.get("toName"), "type": kind, "origin": "manual"}]  # fmt: skip
        exported.append(
            {
                "id": n,
                "data": task["data"],
                "meta": task.get("meta", {}),
                "predictions": task.get("predictions", []),
                "annotations": [
                    {
                        "id": 100 + n,
                        "completed_by": {"id": 7, "email": "ann@example.com"},
                        "result": result,
                        "was_cancelled": False,
                        "ground_truth": False,
                        "created_at": NOW,
                        "updated_at": NOW,
                        "lead_time": 3.2,
                        "project": 1,
                        "task": n,
                    }
                ],
            }
        )
    return exported


def roundtrip(tmp_path: Path, spec: LabelSpec, keys: list[str], labels: list[Any]) -> list[Any]:
    preds = [labels[0]] * len(labels) if spec.classes is None else [spec.classes[0]] * len(labels)
    files = fmt.export(items_for(spec, keys, preds), spec, tmp_path / "out")
    assert [f.name for f in files] == ["tasks.json", "label-config.xml"]
    tasks = json.loads(files[0].read_text(encoding="utf-8"))
    (tmp_path / "export.json").write_text(
        json.dumps(annotate(tasks, labels, spec)), encoding="utf-8"
    )
    records, rejected = fmt.load(tmp_path / "export.json", spec)
    assert rejected == []
    return [(r.key, r.label) for r in records]


class_names = st.one_of(
    st.text(min_size=1, max_size=12).filter(
        lambda s: s.strip() and not fmt._XML_FORBIDDEN.search(s)
    ),
    st.integers(-(10**12), 10**12),
    st.integers(0, 99).map(str),  # numbers as strings
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
)


def distinct_as_text(values: list[Any]) -> bool:
    texts = [fmt.class_text(v) for v in values]
    return len(set(texts)) == len(texts)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    classes=st.lists(class_names, min_size=2, max_size=6).filter(distinct_as_text),
    data=st.data(),
)
def test_classification_roundtrip_is_lossless(tmp_path_factory: pytest.TempPathFactory,
                                              classes: list[Any], data: st.DataObject) -> None:  # fmt: skip
    tmp = tmp_path_factory.mktemp("rt")
    spec = LabelSpec(target="y", task="multiclass", classes=tuple(classes))
    keys = data.draw(
        st.lists(st.text(min_size=1, max_size=10), min_size=1, max_size=8, unique=True)
    )
    labels = [data.draw(st.sampled_from(classes)) for _ in keys]
    got = roundtrip(tmp, spec, keys, labels)
    assert got == list(zip(keys, labels, strict=True))
    assert [type(label) for _, label in got] == [type(label) for label in labels]


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    values=st.lists(
        st.one_of(st.floats(allow_nan=False, allow_infinity=False), st.integers(-(2**53), 2**53)),
        min_size=1,
        max_size=8,
    ),
)
def test_regression_roundtrip_is_lossless(tmp_path_factory: pytest.TempPathFactory, values: list[Any]) -> None:  # fmt: skip
    spec = LabelSpec(target="price", task="regression", classes=None)
    keys = [f"row-{i}" for i in range(len(values))]
    got = roundtrip(tmp_path_factory.mktemp("rt"), spec, keys, values)
    assert got == list(zip(keys, values, strict=True))


def test_export_writes_tasks_predictions_and_config(tmp_path: Path) -> None:
    spec = LabelSpec(target="income", task="binary", classes=("<=50K", ">50K"))
    items = items_for(spec, ["a", "b"], [">50K", "<=50K"])
    tasks_file, config_file = fmt.export(items, spec, tmp_path)
    tasks = json.loads(tasks_file.read_text())
    assert tasks[0]["data"] == {"key": "a", "row": {"x": 0, "when": "2026-01-01", "nan": None}}
    pred = tasks[0]["predictions"][0]
    assert pred["model_version"] == "m v3"
    assert pred["score"] == 0.9
    assert pred["result"] == [{"from_name": "label", "to_name": "row", "type": "choices",
                               "value": {"choices": [">50K"]}}]  # fmt: skip
    assert tasks[1]["meta"]["modelyard"] == {
        "rank": 2,
        "score": 0.5,
        "reason": "entropy 1",
        "model_version": "m v3",
    }
    root = ET.fromstring(config_file.read_text())
    assert root.find("Table").attrib == {"name": "row", "value": "$row"}  # type: ignore[union-attr]
    assert [c.get("value") for c in root.find("Choices")] == ["<=50K", ">50K"]  # type: ignore[union-attr]
    reg = fmt.label_config(LabelSpec(target="p", task="regression", classes=None))
    number = ET.fromstring(reg).find("Number")
    assert number is not None and number.get("toName") == "row" and number.get("step") == "any"


def test_load_reports_skipped_unannotated_and_broken_tasks(tmp_path: Path) -> None:
    spec = LabelSpec(target="y", task="binary", classes=(0, 1))
    ok = {"value": {"choices": ["1"]}, "from_name": "label", "to_name": "row", "type": "choices"}
    tasks = [
        {"id": 1, "data": {"key": "a", "row": {}}, "annotations": [
            {"id": 1, "completed_by": 3, "result": [ok], "was_cancelled": False, "created_at": NOW, "updated_at": "2026-12-06T00:00:00"},
            {"id": 2, "completed_by": 4, "result": [{**ok, "value": {"choices": ["0"]}}], "created_at": NOW},
            {"id": 3, "completed_by": 5, "result": [], "was_cancelled": True, "created_at": NOW},
        ]},
        {"id": 2, "data": {"key": "b", "row": {}}, "annotations": []},
        {"id": 3, "data": {"row": {}}, "annotations": [{"result": [ok], "created_at": NOW}]},
        {"id": 4, "data": {"key": "d"}, "annotations": [{"result": [{**ok, "value": {"choices": ["0", "1"]}}], "created_at": NOW}]},
        {"id": 5, "data": {"key": "e"}, "annotations": [{"result": [{**ok, "value": {"choices": ["2"]}}], "created_at": NOW}]},
        {"id": 6, "data": {"key": "f"}, "annotations": [{"result": [ok]}]},
        "not a task",
    ]  # fmt: skip
    path = tmp_path / "export.json"
    path.write_text(json.dumps(tasks))
    records, rejected = fmt.load(path, spec)
    assert [(r.key, r.label, r.annotator, r.task) for r in records] == [
        ("a", 1, "user 3", "1"),
        ("a", 0, "user 4", "1"),
        ("e", "2", "unknown", "5"),
    ]
    assert records[0].at == dt.datetime(2026, 12, 6, tzinfo=dt.UTC)  # updated_at wins; naive is UTC
    assert records[0].extra == {"annotation": 1}
    reasons = [r.reason for r in rejected]
    assert len(reasons) == 6
    assert "skipped by the annotator" in reasons[0]
    assert "has no annotation yet" in reasons[1]
    assert "no 'key'" in reasons[2]
    assert "picks 2 choices" in reasons[3]
    assert "no 'updated_at' or 'created_at'" in reasons[4]
    assert "must be a JSON object" in reasons[5]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "not valid JSON"),
        (b'{"a": 1}', "not a list of tasks"),
        (b"\xff\xfe[]", "not UTF-8"),
        (b"[" * 100_000 + b"]" * 100_000, "nests too deeply"),
        (
            b'[{"data": {"key": "a"}, "annotations": [{"result": [{"type": "number", "value": {"number": NaN}}]}]}]',
            "not valid JSON",
        ),
        (b"id,label\n1,a\n", "not valid JSON"),
    ],
)
def test_load_refuses_what_is_not_an_export(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "export.json"
    path.write_bytes(content)
    spec = LabelSpec(target="y", task="regression", classes=None)
    with pytest.raises(DataError, match=message):
        fmt.load(path, spec)
    with pytest.raises(DataError, match="does not exist"):
        fmt.load(tmp_path / "missing.json", spec)
    with pytest.raises(DataError, match="does not exist"):
        fmt.load(tmp_path, spec)


def test_export_refuses_what_label_studio_cannot_show(tmp_path: Path) -> None:
    def spec(*classes: Any) -> LabelSpec:
        return LabelSpec(target="y", task="multiclass", classes=classes)

    with pytest.raises(ModelyardError, match="read the same"):
        fmt.export([], spec(1, "1"), tmp_path)
    with pytest.raises(ModelyardError, match="empty or blank"):
        fmt.export([], spec("a", " "), tmp_path)
    with pytest.raises(ModelyardError, match="control character"):
        fmt.export([], spec("a", "b\x00"), tmp_path)
    item = QueueItem(key="k", row={}, score=1.0, reason="", model_version="1", prediction="a")
    with pytest.raises(ModelyardError, match="appears twice"):
        fmt.export([item, item], spec("a", "b"), tmp_path / "dup")
    with pytest.raises(ModelyardError, match="not a class"):
        fmt.export(
            [QueueItem("k", {}, 1.0, "", "1", prediction="c")], spec("a", "b"), tmp_path / "c"
        )
    with pytest.raises(ModelyardError, match="unknown task"):
        fmt.export([], LabelSpec(target="y", task="ranking", classes=None), tmp_path / "t")
    (tmp_path / "file").write_text("x")
    with pytest.raises(ModelyardError, match="is a file"):
        fmt.export([], spec("a", "b"), tmp_path / "file")
    assert not (tmp_path / "dup").exists() and not (tmp_path / "c").exists()  # nothing half written


def test_format_module_is_found_by_name() -> None:
    assert format_module("label-studio") is fmt
