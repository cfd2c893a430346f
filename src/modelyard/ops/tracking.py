"""Track one training run in MLflow and register its model.

Every call goes through an explicit :class:`mlflow.tracking.MlflowClient` built from the
configured URI: no global active run, no global tracking URI (mlflow/mlflow#159). The model is
logged the way ``mlflow.pyfunc.log_model`` does it in MLflow 3 (a LoggedModel linked to the run),
but through the client: ``save_model`` to a temporary folder, then upload.

The logged model loads **without modelyard**: the :class:`~modelyard.ops.pyfunc.ModelyardPyfunc`
wrapper, any modelyard transformer inside the pipeline and any local module of user code (custom
feature functions) are pickled by value (cloudpickle), and the ``pip_requirements`` are exactly
the distributions whose modules the pickle refers to, pinned to the installed versions (see
:func:`pickle_plan`; no 5-11 s requirement inference).
"""

from __future__ import annotations

import contextlib
import importlib.metadata as md
import io
import json
import math
import os
import pickle
import socket
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from modelyard.errors import ModelyardError

if TYPE_CHECKING:
    import pandas as pd  # type: ignore[import-untyped,unused-ignore]
    from mlflow.tracking import MlflowClient

    from modelyard.config.schema import TrackingSection
    from modelyard.data.contract import DataContract

MODEL_NAME_IN_RUN = "model"
"""Name of the logged model inside its run."""
CONTRACT_FILE = "contract.yaml"
"""The data contract, logged with the run and shipped inside the model folder."""
ALWAYS_REQUIRED = ("mlflow-skinny", "cloudpickle", "pandas", "numpy", "scikit-learn")
"""Distributions every logged model needs, whatever the pickle refers to."""
_REMOTE_SCHEMES = {"http", "https", "databricks"}
_UV_PROJECT_FILES = ("pyproject.toml", "uv.lock", ".python-version")


def _quiet_mlflow() -> None:
    """No telemetry, and no INFO chatter on the user's terminal (modelyard reports progress)."""
    import logging

    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("DO_NOT_TRACK", "true")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    import mlflow  # noqa: F401 - its import configures the "mlflow" logger; quiet it after

    logging.getLogger("mlflow").setLevel(logging.ERROR)
    logging.getLogger("alembic").setLevel(logging.WARNING)


def default_tracking_uri(workdir: Path) -> str:
    """The embedded store: ``sqlite:///<absolute workdir>/mlflow.db``.

    >>> default_tracking_uri(Path("/p/.modelyard"))
    'sqlite:////p/.modelyard/mlflow.db'
    """
    return f"sqlite:///{Path(workdir).resolve() / 'mlflow.db'}"


def default_artifact_location(workdir: Path) -> str:
    """Where runs of the embedded store keep their artifacts: ``<workdir>/mlartifacts``."""
    return (Path(workdir).resolve() / "mlartifacts").as_uri()


def resolve_tracking_uri(tracking: TrackingSection, workdir: Path) -> str:
    """The configured URI, or the embedded SQLite store under ``workdir``."""
    return tracking.uri or default_tracking_uri(workdir)


def resolve_model_name(tracking: TrackingSection, project: str) -> str:
    """The registered model's name: ``tracking.model_name`` or the project name."""
    return tracking.model_name or project


def missing_registration(tracking_uri: str, name: str, version: str, run_id: str) -> str | None:
    """Why the registry no longer holds what a cached registration recorded, or ``None``.

    For a cached run, in milliseconds and without importing MLflow: the embedded SQLite store
    is read directly (its file deleted, the version deleted or now from another run, or the
    model's local files gone all count as missing). An MLflow server is asked through its REST
    API (one request, ``MLFLOW_TRACKING_TOKEN`` or ``MLFLOW_TRACKING_USERNAME``/``PASSWORD``
    as MLflow uses them). A store that cannot be reached or read now, or of another kind, is
    not taken for a loss (``None``): the cached registration is trusted, as before.
    """
    import sqlite3
    from urllib.parse import unquote

    if tracking_uri.startswith(("http://", "https://")):
        return _missing_on_server(tracking_uri, name, version, run_id)
    if not tracking_uri.startswith("sqlite:///"):
        return None
    db = Path(tracking_uri.removeprefix("sqlite:///"))
    where = f"the registry ({db})"
    what = f"model {name} version {version}"
    if not db.is_file():
        return f"{what} is missing: {where} is gone"
    try:
        with contextlib.closing(sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True)) as con:
            row = con.execute(
                "SELECT run_id, current_stage, storage_location, source FROM model_versions"
                " WHERE name = ? AND version = ?",
                (name, int(version)),
            ).fetchone()
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):  # an empty file: a store that was never written
            return f"{what} is missing from {where}"
        return None  # locked, unreadable: it cannot be told, the cached registration stands
    except (sqlite3.Error, ValueError):
        return None
    if row is None or row[1] == "Deleted_Internal":
        return f"{what} is missing from {where}"
    if row[0] != run_id:
        return f"{what} in {where} now comes from another run ({row[0]}, not {run_id})"
    location = row[2] or row[3] or ""
    if location.startswith("file://") and not Path(unquote(urlparse(location).path)).exists():
        return f"the files of {what} are gone ({unquote(urlparse(location).path)})"
    return None


def _missing_on_server(uri: str, name: str, version: str, run_id: str) -> str | None:
    """:func:`missing_registration` for an MLflow server (``GET model-versions/get``)."""
    import base64
    import ssl
    import urllib.error
    import urllib.request
    from urllib.parse import urlencode

    from modelyard.errors import mask_url, split_credentials

    headers = {}
    user, password = os.environ.get("MLFLOW_TRACKING_USERNAME"), None
    parts = split_credentials(uri)
    if parts is not None:
        scheme, user, password, rest = parts
        uri = scheme + rest
    else:
        password = os.environ.get("MLFLOW_TRACKING_PASSWORD")
    if os.environ.get("MLFLOW_TRACKING_TOKEN"):
        headers["Authorization"] = f"Bearer {os.environ['MLFLOW_TRACKING_TOKEN']}"
    elif user:
        token = base64.b64encode(f"{user}:{password or ''}".encode()).decode()
        headers["Authorization"] = f"Basic {token}"
    context = None
    if uri.startswith("https://"):
        context = ssl.create_default_context(
            cafile=os.environ.get("MLFLOW_TRACKING_SERVER_CERT_PATH") or None
        )
        if os.environ.get("MLFLOW_TRACKING_INSECURE_TLS", "").lower() == "true":
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
    query = urlencode({"name": name, "version": version})
    url = f"{uri.rstrip('/')}/api/2.0/mlflow/model-versions/get?{query}"
    what = f"model {name} version {version}"
    try:
        request = urllib.request.Request(url, headers=headers)
        with urllib.request.urlopen(request, timeout=10, context=context) as response:
            found = json.load(response).get("model_version") or {}
    except urllib.error.HTTPError as exc:
        if exc.code == 404:  # RESOURCE_DOES_NOT_EXIST
            return f"{what} is missing from the registry at {mask_url(uri)}"
        return None
    except (OSError, ValueError):
        return None
    if found.get("run_id") and found["run_id"] != run_id:
        return f"{what} at {mask_url(uri)} now comes from another run ({found['run_id']})"
    return None


def make_client(tracking_uri: str) -> MlflowClient:
    """An explicit client for runs and the registry (both at ``tracking_uri``)."""
    _quiet_mlflow()
    from mlflow.tracking import MlflowClient

    if tracking_uri.startswith("sqlite:///"):
        Path(tracking_uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    return MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)


@dataclass(frozen=True)
class TrackedRun:
    """What :func:`log_training_run` recorded."""

    run_id: str
    experiment_id: str
    model_uri: str
    """``models:/<model id>`` of the logged model."""
    registered_version: str | None
    """The new version of the registered model, or ``None`` when not registered."""
    tracking_uri: str
    model_name: str | None = None
    """The registered model's name (``None`` when not registered)."""

    @property
    def registered_uri(self) -> str | None:
        """``models:/<name>/<version>``, or ``None`` when not registered."""
        if self.model_name is None or self.registered_version is None:
            return None
        return f"models:/{self.model_name}/{self.registered_version}"


def log_training_run(
    *,
    tracking: TrackingSection,
    workdir: Path,
    project: str,
    params: Mapping[str, Any],
    metrics: Mapping[str, float],
    model: Any,
    contract: DataContract,
    task: str,
    input_example: pd.DataFrame,
    artifacts: Mapping[str, str | bytes],
    tags: Mapping[str, str],
    register: bool = True,
    finish: bool = True,
) -> TrackedRun:
    """Log one training run (params, metrics, tags, artifacts, the model) and register the model.

    ``params`` must already be redacted; nested mappings are flattened with dots. ``artifacts``
    maps a relative POSIX name (``reports/run.html``) to its text or bytes. ``tags`` (data
    fingerprints, code version, ...) go on the run, the logged model and the new registered
    version (the lineage), together with the run id and the project.

    The run carries the host and process id that own it (``modelyard.host``, ``modelyard.pid``):
    if the process is killed, :func:`fail_interrupted_runs` marks the run ``FAILED`` later.
    With ``finish=False`` the run stays ``RUNNING`` for the caller to add to (the gate's
    decision) and end with :func:`finish_run`; it is still marked ``FAILED`` if logging fails.
    Temporary files go to ``<workdir>/staging/<pid>-*`` (see :func:`clean_staging`).
    """
    _quiet_mlflow()
    tracking_uri = resolve_tracking_uri(tracking, workdir)
    client = make_client(tracking_uri)
    experiment_id = ensure_experiment(
        client, tracking.experiment or project, tracking_uri=tracking_uri, workdir=workdir
    )
    from mlflow.entities import Param

    run_tags = {**{k: str(v) for k, v in tags.items()}, "modelyard.project": project}
    run_tags["modelyard.task"] = task
    owner = {HOST_TAG: socket.gethostname(), PID_TAG: str(os.getpid())}
    run = client.create_run(experiment_id, tags={**run_tags, **owner}, run_name=f"{project}-train")
    run_id: str = run.info.run_id
    staging = staging_dir(workdir)
    try:
        flat = _flatten(params)
        client.log_batch(run_id, params=[Param(k, v) for k, v in flat.items()])
        _log_artifacts(
            client, run_id, {CONTRACT_FILE: _contract_text(contract), **artifacts}, tmp_dir=staging
        )
        model_id, model_location = _log_model(
            client,
            experiment_id=experiment_id,
            run_id=run_id,
            pipeline=model,
            contract=contract,
            task=task,
            input_example=input_example,
            params=flat,
            tags=run_tags,
            metrics=metrics,
            tmp_dir=staging,
        )
        version = None
        model_name = None
        if register:
            model_name = resolve_model_name(tracking, project)
            version = _register(
                client,
                model_name=model_name,
                model_id=model_id,
                model_location=model_location,
                run_id=run_id,
                tags={**run_tags, "modelyard.run_id": run_id},
            )
    except BaseException:
        client.set_terminated(run_id, "FAILED")
        raise
    if finish:
        client.set_terminated(run_id, "FINISHED")
    return TrackedRun(
        run_id=run_id,
        experiment_id=experiment_id,
        model_uri=f"models:/{model_id}",
        registered_version=version,
        tracking_uri=tracking_uri,
        model_name=model_name,
    )


def finish_run(tracking_uri: str, run_id: str, *, failed: bool = False) -> None:
    """End a run left open by ``log_training_run(..., finish=False)``."""
    make_client(tracking_uri).set_terminated(run_id, "FAILED" if failed else "FINISHED")


# --------------------------------------------------------------------------- interrupted runs

HOST_TAG = "modelyard.host"
"""Run tag: the host of the process that logs the run."""
PID_TAG = "modelyard.pid"
"""Run tag: the id of the process that logs the run."""
INTERRUPTED_TAG = "modelyard.interrupted"
"""Run tag set when a run found ``RUNNING`` with its process gone is marked ``FAILED``."""
STALE_AFTER_SECONDS = 6 * 3600
"""A ``RUNNING`` run whose process cannot be checked (another host, or a run logged before the
owner tags existed) is taken as interrupted once it is this old: a register takes minutes."""
STAGING = "staging"
"""Folder of the workdir holding the temporary files of a register, one ``<pid>-*`` per process."""


@dataclass(frozen=True)
class InterruptedRun:
    """A run that was ``RUNNING`` with nobody left to end it, now ``FAILED``."""

    run_id: str
    reason: str
    removed_models: tuple[str, ...]
    """Logged models of the run that never finished uploading: their files were deleted."""


def pid_alive(pid: int) -> bool:
    """Whether a process with this id runs on this host (a zombie counts as running)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, owned by someone else
        return True
    return True


def _stale(run: Any, now_ms: int) -> str | None:
    """Why a RUNNING run is interrupted, or None while its owner may still be at work."""
    tags = run.data.tags
    host, pid = tags.get(HOST_TAG), tags.get(PID_TAG, "")
    if host == socket.gethostname() and pid.isdigit():
        if int(pid) == os.getpid() or pid_alive(int(pid)):
            return None
        return f"its process {pid} on {host} is gone (killed or crashed mid-register)"
    age = (now_ms - int(run.info.start_time or now_ms)) / 1000
    if age < STALE_AFTER_SECONDS:
        return None
    where = f"on {host}" if host else "(no owner recorded)"
    return f"still RUNNING {age / 3600:.1f} h after it started {where}"


def fail_interrupted_runs(
    client: MlflowClient, experiment_id: str, project: str, *, tracking_uri: str
) -> list[InterruptedRun]:
    """Mark the project's ``RUNNING`` runs whose process is gone as ``FAILED``; clean up after
    them (see :data:`STALE_AFTER_SECONDS` for runs of other hosts).

    A logged model of such a run that was never finalised (``PENDING``: its upload was cut)
    has its files deleted and is marked ``FAILED``. The run's own artifacts stay: they are the
    record of what the run did before it was killed.
    """
    from mlflow.entities import LoggedModelStatus

    now_ms = int(time.time() * 1000)
    found = client.search_runs(
        [experiment_id],
        filter_string=(
            f"attributes.status = 'RUNNING' and tags.`modelyard.project` = '{_quote(project)}'"
        ),
        max_results=1000,
    )
    out: list[InterruptedRun] = []
    for run in found:
        reason = _stale(run, now_ms)
        if reason is None:
            continue
        run_id = run.info.run_id
        removed: list[str] = []
        models = client.search_logged_models(
            [experiment_id], filter_string=f"source_run_id = '{run_id}'"
        )
        for logged in models:
            if logged.status == LoggedModelStatus.READY:
                continue
            _delete_artifacts(logged.artifact_location, tracking_uri)
            client.finalize_logged_model(logged.model_id, LoggedModelStatus.FAILED)
            removed.append(logged.model_id)
        client.set_tag(run_id, INTERRUPTED_TAG, reason[:5000])
        client.set_terminated(run_id, "FAILED")
        out.append(InterruptedRun(run_id, reason, tuple(removed)))
    return out


def _delete_artifacts(location: str, tracking_uri: str) -> None:
    from mlflow.exceptions import MlflowException
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

    repo = get_artifact_repository(location, tracking_uri=tracking_uri)
    with contextlib.suppress(MlflowException, OSError, NotImplementedError):  # gone, read-only
        repo.delete_artifacts()  # type: ignore[no-untyped-call,unused-ignore]


def staging_dir(workdir: Path) -> Path:
    """``<workdir>/staging``: temporary files of a register live here, never in ``/tmp``."""
    folder = Path(workdir) / STAGING
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def clean_staging(workdir: Path) -> list[Path]:
    """Remove the temporary folders of register processes that are gone; returns them."""
    import shutil

    folder = Path(workdir) / STAGING
    if not folder.is_dir():
        return []
    removed = []
    for item in sorted(folder.iterdir()):
        pid = item.name.split("-", 1)[0]
        if pid.isdigit() and (int(pid) == os.getpid() or pid_alive(int(pid))):
            continue
        if item.is_dir():
            shutil.rmtree(item, ignore_errors=True)
        else:
            item.unlink(missing_ok=True)
        removed.append(item)
    return removed


def _quote(text: str) -> str:
    return text.replace("\\", "\\\\").replace("'", "\\'")


def log_run_artifacts(tracking_uri: str, run_id: str, artifacts: Mapping[str, str | bytes]) -> None:
    """Add artifacts (relative name -> text or bytes) to a finished run."""
    _quiet_mlflow()
    _log_artifacts(make_client(tracking_uri), run_id, artifacts)


# --------------------------------------------------------------------------- helpers


def ensure_experiment(client: MlflowClient, name: str, *, tracking_uri: str, workdir: Path) -> str:
    """The id of the experiment ``name``, created (artifacts under the workdir) if needed."""
    from mlflow.exceptions import MlflowException

    found = client.get_experiment_by_name(name)
    if found is not None:
        if found.lifecycle_stage == "deleted":
            raise ModelyardError(
                f"the MLflow experiment '{name}' is deleted",
                where=tracking_uri,
                fix="Restore it (mlflow experiments restore) or set tracking.experiment to "
                "another name in modelyard.yaml.",
            )
        return str(found.experiment_id)
    remote = urlparse(tracking_uri).scheme in _REMOTE_SCHEMES
    location = None if remote else default_artifact_location(workdir)
    try:
        return str(client.create_experiment(name, artifact_location=location))
    except MlflowException:  # created meanwhile by a parallel run
        again = client.get_experiment_by_name(name)
        if again is None:
            raise
        return str(again.experiment_id)


def _flatten(params: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": "1"}``; values longer than MLflow's limit are cut."""
    out: dict[str, str] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(_flatten(value, prefix=f"{name}."))
        else:
            text = value if isinstance(value, str) else json.dumps(value, default=str)
            out[name] = text if len(text) <= 6000 else text[:5997] + "..."
    return out


def _contract_text(contract: DataContract) -> str:
    try:
        from modelyard.data.contract import contract_to_yaml
    except ImportError:  # pragma: no cover - older contract module
        return contract.model_dump_json(indent=2)
    return contract_to_yaml(contract)


def _safe_relpath(name: str) -> PurePosixPath:
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts or not path.parts:
        raise ModelyardError(
            f"artifact name '{name}' is not a relative path inside the run",
            expected="a relative name such as 'reports/run.html'",
            fix="Drop the leading '/' and any '..' from the name.",
        )
    return path


def _log_artifacts(
    client: MlflowClient,
    run_id: str,
    artifacts: Mapping[str, str | bytes],
    *,
    tmp_dir: Path | None = None,
) -> None:
    if not artifacts:
        return
    prefix = f"{os.getpid()}-artifacts-" if tmp_dir else "modelyard-artifacts-"
    with tempfile.TemporaryDirectory(prefix=prefix, dir=tmp_dir) as tmp:
        for name, content in artifacts.items():
            target = Path(tmp, *_safe_relpath(name).parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                target.write_bytes(content)
            else:
                target.write_text(content, encoding="utf-8")
        client.log_artifacts(run_id, tmp)


def _log_model(
    client: MlflowClient,
    *,
    experiment_id: str,
    run_id: str,
    pipeline: Any,
    contract: DataContract,
    task: str,
    input_example: pd.DataFrame,
    params: Mapping[str, str],
    tags: Mapping[str, str],
    metrics: Mapping[str, float],
    tmp_dir: Path | None = None,
) -> tuple[str, str]:
    """Save the pyfunc model locally, upload it as a LoggedModel of the run.

    Returns the model's id and its artifact location.
    """
    import mlflow.pyfunc
    from mlflow.entities import LoggedModelOutput, LoggedModelStatus, Metric
    from mlflow.models import Model

    from modelyard.ops import native
    from modelyard.ops.pyfunc import ModelyardPyfunc

    features = model_inputs(pipeline, contract)
    wrapper = ModelyardPyfunc.from_pipeline(pipeline, features=features, task=task)
    example = input_example[features].head(5).reset_index(drop=True)
    signature = _signature(wrapper, example, contract)
    plan = pickle_plan(wrapper)

    logged = client.create_logged_model(
        experiment_id=experiment_id,
        name=MODEL_NAME_IN_RUN,
        source_run_id=run_id,
        params=dict(params),
        tags={**tags, "modelyard.features": ",".join(features)[:5000]},
    )
    model_id: str = logged.model_id
    client.log_outputs(run_id, [LoggedModelOutput(model_id, step=0)])
    now = int(time.time() * 1000)
    client.log_batch(
        run_id,
        metrics=[
            Metric(k, float(v), now, 0, run_id=run_id, model_id=model_id)
            for k, v in metrics.items()
        ],
    )
    mlflow_model = Model(
        artifact_path=logged.artifact_location,
        model_uuid=model_id,
        run_id=run_id,
        model_id=model_id,
    )
    mlflow_model.add_flavor(native.FLAVOR, **native.flavor_conf(wrapper))
    prefix = f"{os.getpid()}-model-" if tmp_dir else "modelyard-model-"
    with tempfile.TemporaryDirectory(prefix=prefix, dir=tmp_dir) as tmp:
        local = Path(tmp, "model")
        with _by_value(*plan.by_value):
            mlflow.pyfunc.save_model(
                path=str(local),
                python_model=wrapper,
                mlflow_model=mlflow_model,
                signature=signature,
                input_example=example,
                pip_requirements=plan.requirements,
            )
            native.write_pipeline(local, pipeline)  # the native flavour: loads without MLflow
        for stray in _UV_PROJECT_FILES:  # copied from the cwd by MLflow's uv auto-detection
            (local / stray).unlink(missing_ok=True)
        (local / CONTRACT_FILE).write_text(_contract_text(contract), encoding="utf-8")
        client.log_model_artifacts(model_id, str(local))
    client.finalize_logged_model(model_id, LoggedModelStatus.READY)
    return model_id, str(logged.artifact_location)


def model_inputs(pipeline: Any, contract: DataContract) -> list[str]:
    """The columns the fitted pipeline takes: what it was fitted on (a time column used through
    its parts included, a sample-weight column excluded), else the contract's features."""
    fitted = getattr(pipeline, "feature_names_in_", None)
    if fitted is not None:
        return [str(name) for name in fitted]
    return [c.name for c in contract.features]


def _signature(wrapper: Any, example: pd.DataFrame, contract: DataContract) -> Any:
    """Input schema from the contract, output schema from a prediction of the example.

    MLflow casts inputs strictly: int64 is not "safely" a double, and a float64 column is not a
    long. Integer data arrives as int64 from users but as float64 from modelyard's own
    conversion (``to_pandas``, which also serves the pipeline), so int and bool columns are
    declared ``Any``; the pipeline itself converts their values.
    """
    from mlflow.models import infer_signature
    from mlflow.types import ColSpec, DataType, Schema
    from mlflow.types.schema import AnyType

    kinds = {
        "int": DataType.long,
        "float": DataType.double,
        "str": DataType.string,
        "bool": DataType.boolean,
        "date": DataType.datetime,
        "datetime": DataType.datetime,
    }
    specs: list[Any] = []
    for col in (contract.column(name) for name in wrapper.features):
        kind: Any = kinds[col.type]
        if col.type in {"int", "bool"}:
            kind = AnyType()  # type: ignore[no-untyped-call,unused-ignore]
        specs.append(ColSpec(kind, col.name, required=not col.nullable))
    output = wrapper.predict(None, example)
    inferred = infer_signature(example, output)
    return type(inferred)(inputs=Schema(specs), outputs=inferred.outputs)


class _ModuleRecorder(pickle.Unpickler):
    def __init__(self, data: bytes) -> None:
        super().__init__(io.BytesIO(data))
        self.modules: set[str] = set()

    def find_class(self, module: str, name: str) -> Any:
        self.modules.add(module.split(".", maxsplit=1)[0])
        return super().find_class(module, name)


@dataclass(frozen=True)
class PicklePlan:
    """How to pickle a model so that it loads in a plain environment."""

    by_value: tuple[str, ...]
    """Top-level modules pickled by value: modelyard and local code (no installed distribution)."""
    requirements: list[str]
    """Pinned distributions of every module the pickle refers to by reference."""


def pickle_plan(wrapper: Any) -> PicklePlan:
    """Which modules travel inside the pickle, and which distributions the loader needs.

    The pickle is replayed with a recording unpickler: every module it imports by reference is
    one the loading environment must have. A module that no installed distribution provides
    (modelyard itself, a user's ``features.py`` of custom functions) is pickled by value instead,
    and the recording is repeated until only installable modules remain.
    """
    import cloudpickle  # type: ignore[import-untyped,unused-ignore]

    stdlib = set(sys.stdlib_module_names) | {"builtins", "__builtin__", "__main__"}
    providers = md.packages_distributions()
    by_value = {"modelyard"}
    for _ in range(8):
        with _by_value(*sorted(by_value)):
            data = cloudpickle.dumps(wrapper)
        recorder = _ModuleRecorder(data)
        recorder.load()
        external = recorder.modules - stdlib
        local = {m for m in external if m not in providers} - by_value
        if not local:
            break
        by_value |= local
    dists = set(ALWAYS_REQUIRED)
    for module in sorted(external - by_value):
        if module != "mlflow":  # mlflow-skinny is enough to load a pyfunc
            dists.update(providers[module])
    pinned = []
    for dist in sorted(dists, key=str.lower):
        try:
            pinned.append(f"{dist}=={md.version(dist)}")
        except md.PackageNotFoundError:  # pragma: no cover - provider without metadata
            pinned.append(dist)
    return PicklePlan(by_value=tuple(sorted(by_value)), requirements=pinned)


class _by_value:
    """Pickle these top-level modules by value with cloudpickle while the block runs."""

    def __init__(self, *modules: str) -> None:
        self.names = modules
        self.registered: list[Any] = []

    def __enter__(self) -> None:
        import importlib

        import cloudpickle

        for name in self.names:
            module = importlib.import_module(name)
            try:
                cloudpickle.register_pickle_by_value(module)
            except ValueError:  # already registered by someone else: leave it to them
                continue
            self.registered.append(module)

    def __exit__(self, *exc: object) -> None:
        import cloudpickle

        for module in self.registered:
            cloudpickle.unregister_pickle_by_value(module)
        self.registered.clear()


def _register(
    client: MlflowClient,
    *,
    model_name: str,
    model_id: str,
    model_location: str,
    run_id: str,
    tags: Mapping[str, str],
) -> str:
    # The source is the artifact location itself, not ``models:/<id>``: the SQLAlchemy registry
    # resolves the latter through the *global* tracking URI (a TODO in MLflow 3.17).
    from mlflow.exceptions import MlflowException

    try:
        client.create_registered_model(
            model_name, description="Registered by modelyard; aliases champion / challenger."
        )
    except MlflowException as exc:
        if exc.error_code not in {"RESOURCE_ALREADY_EXISTS", "ALREADY_EXISTS"}:
            raise
    version = client.create_model_version(
        name=model_name,
        source=model_location,
        run_id=run_id,
        tags=dict(tags),
        model_id=model_id,
    )
    return str(version.version)


@dataclass(frozen=True)
class ChildRun:
    """One model configuration of the search, logged under the pipeline's run."""

    name: str
    params: Mapping[str, Any]
    metrics: Mapping[str, float]
    steps: Mapping[str, Sequence[float]]
    """Metric series, one value per step (per fold)."""
    tags: Mapping[str, str]
    status: str
    """MLflow's run status: ``FINISHED``, ``KILLED`` (pruned or stopped) or ``FAILED``."""


def log_child_runs(tracking_uri: str, parent_run_id: str, children: Sequence[ChildRun]) -> int:
    """Log every configuration of the search as a child run of ``parent_run_id`` (so the MLflow
    UI lists and compares them under the pipeline's run); returns how many were logged."""
    _quiet_mlflow()
    from mlflow.entities import Metric, Param, RunTag

    client = make_client(tracking_uri)
    parent = client.get_run(parent_run_id)
    experiment_id = parent.info.experiment_id
    now = int(time.time() * 1000)
    for child in children:
        tags = {**child.tags, "mlflow.parentRunId": parent_run_id}
        run = client.create_run(experiment_id, tags=tags, run_name=child.name)
        run_id = run.info.run_id
        metrics = [
            Metric(k, float(v), now, 0) for k, v in child.metrics.items() if math.isfinite(v)
        ]
        for key, values in child.steps.items():
            metrics += [
                Metric(key, float(v), now, i) for i, v in enumerate(values) if math.isfinite(v)
            ]
        params = [Param(k, v) for k, v in _flatten(child.params).items()]
        client.log_batch(
            run_id, metrics=metrics, params=params, tags=[RunTag("modelyard.child", "1")]
        )
        client.set_terminated(run_id, child.status)
    return len(children)
