"""Hyper-parameter tuning: Optuna's TPE asked and told from here, trials fitted in parallel.

There is no distributed Optuna storage: the study lives in this process (ask-and-tell), and
workers only fit. Each tuned family gets its own study, started from the family's portfolio
results (recorded as finished trials), so the sampler begins where the portfolio left off.

**Reproducible with a trial count.** Trials are asked in generations of :data:`GENERATION`;
generation *g* is asked once generations up to *g - 2* are told, and told (in trial order) once
generation *g + 1* is asked: the history each ask sees, and the trials running beside it, are
the same whatever the number of workers and whatever order fits finish in. The sampler is
re-seeded for every trial from (seed, family, trial number).

**Resumable.** Every fit is cached by content (data, configuration, fold): an interrupted
study asks the same trials again on the next run and gets their scores from the cache, so it
ends with the same trials and result as an uninterrupted one. A changed table, feature set or
metric changes the data's key, so nothing stale is ever replayed.

**Pruned across folds.** A trial is fitted on fold 0 first; if that score is below the median
of earlier trials' fold-0 scores (from at least 4), it stops there.
"""

from __future__ import annotations

import hashlib
import math
import time
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

from modelyard.compute import Executor, Shared
from modelyard.data.contract import Task
from modelyard.modeling.search.data import SearchData
from modelyard.modeling.search.progress import Progress, Watch
from modelyard.modeling.search.results import (
    LeaderboardRow,
    OutOfFold,
    StoppedBy,
    TrialRecord,
    TuningResult,
    jsonable,
    row_of,
)
from modelyard.modeling.search.scheduler import (
    Config,
    Decision,
    Evaluator,
    Memo,
    Outcome,
    worse_than_quantile,
)
from modelyard.modeling.zoo import family
from modelyard.modeling.zoo.space import contains, distributions, sample

if TYPE_CHECKING:
    pass

GENERATION = 4
"""Trials asked together (fixed, so results do not depend on the number of workers)."""
PRUNE_QUANTILE = 0.5
MIN_REFERENCES = 4
STARTUP_TRIALS = 5
"""Random trials before TPE models the space (portfolio results count among them)."""


def _seed(seed: int, name: str, number: int) -> int:
    text = f"{seed}:{name}:{number}".encode()
    return int.from_bytes(hashlib.blake2b(text, digest_size=4).digest(), "big") & 0x7FFFFFFF


class StudySource:
    """One family's Optuna study as a :class:`~modelyard.modeling.search.scheduler.Source`."""

    def __init__(
        self,
        name: str,
        task: Task,
        *,
        seed: int,
        greater_is_better: bool,
        n_trials: int | None,
        warm: Sequence[LeaderboardRow],
        deterministic: bool,
    ) -> None:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.name = name
        self.seed = seed
        self.gib = greater_is_better
        self.n_trials = n_trials
        self.deterministic = deterministic
        self.space = family(name).space(task)
        self.study = optuna.create_study(
            direction="maximize" if greater_is_better else "minimize",
            sampler=optuna.samplers.RandomSampler(seed=seed),
        )
        self.references: list[float] = []
        self.warm_start = self._warm(warm)
        self._asked: list[tuple[Any, Config, list[float]]] = []  # trial, config, references
        self._index: dict[int, int] = {}  # id(config) -> position in _asked
        self._finished: dict[int, Outcome] = {}
        self._told = 0

    def _warm(self, rows: Sequence[LeaderboardRow]) -> int:
        import optuna
        from optuna.trial import TrialState

        dists = distributions(self.space)
        count = 0
        for row in rows:
            if row.state not in ("complete", "pruned") or not row.scores:
                continue
            params = {k: v for k, v in row.params.items() if k in self.space}
            if not contains(self.space, params) or math.isnan(row.scores[0]):
                continue
            complete = row.state == "complete" and row.mean is not None
            self.study.add_trial(
                optuna.create_trial(
                    state=TrialState.COMPLETE if complete else TrialState.PRUNED,
                    value=row.mean if complete else None,
                    params=params,
                    distributions=dists,
                    intermediate_values={0: row.scores[0]},
                )
            )
            self.references.append(row.scores[0])
            count += 1
        return count

    # -- the source

    def _generation_open(self) -> bool:
        if not self.deterministic:
            return True
        generation = len(self._asked) // GENERATION
        return self._told >= max(0, generation - 1) * GENERATION

    def ask(self) -> Config | None:
        self._flush()
        if self.exhausted() or not self._generation_open():
            return None
        import optuna

        number = len(self.study.trials)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            self.study.sampler = optuna.samplers.TPESampler(
                seed=_seed(self.seed, self.name, number),
                n_startup_trials=STARTUP_TRIALS,
                multivariate=True,
                constant_liar=True,
            )
            trial = self.study.ask()
            params = sample(self.space, trial)
        config = Config(self.name, params, f"{self.name} trial {trial.number}", "tuning")
        self._index[id(config)] = len(self._asked)
        self._asked.append((trial, config, list(self.references)))
        self._flush()
        return config

    def exhausted(self) -> bool:
        return self.n_trials is not None and len(self._asked) >= self.n_trials

    def decide(self, outcome: Outcome, outcomes: list[Outcome]) -> Decision:
        _, _, snapshot = self._asked[self._index[id(outcome.config)]]
        references = snapshot if self.deterministic else self.references
        assert outcome.first is not None
        prune = worse_than_quantile(
            outcome.first, references, PRUNE_QUANTILE, self.gib, MIN_REFERENCES
        )
        return "prune" if prune else "continue"

    def tell(self, outcome: Outcome) -> None:
        self._finished[self._index[id(outcome.config)]] = outcome
        self._flush()

    def _flush(self) -> None:
        """Tell finished trials, in order; deterministic: a whole generation at a time, once
        the generation after it is asked (see the module docstring)."""
        while True:
            if self.deterministic:
                start = self._told
                end = min(start + GENERATION, self.n_trials or start + GENERATION)
                if start >= end:
                    return
                asked_next = len(self._asked) >= end + GENERATION or self.exhausted()
                batch = range(start, end)
                if not asked_next or not all(i in self._finished for i in batch):
                    return
            else:
                if self._told not in self._finished:
                    return
                batch = range(self._told, self._told + 1)
            for i in batch:
                self._tell_one(i)
            self._told = batch.stop

    def _tell_one(self, index: int) -> None:
        from optuna.trial import TrialState

        trial, _, _ = self._asked[index]
        outcome = self._finished[index]
        first = outcome.first
        if first is not None and not math.isnan(first):
            trial.report(first, 0)
            self.references.append(first)
        mean = outcome.mean
        if outcome.state == "complete" and mean is not None:
            self.study.tell(trial, mean)
        elif outcome.state == "pruned":
            self.study.tell(trial, state=TrialState.PRUNED)
        else:
            self.study.tell(trial, state=TrialState.FAIL)

    def result(self, seconds: float, stopped_by: StoppedBy) -> TuningResult:
        history: list[TrialRecord] = []
        best: tuple[float, dict[str, Any]] | None = None
        counts = {"complete": 0, "pruned": 0, "failed": 0}
        for index, (trial, config, _) in enumerate(self._asked):
            outcome = self._finished.get(index)
            state = outcome.state if outcome else "stopped"
            value = outcome.mean if outcome and state == "complete" else (
                outcome.first if outcome else None
            )  # fmt: skip
            label = {"complete": "COMPLETE", "pruned": "PRUNED"}.get(state, "FAIL")
            counts[{"COMPLETE": "complete", "PRUNED": "pruned"}.get(label, "failed")] += 1
            history.append(TrialRecord(number=trial.number, value=value, state=label,
                                       params=jsonable(config.params)))  # fmt: skip
            if label == "COMPLETE" and value is not None and not math.isnan(value):
                better = best is None or (value > best[0] if self.gib else value < best[0])
                if better:
                    best = (value, jsonable(config.params))
        return TuningResult(
            name=self.name,
            best_params=best[1] if best else {},
            best_score=best[0] if best else math.nan,
            n_trials_completed=counts["complete"],
            n_pruned=counts["pruned"],
            n_failed=counts["failed"],
            warm_start=self.warm_start,
            stopped_by=stopped_by,
            seconds=seconds,
            history=history,
        )


class Interleave:
    """Several sources as one: asks go round the sources in turn."""

    def __init__(self, sources: Sequence[StudySource]) -> None:
        self.sources = list(sources)
        self._turn = 0
        self._owner: dict[int, StudySource] = {}

    def ask(self) -> Config | None:
        for step in range(len(self.sources)):
            source = self.sources[(self._turn + step) % len(self.sources)]
            config = source.ask()
            if config is not None:
                self._turn = (self._turn + step + 1) % len(self.sources)
                self._owner[id(config)] = source
                return config
        return None

    def exhausted(self) -> bool:
        return all(s.exhausted() for s in self.sources)

    def decide(self, outcome: Outcome, outcomes: list[Outcome]) -> Decision:
        return self._owner[id(outcome.config)].decide(outcome, outcomes)

    def tell(self, outcome: Outcome) -> None:
        self._owner[id(outcome.config)].tell(outcome)


def tune(
    data: SearchData,
    shared: Shared,
    executor: Executor,
    *,
    families: Sequence[str],
    warm: Sequence[LeaderboardRow],
    greater_is_better: bool,
    seed: int,
    n_trials: int | None,
    deadline: float | None = None,
    allotted: float | None = None,
    memo: Memo | None = None,
    halving: bool = True,
    progress: Progress | None = None,
) -> tuple[list[TuningResult], list[LeaderboardRow], OutOfFold]:
    """Tune ``families`` side by side: ``n_trials`` each (reproducible), or until
    ``deadline`` (a ``time.monotonic()`` value) when ``n_trials`` is None. Returns each
    family's result, every trial as a leaderboard row, and their out-of-fold predictions."""
    started = time.monotonic()
    deterministic = n_trials is not None
    sources = [
        StudySource(
            name, data.task, seed=seed, greater_is_better=greater_is_better, n_trials=n_trials,
            warm=[r for r in warm if r.family == name], deterministic=deterministic,
        )
        for name in families
    ]  # fmt: skip
    if not sources:
        return [], [], OutOfFold.of(data, [])
    watch = Watch(progress, greater_is_better=greater_is_better, allotted=allotted,
                  planned=n_trials * len(sources) if n_trials else None)  # fmt: skip
    evaluator = Evaluator(
        executor, data, shared, memo=memo, deadline=deadline, halving=halving, report=watch
    )
    watch.evaluator = evaluator
    outcomes = evaluator.run(Interleave(sources))
    seconds = time.monotonic() - started
    stopped_by: Literal["done", "budget", "trials"] = (
        "budget" if evaluator.stopped_early or n_trials is None else "trials"
    )
    results = [s.result(seconds, stopped_by) for s in sources]
    return results, [row_of(o) for o in outcomes], OutOfFold.of(data, outcomes)
