"""The Labelbox format: data rows with pre-labels out, Labelbox's export v2 NDJSON in.

Labelbox is hosted, so the "annotation" here builds the export file as Labelbox's export v2
documents it: one JSON object per data row, ``data_row.global_key``, and per project a list of
labels whose ``annotations.classifications`` hold a ``radio_answer`` (or a ``text_answer``).
"""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelyard.labels.formats import format_module
from modelyard.labels.formats.labelbox import ROW_ATTACHMENT, export, load
from modelyard.labels.records import LabelSpec, QueueItem

PROJECT = "clqm2x1k30abc07xyz1234567"
T0 = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)


def items(keys: list[str], spec: LabelSpec) -> list[QueueItem]:
    out = []
    for i, key in enumerate(keys):
        prediction = spec.classes[i % len(spec.classes)] if spec.classes else float(i) / 3
        proba = {str(c): 1 / len(spec.classes) for c in spec.classes} if spec.classes else None
        out.append(
            QueueItem(
                key=key,
                row={"age": 30 + i, "job": "clerk", "gain": None},
                score=1.0 - i / 100,
                reason=f"#{i + 1}: entropy 0.9",
                model_version="adult/3",
                prediction=prediction,
                probabilities=proba,
            )
        )
    return out


def label_entry(
    classification: dict[str, Any], annotator: str, at: datetime, n: int
) -> dict[str, Any]:
    """One label of a data row, as Labelbox's export v2 writes it."""
    return {
        "label_kind": "Default",
        "version": 1,
        "id": f"clabel{n:06d}",
        "label_details": {
            "created_at": at.isoformat().replace("+00:00", "Z"),
            "updated_at": at.isoformat().replace("+00:00", "Z"),
            "created_by": annotator,
            "content_last_updated_at": at.isoformat().replace("+00:00", "Z"),
            "reviews": [],
        },
        "performance_details": {"seconds_to_create": 12, "seconds_to_review": 0, "skipped": False},
        "annotations": {"objects": [], "classifications": [classification], "relationships": []},
    }


def radio(target: str, value: str) -> dict[str, Any]:
    return {
        "feature_id": "cfeat1", "name": target, "value": target.lower(),
        "radio_answer": {"feature_id": "cfeat2", "name": value, "value": value, "classifications": []},
    }  # fmt: skip


def text(target: str, content: str) -> dict[str, Any]:
    return {"feature_id": "cfeat3", "name": target, "value": target.lower(),
            "text_answer": {"content": content}}  # fmt: skip


def labelbox_export(data_rows_file: Path, answer: Any, out: Path) -> Path:
    """Simulate Labelbox: the uploaded data rows, annotated, exported as export v2 NDJSON.

    ``answer(global_key) -> [(annotator, classification)]``.
    """
    lines = []
    for n, line in enumerate(data_rows_file.read_text().splitlines()):
        uploaded = json.loads(line)
        labels = [label_entry(c, who, T0 + timedelta(minutes=n + j), n * 10 + j)
                  for j, (who, c) in enumerate(answer(uploaded["global_key"]))]  # fmt: skip
        lines.append(
            json.dumps(
                {
                    "data_row": {
                        "id": f"cdr{n:06d}",
                        "global_key": uploaded["global_key"],
                        "row_data": uploaded["row_data"],
                        "external_id": None,
                        "details": {
                            "dataset_id": "cds1",
                            "dataset_name": "modelyard",
                            "created_at": "2026-12-01T09:00:00.000+00:00",
                            "created_by": "ops@example.com",
                        },
                    },
                    "media_attributes": {"mime_type": "text/plain"},
                    "attachments": uploaded["attachments"],
                    "metadata_fields": uploaded["metadata_fields"],
                    "projects": {
                        PROJECT: {
                            "name": "modelyard queue",
                            "labels": labels,
                            "project_details": {"workflow_status": "DONE"},
                        }
                    },
                }
            )
        )
    out.write_text("\n".join(lines) + "\n")
    return out


keys_strategy = st.lists(
    st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=12),
    min_size=1, max_size=15, unique=True,
)  # fmt: skip
classes_strategy = st.one_of(
    st.lists(st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=8),
             min_size=2, max_size=6, unique=True),
    st.lists(st.integers(-5, 50), min_size=2, max_size=6, unique=True),
)  # fmt: skip


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(keys=keys_strategy, classes=classes_strategy, seed=st.integers(0, 1000))
def test_classes_round_trip_exactly(
    tmp_path: Path, keys: list[str], classes: list[Any], seed: int
) -> None:
    spec = LabelSpec("income", "multiclass", tuple(classes))
    out = tmp_path / f"out-{seed}-{len(keys)}"
    files = export(items(keys, spec), spec, out)
    assert [f.name for f in files] == ["data_rows.ndjson", "prelabels.ndjson", "ontology.json"]
    rnd = random.Random(seed)
    truth = {k: rnd.choice(classes) for k in keys}
    exported = labelbox_export(files[0], lambda k: [("ann@example.com", radio("income", str(truth[k])))],
                               out / "export.ndjson")  # fmt: skip
    records, rejected = load(exported, spec)
    assert rejected == []
    assert {r.key: r.label for r in records} == truth
    assert all(type(r.label) is type(truth[r.key]) for r in records)  # 3 stays 3, not "3"
    assert len(records) == len(keys)
    assert {r.annotator for r in records} == {"ann@example.com"}
    assert all(r.source == "labelbox" and r.at.tzinfo is not None for r in records)


def test_numbers_round_trip_through_a_text_answer(tmp_path: Path) -> None:
    spec = LabelSpec("price", "regression", None)
    keys = ["a", "b", "c"]
    files = export(items(keys, spec), spec, tmp_path)
    truth = {"a": 1.5, "b": -3.0, "c": 1e6}
    exported = labelbox_export(files[0], lambda k: [("x", text("price", repr(truth[k])))],
                               tmp_path / "export.ndjson")  # fmt: skip
    records, rejected = load(exported, spec)
    assert rejected == [] and {r.key: r.label for r in records} == truth
    assert (
        json.loads((tmp_path / "ontology.json").read_text())["classifications"][0]["type"] == "text"
    )


def test_the_export_is_what_labelbox_takes(tmp_path: Path) -> None:
    spec = LabelSpec("income", "binary", ("<=50K", ">50K"))
    files = export(items(["r1", "r2"], spec), spec, tmp_path)
    row = json.loads(files[0].read_text().splitlines()[0])
    assert row["global_key"] == "r1" and row["media_type"] == "TEXT"
    assert "age: 30" in row["row_data"]
    carried = next(a for a in row["attachments"] if a["name"] == ROW_ATTACHMENT)
    assert json.loads(carried["value"]) == {"age": 30, "job": "clerk", "gain": None}
    meta = {m["name"]: m["value"] for m in row["metadata_fields"]}
    assert meta == {"modelyard_score": 1.0, "modelyard_reason": "#1: entropy 0.9",
                    "modelyard_model_version": "adult/3"}  # fmt: skip
    pre = [json.loads(x) for x in files[1].read_text().splitlines()]
    assert pre[0] == {"name": "income", "dataRow": {"globalKey": "r1"},
                      "answer": {"name": "<=50K", "confidence": 0.5}}  # fmt: skip
    onto = json.loads(files[2].read_text())
    assert [o["value"] for o in onto["classifications"][0]["options"]] == ["<=50K", ">50K"]


def test_several_annotators_and_projects_each_give_a_record(tmp_path: Path) -> None:
    spec = LabelSpec("y", "binary", ("no", "yes"))
    files = export(items(["k"], spec), spec, tmp_path)
    exported = labelbox_export(
        files[0],
        lambda k: [("a", radio("y", "yes")), ("b", radio("y", "no"))],
        tmp_path / "e.ndjson",
    )
    records, _ = load(exported, spec)
    assert sorted((r.annotator, r.label) for r in records) == [("a", "yes"), ("b", "no")]
    assert all(r.extra["project"] == PROJECT and r.task for r in records)


def test_an_unknown_class_is_read_as_found_for_validation_to_quarantine(tmp_path: Path) -> None:
    spec = LabelSpec("y", "binary", ("no", "yes"))
    files = export(items(["k"], spec), spec, tmp_path)
    exported = labelbox_export(
        files[0], lambda k: [("a", radio("y", "Yes "))], tmp_path / "e.ndjson"
    )
    records, rejected = load(exported, spec)
    assert [r.label for r in records] == ["Yes "] and rejected == []


def test_hostile_lines_are_rejected_one_by_one_with_reasons(tmp_path: Path) -> None:
    spec = LabelSpec("y", "binary", ("no", "yes"))
    good = {"data_row": {"global_key": "ok"},
            "projects": {"p": {"labels": [label_entry(radio("y", "yes"), "a", T0, 1)]}}}  # fmt: skip
    lines = [
        "{not json",
        "[1, 2]",
        json.dumps({"data_row": {"id": "x"}, "projects": {}}),
        json.dumps({"data_row": {"global_key": "g"}}),
        json.dumps({"data_row": {"global_key": "g"}, "projects": {"p": {"labels": "nope"}}}),
        json.dumps({"data_row": {"global_key": "g"}, "projects": {"p": {"labels": [
            {"annotations": {"classifications": [{"name": "y", "checklist_answers": [{"value": "no"}]}]},
             "label_details": {"created_at": "2026-01-01T00:00:00Z"}}]}}}),
        json.dumps({"data_row": {"global_key": "g"}, "projects": {"p": {"labels": [
            {"annotations": {"classifications": [radio("other", "no"), radio("z", "yes")]},
             "label_details": {"created_at": "2026-01-01T00:00:00Z"}}]}}}),
        json.dumps({"data_row": {"global_key": "g"}, "projects": {"p": {"labels": [
            {"annotations": {"classifications": [radio("y", "no")]},
             "label_details": {"created_at": "yesterday"}}]}}}),
        json.dumps(good),
        "",
    ]  # fmt: skip
    file = tmp_path / "export.ndjson"
    file.write_text("\n".join(lines))
    records, rejected = load(file, spec)
    assert [(r.key, r.label) for r in records] == [("ok", "yes")]
    reasons = [r.reason for r in rejected]
    assert len(rejected) == 8
    assert reasons[0].startswith("not JSON")
    assert "must be a JSON object" in reasons[1]
    assert "no global_key" in reasons[2]
    assert "no 'projects'" in reasons[3]
    assert "no 'labels' list" in reasons[4]
    assert "checklist" in reasons[5]
    assert "no classification named 'y'" in reasons[6]
    assert "is not a time" in reasons[7]
    assert rejected[0].where == "export.ndjson:1"


def test_unreadable_files_raise_a_clear_error(tmp_path: Path) -> None:
    from modelyard.errors import DataError

    spec = LabelSpec("y", "binary", ("no", "yes"))
    with pytest.raises(DataError, match="cannot read the Labelbox export"):
        load(tmp_path / "missing.ndjson", spec)
    binary = tmp_path / "b.ndjson"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(DataError, match="not UTF-8"):
        load(binary, spec)
    empty = tmp_path / "empty.ndjson"
    empty.write_text("")
    assert load(empty, spec) == ([], [])


def test_the_format_registry_knows_labelbox_and_refuses_unknown_names() -> None:
    from modelyard.errors import ModelyardError

    assert format_module("labelbox").load is load
    with pytest.raises(ModelyardError, match="unknown label format 'cvat'"):
        format_module("cvat")


def test_non_finite_values_in_rows_are_written_as_null(tmp_path: Path) -> None:
    spec = LabelSpec("y", "binary", ("no", "yes"))
    item = QueueItem("k", {"x": float("nan"), "y": float("inf")}, float("nan"), "r", "m/1", "yes")
    files = export([item], spec, tmp_path)
    row = json.loads(files[0].read_text())
    assert json.loads(row["attachments"][0]["value"]) == {"x": None, "y": None}
