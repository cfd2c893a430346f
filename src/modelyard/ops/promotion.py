"""Track a trained model, register it, and let the promotion gate decide its alias.

The champion is scored on the SAME test rows as the candidate (through its registered pyfunc),
so the comparison is fair even when the test data changed since the champion was trained.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from modelyard.config.schema import GateSection, TrackingSection
from modelyard.data.contract import DataContract, Task
from modelyard.ops.gate import GateDecision, decide

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

AUDIT_LOG = "audit.jsonl"


class Registration(BaseModel):
    """What tracking, registration and the gate did."""

    tracking_uri: str
    run_id: str
    model_name: str
    version: str
    previous_champion: str | None
    decision: GateDecision


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
) -> Registration:
    """Log the run and the model, register a new version, and apply the gate's decision."""
    from modelyard.ops.registry import Registry
    from modelyard.ops.tracking import log_training_run, resolve_model_name, resolve_tracking_uri

    uri = resolve_tracking_uri(tracking, workdir)
    name = resolve_model_name(tracking, project)
    registry = Registry(uri, name, workdir / AUDIT_LOG)
    champion = registry.champion()
    champion_score = None
    if champion is not None:
        champion_score = score_pyfunc(
            registry.load_version(champion.version), test_X, test_y, task=task, metric=metric
        )
        if math.isnan(champion_score):
            champion_score = None
    tracked = log_training_run(
        tracking=tracking, workdir=workdir, project=project, params=params, metrics=metrics,
        model=model, contract=contract, task=task, input_example=test_X.head(5),
        artifacts=artifacts, tags=tags, register=True,
    )  # fmt: skip
    assert tracked.registered_version is not None
    decision = decide(
        metric=metric, greater_is_better=greater_is_better, candidate=candidate_score,
        champion=champion_score, options=gate, data_valid=data_valid,
    )  # fmt: skip
    registry.apply(decision, tracked.registered_version, command=command)
    return Registration(
        tracking_uri=uri,
        run_id=tracked.run_id,
        model_name=name,
        version=tracked.registered_version,
        previous_champion=champion.version if champion else None,
        decision=decision,
    )
