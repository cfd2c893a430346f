"""Tuning: exact trial budget, reproducible, resumable from a journal file, timeout recorded."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pytest
from sklearn.model_selection import KFold, StratifiedKFold

from modelyard.modeling import zoo
from modelyard.modeling.tune import TuningResult, tune
from tests.unit.modeling.test_explore import accuracy, mae
from tests.unit.modeling.test_zoo import diamonds, one_thread, penguins, preprocessor

__all__ = ["one_thread"]


def _tune_linear(**kwargs: Any) -> TuningResult:
    X, y = penguins()
    args: dict[str, Any] = dict(
        name="linear",
        task="multiclass",
        preprocessor=preprocessor(X),
        cv=StratifiedKFold(3, shuffle=True, random_state=0),
        scorer=accuracy,
        greater_is_better=True,
        seed=0,
        n_trials=4,
        timeout=None,
        pruning=True,
        storage=None,
        study_name="linear",
    )
    args.update(kwargs)
    return tune(X, y, **args)


def test_budget_is_respected_exactly_and_defaults_come_first() -> None:
    result = _tune_linear(n_trials=6)
    assert len(result.history) == 6
    assert result.n_trials_completed + result.n_pruned == 6
    assert result.stopped_by == "trials"
    assert result.history[0].params == zoo.default_params("linear", "multiclass")
    best = max(t.value for t in result.history if t.state == "COMPLETE" and t.value is not None)
    assert result.best_score == best
    assert 0.9 < result.best_score <= 1.0
    assert set(result.best_params) == {"C", "max_iter"}


def test_same_seed_same_best_params() -> None:
    a = _tune_linear(n_trials=5, seed=7)
    b = _tune_linear(n_trials=5, seed=7)
    assert a.best_params == b.best_params
    assert [t.params for t in a.history] == [t.params for t in b.history]
    c = _tune_linear(n_trials=5, seed=8)
    assert [t.params for t in c.history][1:] != [t.params for t in a.history][1:]


def test_resume_runs_only_the_missing_trials(tmp_path: Path) -> None:
    journal = str(tmp_path / "tune.journal")
    first = _tune_linear(n_trials=3, storage=journal, study_name="penguins-linear")
    assert len(first.history) == 3
    second = _tune_linear(n_trials=5, storage=journal, study_name="penguins-linear")
    assert len(second.history) == 5
    assert [t.params for t in second.history[:3]] == [t.params for t in first.history]
    study = optuna.load_study(
        study_name="penguins-linear",
        storage=optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(journal)),
    )
    assert len(study.trials) == 5
    again = _tune_linear(n_trials=5, storage=journal, study_name="penguins-linear")
    assert len(again.history) == 5  # nothing left to do
    assert again.best_params == second.best_params


def test_timeout_is_honoured_and_recorded() -> None:
    X, y = diamonds()
    result = tune(
        X,
        y,
        name="random_forest",
        task="regression",
        preprocessor=preprocessor(X),
        cv=KFold(3, shuffle=True, random_state=0),
        scorer=mae,
        greater_is_better=False,
        seed=0,
        n_trials=500,
        timeout=0.5,
        pruning=False,
        storage=None,
        study_name="rf",
    )
    assert result.stopped_by == "timeout"
    assert 1 <= len(result.history) < 500
    assert result.seconds < 30


def test_pruning_records_states_on_a_bad_space() -> None:
    """A wide C range includes hopeless, tiny-C models; the median pruner stops some early."""
    X, y = diamonds()
    progress: list[tuple[int, int, str]] = []
    result = tune(
        X,
        y,
        name="linear",
        task="regression",
        preprocessor=preprocessor(X),
        cv=KFold(5, shuffle=True, random_state=0),
        scorer=mae,
        greater_is_better=False,
        seed=0,
        n_trials=20,
        timeout=None,
        pruning=True,
        storage=None,
        study_name="ridge",
        progress=lambda done, total, what: progress.append((done, total, what)),
    )
    states = {t.state for t in result.history}
    assert states <= {"COMPLETE", "PRUNED"}
    assert result.n_pruned == sum(t.state == "PRUNED" for t in result.history)
    assert result.n_pruned >= 1
    assert result.n_trials_completed + result.n_pruned == 20
    pruned = [t for t in result.history if t.state == "PRUNED"]
    assert all(t.value is not None for t in pruned)  # the last running mean
    assert progress[-1] == (20, 20, "linear")
    # the best trial minimises the error (lower is better)
    values = [t.value for t in result.history if t.state == "COMPLETE" and t.value is not None]
    assert result.best_score == min(values)


def test_failing_trials_are_recorded_and_all_failing_is_a_clear_error() -> None:
    from modelyard.errors import ModelyardError

    def broken(*_args: Any) -> float:
        raise RuntimeError("scorer broke")

    with pytest.raises(ModelyardError, match="no complete trial"):
        _tune_linear(n_trials=2, scorer=broken)

    calls = {"n": 0}

    def flaky(y: np.ndarray, pred: np.ndarray, proba: Any, classes: Any) -> float:
        calls["n"] += 1
        if calls["n"] == 1:  # the first fold of the first trial
            raise RuntimeError("flaky")
        return accuracy(y, pred, proba, classes)

    result = _tune_linear(n_trials=3, scorer=flaky)
    assert result.history[0].state == "FAIL"
    assert result.n_failed == 1
