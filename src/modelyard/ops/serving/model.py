"""The served model: where it comes from, how it predicts, and how a new version replaces it.

A model reference is one of

- ``NAME@ALIAS`` (``penguins@champion``) or ``NAME/VERSION`` (``penguins/3``), optionally
  prefixed with ``models:/``: a registered version, resolved through the tracking URI;
- a local folder holding an MLflow model written by modelyard (``MLmodel`` + ``contract.yaml``):
  what a build context of ``modelyard package`` ships.

:func:`load_served_model` finds the version (the embedded store's folder is read in place,
a server's is downloaded once), loads it through modelyard's native flavour (the fitted pipeline,
no MLflow import; ``mlflow.pyfunc`` for a model logged before the flavour), reads the data contract
shipped with it, checks that model and contract agree (every model input is a contract column,
the task matches, the classes are allowed target values), compiles the exact fast path
(:mod:`.fastpath`) and checks it against the pipeline on probe rows.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import shutil
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from modelyard.data.contract import DataContract, contract_from_yaml
from modelyard.errors import ModelyardError, name_list
from modelyard.ops.registry import ModelRef
from modelyard.ops.serving.fastpath import (
    CompiledFeatures,
    Unsupported,
    compile_features,
    same_features,
)
from modelyard.ops.serving.request import ACCEPTED_ROLES, RecordChecker, example_record

if TYPE_CHECKING:
    from modelyard.config.schema import Check

log = logging.getLogger(__name__)

CONTRACT_FILE = "contract.yaml"
_ARGMAX_ESTIMATORS = {
    "HistGradientBoostingClassifier",
    "RandomForestClassifier",
    "ExtraTreesClassifier",
    "DecisionTreeClassifier",
    "GradientBoostingClassifier",
}
"""Classifiers whose ``predict`` is exactly ``classes_[argmax(predict_proba)]``."""
_MANY_THREADS_ROWS = 2000
"""Batches at least this large may use every core in native code."""


@dataclass
class Prediction:
    """Predictions of a batch: labels (or values) and class probabilities, row by row."""

    predictions: list[Any]
    probabilities: list[dict[str, float]] | None


@dataclass
class ServedModel:
    """One loaded version, ready to predict checked records."""

    name: str
    version: str
    source: str
    contract: DataContract
    task: str
    classes: list[str] | None
    features: list[str]
    pipeline: Any
    wrapper: Any
    local_dir: Path
    metrics: dict[str, float] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    compiled: CompiledFeatures | None = None
    fast_reason: str = ""
    checks: Sequence[Check] = ()
    """The declared ``validation.checks`` requests must pass (as batch scoring's rows)."""
    _argmax: bool = False
    _types: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        est = self.pipeline.steps[-1][1]
        self._estimator = est
        argmax = type(est).__name__ in _ARGMAX_ESTIMATORS or getattr(
            est, "predict_is_argmax", False
        )
        self._argmax = bool(argmax) and self.classes is not None
        self._types = {c.name: c.type for c in self.contract.columns}
        self.checker = RecordChecker(self.contract, checks=self.checks)

    # ------------------------------------------------------------------ prediction

    def frame(self, rows: Sequence[dict[str, Any]]) -> Any:
        """The pandas frame :func:`modelyard.modeling.features.to_pandas` would give."""
        import pandas as pd  # type: ignore[import-untyped,unused-ignore]

        data: dict[str, Any] = {}
        for name in self.features:
            typ = self._types.get(name, "float")
            values = [row.get(name) for row in rows]
            if typ in ("int", "float", "bool"):
                data[name] = np.array(
                    [np.nan if v is None else float(v) for v in values], dtype=np.float64
                )
            elif typ == "str":
                data[name] = pd.Series(values, dtype=object)
            else:
                data[name] = pd.to_datetime(pd.Series(values, dtype=object)).astype(
                    "datetime64[us]"
                )
        return pd.DataFrame(data)

    def features_of(self, rows: Sequence[dict[str, Any]]) -> Any:
        """The model's feature matrix, by the fast path when there is one."""
        if self.compiled is not None:
            try:
                return self.compiled(rows)
            except Unsupported:
                pass
        pre = self.pipeline.steps[0][1] if len(self.pipeline.steps) == 2 else self.pipeline[:-1]
        return pre.transform(self.frame(rows))

    def predict(self, rows: Sequence[dict[str, Any]]) -> Prediction:
        """Predict typed records (``None`` for missing values)."""
        if len(rows) >= _MANY_THREADS_ROWS:
            from threadpoolctl import threadpool_limits  # type: ignore[import-untyped,unused-ignore]

            with threadpool_limits(limits=None):
                return self._predict(rows)
        return self._predict(rows)

    def _predict(self, rows: Sequence[dict[str, Any]]) -> Prediction:
        x = self.features_of(rows)
        est = self._estimator
        if self.classes is None:
            values = np.asarray(est.predict(x), dtype=np.float64)
            return Prediction([float(v) for v in values.tolist()], None)
        proba = np.asarray(est.predict_proba(x), dtype=np.float64)
        if self._argmax:
            labels = np.asarray(est.classes_)[np.argmax(proba, axis=1)]
        else:
            labels = np.asarray(est.predict(x))
        classes = self.classes
        probabilities = [dict(zip(classes, row, strict=True)) for row in proba.tolist()]
        return Prediction([_plain(v) for v in labels.tolist()], probabilities)

    def predict_slow(self, rows: Sequence[dict[str, Any]]) -> Prediction:
        """The same through the pipeline and a DataFrame (the reference for the fast path)."""
        frame = self.frame(rows)
        if self.classes is None:
            values = np.asarray(self.pipeline.predict(frame), dtype=np.float64)
            return Prediction([float(v) for v in values.tolist()], None)
        proba = np.asarray(self.pipeline.predict_proba(frame), dtype=np.float64)
        labels = np.asarray(self.pipeline.predict(frame))
        probabilities = [dict(zip(self.classes, row, strict=True)) for row in proba.tolist()]
        return Prediction([_plain(v) for v in labels.tolist()], probabilities)

    # ------------------------------------------------------------------ description

    def describe(self) -> dict[str, Any]:
        """What ``GET /model`` returns."""
        from modelyard.data.contract import contract_to_yaml

        return {
            "name": self.name,
            "version": self.version,
            "source": self.source,
            "task": self.task,
            "classes": self.classes,
            "features": self.features,
            "estimator": type(self._estimator).__name__,
            "fast_path": self.compiled is not None,
            "fast_path_note": self.fast_reason,
            "metrics": self.metrics,
            "tags": self.tags,
            "contract": self.contract.model_dump(mode="json"),
            "contract_yaml": contract_to_yaml(self.contract),
        }


def _plain(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, np.generic):
        return value.item()
    return value


# --------------------------------------------------------------------------- loading


def _download(ref: ModelRef, tracking_uri: str | None, cache: Path) -> tuple[Path, dict[str, Any]]:
    """The folder of a registered version (the store's own when local, else downloaded into
    ``cache``) and its registry facts. Registry reads skip MLflow where the store allows."""
    from modelyard.ops.registry import Registry, local_folder

    assert ref.name is not None
    if tracking_uri is None:
        raise ModelyardError(
            f"serving '{ref.label}' needs a tracking URI",
            fix="Run from the project folder (modelyard.yaml) or pass --tracking-uri.",
        )
    registry = Registry(tracking_uri, ref.name, cache / "audit.jsonl")
    if ref.alias is not None:
        held = registry.reader.aliases(ref.name).get(ref.alias)
        if held is None:
            raise ModelyardError(
                f"model '{ref.name}' has no version with the alias '{ref.alias}'",
                where=tracking_uri,
                fix="Train and promote a version (modelyard run; modelyard models promote).",
            )
        version = held
    else:
        version = str(ref.version)
    info = registry.show(version)
    location = registry.location(version)
    facts = {
        "name": ref.name,
        "version": version,
        "source": info.source,
        "metrics": info.metrics,
        "tags": {k: v for k, v in info.tags.items() if not k.startswith("mlflow.")},
    }
    local = local_folder(location)
    if local is not None:  # the embedded store's own folder: read in place, nothing to copy
        return local, facts
    import mlflow.artifacts

    dst = Path(tempfile.mkdtemp(prefix=f"v{version}-", dir=cache))
    downloaded = mlflow.artifacts.download_artifacts(
        artifact_uri=location, dst_path=str(dst), tracking_uri=tracking_uri
    )
    return Path(downloaded), facts


def resolve_version(ref: ModelRef, tracking_uri: str | None) -> str | None:
    """The version an alias points to now (``None`` for fixed references or no alias)."""
    if ref.alias is None or ref.name is None or tracking_uri is None:
        return None
    from modelyard.ops.registry_store import open_reader
    from modelyard.ops.tracking import make_client

    return (
        open_reader(tracking_uri, lambda: make_client(tracking_uri))
        .aliases(ref.name)
        .get(ref.alias)
    )


def load_served_model(
    ref: ModelRef,
    *,
    tracking_uri: str | None = None,
    cache: Path | None = None,
    checks: Sequence[Check] = (),
) -> ServedModel:
    """Load, check and compile one model version (see the module docstring); ``checks`` are
    the declared checks every request must pass."""
    if cache is None:
        cache = Path(tempfile.mkdtemp(prefix="modelyard-serve-"))
    cache.mkdir(parents=True, exist_ok=True)
    local, facts = fetch_model(ref, tracking_uri, cache)
    contract_path = local / CONTRACT_FILE
    if not contract_path.is_file():
        raise ModelyardError(
            "the model has no data contract",
            where=str(local),
            expected=f"{CONTRACT_FILE} next to MLmodel (modelyard logs it with every model)",
            fix="Serve a model trained by modelyard.",
        )
    contract = contract_from_yaml(
        contract_path.read_text(encoding="utf-8"), source=str(contract_path)
    )
    wrapper, example = _load_wrapper(local)
    for attr in ("pipeline", "features", "task"):
        if not hasattr(wrapper, attr):
            raise ModelyardError(
                "the model is not a modelyard model",
                where=str(local),
                expected="a ModelyardPyfunc (pipeline, features, task)",
                found=type(wrapper).__name__,
            )
    check_agreement(contract, wrapper)
    served = ServedModel(
        name=str(facts.get("name") or local.name),
        version=str(facts.get("version") or "local"),
        source=str(facts.get("source") or local),
        contract=contract,
        task=str(wrapper.task),
        classes=None if wrapper.classes is None else list(wrapper.classes),
        features=list(wrapper.features),
        pipeline=wrapper.pipeline,
        wrapper=wrapper,
        local_dir=local,
        metrics=dict(facts.get("metrics") or {}),
        tags=dict(facts.get("tags") or {}),
        checks=tuple(checks),
    )
    _compile(served, example)
    return served


def _load_wrapper(local: Path) -> tuple[Any, list[dict[str, Any]] | None]:
    """The model (pipeline, features, task, classes) and its logged input example as records:
    through the native flavour when the model has it (no MLflow import), else the pyfunc."""
    from modelyard.ops.native import input_example_records, load_native

    native = load_native(local)
    if native is not None:
        return native, input_example_records(local)
    import mlflow.pyfunc

    pyfunc = mlflow.pyfunc.load_model(str(local))
    try:
        frame = pyfunc.input_example
    except Exception:
        frame = None
    records = None if frame is None else frame.to_dict("records")
    return pyfunc.unwrap_python_model(), records


def fetch_model(
    ref: ModelRef, tracking_uri: str | None, cache: Path
) -> tuple[Path, dict[str, Any]]:
    """The local folder of a model and its facts (name, version, source, metrics, tags)."""
    if ref.path is not None:
        return ref.path, _local_facts(ref.path)
    return _download(ref, tracking_uri, cache)


def _local_facts(local: Path) -> dict[str, Any]:
    import json

    facts_file = local / "modelyard-serving.json"
    if facts_file.is_file():
        data: dict[str, Any] = json.loads(facts_file.read_text(encoding="utf-8"))
        return data
    return {}


def check_agreement(contract: DataContract, wrapper: Any) -> None:
    """Model and contract agree: inputs are accepted columns, task and classes match."""
    accepted = {c.name: c for c in contract.columns if c.role in ACCEPTED_ROLES}
    problems: list[str] = []
    missing = [f for f in wrapper.features if f not in accepted]
    if missing:
        problems.append(
            f"model inputs {name_list(missing)} are not feature columns of the contract"
        )
    if contract.task is not None and wrapper.task != contract.task:
        problems.append(f"the model's task is {wrapper.task}, the contract's {contract.task}")
    if wrapper.classes is not None and contract.target is not None:
        target = next((c for c in contract.columns if c.name == contract.target), None)
        if target is not None and target.categories is not None:
            unknown = [c for c in wrapper.classes if c not in set(target.categories)]
            if unknown:
                problems.append(f"classes {unknown} are not categories of '{contract.target}'")
    if problems:
        raise ModelyardError(
            "the model and its data contract disagree: " + "; ".join(problems),
            where="serving",
            fix="Serve a version trained with this contract, or retrain.",
        )


def probe_rows(contract: DataContract, features: list[str]) -> list[dict[str, Any]]:
    """Rows that exercise every branch: an example, all missing, unknown and edge values."""
    base = example_record(contract)
    rows: list[dict[str, Any]] = [dict(base), {f: None for f in features}]
    by_name = {c.name: c for c in contract.columns}
    for pick in (0, -1):
        row = dict(base)
        for f in features:
            col = by_name.get(f)
            if col is None:
                continue
            if col.categories:
                row[f] = col.categories[pick]
            elif col.type in ("int", "float") and (col.min if pick == 0 else col.max) is not None:
                row[f] = float(col.min if pick == 0 else col.max)  # type: ignore[arg-type]
        rows.append(row)
    unknown = {
        f: ("zz-unseen" if by_name[f].type == "str" else None) for f in features if f in by_name
    }
    rows.append({**base, **unknown})
    typed: list[dict[str, Any]] = []
    for row in rows:
        out: dict[str, Any] = {}
        for f in features:
            v = row.get(f)
            col = by_name.get(f)
            if v is not None and col is not None:
                if col.type in ("int", "float"):
                    v = float(v)
                elif col.type == "date" and isinstance(v, str):
                    v = dt.date.fromisoformat(v)
                elif col.type == "datetime" and isinstance(v, str):
                    v = dt.datetime.fromisoformat(v)
            out[f] = v
        typed.append(out)
    return typed


def _compile(served: ServedModel, example: list[dict[str, Any]] | None) -> None:
    extra = None
    if example is not None:
        by_name = {c.name: c for c in served.contract.columns}
        extra = [
            {f: _typed(by_name.get(f), _none_if_nan(rec.get(f))) for f in served.features}
            for rec in example
        ]
    compile_served(served, extra)


def _typed(col: Any, value: Any) -> Any:
    """A JSON value as the request checker types it (numbers as float, ISO text as dates)."""
    if value is None or col is None:
        return value
    if col.type in ("int", "float") and isinstance(value, int | float):
        return float(value)
    if col.type == "date" and isinstance(value, str):
        try:
            return dt.date.fromisoformat(value[:10])
        except ValueError:
            return value
    if col.type == "datetime" and isinstance(value, str):
        try:
            return dt.datetime.fromisoformat(value)
        except ValueError:
            return value
    return value


def compile_served(served: ServedModel, extra_rows: list[dict[str, Any]] | None = None) -> None:
    """Compile the fast path of ``served`` and keep it only if it matches the pipeline
    bit-for-bit on the probe rows (plus ``extra_rows``); ``fast_reason`` says what happened."""
    pre = served.pipeline.steps[0][1] if len(served.pipeline.steps) == 2 else None
    if pre is None:
        served.fast_reason = "the pipeline is not (features, model)"
        return
    try:
        compiled = compile_features(pre, served.contract, served.features)
    except Unsupported as exc:
        served.fast_reason = f"pipeline path: {exc}"
        log.info("serving %s/%s without the fast path: %s", served.name, served.version, exc)
        return
    except Exception as exc:  # never let an optimisation stop the server
        served.fast_reason = f"pipeline path: compile error {type(exc).__name__}: {exc}"
        log.warning("fast path compile failed: %s", exc)
        return
    rows = probe_rows(served.contract, served.features) + list(extra_rows or [])
    try:
        fast = compiled(rows)
        slow = pre.transform(served.frame(rows))
        slow = slow.toarray() if hasattr(slow, "toarray") else np.asarray(slow, dtype=np.float64)
    except Exception as exc:
        served.fast_reason = f"pipeline path: probe failed ({type(exc).__name__}: {exc})"
        return
    if not same_features(fast, slow):
        served.fast_reason = "pipeline path: the compiled features differ on probe rows"
        log.warning("fast path disagrees with the pipeline; using the pipeline")
        return
    served.compiled = compiled
    served.fast_reason = "compiled features, checked bit-for-bit on probe rows"


def _none_if_nan(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if hasattr(value, "to_pydatetime"):
        return None if str(value) == "NaT" else value.to_pydatetime()
    return value


class ModelHolder:
    """The current model, swapped atomically on reload (in-flight requests keep theirs)."""

    def __init__(
        self, ref: ModelRef, tracking_uri: str | None, cache: Path, checks: Sequence[Check] = ()
    ) -> None:
        self.ref = ref
        self.tracking_uri = tracking_uri
        self.cache = cache
        self.checks = tuple(checks)
        self.current: ServedModel | None = None
        self.error: str | None = None
        self._lock = threading.Lock()

    def load(self) -> ServedModel:
        model = load_served_model(
            self.ref, tracking_uri=self.tracking_uri, cache=self.cache, checks=self.checks
        )
        self.current = model
        return model

    def reload_if_moved(self) -> ServedModel | None:
        """Load the version the alias points to if it moved; returns the new model or None."""
        if not self._lock.acquire(blocking=False):
            return None
        try:
            target = resolve_version(self.ref, self.tracking_uri)
            current = self.current
            if target is None or (current is not None and current.version == target):
                return None
            fixed = ModelRef(name=self.ref.name, version=target)
            model = load_served_model(
                fixed, tracking_uri=self.tracking_uri, cache=self.cache, checks=self.checks
            )
            old = self.current
            self.current = model  # one reference assignment: atomic for readers
            if old is not None and old.local_dir.is_relative_to(self.cache):
                root = self.cache / old.local_dir.relative_to(self.cache).parts[0]
                if root != self.cache:
                    shutil.rmtree(root, ignore_errors=True)
            return model
        finally:
            self._lock.release()
