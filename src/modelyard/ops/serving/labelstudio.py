"""A Label Studio ML backend inside ``modelyard serve``: pre-annotations from the served model,
and the annotations Label Studio sends back appended to the label set.

Label Studio talks to an ML backend at a URL it is given, by appending ``health``, ``setup``,
``predict`` and ``webhook`` to it (label-studio-ml-backend's protocol, as Label Studio 1.23
sends it). These routes live under :data:`PREFIX`, so the URL to give Label Studio is
``http://HOST:PORT/label-studio`` (the server's own ``/predict`` and ``/health`` stay as they
are).

==============================================  =============================================
``GET  /label-studio/health`` (and ``/``)       ``{"status": "UP", "model_class", "model_version"}``
                                                once the model is loaded (503 before)
``POST /label-studio/setup``                    ``{project, schema, ...}`` -> ``{"model_version"}``;
                                                422 when the labelling config cannot take the
                                                model's answers (no ``<Choices>`` offering every
                                                class, or no ``<Number>`` for a regressor)
``POST /label-studio/predict``                  ``{tasks: [{id, data}], label_config, ...}`` ->
                                                ``{"results": [{result, score, model_version}]}``,
                                                one per task, in order
``GET  /label-studio/predict/progress``         the batches being predicted and the last ones done
``POST /label-studio/webhook``                  Label Studio's webhook events: annotations created
                                                or updated are appended to the label set
==============================================  =============================================

``/predict`` is synchronous, as Label Studio's protocol is: Label Studio sends every selected
task in one request and waits (up to ``ML_TIMEOUT_PREDICT``, 100 s by default) for the
answer, then stores the predictions; it never polls a job. A job id would therefore give Label
Studio nothing; instead a large batch is predicted in chunks off the event loop, and
``/predict/progress`` shows, while it runs, how many tasks of each batch are done (for a person
or a script watching a large pre-annotation). A task whose row breaks the data contract gets
an entry without ``result`` (Label Studio skips it and logs the ``error``), so the answer keeps
one entry per task.

A task's row is ``data.row`` (what ``modelyard label export`` writes) or, for tasks imported
into Label Studio by other means, the task's ``data`` itself; fields that are not model inputs
(the row key, ids, the target) are left out before the row is checked.

Webhooks: Label Studio creates a webhook to ``<backend URL>/webhook`` for every action when a
backend is connected. ``ANNOTATION_CREATED``, ``ANNOTATION_UPDATED`` and
``ANNOTATIONS_CREATED`` append their annotations to the label set, each as a
:class:`~modelyard.labels.records.LabelRecord` with the annotator and the time; a skipped
(cancelled) annotation appends nothing. Every other action is answered 200 and ignored. A
payload that cannot be read, a task without the row key, or a label that is not one of the
model's classes (not a finite number for a regressor) is a 4xx with the reasons, and nothing
of the payload is appended.

Auth: with a serving token, Label Studio's "Basic Authentication" (any user name, the token as
password) is accepted on these routes besides the bearer token.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hmac
import math
import threading
import time
import xml.etree.ElementTree as ET
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import Request  # resolved by FastAPI from this module's globals

if TYPE_CHECKING:
    from fastapi import FastAPI
    from fastapi.responses import Response

    from modelyard.labels.records import LabelRecord, LabelSpec
    from modelyard.ops.serving.app import Server, ServeSettings
    from modelyard.ops.serving.model import ServedModel

PREFIX = "/label-studio"
ROUTES = frozenset(
    PREFIX + p for p in ("", "/", "/health", "/setup", "/predict", "/predict/progress", "/webhook")
)
"""Paths of the backend (for the request metrics' ``route`` label)."""
SETTINGS_KEY = "label_studio"
"""Key of :attr:`ServeSettings.extra` holding :class:`LabelStudioOptions` as a dict."""
ANNOTATION_EVENTS = frozenset({"ANNOTATION_CREATED", "ANNOTATION_UPDATED", "ANNOTATIONS_CREATED"})
MAX_CONFIG_CHARS = 1_000_000
_FINISHED_KEPT = 20


@dataclass(frozen=True)
class LabelStudioOptions:
    """The backend's settings (in ``ServeSettings.extra["label_studio"]``)."""

    labels: str | None = None
    """Folder of the label set webhooks append to; ``None``: webhooks are refused (409)."""
    max_body_bytes: int = 64 * 1024 * 1024
    """Largest request body on these routes (Label Studio sends every selected task at once)."""
    max_tasks: int = 100_000
    """Most tasks in one ``/predict``."""
    chunk_tasks: int = 2_000
    """Tasks predicted at a time (the progress advances by this much)."""

    @classmethod
    def of(cls, settings: ServeSettings) -> LabelStudioOptions:
        given = settings.extra.get(SETTINGS_KEY) or {}
        return cls(**given) if isinstance(given, dict) else cls()


def is_backend_path(path: str) -> bool:
    return path == PREFIX or path.startswith(PREFIX + "/")


def body_limit(settings: ServeSettings, path: str) -> int:
    """The body limit of ``path``: the backend's own on its routes, the server's elsewhere."""
    if is_backend_path(path):
        return LabelStudioOptions.of(settings).max_body_bytes
    return settings.max_body_bytes


def basic_auth_ok(path: str, header: bytes, token: str | None) -> bool:
    """Label Studio's basic auth on the backend's routes: the password must be the token."""
    if token is None or not is_backend_path(path) or header[:6].lower() != b"basic ":
        return False
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True)
    except (binascii.Error, ValueError):
        return False
    _, sep, password = decoded.partition(b":")
    return bool(sep) and hmac.compare_digest(password, token.encode())


# --------------------------------------------------------------------------- labelling config


@dataclass(frozen=True)
class Control:
    """What the labelling config asks for: the control's names, kind and choices."""

    from_name: str
    to_name: str
    kind: str  # "choices" or "number"
    choices: frozenset[str] = frozenset()


class ConfigProblem(ValueError):
    pass


def parse_config(config: str) -> Control:
    """The ``<Choices>`` or ``<Number>`` control of a labelling config."""
    if len(config) > MAX_CONFIG_CHARS:
        raise ConfigProblem(f"the labelling config is longer than {MAX_CONFIG_CHARS} characters")
    if "<!DOCTYPE" in config.upper() or "<!ENTITY" in config.upper():
        raise ConfigProblem("the labelling config declares a DOCTYPE or entities; none is needed")
    try:
        root = ET.fromstring(config)
    except ET.ParseError as exc:
        raise ConfigProblem(f"the labelling config is not XML ({exc})") from None
    controls = [e for e in root.iter() if e.tag in ("Choices", "Number")]
    if not controls:
        raise ConfigProblem("the labelling config has no <Choices> or <Number> control")
    ours = [e for e in controls if e.get("name") == "label"]
    element = (ours or controls)[0]
    from_name, to_name = element.get("name"), element.get("toName")
    if not from_name or not to_name:
        raise ConfigProblem(f"the <{element.tag}> control needs a name and a toName")
    if element.tag == "Number":
        return Control(from_name, to_name, "number")
    choices = frozenset(c.get("alias") or c.get("value") or "" for c in element.iter("Choice")) - {
        ""
    }
    return Control(from_name, to_name, "choices", choices)


# --------------------------------------------------------------------------- the backend


class Backend:
    """State of the backend routes of one server process."""

    def __init__(self, server: Server, options: LabelStudioOptions) -> None:
        self.server = server
        self.options = options
        self._configs: OrderedDict[str, Control] = OrderedDict()
        self._lock = threading.Lock()
        self._append_lock = threading.Lock()
        self.running: dict[str, dict[str, Any]] = {}
        self.finished: list[dict[str, Any]] = []

    # ------------------------------------------------------------------ helpers

    def model(self) -> ServedModel:
        from modelyard.ops.serving.app import BadRequest

        model = self.server.holder.current
        if model is None:
            raise BadRequest(503, "not_ready", "the model is not loaded yet")
        return model

    @staticmethod
    def model_version(model: ServedModel) -> str:
        return f"{model.name} v{model.version}"

    def control(self, config: Any, model: ServedModel) -> Control:
        """The config's control, checked against the model (cached by config text)."""
        from modelyard.ops.serving.app import BadRequest

        if config is None or config == "":
            kind = "number" if model.classes is None else "choices"
            return Control("label", "row", kind, frozenset(model.classes or ()))
        if not isinstance(config, str):
            raise BadRequest(422, "bad_label_config", "label_config must be the config's XML text")
        with self._lock:
            cached = self._configs.get(config)
            if cached is not None:
                self._configs.move_to_end(config)
                return cached
        try:
            control = parse_config(config)
        except ConfigProblem as exc:
            raise BadRequest(422, "bad_label_config", str(exc)) from None
        if model.classes is None and control.kind != "number":
            raise BadRequest(
                422, "bad_label_config",
                f"model {model.name} is a regressor: the labelling config needs a <Number> control",
            )  # fmt: skip
        if model.classes is not None:
            if control.kind != "choices":
                raise BadRequest(
                    422, "bad_label_config",
                    f"model {model.name} is a classifier: the labelling config needs <Choices>",
                )  # fmt: skip
            missing = [c for c in model.classes if _text(c) not in control.choices]
            if missing:
                raise BadRequest(
                    422, "bad_label_config",
                    f"the <Choices> of the labelling config do not offer the classes {missing} "
                    f"of model {model.name}; generate the config with modelyard label export",
                )  # fmt: skip
        with self._lock:
            self._configs[config] = control
            while len(self._configs) > 32:
                self._configs.popitem(last=False)
        return control

    def spec(self, model: ServedModel) -> LabelSpec:
        from modelyard.labels.records import LabelSpec

        contract = model.contract
        target = contract.target or "target"
        classes: tuple[Any, ...] | None = None
        if model.classes is not None:
            typ = next((c.type for c in contract.columns if c.name == target), "str")
            classes = tuple(_typed_class(c, typ) for c in model.classes)
        return LabelSpec(target=target, task=model.task, classes=classes,
                         features=tuple(model.features))  # fmt: skip

    # ------------------------------------------------------------------ routes' work

    def health(self) -> tuple[int, dict[str, Any]]:
        model = self.server.holder.current
        if model is None:
            return 503, {"status": "DOWN", "detail": "the model is not loaded yet"}
        return 200, {"status": "UP", "model_class": "modelyard", "model_version": self.model_version(model)}  # fmt: skip

    def setup(self, payload: Any) -> dict[str, Any]:
        from modelyard.ops.serving.app import BadRequest

        if not isinstance(payload, dict):
            raise BadRequest(422, "bad_setup", "send a JSON object {project, schema, ...}")
        model = self.model()
        self.control(payload.get("schema"), model)
        return {"model_version": self.model_version(model)}

    def predict(self, payload: Any, request_id: str) -> dict[str, Any]:
        """One entry per task: a prediction, or an ``error`` Label Studio logs and skips."""
        from modelyard.ops.serving.app import BadRequest

        if not isinstance(payload, dict) or not isinstance(payload.get("tasks"), list):
            raise BadRequest(422, "bad_tasks", "send {tasks: [{id, data}, ...], label_config}")
        tasks = payload["tasks"]
        if len(tasks) > self.options.max_tasks:
            raise BadRequest(413, "too_many_tasks",
                             f"{len(tasks)} tasks, more than {self.options.max_tasks} at once")  # fmt: skip
        model = self.model()
        control = self.control(payload.get("label_config"), model)
        version = self.model_version(model)
        started = time.time()
        progress: dict[str, Any] = {"id": request_id, "project": str(payload.get("project", ""))[:64],
                    "tasks": len(tasks), "done": 0, "started": started}  # fmt: skip
        with self._lock:
            self.running[request_id] = progress
        try:
            results: list[dict[str, Any]] = []
            step = max(1, self.options.chunk_tasks)
            for start in range(0, len(tasks), step):
                results += self._predict_chunk(tasks[start : start + step], model, control, version)
                progress["done"] = len(results)
        finally:
            with self._lock:
                self.running.pop(request_id, None)
                progress["seconds"] = round(time.time() - started, 3)
                self.finished.append(progress)
                del self.finished[:-_FINISHED_KEPT]
        return {"results": results, "model_version": version}

    def _predict_chunk(
        self, tasks: list[Any], model: ServedModel, control: Control, version: str
    ) -> list[dict[str, Any]]:
        known = frozenset(model.checker.names)
        rows: list[dict[str, Any]] = []
        errors: dict[int, str] = {}
        for i, task in enumerate(tasks):
            data = task.get("data") if isinstance(task, dict) else None
            if not isinstance(data, dict):
                errors[i] = "the task has no 'data' object"
                rows.append({})
                continue
            nested = data.get("row")
            row: dict[str, Any] = nested if isinstance(nested, dict) else data
            rows.append({k: v for k, v in row.items() if k in known})
        checked = model.checker.check_many(rows)
        lenient = self.server.settings.lenient
        good = [
            i for i, c in enumerate(checked) if i not in errors and (lenient or not c.violations)
        ]
        for i, c in enumerate(checked):
            if i not in errors and i not in good:
                errors[i] = "the row breaks the data contract: " + "; ".join(
                    v.message for v in c.violations[:10]
                )
        out: list[dict[str, Any]] = [
            {"model_version": version, "error": errors[i]} if i in errors else {}
            for i in range(len(tasks))
        ]
        if good:
            pred = model.predict([checked[i].values for i in good])
            probs = pred.probabilities
            for n, i in enumerate(good):
                value = pred.predictions[n]
                entry: dict[str, Any] = {"model_version": version}
                if control.kind == "number":
                    if value is None:
                        out[i] = {**entry, "error": "the model gave no finite value"}
                        continue
                    entry["result"] = [{"from_name": control.from_name, "to_name": control.to_name,
                                        "type": "number", "value": {"number": value}}]  # fmt: skip
                else:
                    text = _text(value)
                    entry["result"] = [{"from_name": control.from_name, "to_name": control.to_name,
                                        "type": "choices", "value": {"choices": [text]}}]  # fmt: skip
                    if probs is not None:
                        p = probs[n].get(text)
                        if p is not None and math.isfinite(p):
                            entry["score"] = p
                out[i] = entry
        return out

    def progress(self) -> dict[str, Any]:
        now = time.time()
        with self._lock:
            running = [{**p, "seconds": round(now - float(p["started"]), 3)} for p in self.running.values()]  # fmt: skip
            finished = list(self.finished)
        return {"running": running, "finished": finished}

    def webhook(self, payload: Any) -> tuple[int, dict[str, Any]]:
        from modelyard.labels.formats import labelstudio as fmt
        from modelyard.ops.serving.app import BadRequest

        if not isinstance(payload, dict) or not isinstance(payload.get("action"), str):
            raise BadRequest(
                422, "bad_webhook", "send Label Studio's webhook payload {action, ...}"
            )
        action = payload["action"]
        if action not in ANNOTATION_EVENTS:
            return 200, {"status": "ignored", "action": action[:64]}
        if self.options.labels is None:
            raise BadRequest(409, "no_label_set",
                             "this server keeps no label set: start modelyard serve with --labels DIR")  # fmt: skip
        model = self.model()
        spec = self.spec(model)
        choices = fmt.choice_map(spec) if spec.classes is not None else {}
        pairs = _annotation_pairs(payload, action)
        records: list[LabelRecord] = []
        skipped: list[str] = []
        problems: list[dict[str, Any]] = []
        for n, (annotation, task) in enumerate(pairs):
            where = f"annotation {n}"
            if isinstance(annotation, dict) and annotation.get("id") is not None:
                where = f"annotation {str(annotation['id'])[:32]}"
            if not isinstance(task, dict):
                problems.append({"annotation": where, "message": "the payload has no task object for it"})  # fmt: skip
                continue
            key, problem = fmt.key_of(task)
            if key is None:
                problems.append({"annotation": where, "message": problem})
                continue
            got = fmt.record_of(annotation, key, task, spec, choices, source="label-studio-webhook")
            if isinstance(got, str):
                if isinstance(annotation, dict) and annotation.get("was_cancelled") is True:
                    skipped.append(got)
                else:
                    problems.append({"annotation": where, "message": got})
                continue
            message = _bad_label(got.label, spec)
            if message is not None:
                problems.append({"annotation": where, "message": message})
                continue
            project = payload.get("project")
            extra = dict(got.extra, event=action)
            if isinstance(project, dict) and isinstance(project.get("id"), int):
                extra["project"] = project["id"]
            records.append(_with_extra(got, extra))
        if problems:
            raise BadRequest(422, "bad_annotation", f"{len(problems)} annotation(s) give no label; nothing was appended", problems)  # fmt: skip
        if not pairs:
            raise BadRequest(422, "bad_webhook", f"the {action} payload holds no annotation")
        version = self._append(records) if records else None
        return 201, {"status": "ok", "appended": len(records), "skipped": skipped[:100],
                     "label_set_version": version}  # fmt: skip

    def _append(self, records: list[LabelRecord]) -> int:
        from modelyard.errors import DataError
        from modelyard.labels.store import LabelSet

        label_set = LabelSet(Path(self.options.labels or "."))
        with self._append_lock:  # one writer per process; retry when another process won
            for attempt in range(10):
                try:
                    return label_set.append(records)
                except DataError:
                    if attempt == 9:
                        raise
                    time.sleep(0.01 * (attempt + 1))
        raise AssertionError("unreachable")


def _annotation_pairs(payload: Mapping[str, Any], action: str) -> list[tuple[Any, Any]]:
    from modelyard.ops.serving.app import BadRequest

    annotation, task = payload.get("annotation"), payload.get("task")
    if action != "ANNOTATIONS_CREATED":
        if not isinstance(annotation, dict):
            raise BadRequest(422, "bad_webhook", f"the {action} payload has no 'annotation' object")
        return [(annotation, task)]
    if not isinstance(annotation, list):
        raise BadRequest(422, "bad_webhook", "the ANNOTATIONS_CREATED payload has no 'annotation' list")  # fmt: skip
    tasks = task if isinstance(task, list) else [task] if isinstance(task, dict) else []
    by_id = {t.get("id"): t for t in tasks if isinstance(t, dict) and t.get("id") is not None}
    pairs = []
    for a in annotation:
        ref = a.get("task") if isinstance(a, dict) else None
        if isinstance(ref, dict):
            ref = ref.get("id")
        pairs.append(
            (a, by_id.get(ref) if ref is not None else (tasks[0] if len(tasks) == 1 else None))
        )
    return pairs


def _with_extra(record: LabelRecord, extra: dict[str, Any]) -> LabelRecord:
    from dataclasses import replace

    return replace(record, extra=extra)


def _bad_label(label: Any, spec: LabelSpec) -> str | None:
    if spec.classes is not None:
        if any(type(label) is type(c) and label == c for c in spec.classes):
            return None
        shown = ", ".join(repr(c) for c in spec.classes[:20])
        return f"{label!r} is not one of the classes ({shown})"
    if isinstance(label, bool) or not isinstance(label, int | float):
        return f"{label!r} is not a number"
    with contextlib.suppress(OverflowError):
        if math.isfinite(label):
            return None
    return f"{label!r} is not a finite number"


def _text(value: Any) -> str:
    from modelyard.labels.formats.labelstudio import class_text

    return class_text(value)


def _typed_class(value: str, typ: str) -> Any:
    """A served class (text) as the target column's type gives it."""
    if typ == "int":
        with contextlib.suppress(ValueError):
            return int(value)
    if typ == "bool" and value.lower() in ("true", "false"):
        return value.lower() == "true"
    if typ == "float":
        with contextlib.suppress(ValueError):
            return float(value)
    return value


# --------------------------------------------------------------------------- routes


def mount(app: FastAPI, server: Server) -> Backend:
    """Add the backend's routes to ``app``."""
    from modelyard.ops.serving.app import (
        BadRequest,
        _error,
        _json_response,
        _read_body,
        _request_id,
        _require_json,
        _threadpool,
    )

    backend = Backend(server, LabelStudioOptions.of(server.settings))
    run_in_threadpool = _threadpool()

    async def body_of(request: Request) -> Any:
        body = await _read_body(request)
        _require_json(request.headers.get("content-type", ""), "application/json")
        return server.parse(body, limit=backend.options.max_body_bytes)

    async def answer(request: Request, work: Any, *, threaded: bool = False) -> Response:
        request_id = _request_id(request)
        try:
            payload = await body_of(request)
            if threaded:
                status, result = await run_in_threadpool(work, payload, request_id)
            else:
                status, result = work(payload, request_id)
            return _json_response(result, status=status, headers={"X-Request-ID": request_id})
        except BadRequest as exc:
            server.metrics.rejected.labels(exc.reason).inc()
            return _error(exc, request_id)
        except Exception:
            import logging

            logging.getLogger("modelyard.serving").exception("Label Studio request %s failed", request_id)  # fmt: skip
            return _error(BadRequest(500, "internal_error", "the server failed on this request"), request_id)  # fmt: skip

    @app.get(PREFIX + "/health", include_in_schema=False, response_model=None)
    @app.get(PREFIX + "/", include_in_schema=False, response_model=None)
    @app.get(PREFIX, response_model=None, tags=["label-studio"])
    async def ls_health() -> Response:
        """Label Studio ML backend: health."""
        status, body = backend.health()
        return _json_response(body, status=status)

    @app.post(PREFIX + "/setup", response_model=None, tags=["label-studio"])
    async def ls_setup(request: Request) -> Response:
        """Label Studio ML backend: check the labelling config, answer the model version."""
        return await answer(request, lambda p, _: (200, backend.setup(p)))

    @app.post(PREFIX + "/predict", response_model=None, tags=["label-studio"])
    async def ls_predict(request: Request) -> Response:
        """Label Studio ML backend: pre-annotate tasks (one result per task, in order)."""
        return await answer(request, lambda p, rid: (200, backend.predict(p, rid)), threaded=True)

    @app.get(PREFIX + "/predict/progress", response_model=None, tags=["label-studio"])
    async def ls_progress() -> Response:
        """Batches being pre-annotated (tasks done of tasks) and the last ones finished."""
        return _json_response(backend.progress())

    @app.post(PREFIX + "/webhook", response_model=None, tags=["label-studio"])
    async def ls_webhook(request: Request) -> Response:
        """Label Studio webhooks: annotations are appended to the label set."""
        return await answer(request, lambda p, _: backend.webhook(p), threaded=True)

    app.state.label_studio = backend
    return backend
