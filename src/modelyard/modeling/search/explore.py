"""Exploration: the portfolio of every candidate family, cross-validated into a leaderboard.

The portfolio interleaves the families' configurations best bet and cheapest first (boosted
trees early, bagged trees and networks late), so that a short budget still sees the strongest
models. A configuration whose first fold ranks in the bottom quarter of those before it is
pruned (successive halving); the rest are cross-validated on every fold.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from modelyard.compute import Executor, Shared
from modelyard.data.contract import Task
from modelyard.modeling.search.data import SearchData
from modelyard.modeling.search.progress import Progress, Watch
from modelyard.modeling.search.results import (
    Leaderboard,
    OutOfFold,
    SearchInfo,
    row_of,
    sort_rows,
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

PRUNE_QUANTILE = 0.25
"""Exploration prunes a configuration whose fold-0 score beats fewer than this share of the
earlier configurations' (the portfolio holds strong models: only the clearly weak go)."""
MIN_REFERENCES = 4

_ORDER: tuple[tuple[str, int], ...] = (
    ("dummy", 0),
    ("linear", 0),
    ("lightgbm", 0),
    ("xgboost", 0),
    ("lightgbm", 2),
    ("catboost", 0),
    ("lightgbm", 1),
    ("hist_gradient_boosting", 0),
    ("lightgbm", 3),
    ("extra_trees", 0),
    ("random_forest", 0),
    ("mlp", 0),
)
"""(family, portfolio index): the order configurations are tried in."""


MANY_CLASSES = 6
"""From this many classes on, bagged trees are tried right after the linear model: a boosted
model grows one tree per class and round, a forest's cost does not depend on the classes."""


def portfolio(candidates: Sequence[str], task: Task, n_classes: int = 0) -> list[Config]:
    """The configurations of ``candidates`` in exploration order (see :data:`_ORDER`)."""
    chosen = [name for name in dict.fromkeys(candidates)]
    configs: list[Config] = []
    order = list(_ORDER)
    if n_classes >= MANY_CLASSES:
        forests = [e for e in order if e[0] in ("extra_trees", "random_forest")]
        order = [e for e in order if e not in forests]
        at = next((i + 1 for i, e in enumerate(order) if e[0] == "linear"), 0)
        order[at:at] = forests
    ordered = [(f, i) for f, i in order if f in chosen]
    ordered += [(f, 0) for f in chosen if all(f != g for g, _ in _ORDER)]
    for name, index in ordered:
        entries = family(name).portfolio(task)
        if index >= len(entries):
            continue
        label = name if index == 0 else f"{name} {index + 1}"
        configs.append(Config(name, dict(entries[index]), label, "portfolio"))
    return configs


class PortfolioSource:
    """Hands out a fixed list of configurations; decides fold-0 pruning against earlier ones.

    Deterministic: a decision waits until every earlier configuration's fold 0 is known, so it
    never depends on the order fits finish in.
    """

    def __init__(
        self, configs: Sequence[Config], *, greater_is_better: bool, deterministic: bool
    ) -> None:
        self._configs = list(configs)
        self._next = 0
        self.gib = greater_is_better
        self.deterministic = deterministic

    def ask(self) -> Config | None:
        if self._next >= len(self._configs):
            return None
        config = self._configs[self._next]
        self._next += 1
        return config

    def exhausted(self) -> bool:
        return self._next >= len(self._configs)

    def decide(self, outcome: Outcome, outcomes: list[Outcome]) -> Decision:
        earlier = [o for o in outcomes if o.seq < outcome.seq]
        if self.deterministic and any(o.state == "running" and o.first is None for o in earlier):
            return "wait"
        references = [o.first for o in earlier if o.first is not None]
        assert outcome.first is not None
        prune = worse_than_quantile(
            outcome.first, references, PRUNE_QUANTILE, self.gib, MIN_REFERENCES
        )
        return "prune" if prune else "continue"

    def tell(self, outcome: Outcome) -> None:
        """Nothing to learn: the portfolio is fixed."""


def explore(
    data: SearchData,
    shared: Shared,
    executor: Executor,
    *,
    candidates: Sequence[str],
    greater_is_better: bool,
    deterministic: bool,
    deadline: float | None = None,
    allotted: float | None = None,
    memo: Memo | None = None,
    halving: bool = True,
    progress: Progress | None = None,
) -> tuple[Leaderboard, OutOfFold]:
    """Cross-validate the portfolio of ``candidates`` (see the module docstring).

    ``deadline`` (a ``time.monotonic()`` value) stops it; ``allotted`` is only shown.
    """
    started = time.monotonic()
    configs = portfolio(candidates, data.task, data.n_classes)
    watch = Watch(progress, greater_is_better=greater_is_better, allotted=allotted,
                  planned=len(configs))  # fmt: skip
    evaluator = Evaluator(
        executor, data, shared, memo=memo, deadline=deadline, halving=halving, report=watch,
        min_result=True,  # a slow machine gets a late model, never none
    )  # fmt: skip
    watch.evaluator = evaluator
    source = PortfolioSource(configs, greater_is_better=greater_is_better,
                             deterministic=deterministic)  # fmt: skip
    outcomes = evaluator.run(source)
    stopped = [o for o in outcomes if o.state == "stopped"]
    skipped = [
        c for c in configs if c.key not in {o.config.key for o in outcomes}
    ]  # never asked: the deadline came first
    rows = [row_of(o) for o in outcomes]
    for config in skipped:
        rows.append(row_of(Outcome(config, seq=-1, state="stopped",
                                   error="not started: the budget ran out")))  # fmt: skip
    board = Leaderboard(
        rows=sort_rows(rows, greater_is_better),
        greater_is_better=greater_is_better,
        n_folds=len(data.folds),
        metric=data.metric,
        search=SearchInfo(
            mode="trials" if deterministic else "budget",
            allotted_seconds=allotted,
            seconds=time.monotonic() - started,
            stopped_by="budget" if (evaluator.stopped_early or stopped or skipped) else "done",
            executor=executor.describe(),
            rows=data.n_rows,
            fits=evaluator.fits,
            cached_fits=evaluator.cached_fits,
            overtime_seconds=evaluator.overtime_seconds,
        ),
    )
    return board, OutOfFold.of(data, outcomes)
