"""Label Studio: tasks with pre-annotations and a labelling config out, completed tasks in.

Export (:func:`export`) writes two files into a folder:

- ``tasks.json``: Label Studio's task import format, one task per queue item::

      {"data": {"key": "<row key>", "row": {"<column>": value, ...}},
       "predictions": [{"model_version": "...", "score": 0.93,
                        "result": [{"from_name": "label", "to_name": "row", "type": "choices",
                                    "value": {"choices": ["<class>"]}}]}],
       "meta": {"modelyard": {"rank": 1, "score": 0.69, "reason": "...", ...}}}

  ``score`` is Label Studio's prediction score, the model's confidence in its pre-annotation
  (the probability of the predicted class); regressors give no confidence, so their
  predictions carry none. The queue's own score (how much the label would help), its reason
  and the task's rank in the queue go into the task's ``meta``.
- ``label-config.xml``: the labelling config, a ``<Table>`` of the row with ``<Choices>``
  (one ``<Choice>`` per class, in the model's order) for a classifier or a ``<Number>`` for
  a regressor.

Import (:func:`load`) reads Label Studio's "JSON" export: a list of tasks, each with its
``data`` and ``annotations`` (each with ``result``, ``completed_by``, ``created_at``,
``updated_at`` and ``was_cancelled``). Every submitted annotation gives one
:class:`~modelyard.labels.records.LabelRecord` (several annotators of one task give several
records: the conflict rule decides later); a skipped (cancelled) annotation, a task nobody
annotated and an annotation that cannot be read each give a
:class:`~modelyard.labels.formats.Rejected` with its reason.

Classes travel as text (a ``<Choice>`` is text); on import the text is mapped back to the
class of the :class:`~modelyard.labels.records.LabelSpec` whose text it is, so an integer
class comes back an integer. A choice that is no class's text is returned as it is, for the
validation to quarantine (never mapped to a near class). Row values that JSON cannot carry
are written as JSON can: dates and times as ISO text, ``NaN`` as ``null``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import math
import os
import re
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any
from xml.sax.saxutils import quoteattr

from modelyard.errors import DataError, ModelyardError
from modelyard.labels.formats import Rejected
from modelyard.labels.records import LabelRecord, LabelSpec, QueueItem

TASKS_FILE = "tasks.json"
CONFIG_FILE = "label-config.xml"
KEY_FIELD = "key"
"""The task data field holding the row key."""
ROW_FIELD = "row"
"""The task data field holding the row (a ``{column: value}`` object the ``<Table>`` shows)."""
CONTROL = "label"
"""The ``name`` of the ``<Choices>`` / ``<Number>`` control (``from_name`` in results)."""
SOURCE = "label-studio"

_XML_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")
"""Characters XML 1.0 cannot hold, even escaped."""
MAX_LOAD_BYTES = 2 * 1024**3
"""A Label Studio export larger than this is refused (it is read into memory)."""


# --------------------------------------------------------------------------- the config


def class_text(value: Any) -> str:
    """The text of a class as a ``<Choice>`` shows it and a result carries it (``str``, as
    the served model names its classes)."""
    return str(value)


def choice_map(spec: LabelSpec) -> dict[str, Any]:
    """``{choice text: class}`` of a classifier's spec; a clear error when two classes share
    a text or a class cannot be a ``<Choice>``."""
    if spec.classes is None:
        raise ModelyardError(
            f"the label spec of '{spec.target}' ({spec.task}) has no classes",
            expected="the classes of a classifier",
        )
    found: dict[str, Any] = {}
    for cls in spec.classes:
        text = class_text(cls)
        if not text.strip():
            raise ModelyardError(
                f"class {cls!r} of '{spec.target}' is empty or blank",
                where="Label Studio labelling config",
                expected="classes an annotator can see",
                fix="rename the class in the data, or map it to a visible name",
            )
        if _XML_FORBIDDEN.search(text):
            raise ModelyardError(
                f"class {cls!r} of '{spec.target}' holds a control character XML cannot carry",
                where="Label Studio labelling config",
                fix="rename the class in the data",
            )
        if text in found:
            raise ModelyardError(
                f"classes {found[text]!r} and {cls!r} of '{spec.target}' read the same "
                f"({text!r}) in Label Studio",
                where="Label Studio labelling config",
                expected="classes that differ as text",
                fix="make the target's values distinct as text (e.g. do not mix 1 and '1')",
            )
        found[text] = cls
    return found


def _attr(value: str) -> str:
    """An XML attribute value, quoted, with tabs and line breaks kept (not normalised away)."""
    return quoteattr(value, {"\n": "&#10;", "\r": "&#13;", "\t": "&#9;"})


def label_config(spec: LabelSpec) -> str:
    """The labelling config XML: a ``<Table>`` of the row and the control of the task."""
    header = f"Label '{spec.target}'" if spec.target else "Label the row"
    lines = [
        "<View>",
        f"  <Header value={_attr(header)}/>",
        f'  <Table name="{ROW_FIELD}" value="${ROW_FIELD}"/>',
    ]
    if spec.task == "regression":
        lines.append(
            f'  <Number name="{CONTROL}" toName="{ROW_FIELD}" step="any" required="true"/>'
        )
    elif spec.task in ("binary", "multiclass"):
        lines.append(
            f'  <Choices name="{CONTROL}" toName="{ROW_FIELD}" choice="single" '
            'showInline="true" required="true">'
        )
        lines += [f"    <Choice value={_attr(text)}/>" for text in choice_map(spec)]
        lines.append("  </Choices>")
    else:
        raise ModelyardError(
            f"unknown task {spec.task!r} in the label spec of '{spec.target}'",
            expected="binary, multiclass or regression",
        )
    lines.append("</View>")
    return "\n".join(lines) + "\n"


def result_of(spec_task: str, value: Any, *, from_name: str = CONTROL, to_name: str = ROW_FIELD,
              kind: str | None = None) -> dict[str, Any]:  # fmt: skip
    """One result item of a prediction or annotation in Label Studio's format."""
    if (kind or ("number" if spec_task == "regression" else "choices")) == "number":
        return {"from_name": from_name, "to_name": to_name, "type": "number",
                "value": {"number": value}}  # fmt: skip
    return {"from_name": from_name, "to_name": to_name, "type": "choices",
            "value": {"choices": [class_text(value)]}}  # fmt: skip


# --------------------------------------------------------------------------- export


def _json_value(value: Any) -> Any:
    """A row value as JSON carries it (dates as ISO text, non-finite numbers as null)."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    item = getattr(value, "item", None)  # numpy scalars
    if callable(item):
        return _json_value(item())
    if isinstance(value, Mapping):
        return {str(k): _json_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_value(v) for v in value]
    return str(value)


def task_of(item: QueueItem, spec: LabelSpec, rank: int) -> dict[str, Any]:
    """The Label Studio task of one queue item."""
    meta: dict[str, Any] = {"rank": rank, "score": _json_value(item.score),
                            "reason": item.reason, "model_version": item.model_version}  # fmt: skip
    task: dict[str, Any] = {
        "data": {
            KEY_FIELD: item.key,
            ROW_FIELD: {str(k): _json_value(v) for k, v in item.row.items()},
        },
    }
    if item.prediction is not None:
        prediction: dict[str, Any] = {
            "model_version": item.model_version,
            "result": [result_of(spec.task, _json_value(item.prediction))],
        }
        if item.probabilities:
            confidence = _confidence(item.prediction, item.probabilities)
            if confidence is not None:
                prediction["score"] = confidence
        task["predictions"] = [prediction]
    task["meta"] = {"modelyard": meta}
    return task


def _confidence(prediction: Any, probabilities: Mapping[Any, float]) -> float | None:
    text = class_text(prediction)
    for cls, p in probabilities.items():
        if class_text(cls) == text and isinstance(p, int | float) and math.isfinite(p):
            return float(p)
    finite = [
        float(p) for p in probabilities.values() if isinstance(p, int | float) and math.isfinite(p)
    ]
    return max(finite) if finite else None


def export(items: Sequence[QueueItem], spec: LabelSpec, out: Path) -> list[Path]:
    """Write ``tasks.json`` and ``label-config.xml`` into ``out``; returns both paths.

    Both files are complete before they are visible (temporary name, then rename): a failure
    leaves no half-written file. Keys must be unique: a label is matched back on its key.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ModelyardError("the export destination is a file", where=str(out),
                             expected="a folder (created if missing)")  # fmt: skip
    config = label_config(spec)
    classes = choice_map(spec) if spec.task != "regression" else None
    seen: dict[str, int] = {}
    tasks = []
    for rank, item in enumerate(items, 1):
        if not isinstance(item.key, str) or not item.key:
            raise ModelyardError(f"queue item {rank} has no row key", where="label export",
                                 found=repr(item.key))  # fmt: skip
        if item.key in seen:
            raise ModelyardError(
                f"row key {item.key!r} appears twice in the queue (items {seen[item.key]} and {rank})",
                where="label export", fix="deduplicate the queue before exporting",
            )  # fmt: skip
        seen[item.key] = rank
        if (
            classes is not None
            and item.prediction is not None
            and class_text(item.prediction) not in classes
        ):
            raise ModelyardError(
                    f"queue item {rank} (key {item.key!r}) predicts {item.prediction!r}, not a class",
                    where="label export", expected="one of " + ", ".join(map(repr, classes.values())),
                )  # fmt: skip
        tasks.append(task_of(item, spec, rank))
    body = json.dumps(tasks, ensure_ascii=False, allow_nan=False, indent=1)
    out.mkdir(parents=True, exist_ok=True)
    written = [
        _write_atomic(out / TASKS_FILE, body + "\n"),
        _write_atomic(out / CONFIG_FILE, config),
    ]
    return written


def _write_atomic(path: Path, text: str) -> Path:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}-", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        Path(tmp).replace(path)
    except BaseException:
        with contextlib.suppress(OSError):
            Path(tmp).unlink()
        raise
    return path


# --------------------------------------------------------------------------- import


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def read_export(path: Path) -> list[Any]:
    """The tasks of a Label Studio JSON export; a :class:`DataError` for anything else."""
    path = Path(path)
    if not path.is_file():
        raise DataError("the Label Studio export does not exist or is not a file", where=str(path),
                        fix="export the project as JSON in Label Studio and give that file")  # fmt: skip
    size = path.stat().st_size
    if size > MAX_LOAD_BYTES:
        raise DataError(f"the Label Studio export is {size / 1024**3:.1f} GiB", where=str(path),
                        expected=f"at most {MAX_LOAD_BYTES // 1024**3} GiB",
                        fix="export fewer tasks at a time (e.g. only the annotated ones)")  # fmt: skip
    try:
        text = path.read_bytes().decode("utf-8-sig")
        payload = json.loads(text, parse_constant=_reject_constant)
    except UnicodeDecodeError as exc:
        raise DataError(f"the Label Studio export is not UTF-8 text ({exc.reason} at byte {exc.start})",
                        where=str(path), fix="give the file Label Studio's JSON export wrote") from None  # fmt: skip
    except RecursionError:
        raise DataError("the Label Studio export nests too deeply to be a task list",
                        where=str(path)) from None  # fmt: skip
    except ValueError as exc:
        raise DataError(f"the Label Studio export is not valid JSON ({exc})", where=str(path),
                        fix="export the project in Label Studio's 'JSON' format "
                            "(not JSON-MIN, CSV or TSV)") from None  # fmt: skip
    if isinstance(payload, dict) and "data" in payload:
        payload = [payload]  # one task, as the API returns it
    if not isinstance(payload, list):
        raise DataError("the Label Studio export is not a list of tasks", where=str(path),
                        expected="a JSON array of tasks (Label Studio's 'JSON' export)",
                        found=f"a JSON {type(payload).__name__}")  # fmt: skip
    return payload


def load(path: Path, spec: LabelSpec) -> tuple[list[LabelRecord], list[Rejected]]:
    """The labels of a Label Studio JSON export, and what gave no label (with the reason)."""
    return records_of_tasks(read_export(path), spec, where=str(path), source=SOURCE)


def records_of_tasks(
    tasks: Iterable[Any], spec: LabelSpec, *, where: str, source: str
) -> tuple[list[LabelRecord], list[Rejected]]:
    """:func:`load` on tasks already parsed (a list of task objects)."""
    records: list[LabelRecord] = []
    rejected: list[Rejected] = []
    choices = choice_map(spec) if spec.task != "regression" else {}
    for n, task in enumerate(tasks):
        at = f"{where}: task {n}"
        if not isinstance(task, dict):
            rejected.append(Rejected(at, f"a task must be a JSON object, not {_kind(task)}", task))
            continue
        if task.get("id") is not None:
            at = f"{where}: task {n} (id {task['id']})"
        key, problem = key_of(task)
        if key is None:
            rejected.append(Rejected(at, problem or "no row key", _short(task)))
            continue
        annotations = task.get("annotations")
        if annotations is None or annotations == []:
            rejected.append(Rejected(at, f"row {key!r} has no annotation yet", _short(task)))
            continue
        if not isinstance(annotations, list):
            rejected.append(Rejected(at, f"'annotations' must be a list, not {_kind(annotations)}", _short(task)))  # fmt: skip
            continue
        for i, annotation in enumerate(annotations):
            record = record_of(annotation, key, task, spec, choices, source=source)
            if isinstance(record, str):
                rejected.append(Rejected(f"{at}, annotation {i}", record, annotation))
            else:
                records.append(record)
    return records, rejected


def key_of(task: Mapping[str, Any]) -> tuple[str, None] | tuple[None, str]:
    """The row key of a task, or why it has none."""
    data = task.get("data")
    if not isinstance(data, dict):
        return None, "the task has no 'data' object"
    key = data.get(KEY_FIELD)
    if isinstance(key, bool) or key is None:
        return None, (f"the task's data has no '{KEY_FIELD}' (the row key modelyard exported); "
                      "only tasks exported by modelyard can be matched back to rows")  # fmt: skip
    if isinstance(key, int):
        return str(key), None
    if not isinstance(key, str) or not key:
        return None, f"the task's '{KEY_FIELD}' must be non-empty text, not {_kind(key)}"
    return key, None


def record_of(
    annotation: Any,
    key: str,
    task: Mapping[str, Any],
    spec: LabelSpec,
    choices: Mapping[str, Any],
    *,
    source: str,
) -> LabelRecord | str:
    """The label record of one annotation, or the reason there is none."""
    if not isinstance(annotation, dict):
        return f"an annotation must be a JSON object, not {_kind(annotation)}"
    if annotation.get("was_cancelled") is True:
        return f"row {key!r} was skipped by the annotator (was_cancelled)"
    result = annotation.get("result")
    if not isinstance(result, list):
        return f"the annotation has no 'result' list (found {_kind(result)})"
    value, problem = _label_of(result, spec, choices)
    if problem is not None:
        return problem
    when = None
    for name in ("updated_at", "created_at"):
        text = annotation.get(name)
        if isinstance(text, str) and text:
            try:
                when = dt.datetime.fromisoformat(text)
            except ValueError:
                return f"'{name}' is not an ISO date-time: {text[:40]!r}"
            break
    if when is None:
        return "the annotation has no 'updated_at' or 'created_at'"
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    extra: dict[str, Any] = {}
    for name in ("id", "project", "lead_time", "ground_truth"):
        if annotation.get(name) is not None and isinstance(
            annotation[name], str | int | float | bool
        ):
            extra["annotation" if name == "id" else name] = annotation[name]
    parent = annotation.get("parent_prediction")
    if isinstance(parent, int):
        extra["parent_prediction"] = parent
    task_id = task.get("id")
    return LabelRecord(
        key=key, label=value, annotator=annotator_of(annotation.get("completed_by")), at=when,
        source=source, task=None if task_id is None else str(task_id), extra=extra,
    )  # fmt: skip


def annotator_of(completed_by: Any) -> str:
    """Who annotated: the e-mail when the export expands the user, else ``user <id>``."""
    if isinstance(completed_by, dict):
        for name in ("email", "username"):
            if isinstance(completed_by.get(name), str) and completed_by[name]:
                return str(completed_by[name])
        completed_by = completed_by.get("id")
    if isinstance(completed_by, int) and not isinstance(completed_by, bool):
        return f"user {completed_by}"
    if isinstance(completed_by, str) and completed_by:
        return completed_by
    return "unknown"


def _label_of(
    result: list[Any], spec: LabelSpec, choices: Mapping[str, Any]
) -> tuple[Any, str | None]:
    kind = "number" if spec.task == "regression" else "choices"
    items = [r for r in result if isinstance(r, dict) and r.get("type") == kind]
    if not items:
        other = sorted({str(r.get("type")) for r in result if isinstance(r, dict)})
        if not result:
            return None, "the annotation's result is empty (submitted without a label)"
        return None, f"the annotation has no {kind} result (found: {', '.join(other) or 'none'})"
    if len(items) > 1:
        ours = [r for r in items if r.get("from_name") == CONTROL]
        if len(ours) != 1:
            return None, f"the annotation has {len(items)} {kind} results; expected one"
        items = ours
    value = items[0].get("value")
    if not isinstance(value, dict):
        return None, f"the {kind} result has no 'value' object"
    if kind == "number":
        number = value.get("number")
        if number is None:
            return None, "the number result has no 'number'"
        return number, None
    picked = value.get("choices")
    if not isinstance(picked, list) or not picked:
        return None, "the choices result picks no choice"
    if len(picked) > 1:
        return (
            None,
            f"the annotation picks {len(picked)} choices ({picked[:5]}); one class is expected",
        )
    text = picked[0]
    if not isinstance(text, str):
        return text, None  # not text: the validation says it is no class
    return choices.get(text, text), None


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _short(task: Mapping[str, Any]) -> Any:
    """What a rejection keeps of a task: enough to find it, not the whole row."""
    return {k: task[k] for k in ("id", "data") if k in task}
