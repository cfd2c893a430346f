"""The final model: a weighted ensemble chosen greedily from out-of-fold predictions.

Ensemble selection (Caruana et al., 2004, as AutoGluon's weighted ensemble does it): start
empty; in each of :data:`ROUNDS` rounds add, with replacement, the configuration whose addition
gives the best out-of-fold score of the averaged predictions; keep the round with the best
score. Weights are how often each configuration was added. Selection starts from the best
single model, so the ensemble is never worse than it on the out-of-fold rows; a configuration
that adds nothing never enters. When one member takes all the weight, the final model is that
single model.

:class:`WeightedEnsemble` is the fitted result, a scikit-learn estimator: the weighted mean of
its members' probabilities (labels are their argmax) or of their predictions.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict
from sklearn.base import BaseEstimator

from modelyard.data.contract import Task
from modelyard.modeling.search.data import score_predictions
from modelyard.modeling.search.results import LeaderboardRow, Member, OutOfFold

ROUNDS = 40
"""Greedy rounds (the ensemble's weights are multiples of 1/ROUNDS at most)."""
MAX_CANDIDATES = 25
"""The best configurations considered for the ensemble."""
REFIT_ROUNDS_FACTOR = 1.15
"""A boosted member refitted on every training row grows this many times the mean number of
rounds early stopping kept on the folds (more rows support a few more rounds)."""


class Choice(BaseModel):
    """The selected model."""

    model_config = ConfigDict(extra="forbid")

    name: str
    """``ensemble``, or the configuration's name when one model takes all the weight."""
    members: list[Member]
    score: float
    """Its out-of-fold score (all folds pooled)."""
    best_single: float | None = None
    """The best single configuration's out-of-fold score, for comparison."""
    source: str
    """``ensemble``, ``leaderboard`` (a portfolio configuration) or ``tuning``."""
    reason: str
    """One sentence a person can read in the report."""

    @property
    def params(self) -> dict[str, Any]:
        """A single model's parameters, or the members and weights of an ensemble."""
        if len(self.members) == 1:
            return dict(self.members[0].params)
        return {"members": [m.model_dump() for m in self.members]}


@dataclass
class Selection:
    weights: dict[str, float]
    """Configuration key -> weight (summing to 1)."""
    score: float
    history: list[float]
    """The ensemble's score after each round."""


TOLERANCE = 1e-7
"""An addition must improve the score by more than this (relative) to count: averaging in a
model that changes no ranking (the constant baseline, for ROC AUC) moves the score only by
rounding noise, and must not collect weight."""


def _better(a: float, b: float, greater_is_better: bool) -> bool:
    if math.isnan(b):
        return not math.isnan(a)
    if math.isnan(a):
        return False
    margin = TOLERANCE * max(1.0, abs(b))
    return a > b + margin if greater_is_better else a < b - margin


def select(
    oof: OutOfFold,
    keys: Sequence[str],
    *,
    task: Task,
    metric: str,
    greater_is_better: bool,
    rounds: int = ROUNDS,
) -> Selection:
    """Greedy ensemble selection over the configurations ``keys`` (best first)."""
    mask = oof.covered
    y = oof.y[mask]
    preds = [oof.predictions[k][mask] for k in keys]

    def scored(p: np.ndarray) -> float:
        return score_predictions(task, metric, oof.classes, y, p)

    total = np.zeros_like(preds[0])
    counts = np.zeros(len(keys), dtype=np.int64)
    history: list[float] = []
    best_round, best_score = 0, math.nan
    for r in range(1, rounds + 1):
        pick, pick_score = -1, math.nan
        for i, p in enumerate(preds):
            s = scored((total + p) / r)
            if pick < 0 or _better(s, pick_score, greater_is_better):
                pick, pick_score = i, s
        total += preds[pick]
        counts[pick] += 1
        history.append(pick_score)
        if best_round == 0 or _better(pick_score, best_score, greater_is_better):
            best_round, best_score = r, pick_score
            best_counts = counts.copy()
    weights = {keys[i]: float(c) / best_round for i, c in enumerate(best_counts) if c}
    return Selection(weights, best_score, history)


def choose(
    rows: Sequence[LeaderboardRow],
    oof: OutOfFold,
    *,
    task: Task,
    metric: str,
    greater_is_better: bool,
    ensemble: bool = True,
) -> Choice:
    """The final model's configurations and weights, chosen on out-of-fold predictions."""
    from modelyard.errors import ModelyardError

    # the baseline is what every model must beat, never part of one
    ranked = [r for r in rows if r.ok and r.key in oof.predictions and r.family != "dummy"]
    ranked = ranked or [r for r in rows if r.ok and r.key in oof.predictions]
    ranked.sort(key=lambda r: -(r.mean or 0.0) if greater_is_better else (r.mean or 0.0))
    if not ranked:
        errors = "; ".join(f"{r.name}: {r.error}" for r in rows if r.error)[:500]
        raise ModelyardError(
            "no candidate model could be scored",
            where="models",
            found=errors or "no configuration completed its cross-validation",
            fix="Fix the errors above, choose other models.candidates, or raise models.budget.",
        )
    candidates = ranked[:MAX_CANDIDATES] if ensemble else ranked[:1]
    by_key = {r.key: r for r in candidates}
    picked = select(
        oof, [r.key for r in candidates], task=task, metric=metric,
        greater_is_better=greater_is_better, rounds=ROUNDS if ensemble else 1,
    )  # fmt: skip
    single = score_predictions(
        task, metric, oof.classes, oof.y[oof.covered], oof.predictions[ranked[0].key][oof.covered]
    )
    members = [
        Member(name=by_key[k].name, family=by_key[k].family, params=by_key[k].params,
               weight=round(w, 6), key=k)
        for k, w in sorted(picked.weights.items(), key=lambda kw: -kw[1])
    ]  # fmt: skip
    if len(members) == 1:
        row = by_key[members[0].key]
        source = "tuning" if " trial " in row.name else "leaderboard"
        reason = (
            f"{row.name} leads the leaderboard ({row.mean:.4f} over its folds); "
            "no blend of other models improved its out-of-fold score"
            if ensemble
            else f"{row.name} leads the leaderboard ({row.mean:.4f} over its folds)"
        )
        return Choice(name=row.name, members=members, score=picked.score, best_single=single,
                      source=source, reason=reason + ".")  # fmt: skip
    names = ", ".join(f"{m.name} {m.weight:.2f}" for m in members)
    return Choice(
        name="ensemble",
        members=members,
        score=picked.score,
        best_single=single,
        source="ensemble",
        reason=(
            f"a weighted ensemble ({names}) scores {picked.score:.4f} out of fold, "
            f"against {single:.4f} for the best single model, {ranked[0].name}."
        ),
    )


def refit_params(member: Member, row: LeaderboardRow) -> dict[str, Any]:
    """A member's parameters for the refit on every row (boosted: the folds' rounds)."""
    from modelyard.modeling.zoo import family

    fam = family(member.family)
    if not fam.boosted or not row.rounds:
        return dict(member.params)
    rounds = math.ceil(float(np.mean(row.rounds)) * REFIT_ROUNDS_FACTOR)
    return fam.with_rounds(dict(member.params), max(1, rounds))


class WeightedEnsemble(BaseEstimator):  # type: ignore[misc]
    """The weighted mean of fitted members (see the module docstring).

    ``members`` are ``(name, estimator)``; classifiers' members were fitted on class codes
    (positions in ``classes``), and ``classes_`` holds the labels.
    """

    predict_is_argmax = True
    """``predict`` is exactly ``classes_[argmax(predict_proba)]``: callers that need both may
    compute the probabilities once."""

    def __init__(
        self,
        members: Sequence[tuple[str, Any]] = (),
        weights: Sequence[float] = (),
        classes: Sequence[str] | None = None,
    ) -> None:
        self.members = members
        self.weights = weights
        self.classes = classes

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> WeightedEnsemble:
        """Fit every member (with its parameters as they are) on ``X``, ``y``."""
        from sklearn.base import clone

        target = np.asarray(y)
        if self.classes is not None:
            lookup = {label: i for i, label in enumerate(self.classes)}
            target = np.asarray([lookup[str(v)] for v in target], dtype=np.int64)
        fitted = []
        for name, estimator in self.members:
            model = clone(estimator)
            model.fit(X, target, sample_weight=sample_weight)
            fitted.append((name, model))
        self.members_ = fitted
        return self._finish()

    @classmethod
    def of_fitted(
        cls,
        members: Sequence[tuple[str, Any]],
        weights: Sequence[float],
        classes: Sequence[str] | None,
    ) -> WeightedEnsemble:
        """An ensemble of members fitted elsewhere (the final refit runs them in parallel)."""
        ensemble = cls(members=list(members), weights=list(weights), classes=classes)
        ensemble.members_ = list(members)
        return ensemble._finish()

    def _finish(self) -> WeightedEnsemble:
        w = np.asarray(self.weights, dtype=np.float64)
        self.weights_ = w / w.sum()
        if self.classes is not None:
            self.classes_ = np.asarray(self.classes, dtype=object)
        estimator = self.members_[0][1]
        if hasattr(estimator, "n_features_in_"):
            self.n_features_in_ = estimator.n_features_in_
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        if self.classes is None:
            raise AttributeError("a regression ensemble has no predict_proba")
        n = len(self.classes)
        total: np.ndarray | None = None
        for (_, estimator), weight in zip(self.members_, self.weights_, strict=True):
            proba = np.asarray(estimator.predict_proba(X), dtype=np.float64)
            seen = np.asarray(estimator.classes_, dtype=np.int64)
            if len(seen) != n:
                full = np.zeros((proba.shape[0], n))
                full[:, seen] = proba
                proba = full
            total = weight * proba if total is None else total + weight * proba
        assert total is not None
        return np.asarray(total, dtype=np.float64)

    def predict(self, X: Any) -> np.ndarray:
        if self.classes is not None:
            labels: np.ndarray = self.classes_[np.argmax(self.predict_proba(X), axis=1)]
            return labels
        total = None
        for (_, estimator), weight in zip(self.members_, self.weights_, strict=True):
            pred = weight * np.asarray(estimator.predict(X), dtype=np.float64)
            total = pred if total is None else total + pred
        assert total is not None
        return np.asarray(total, dtype=np.float64)
