"""The FastAPI application of ``modelyard serve``.

Routes
------

======================  ===================================================================
``POST /predict``       one record (a JSON object) or a batch (a JSON array of objects);
                        answers ``{request_id, model: {name, version}, predictions: [{prediction,
                        probabilities?, violations?, drift?}]}``
``GET  /health``        the process is alive (always 200)
``GET  /ready``         the model is loaded and the prediction log writes (200), or not (503)
``GET  /metrics``       Prometheus text exposition (see :mod:`.metrics`)
``GET  /model``         name, version, task, classes, metrics, tags and contract of the model
``POST /feedback``      ``{request_id, labels: [...]}`` (or ``label`` + ``row``): ground truth
``POST /reload``        check the registry now and switch if the alias moved
``GET  /ping``          SageMaker health check (200 when ready)
``POST /invocations``   SageMaker inference: JSON as ``/predict`` (also ``{"instances": [..]}``
                        / ``{"dataframe_records": [..]}``) or ``text/csv`` rows in the order of
                        the request schema, without a header
``GET  /docs``          the API docs (Swagger UI, served by this server: they work offline;
                        :mod:`.docs`); ``GET /openapi.json`` the OpenAPI document, whose
                        example record is a typical training row (medians, most frequent values)
======================  ===================================================================

Bad requests never reach the model, and never cost a 500 or the connection: malformed JSON,
``NaN``/``Infinity`` literals, bodies nested too deeply, strings with a lone surrogate
(``"\\ud800"``) and empty bodies are 400; a ``Content-Type`` other than JSON is 415 (no header
counts as JSON; ``/invocations`` also takes ``text/csv``); type errors, missing required
fields, the declared ``validation.checks`` of modelyard.yaml, an empty batch or a non-object
record are 422 with one entry per broken rule (``{record, column, check, message}``); bodies
over ``max_body_bytes`` (by ``Content-Length`` or while streaming a chunked body) and batches
over ``max_batch_rows`` are 413 (the HTTP server discards the rest of the body: the
connection stays usable); a missing or wrong bearer token is 401; more than
``max_concurrency`` requests in flight are shed with 503 + ``Retry-After`` (``/health``,
``/ready``, ``/ping`` and ``/metrics`` are never shed). With ``lenient`` the offending values
are treated as missing, the records are predicted and the violations are returned with each
prediction (status ``flagged`` in the log).

A value outside the training range of its column, or a category never seen in training, is
drift, not an error: the record is predicted, the prediction carries ``drift: [{column,
check, message}]`` and ``modelyard_drifted_values_total{column, check}`` counts it (the same
rule as batch scoring, :func:`modelyard.data.validation.validate` with ``mode="score"``).

Reload: each process polls the registry every ``reload.poll_seconds`` (and on ``POST
/reload``); when the alias points to another version, the new one is loaded and checked in the
background and then swapped in with one reference assignment: requests in flight finish on
the version they started with, none is dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import gc
import hmac
import json
import logging
import math
import os
import re
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import Response

from modelyard.ops.registry import parse_model_ref
from modelyard.ops.serving import labelstudio
from modelyard.ops.serving.docs import ASSET_PATHS as DOCS_ASSET_PATHS
from modelyard.ops.serving.docs import add_docs
from modelyard.ops.serving.metrics import Metrics
from modelyard.ops.serving.model import ModelHolder, ServedModel
from modelyard.ops.serving.predlog import LogOptions, PredictionLog, dumps
from modelyard.ops.serving.request import (
    CheckedRecord,
    FieldViolation,
    max_records,
    request_model,
)

log = logging.getLogger("modelyard.serving")

SETTINGS_ENV = "MODELYARD_SERVE_SETTINGS"
"""Environment variable carrying :class:`ServeSettings` as JSON to worker processes."""
SETTINGS_FILE_ENV = "MODELYARD_SERVE_SETTINGS_FILE"
"""Environment variable naming a JSON settings file (the build context's ``serve.json``)."""
TOKEN_ENV = "MODELYARD_SERVING_TOKEN"
"""Environment variable with the bearer token (never written into the settings JSON)."""
OPEN_PATHS = frozenset(
    {"/health", "/ready", "/ping", "/metrics", "/docs", "/openapi.json"} | DOCS_ASSET_PATHS
)
ROUTES = frozenset(
    {"/predict", "/invocations", "/feedback", "/model", "/reload"} | OPEN_PATHS | labelstudio.ROUTES
)
_THREADPOOL_ROWS = 256
_RAW_CHARS = 4096
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
"""A JSON escape of a UTF-16 surrogate (paired or lone: :func:`_reject_lone_surrogates` tells)."""
PROBE_PATHS = frozenset({"/health", "/ready", "/ping", "/metrics"})
"""Never shed: liveness and readiness probes and scrapes must answer under load."""

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


@dataclass
class ServeSettings:
    """Everything a server process needs (JSON-serialisable; the token travels apart)."""

    model: str
    tracking_uri: str | None = None
    lenient: bool = False
    max_body_bytes: int = 1_048_576
    max_batch_rows: int = 10_000
    max_concurrency: int = 256
    log_path: str | None = None
    log_rotate_bytes: int = 256 * 1024 * 1024
    log_rotate_rows: int = 1_000_000
    log_queue_size: int = 10_000
    log_max_wait_ms: float = 50.0
    drain_seconds: float = 0.5
    """After SIGTERM/SIGINT, keep reading and answering for this long before the ASGI server
    starts its graceful shutdown (see :func:`_drain_before_exit`)."""
    poll_seconds: float = 30.0
    cache_dir: str | None = None
    checks: list[dict[str, Any]] = field(default_factory=list)
    """``validation.checks`` of modelyard.yaml (as JSON): requests must pass them."""
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> ServeSettings:
        return cls(**json.loads(text))


class BadRequest(Exception):
    def __init__(self, status: int, reason: str, message: str, errors: list[Any] | None = None):
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.message = message
        self.errors = errors or []


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON (non-finite numbers are not accepted)")


def _reject_lone_surrogates(payload: Any) -> None:
    """A 400 if a string of the payload holds a lone UTF-16 surrogate (``"\\ud800"``).

    JSON's grammar allows the escape, but the result is not Unicode text: it cannot be
    encoded as UTF-8, logged or echoed back (RFC 8259 section 8.2, I-JSON RFC 7493).
    """
    try:
        json.dumps(payload, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError as exc:
        bad = exc.object[exc.start : exc.end].encode("unicode_escape").decode()
        raise BadRequest(
            400,
            "invalid_unicode",
            f"a string of the body holds a lone surrogate ({bad}), which is not Unicode text; "
            "escape characters outside the BMP as surrogate pairs, or send them as UTF-8",
        ) from None
    except RecursionError:
        raise BadRequest(
            400, "too_deep", "the body nests arrays or objects too deeply; send flat records"
        ) from None


def _finite_number(value: Any) -> bool:
    """A JSON number a float can hold (integers beyond 1.8e308 cannot)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def _is_json(content_type: str) -> bool:
    """A JSON media type (``application/json``, ``application/*+json``); no header counts as
    JSON, so that minimal clients keep working."""
    media = content_type.split(";", 1)[0].strip().lower()
    return (
        not media
        or media == "application/json"
        or (media.startswith("application/") and media.endswith("+json"))
    )


def _json_bytes(payload: Any) -> bytes:
    """UTF-8 JSON; text UTF-8 cannot carry (a lone surrogate) goes out as an ASCII escape."""
    text = json.dumps(payload, ensure_ascii=False, allow_nan=False, default=str)
    try:
        return text.encode()
    except UnicodeEncodeError:
        return json.dumps(payload, ensure_ascii=True, allow_nan=False, default=str).encode()


def _json_response(
    payload: Any, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    return Response(
        _json_bytes(payload), status_code=status, media_type="application/json", headers=headers
    )


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat()


class Server:
    """State shared by the routes of one process."""

    def __init__(self, settings: ServeSettings, token: str | None) -> None:
        self.settings = settings
        self.token = token
        self.metrics = Metrics()
        cache = Path(settings.cache_dir) if settings.cache_dir else None
        import tempfile

        self.cache = cache or Path(tempfile.mkdtemp(prefix="modelyard-serve-"))
        from modelyard.config.schema import Check

        self.holder = ModelHolder(
            parse_model_ref(settings.model),
            settings.tracking_uri,
            self.cache,
            checks=[Check.model_validate(c) for c in settings.checks],
        )
        self.predlog: PredictionLog | None = None
        if settings.log_path:
            self.predlog = PredictionLog(
                LogOptions(
                    path=Path(settings.log_path),
                    rotate_bytes=settings.log_rotate_bytes,
                    rotate_rows=settings.log_rotate_rows,
                    queue_size=settings.log_queue_size,
                    max_wait_ms=settings.log_max_wait_ms,
                ),
                on_drop=self.metrics.log_dropped.inc,
            )
        self._stop = threading.Event()
        self._poller: threading.Thread | None = None
        self.draining = False
        """A stop signal arrived: ``/ready`` answers 503 while the requests in flight finish."""

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        model = self.holder.load()
        self.metrics.set_model(model.name, model.version)
        # The model's objects live as long as the process: keep them out of the collector's
        # generations so that a collection does not walk them in the middle of a request.
        gc.collect()
        gc.freeze()
        log.info(
            "serving %s version %s (%s)", model.name, model.version, model.fast_reason or "pipeline"
        )
        for check in model.checker.skipped_checks:
            log.info("check %s reads a column requests do not carry: not applied", check)
        if self.settings.poll_seconds > 0 and self.holder.ref.alias is not None:
            self._poller = threading.Thread(target=self._poll, name="model-reload", daemon=True)
            self._poller.start()

    def stop(self) -> None:
        self._stop.set()
        if self.predlog is not None:
            self.predlog.close()

    def _poll(self) -> None:
        while not self._stop.wait(self.settings.poll_seconds):
            with contextlib.suppress(Exception):
                self.reload()

    def reload(self) -> ServedModel | None:
        try:
            model = self.holder.reload_if_moved()
        except Exception as exc:  # keep serving the current version
            log.warning("reload failed, still serving the current version: %s", exc)
            raise
        if model is not None:
            self.metrics.set_model(model.name, model.version)
            self.metrics.reloads.inc()
            log.info("now serving %s version %s", model.name, model.version)
        return model

    # ------------------------------------------------------------------ predicting

    def parse(self, body: bytes, limit: int | None = None) -> Any:
        """The JSON value of a body, or a :class:`BadRequest` (never another exception)."""
        limit = self.settings.max_body_bytes if limit is None else limit
        if len(body) > limit:
            raise BadRequest(413, "body_too_large", f"the body exceeds {limit} bytes")
        if not body.strip():
            raise BadRequest(400, "empty_body", "the request body is empty; send a JSON record")
        try:
            payload = json.loads(body, parse_constant=_reject_constant)
        except RecursionError:
            raise BadRequest(
                400, "too_deep", "the body nests arrays or objects too deeply; send flat records"
            ) from None
        except (ValueError, UnicodeDecodeError) as exc:  # ValueError: also ints of > 4300 digits
            raise BadRequest(400, "malformed_json", f"the body is not valid JSON: {exc}") from None
        if _SURROGATE_ESCAPE.search(body) is not None:
            _reject_lone_surrogates(payload)
        return payload

    def records_of(self, payload: Any, *, sagemaker: bool = False) -> tuple[list[Any], bool]:
        """The records of a payload and whether it was a single record."""
        if sagemaker and isinstance(payload, dict):
            for key in ("instances", "dataframe_records", "records"):
                if key in payload and isinstance(payload[key], list):
                    payload = payload[key]
                    break
        if isinstance(payload, list):
            if not payload:
                raise BadRequest(422, "empty_batch", "the batch is empty; send at least one record")
            if len(payload) > self.settings.max_batch_rows:
                raise BadRequest(
                    413,
                    "batch_too_large",
                    f"the batch has {len(payload)} records, more than {self.settings.max_batch_rows}",
                )
            return payload, False
        if isinstance(payload, dict):
            return [payload], True
        what = "null" if payload is None else type(payload).__name__
        raise BadRequest(
            422, "not_a_record", f"send a JSON object (one record) or an array of them, not {what}"
        )

    def predict(
        self, records: list[Any], request_id: str, route: str, arrival: str, started: float
    ) -> Response:
        model = self.holder.current
        if model is None:
            raise BadRequest(503, "not_ready", "the model is not loaded yet")
        checked = model.checker.check_many(records)
        metrics = self.metrics
        bad = [(i, c) for i, c in enumerate(checked) if c.violations]
        for _, c in bad:
            for v in c.violations:
                column = v.column if v.check != "unknown_field" else "_unknown"
                metrics.violations.labels(column or "_record", v.check).inc()
        if bad and not self.settings.lenient:
            errors = [{"record": i, **v.as_dict()} for i, c in bad for v in c.violations]
            self._log(
                model=model,
                checked=checked,
                pred=None,
                request_id=request_id,
                route=route,
                arrival=arrival,
                started=started,
                status="rejected",
            )
            raise BadRequest(
                422,
                "contract_violation",
                f"{len(bad)} of {len(checked)} record(s) break the data contract",
                errors,
            )
        rows = [c.values for c in checked]
        pred = model.predict(rows)
        version = model.version
        if model.classes is not None:
            for label in pred.predictions:
                metrics.predictions.labels(version, str(label)).inc()
        else:
            for value in pred.predictions:
                metrics.prediction_value.labels(version).observe(value)
        metrics.rows.labels(version).inc(len(rows))
        out: list[dict[str, Any]] = []
        probs = pred.probabilities
        for i, label in enumerate(pred.predictions):
            item: dict[str, Any] = {"prediction": label}
            if probs is not None:
                item["probabilities"] = probs[i]
            rec = checked[i]
            if rec.violations:
                item["violations"] = [v.as_dict() for v in rec.violations]
            if rec.drift:
                item["drift"] = [v.as_dict() for v in rec.drift]
                for v in rec.drift:
                    metrics.drift.labels(v.column, v.check).inc()
            out.append(item)
        self._log(
            model=model,
            checked=checked,
            pred=pred,
            request_id=request_id,
            route=route,
            arrival=arrival,
            started=started,
            status="served",
        )
        return _json_response(
            {
                "request_id": request_id,
                "model": {"name": model.name, "version": version},
                "predictions": out,
            },
            headers={"X-Request-ID": request_id},
        )

    def _log(
        self,
        *,
        model: ServedModel,
        checked: list[CheckedRecord],
        pred: Any,
        request_id: str,
        route: str,
        arrival: str,
        started: float,
        status: str,
    ) -> None:
        if self.predlog is None:
            return
        latency = (time.perf_counter() - started) * 1000.0
        time_col = model.checker.time_column
        recs = []
        for i, c in enumerate(checked):
            event = c.values.get(time_col) if time_col else None
            rejected = status == "rejected"
            features = c.raw if rejected else c.values
            row_status = status if not c.violations or rejected else "flagged"
            recs.append(
                (
                    request_id,
                    i,
                    arrival,
                    None if event is None else event.isoformat(),
                    route,
                    row_status,
                    model.name,
                    model.version,
                    dumps(features),
                    None if pred is None else dumps(pred.predictions[i]),
                    None
                    if pred is None or pred.probabilities is None
                    else dumps(pred.probabilities[i]),
                    dumps([v.as_dict() for v in c.violations]) if c.violations else None,
                    latency,
                )
            )
        self.predlog.put(recs)  # records it cannot keep are counted through on_drop

    def log_rejected_body(
        self,
        body: bytes,
        error: BadRequest,
        *,
        request_id: str,
        route: str,
        arrival: str,
        started: float,
    ) -> None:
        """Log a request rejected before its records could be read (raw body, reason)."""
        if self.predlog is None:
            return
        model = self.holder.current
        text = body[:_RAW_CHARS].decode("utf-8", errors="replace")
        violation = FieldViolation(None, error.reason, error.message)
        rec = (
            request_id,
            0,
            arrival,
            None,
            route,
            "rejected",
            None if model is None else model.name,
            None if model is None else model.version,
            dumps({"_raw": text}),
            None,
            None,
            dumps([violation.as_dict()]),
            (time.perf_counter() - started) * 1000.0,
        )
        self.predlog.put([rec])

    def feedback(self, payload: Any) -> Response:
        model = self.holder.current
        if not isinstance(payload, dict) or not isinstance(payload.get("request_id"), str):
            raise BadRequest(
                422,
                "bad_feedback",
                "send {request_id: str, labels: [...]} or {request_id, label, row}",
            )
        request_id = payload["request_id"]
        if "labels" in payload:
            labels = payload["labels"]
            if not isinstance(labels, list) or not labels:
                raise BadRequest(422, "bad_feedback", "labels must be a non-empty array")
            pairs = list(enumerate(labels))
        elif "label" in payload:
            row = payload.get("row", 0)
            if isinstance(row, bool) or not isinstance(row, int) or row < 0:
                raise BadRequest(422, "bad_feedback", "row must be a non-negative integer")
            pairs = [(row, payload["label"])]
        else:
            raise BadRequest(422, "bad_feedback", "give 'labels' (array) or 'label'")
        errors = []
        for i, label in pairs:
            if model is not None and model.classes is not None:
                if not isinstance(label, str | int | bool) or str(label) not in model.classes:
                    errors.append(
                        {"record": i, "column": "label", "check": "category",
                         "message": f"{label!r} is not one of the classes {model.classes}"}
                    )  # fmt: skip
            elif not _finite_number(label):
                errors.append(
                    {"record": i, "column": "label", "check": "type",
                     "message": f"{label!r} is not a finite number"}
                )  # fmt: skip
        if errors:
            raise BadRequest(422, "bad_feedback", "some labels are invalid", errors)
        now = _now()
        if self.predlog is not None:
            self.predlog.put_feedback(
                [
                    (
                        request_id,
                        i,
                        dumps(
                            label
                            if not isinstance(label, int | bool)
                            or model is None
                            or model.classes is None
                            else str(label)
                        ),
                        now,
                    )
                    for i, label in pairs
                ]
            )
        return _json_response({"request_id": request_id, "accepted": len(pairs)}, status=202)

    def csv_records(self, body: bytes) -> list[Any]:
        import csv
        import io

        model = self.holder.current
        if model is None:
            raise BadRequest(503, "not_ready", "the model is not loaded yet")
        if len(body) > self.settings.max_body_bytes:
            raise BadRequest(413, "body_too_large", "the body is too large")
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            raise BadRequest(400, "malformed_csv", "the CSV body is not UTF-8") from None
        names = model.checker.names
        types = {c.name: c.type for c in model.checker.columns}
        records: list[Any] = []
        for n, line in enumerate(csv.reader(io.StringIO(text))):
            if not line:
                continue
            if len(line) != len(names):
                raise BadRequest(
                    400,
                    "malformed_csv",
                    f"CSV line {n + 1} has {len(line)} fields; expected {len(names)}: {names}",
                )
            rec: dict[str, Any] = {}
            for name, cell in zip(names, line, strict=True):
                rec[name] = _csv_value(cell, types[name])
            records.append(rec)
        if not records:
            raise BadRequest(422, "empty_batch", "the CSV body has no rows")
        return records


def _csv_value(cell: str, typ: str) -> Any:
    if cell == "":
        return None
    if typ in ("int", "float"):
        try:
            value = float(cell)
        except ValueError:
            return cell
        return int(value) if typ == "int" and value.is_integer() else value
    if typ == "bool":
        low = cell.lower()
        return True if low == "true" else False if low == "false" else cell
    return cell


# --------------------------------------------------------------------------- ASGI guard


class Guard:
    """Pure ASGI middleware: request ids, auth, body limit, load shedding, HTTP metrics.

    Load shedding counts every request from the moment its task starts until its response is
    sent (probes excepted: :data:`PROBE_PATHS`). An admitted request yields to the event loop
    once before it runs, so the requests that arrived meanwhile are read and counted before
    any of them predicts: small requests predict on the event loop, and without that yield
    they would run one after the other, never more than one in flight, with the queue
    growing unseen in the sockets. Beyond ``max_concurrency`` the answer is 503 at once.
    """

    def __init__(self, app: ASGIApp, server: Server) -> None:
        self.app = app
        self.server = server
        self.in_flight = 0
        token = server.token
        self.expected = f"Bearer {token}".encode() if token else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        path: str = scope["path"]
        route = path if path in ROUTES else "other"
        method: str = scope["method"]
        status_box = [500]
        server = self.server
        settings = server.settings

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_box[0] = message["status"]
            await send(message)

        async def respond(status: int, reason: str, message: str, headers: dict[str, str]) -> None:
            server.metrics.rejected.labels(reason).inc()
            body = json.dumps({"detail": message, "reason": reason}).encode()
            raw_headers = [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ] + [(k.encode(), v.encode()) for k, v in headers.items()]
            await send_wrapper(
                {"type": "http.response.start", "status": status, "headers": raw_headers}
            )
            await send({"type": "http.response.body", "body": body})

        body_limit = labelstudio.body_limit(settings, path)
        try:
            shed = path not in PROBE_PATHS
            if shed and self.in_flight >= settings.max_concurrency:
                await respond(
                    503, "overloaded", "too many requests in flight; retry", {"Retry-After": "1"}
                )
                return
            if self.expected is not None and path not in OPEN_PATHS:
                auth = b""
                for key, value in scope["headers"]:
                    if key == b"authorization":
                        auth = value
                        break
                if not hmac.compare_digest(auth, self.expected) and not labelstudio.basic_auth_ok(
                    path, auth, server.token
                ):
                    await respond(
                        401,
                        "unauthorized",
                        "a valid bearer token is required (Authorization: Bearer ...)",
                        {"WWW-Authenticate": "Bearer"},
                    )
                    return
            for key, value in scope["headers"]:
                if key == b"content-length":
                    try:
                        length = int(value)
                    except ValueError:
                        length = -1
                    if length < 0:
                        await respond(
                            400,
                            "bad_content_length",
                            "invalid Content-Length",
                            {"Connection": "close"},
                        )
                        return
                    if length > body_limit:  # the HTTP server discards the body:
                        await respond(  # the connection stays usable
                            413,
                            "body_too_large",
                            f"the body exceeds {body_limit} bytes",
                            {},
                        )
                        return
                    break
            limit = body_limit
            seen = [0]

            async def limited_receive() -> Message:
                if scope.get(BODY_EXCEEDED):
                    return {"type": "http.request", "body": b"", "more_body": False}
                message = await receive()
                if message["type"] == "http.request":
                    seen[0] += len(message.get("body", b""))
                    if seen[0] > limit:  # stop reading (chunked bodies): the route answers 413
                        scope[BODY_EXCEEDED] = True
                        message = {"type": "http.request", "body": b"", "more_body": False}
                return message

            if not shed:
                await self.app(scope, limited_receive, send_wrapper)
                return
            self.in_flight += 1
            try:
                await asyncio.sleep(0)  # let the requests that arrived meanwhile be counted
                await self.app(scope, limited_receive, send_wrapper)
            finally:
                self.in_flight -= 1
        finally:
            status = status_box[0]
            metrics = server.metrics
            metrics.requests.labels(route, method, str(status)).inc()
            metrics.latency.labels(route).observe(time.perf_counter() - started)


# --------------------------------------------------------------------------- the app


def _request_id(request: Request) -> str:
    given = request.headers.get("x-request-id")
    if given and len(given) <= 128 and given.isprintable():
        return given
    return uuid.uuid4().hex


def _error(exc: BadRequest, request_id: str) -> Response:
    payload: dict[str, Any] = {
        "detail": exc.message,
        "reason": exc.reason,
        "request_id": request_id,
    }
    if exc.errors:
        payload["errors"] = exc.errors
    headers = {"X-Request-ID": request_id}
    if exc.status == 503:
        headers["Retry-After"] = "1"
    return _json_response(payload, status=exc.status, headers=headers)


BODY_EXCEEDED = "modelyard.body_exceeded"
"""Scope key the :class:`Guard` sets when a body outgrew ``max_body_bytes`` while streaming."""


async def _read_body(request: Request) -> bytes:
    """The request body; a 413 when the :class:`Guard` cut it at ``max_body_bytes``."""
    body = await request.body()
    if request.scope.get(BODY_EXCEEDED):
        limit = labelstudio.body_limit(request.app.state.server.settings, request.url.path)
        raise BadRequest(413, "body_too_large", f"the body exceeds {limit} bytes")
    return body


def _require_json(content_type: str, expected: str) -> None:
    if not _is_json(content_type):
        shown = content_type if len(content_type) <= 80 else content_type[:80] + "…"
        raise BadRequest(
            415,
            "unsupported_media_type",
            f"the body is {shown!r}; send {expected} (Content-Type header)",
        )


def create_app(settings: ServeSettings, *, token: str | None = None) -> Any:
    """The ASGI application (FastAPI behind the :class:`Guard`); the model loads at start-up."""
    server = Server(settings, token)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        from threadpoolctl import threadpool_limits  # type: ignore[import-untyped,unused-ignore]

        threadpool_limits(limits=1)  # native math single-threaded per request
        await asyncio.get_running_loop().run_in_executor(None, server.start)
        restore = _drain_before_exit(server)
        try:
            yield
        finally:
            restore()
            server.stop()

    app = FastAPI(
        title="modelyard prediction server",
        version="1",
        lifespan=lifespan,
        description=(__doc__ or "").split("Routes")[0].strip(),
        docs_url=None,  # /docs: Swagger UI from this server, not a CDN (works offline)
        redoc_url=None,
    )
    add_docs(app)
    app.state.server = server
    run_in_threadpool = _threadpool()

    async def serve_records(request: Request, route: str, sagemaker: bool) -> Response:
        started = time.perf_counter()
        arrival = _now()
        request_id = _request_id(request)
        body = b""
        try:
            body = await _read_body(request)  # read first: the connection stays in step
            content_type = request.headers.get("content-type", "")
            csv = sagemaker and content_type.lower().startswith("text/csv")
            if not csv:
                _require_json(content_type, "application/json" + (" or text/csv" * sagemaker))
            if csv:
                records = server.csv_records(body)
            else:
                records, _ = server.records_of(server.parse(body), sagemaker=sagemaker)
            if len(records) >= _THREADPOOL_ROWS:
                response: Response = await run_in_threadpool(
                    server.predict, records, request_id, route, arrival, started
                )
                return response
            return server.predict(records, request_id, route, arrival, started)
        except BadRequest as exc:
            server.metrics.rejected.labels(exc.reason).inc()
            if exc.reason != "contract_violation":
                server.log_rejected_body(
                    body, exc, request_id=request_id, route=route, arrival=arrival, started=started
                )
            return _error(exc, request_id)
        except Exception:  # a bug: answer in JSON and keep the connection usable
            log.exception("request %s on %s failed", request_id, route)
            server.metrics.rejected.labels("internal_error").inc()
            return _error(
                BadRequest(500, "internal_error", "the server failed on this request"), request_id
            )

    @app.post("/predict", openapi_extra=_body_doc("PredictRequest"), response_model=None)
    async def predict(request: Request) -> Response:
        """Predict one record or a batch of records."""
        return await serve_records(request, "/predict", sagemaker=False)

    @app.post("/invocations", openapi_extra=_body_doc("InvocationsRequest"), response_model=None)
    async def invocations(request: Request) -> Response:
        """SageMaker inference (JSON as /predict, instances / dataframe_records, or text/csv)."""
        return await serve_records(request, "/invocations", sagemaker=True)

    @app.get("/health")
    async def health() -> dict[str, str]:
        """The process is alive."""
        return {"status": "ok"}

    @app.get("/ready", response_model=None)
    async def ready() -> Response:
        """200 once the model is loaded and the prediction log (if any) writes, else 503."""
        model = server.holder.current
        if model is None:
            return _json_response({"status": "loading"}, status=503, headers={"Retry-After": "1"})
        payload: dict[str, Any] = {"status": "ready", "model": model.name, "version": model.version}
        if server.draining:
            payload["status"] = "draining"
            return _json_response(payload, status=503, headers={"Retry-After": "1"})
        if server.predlog is not None:
            health = server.predlog.health()
            payload["prediction_log"] = health.as_dict()
            if not health.ok:
                payload["status"] = "prediction_log_failing"
                return _json_response(payload, status=503, headers={"Retry-After": "5"})
        return _json_response(payload)

    @app.get("/ping", response_model=None)
    async def ping() -> Response:
        """SageMaker health check."""
        return Response(status_code=200 if server.holder.current is not None else 503)

    @app.get("/metrics", response_model=None)
    async def metrics() -> Response:
        """Prometheus metrics."""
        body, content_type = server.metrics.expose()
        return Response(body, media_type=content_type)

    @app.get("/model", response_model=None)
    async def model_info() -> Response:
        """Metadata, metrics and data contract of the served version."""
        model = server.holder.current
        if model is None:
            return _json_response({"detail": "loading"}, status=503)
        return _json_response(model.describe())

    @app.post("/feedback", openapi_extra=_body_doc("Feedback"), response_model=None)
    async def feedback(request: Request) -> Response:
        """Ground-truth labels for the records of an earlier request."""
        request_id = _request_id(request)
        try:
            body = await _read_body(request)
            _require_json(request.headers.get("content-type", ""), "application/json")
            return server.feedback(server.parse(body))
        except BadRequest as exc:
            server.metrics.rejected.labels(exc.reason).inc()
            return _error(exc, request_id)

    @app.post("/reload", response_model=None)
    async def reload() -> Response:
        """Ask the registry where the alias points now, and switch if it moved."""
        try:
            model = await run_in_threadpool(server.reload)
        except Exception as exc:
            return _json_response(
                {"detail": f"reload failed: {exc}", "reason": "reload_failed"}, 503
            )
        current = server.holder.current
        return _json_response(
            {"changed": model is not None, "version": None if current is None else current.version}
        )

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        from fastapi.openapi.utils import get_openapi

        schema = get_openapi(title=app.title, version=app.version, routes=app.routes)
        schema.setdefault("components", {}).setdefault("schemas", {}).update(
            _component_schemas(server, settings)
        )
        app.openapi_schema = schema
        return schema

    labelstudio.mount(app, server)
    app.openapi = openapi  # type: ignore[method-assign]
    return Guard(app, server)


def _drain_before_exit(server: Server) -> Callable[[], None]:
    """Delay the ASGI server's handling of SIGTERM and SIGINT by ``drain_seconds``.

    uvicorn closes every idle keep-alive connection as soon as it handles the signal. A
    request a client sent just before that, still unread in the socket while the event loop
    was busy predicting, was lost with its connection (reset). During the delay the server goes
    on reading: such requests become requests in flight, which the graceful shutdown completes
    (with ``Connection: close``); ``/ready`` answers 503 meanwhile, so that load balancers stop
    sending. A second signal acts at once. Returns the function restoring the handlers.
    Only in the main thread, and only over a handler the ASGI server installed (uvicorn's).
    """
    import signal

    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    loop = asyncio.get_running_loop()
    seconds = server.settings.drain_seconds
    installed: dict[int, Any] = {}
    for sig in (signal.SIGTERM, signal.SIGINT):
        previous = signal.getsignal(sig)
        if not callable(previous) or previous is signal.default_int_handler:
            continue

        def handler(signum: int, frame: Any, previous: Callable[..., Any] = previous) -> None:
            if server.draining or seconds <= 0:
                previous(signum, frame)
                return
            server.draining = True
            log.info("stop signal: draining for %.2g s before shutting down", seconds)
            loop.call_soon_threadsafe(loop.call_later, seconds, previous, signum, frame)

        installed[sig] = previous
        signal.signal(sig, handler)

    def restore() -> None:
        if threading.current_thread() is threading.main_thread():
            for sig, previous in installed.items():
                signal.signal(sig, previous)

    return restore


def _threadpool() -> Callable[..., Awaitable[Any]]:
    from starlette.concurrency import run_in_threadpool

    return run_in_threadpool


def _body_doc(component: str) -> dict[str, Any]:
    ref = {"$ref": f"#/components/schemas/{component}"}
    responses = {
        "200": {"description": "Predictions"},
        "400": {"description": "Malformed JSON or an empty body"},
        "401": {"description": "Missing or wrong bearer token"},
        "413": {"description": "Body or batch too large"},
        "422": {"description": "The records break the data contract"},
        "503": {"description": "Not ready or overloaded"},
    }
    if component == "Feedback":
        responses["202"] = {"description": "Labels accepted"}
        del responses["200"]
    return {
        "requestBody": {"required": True, "content": {"application/json": {"schema": ref}}},
        "responses": responses,
    }


def _component_schemas(server: Server, settings: ServeSettings) -> dict[str, Any]:
    model = server.holder.current
    if model is None:
        return {
            "PredictRequest": {"type": "object"},
            "InvocationsRequest": {"type": "object"},
            "Feedback": {"type": "object"},
        }
    record_model = request_model(model.contract, title="Record")
    record = record_model.model_json_schema(ref_template="#/components/schemas/{model}")
    defs = record.pop("$defs", {})
    ref = {"$ref": "#/components/schemas/Record"}

    def batch_of(wrapper: str = "") -> dict[str, Any]:
        most = max_records(
            model.contract,
            settings.max_body_bytes,
            settings.max_batch_rows,
            wrapper=len(wrapper.encode()),
        )
        return {"type": "array", "items": ref, "minItems": 1, "maxItems": most}

    batch = batch_of()
    label: dict[str, Any] = (
        {"type": "string", "enum": model.classes}
        if model.classes is not None
        else {"type": "number"}
    )
    return {
        **defs,
        "Record": record,
        "PredictRequest": {"oneOf": [ref, batch], "example": record.get("example")},
        "InvocationsRequest": {
            "oneOf": [
                ref,
                batch,
                {
                    "type": "object",
                    "properties": {"instances": batch_of('{"instances":}')},
                    "required": ["instances"],
                },
            ]
        },
        "Feedback": {
            "type": "object",
            "properties": {
                "request_id": {"type": "string"},
                "labels": {"type": "array", "items": label, "minItems": 1},
            },
            "required": ["request_id", "labels"],
        },
    }


def create_app_from_env() -> Any:
    """The app of a worker process (what ``modelyard serve`` and the Dockerfile use).

    Settings come from ``MODELYARD_SERVE_SETTINGS`` (JSON) or from the JSON file named by
    ``MODELYARD_SERVE_SETTINGS_FILE`` (relative ``model``, ``log_path`` and ``cache_dir`` resolve
    from the file's folder); the token from ``MODELYARD_SERVING_TOKEN``.
    """
    text = os.environ.get(SETTINGS_ENV)
    file = os.environ.get(SETTINGS_FILE_ENV)
    if text:
        settings = ServeSettings.from_json(text)
    elif file:
        base = Path(file).resolve().parent
        settings = ServeSettings.from_json(Path(file).read_text(encoding="utf-8"))
        settings.model = (
            str(base / settings.model) if (base / settings.model).exists() else settings.model
        )
        if settings.log_path and not Path(settings.log_path).is_absolute():
            settings.log_path = str(base / settings.log_path)
        if settings.cache_dir and not Path(settings.cache_dir).is_absolute():
            settings.cache_dir = str(base / settings.cache_dir)
    else:
        raise RuntimeError(
            f"neither {SETTINGS_ENV} nor {SETTINGS_FILE_ENV} is set; start with modelyard serve"
        )
    return create_app(settings, token=os.environ.get(TOKEN_ENV) or None)
