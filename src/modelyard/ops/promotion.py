"""Track a trained model, register it, and let the promotion gate decide its alias.

The champion is scored on the SAME test rows as the candidate, each model on the columns it was
trained on (its own inputs, typed by the contract it was trained with), so the comparison is
fair even when the test data or the features changed since the champion was trained. A champion
that cannot be scored that way (a column it takes is gone, its inputs no longer parse, or it
uses a column now excluded as target leakage) is *not comparable*; the gate's rule for that case
is ``gate.champion_not_comparable`` (see :mod:`modelyard.ops.gate`).

Before a new run is logged, runs of the project that a killed register left ``RUNNING`` are
marked ``FAILED``, the model versions they registered without a gate decision are tagged
``interrupted``, and their temporary files are removed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from modelyard.config.schema import GateSection, TrackingSection
from modelyard.data.contract import DataContract, Task
from modelyard.data.leakage import standing_alerts
from modelyard.data.profile import Alert
from modelyard.ops.gate import GateDecision, decide
from modelyard.ops.registry import AUDIT_LOG
from modelyard.ops.serving.latency import Latency

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
    import polars as pl

    from modelyard.ops.registry import Registry, VersionInfo

LATENCY_P50_TAG = "modelyard.latency.p50_ms"
LATENCY_P99_TAG = "modelyard.latency.p99_ms"
LATENCY_ROWS_TAG = "modelyard.latency.rows"
LATENCY_PATH_TAG = "modelyard.latency.path"


class ChampionCheck(BaseModel):
    """The current champion, scored (or not) on the candidate's test rows."""

    version: str
    score: float | None
    """Its score on the test rows; ``None`` when it is not comparable."""
    inputs: list[str]
    """The columns it was trained on (its signature)."""
    note: str | None = None
    """Why it is not comparable; ``None`` when it was scored."""

    @property
    def comparable(self) -> bool:
        return self.note is None


class Registration(BaseModel):
    """What tracking, registration and the gate did."""

    tracking_uri: str
    run_id: str
    model_name: str
    version: str
    previous_champion: str | None
    decision: GateDecision
    champion: ChampionCheck | None = None
    """How the previous champion was scored on the new test rows."""
    latency: Latency | None = None
    """Single-record latency through the serving path, measured before registration."""
    recovered_runs: list[str] = Field(default_factory=list)
    """Runs a killed register had left ``RUNNING``, marked ``FAILED`` by this one."""


def score_pyfunc(model: Any, X: pd.DataFrame, y: np.ndarray, *, task: Task, metric: str) -> float:
    """Score a registered pyfunc model (``prediction`` + ``proba_<class>`` columns)."""

    from modelyard.modeling.tasks import score

    out = model.predict(X)
    proba_cols = [c for c in out.columns if str(c).startswith("proba_")]
    proba = out[proba_cols].to_numpy(dtype=float) if proba_cols else None
    classes = [str(c)[len("proba_") :] for c in proba_cols] if proba_cols else None
    return score(
        task, metric, y, y_pred=out["prediction"].to_numpy(), y_proba=proba, classes=classes
    )


def pyfunc_inputs(model: Any) -> list[str]:
    """The columns a model takes: a modelyard model's features (native flavour or pyfunc
    wrapper), else its MLflow signature."""
    features = getattr(model, "features", None)  # the native flavour
    if features is None:
        try:
            wrapper = model.unwrap_python_model()
        except Exception:  # not a PythonModel flavour
            wrapper = None
        features = getattr(wrapper, "features", None)
    if features is not None:
        return [str(f) for f in features]
    schema = model.metadata.get_input_schema()
    return [str(n) for n in schema.input_names()] if schema is not None else []


def model_frame(
    rows: pl.DataFrame, inputs: Sequence[str], own: DataContract | None, current: DataContract
) -> pd.DataFrame:
    """``rows`` as the model with these ``inputs`` takes them: exactly those columns, typed by
    the model's own contract (``own``; the current contract for a column it does not know)."""
    from modelyard.modeling.features import to_pandas

    known = {c.name: c for c in current.columns}
    if own is not None:
        known.update({c.name: c for c in own.columns})
    columns = [known[name].model_copy(update={"role": "feature"}) for name in inputs]
    return to_pandas(rows, DataContract(columns=columns))


def score_champion(
    registry: Registry,
    champion: VersionInfo,
    rows: pl.DataFrame,
    y: np.ndarray,
    *,
    contract: DataContract,
    task: Task,
    metric: str,
    leaky: Sequence[str] = (),
    candidate_inputs: Sequence[str] = (),
) -> ChampionCheck:
    """Score the champion on ``rows`` through its own signature, or say why it cannot be.

    ``leaky`` are the columns the current profile flags as leaking the target: a champion that
    uses one the candidate does not is not comparable (its score is no fair bar).
    """
    label = f"version {champion.version}"
    try:
        model, own = registry.load_with_contract(champion.version)
    except Exception as exc:  # a broken or foreign artifact: report it, do not crash the run
        return ChampionCheck(
            version=champion.version,
            score=None,
            inputs=[],
            note=f"{label} cannot be loaded ({type(exc).__name__}: {_short(exc)})",
        )
    inputs = pyfunc_inputs(model)
    check = ChampionCheck(version=champion.version, score=None, inputs=inputs)
    missing = [c for c in inputs if c not in rows.columns]
    if missing:
        return check.model_copy(
            update={"note": f"{label} takes {_names(missing)}, which the new test data lacks"}
        )
    unknown = [c for c in inputs if c not in contract.names and (own is None or c not in own.names)]
    if unknown:
        return check.model_copy(
            update={"note": f"{label} takes {_names(unknown)}, which no contract types"}
        )
    dropped = [c for c in inputs if c in set(leaky) and c not in set(candidate_inputs)]
    if dropped:
        return check.model_copy(
            update={
                "note": f"{label} uses {_names(dropped)}, now excluded as target leakage: "
                "its score is no fair bar"
            }
        )
    try:
        X = model_frame(rows, inputs, own, contract)
        value = score_pyfunc(model, X, y, task=task, metric=metric)
    except Exception as exc:  # its inputs no longer parse, new classes, ...: not comparable
        return check.model_copy(
            update={
                "note": f"{label} cannot be scored on the new test data "
                f"({type(exc).__name__}: {_short(exc)})"
            }
        )
    if math.isnan(value):
        return check.model_copy(update={"note": f"{label} scores NaN on the new test data"})
    return check.model_copy(update={"score": value})


def measure_candidate(
    model: Any, contract: DataContract, rows: pl.DataFrame, *, task: str, gate: GateSection
) -> tuple[Latency | None, str | None]:
    """The candidate's single-record latency through the serving path, or why it could not be
    measured (``(None, None)`` when ``gate.latency_rows`` is 0)."""
    if gate.latency_rows == 0:
        return None, None
    from modelyard.ops.serving.latency import json_records, measure_latency, served_from_pipeline

    try:
        served = served_from_pipeline(model, contract, task=task)
        latency = measure_latency(served, json_records(rows, contract, gate.latency_rows))
    except Exception as exc:  # a model the server could not serve either: say so, do not crash
        return None, f"{type(exc).__name__}: {_short(exc)}"
    return latency, None if latency is not None else "the test set has no rows"


def recover_interrupted(
    registry: Registry, *, experiment_id: str, project: str, workdir: Path
) -> list[str]:
    """Mark the runs a killed register left ``RUNNING`` as ``FAILED``, tag the versions they
    registered ``interrupted`` (``models promote`` then needs ``--force``), and remove the
    temporary files of dead register processes. Returns the run ids."""
    from modelyard.ops.registry import GATE_FAILED_TAG, GATE_REASONS_TAG, GATE_TAG
    from modelyard.ops.tracking import clean_staging, fail_interrupted_runs

    runs = fail_interrupted_runs(
        registry.client, experiment_id, project, tracking_uri=registry.tracking_uri
    )
    for run in runs:
        found = registry.client.search_model_versions(f"run_id = '{run.run_id}'")
        for mv in found:
            if GATE_TAG in (mv.tags or {}):
                continue
            reason = f"interrupted before the promotion gate decided: {run.reason}"
            registry.client.set_model_version_tag(mv.name, mv.version, GATE_TAG, "interrupted")
            for tag in (GATE_REASONS_TAG, GATE_FAILED_TAG):
                registry.client.set_model_version_tag(mv.name, mv.version, tag, reason)
    clean_staging(workdir)
    return [r.run_id for r in runs]


def register_and_gate(
    *,
    project: str,
    workdir: Path,
    tracking: TrackingSection,
    gate: GateSection,
    model: Any,
    contract: DataContract,
    task: Task,
    metric: str,
    greater_is_better: bool,
    test_X: pd.DataFrame,
    test_y: np.ndarray,
    candidate_score: float,
    metrics: Mapping[str, float],
    params: Mapping[str, Any],
    artifacts: Mapping[str, str | bytes],
    tags: Mapping[str, str],
    data_valid: bool,
    command: str,
    test_rows: pl.DataFrame | None = None,
    test_metrics: Mapping[str, float] | None = None,
    leakage_alerts: Sequence[Alert] = (),
    train_y: np.ndarray | None = None,
) -> Registration:
    """Log the run and the model, register a new version, and apply the gate's decision.

    ``test_rows`` are the test set with every column (the champion takes its own inputs from
    them, and single rows of them time the candidate); without them the champion is scored on
    ``test_X``. ``test_metrics`` are all the candidate's test metrics and ``leakage_alerts`` the
    profile's leakage alerts, for the gate's perfect-score check. ``train_y`` are the training
    targets: the baseline (:func:`~modelyard.modeling.tasks.baseline_score`) is fitted on them
    and scored on ``test_y`` for the gate's baseline check (none without them).
    """
    from modelyard.data.frames import from_pandas
    from modelyard.ops.registry import Registry
    from modelyard.ops.tracking import (
        ensure_experiment,
        finish_run,
        log_training_run,
        model_inputs,
        resolve_model_name,
        resolve_tracking_uri,
        staging_dir,
    )

    uri = resolve_tracking_uri(tracking, workdir)
    name = resolve_model_name(tracking, project)
    registry = Registry(uri, name, workdir / AUDIT_LOG, tmp_dir=staging_dir(workdir))
    experiment_id = ensure_experiment(
        registry.client, tracking.experiment or project, tracking_uri=uri, workdir=workdir
    )
    recovered = recover_interrupted(
        registry, experiment_id=experiment_id, project=project, workdir=workdir
    )
    rows = test_rows if test_rows is not None else from_pandas(test_X)
    inputs = model_inputs(model, contract)
    standing = standing_alerts(leakage_alerts, inputs)
    leaky = sorted({c for a in leakage_alerts if a.severity == "critical" for c in a.columns})

    champion = registry.champion()
    check = None
    if champion is not None:
        check = score_champion(
            registry, champion, rows, test_y, contract=contract, task=task, metric=metric,
            leaky=leaky, candidate_inputs=inputs,
        )  # fmt: skip
    latency, latency_error = measure_candidate(model, contract, rows, task=task, gate=gate)
    baseline, baseline_what = None, ""
    if train_y is not None:
        from modelyard.modeling.tasks import BASELINE, baseline_score

        baseline, baseline_what = baseline_score(task, metric, train_y, test_y), BASELINE[task]
    decision = decide(
        metric=metric, greater_is_better=greater_is_better, candidate=candidate_score,
        champion=check.score if check is not None else None, options=gate,
        data_valid=data_valid, baseline=baseline, baseline_what=baseline_what,
        champion_note=check.note if check is not None else None,
        test_metrics=test_metrics, leakage=[a.message for a in standing],
        p99_ms=latency.p99_ms if latency is not None else None, latency_error=latency_error,
    )  # fmt: skip
    run_metrics = dict(metrics)
    version_tags = dict(tags)
    if latency is not None:
        run_metrics |= {"latency_p50_ms": latency.p50_ms, "latency_p99_ms": latency.p99_ms}
        version_tags |= {
            LATENCY_P50_TAG: f"{latency.p50_ms:.4f}",
            LATENCY_P99_TAG: f"{latency.p99_ms:.4f}",
            LATENCY_ROWS_TAG: str(latency.rows),
            LATENCY_PATH_TAG: "fast path" if latency.fast_path else "pipeline",
        }
    tracked = log_training_run(
        tracking=tracking, workdir=workdir, project=project, params=params, metrics=run_metrics,
        model=model, contract=contract, task=task, input_example=test_X.head(5),
        artifacts=artifacts, tags=version_tags, register=True, finish=False,
    )  # fmt: skip
    assert tracked.registered_version is not None
    try:
        registry.apply(decision, tracked.registered_version, command=command)
    except BaseException:
        finish_run(uri, tracked.run_id, failed=True)
        raise
    finish_run(uri, tracked.run_id)
    return Registration(
        tracking_uri=uri,
        run_id=tracked.run_id,
        model_name=name,
        version=tracked.registered_version,
        previous_champion=champion.version if champion else None,
        decision=decision,
        champion=check,
        latency=latency,
        recovered_runs=recovered,
    )


def _names(columns: Sequence[str]) -> str:
    shown = ", ".join(f"'{c}'" for c in columns[:5])
    return shown + (f" and {len(columns) - 5} more" if len(columns) > 5 else "")


def _short(exc: BaseException, limit: int = 200) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
