"""What a search produces: the leaderboard, tuning histories, the final model's members and
out-of-fold predictions.

The records here are plain pydantic models and this module imports no model code (no
scikit-learn, no Optuna), so that a report of them, or of a run of the data steps alone, does
not pay for it."""

from __future__ import annotations

import dataclasses
import hashlib
import math
import pickle
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from modelyard.modeling.search.data import SearchData

if TYPE_CHECKING:
    from modelyard.modeling.search.scheduler import Outcome

RowState = Literal["complete", "pruned", "failed", "stopped"]
StoppedBy = Literal["done", "budget", "trials"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LeaderboardRow(_Model):
    """One configuration's cross-validated score."""

    name: str
    """How people see it: the family, then ``2``, ``3`` for its further portfolio entries."""
    family: str = ""
    """The model family (see :data:`modelyard.modeling.zoo.MODEL_NAMES`)."""
    mean: float | None
    """Mean of the fold scores (None when the configuration failed or never finished fold 0)."""
    std: float | None
    """Standard deviation of the fold scores."""
    scores: list[float] = Field(default_factory=list)
    """One score per fold evaluated, in fold order (only fold 0 when pruned)."""
    fit_seconds: float | None = None
    """Mean wall-clock seconds of one fold's fit (and prediction)."""
    params: dict[str, Any] = Field(default_factory=dict)
    """The searched hyper-parameters."""
    rounds: list[int] = Field(default_factory=list)
    """Boosted families: the rounds early stopping kept on each fold."""
    state: RowState = "complete"
    """``complete``; ``pruned`` after fold 0 (not promising); ``failed``; ``stopped`` (budget)."""
    error: str | None = None
    """Why it failed or stopped."""
    key: str = ""
    """The configuration's digest (its out-of-fold predictions are stored under it)."""

    @property
    def ok(self) -> bool:
        return self.state == "complete" and self.mean is not None and not math.isnan(self.mean)


class SearchInfo(_Model):
    """How a search step ran, for the report."""

    mode: Literal["budget", "trials"]
    """``budget``: a wall-clock budget; ``trials``: a trial count (exactly reproducible)."""
    budget_seconds: float | None = None
    """The budget of explore + tune + the final fit (budget mode)."""
    allotted_seconds: float | None = None
    """This step's share of it."""
    seconds: float = 0.0
    """Wall-clock seconds this step took."""
    prepare_seconds: float = 0.0
    """Of which preparing the folds (preprocessing each fold once)."""
    stopped_by: StoppedBy = "done"
    """``done``: everything planned ran; ``budget``: the deadline ended it; ``trials``: the
    trial count was reached."""
    executor: str = ""
    """Where fits ran, e.g. ``local, 8 workers``."""
    rows: int = 0
    """Rows cross-validated (the search sample)."""
    total_rows: int = 0
    """Training rows (the final model is fitted on all of them)."""
    sample: Literal["stratified", "random"] | None = None
    """How the rows cross-validated were drawn when fewer than ``total_rows`` (``models.
    cv_sample``): ``stratified`` by class, or ``random`` (regression); ``None``: all rows."""
    fits: int = 0
    """Fits run in this step."""
    cached_fits: int = 0
    """Fits replayed from the fit cache."""
    not_installed: list[str] = Field(default_factory=list)
    """Default families left out because their optional library is not installed."""
    overtime_seconds: float = 0.0
    """Seconds past the deadline spent finishing the one model the budget had not allowed
    (a slow or busy machine); 0 when the budget held one."""


class Leaderboard(_Model):
    """Configurations sorted best first (pruned, stopped and failed ones after)."""

    rows: list[LeaderboardRow]
    greater_is_better: bool
    n_folds: int
    metric: str = ""
    search: SearchInfo | None = None

    @property
    def best(self) -> LeaderboardRow | None:
        """The best complete configuration."""
        return next((r for r in self.rows if r.ok), None)

    def top(self, k: int, *, exclude: Sequence[str] = ("dummy",)) -> list[LeaderboardRow]:
        """The ``k`` best complete configurations, leaving out ``exclude`` families."""
        ok = [r for r in self.rows if r.ok and (r.family or r.name) not in exclude]
        return ok[:k]

    def top_families(self, k: int, *, exclude: Sequence[str] = ("dummy",)) -> list[str]:
        """The ``k`` families whose best configuration ranks highest."""
        families: list[str] = []
        for row in self.rows:
            fam = row.family or row.name
            if row.ok and fam not in exclude and fam not in families:
                families.append(fam)
        return families[:k]


class TrialRecord(_Model):
    """One tuning trial."""

    number: int
    value: float | None
    """Mean CV score (complete) or the fold-0 score (pruned)."""
    state: str
    """``COMPLETE``, ``PRUNED`` or ``FAIL``."""
    params: dict[str, Any]


class TuningResult(_Model):
    """What tuning one family found, and how it stopped."""

    name: str
    """The family."""
    best_params: dict[str, Any]
    best_score: float
    """Mean CV score of the best trial (optimistic: the best of many)."""
    n_trials_completed: int
    n_pruned: int
    n_failed: int = 0
    warm_start: int = 0
    """Portfolio configurations the study started from."""
    stopped_by: StoppedBy
    seconds: float
    history: list[TrialRecord] = Field(default_factory=list)


class Member(_Model):
    """One configuration in the final model."""

    name: str
    family: str
    params: dict[str, Any]
    weight: float
    key: str = ""


def sort_rows(rows: Sequence[LeaderboardRow], greater_is_better: bool) -> list[LeaderboardRow]:
    """Complete rows best first (stable on ties), then the others in their original order."""

    def key(row: LeaderboardRow) -> tuple[int, float]:
        if not row.ok:
            return (1, 0.0)
        assert row.mean is not None
        return (0, -row.mean if greater_is_better else row.mean)

    return sorted(rows, key=key)


def row_of(outcome: Outcome) -> LeaderboardRow:
    scores = [float(s) for s in outcome.scores]
    finite = [s for s in scores if not math.isnan(s)]
    complete = outcome.state == "complete"
    return LeaderboardRow(
        name=outcome.config.label,
        family=outcome.config.family,
        mean=float(np.mean(finite)) if finite and complete else None,
        std=float(np.std(finite)) if finite and complete else None,
        scores=scores,
        fit_seconds=outcome.fit_seconds,
        params=jsonable(outcome.config.params),
        rounds=outcome.rounds,
        state=outcome.state if outcome.state != "running" else "stopped",
        error=outcome.error,
        key=outcome.config.key,
    )


def jsonable(params: dict[str, Any]) -> dict[str, Any]:
    """numpy scalars become Python ones, tuples lists (rows go to JSON and MLflow)."""
    out: dict[str, Any] = {}
    for name, value in params.items():
        if isinstance(value, np.generic):
            out[name] = value.item()
        elif isinstance(value, tuple):
            out[name] = list(value)
        else:
            out[name] = value
    return out


@dataclass
class OutOfFold:
    """Out-of-fold predictions of every complete configuration on the search sample: what the
    ensemble is selected on, and the decision threshold chosen from."""

    y: np.ndarray
    """The sample's target: class codes, or values."""
    covered: np.ndarray
    """Rows some fold validated (the others have no out-of-fold prediction)."""
    classes: list[str] | None
    predictions: dict[str, np.ndarray] = field(default_factory=dict)
    """Configuration key -> predictions (rows x classes, or rows); NaN where not covered."""

    @classmethod
    def of(cls, data: SearchData, outcomes: Sequence[Outcome]) -> OutOfFold:
        oof = cls(y=data.y, covered=data.covered(), classes=data.classes)
        for outcome in outcomes:
            if outcome.state != "complete":
                continue
            shape = (data.n_rows, data.n_classes) if data.classes else (data.n_rows,)
            pred = np.full(shape, np.nan)
            for index, fold in enumerate(data.folds):
                pred[fold.valid] = outcome.folds[index].predictions
            oof.predictions[outcome.config.key] = pred
        return oof

    def merged(self, other: OutOfFold) -> OutOfFold:
        """The predictions of both (which must be of the same sample)."""
        if len(other.y) != len(self.y) or not np.array_equal(other.y, self.y):
            raise ValueError("out-of-fold predictions of different samples cannot be merged")
        return OutOfFold(
            self.y, self.covered, self.classes, {**self.predictions, **other.predictions}
        )


WALL_CLOCK = frozenset(
    {"fit_seconds", "seconds", "prepare_seconds", "allotted_seconds", "overtime_seconds"}
)
"""Fields that measure how long something took, on this machine, this time."""


def timeless(value: Any) -> Any:
    """What identifies a search's result: a JSON-able fingerprint of ``value`` without its
    wall-clock measurements (:data:`WALL_CLOCK` fields, through pydantic models, dataclasses,
    lists, tuples and dicts). The same fits and scores, measured on another machine or another
    day, are the same result, so the steps after the search keep their cache keys (the
    ``identity`` of the pipeline's search steps). Arrays and other objects (fitted models)
    count by a digest of their bytes.

    >>> row = LeaderboardRow(name="m", mean=0.9, std=0.0, fit_seconds=1.5)
    >>> timeless(row) == timeless(row.model_copy(update={"fit_seconds": 2.5}))
    True
    >>> timeless(row) == timeless(row.model_copy(update={"mean": 0.8}))
    False
    """
    if isinstance(value, BaseModel):
        names: Any = type(value).model_fields
        return _fields(type(value), {n: getattr(value, n) for n in names})
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _fields(
            type(value), {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
        )
    if isinstance(value, list | tuple):
        return [timeless(v) for v in value]
    if isinstance(value, dict):
        return {str(k): timeless(v) for k, v in value.items()}
    if value is None or isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        data = np.ascontiguousarray(value)
        raw = data.tobytes() if data.dtype != object else pickle.dumps(data.tolist())
        return {"array": str(data.dtype), "shape": list(data.shape), "bytes": _digest(raw)}
    return {"object": type(value).__qualname__, "bytes": _digest(pickle.dumps(value, protocol=5))}


def _fields(kind: type, fields: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"type": kind.__qualname__}
    for name, v in fields.items():
        out[name] = 0.0 if name in WALL_CLOCK and isinstance(v, int | float) else timeless(v)
    return out


def _digest(raw: bytes) -> str:
    return hashlib.blake2b(raw, digest_size=16).hexdigest()
