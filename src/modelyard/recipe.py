"""The standard pipeline: wires the stage functions into the engine's DAG from the config.

``Project`` is the Python API; the CLI is a thin layer over it::

    from modelyard import Project

    project = Project.from_yaml("modelyard.yaml")
    print(project.plan())          # what would run, and why
    result = project.run()         # a RunResult
    result.validation["train"].invalid_rows
"""

from __future__ import annotations

import functools
import json
import os
import shlex
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelyard.__about__ import __version__
from modelyard.config.loader import load_config
from modelyard.config.schema import ProjectConfig
from modelyard.engine.dag import Pipeline
from modelyard.engine.events import Event, Listener, StepFinished, ignore
from modelyard.engine.runner import Plan, RunOutcome, StepRecord, plan, run, run_step
from modelyard.engine.step import Step
from modelyard.engine.store import ArtifactStore, Store
from modelyard.errors import (
    ConfigError,
    ModelyardError,
    Problem,
    StepFailed,
    ValidationFailed,
    shown_path,
)

if TYPE_CHECKING:
    import threading

    from modelyard.compute import Executor
    from modelyard.data.contract import DataContract
    from modelyard.data.leakage import ModelingContract
    from modelyard.data.profile import Profile
    from modelyard.data.streaming import BatchReport, IngestStats
    from modelyard.data.table import Ingested, Table
    from modelyard.data.validation import Mode, ValidationReport, ValidationResult
    from modelyard.engine.events import Progress
    from modelyard.engine.memo import Memo
    from modelyard.labels.records import LabelSpec
    from modelyard.labels.training import LabelTable
    from modelyard.modeling.evaluate import Evaluation
    from modelyard.modeling.splits import Split
    from modelyard.modeling.stages import Exploration, TrainedModel, Tuning
    from modelyard.ops.batch import BatchResult
    from modelyard.ops.monitoring.drift import DriftReport
    from modelyard.ops.monitoring.session import MonitorInputs, MonitorResult
    from modelyard.ops.packaging import PackageResult
    from modelyard.ops.promotion import Registration
    from modelyard.ops.registry import Registry


WORKER_MODULES: dict[str, str] = {
    **dict.fromkeys(("ingest", "ingest_test"), "modelyard.data.sources"),
    "contract": "modelyard.data.contract",
    **dict.fromkeys(("validate", "validate_test"), "modelyard.data.validation"),
    "profile": "modelyard.data.profile",
    **dict.fromkeys(("explore", "tune", "train"), "modelyard.modeling.search.fit"),
}
"""The module of the tasks a step runs on the workers: a local worker imports those of the
steps a run will run as it starts (the model code costs seconds a run of the data steps alone
should not pay)."""

Scratch = Callable[[str], Path]
"""The store's scratch space (a runtime resource): ``scratch(name)`` is a fresh folder for a
step to write a large output into (a table's parts) before the store keeps it."""

# ----------------------------------------------------------------------------- stages as steps
# Thin adapters: each takes resolved parameters (pydantic sections) and calls a stage function.


def ingest(config: ProjectConfig, scratch: Scratch, executor: Executor) -> Ingested:
    """Read the training (reference) data as configured, streamed into a table (a CSV file's
    runs of lines parsed side by side on the executor)."""
    from modelyard.data.sources import read_source_table

    data = config.data
    return read_source_table(
        data.source,
        scratch("ingest"),
        normalize=data.normalize,
        drop=data.columns.drop,
        sample=data.sample,
        seed=config.seed,
        batch_rows=data.batch_rows,
        executor=executor,
    )


def ingest_test(config: ProjectConfig, scratch: Scratch, executor: Executor) -> Ingested:
    """Read the explicit hold-out file, streamed into a table."""
    from modelyard.data.sources import read_test_table

    data = config.data
    assert data.test is not None
    return read_test_table(
        data.test, data.source, scratch("ingest_test"), normalize=data.normalize,
        drop=data.columns.drop, batch_rows=data.batch_rows, executor=executor,
    )  # fmt: skip


def contract(
    train: Ingested, config: ProjectConfig, declared: DataContract | None, executor: Executor
) -> DataContract:
    """The data contract: the user's file when it exists, else inferred from the training data
    (a sample of a large table, made right for all of it by a streamed pass)."""
    if declared is not None:
        return declared
    from modelyard.data.contract import infer_contract_table
    from modelyard.data.sources import infer_task

    data = config.data
    columns = train.rows.columns
    if data.target is not None and data.target not in columns:
        from modelyard.data.contract import did_you_mean
        from modelyard.data.sources import separator_hint
        from modelyard.errors import DataError, name_list

        raise DataError(
            f"the target column '{data.target}' is not in the data"
            f"{did_you_mean(data.target, columns)}",
            where="data.target",
            expected=f"one of the {len(columns):,} columns {name_list(columns)}",
            fix=separator_hint(columns, data.source.read) or "Fix data.target in modelyard.yaml.",
        )
    hints = dict(data.source.read.dtypes)
    hints.update({c: "datetime" for c in data.source.read.parse_dates if c not in hints})
    return infer_contract_table(
        train.rows,
        target=data.target,
        task=None if data.task == "auto" else data.task,
        roles=data.columns,
        options=config.contract,
        type_hints=hints,
        seed=config.seed,
        executor=executor,
        task_of=infer_task,
    )


def validate(
    batch: Ingested,
    contract: DataContract,
    config: ProjectConfig,
    scratch: Scratch,
    executor: Executor,
    mode: Mode = "train",
) -> ValidationResult:
    """Validate a table against the contract and the declared checks, part by part.

    The hold-out is validated as data to be scored (``mode="score"``): values outside the
    training range and unseen categories are flagged as drift and kept, since dropping them
    would test the model on the rows most like its training data only.
    """
    from modelyard.data.validation import validate_table

    return validate_table(
        batch,
        contract if config.validation.contract else None,
        config.validation,
        mode=mode,
        folder=scratch("validate"),
        executor=executor,
    )


def profile(
    validated: ValidationResult, contract: DataContract, config: ProjectConfig, executor: Executor
) -> Profile:
    """Profile the valid rows of the training data: one task per part on the executor (a
    table of one part is profiled inline), statistics merged in part order."""
    from modelyard.data.profile import profile as run_profile

    return run_profile(
        validated.valid, contract, config.profile, seed=config.seed, executor=executor
    )


def labels(config: ProjectConfig, task: str | None, features: list[str]) -> LabelTable:
    """The label set (``labels.path``) resolved to one label per row by ``labels.conflict``."""
    from modelyard.labels.training import label_table

    return label_table(
        config.labels.path, _label_spec(config, task, features), config.labels.conflict
    )


def labelled(
    train: Ingested,
    table: LabelTable,
    config: ProjectConfig,
    task: str | None,
    features: list[str],
    progress: Progress,
    scratch: Scratch,
    executor: Executor,
) -> Ingested:
    """The training data plus the accepted labels, joined by row key (labels of rows the
    source lacks bring their rows, after the source's); labels that match no row are counted
    in a progress note. Part by part: each part's rows get their labels, and say which label
    keys they hold; the labelled rows no part holds come last."""
    import polars as pl

    from modelyard.compute import map_in_order
    from modelyard.data.table import Ingested, Table, part_path, write_part
    from modelyard.labels.training import LabelTable, join_labels

    spec = _label_spec(config, task, features)
    parts = train.rows.parts()
    folder = scratch("labelled")
    if len(parts) == 1:  # the whole frame at once, cut as ingestion cuts
        from modelyard.data.table import as_table

        joined, unmatched = join_labels(train.rows.collect(), table, spec)
        _unmatched_note(progress, unmatched)
        return Ingested(as_table(joined, folder, batch_rows=config.data.batch_rows), train.rejected)
    keys_only = LabelTable(table.version, table.labels, {}, table.held)
    done = list(
        map_in_order(
            executor,
            _label_part,
            [(str(p), str(part_path(folder, i)), keys_only, spec) for i, p in enumerate(parts)],
        )
    )
    known = set().union(*(keys for _, keys in done))
    rows = sum(n for n, _ in done)
    rest = {k: v for k, v in table.labels.items() if k not in known}
    unmatched = sum(1 for k in rest if k not in table.rows)
    extra = {k: v for k, v in rest.items() if k in table.rows}
    if extra:
        empty = pl.read_parquet(parts[0], n_rows=0)
        added, _ = join_labels(
            empty, LabelTable(table.version, extra, {k: table.rows[k] for k in extra}), spec
        )
        write_part(added, part_path(folder, len(parts)))
        rows += added.height
    _unmatched_note(progress, unmatched)
    return Ingested(Table(folder, rows), train.rejected)


def _unmatched_note(progress: Progress, unmatched: int) -> None:
    if unmatched:
        progress.update(
            0, note=f"{unmatched} label(s) match no training row and carry no values: left out"
        )


def _label_part(path: str, out: str, table: LabelTable, spec: LabelSpec) -> tuple[int, set[str]]:
    """The task of one part of ``labelled``: its rows with their labels (written to ``out``),
    and the label keys it holds."""
    import polars as pl

    from modelyard.data.table import write_part
    from modelyard.labels.keys import row_keys
    from modelyard.labels.training import join_labels

    frame = pl.read_parquet(path)
    joined, _ = join_labels(frame, table, spec)
    write_part(joined, Path(out))
    if not table.labels:
        return joined.height, set()
    keys = row_keys(frame, spec.key_columns, spec.features).drop_nulls().unique().to_list()
    return joined.height, set(keys).intersection(table.labels)


def _label_spec(config: ProjectConfig, task: str | None, features: list[str]) -> LabelSpec:
    from modelyard.labels.records import LabelSpec

    data = config.data
    key = tuple(config.labels.key or data.columns.id)
    return LabelSpec(str(data.target), task or "", None, key, tuple(features))


def modeling_contract(
    contract: DataContract, profile: Profile, allow_leaky: list[str]
) -> ModelingContract:
    """The contract the modeling steps use: columns with a critical leakage alert left out."""
    from modelyard.data.leakage import modeling_contract as exclude_leaky

    return exclude_leaky(contract, profile.alerts, allow_leaky=allow_leaky)


def split(
    validated: ValidationResult,
    modeling: ModelingContract,
    config: ProjectConfig,
    executor: Executor,
    scratch: Scratch,
    validated_test: ValidationResult | None = None,
) -> Split:
    """The hold-out split (the test file's valid rows when there is one): in memory for data
    of one part, per row and part on the executor for a table of several (then the search
    uses a sample of ``models.search_rows`` training rows)."""
    from modelyard.modeling.stages import split_data

    test = validated_test.valid if validated_test is not None else None
    return split_data(
        validated.valid, test, modeling.contract, config.split, config.seed, models=config.models,
        scratch=scratch, executor=executor, batch_rows=config.data.batch_rows,
    )  # fmt: skip


def explore(
    split: Split,
    modeling: ModelingContract,
    config: ProjectConfig,
    reproducible: bool,
    pruning: bool,
    executor: Executor,
    memo: Memo,
    progress: Progress,
) -> Exploration:
    """Cross-validate the portfolio of every candidate family into a leaderboard."""
    from modelyard.modeling.stages import explore_models

    contract = modeling.contract
    return explore_models(
        split, contract, config.features, config.split, config.models, config.seed, executor,
        reproducible=reproducible, pruning=pruning, memo=memo, report=progress.update,
    )  # fmt: skip


def tune(
    split: Split,
    modeling: ModelingContract,
    exploration: Exploration,
    config: ProjectConfig,
    executor: Executor,
    memo: Memo,
    progress: Progress,
) -> Tuning:
    """Tune the best families with Optuna, trials in parallel, within the budget left."""
    from modelyard.modeling.stages import tune_models

    contract = modeling.contract
    return tune_models(
        split, contract, exploration, config.features, config.split, config.models,
        config.tuning, config.seed, executor, memo=memo, report=progress.update,
    )  # fmt: skip


def train(
    split: Split,
    modeling: ModelingContract,
    exploration: Exploration,
    tuning: Tuning,
    config: ProjectConfig,
    executor: Executor,
    progress: Progress,
    scratch: Scratch,
) -> TrainedModel:
    """Blend the best models into a weighted ensemble and refit it on all training rows (a
    big table's XGBoost members out of core, see :func:`~modelyard.modeling.stages.train_final`)."""
    from modelyard.modeling.stages import train_final

    contract = modeling.contract
    return train_final(
        split, contract, exploration, tuning, config.features, config.models,
        config.evaluation, config.seed, executor, progress.update, scratch=scratch,
    )  # fmt: skip


def evaluate(
    trained: TrainedModel,
    split: Split,
    modeling: ModelingContract,
    config: ProjectConfig,
    executor: Executor,
) -> Evaluation:
    """Score the model once on the hold-out test set."""
    from modelyard.modeling.stages import evaluate_model

    return evaluate_model(
        trained, split, modeling.contract, config.models, config.evaluation, config.seed,
        executor,
    )  # fmt: skip


def register(
    trained: TrainedModel,
    evaluation: Evaluation,
    split: Split,
    modeling: ModelingContract,
    validated: ValidationResult,
    exploration: Exploration,
    tuning: Tuning,
    config: ProjectConfig,
    workdir: str,
    command: str,
    validated_test: ValidationResult | None = None,
) -> Registration:
    """Track the run in MLflow, register the model, and apply the promotion gate."""
    from modelyard.data.contract import with_typical_values
    from modelyard.data.sources import fingerprint_source
    from modelyard.modeling.features import target_array
    from modelyard.modeling.stages import Problem
    from modelyard.ops.promotion import register_and_gate

    contract = with_typical_values(modeling.contract, split.train)  # the API docs' example
    problem = Problem.of(contract, config.models)
    test_X, test_y, _ = problem.xy(split.test)
    gate_score = evaluation.score
    if split.test_table is not None and split.test.height < split.test_rows:
        # a big test set: the gate compares the candidate and the champion on the same
        # bounded sample (split.test); the logged test metrics cover every test row
        import numpy as np

        from modelyard.modeling.tasks import score

        model, y_true = trained.model, test_y
        if problem.task == "regression":
            gate_score = score(problem.task, problem.metric, y_true, y_pred=model.predict(test_X))
        else:
            y_true = np.asarray(test_y).astype(str)
            classes = [str(c) for c in model.classes_]
            unseen = sorted(set(np.unique(y_true)) - set(classes))
            proba = None if unseen else model.predict_proba(test_X)
            gate_score = score(
                problem.task, problem.metric, y_true,
                y_pred=np.asarray(model.predict(test_X)).astype(str), y_proba=proba,
                classes=classes + unseen,
            )  # fmt: skip
    reports = [validated.report] + ([validated_test.report] if validated_test else [])
    tags = {
        "modelyard.version": __version__,
        "modelyard.data.source": fingerprint_source(config.data.source),
        "modelyard.code": _code_version(Path(workdir).parent),
        "modelyard.model": trained.choice.name,
        "modelyard.split": split.description,
    }
    if split.sample:
        tags["modelyard.sample"] = split.sample
    params = _masked(
        config.model_dump(mode="json", exclude={"data": {"source": {"read"}}}, warnings=False)
    )
    registration = register_and_gate(
        project=config.name, workdir=Path(workdir), tracking=config.tracking, gate=config.gate,
        model=trained.model, contract=contract, task=problem.task, metric=problem.metric,
        greater_is_better=problem.greater_is_better, test_X=test_X, test_y=test_y,
        candidate_score=gate_score,
        metrics={f"test_{k}": v for k, v in evaluation.metrics.items()}
        | {f"cv_{problem.metric}": trained.choice.score},
        params=params,
        artifacts={
            "leaderboard.json": exploration.leaderboard.model_dump_json(indent=2),
            "evaluation.json": evaluation.model_dump_json(indent=2),
            "choice.json": trained.choice.model_dump_json(indent=2),
        }
        | _calibration_artifact(trained, exploration, tuning),
        tags=tags, data_valid=all(r.invalid_fraction <= r.max_invalid_fraction for r in reports),
        command=command, test_rows=split.test, test_metrics=evaluation.metrics,
        leakage_alerts=modeling.leakage_alerts, train_y=target_array(split.train, contract),
    )  # fmt: skip
    from modelyard.ops.tracking import log_child_runs

    log_child_runs(
        registration.tracking_uri,
        registration.run_id,
        _child_runs(exploration, tuning, problem.metric),
    )
    return registration


def _calibration_artifact(
    trained: TrainedModel, exploration: Exploration, tuning: Tuning
) -> dict[str, str]:
    """The chosen model's probability calibration (monitoring estimates performance before
    labels with it), fitted on its out-of-fold predictions; nothing for regression."""
    from modelyard.ops.monitoring.estimate import CALIBRATION_FILE, calibration_from_search

    oof = exploration.oof if tuning.oof is None else exploration.oof.merged(tuning.oof)
    calibration = calibration_from_search(trained.choice, oof)
    return {} if calibration is None else {CALIBRATION_FILE: calibration.model_dump_json()}


def _child_runs(exploration: Exploration, tuning: Tuning, metric: str) -> list[Any]:
    """Every configuration the search tried, as an MLflow child run."""
    from modelyard.ops.tracking import ChildRun

    status = {"complete": "FINISHED", "failed": "FAILED"}
    children = []
    for stage, rows in (("explore", exploration.leaderboard.rows), ("tune", tuning.rows)):
        for row in rows:
            metrics = {f"cv_{metric}": row.mean, f"cv_{metric}_std": row.std,
                       "fit_seconds": row.fit_seconds}  # fmt: skip
            children.append(
                ChildRun(
                    name=row.name,
                    params={"family": row.family, **row.params},
                    metrics={k: v for k, v in metrics.items() if v is not None},
                    steps={f"cv_{metric}_fold": row.scores},
                    tags={"modelyard.stage": stage, "modelyard.state": row.state,
                          "modelyard.family": row.family, "modelyard.error": row.error or ""},
                    status=status.get(row.state, "KILLED"),
                )
            )  # fmt: skip
    return children


def _masked(value: Any) -> Any:
    """``value`` (nested dicts and lists) with every URL's password masked, for MLflow params:
    ``tracking.uri``, ``monitoring.reference`` or ``ingest.from`` may carry credentials."""
    from modelyard.errors import mask_url

    if isinstance(value, dict):
        return {k: _masked(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_masked(v) for v in value]
    return mask_url(value) if isinstance(value, str) and "://" in value else value


def _code_version(folder: Path) -> str:
    """The git commit of the project folder (``+dirty`` with local changes), if it is a repo."""
    import subprocess

    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=folder,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain"],
            cwd=folder,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{sha}+dirty" if dirty else sha


# ----------------------------------------------------------------------------- the pipeline

STEP_VERSION = __version__  # a new release invalidates cached results
PUBLISHED = "published.json"
"""In the workdir: the keys the published outputs come from, and their files' signatures."""

_LAYERS = {
    "data": ("errors.py", "config", "data"),
    "labels": ("errors.py", "config", "data", "labels"),
    "modeling": ("errors.py", "config", "data", "compute", "modeling"),
    "ops": ("errors.py", "config", "data", "compute", "modeling", "ops"),
}
"""The modelyard code each kind of step runs: its cached results follow edits to it."""


def code_version(layer: str, config: ProjectConfig | None = None) -> str:
    """A step's code version: the release, a digest of the modelyard source it runs (so an edit
    in a development checkout re-runs what it affects, not everything), and for the modeling
    steps the source of the user's feature functions (``features.custom``)."""
    version = f"{STEP_VERSION}+{_source_digest(*_LAYERS[layer])}"
    if config is not None and layer != "data" and config.features.custom:
        version += f"+{_user_code(tuple(config.features.custom))}"
    return version


@functools.cache
def _source_digest(*parts: str) -> str:
    import hashlib

    root = Path(__file__).parent
    h = hashlib.blake2b(digest_size=6)
    for part in parts:
        path = root / part
        for file in sorted(path.rglob("*.py")) if path.is_dir() else [path]:
            h.update(file.relative_to(root).as_posix().encode() + b"\0" + file.read_bytes())
    return h.hexdigest()


def _user_code(refs: tuple[str, ...]) -> str:
    """A digest of the files of the modules that hold the user's feature functions (read,
    not imported; a module that cannot be found counts as such: the step then fails with the
    reason, and runs again once it is found)."""
    import hashlib
    import importlib.util

    h = hashlib.blake2b(digest_size=6)
    for module in sorted({ref.partition(":")[0] for ref in refs}):
        try:
            spec = importlib.util.find_spec(module)
        except (ImportError, ValueError):
            spec = None
        origin = spec.origin if spec is not None else None
        data = Path(origin).read_bytes() if origin and Path(origin).is_file() else b"<missing>"
        h.update(module.encode() + b"\0" + data)
    return h.hexdigest()


def _only(config: ProjectConfig, *sections: str) -> ProjectConfig:
    """A copy of the config holding only ``sections`` (plus name/seed): the step's parameters.

    Steps receive just what they use, so changing ``profile.bins`` re-runs only profiling.
    """
    keep: dict[str, Any] = {"version": 1, "name": config.name, "seed": config.seed}
    for name in ProjectConfig.model_fields:
        if name not in keep:  # a section the step does not use is None: using it fails loudly
            keep[name] = getattr(config, name) if name in sections or name == "data" else None
    return ProjectConfig.model_construct(**keep)


def build_pipeline(
    config: ProjectConfig,
    *,
    declared_contract: DataContract | None = None,
    command: str = "modelyard run",
    root: Path | None = None,
) -> Pipeline:
    """The standard pipeline for ``config``: ingest -> contract -> validate -> profile."""
    from modelyard.data.sources import fingerprint_source

    data = config.data
    data_code = code_version("data")
    fingerprints = config.workdir / "state" / "fingerprints.json"
    steps = [
        Step(
            "ingest", ingest, params={"config": _only(config, "data")}, version=data_code,
            external=_once(lambda: fingerprint_source(data.source, remember_in=fingerprints)),
            description="read the training data", resources=("scratch", "executor"),
        ),
        Step(
            "contract", contract, inputs={"train": "ingest"},
            params={"config": _only(config, "data", "contract"), "declared": declared_contract},
            version=data_code, description="infer the data contract", resources=("executor",),
        ),
        Step(
            "validate", validate, inputs={"batch": "ingest", "contract": "contract"},
            params={"config": _only(config, "validation")}, version=data_code,
            description="validate the training data", resources=("scratch", "executor"),
        ),
        Step(
            "profile", profile, inputs={"validated": "validate", "contract": "contract"},
            params={"config": _only(config, "profile")}, version=data_code,
            description="profile and quality report", resources=("executor",),
        ),
    ]  # fmt: skip
    if data.test is not None:
        test = data.test
        steps[1:1] = [
            Step(
                "ingest_test", ingest_test, params={"config": _only(config, "data")}, version=data_code,
                external=_once(lambda: fingerprint_source(data.source.model_copy(update={"path": test.path}), remember_in=fingerprints)),
                description="read the hold-out data", resources=("scratch", "executor"),
            )
        ]  # fmt: skip
        steps.append(
            Step(
                "validate_test", validate, inputs={"batch": "ingest_test", "contract": "contract"},
                params={"config": _only(config, "validation"), "mode": "score"}, version=data_code,
                description="validate the hold-out data", resources=("scratch", "executor"),
            )
        )  # fmt: skip
    if data.target is not None:
        added = _label_steps(config, declared_contract)
        if added:
            from dataclasses import replace

            steps = [
                replace(
                    s, inputs={k: "labelled" if v == "ingest" else v for k, v in s.inputs.items()}
                )
                for s in steps
            ]
            steps[1:1] = added
        steps.extend(_modeling_steps(config, with_test=data.test is not None, command=command))
    return Pipeline.of(steps, root=None if root is None else str(root))


def _once(fingerprint: Callable[[], str]) -> Callable[[], str]:
    """A source's fingerprint, computed once per pipeline (a run plans before it runs: a big
    file is hashed once)."""
    return functools.cache(fingerprint)


def _label_steps(config: ProjectConfig, declared: DataContract | None) -> list[Step]:
    """``labels`` -> ``labelled`` once the label set holds labels (none otherwise: a project
    without labels runs as before). The contract and validation steps then read ``labelled``;
    the label set's content digest keys ``labels``, so a new version re-runs from there."""
    from modelyard.labels.store import LabelSet
    from modelyard.labels.training import label_set_digest

    root = config.labels.path
    if LabelSet(root).version == 0:
        return []
    task = declared.task if declared is not None else None
    features = [c.name for c in declared.features] if declared is not None else []
    params = {"config": _only(config, "labels"), "task": task, "features": features}
    code = code_version("labels")
    return [
        Step(
            "labels", labels, params=params, version=code,
            external=lambda: label_set_digest(root), description="read the accepted labels",
        ),
        Step(
            "labelled", labelled, inputs={"train": "ingest", "table": "labels"}, params=params,
            version=code, description="add the accepted labels to the training data",
            resources=("scratch", "executor"),
        ),
    ]  # fmt: skip


def _timeless(value: Any) -> Any:
    """A search result without its wall-clock measurements: what the store digests for the
    keys of the steps after it (see :func:`modelyard.modeling.search.results.timeless`)."""
    from modelyard.modeling.search.results import timeless

    return timeless(value)


def _modeling_steps(config: ProjectConfig, *, with_test: bool, command: str) -> list[Step]:
    """modeling_contract -> split -> explore -> tune -> train -> evaluate -> register (each keyed
    by what it uses)."""
    test_input = {"validated_test": "validate_test"} if with_test else {}
    data_code, modeling_code = code_version("data"), code_version("modeling", config)
    ops_code = code_version("ops", config)
    base = {"split": "split", "modeling": "modeling_contract"}
    return [
        Step(
            "modeling_contract", modeling_contract,
            inputs={"contract": "contract", "profile": "profile"},
            params={"allow_leaky": list(config.features.allow_leaky)}, version=data_code,
            description="leave columns that leak the target out of the model",
        ),
        Step(
            "split", split,
            inputs={"validated": "validate", "modeling": "modeling_contract", **test_input},
            params={"config": _only(config, "split", "models")}, version=modeling_code,
            description="hold out the test set", resources=("executor", "scratch"),
        ),
        Step(
            "explore", explore, inputs=base,
            params={
                "config": _only(config, "features", "split", "models"),
                "reproducible": config.tuning.n_trials is not None,
                "pruning": config.tuning.pruning,
            },
            version=modeling_code, description="cross-validate the portfolio of models",
            identity=_timeless, resources=("executor", "memo"),
        ),
        Step(
            "tune", tune, inputs={**base, "exploration": "explore"},
            params={"config": _only(config, "features", "split", "models", "tuning")},
            version=modeling_code, description="tune the best families",
            identity=_timeless, resources=("executor", "memo"),
        ),
        Step(
            "train", train, inputs={**base, "exploration": "explore", "tuning": "tune"},
            params={"config": _only(config, "features", "models", "evaluation")},
            version=modeling_code, description="blend and refit the final model",
            identity=_timeless, resources=("executor", "scratch"),
        ),
        Step(
            "evaluate", evaluate, inputs={"trained": "train", **base},
            params={"config": _only(config, "models", "evaluation")}, version=modeling_code,
            description="evaluate on the hold-out test set", resources=("executor",),
        ),
        Step(
            "register", register,
            inputs={
                "trained": "train", "evaluation": "evaluate", **base, "validated": "validate",
                "exploration": "explore", "tuning": "tune", **test_input,
            },
            params={
                "config": _only(config, "data", "features", "split", "models", "tuning", "evaluation", "tracking", "gate"),
                "workdir": str(config.workdir), "command": command,
            },
            version=ops_code, description="track, register and gate the model",
        ),
    ]  # fmt: skip


# ----------------------------------------------------------------------------- results


@dataclass
class RunResult:
    """What a run did and produced. ``to_dict()`` is the ``--json`` output."""

    project: str
    steps: list[StepRecord]
    seconds: float
    outputs: dict[str, Path] = field(default_factory=dict)
    validation: dict[str, ValidationReport] = field(default_factory=dict)
    registration: Registration | None = None
    excluded_features: dict[str, str] = field(default_factory=dict)
    """Columns left out of the model because they leak the target -> the profile's alert."""
    error: str | None = None
    """Why the run stopped (a validation over its limits), when it did."""
    _outcome: RunOutcome | None = field(default=None, repr=False)

    @property
    def ran(self) -> list[str]:
        return [s.name for s in self.steps if s.status == "ran"]

    @property
    def cached(self) -> list[str]:
        return [s.name for s in self.steps if s.status == "cached"]

    def output(self, step: str) -> Any:
        """The in-memory output of a step of this run (loaded from the cache if needed)."""
        if self._outcome is None:
            raise KeyError(step)
        return self._outcome.output(step)

    def to_dict(self) -> dict[str, Any]:
        return {
            "project": self.project,
            "seconds": round(self.seconds, 3),
            "steps": [
                {
                    "name": s.name,
                    "status": s.status,
                    "seconds": round(s.seconds, 3),
                    "reason": s.reason,
                    "key": s.key,
                }
                for s in self.steps
            ],
            "outputs": {k: str(v) for k, v in self.outputs.items()},
            "validation": {k: v.model_dump(mode="json") for k, v in self.validation.items()},
            "excluded_features": dict(self.excluded_features),
            "registration": self.registration.model_dump(mode="json")
            if self.registration
            else None,
        } | ({"error": self.error} if self.error else {})


# ----------------------------------------------------------------------------- the project


@dataclass
class StepResult:
    """What ``modelyard run --step`` did. ``to_dict()`` is its ``--json`` output."""

    project: str
    step: str
    key: str
    status: str
    """``ran``, or ``cached``: the output was already in the store, nothing to do."""
    seconds: float
    reason: str
    store: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "project": self.project, "step": self.step, "key": self.key, "status": self.status,
            "seconds": round(self.seconds, 3), "reason": self.reason, "store": self.store,
        }  # fmt: skip


def store_location(config: ProjectConfig, store: str | os.PathLike[str] | None = None) -> str:
    """Where the project's artifacts are: ``store`` (the ``--store`` flag), else
    ``config.store``, else the workdir; a URL as written, a folder resolved."""
    from modelyard.config.schema import is_url

    where = store if store is not None else config.store
    if where is None:
        return str(config.workdir)
    text = os.fspath(where)
    if is_url(text) and not text.startswith("file://"):
        return text.rstrip("/")
    return str(Path(text.removeprefix("file://")).expanduser().resolve())


def open_store(config: ProjectConfig, store: str | os.PathLike[str] | None = None) -> Store:
    """The project's artifact store (at :func:`store_location`). One in an object store keeps
    its local cache in the workdir."""
    from modelyard.config.schema import is_url

    stamp = {"modelyard": __version__}
    where = store_location(config, store)
    if not is_url(where):
        return ArtifactStore(Path(where), stamp=stamp)
    from modelyard.data.remote import filesystem
    from modelyard.engine.remote import RemoteStore

    fs, path = filesystem(where, config.store_options)
    cache = ArtifactStore(config.workdir, stamp=stamp)
    return RemoteStore(fs, path, cache=cache, url=where)


class Project:
    """A modelyard project: a checked configuration plus its artifact store.

    ``store``: where the artifacts are (a folder or an fsspec URL such as
    ``s3://bucket/prefix``), instead of the config's ``store`` (default: the workdir).
    """

    def __init__(
        self,
        config: ProjectConfig,
        *,
        config_path: Path | None = None,
        store: str | os.PathLike[str] | None = None,
    ) -> None:
        self.config = config
        self.config_path = config_path
        self._store_at = store

    @functools.cached_property
    def store(self) -> Store:
        """The artifact store, opened on first use (a command that needs none, such as
        ``models list``, needs no object-store package)."""
        return open_store(self.config, self._store_at)

    @classmethod
    def from_yaml(
        cls,
        path: str | os.PathLike[str] = "modelyard.yaml",
        *,
        env: Mapping[str, str] | None = None,
        store: str | os.PathLike[str] | None = None,
    ) -> Project:
        """Load and check ``modelyard.yaml``; raises ConfigError listing every problem."""
        file = Path(path)
        if file.is_dir():
            file = file / "modelyard.yaml"
        return cls(load_config(file, env=env), config_path=file, store=store)

    # -- the pipeline

    def declared_contract(self) -> DataContract | None:
        """The contract file, when the user has one (it is then used as written).

        Its roles must agree with those modelyard.yaml declares (``data.target``,
        ``data.columns``): a difference is a :class:`~modelyard.errors.ConfigError` naming
        both files (:func:`~modelyard.data.contract.check_roles`), never a silent winner.
        """
        file = self.config.contract.path
        if not file.is_file():
            return None
        from modelyard.data.contract import check_roles, contract_from_yaml

        try:
            text = file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(
                [Problem(str(file), "", f"cannot read the contract: {exc}")], source=str(file)
            ) from None
        contract = contract_from_yaml(text, source=str(file))
        config_file = str(self.config_path) if self.config_path else "modelyard.yaml"
        data = self.config.data
        check_roles(
            contract, target=data.target, roles=data.columns, text=text, source=str(file),
            config_source=config_file,
        )  # fmt: skip
        return contract

    def pipeline(self) -> Pipeline:
        return build_pipeline(
            self.config, declared_contract=self.declared_contract(), command=self.run_command(),
            root=self.root,
        )  # fmt: skip

    @property
    def root(self) -> Path | None:
        """The project's folder (of its modelyard.yaml): keys do not depend on where it is."""
        return self.config_path.resolve().parent if self.config_path else None

    def run_command(self) -> str:
        path = self.config_path.resolve() if self.config_path else None
        cfg = shlex.quote(str(path)) if path else "modelyard.yaml"
        return f"modelyard run -c {cfg}"

    def plan(self, *, from_step: str | None = None, until: str | None = None) -> Plan:
        """What a run would do, and why; moves no data."""
        return self._plan(self.pipeline(), from_step=from_step, until=until)[0]

    def _plan(
        self, pipeline: Pipeline, *, from_step: str | None, until: str | None
    ) -> tuple[Plan, dict[str, str]]:
        """The plan, and the cached steps whose result no longer stands (``stale``, see
        :func:`~modelyard.engine.runner.plan`): a registration the registry has lost (its
        store deleted, the version deleted) is done again, not silently taken from the cache.
        """
        steps = plan(pipeline, self.store, from_step=from_step, until=until)
        stale = self._stale(steps)
        if stale:
            steps = plan(pipeline, self.store, from_step=from_step, until=until, stale=stale)
        return steps, stale

    def _stale(self, steps: Plan) -> dict[str, str]:
        cached = next((s for s in steps if s.name == "register" and s.action == "cached"), None)
        if cached is None:
            return {}
        recorded = self.store.read_json("register", cached.key)
        if not isinstance(recorded, dict):
            return {}
        from modelyard.ops.tracking import missing_registration

        why = missing_registration(
            recorded["tracking_uri"], recorded["model_name"], str(recorded["version"]),
            recorded["run_id"],
        )  # fmt: skip
        return {"register": f"{why}: it is registered again"} if why else {}

    def search_estimate(self) -> str | None:
        """How long the model search will take, from the table's size (for ``--dry-run``)."""
        data = self.config.data
        if data.target is None:
            return None
        from modelyard.data.sources import estimate_shape
        from modelyard.modeling.search.budget import auto_budget

        models, n_trials = self.config.models, self.config.tuning.n_trials
        if n_trials is not None:
            cap = f", capped at {models.budget:.0f} s" if models.budget != "auto" else ""
            return f"model search: {n_trials} trials per tuned family (reproducible){cap}"
        if models.budget != "auto":
            return f"model search: {models.budget:.0f} s (models.budget)"
        shape = estimate_shape(data.source)
        if shape is None:
            return "model search: budget auto, sized from the table once it is read"
        rows, columns = shape
        if data.sample:
            rows = min(rows, data.sample)
        if data.test is None:
            rows = round(rows * (1 - self.config.split.test_size))
        excluded = {data.target, *data.columns.id, *data.columns.drop, *data.columns.leakage}
        columns = max(1, columns - len(excluded))
        seconds = auto_budget(rows, columns)
        return (
            f"model search: about {seconds:.0f} s (budget auto: ~{rows:,} training rows x "
            f"~{columns} columns; set models.budget to change it)"
        )

    def resume_command(self, step: str) -> str:
        cfg = shlex.quote(str(self.config_path)) if self.config_path else "modelyard.yaml"
        return f"modelyard run -c {cfg} --from {step}"

    def run(
        self, *, from_step: str | None = None, until: str | None = None, listener: Listener = ignore
    ) -> RunResult:
        """Run the pipeline (cached steps are not re-run) and write the user-facing outputs.

        A user error raised by a step (a :class:`~modelyard.errors.ModelyardError`: a target
        that is not in the data, an unusable check) is raised as it is: it is fixed in the
        configuration or the data, not by resuming. When validation stops the run, its report,
        its quarantine and the contract are written first, and the
        :class:`~modelyard.errors.ValidationFailed` raised names them (``.run`` holds the
        partial :class:`RunResult`). Other failures raise :class:`~modelyard.errors.StepFailed`
        with the command to resume.
        """
        started = time.perf_counter()
        command = f"modelyard run -c {self.config_path}" if self.config_path else "modelyard run"
        with self.store.lock(command=command):
            pipeline = self.pipeline()
            steps, stale = self._plan(pipeline, from_step=from_step, until=until)
            unchanged = self._unchanged(pipeline, steps) if not steps.to_run else None
            if unchanged is not None:  # nothing to run, nothing to publish: nothing loaded
                for step in steps:
                    listener(StepFinished(step.name, "cached", 0.0))
                unchanged.seconds = time.perf_counter() - started
                return unchanged
            with self.executor(steps=steps.to_run) as executor:
                if any("executor" in pipeline.step(name).resources for name in steps.to_run):
                    executor.start()  # the workers start while the first steps load
                recorder = _Recorder(listener)
                try:
                    outcome = run(
                        pipeline,
                        self.store,
                        from_step=from_step,
                        until=until,
                        listener=recorder,
                        resume_command=self.resume_command,
                        resources={
                            "executor": executor,
                            "memo": self.memo(),
                            "scratch": self.store.scratch,
                        },
                        stale=stale,
                    )
                except StepFailed as exc:
                    cause = exc.cause
                    if isinstance(cause, ValidationFailed) and cause.result is not None:
                        raise self._stopped(pipeline, exc.step, cause, recorder, started) from None
                    if isinstance(cause, ModelyardError):
                        raise cause from None
                    raise
            result = RunResult(self.config.name, outcome.records, 0.0, _outcome=outcome)
            keys = self._publish(outcome, result, started)
            self._record_publication(keys, result)
        result.seconds = time.perf_counter() - started
        return result

    def step_command(self, step: str, *, flag: str = "--step") -> str:
        """The command that runs ``step`` alone (``flag="--until"``: up to it) against this
        store (``--store`` named when it is not the config's)."""
        cfg = shlex.quote(str(self.config_path)) if self.config_path else "modelyard.yaml"
        command = f"modelyard run -c {cfg} {flag} {step}"
        if self.store.location != store_location(self.config):
            command += f" --store {shlex.quote(self.store.location)}"
        return command

    def run_step(self, name: str, *, listener: Listener = ignore) -> StepResult:
        """Run exactly one step, reading its inputs from the store by key (what a Kubeflow
        component runs). Its output already in the store: nothing to do (status ``cached``).
        Keys and outputs are those of :meth:`run`; nothing is published (reports, the
        contract file): a whole run does that.

        Takes the store's lock *shared*: single steps (of independent branches, or on other
        machines against a shared store) run at once; a whole run or a clean waits. Raises
        :class:`~modelyard.engine.runner.MissingInput` when an input is not in the store,
        :class:`~modelyard.engine.dag.UnknownStep` for a name that is not a step.
        """
        started = time.perf_counter()
        command = f"{self.run_command()} --step {name}"
        pipeline = self.pipeline()
        pipeline.step(name)  # an unknown name is an error before any lock is taken
        with self.store.lock(command=command, shared=True):
            _, stale = self._plan(pipeline.until(name), from_step=None, until=None)
            with self.executor(steps=(name,)) as executor:  # on first use only
                try:
                    record = run_step(
                        pipeline, self.store, name, listener=listener,
                        resume_command=self.step_command,
                        step_command=self.step_command,
                        until_command=functools.partial(self.step_command, flag="--until"),
                        resources={
                            "executor": executor, "memo": self.memo(),
                            "scratch": self.store.scratch,
                        },
                        stale=stale,
                    )  # fmt: skip
                except StepFailed as exc:
                    if isinstance(exc.cause, ModelyardError):
                        raise exc.cause from None
                    raise
        return StepResult(
            self.config.name, name, record.key, record.status,
            time.perf_counter() - started, record.reason, self.store.location,
        )  # fmt: skip

    # -- what was published, so that an unchanged run publishes (and loads) nothing

    def _publication(self, keys: list[tuple[str, str]]) -> str:
        """What the published outputs are a function of: the steps' keys, the code that
        renders them, and the settings that say where they go."""
        from modelyard.engine.cache import digest

        return digest(
            {
                "format": 1,
                "code": f"{STEP_VERSION}+{_source_digest('reports', 'recipe.py')}",
                "project": self.config.name,
                "output_dir": str(self.config.output_dir.resolve()),
                "contract": str(self.config.contract.path.resolve()),
                "steps": [list(k) for k in keys],
            }
        )

    def _record_publication(self, keys: list[tuple[str, str]], result: RunResult) -> None:
        """Remember what was published and each file's size and modification time."""
        files = {
            str(path): _signature(path)
            for name, path in result.outputs.items()
            if name != "contract"  # the user's file from now on: only its existence matters
        }
        manifest = {
            "publication": self._publication(keys),
            "outputs": {k: str(v) for k, v in result.outputs.items() if k != "contract"},
            "files": files,
        }
        _write_atomic(self.config.workdir / PUBLISHED, json.dumps(manifest, indent=1))

    def _unchanged(self, pipeline: Pipeline, steps: Plan) -> RunResult | None:
        """The result of a run with every step cached whose outputs are published as they
        are (same keys, same code, files untouched), read from its ``run.json``; or ``None``."""
        try:
            manifest = json.loads((self.config.workdir / PUBLISHED).read_text("utf-8"))
            if manifest["publication"] != self._publication([(s.name, s.key) for s in steps]):
                return None
            if any(_signature(Path(f)) != sig for f, sig in manifest["files"].items()):
                return None
            outputs = {k: Path(v) for k, v in manifest["outputs"].items()}
            summary = json.loads(outputs["summary"].read_text("utf-8"))
        except (OSError, ValueError, KeyError, TypeError):
            return None
        if any(s.name == "contract" for s in steps) and not self.config.contract.path.is_file():
            return None  # published again: the contract file is written when it is missing
        records = [StepRecord(s.name, s.key, "cached", 0.0, s.reason) for s in steps]
        keys = {s.name: s.key for s in steps}
        by_name = {s.name: s for s in pipeline.steps}

        def load(name: str) -> Any:
            return self.store.load(name, keys[name], by_name[name].codec)

        result = RunResult(
            self.config.name, records, 0.0, outputs=outputs,
            excluded_features=dict(summary.get("excluded_features") or {}),
            _outcome=RunOutcome(records, functools.cache(load)),
        )  # fmt: skip
        if summary.get("validation"):
            from modelyard.data.validation import ValidationReport

            result.validation = {
                k: ValidationReport.model_validate(v) for k, v in summary["validation"].items()
            }
        if summary.get("registration"):
            from modelyard.ops.promotion import Registration

            result.registration = Registration.model_validate(summary["registration"])
        return result

    def executor(self, *, steps: Iterable[str] = ()) -> Executor:
        """Where the data stages' parts and the model fits run (``compute``); it starts on
        first use (or :meth:`~modelyard.compute.Executor.start`) and stops on close. Its local
        workers import the task modules of ``steps`` as they start (:data:`WORKER_MODULES`)."""
        from modelyard.compute import open_executor

        compute = self.config.compute
        warm = tuple(dict.fromkeys(WORKER_MODULES[s] for s in steps if s in WORKER_MODULES))
        return open_executor(
            compute.executor, workers=compute.workers, address=compute.address, warm=warm
        )

    def memo(self) -> Memo:
        """The cache of finished fits (``<workdir>/fits``): a search replays what it did."""
        from modelyard.engine.memo import Memo

        return Memo(self.config.workdir / "fits")

    def _stopped(
        self,
        pipeline: Pipeline,
        step: str,
        failure: ValidationFailed,
        recorder: _Recorder,
        started: float,
    ) -> ValidationFailed:
        """Write what a run stopped by validation has to show, and the error that says where.

        The steps that finished before the failed validation are saved: a run of them (and of
        their ancestors, finished too) only loads them. Which ones finished depends on the
        order of the steps (the profile runs before the test data's validation).
        """
        validated: ValidationResult = failure.result  # its tables are in this store's
        # scratch space, which the run of the finished steps below leaves alone
        finished = {r.name for r in recorder.records if r.status in ("ran", "cached")}
        keep = finished.union(*(pipeline.ancestors(name) for name in finished))
        done = run(pipeline.only(keep), self.store)

        def load(name: str) -> Any:
            return validated if name == step else done.output(name)

        keys = {r.name: r.key for r in done.records}
        records = [
            StepRecord(r.name, keys.get(r.name, ""), r.status, r.seconds, r.reason)
            for r in recorder.records
            if r.name != step
        ]
        records.append(StepRecord(step, "", "failed", recorder.seconds(step)))
        outcome = RunOutcome(records, load)
        result = RunResult(self.config.name, records, 0.0, _outcome=outcome)
        self._publish(outcome, result, started, failed={step: validated})
        label = "test" if step == "validate_test" else "training"
        short = "test" if step == "validate_test" else "train"
        files = [
            f"the report in {shown_path(result.outputs[f'validation_{short}'])}",
            f"the invalid rows, with their reasons, in "
            f"{shown_path(result.outputs[f'quarantine_{short}'])}",
        ]
        contract_file = shown_path(self.config.contract.path)
        report = validated.report
        if report.invalid_fraction > report.max_invalid_fraction:
            cure = "or raise validation.max_invalid_fraction"
        else:  # on_error: fail
            cure = "or set validation.on_error to 'quarantine' to set invalid rows aside"
        stopped = ValidationFailed(
            failure.what,
            where=f"validation of the {label} data",
            found=failure.found,
            fix=f"See {' and '.join(files)}. Fix the data at its source, correct {contract_file} "
            f"where it is too strict, {cure}.",
            result=validated,
        )
        stopped.run = result
        result.error = str(stopped)
        summary = result.outputs["summary"]  # written again, with the error
        _write_atomic(summary, json.dumps(result.to_dict(), indent=2))
        return stopped

    def clean(self, *, everything: bool = False) -> tuple[int, int]:
        """Prune the cache: keep the artifacts of the current plan (or nothing, with everything).
        The fit cache of the model search is emptied (it only speeds up a re-run)."""
        with self.store.lock(command="modelyard clean"):
            keep = None if everything else {p.name: p.key for p in self.plan()}
            removed, freed = self.store.clean(keep=keep)
            return removed, freed + self.memo().clear()

    # -- models and batch scoring

    def registry(self, model_name: str | None = None) -> Registry:
        """The project's registered model (MLflow), with its audit log."""
        from modelyard.ops.registry import AUDIT_LOG, Registry
        from modelyard.ops.tracking import resolve_model_name, resolve_tracking_uri

        tracking = self.config.tracking
        name = model_name or resolve_model_name(tracking, self.config.name)
        return Registry(
            resolve_tracking_uri(tracking, self.config.workdir),
            name,
            self.config.workdir / AUDIT_LOG,
        )

    def predict(
        self,
        data: Path,
        *,
        out: Path,
        model: str | None = None,
        progress: Callable[[int, int], None] | None = None,
        batch_rows: int | None = None,
    ) -> BatchResult:
        """Score a file with a registered model, validating it against the contract first.

        Validation runs in ``score`` mode: types, nullability and the declared checks are
        enforced, and invalid rows are quarantined beside ``out``
        (``<out>.quarantine.parquet``), never scored; so are the input lines that cannot be
        read as rows, with their line numbers. A value outside the training range or a
        category never seen in training is drift, not invalid: the row is scored and its
        reasons are in the output's ``_drift`` column (null for rows that are not flagged).

        The file is read and scored ``batch_rows`` rows at a time (default: ``data.batch_rows``
        up to :data:`~modelyard.ops.batch.PREDICT_BATCH_ROWS`), so memory stays flat whatever
        the file's size; the result does not depend on the batch size. The batches run in this
        process (parsing, validation and the boosters' prediction use every core natively), or
        on the cluster when ``compute.executor`` is ``dask``: a local pool would load the
        libraries once per worker (a 1.2 GB process tree instead of 0.55 GB for 3M rows,
        measured) and spend more CPU for a cheap model. ``out`` and its
        quarantine appear whole or not at all. ``progress`` receives (rows scored, rows read).
        """
        from modelyard.data.sources import iter_source_batches
        from modelyard.ops.batch import (
            PREDICT_BATCH_ROWS,
            BatchResult,
            check_output,
            score_batches,
        )
        from modelyard.ops.registry import ModelRef, parse_model_ref

        check_output(out)
        contract = self.declared_contract()
        if contract is None:
            raise ModelyardError(
                "there is no data contract yet",
                where=str(self.config.contract.path),
                fix="Run the pipeline first (modelyard run) to infer and write it.",
            )
        ref = (
            parse_model_ref(model)
            if model
            else ModelRef(name=self.registry().model_name, alias="champion")
        )
        if ref.name is None:
            raise ModelyardError(
                "batch scoring takes a registered model",
                where="--model",
                expected="NAME@ALIAS or NAME/VERSION",
                found=repr(model),
            )
        if batch_rows is not None and batch_rows < 1:
            raise ModelyardError(
                "the batch size must be at least one row",
                where="--batch-rows",
                found=str(batch_rows),
                fix="Pass a positive number of rows.",
            )
        registry = self.registry(ref.name)
        version = registry.resolve(ref)
        pyfunc = registry.load_version(version)
        data_cfg = self.config.data
        source = data_cfg.source.model_copy(update={"path": Path(data).resolve(), "builtin": None})
        rows = batch_rows or min(data_cfg.batch_rows, PREDICT_BATCH_ROWS)
        batches = iter_source_batches(
            source, normalize=data_cfg.normalize, drop=data_cfg.columns.drop, batch_rows=rows
        )
        from modelyard.compute import open_executor

        on_cluster = self.config.compute.executor == "dask"
        executor = self.executor() if on_cluster else open_executor("serial")
        with executor:  # a cluster is reached only for an input of several batches
            scored = score_batches(
                batches, model=pyfunc, contract=contract, validation=self.config.validation,
                out=out, executor=executor, progress=progress,
            )  # fmt: skip
        return BatchResult(
            rows=scored.rows, scored=scored.scored, quarantined=scored.quarantined, output=out,
            quarantine=scored.quarantine, model=registry.model_name, version=version,
            drifted=scored.drifted, drift=scored.drift, rejected=scored.rejected,
            batches=scored.batches,
        )  # fmt: skip

    # -- continuous ingestion, serving and monitoring (each a command of the CLI)

    def ingest(
        self,
        *,
        until_idle: float | None = None,
        on_batch: Callable[[BatchReport], None] | None = None,
        stop: threading.Event | None = None,
    ) -> IngestStats:
        """Ingest continuously from the ``ingest`` section (Kafka, a watched folder), exactly
        once, into its partitioned Parquet dataset, every batch validated against the contract.

        Runs until ``stop`` is set, SIGINT/SIGTERM (in the main thread), or ``until_idle``
        seconds without a new record; the current batch is committed first. ``on_batch``
        receives each committed batch's :class:`~modelyard.data.streaming.BatchReport`.
        (Reading the training data once is ``run(until="ingest")``.)
        """
        from modelyard.data.streaming import follow

        if self.config.ingest is None:
            raise ModelyardError(
                "there is no `ingest` section in the configuration",
                where=str(self.config_path or "modelyard.yaml"),
                fix="Add one (see docs/configuration.md, IngestSection) to ingest from Kafka or a folder.",
            )
        contract = self.declared_contract()
        if contract is None:
            raise ModelyardError(
                "continuous ingestion validates every batch against the data contract, and there is none yet",
                where=str(self.config.contract.path),
                fix="Run `modelyard validate` once on reference data to infer and write it.",
            )
        return follow(
            self.config, contract=contract, on_batch=on_batch, until_idle=until_idle,
            stop_event=stop,
        )  # fmt: skip

    def serve(
        self,
        *,
        model: str | None = None,
        tracking_uri: str | None = None,
        host: str | None = None,
        port: int | None = None,
        workers: int | None = None,
        server: str | None = None,
        lenient: bool | None = None,
        labels: str | os.PathLike[str] | None = None,
    ) -> None:
        """Serve a registered model over HTTP (``/predict``, ``/health``, ``/ready``,
        ``/metrics``, and a Label Studio ML backend under ``/label-studio``) in the foreground
        until SIGINT/SIGTERM.

        ``model``: NAME@ALIAS, NAME/VERSION or a model folder (default: ``serving.model``, else
        the champion); ``labels``: the label set Label Studio's annotation webhooks append to
        (default ``labels.path``); the other arguments override the
        ``serving`` section.
        """
        from modelyard.ops.serving.launch import serve

        if labels is None:
            labels = self.config.labels.path
        serve(
            self.config, model=model, tracking_uri=tracking_uri, host=host, port=port,
            workers=workers, server=server, lenient=lenient, labels=Path(labels),
        )  # fmt: skip

    def package(
        self,
        out: str | os.PathLike[str],
        *,
        model: str | None = None,
        tracking_uri: str | None = None,
        image: str | None = None,
        service_monitor: bool = True,
    ) -> PackageResult:
        """Write a Docker/Kubernetes build context serving one model version (default: the
        served model, see :meth:`serve`) into the folder ``out``."""
        from modelyard.ops.serving.launch import package

        return package(
            self.config, Path(out), model=model, tracking_uri=tracking_uri, image=image,
            service_monitor=service_monitor,
        )  # fmt: skip

    def monitor(
        self,
        *,
        log: str | os.PathLike[str] | None = None,
        reference: str | os.PathLike[str] | None = None,
        html: str | os.PathLike[str] | None = None,
        retrain: bool = False,
        force: bool = False,
    ) -> MonitorResult:
        """Drift, data quality and performance of the prediction log, window by window.

        ``log``: the log folder (default ``serving.prediction_log.path``); ``reference``: the
        table it is compared with (default ``monitoring.reference``, else the training data).
        Writes the HTML report (default ``<output_dir>/monitoring.html``) and its JSON beside
        it. With ``retrain``, retrains (reference + labelled records, through the promotion
        gate) when the retrain policy says so, or always with ``force``.
        """
        from modelyard.ops.monitoring.session import MonitorResult, check_log
        from modelyard.reports.drift import monitor_json, render_monitor_html

        inputs = self._monitor_inputs(log, reference, whole=retrain)  # retraining uses all of it
        report, rows = check_log(self.config, inputs)
        out = Path(html) if html is not None else self.config.output_dir / "monitoring.html"
        _write_atomic(out, render_monitor_html(report))
        _write_atomic(out.with_suffix(".json"), monitor_json(report))
        result = MonitorResult(report, out, out.with_suffix(".json"))
        if retrain:
            from modelyard.ops.monitoring.retrain import retrain as run_retrain

            result.retrain = run_retrain(
                self.config, report=report, reference=inputs.reference, log=rows,
                contract=inputs.contract, force=force,
                run=lambda cfg: type(self)(cfg, config_path=self.config_path).run(),
            )  # fmt: skip
        return result

    def serve_metrics(
        self,
        *,
        log: str | os.PathLike[str] | None = None,
        reference: str | os.PathLike[str] | None = None,
        host: str | None = None,
        port: int | None = None,
        interval: float | None = None,
        stop: threading.Event | None = None,
        announce: Callable[[str], None] | None = None,
    ) -> None:
        """Serve the monitoring metrics to Prometheus (``/metrics``, default port
        ``monitoring.port``), re-reading the log every ``interval`` seconds (default
        ``monitoring.interval_seconds``) until ``stop`` is set or SIGINT/SIGTERM."""
        from modelyard.ops.monitoring.session import serve_metrics

        serve_metrics(
            self.config, self._monitor_inputs(log, reference), host=host, port=port,
            interval=interval, stop=stop, announce=announce,
        )  # fmt: skip

    def alert_config(self, folder: str | os.PathLike[str], *, alert_for: str = "5m") -> list[Path]:
        """Write Prometheus alert rules, a Grafana dashboard and a prometheus.yml for this
        project's server and monitor into ``folder``; the files written."""
        from modelyard.ops.monitoring.session import alert_config

        return alert_config(self.config, Path(folder), alert_for=alert_for)

    def _monitor_inputs(
        self,
        log: str | os.PathLike[str] | None,
        reference: str | os.PathLike[str] | None,
        *,
        whole: bool = False,
    ) -> MonitorInputs:
        from modelyard.ops.monitoring.session import monitor_inputs

        contract = self.declared_contract()
        if contract is None:
            raise ModelyardError(
                "there is no data contract yet: monitoring compares the log with it",
                where=str(self.config.contract.path),
                fix="Run the pipeline first (modelyard run) to infer and write it.",
            )
        try:
            champion = self.registry().champion()
        except Exception:  # no registry yet: no performance baseline
            champion = None
        calibration = None
        if champion is not None:
            from modelyard.ops.monitoring.estimate import load_calibration

            calibration = load_calibration(self.registry().client, champion.run_id)
        return monitor_inputs(
            self.config, contract, champion_metrics=champion.metrics if champion else None,
            log_dir=Path(log) if log is not None else None,
            reference=Path(reference) if reference is not None else None,
            calibration=calibration, whole=whole,
        )  # fmt: skip

    def drift(
        self,
        reference: str | os.PathLike[str],
        current: str | os.PathLike[str],
        *,
        columns: list[str] | None = None,
        target: str | None = None,
        separator: str | None = None,
        header: bool | None = None,
        html: str | os.PathLike[str] | None = None,
    ) -> DriftReport:
        """Data drift between two tables read as the project reads its data (``separator``
        and ``header`` override ``data.source.read``), typed by its contract, with its
        ``monitoring`` thresholds; the target's shift (``target``, default the project's) is
        reported apart, as label drift. Writes an HTML report to ``html`` when given.

        Two files without a project: :func:`modelyard.ops.monitoring.compare.drift_files`.
        """
        from modelyard.ops.monitoring.compare import compare, project_read_options, read_compared

        data = self.config.data
        options = project_read_options(data.source.read, separator, header)
        ref, ref_aside = read_compared(Path(reference), options, "reference")
        cur, cur_aside = read_compared(Path(current), options, "current")
        report = compare(
            ref, cur, reference_name=str(reference), contract=self.declared_contract(),
            declared_target=data.target, declared_task=None if data.task == "auto" else data.task,
            columns=columns, target=target, thresholds=self.config.monitoring.thresholds,
            min_rows=self.config.monitoring.min_rows,
            set_aside=[a for a in (ref_aside, cur_aside) if a is not None],
        )  # fmt: skip
        if html is not None:
            write_drift_html(report, Path(html), reference=Path(reference), current=Path(current))
        return report

    # -- user-facing outputs

    def _write_contract(self, outcome: RunOutcome) -> str | None:
        """Write the inferred contract for the user to edit and commit.

        From now on the file is the contract. It holds exactly what was inferred, so the step
        keyed by the file's content is given the inferred result: the next run is a cache hit.
        Returns that key (``None`` when the file reads back differently).
        """
        from modelyard.data.contract import contract_to_yaml

        inferred_key = next(r.key for r in outcome.records if r.name == "contract")
        _write_atomic(self.config.contract.path, contract_to_yaml(outcome.output("contract")))
        declared = self.declared_contract()
        if declared == outcome.output("contract"):
            pipeline = build_pipeline(
                self.config,
                declared_contract=declared,
                command=self.run_command(),
                root=self.root,
            )  # the file read once: a contract of 10,000 columns takes a while to parse
            steps = plan(pipeline, self.store, until="contract")
            key = next(p.key for p in steps if p.name == "contract")
            if key and key != inferred_key:  # no key: its inputs changed meanwhile
                self.store.alias("contract", inferred_key, key)
            return key or None
        return None

    def _publish(
        self,
        outcome: RunOutcome,
        result: RunResult,
        started: float,
        failed: Mapping[str, ValidationResult] | None = None,
    ) -> list[tuple[str, str]]:
        """Write reports, the quarantine and the contract where the user looks for them.

        ``failed``: validations that stopped the run, written like the others.

        Returns the steps' keys as the next run finds them (the contract's, once its file is
        written, is the key of the file's content).
        """
        (self.config.workdir / PUBLISHED).unlink(missing_ok=True)  # the files change now
        keys = {r.name: r.key for r in outcome.records}
        done = {r.name for r in outcome.records if r.status in ("ran", "cached")}
        out = self.config.output_dir
        if "contract" in done and not self.config.contract.path.exists():
            keys["contract"] = self._write_contract(outcome) or keys["contract"]
            result.outputs["contract"] = self.config.contract.path
        for step, label in (("validate", "train"), ("validate_test", "test")):
            if step not in done and step not in (failed or {}):
                continue
            validated: ValidationResult = (failed or {}).get(step) or outcome.output(step)
            result.validation[label] = validated.report
            report_file = out / "validation" / f"{label}.json"
            _write_atomic(report_file, validated.report.model_dump_json(indent=2))
            result.outputs[f"validation_{label}"] = report_file
            q = out / "quarantine" / f"{label}.parquet"
            if validated.quarantine.num_rows:
                _sink_parquet_atomic(validated.quarantine, q)
                result.outputs[f"quarantine_{label}"] = q
            elif q.exists():  # a quarantine of an earlier run would be taken for this one's
                q.unlink()
        if "explore" in done:
            board = outcome.output("explore").leaderboard
            _write_atomic(out / "leaderboard.json", board.model_dump_json(indent=2))
            result.outputs["explore"] = out / "leaderboard.json"
        if "evaluate" in done:
            _write_atomic(
                out / "evaluation.json", outcome.output("evaluate").model_dump_json(indent=2)
            )
            result.outputs["evaluate"] = out / "evaluation.json"
        if "modeling_contract" in done:
            modeling: ModelingContract = outcome.output("modeling_contract")
            result.excluded_features = {x.name: x.reason for x in modeling.excluded}
        if "register" in done:
            result.registration = outcome.output("register")
        if "profile" in done:
            from modelyard.reports.profile import profile_json, render_profile_html

            prof = outcome.output("profile")
            html = out / "profile.html"
            _write_atomic(html, render_profile_html(prof))
            _write_atomic(out / "profile.json", profile_json(prof))
            result.outputs["profile_html"] = html
            result.outputs["profile_json"] = out / "profile.json"
        self._publish_run_report(outcome, result, done)
        summary = out / "run.json"
        result.outputs["summary"] = summary
        result.seconds = time.perf_counter() - started
        _write_atomic(summary, json.dumps(result.to_dict(), indent=2))
        return list(keys.items())

    def _publish_run_report(self, outcome: RunOutcome, result: RunResult, done: set[str]) -> None:
        """The one HTML run report (and its JSON); logged to the MLflow run when there is one."""
        from modelyard.reports.run import build_run_report, render_run_html, run_report_json

        def part(step: str) -> Any:
            return outcome.output(step) if step in done else None

        report = build_run_report(
            project=self.config.name, profile=part("profile"), validation=result.validation,
            split=part("split"), exploration=part("explore"), tuning=part("tune"),
            trained=part("train"), evaluation=part("evaluate"), registration=result.registration,
            modeling=part("modeling_contract"),
        )  # fmt: skip
        out = self.config.output_dir
        html, data = render_run_html(report), run_report_json(report)
        _write_atomic(out / "report.html", html)
        _write_atomic(out / "report.json", data)
        result.outputs["report_html"] = out / "report.html"
        result.outputs["report_json"] = out / "report.json"
        reg = result.registration
        if reg is not None and "register" in {r.name for r in outcome.records if r.status == "ran"}:
            from modelyard.ops.tracking import log_run_artifacts

            log_run_artifacts(
                reg.tracking_uri, reg.run_id, {"reports/run.html": html, "reports/run.json": data}
            )


class _Recorder:
    """A listener that remembers each step's status and time, then passes the event on.

    The engine raises when a step fails; what ran before it is known from its events.
    """

    def __init__(self, listener: Listener) -> None:
        self._listener = listener
        self.records: list[StepRecord] = []

    def __call__(self, event: Event) -> None:
        from modelyard.engine.events import StepFailedEvent, StepFinished

        if isinstance(event, StepFinished):
            self.records.append(StepRecord(event.step, "", event.status, event.seconds))
        elif isinstance(event, StepFailedEvent):
            self.records.append(StepRecord(event.step, "", "failed", event.seconds))
        self._listener(event)

    def seconds(self, step: str) -> float:
        return next((r.seconds for r in self.records if r.name == step), 0.0)


def write_drift_html(report: DriftReport, path: Path, *, reference: Path, current: Path) -> None:
    """The HTML report of a drift comparison (:meth:`Project.drift`, ``modelyard drift``)."""
    from modelyard.reports.drift import render_drift_html

    _write_atomic(
        path, render_drift_html(report, title=f"Drift: {reference.name} → {current.name}")
    )


def _signature(path: Path) -> list[int] | None:
    """A published file's size and modification time (``None`` when it is gone)."""
    try:
        stat = path.stat()
    except OSError:
        return None
    return [stat.st_size, stat.st_mtime_ns]


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def _sink_parquet_atomic(table: Table, path: Path) -> None:
    """A table as one Parquet file, streamed part by part (never collected), written under a
    temporary name and renamed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        table.scan().sink_parquet(tmp)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
