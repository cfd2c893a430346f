"""Labelbox: NDJSON data rows with pre-labels out, Labelbox's NDJSON export (v2) in.

Labelbox is a hosted service; these files follow its documented formats.

Export (:func:`export`) writes three files into the folder:

- ``data_rows.ndjson``: one data row per line for ``dataset.create_data_rows`` /
  the UI's JSON upload. ``row_data`` is the row as readable text (``column: value`` lines,
  media type ``TEXT``), ``global_key`` the modelyard row key (how a label finds its row
  again), ``attachments`` the row as JSON (``RAW_TEXT`` named ``modelyard.row``) and the
  champion's answer, ``metadata_fields`` the queue's score, reason and model version.
- ``prelabels.ndjson``: the champion's answers as model-assisted-labelling (MAL) imports,
  one classification per row matched by ``globalKey``: a radio answer (the predicted
  class) for a classifier, a text answer (the predicted number) for a regressor.
- ``ontology.json``: the one global classification the project needs: named after the
  target, a ``radio`` question with one option per class, or a ``text`` question for a
  number.

Import (:func:`load`) reads Labelbox's export v2 NDJSON: one data row per line,
``{"data_row": {"global_key": ...}, "projects": {"<id>": {"labels": [{"label_details":
{"created_by", "created_at"}, "annotations": {"classifications": [...]}}]}}}``. Each label's
classification named after the target (or the only classification when there is one) gives
one :class:`~modelyard.labels.records.LabelRecord` per label, with its annotator and time.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from modelyard.errors import DataError
from modelyard.labels.formats import Rejected
from modelyard.labels.records import LabelRecord, LabelSpec, QueueItem

ROW_ATTACHMENT = "modelyard.row"
"""The name of the attachment that carries the row as JSON."""


# ----------------------------------------------------------------------------- export


def export(items: Sequence[QueueItem], spec: LabelSpec, out: Path) -> list[Path]:
    """Write ``data_rows.ndjson``, ``prelabels.ndjson`` and ``ontology.json`` into ``out``."""
    from modelyard.labels.io import write_atomic

    out = Path(out)
    rows, prelabels = [], []
    for item in items:
        rows.append(_dumps(data_row(item, spec)))
        pre = prelabel(item, spec)
        if pre is not None:
            prelabels.append(_dumps(pre))
    files = [
        (out / "data_rows.ndjson", "".join(line + "\n" for line in rows)),
        (out / "prelabels.ndjson", "".join(line + "\n" for line in prelabels)),
        (out / "ontology.json", json.dumps(ontology(spec), indent=2) + "\n"),
    ]
    for path, text in files:
        write_atomic(path, text)
    return [path for path, _ in files]


def ontology(spec: LabelSpec) -> dict[str, Any]:
    """The project's ontology: one global classification named after the target."""
    if spec.task == "regression":
        question: dict[str, Any] = {"type": "text", "name": spec.target,
                                    "instructions": spec.target, "required": True,
                                    "options": []}  # fmt: skip
    else:
        question = {
            "type": "radio", "name": spec.target, "instructions": spec.target, "required": True,
            "options": [{"label": str(c), "value": str(c), "options": []} for c in spec.classes or ()],
        }  # fmt: skip
    return {"tools": [], "classifications": [question]}


def data_row(item: QueueItem, spec: LabelSpec) -> dict[str, Any]:
    """One Labelbox data row for a queue item."""
    text = "\n".join(f"{k}: {_text(v)}" for k, v in item.row.items())
    attachments = [{"type": "RAW_TEXT", "name": ROW_ATTACHMENT, "value": _dumps(item.row)}]
    if item.prediction is not None:
        answer = f"{spec.target}: {_text(item.prediction)}"
        if item.probabilities:
            ranked = sorted(item.probabilities.items(), key=lambda kv: -kv[1])[:5]
            answer += " (" + ", ".join(f"{k} {v:.2f}" for k, v in ranked) + ")"
        attachments.append({"type": "RAW_TEXT", "name": "model prediction", "value": answer})
    return {
        "row_data": text,
        "global_key": item.key,
        "media_type": "TEXT",
        "attachments": attachments,
        "metadata_fields": [
            {"name": "modelyard_score", "value": _finite(item.score)},
            {"name": "modelyard_reason", "value": item.reason},
            {"name": "modelyard_model_version", "value": item.model_version},
        ],
    }


def prelabel(item: QueueItem, spec: LabelSpec) -> dict[str, Any] | None:
    """The champion's answer as a model-assisted-labelling import line (``None``: no answer)."""
    if item.prediction is None:
        return None
    line: dict[str, Any] = {"name": spec.target, "dataRow": {"globalKey": item.key}}
    if spec.task == "regression":
        line["answer"] = _text(item.prediction)
    else:
        line["answer"] = {"name": str(item.prediction)}
        if item.probabilities and str(item.prediction) in item.probabilities:
            line["answer"]["confidence"] = _finite(item.probabilities[str(item.prediction)])
    return line


# ----------------------------------------------------------------------------- import


def load(path: Path, spec: LabelSpec) -> tuple[list[LabelRecord], list[Rejected]]:
    """Read Labelbox's export v2 NDJSON at ``path`` into label records, and what was not read.

    A line that is not JSON, a data row without a global key, a label without the target's
    classification or with an answer of a kind that cannot hold a label, is rejected with its
    reason. The label's value is the class (matched to the spec's classes by its text, so an
    integer class comes back an integer) or the number; anything else is kept as found, for
    validation to quarantine.
    """
    records: list[LabelRecord] = []
    rejected: list[Rejected] = []
    for where, line in _lines(Path(path)):
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            rejected.append(Rejected(where, f"not JSON ({exc.msg})", line[:200]))
            continue
        if not isinstance(row, dict):
            rejected.append(
                Rejected(where, f"a line must be a JSON object, found {_kind(row)}", row)
            )
            continue
        data = row.get("data_row")
        key = data.get("global_key") if isinstance(data, dict) else None
        if not isinstance(key, str) or not key:
            rejected.append(
                Rejected(
                    where,
                    "the data row has no global_key: the label cannot be matched to a row",
                    data if isinstance(data, dict) else row,
                )
            )
            continue
        projects = row.get("projects")
        if not isinstance(projects, dict):
            rejected.append(
                Rejected(where, "no 'projects' object: not a Labelbox export v2 line", key)
            )
            continue
        for project_id, project in sorted(projects.items()):
            labels = project.get("labels") if isinstance(project, dict) else None
            if not isinstance(labels, list):
                rejected.append(Rejected(f"{where} project {project_id}", "no 'labels' list", key))
                continue
            for n, label in enumerate(labels):
                at = f"{where} project {project_id} label {n}"
                record = _record(label, key, project_id, spec, at)
                (rejected if isinstance(record, Rejected) else records).append(record)  # type: ignore[arg-type]
    return records, rejected


def _record(
    label: Any, key: str, project_id: str, spec: LabelSpec, where: str
) -> LabelRecord | Rejected:
    if not isinstance(label, dict):
        return Rejected(where, f"a label must be an object, found {_kind(label)}", key)
    annotations = label.get("annotations")
    found = annotations.get("classifications") if isinstance(annotations, dict) else None
    if not isinstance(found, list):
        return Rejected(where, "the label has no annotations.classifications list", key)
    named = [
        c for c in found if isinstance(c, dict) and spec.target in (c.get("name"), c.get("value"))
    ]
    if not named and len(found) == 1 and isinstance(found[0], dict):
        named = found  # a project whose one question is named otherwise
    if len(named) != 1:
        what = "no classification" if not named else f"{len(named)} classifications"
        return Rejected(where, f"{what} named {spec.target!r} in the label", key)
    value = _answer(named[0], spec)
    if isinstance(value, Rejected):
        return Rejected(where, value.reason, key)
    raw = label.get("label_details")
    details: dict[str, Any] = raw if isinstance(raw, dict) else {}
    annotator = details.get("created_by") or "unknown"
    at = _time(details.get("created_at") or details.get("updated_at"))
    if at is None:
        return Rejected(
            where, f"label_details.created_at {details.get('created_at')!r} is not a time", key
        )
    return LabelRecord(
        key=key, label=value, annotator=str(annotator), at=at, source="labelbox",
        task=str(label["id"]) if label.get("id") is not None else None,
        extra={"project": project_id},
    )  # fmt: skip


def _answer(classification: dict[str, Any], spec: LabelSpec) -> Any:
    """The label held by a classification: a radio answer's option, or a text answer."""
    if isinstance(classification.get("radio_answer"), dict):
        option = classification["radio_answer"]
        text = option.get("value", option.get("name"))
        if text is None:
            return Rejected("", "the radio answer has no value or name", None)
        return _class_of(str(text), spec)
    if isinstance(classification.get("text_answer"), dict):
        content = classification["text_answer"].get("content")
        if not isinstance(content, str):
            return Rejected("", "the text answer has no content", None)
        if spec.task == "regression":
            try:
                number = float(content.strip())
            except ValueError:
                return content  # kept as found: validation says it is not a number
            return number
        return _class_of(content.strip(), spec)
    if "checklist_answers" in classification:
        return Rejected(
            "", "a checklist answer can hold several classes; the target takes one", None
        )
    return Rejected("", "the classification has no radio_answer or text_answer", None)


def _class_of(text: str, spec: LabelSpec) -> Any:
    """The spec's class whose text is ``text`` (so ``"1"`` gives back ``1``), else ``text``."""
    for c in spec.classes or ():
        if str(c) == text:
            return c
    return text


# ----------------------------------------------------------------------------- helpers


def _lines(path: Path) -> Iterator[tuple[str, str]]:
    try:
        handle = path.open(encoding="utf-8")
    except OSError as exc:
        raise DataError(
            f"cannot read the Labelbox export ({exc.strerror or exc})", where=str(path)
        ) from None
    with handle:
        try:
            for number, line in enumerate(handle, 1):
                if line.strip():
                    yield f"{path.name}:{number}", line
        except UnicodeDecodeError as exc:
            raise DataError(
                f"the Labelbox export is not UTF-8 text ({exc.reason})", where=str(path),
                expected="Labelbox's NDJSON export (one JSON object per line)",
            ) from None  # fmt: skip


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        at = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _finite(value: float) -> float | None:
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None


def _kind(value: Any) -> str:
    kinds: dict[type, str] = {dict: "an object", list: "a list", str: "a string"}
    return kinds.get(type(value), type(value).__name__)


def _dumps(value: Any) -> str:
    return json.dumps(_plain(value), sort_keys=True, default=str, allow_nan=False)


def _plain(value: Any) -> Any:
    """``value`` with NaN and infinities as null (JSON has no such numbers)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value
