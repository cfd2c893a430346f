"""Selection: pick the winner, refit it on the whole training set, or blend the best into one.

- :func:`choose` compares the leaderboard (defaults), the tuned candidates and, optionally, an
  ensemble of them, by cross-validated score, and says why it picked what it picked.
- :func:`make_ensemble` is one pipeline: the preprocessor, then a soft-voting
  ``VotingClassifier`` (mean of the members' probabilities) or an averaging ``VotingRegressor``.
- :func:`fit_final` refits a choice (a single family or ``"ensemble"``) on all training rows.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict

from modelyard.data.contract import Task
from modelyard.errors import ModelyardError
from modelyard.modeling.explore import Leaderboard, _jsonable, make_pipeline
from modelyard.modeling.tune import TuningResult
from modelyard.modeling.zoo import default_params, make_model

__all__ = ["ENSEMBLE", "Choice", "choose", "fit_final", "make_ensemble"]

ENSEMBLE = "ensemble"
"""The name of a blended choice; its params are ``{"members": [[name, params], ...]}``."""


class Choice(BaseModel):
    """The selected model."""

    model_config = ConfigDict(extra="forbid")

    name: str
    """A model family, or ``"ensemble"``."""
    params: dict[str, Any]
    """Hyper-parameters for :func:`fit_final` (``{"members": [...]}`` for an ensemble)."""
    score: float
    """Its cross-validated score."""
    source: str
    """``leaderboard`` (defaults), ``tuning`` or ``ensemble``."""
    reason: str
    """One sentence a person can read in the report."""


def _members_params(members: Sequence[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    return {"members": [[name, _jsonable(params)] for name, params in members]}


def make_ensemble(
    members: Sequence[tuple[str, dict[str, Any]]],
    task: Task,
    preprocessor: Any,
    seed: int,
    class_weight: str = "none",
) -> Any:
    """``Pipeline([("features", preprocessor), ("model", Voting...)])`` of ``members``.

    Classification: soft voting (the mean of the members' ``predict_proba``); regression: the
    mean of the members' predictions. Each member is ``(family, params)``.
    """
    from sklearn.ensemble import VotingClassifier, VotingRegressor

    if len(members) < 2:
        raise ModelyardError(
            "an ensemble needs at least two members",
            where="models.ensemble",
            found=f"{len(members)} member(s)",
            fix="Tune at least two candidates (tuning.top_k >= 2) or set models.ensemble: false.",
        )
    estimators: list[tuple[str, Any]] = []
    for i, (name, params) in enumerate(members):
        label = name if all(m[0] != name for m in members[:i]) else f"{name}_{i}"
        model = make_model(name, task, params=params, seed=seed, class_weight=class_weight)
        estimators.append((label, model))
    if task == "regression":
        voter: Any = VotingRegressor(estimators)
    else:
        voter = VotingClassifier(estimators, voting="soft")
    return make_pipeline(preprocessor, voter)


def _pipeline(
    name: str,
    task: Task,
    *,
    params: dict[str, Any],
    preprocessor: Any,
    seed: int,
    class_weight: str,
) -> Any:
    if name == ENSEMBLE:
        members = [(str(m[0]), dict(m[1])) for m in params["members"]]
        return make_ensemble(members, task, preprocessor, seed, class_weight)
    model = make_model(name, task, params=params, seed=seed, class_weight=class_weight)
    return make_pipeline(preprocessor, model)


def fit_final(
    X: Any,
    y: np.ndarray,
    *,
    name: str,
    task: Task,
    params: dict[str, Any],
    preprocessor: Any,
    seed: int,
    class_weight: str = "none",
    sample_weight: np.ndarray | None = None,
) -> Any:
    """Refit ``name`` (or ``"ensemble"``) with ``params`` on all of ``(X, y)``; the fitted
    ``Pipeline`` (``features`` then ``model``)."""
    pipeline = _pipeline(
        name, task, params=params, preprocessor=preprocessor, seed=seed, class_weight=class_weight
    )
    fit_kw = {} if sample_weight is None else {"model__sample_weight": np.asarray(sample_weight)}
    pipeline.fit(X, np.asarray(y), **fit_kw)
    return pipeline


def _better(a: float, b: float, greater_is_better: bool) -> bool:
    return a > b if greater_is_better else a < b


def choose(
    leaderboard: Leaderboard,
    tuning_results: Sequence[TuningResult] = (),
    ensemble_score: float | None = None,
    *,
    ensemble_members: Sequence[tuple[str, dict[str, Any]]] = (),
) -> Choice:
    """The best of: the leaderboard's best (defaults), each tuned candidate, the ensemble.

    A challenger must be *strictly* better to win, so on ties the simpler choice stays
    (defaults over tuned, one model over an ensemble). All scores are CV means on the same
    folds; note a tuned score is the best of many trials and so slightly optimistic.
    """
    gib = leaderboard.greater_is_better
    best_row = leaderboard.best
    candidates: list[Choice] = []
    if best_row is not None and best_row.mean is not None:
        params = {k: v for k, v in best_row.params.items()}
        candidates.append(
            Choice(
                name=best_row.name,
                params=params,
                score=best_row.mean,
                source="leaderboard",
                reason=f"{best_row.name} with default parameters leads the leaderboard "
                f"({best_row.mean:.4f} over {leaderboard.n_folds} folds)",
            )
        )
    for result in tuning_results:
        if math.isnan(result.best_score):
            continue
        candidates.append(
            Choice(
                name=result.name,
                params=dict(result.best_params),
                score=result.best_score,
                source="tuning",
                reason=f"tuned {result.name} ({result.best_score:.4f}, best of "
                f"{result.n_trials_completed} trials)",
            )
        )
    if ensemble_score is not None and not math.isnan(ensemble_score):
        if len(ensemble_members) < 2:
            raise ModelyardError(
                "an ensemble score was given without its members",
                where="select.choose",
                fix="Pass ensemble_members=[(name, params), ...] with the ensemble's score.",
            )
        names = "+".join(m[0] for m in ensemble_members)
        candidates.append(
            Choice(
                name=ENSEMBLE,
                params=_members_params(ensemble_members),
                score=ensemble_score,
                source="ensemble",
                reason=f"the soft-voting ensemble {names} ({ensemble_score:.4f})",
            )
        )
    if not candidates:
        errors = "; ".join(f"{r.name}: {r.error}" for r in leaderboard.rows if r.error)
        raise ModelyardError(
            "no candidate model could be scored",
            where="models",
            found=errors or "an empty leaderboard",
            fix="Fix the errors above or choose other models.candidates.",
        )
    winner = candidates[0]
    for challenger in candidates[1:]:
        if _better(challenger.score, winner.score, gib):
            winner = challenger
    others = [c for c in candidates if c is not winner]
    reason = winner.reason
    if others:
        runner_up = others[0]
        for c in others[1:]:
            if _better(c.score, runner_up.score, gib):
                runner_up = c
        verb = "beats" if runner_up.score != winner.score else "ties (the simpler wins)"
        reason += f"; it {verb} {_label(runner_up)} ({runner_up.score:.4f})"
    return winner.model_copy(update={"reason": reason + "."})


def _label(choice: Choice) -> str:
    if choice.source == "tuning":
        return f"tuned {choice.name}"
    if choice.source == "ensemble":
        return "the ensemble"
    return f"{choice.name} with defaults"


def default_choice_params(name: str, task: Task) -> dict[str, Any]:
    """The parameters :func:`fit_final` needs to refit ``name`` with its defaults."""
    return _jsonable(default_params(name, task))
