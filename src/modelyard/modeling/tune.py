"""Hyper-parameter tuning of one model family with Optuna.

- The budget is a **trial count** (reproducible with the seed: TPE sampler seeded, the zoo's
  defaults enqueued as trial 0, so tuning never scores worse than the defaults did).
- ``timeout`` is an optional wall-clock cap; when it stops the study, :attr:`TuningResult.
  stopped_by` says ``"timeout"`` (Optuna checks it between trials).
- Pruning: after each CV fold the running mean is reported; a median pruner stops trials that
  are worse than the median of earlier trials at the same fold.
- Resume: with ``storage`` (a journal file path) and a fixed ``study_name``, a restarted tune
  continues the study and runs only the trials still missing to reach ``n_trials`` finished
  (complete or pruned) trials.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd  # type: ignore[import-untyped,unused-ignore]
from pydantic import BaseModel, ConfigDict, Field

from modelyard.data.contract import Task
from modelyard.errors import ModelyardError
from modelyard.modeling.explore import (
    Progress,
    Scorer,
    _jsonable,
    cross_validate,
    make_folds,
    make_pipeline,
)
from modelyard.modeling.zoo import default_trial_params, make_model, suggest_params

if TYPE_CHECKING:
    import optuna

__all__ = ["TrialRecord", "TuningResult", "open_study", "tune"]

_PARAMS_ATTR = "model_params"
_FINISHED = ("COMPLETE", "PRUNED")


class TrialRecord(BaseModel):
    """One Optuna trial."""

    model_config = ConfigDict(extra="forbid")

    number: int
    value: float | None
    """CV mean (complete trials) or the last reported running mean (pruned trials)."""
    state: str
    """``COMPLETE``, ``PRUNED``, ``FAIL`` or ``RUNNING`` (a trial of a killed process)."""
    params: dict[str, Any]
    """The model's hyper-parameters, ready for ``make_model(params=...)``."""


class TuningResult(BaseModel):
    """What tuning found, and how it stopped."""

    model_config = ConfigDict(extra="forbid")

    name: str
    best_params: dict[str, Any]
    best_score: float
    """Mean CV score of the best trial (optimistic: it is the best of many)."""
    n_trials_completed: int
    """Complete trials in the study (all runs of a resumed study)."""
    n_pruned: int
    n_failed: int = 0
    stopped_by: Literal["trials", "timeout"]
    seconds: float
    """Wall-clock seconds of this call."""
    history: list[TrialRecord] = Field(default_factory=list)


def _quiet() -> None:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)


def _storage(path: str | None) -> Any:
    if path is None:
        return None
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    return JournalStorage(JournalFileBackend(str(path)))


def open_study(
    *,
    study_name: str,
    storage: str | None,
    greater_is_better: bool,
    seed: int,
    pruning: bool = True,
) -> optuna.Study:
    """Create or load (``load_if_exists``) the study; ``storage`` is a journal file path."""
    import optuna

    _quiet()
    pruner: optuna.pruners.BasePruner = (
        optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=0)
        if pruning
        else optuna.pruners.NopPruner()
    )
    direction: Literal["maximize", "minimize"] = "maximize" if greater_is_better else "minimize"
    study = optuna.create_study(
        storage=_storage(storage),
        sampler=optuna.samplers.TPESampler(seed=seed),
        pruner=pruner,
        study_name=study_name,
        direction=direction,
        load_if_exists=True,
    )
    if study.direction.name.lower() != direction:
        raise ModelyardError(
            f"the stored study '{study_name}' optimises in the other direction",
            where=str(storage),
            expected=direction,
            found=study.direction.name.lower(),
            fix="Use another study name or delete the journal file.",
        )
    return study


def _count(study: optuna.Study, states: Sequence[str]) -> int:
    return sum(1 for t in study.get_trials(deepcopy=False) if t.state.name in states)


def tune(
    X: pd.DataFrame,
    y: np.ndarray,
    *,
    name: str,
    task: Task,
    preprocessor: Any,
    cv: Any,
    scorer: Scorer,
    greater_is_better: bool,
    seed: int,
    n_trials: int,
    timeout: float | None = None,
    pruning: bool = True,
    storage: str | None = None,
    study_name: str,
    sample_weight: np.ndarray | None = None,
    class_weight: str = "none",
    groups: np.ndarray | None = None,
    progress: Progress | None = None,
) -> TuningResult:
    """Tune ``name`` with ``n_trials`` finished trials in total (see the module docstring).

    ``progress(done, n_trials, name)`` is called after each trial.
    """
    import optuna

    if n_trials < 1:
        raise ModelyardError(
            "the tuning budget must be at least one trial",
            where="tuning.n_trials",
            found=str(n_trials),
        )
    start = time.perf_counter()
    y = np.asarray(y)
    folds = make_folds(cv, X, y, groups)
    study = open_study(
        study_name=study_name,
        storage=storage,
        greater_is_better=greater_is_better,
        seed=seed,
        pruning=pruning,
    )
    if not study.get_trials(deepcopy=False):
        study.enqueue_trial(default_trial_params(name, task))

    def objective(trial: optuna.Trial) -> float:
        params = suggest_params(name, task, trial)
        trial.set_user_attr(_PARAMS_ATTR, _jsonable(params))
        model = make_model(name, task, params=params, seed=seed, class_weight=class_weight)

        def on_fold(i: int, scores: list[float]) -> None:
            trial.report(float(np.mean(scores)), i)
            if pruning and i < len(folds) - 1 and trial.should_prune():
                raise optuna.TrialPruned()

        scores, _ = cross_validate(
            make_pipeline(preprocessor, model),
            X,
            y,
            folds=folds,
            scorer=scorer,
            sample_weight=sample_weight,
            on_fold=on_fold,
        )
        value = float(np.mean(scores))
        if math.isnan(value):
            raise ValueError("the CV score is NaN")
        return value

    def callback(study: optuna.Study, _trial: optuna.trial.FrozenTrial) -> None:
        if progress is not None:
            progress(min(_count(study, _FINISHED), n_trials), n_trials, name)

    remaining = n_trials - _count(study, _FINISHED)
    stopped_by: Literal["trials", "timeout"] = "trials"
    if remaining > 0:
        before = len(study.get_trials(deepcopy=False))
        # A failing trial is recorded (state FAIL, its reason in the history) and uses budget.
        study.optimize(
            objective, n_trials=remaining, timeout=timeout, catch=(Exception,), callbacks=[callback]
        )
        ran = len(study.get_trials(deepcopy=False)) - before
        if timeout is not None and ran < remaining:
            stopped_by = "timeout"
    return _result(study, name, stopped_by, start)


def _result(
    study: optuna.Study, name: str, stopped_by: Literal["trials", "timeout"], start: float
) -> TuningResult:
    trials = study.get_trials(deepcopy=False)
    history = [
        TrialRecord(
            number=t.number,
            value=t.value if t.value is not None else _last_report(t),
            state=t.state.name,
            params=dict(t.user_attrs.get(_PARAMS_ATTR, t.params)),
        )
        for t in trials
    ]
    complete = [t for t in trials if t.state.name == "COMPLETE"]
    if not complete:
        reason = next(
            (t.system_attrs["fail_reason"] for t in trials if "fail_reason" in t.system_attrs),
            "no trial finished",
        )
        raise ModelyardError(
            f"tuning '{name}' found no complete trial",
            where=f"tuning of {name}",
            found=str(reason),
            fix="Check the model's parameters, or raise tuning.timeout / tuning.n_trials.",
        )
    best = study.best_trial
    assert best.value is not None
    return TuningResult(
        name=name,
        best_params=dict(best.user_attrs.get(_PARAMS_ATTR, best.params)),
        best_score=float(best.value),
        n_trials_completed=len(complete),
        n_pruned=sum(1 for t in trials if t.state.name == "PRUNED"),
        n_failed=sum(1 for t in trials if t.state.name == "FAIL"),
        stopped_by=stopped_by,
        seconds=time.perf_counter() - start,
        history=history,
    )


def _last_report(trial: optuna.trial.FrozenTrial) -> float | None:
    if not trial.intermediate_values:
        return None
    return float(trial.intermediate_values[max(trial.intermediate_values)])
