"""The modeling stages of the standard pipeline, composed from the modules beside this one.

Each is a plain function of data and config sections (DataFrame in, typed result out); the
recipe turns them into cached steps. Exploration and tuning see only the training part of the
split, cross-validated; the hold-out test set is seen once, by :func:`evaluate_model`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from modelyard.config.schema import (
    EvaluationSection,
    FeaturesSection,
    ModelsSection,
    SplitSection,
    TuningSection,
)
from modelyard.data.contract import DataContract, Task
from modelyard.errors import ModelyardError
from modelyard.modeling.select import Choice

if TYPE_CHECKING:
    import pandas as pd
    import polars as pl

    from modelyard.modeling.evaluate import Evaluation
    from modelyard.modeling.explore import Leaderboard
    from modelyard.modeling.splits import Split
    from modelyard.modeling.tune import TuningResult

Report = Callable[[int, int, str], None]
F = TypeVar("F", bound=Callable[..., Any])


def single_threaded(func: F) -> F:
    """Run with native thread pools (OpenMP, BLAS) limited to one thread, and without the
    per-fit warnings of model search (an MLP that stops at its iteration cap in one trial).

    Every fit here is small enough that one thread is fast, and OpenMP pools that spin-wait
    were seen to slow fits 10-300x on a busy 2-core machine.
    """

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        import warnings

        from sklearn.exceptions import ConvergenceWarning
        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=1), warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            warnings.filterwarnings("ignore", message="Got `batch_size` less than 1")
            return func(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def task_of(contract: DataContract) -> Task:
    """The contract's task; modeling needs a target."""
    if contract.target is None or contract.task is None:
        raise ModelyardError(
            "modeling needs a target column",
            where="data.target",
            fix="Set data.target in modelyard.yaml (or run only the data steps: --until profile).",
        )
    return contract.task


@dataclass(frozen=True)
class Problem:
    """Everything the modeling stages share: the task, the metric and how to score it."""

    contract: DataContract
    task: Task
    metric: str
    greater_is_better: bool
    weight_column: str | None

    @classmethod
    def of(cls, contract: DataContract, models: ModelsSection) -> Problem:
        from modelyard.modeling.tasks import greater_is_better, resolve_metric

        task = task_of(contract)
        metric = resolve_metric(task, models.metric)
        weight = models.sample_weight_column
        if weight is not None and weight not in contract.names:
            import difflib

            guess = difflib.get_close_matches(weight, contract.names, n=1)
            raise ModelyardError(
                f"the sample weight column '{weight}' is not in the data",
                where="models.sample_weight_column",
                expected=f"one of {', '.join(contract.names)}",
                fix=f"Did you mean '{guess[0]}'?" if guess else "Fix the column name.",
            )
        return cls(contract, task, metric, greater_is_better(metric), weight)

    @property
    def exclude(self) -> list[str]:
        return [self.weight_column] if self.weight_column else []

    def scorer(self) -> Callable[[Any, Any, Any, Any], float]:
        from modelyard.modeling.tasks import score

        task, metric = self.task, self.metric

        def scorer(y_true: Any, y_pred: Any, y_proba: Any, classes: Any) -> float:
            return score(task, metric, y_true, y_pred=y_pred, y_proba=y_proba, classes=classes)

        return scorer

    def xy(self, df: pl.DataFrame) -> tuple[pd.DataFrame, np.ndarray, np.ndarray | None]:
        from modelyard.modeling.features import target_array, to_pandas

        X = to_pandas(df, self.contract, exclude=self.exclude)
        y = target_array(df, self.contract)
        w = None
        if self.weight_column:
            w = df[self.weight_column].cast(float).fill_null(0.0).to_numpy()
        return X, y, w

    def preprocessor(self, features: FeaturesSection, seed: int) -> Any:
        from modelyard.modeling.features import build_preprocessor

        return build_preprocessor(
            self.contract, features, task=self.task, seed=seed, exclude=self.exclude
        )

    def cv(self, split: SplitSection, n_rows: int, seed: int) -> Any:
        from modelyard.modeling.splits import cv_splitter

        return cv_splitter(self.task, split, n_rows=n_rows, seed=seed)


def _cv_rows(
    train: pl.DataFrame, models: ModelsSection, problem: Problem, seed: int
) -> pl.DataFrame:
    """The seeded sample of training rows that exploration and tuning cross-validate on."""
    limit = models.cv_sample
    if limit is None or train.height <= limit:
        return train
    if problem.task == "regression":
        return train.sample(n=limit, seed=seed, shuffle=False)
    # keep every class: take the same share of each
    from sklearn.model_selection import train_test_split

    y = train[problem.contract.target or ""].to_numpy()
    idx = np.arange(train.height)
    try:
        keep, _ = train_test_split(idx, train_size=limit, stratify=y, random_state=seed)
    except ValueError:  # a class too rare to stratify
        keep, _ = train_test_split(idx, train_size=limit, random_state=seed)
    return train[np.sort(keep)]


def split_data(
    valid: pl.DataFrame,
    test: pl.DataFrame | None,
    contract: DataContract,
    options: SplitSection,
    seed: int,
) -> Split:
    """The hold-out split (or the explicit test file)."""
    from modelyard.modeling.splits import make_split

    task_of(contract)
    return make_split(valid, contract, options, test=test, seed=seed)


@single_threaded
def explore_models(
    split: Split,
    contract: DataContract,
    features: FeaturesSection,
    split_options: SplitSection,
    models: ModelsSection,
    seed: int,
    report: Report | None = None,
) -> Leaderboard:
    """Cross-validate every candidate into a leaderboard."""
    from modelyard.modeling.explore import explore

    problem = Problem.of(contract, models)
    rows = _cv_rows(split.train, models, problem, seed)
    X, y, w = problem.xy(rows)
    return explore(
        X, y, task=problem.task, candidates=models.candidates,
        preprocessor=problem.preprocessor(features, seed), cv=problem.cv(split_options, len(y), seed),
        scorer=problem.scorer(), greater_is_better=problem.greater_is_better, seed=seed,
        class_weight=models.class_weight, sample_weight=w, progress=report,
    )  # fmt: skip


@single_threaded
def tune_models(
    split: Split,
    contract: DataContract,
    leaderboard: Leaderboard,
    features: FeaturesSection,
    split_options: SplitSection,
    models: ModelsSection,
    tuning: TuningSection,
    seed: int,
    storage_dir: str | None,
    study_prefix: str,
    report: Report | None = None,
) -> list[TuningResult]:
    """Tune the ``top_k`` leaderboard leaders with Optuna (resumable studies in ``storage_dir``)."""
    from modelyard.modeling.tune import tune

    problem = Problem.of(contract, models)
    leaders = leaderboard.top(tuning.top_k)
    if not leaders:
        return []
    rows = _cv_rows(split.train, models, problem, seed)
    X, y, w = problem.xy(rows)
    results = []
    for i, row in enumerate(leaders):

        def relay(
            done: int, total: int, message: str, *, _name: str = row.name, _i: int = i
        ) -> None:
            if report is not None:
                report(
                    _i * tuning.n_trials + done,
                    len(leaders) * tuning.n_trials,
                    f"{_name}: {message}",
                )

        storage = None
        if storage_dir is not None:
            from pathlib import Path

            Path(storage_dir).mkdir(parents=True, exist_ok=True)
            storage = str(Path(storage_dir) / f"{study_prefix}-{row.name}.journal")
        results.append(
            tune(
                X,
                y,
                name=row.name,
                task=problem.task,
                preprocessor=problem.preprocessor(features, seed),
                cv=problem.cv(split_options, len(y), seed),
                scorer=problem.scorer(),
                greater_is_better=problem.greater_is_better,
                seed=seed,
                n_trials=tuning.n_trials,
                timeout=tuning.timeout,
                pruning=tuning.pruning,
                storage=storage,
                study_name=f"{study_prefix}-{row.name}",
                sample_weight=w,
                class_weight=models.class_weight,
                progress=relay,
            )
        )
    return results


@dataclass(frozen=True)
class TrainedModel:
    """The chosen model, refitted on the whole training part."""

    choice: Choice
    ensemble_score: float | None
    threshold: float | None
    """Binary tasks: the decision threshold chosen on out-of-fold predictions."""
    model: Any
    """The fitted scikit-learn Pipeline (preprocessing + model)."""


@single_threaded
def train_final(
    split: Split,
    contract: DataContract,
    leaderboard: Leaderboard,
    tuning_results: list[TuningResult],
    features: FeaturesSection,
    split_options: SplitSection,
    models: ModelsSection,
    evaluation: EvaluationSection,
    seed: int,
    report: Report | None = None,
) -> TrainedModel:
    """Pick the best of leaderboard, tuned candidates and their ensemble; refit it on all
    training rows; choose the binary threshold on out-of-fold predictions."""
    from modelyard.modeling.explore import cross_validate, make_folds
    from modelyard.modeling.select import choose, fit_final, make_ensemble

    problem = Problem.of(contract, models)
    preprocessor = problem.preprocessor(features, seed)
    members = _ensemble_members(leaderboard, tuning_results)
    ensemble_score = None
    cv_rows = _cv_rows(split.train, models, problem, seed)
    Xs, ys, ws = problem.xy(cv_rows)
    folds = make_folds(problem.cv(split_options, len(ys), seed), Xs, ys)
    if models.ensemble and len(members) >= 2:
        if report:
            report(0, 2, "cross-validating the ensemble")
        ensemble = make_ensemble(members, problem.task, preprocessor, seed, models.class_weight)
        scores, _ = cross_validate(
            ensemble, Xs, ys, folds=folds, scorer=problem.scorer(), sample_weight=ws
        )
        ensemble_score = float(np.mean(scores))
    choice = choose(leaderboard, tuning_results, ensemble_score, ensemble_members=members)
    if report:
        report(1, 2, f"refitting {choice.name} on all training rows")
    X, y, w = problem.xy(split.train)
    fitted = fit_final(
        X, y, name=choice.name, task=problem.task, params=choice.params, preprocessor=preprocessor,
        seed=seed, class_weight=models.class_weight, sample_weight=w,
    )  # fmt: skip
    threshold = None
    if problem.task == "binary" and evaluation.threshold != "default":
        threshold = _oof_threshold(
            choice, problem, preprocessor, Xs, ys, ws, folds, models, evaluation, seed
        )
    return TrainedModel(
        choice=choice, ensemble_score=ensemble_score, threshold=threshold, model=fitted
    )


def _ensemble_members(
    leaderboard: Leaderboard, tuning_results: list[TuningResult]
) -> list[tuple[str, dict[str, Any]]]:
    tuned = {t.name: t.best_params for t in tuning_results if t.n_trials_completed > 0}
    members = [(name, params) for name, params in tuned.items()]
    if len(members) < 2:
        for row in leaderboard.top(3):
            if row.name not in tuned and len(members) < 3:
                members.append((row.name, row.params))
    return members


def _oof_threshold(
    choice: Choice,
    problem: Problem,
    preprocessor: Any,
    X: Any,
    y: np.ndarray,
    w: np.ndarray | None,
    folds: list[tuple[np.ndarray, np.ndarray]],
    models: ModelsSection,
    evaluation: EvaluationSection,
    seed: int,
) -> float:
    from modelyard.modeling.evaluate import choose_threshold
    from modelyard.modeling.select import fit_final
    from modelyard.modeling.tasks import positive_class

    proba = np.full(len(y), np.nan)
    positive = None
    for train_idx, test_idx in folds:
        fitted = fit_final(
            X.iloc[train_idx], y[train_idx], name=choice.name, task=problem.task, params=choice.params,
            preprocessor=preprocessor, seed=seed, class_weight=models.class_weight,
            sample_weight=None if w is None else w[train_idx],
        )  # fmt: skip
        classes = [str(c) for c in fitted.classes_]
        positive = positive_class(classes)
        proba[test_idx] = fitted.predict_proba(X.iloc[test_idx])[:, classes.index(positive)]
    seen = ~np.isnan(proba)
    assert positive is not None
    return choose_threshold(
        y[seen],
        proba[seen],
        positive=positive,
        method=evaluation.threshold,
        cost_ratio=evaluation.cost_ratio,
    )


@single_threaded
def evaluate_model(
    trained: TrainedModel,
    split: Split,
    contract: DataContract,
    models: ModelsSection,
    evaluation: EvaluationSection,
    seed: int,
) -> Evaluation:
    """Score the refitted model once on the hold-out test set."""
    from modelyard.modeling.evaluate import evaluate

    problem = Problem.of(contract, models)
    return evaluate(
        trained.model, split.test, contract, evaluation, task=problem.task, metric=problem.metric,
        seed=seed, threshold=trained.threshold, exclude=problem.exclude,
    )  # fmt: skip
