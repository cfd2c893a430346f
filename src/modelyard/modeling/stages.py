"""The modeling stages of the standard pipeline, composed from the modules beside this one.

Each is a plain function of data and config sections (DataFrame in, typed result out); the
recipe turns them into cached steps. Fits run on the injected executor (serial, a local
process pool, or Dask) and finished fits are kept in the injected memo, so an interrupted
search replays instead of refitting. Exploration and tuning see only the training part of the
split, cross-validated; the hold-out test set is seen once, by :func:`evaluate_model`.

The search is controlled by a wall-clock **budget** (``models.budget``) covering exploration,
tuning and the final fit, or by a **trial count** (``tuning.n_trials``), which is exactly
reproducible: for a fixed seed the leaderboard, the tuned parameters and the chosen model are
the same on every executor and any number of workers.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from modelyard.config.schema import (
    EvaluationSection,
    FeaturesSection,
    ModelsSection,
    SplitSection,
    TuningSection,
)
from modelyard.data.contract import DataContract, Task
from modelyard.errors import ModelyardError, name_list

if TYPE_CHECKING:
    from concurrent.futures import Future

    import pandas as pd
    import polars as pl

    from modelyard.compute import Executor
    from modelyard.data.table import Table
    from modelyard.modeling.evaluate import Evaluation
    from modelyard.modeling.outofcore import MemberFit
    from modelyard.modeling.search.data import SearchData
    from modelyard.modeling.search.ensemble import Choice
    from modelyard.modeling.search.results import (
        Leaderboard,
        LeaderboardRow,
        OutOfFold,
        TuningResult,
    )
    from modelyard.modeling.search.scheduler import Memo
    from modelyard.modeling.splits import Split

Report = Callable[..., None]
"""``report(done, total, message, note="")``."""


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
                expected=f"one of the {len(contract.names):,} columns {name_list(contract.names)}",
                fix=f"Did you mean '{guess[0]}'?" if guess else "Fix the column name.",
            )
        return cls(contract, task, metric, greater_is_better(metric), weight)

    @property
    def exclude(self) -> list[str]:
        return [self.weight_column] if self.weight_column else []

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


# --------------------------------------------------------------------------- the budget


@dataclass(frozen=True)
class SearchPlan:
    """How the search is bounded: by a wall-clock budget, or by a trial count."""

    mode: Literal["budget", "trials"]
    budget: float | None
    """Seconds for exploration + tuning + the final fit (None: unbounded trial count)."""
    n_trials: int | None
    auto: bool = False
    """The budget was sized from the table (``models.budget: auto``)."""

    @property
    def deterministic(self) -> bool:
        return self.mode == "trials"

    def describe(self) -> str:
        if self.mode == "trials":
            cap = f", capped at {self.budget:.0f} s" if self.budget else ""
            return f"{self.n_trials} trials per tuned model{cap} (reproducible)"
        assert self.budget is not None
        return f"{self.budget:.0f} s{' (auto)' if self.auto else ''}"


def search_plan(models: ModelsSection, n_trials: int | None, rows: int, columns: int) -> SearchPlan:
    """The plan for a table of ``rows`` x ``columns`` (see ``models.budget``)."""
    from modelyard.modeling.search.budget import auto_budget

    auto = models.budget == "auto"
    seconds = auto_budget(rows, columns) if auto else float(models.budget)
    if n_trials is not None:
        return SearchPlan("trials", None if auto else seconds, n_trials, auto=False)
    return SearchPlan("budget", seconds, None, auto=auto)


# --------------------------------------------------------------------------- the sample


def _cv_rows(
    train: pl.DataFrame, models: ModelsSection, problem: Problem, seed: int
) -> pl.DataFrame:
    """The seeded sample of training rows that exploration and tuning cross-validate on."""
    limit = models.cv_sample
    if limit is None or train.height <= limit:
        return train
    return _sample(train, limit, problem, seed)


RARE_CLASS_ROWS = 10
"""A class that would have fewer rows than this in a sample keeps all its rows."""


def _sample(train: pl.DataFrame, n: int, problem: Problem, seed: int) -> pl.DataFrame:
    """About ``n`` seeded rows of ``train``. For classification: the same share of every
    class, except that a class too rare to keep :data:`RARE_CLASS_ROWS` rows at that share
    keeps every row (kddcup99 has classes of 2 rows in 395,216: a sample must not lose them)."""
    if problem.task == "regression":
        return train.sample(n=n, seed=seed, shuffle=False)
    from sklearn.model_selection import train_test_split

    y = train[problem.contract.target or ""].cast(str).to_numpy()
    labels, counts = np.unique(y, return_counts=True)
    rare = labels[counts * n / train.height < RARE_CLASS_ROWS]
    is_rare = np.isin(y, rare)
    kept = np.flatnonzero(is_rare)
    rest = np.flatnonzero(~is_rare)
    want = n - len(kept)
    if want <= 0 or len(rest) <= want:
        return train[np.sort(np.concatenate([kept, rest[: max(want, 0)]]))]
    try:
        chosen, _ = train_test_split(rest, train_size=want, stratify=y[rest], random_state=seed)
    except ValueError:  # still a class too rare to stratify
        chosen, _ = train_test_split(rest, train_size=want, random_state=seed)
    return train[np.sort(np.concatenate([kept, chosen]))]


def _groups(rows: pl.DataFrame, split: SplitSection) -> np.ndarray | None:
    """The group of each row for group cross-validation (missing is a group of its own)."""
    if split.method != "group":
        return None
    import polars as pl

    name = split.group_column
    if not name or name not in rows.columns:
        raise ModelyardError(
            f"group cross-validation needs the group column '{name}' in the training data",
            where="split.group_column",
            fix="Keep the group column in the data (do not drop it in data.columns.drop).",
        )
    groups: np.ndarray = rows.get_column(name).cast(pl.String).fill_null("\0null").to_numpy()
    return groups


def search_data(
    split: Split,
    contract: DataContract,
    features: FeaturesSection,
    split_options: SplitSection,
    models: ModelsSection,
    seed: int,
) -> SearchData:
    """The search sample's folds, preprocessed (the same for explore and tune: same key)."""
    from modelyard.modeling.search.data import prepare
    from modelyard.modeling.splits import cv_splitter

    problem = Problem.of(contract, models)
    rows = _cv_rows(split.train, models, problem, seed)
    X, y, w = problem.xy(rows)
    groups = _groups(rows, split_options)
    cv = cv_splitter(
        problem.task, split_options, n_rows=len(y), seed=seed, groups_available=groups is not None
    )
    folds = [(np.asarray(a), np.asarray(b)) for a, b in cv.split(X, y, groups)]
    return prepare(
        X, y, task=problem.task, metric=problem.metric, folds=folds,
        preprocessor=problem.preprocessor(features, seed), seed=seed, sample_weight=w,
        class_weight=models.class_weight, code_version=_code_version(),
    )  # fmt: skip


def _code_version() -> str:
    """A digest of the modeling code that fits and scores (part of every fit's cache key)."""
    import hashlib
    from pathlib import Path

    here = Path(__file__).parent
    h = hashlib.blake2b(digest_size=8)
    for path in sorted([*here.glob("*.py"), *here.glob("search/*.py"), *here.glob("zoo/*.py")]):
        h.update(path.read_bytes())
    return h.hexdigest()


def split_data(
    valid: pl.DataFrame | Table,
    test: pl.DataFrame | Table | None,
    contract: DataContract,
    options: SplitSection,
    seed: int,
    *,
    models: ModelsSection | None = None,
    scratch: Callable[[str], Path] | None = None,
    executor: Executor | None = None,
    batch_rows: int | None = None,
) -> Split:
    """The hold-out split (or the explicit test file).

    Data of one part (a DataFrame, or a table of one part) is split in memory
    (:func:`~modelyard.modeling.splits.make_split`). A table of several parts (or a frame of
    more than ``batch_rows`` rows, written as one into ``scratch``) is split per row and part on
    the ``executor``, and the search then uses a sample of ``models.search_rows`` training rows
    (:mod:`modelyard.modeling.table_split`)."""
    from modelyard.data.table import Table, as_table
    from modelyard.modeling.splits import make_split

    task_of(contract)

    def big(data: pl.DataFrame | Table | None) -> bool:
        if isinstance(data, Table):
            return len(data.parts()) > 1
        return data is not None and batch_rows is not None and data.height > batch_rows

    if scratch is not None and (big(valid) or big(test)):
        step = batch_rows or 1_000_000

        def table(data: pl.DataFrame | Table, name: str) -> Table:
            return (
                data if isinstance(data, Table) else as_table(data, scratch(name), batch_rows=step)
            )

        from modelyard.modeling.table_split import split_table

        return split_table(
            table(valid, "split_valid"), contract, options,
            test=None if test is None else table(test, "split_test_file"), seed=seed,
            scratch=scratch, executor=executor,
            sample_rows=sample_size(contract, models or _default_models()),
        )  # fmt: skip
    frame = valid.collect() if isinstance(valid, Table) else valid
    test_frame = test.collect() if isinstance(test, Table) else test
    return make_split(frame, contract, options, test=test_frame, seed=seed)


def _default_models() -> ModelsSection:
    return ModelsSection()


def sample_size(contract: DataContract, models: ModelsSection) -> Callable[[int], int]:
    """``models.search_rows`` for a table of ``n`` training rows (``auto``: from the budget)."""
    from modelyard.modeling.search.budget import auto_budget, search_rows

    problem = Problem.of(contract, models)
    columns = _columns(contract, problem)

    def size(n: int) -> int:
        if models.search_rows != "auto":
            return int(models.search_rows)
        budget = auto_budget(n, columns) if models.budget == "auto" else float(models.budget)
        return search_rows(budget, columns, models.cv_sample)

    return size


# --------------------------------------------------------------------------- explore, tune


@dataclass
class Exploration:
    """The leaderboard of the portfolio, and its out-of-fold predictions."""

    leaderboard: Leaderboard
    oof: OutOfFold


@dataclass
class Tuning:
    """Each tuned family's study, its trials as leaderboard rows, and their predictions."""

    results: list[TuningResult]
    rows: list[LeaderboardRow] = field(default_factory=list)
    oof: OutOfFold | None = None
    skipped: str | None = None
    """Why tuning did not run (the budget was spent), for the report."""


def _columns(contract: DataContract, problem: Problem) -> int:
    from modelyard.modeling.features import feature_columns

    return len(feature_columns(contract, exclude=problem.exclude))


def explore_models(
    split: Split,
    contract: DataContract,
    features: FeaturesSection,
    split_options: SplitSection,
    models: ModelsSection,
    seed: int,
    executor: Executor,
    *,
    reproducible: bool = False,
    pruning: bool = True,
    memo: Memo | None = None,
    report: Report | None = None,
) -> Exploration:
    """Cross-validate the portfolio of every candidate family into a leaderboard.

    ``reproducible`` (``tuning.n_trials`` is set) runs the whole portfolio whatever the time
    (bounded only by an explicit ``models.budget``); ``pruning`` stops weak configurations
    after fold 0."""
    import warnings

    from modelyard.compute.task import quiet_warnings
    from modelyard.modeling.search.budget import EXPLORE_SHARE
    from modelyard.modeling.search.explore import explore

    started = time.monotonic()
    problem = Problem.of(contract, models)
    trials = 1 if reproducible else None  # the mode, not the count, shapes exploration
    plan = search_plan(models, trials, split.train_rows, _columns(contract, problem))
    candidates, missing = _available(models)
    with warnings.catch_warnings():
        quiet_warnings()
        data = search_data(split, contract, features, split_options, models, seed)
    prepared = time.monotonic() - started
    allotted = plan.budget * EXPLORE_SHARE - prepared if plan.budget else None
    shared = executor.share(data)
    try:
        board, oof = explore(
            data, shared, executor, candidates=candidates,
            greater_is_better=problem.greater_is_better, deterministic=plan.deterministic,
            deadline=time.monotonic() + allotted if allotted else None, allotted=allotted,
            memo=memo, halving=pruning, progress=report,
        )  # fmt: skip
    finally:
        executor.unshare(shared)
    assert board.search is not None
    board.search.budget_seconds = plan.budget
    board.search.mode = plan.mode
    board.search.total_rows = split.train_rows
    if board.search.rows < split.train_rows:  # drawn by _sample, or by the split
        board.search.sample = "random" if problem.task == "regression" else "stratified"
    board.search.seconds = time.monotonic() - started
    board.search.prepare_seconds = prepared
    board.search.not_installed = [f"{name} (modelyard[{name}])" for name in missing]
    return Exploration(board, oof)


def _available(models: ModelsSection) -> tuple[list[str], list[str]]:
    """The candidates whose library is installed, and the others. A family the user listed
    in ``models.candidates`` must be there (an error names its extra); from the default list,
    a missing one is left out, and the report says so."""
    from modelyard.modeling.zoo import family

    chosen = "candidates" in models.model_fields_set
    ready: list[str] = []
    missing: list[str] = []
    for name in models.candidates:
        fam = family(name)
        if fam.available():
            ready.append(name)
        elif chosen:
            fam.require()  # raises MissingExtraError naming the extra
        else:
            missing.append(name)
    return ready, missing


def tune_models(
    split: Split,
    contract: DataContract,
    exploration: Exploration,
    features: FeaturesSection,
    split_options: SplitSection,
    models: ModelsSection,
    tuning: TuningSection,
    seed: int,
    executor: Executor,
    memo: Memo | None = None,
    report: Report | None = None,
) -> Tuning:
    """Tune the ``top_k`` best families with Optuna, in parallel, within the budget left."""
    from modelyard.modeling.search.budget import (
        LIKELY_MEMBERS,
        MIN_TUNING_SECONDS,
        STEP_OVERHEAD,
        refit_reserve,
    )
    from modelyard.modeling.search.tune import tune

    started = time.monotonic()
    problem = Problem.of(contract, models)
    board = exploration.leaderboard
    families = board.top_families(tuning.top_k)
    families = [f for f in families if _tunable(f, problem.task)]
    if not families:
        return Tuning([], skipped="no family to tune" if tuning.top_k else None)
    plan = search_plan(models, tuning.n_trials, split.train_rows, _columns(contract, problem))
    allotted = None
    if plan.budget is not None:
        search = board.search
        spent = (search.seconds if search is not None else 0.0) + STEP_OVERHEAD
        fold_rows = int(exploration.oof.covered.sum() * (board.n_folds - 1) / board.n_folds)
        reserve = refit_reserve(
            [r.fit_seconds or 0.0 for r in board.top(LIKELY_MEMBERS)], fold_rows=max(1, fold_rows),
            total_rows=split.train_rows, workers=executor.workers,
            prepare_seconds=search.prepare_seconds if search else 0.0, n_folds=board.n_folds,
        )  # fmt: skip
        allotted = plan.budget - spent - reserve
        if allotted < MIN_TUNING_SECONDS:
            return Tuning(
                [], skipped=f"the budget was spent ({spent:.0f} s exploring, "
                f"{reserve:.0f} s kept for the final fit)",
            )  # fmt: skip
    data = search_data(split, contract, features, split_options, models, seed)
    shared = executor.share(data)
    try:
        results, rows, oof = tune(
            data, shared, executor, families=families, warm=board.rows,
            greater_is_better=problem.greater_is_better, seed=seed, n_trials=plan.n_trials,
            deadline=started + allotted if allotted is not None else None, allotted=allotted,
            memo=memo, halving=tuning.pruning, progress=report,
        )  # fmt: skip
    finally:
        executor.unshare(shared)
    return Tuning(results, rows, oof)


def _tunable(name: str, task: Task) -> bool:
    from modelyard.modeling.zoo import family

    return bool(family(name).space(task))


# --------------------------------------------------------------------------- train


@dataclass(frozen=True)
class TrainedModel:
    """The chosen model, refitted on the whole training part."""

    choice: Choice
    threshold: float | None
    """Binary tasks: the decision threshold chosen on out-of-fold predictions."""
    model: Any
    """The fitted scikit-learn Pipeline (preprocessing + model)."""
    seconds: float = 0.0
    """Wall-clock seconds of the final fit."""
    fit_rows: int = 0
    """Training rows the final model was fitted on (fewer than ``total_rows`` when the budget
    left could not refit on all of them, or when a member of a big table's model could not
    train out of core: the fewest rows any member saw)."""
    total_rows: int = 0
    members: list[MemberFit] = field(default_factory=list)
    """Per member: the rows it was fitted on, and how (out of core, in memory, the sample)."""

    @property
    def ensemble_score(self) -> float | None:
        return self.choice.score if self.choice.name == "ensemble" else None


def train_final(
    split: Split,
    contract: DataContract,
    exploration: Exploration,
    tuning_result: Tuning,
    features: FeaturesSection,
    models: ModelsSection,
    evaluation: EvaluationSection,
    seed: int,
    executor: Executor,
    report: Report | None = None,
    scratch: Callable[[str], Path] | None = None,
) -> TrainedModel:
    """Select the weighted ensemble (or single model) on out-of-fold predictions, refit its
    members on every training row in parallel, and choose the binary decision threshold.

    When the split holds a training table of several parts (``split.train_table``), the
    preprocessing is fitted on the in-memory sample, XGBoost members are refitted on every
    row of the table out of core (:mod:`modelyard.modeling.outofcore`; ``scratch`` gives the
    folder of its disk cache), and the other members on the sample; ``members`` of the
    result records which member saw how many rows."""
    from sklearn.pipeline import Pipeline

    from modelyard.modeling.outofcore import (
        ExternalFit,
        MemberFit,
        fit_lightgbm_sequence,
        fit_xgboost_external,
        lightgbm_refit_bytes,
    )
    from modelyard.modeling.search.data import balanced_weights, encode_target
    from modelyard.modeling.search.ensemble import WeightedEnsemble, choose, refit_params
    from modelyard.modeling.search.fit import TrainingSet, fit_member

    started = time.monotonic()
    problem = Problem.of(contract, models)
    rows = list(exploration.leaderboard.rows) + list(tuning_result.rows)
    oof = exploration.oof
    if tuning_result.oof is not None:
        oof = oof.merged(tuning_result.oof)
    choice = choose(
        rows, oof, task=problem.task, metric=problem.metric,
        greater_is_better=problem.greater_is_better, ensemble=models.ensemble,
    )  # fmt: skip
    threshold = None
    if problem.task == "binary" and evaluation.threshold != "default":
        threshold = _oof_threshold(choice, oof, evaluation)
    by_key = {r.key: r for r in rows}
    train_rows = _refit_rows(split.train, exploration, tuning_result, choice, by_key, executor,
                             problem, seed)  # fmt: skip
    if report:
        what = "all" if train_rows.height == split.train_rows else f"{train_rows.height:,} of the"
        if split.train_table is not None:
            what = f"{what} (XGBoost, LightGBM: all {split.train_rows:,})"
        report(0, len(choice.members), f"refitting {choice.name} on {what} training rows")
    import warnings

    from modelyard.compute.task import quiet_warnings

    X, y, w = problem.xy(train_rows)
    codes, classes = encode_target(y, problem.task)  # a sample can lack a rare class: not here
    preprocessor = problem.preprocessor(features, seed)
    with warnings.catch_warnings():
        quiet_warnings()
        X_all = preprocessor.fit_transform(X, codes)
    if models.class_weight == "balanced" and classes is not None:
        balance = balanced_weights(codes, len(classes))
        w = balance if w is None else w * balance
    import scipy.sparse

    sparse = scipy.sparse.issparse(X_all)
    external, why_not = _out_of_core(split, choice, problem, classes, scratch, sparse)
    lightgbm_memory = ""
    if any(m.family == "lightgbm" and m.key in external for m in choice.members):
        estimate = lightgbm_refit_bytes(
            split.train_rows, X_all.shape[1], len(classes or []),
            problem.weight_column is not None or models.class_weight == "balanced",
        )  # fmt: skip
        lightgbm_memory = f"about {estimate / 1e9:.1f} GB for its binned data and training"
    full_balance = None
    if external and models.class_weight == "balanced" and classes is not None:
        assert split.train_table is not None
        full_balance = _class_balance(split.train_table, problem, classes)
    # the in-memory members in parallel; the out-of-core ones after them, one at a time on
    # every core of a local machine, each alone in a fresh process (two side by side held two
    # copies of their working set: 3.4 GB for 8M rows; idle workers and the heap an earlier
    # refit left hold another 0.4 GB at 24M rows)
    threads = executor.workers if executor.kind in ("serial", "local") else 1
    estimates = _out_of_core_estimates(exploration, choice, by_key, external, split, threads)
    if report and estimates:  # the refit is outside the budget: say what it will take
        names = ", ".join(m.name for m in choice.members if m.key in estimates)
        memory = f"; LightGBM needs {lightgbm_memory}" if lightgbm_memory else ""
        said = (
            f"refitting {names} out of core on all {split.train_rows:,} training rows, one at a "
            f"time: {_about(sum(estimates.values()))} in all (from the search's fit times)" + memory
        )
        # a note is printed even without a terminal (a log): the refit can take long
        report(0, len(choice.members), said, note=said)
    shared = executor.share(TrainingSet(problem.task, X_all, codes, w, seed))
    try:
        futures: dict[int, Future[Any]] = {}
        for i, m in enumerate(choice.members):
            if m.key not in external:
                futures[i] = executor.submit(
                    fit_member, shared, m.family, refit_params(m, by_key[m.key])
                )
        results: dict[int, Any] = {i: f.result() for i, f in futures.items()}
        for i, m in enumerate(choice.members):
            if m.key not in external:
                continue
            assert split.train_table is not None
            params = refit_params(m, by_key[m.key])
            parts = [str(p) for p in split.train_table.parts()]
            if m.family == "lightgbm":
                results[i] = executor.submit_alone(
                    fit_lightgbm_sequence, parts, problem, preprocessor, params, classes,
                    full_balance, seed, threads,
                ).result()  # fmt: skip
            else:
                assert scratch is not None
                cache = str(scratch(f"xgboost-{m.key}"))
                results[i] = executor.submit_alone(
                    fit_xgboost_external, parts, problem, preprocessor, params, classes,
                    full_balance, seed, cache, threads,
                ).result()  # fmt: skip
    finally:
        executor.unshare(shared)
    ordered = [results[i] for i in range(len(choice.members))]
    fitted: list[tuple[str, Any]] = []
    fits: list[MemberFit] = []
    for m, result in zip(choice.members, ordered, strict=True):
        if isinstance(result, ExternalFit):
            if result.rows != split.train_rows:
                raise ModelyardError(
                    f"the out-of-core fit of {m.name} read {result.rows:,} rows, "
                    f"the training table has {split.train_rows:,}",
                    where="train",
                    fix="This is a bug; please report it (the table may have changed on disk).",
                )
            fitted.append((m.name, result.estimator))
            how = f"all rows, out of core ({result.method})"
            if m.family == "lightgbm" and lightgbm_memory:
                how = f"all rows, out of core ({result.method}; {lightgbm_memory})"
            fits.append(MemberFit(m.name, m.family, result.rows, how, result.seconds))
        else:
            fitted.append((m.name, result))
            how = "in memory" if split.train_table is None else f"the sample: {why_not[m.key]}"
            fits.append(MemberFit(m.name, m.family, train_rows.height, how))
    final = WeightedEnsemble.of_fitted(fitted, [m.weight for m in choice.members], classes)
    model = Pipeline([("features", preprocessor), ("model", final)])
    return TrainedModel(
        choice, threshold, model, seconds=time.monotonic() - started,
        fit_rows=min(f.rows for f in fits), total_rows=split.train_rows, members=fits,
    )  # fmt: skip


def _out_of_core_estimates(
    exploration: Exploration,
    choice: Choice,
    by_key: dict[str, LeaderboardRow],
    external: set[str],
    split: Split,
    threads: int,
) -> dict[str, float]:
    """Per member refitted out of core, the seconds its refit is expected to take
    (:func:`~modelyard.modeling.search.budget.out_of_core_seconds`)."""
    from modelyard.modeling.search.budget import out_of_core_seconds

    search = exploration.leaderboard.search
    if not external or search is None:
        return {}
    fold_rows = _fold_rows(exploration)
    estimates: dict[str, float] = {}
    for m in choice.members:
        if m.key in external:
            fold_seconds = by_key[m.key].fit_seconds or 0.0
            estimates[m.key] = out_of_core_seconds(
                fold_seconds, fold_rows=fold_rows, total_rows=split.train_rows, threads=threads
            )
    return estimates


def _fold_rows(exploration: Exploration) -> int:
    """The rows one fold fit of the search trained on: its sample less a validation fold."""
    board = exploration.leaderboard
    rows = board.search.rows if board.search is not None else 0
    return max(1, int(rows * (board.n_folds - 1) / max(1, board.n_folds)))


def _about(seconds: float) -> str:
    """``about 40 s``, ``about 16 min``, ``about 2.5 h``."""
    if seconds < 90:
        return f"about {max(1, round(seconds))} s"
    if seconds < 90 * 60:
        return f"about {round(seconds / 60)} min"
    return f"about {seconds / 3600:.1f} h"


def _out_of_core(
    split: Split,
    choice: Choice,
    problem: Problem,
    classes: list[str] | None,
    scratch: Callable[[str], Path] | None,
    sparse: bool = False,
) -> tuple[set[str], dict[str, str]]:
    """The members refitted on every row of the training table, and why each other one is
    not (a table of one part: none, nothing to say)."""
    from modelyard.modeling.outofcore import OUT_OF_CORE

    if split.train_table is None:
        return set(), {}
    external: set[str] = set()
    why: dict[str, str] = {}
    for m in choice.members:
        if m.family not in OUT_OF_CORE:
            why[m.key] = f"{m.family} cannot train out of core"
        elif m.family == "lightgbm" and sparse:
            why[m.key] = "LightGBM's parts would be dense copies of sparse (text) features"
        elif m.family == "xgboost" and scratch is None:
            why[m.key] = "no scratch folder for XGBoost's external-memory cache"
        elif classes is not None and len(classes) < 2:
            why[m.key] = "the training rows have a single class"
        else:
            external.add(m.key)
    return external, why


def _class_balance(table: Table, problem: Problem, classes: list[str]) -> np.ndarray:
    """``class_weight: balanced`` over every row of the training table: n / (k * n_class)."""
    import polars as pl

    target = problem.contract.target or ""
    counts = (
        table.scan().select(pl.col(target).cast(pl.String).alias("c")).group_by("c").len().collect()
    )
    by_label = dict(zip(counts["c"].to_list(), counts["len"].to_list(), strict=True))
    n = np.asarray([by_label.get(c, 0) for c in classes], dtype=np.float64)
    total = n.sum()
    weights: np.ndarray = np.where(n > 0, total / (len(classes) * np.maximum(n, 1.0)), 0.0)
    return weights


def _refit_rows(
    train: pl.DataFrame,
    exploration: Exploration,
    tuning: Tuning,
    choice: Choice,
    by_key: dict[str, LeaderboardRow],
    executor: Executor,
    problem: Problem,
    seed: int,
) -> pl.DataFrame:
    """Every training row, unless the budget left cannot refit the chosen members on all of
    them: then a seeded (stratified) sample sized to what is left, never smaller than the
    search sample. The report says how many rows the final model saw."""
    from modelyard.modeling.search.budget import MIN_FINAL_SHARE, STEP_OVERHEAD, refit_reserve

    search = exploration.leaderboard.search
    if search is None or search.mode != "budget" or search.budget_seconds is None:
        return train
    tuned = max((r.seconds for r in tuning.results), default=0.0)
    spent = search.seconds + tuned + 2 * STEP_OVERHEAD
    left = max(search.budget_seconds - spent, MIN_FINAL_SHARE * search.budget_seconds)
    board = exploration.leaderboard
    expected = refit_reserve(
        [by_key[m.key].fit_seconds or 0.0 for m in choice.members],
        fold_rows=_fold_rows(exploration),
        total_rows=train.height, workers=executor.workers,
        prepare_seconds=search.prepare_seconds, n_folds=board.n_folds,
    )  # fmt: skip
    if expected <= left:
        return train
    keep = max(search.rows, int(train.height * left / expected))
    if keep >= train.height:
        return train
    return _sample(train, keep, problem, seed)


def _oof_threshold(choice: Choice, oof: OutOfFold, evaluation: EvaluationSection) -> float:
    from modelyard.modeling.evaluate import choose_threshold
    from modelyard.modeling.tasks import positive_class

    assert oof.classes is not None
    mask = oof.covered
    proba = sum(m.weight * oof.predictions[m.key][mask] for m in choice.members)
    positive = positive_class(oof.classes)
    labels = np.asarray(oof.classes, dtype=object)[oof.y[mask]]
    return choose_threshold(
        labels,
        np.asarray(proba)[:, oof.classes.index(positive)],
        positive=positive,
        method=evaluation.threshold,
        cost_ratio=evaluation.cost_ratio,
    )


# --------------------------------------------------------------------------- evaluate


def evaluate_model(
    trained: TrainedModel,
    split: Split,
    contract: DataContract,
    models: ModelsSection,
    evaluation: EvaluationSection,
    seed: int,
    executor: Executor | None = None,
) -> Evaluation:
    """Score the refitted model once on the hold-out test set (permutation importance runs
    one task per input column on the executor). A test table of several parts
    (``split.test_table``) is predicted part by part on the executor: the metrics cover every
    test row, the permutation importance the in-memory sample (``split.test``)."""
    import warnings

    from threadpoolctl import threadpool_limits

    from modelyard.compute.task import quiet_warnings
    from modelyard.modeling.evaluate import evaluate

    problem = Problem.of(contract, models)
    with threadpool_limits(limits=1), warnings.catch_warnings():
        quiet_warnings()
        return evaluate(
            trained.model, split.test, contract, evaluation, task=problem.task,
            metric=problem.metric, seed=seed, threshold=trained.threshold,
            exclude=problem.exclude, executor=executor, table=split.test_table,
        )  # fmt: skip
