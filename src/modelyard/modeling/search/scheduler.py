"""Evaluate model configurations fold by fold on an executor.

The unit of work is one fit: a (configuration, fold) pair (:func:`~modelyard.modeling.search.
fit.fit_fold`). The :class:`Evaluator` keeps the executor's workers busy with them, and:

- **successive halving across folds**: a configuration is first fitted on fold 0 only; its
  source then decides (:meth:`Source.decide`) whether it is worth the other folds, or is
  *pruned*. Folds of configurations already going ahead are run before new configurations;
- **a deadline**: no fit starts that is not expected to end before it; at the deadline, fits
  still running are cancelled and their configurations recorded as *stopped*. With
  ``min_result``, a deadline that comes before any model beyond the baseline has finished
  (a slow or overloaded machine) does not leave the search empty-handed: it goes into
  *overtime*, starts nothing new and keeps the one configuration closest to done running
  until it completes (the next one if it fails); ``overtime_seconds`` says how long that took;
- **a fit cache** (:class:`Memo`): every finished fit is kept under a key of its data,
  family, parameters and fold, so an interrupted search replays what it did in no time;
- **failures are results**: a fit that raises, or whose worker dies, marks its configuration
  *failed* with the reason; the others go on.

Which configurations to try comes from a :class:`Source` (a fixed portfolio, or an Optuna study
asked and told from here). With deterministic sources, the outcomes do not depend on how many
workers there are, nor on the order in which fits finish.
"""

from __future__ import annotations

import collections
import hashlib
import json
import math
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import numpy as np

from modelyard.compute import Executor, Shared
from modelyard.compute.task import error_text
from modelyard.modeling.search.data import SearchData
from modelyard.modeling.search.fit import FoldResult, fit_fold

State = Literal["running", "complete", "pruned", "failed", "stopped"]
Decision = Literal["continue", "prune", "wait"]


@dataclass(frozen=True, eq=False)
class Config:
    """One model configuration: a family and its searched parameters."""

    family: str
    params: dict[str, Any]
    label: str
    """How people see it: ``lightgbm``, ``lightgbm 2``, ``lightgbm trial 7``."""
    origin: Literal["portfolio", "tuning"] = "portfolio"

    @property
    def key(self) -> str:
        text = json.dumps([self.family, self.params], sort_keys=True, default=str)
        return hashlib.blake2b(text.encode(), digest_size=10).hexdigest()


@dataclass(eq=False)
class Outcome:
    """How one configuration fared."""

    config: Config
    seq: int
    """Order of creation in its evaluator."""
    folds: dict[int, FoldResult] = field(default_factory=dict)
    state: State = "running"
    error: str | None = None
    continued: bool = False
    """Passed the fold-0 decision (or needed none)."""

    @property
    def first(self) -> float | None:
        return self.folds[0].score if 0 in self.folds else None

    @property
    def scores(self) -> list[float]:
        return [self.folds[i].score for i in sorted(self.folds)]

    @property
    def mean(self) -> float | None:
        values = [s for s in self.scores if not math.isnan(s)]
        return float(np.mean(values)) if values else None

    @property
    def fit_seconds(self) -> float | None:
        times = [r.seconds for r in self.folds.values()]
        return float(np.mean(times)) if times else None

    @property
    def rounds(self) -> list[int]:
        return [r.rounds for _, r in sorted(self.folds.items()) if r.rounds is not None]


class Source(Protocol):
    """Where configurations come from; the evaluator calls it from one thread."""

    def ask(self) -> Config | None:
        """A configuration to start now, or None (none now; maybe later)."""

    def exhausted(self) -> bool:
        """No configuration will ever come again."""

    def decide(self, outcome: Outcome, outcomes: list[Outcome]) -> Decision:
        """After fold 0: go on, prune, or wait (deterministic sources wait for their reference
        scores to be known)."""

    def tell(self, outcome: Outcome) -> None:
        """``outcome`` reached its final state."""


class Memo(Protocol):
    """A cache of finished fits (see :class:`~modelyard.engine.memo.Memo`)."""

    def get(self, key: str) -> Any: ...

    def put(self, key: str, value: Any) -> None: ...


def worse_than_quantile(
    score: float, references: list[float], quantile: float, greater_is_better: bool, minimum: int
) -> bool:
    """Whether ``score`` is worse than the ``quantile`` of ``references`` (the share of them it
    beats is below ``quantile``); never with fewer than ``minimum`` references or a NaN."""
    refs = [r for r in references if not math.isnan(r)]
    if math.isnan(score) or len(refs) < minimum:
        return False
    beaten = sum(1 for r in refs if (score > r if greater_is_better else score < r))
    ties = sum(1 for r in refs if score == r)
    return (beaten + ties / 2) / len(refs) < quantile


Report = Callable[[Outcome | None], None]
"""Called with each configuration that reaches its final state, and with None now and then."""


class Evaluator:
    """Runs configurations from a source over ``data``'s folds (see the module docstring)."""

    def __init__(
        self,
        executor: Executor,
        data: SearchData,
        shared: Shared,
        *,
        memo: Memo | None = None,
        deadline: float | None = None,
        halving: bool = True,
        min_result: bool = False,
        report: Report | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.executor = executor
        self.data = data
        self.shared = shared
        self.memo = memo
        self.deadline = deadline
        self.n_folds = len(data.folds)
        self.halving = halving and self.n_folds > 1
        self.report = report or (lambda _: None)
        self.clock = clock
        self.outcomes: list[Outcome] = []
        self.deadline_hit = False
        self._closing = False
        self.min_result = min_result
        self._overtime: Outcome | None = None
        self._overtime_from: float | None = None
        self._nothing_left = False
        self.overtime_seconds = 0.0
        """Seconds spent past the deadline to finish one model (``min_result``)."""
        self.fits = 0
        """Fits run (results received)."""
        self.cached_fits = 0
        """Fits replayed from the memo."""
        self._urgent: collections.deque[tuple[Outcome, int]] = collections.deque()
        self._fresh: collections.deque[tuple[Outcome, int]] = collections.deque()
        self._undecided: list[Outcome] = []
        self._running: dict[Future[Any], tuple[Outcome, int]] = {}
        self._family_seconds: dict[str, list[float]] = collections.defaultdict(list)

    # ------------------------------------------------------------------ the loop

    def run(self, source: Source) -> list[Outcome]:
        """Evaluate until the source is exhausted and every fit is done, or the deadline."""
        slots = max(1, self.executor.workers)
        try:
            while True:
                if self.deadline is not None and self.clock() >= self.deadline:
                    if not self._needs_result():
                        self._stop_everything(source)
                        break
                    self._enter_overtime(source)
                self._decide(source)
                self._fill(source, slots)
                if not self._running:
                    if self._overtime_from is not None:
                        break  # overtime found nothing more to run
                    if self._urgent or self._fresh:
                        continue
                    if self._undecided:  # waiting on nothing that can still change: go ahead
                        self._force_decisions(source)
                        continue
                    break  # the source has nothing more (every outcome is final and told)
                timeout = 1.0
                if self.deadline is not None and self._overtime_from is None:
                    timeout = max(0.01, min(timeout, self.deadline - self.clock()))
                done, _ = wait(list(self._running), timeout=timeout, return_when=FIRST_COMPLETED)
                for future in done:
                    self._collect(future, source)
                self.report(None)
        except BaseException:
            self.executor.cancel(list(self._running))
            raise
        if self._overtime_from is not None:
            self.overtime_seconds = self.clock() - self._overtime_from
        return self.outcomes

    def _fill(self, source: Source, slots: int) -> None:
        while len(self._running) < slots:
            if self.deadline is not None and self.clock() >= self.deadline:
                if self._needs_result():
                    self._enter_overtime(source)
                else:
                    return  # the loop stops everything
            if self._overtime_from is not None:
                self._fill_overtime(source, slots)
                return
            if self._urgent:
                outcome, fold = self._urgent.popleft()
            elif self._fresh:
                outcome, fold = self._fresh.popleft()
            elif self._closing:
                return
            else:
                config = source.ask()
                if config is None:
                    return
                self._start(config)
                continue
            if outcome.state != "running" or fold in outcome.folds:
                continue
            if not self._fits_before_deadline(outcome):
                self._closing = True  # the budget cannot hold another fit: start nothing new
                self._finish(outcome, "stopped", source, "not started: the budget ran out")
                continue
            self._run_fold(outcome, fold, source)

    def _run_fold(self, outcome: Outcome, fold: int, source: Source) -> None:
        """Replay one fit from the memo, or send it to the executor."""
        cached = self.memo.get(self._memo_key(outcome, fold)) if self.memo else None
        if isinstance(cached, FoldResult):
            self.cached_fits += 1
            self._record(outcome, fold, cached, source)
            return
        config = outcome.config
        future = self.executor.submit(fit_fold, self.shared, config.family, config.params, fold)
        self._running[future] = (outcome, fold)

    def _start(self, config: Config) -> None:
        outcome = Outcome(config, seq=len(self.outcomes))
        self.outcomes.append(outcome)
        if self.halving:
            self._fresh.append((outcome, 0))
        else:
            outcome.continued = True
            self._fresh.extend((outcome, f) for f in range(self.n_folds))

    def _collect(self, future: Future[Any], source: Source) -> None:
        outcome, fold = self._running.pop(future)
        if future.cancelled() or outcome.state != "running":
            return
        exc = future.exception()
        if exc is not None:
            self._finish(outcome, "failed", source, error_text(exc))
            return
        result: FoldResult = future.result()
        self.fits += 1
        self._family_seconds[outcome.config.family].append(result.seconds)
        if self.memo is not None:
            self.memo.put(self._memo_key(outcome, fold), result)
        self._record(outcome, fold, result, source)

    def _record(self, outcome: Outcome, fold: int, result: FoldResult, source: Source) -> None:
        outcome.folds[fold] = result
        if len(outcome.folds) == self.n_folds:
            self._finish(outcome, "complete", source)
        elif fold == 0 and not outcome.continued:
            self._undecided.append(outcome)

    def _decide(self, source: Source) -> None:
        for outcome in list(self._undecided):
            if outcome.state != "running":
                self._undecided.remove(outcome)
                continue
            decision = source.decide(outcome, self.outcomes)
            if decision == "wait":
                continue
            self._undecided.remove(outcome)
            self._apply(outcome, decision, source)

    def _force_decisions(self, source: Source) -> None:
        for outcome in list(self._undecided):
            self._undecided.remove(outcome)
            self._apply(outcome, "continue", source)

    def _apply(self, outcome: Outcome, decision: Decision, source: Source) -> None:
        if decision == "prune":
            self._finish(outcome, "pruned", source)
            return
        outcome.continued = True
        self._urgent.extend((outcome, f) for f in range(1, self.n_folds))

    def _finish(
        self, outcome: Outcome, state: State, source: Source, error: str | None = None
    ) -> None:
        if outcome.state != "running":
            return
        outcome.state = state
        outcome.error = error
        if state in ("failed", "stopped"):
            mine = [f for f, (o, _) in self._running.items() if o is outcome]
            if mine:
                self.executor.cancel(mine)
                for f in mine:
                    self._running.pop(f, None)
        source.tell(outcome)
        self.report(outcome)

    # ------------------------------------------------------------------ overtime

    def _needs_result(self) -> bool:
        """``min_result`` and no model beyond the baseline has finished its folds yet."""
        return (
            self.min_result
            and not self._nothing_left
            and not any(o.state == "complete" and o.config.family != "dummy" for o in self.outcomes)
        )

    def _enter_overtime(self, source: Source) -> None:
        """Keep the running configuration closest to done; stop every other one."""
        self.deadline_hit = True
        self._closing = True
        if self._overtime_from is None:
            self._overtime_from = self.clock()
        keep = self._overtime
        if keep is None or keep.state != "running":
            running = [o for o in self.outcomes if o.state == "running"]
            keep = min(  # a real model first; the baseline only when nothing else is there
                running,
                key=lambda o: (o.config.family == "dummy", -len(o.folds), o.seq),
                default=None,
            )
            self._overtime = keep
        for outcome in self.outcomes:
            if outcome.state == "running" and outcome is not keep:
                self._finish(outcome, "stopped", source, "stopped: the budget ran out")
        self._keep_going(keep)

    def _keep_going(self, keep: Outcome | None) -> None:
        """The kept configuration runs all its folds (no pruning); nothing else is queued."""
        self._urgent.clear()
        self._fresh.clear()
        if keep is not None:
            keep.continued = True
            if keep in self._undecided:
                self._undecided.remove(keep)

    def _fill_overtime(self, source: Source, slots: int) -> None:
        """Run the kept configuration's missing folds; ask for the next one if it failed."""
        keep = self._overtime
        if keep is None or keep.state != "running":
            keep = None
            while (config := source.ask()) is not None:
                if config.family != "dummy":
                    self._start(config)
                    keep = self.outcomes[-1]
                    break
            self._overtime = keep
            self._keep_going(keep)
            if keep is None:
                self._nothing_left = True  # the search ends with what it has
                return
        busy = {f for o, f in self._running.values() if o is keep}
        for fold in range(self.n_folds):
            if len(self._running) >= slots or keep.state != "running":
                return
            if fold not in keep.folds and fold not in busy:
                self._run_fold(keep, fold, source)

    @property
    def stopped_early(self) -> bool:
        """The deadline ended the search (or left no room for another fit)."""
        return self.deadline_hit or self._closing

    def _stop_everything(self, source: Source) -> None:
        self.deadline_hit = True
        self.executor.cancel(list(self._running))
        self._running.clear()
        for outcome in self.outcomes:
            if outcome.state == "running":
                self._finish(outcome, "stopped", source, "stopped: the budget ran out")

    # ------------------------------------------------------------------ helpers

    def _memo_key(self, outcome: Outcome, fold: int) -> str:
        text = f"{self.data.key}:{outcome.config.family}:{outcome.config.key}:{fold}"
        return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()

    def expected_seconds(self, outcome: Outcome) -> float | None:
        """How long one more fold of ``outcome`` should take (its own folds, else its family's)."""
        own = [r.seconds for r in outcome.folds.values()]
        seen = own or self._family_seconds.get(outcome.config.family, [])
        return float(np.median(seen)) if seen else None

    def _fits_before_deadline(self, outcome: Outcome) -> bool:
        if self.deadline is None:
            return True
        expected = self.expected_seconds(outcome)
        return expected is None or self.clock() + expected <= self.deadline
