"""The model search: the evaluator on an executor, the portfolio, ask-and-tell tuning.

A small fake executor finishes tasks in a random order from worker threads: the reproducible
search must give the same results whatever that order.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sklearn.model_selection import GroupKFold, StratifiedKFold

from modelyard.compute import Executor, Shared, open_executor
from modelyard.engine.memo import Memo
from modelyard.modeling.search.data import SearchData, prepare
from modelyard.modeling.search.explore import explore, portfolio
from modelyard.modeling.search.scheduler import Config, Evaluator, worse_than_quantile
from modelyard.modeling.search.tune import tune
from tests.unit.modeling.test_zoo import one_thread, penguins, preprocessor

__all__ = ["one_thread"]  # the autouse fixture, re-used

FAST = ["dummy", "linear", "lightgbm", "xgboost"]


class Shuffled(Executor):
    """Runs tasks on ``workers`` threads, picking queued tasks at random (a fake back-end)."""

    kind = "local"

    def __init__(self, workers: int = 3, seed: int = 0) -> None:
        self._n = workers
        self._rng = random.Random(seed)
        self._queue: list[tuple[Future[Any], Callable[..., Any], tuple[Any, ...]]] = []
        self._cv = threading.Condition()
        self._closed = False
        self._threads = [threading.Thread(target=self._work, daemon=True) for _ in range(workers)]
        for t in self._threads:
            t.start()

    @property
    def workers(self) -> int:
        return self._n

    def share(self, value: Any) -> Shared:
        return Shared("x", value)

    def submit(self, fn: Callable[..., Any], /, *args: Any) -> Future[Any]:
        future: Future[Any] = Future()
        values = tuple(a.ref if isinstance(a, Shared) else a for a in args)
        with self._cv:
            self._queue.append((future, fn, values))
            self._cv.notify()
        return future

    def _work(self) -> None:
        while True:
            with self._cv:
                while not self._queue and not self._closed:
                    self._cv.wait()
                if self._closed:
                    return
                future, fn, args = self._queue.pop(self._rng.randrange(len(self._queue)))
            if future.cancelled():
                continue
            try:
                future.set_result(fn(*args))
            except Exception as exc:
                future.set_exception(exc)

    def cancel(self, futures: Iterable[Future[Any]]) -> None:
        for f in futures:
            f.cancel()

    def close(self, *, kill: bool = False) -> None:
        with self._cv:
            self._closed = True
            self._cv.notify_all()


def _data(task: str = "multiclass", folds: int = 3) -> SearchData:
    X, y = penguins()
    splitter = StratifiedKFold(folds, shuffle=True, random_state=0)
    pairs = [(a, b) for a, b in splitter.split(X, y)]
    metric = "f1_macro" if task == "multiclass" else "roc_auc"
    target = y if task == "multiclass" else (y == "Gentoo").astype(str)
    return prepare(X, target, task=task, metric=metric, folds=pairs,  # type: ignore[arg-type]
                   preprocessor=preprocessor(X), seed=0)  # fmt: skip


def _explore(executor: Executor, data: SearchData, **kwargs: Any) -> Any:
    shared = executor.share(data)
    return explore(data, shared, executor, candidates=FAST, greater_is_better=True,
                   deterministic=True, **kwargs)  # fmt: skip


def _comparable(board: Any) -> list[tuple[Any, ...]]:
    return [(r.name, r.state, r.scores, r.params, r.rounds) for r in board.rows]


def test_exploration_gives_the_same_leaderboard_in_any_completion_order() -> None:
    data = _data()
    with open_executor("serial") as serial:
        board, oof = _explore(serial, data)
    shuffled = Shuffled(workers=3, seed=7)
    try:
        again, oof_again = _explore(shuffled, data)
    finally:
        shuffled.close()
    assert _comparable(again) == _comparable(board)
    assert (board.rows[0].family != "dummy" and board.rows[-1].family == "dummy") or any(
        r.state == "pruned" for r in board.rows
    )
    assert oof.predictions.keys() == oof_again.predictions.keys()
    for key, value in oof.predictions.items():
        np.testing.assert_array_equal(value, oof_again.predictions[key])
    assert board.search is not None and board.search.rows == len(data.y)


def test_the_portfolio_runs_cheap_strong_models_first() -> None:
    labels = [c.label for c in portfolio(["mlp", "random_forest", "lightgbm", "linear"], "binary")]
    assert labels[:2] == ["linear", "lightgbm"]
    assert labels.index("mlp") == len(labels) - 1
    assert "lightgbm 2" in labels and labels.count("linear") == 1


def test_a_configuration_that_raises_is_recorded_and_the_others_finish() -> None:
    data = _data()

    class Source:
        def __init__(self) -> None:
            self.configs = [
                Config("linear", {"C": 1.0}, "good"),
                Config("linear", {"C": -1.0}, "bad"),  # LogisticRegression refuses C <= 0
                Config("dummy", {"strategy": "prior"}, "baseline"),
            ]
            self.told: list[str] = []

        def ask(self) -> Config | None:
            return self.configs.pop(0) if self.configs else None

        def exhausted(self) -> bool:
            return not self.configs

        def decide(self, outcome: Any, outcomes: Any) -> str:
            return "continue"

        def tell(self, outcome: Any) -> None:
            self.told.append(outcome.config.label)

    source = Source()
    with open_executor("serial") as ex:
        outcomes = Evaluator(ex, data, ex.share(data), halving=False).run(source)  # type: ignore[arg-type]
    states = {o.config.label: (o.state, o.error) for o in outcomes}
    assert states["good"][0] == "complete" and states["baseline"][0] == "complete"
    assert states["bad"][0] == "failed"
    assert "InvalidParameterError" in (states["bad"][1] or "") or "C" in (states["bad"][1] or "")
    assert sorted(source.told) == ["bad", "baseline", "good"]


def test_the_deadline_stops_the_search_and_says_so() -> None:
    data = _data()
    ticks = iter(range(10_000))

    def clock() -> float:  # one second per call: the deadline at 40 comes quickly
        return float(next(ticks))

    with open_executor("serial") as ex:
        evaluator = Evaluator(ex, data, ex.share(data), deadline=40.0, clock=clock)
        configs = portfolio(["dummy", "linear", "lightgbm", "xgboost", "extra_trees"], "multiclass")

        class Source:
            def ask(self) -> Config | None:
                return configs.pop(0) if configs else None

            def exhausted(self) -> bool:
                return not configs

            def decide(self, outcome: Any, outcomes: Any) -> str:
                return "continue"

            def tell(self, outcome: Any) -> None:
                pass

        outcomes = evaluator.run(Source())  # type: ignore[arg-type]
    assert evaluator.deadline_hit
    assert any(o.state == "stopped" for o in outcomes) or configs


class _ListSource:
    def __init__(self, configs: list[Config]) -> None:
        self.configs = configs

    def ask(self) -> Config | None:
        return self.configs.pop(0) if self.configs else None

    def exhausted(self) -> bool:
        return not self.configs

    def decide(self, outcome: Any, outcomes: Any) -> str:
        return "prune" if outcome.config.family != "dummy" else "continue"

    def tell(self, outcome: Any) -> None:
        pass


def test_a_deadline_before_any_model_finished_keeps_one_going_until_it_does() -> None:
    """A busy machine (wine quality on 2 loaded cores) hit the deadline before even the linear
    model finished its folds, and the run failed with "no candidate model could be scored".
    With ``min_result`` the search runs over time to finish one model, and says how long."""
    data = _data()
    ticks = iter(range(10_000))

    def clock() -> float:  # one second per call: the deadline at 3 comes before any fold
        return float(next(ticks))

    configs = portfolio(["dummy", "linear", "lightgbm", "extra_trees"], "multiclass")
    with open_executor("serial") as ex:
        evaluator = Evaluator(ex, data, ex.share(data), deadline=3.0, clock=clock, min_result=True)
        outcomes = evaluator.run(_ListSource(list(configs)))  # type: ignore[arg-type]
    complete = [o for o in outcomes if o.state == "complete" and o.config.family != "dummy"]
    assert len(complete) == 1  # exactly one, with every fold, though the source would prune it
    assert len(complete[0].folds) == len(data.folds)
    assert evaluator.deadline_hit and evaluator.overtime_seconds > 0
    assert all(o.state in ("complete", "stopped") for o in outcomes)

    with open_executor("serial") as ex:  # without it, the same deadline leaves nothing
        ticks = iter(range(10_000))
        plain = Evaluator(ex, data, ex.share(data), deadline=3.0, clock=clock)
        outcomes = plain.run(_ListSource(list(configs)))  # type: ignore[arg-type]
    assert not [o for o in outcomes if o.state == "complete" and o.config.family != "dummy"]


def test_overtime_moves_on_when_the_kept_model_fails() -> None:
    data = _data()
    ticks = iter(range(10_000))

    def clock() -> float:
        return float(next(ticks))

    forest = portfolio(["extra_trees"], "multiclass")[0]
    broken = Config("linear", {"C": -1.0}, "broken")
    with open_executor("serial") as ex:
        evaluator = Evaluator(ex, data, ex.share(data), deadline=1.0, clock=clock, min_result=True)
        outcomes = evaluator.run(_ListSource([broken, forest]))  # type: ignore[arg-type]
    states = {o.config.label: o.state for o in outcomes}
    assert states["broken"] == "failed"
    assert states[forest.label] == "complete"


def test_overtime_finishes_the_baseline_when_it_is_the_only_candidate() -> None:
    data = _data()
    ticks = iter(range(10_000))

    def clock() -> float:
        return float(next(ticks))

    with open_executor("serial") as ex:
        evaluator = Evaluator(ex, data, ex.share(data), deadline=2.0, clock=clock, min_result=True)
        source = _ListSource(portfolio(["dummy"], "multiclass"))
        outcomes = evaluator.run(source)  # type: ignore[arg-type]
    assert [o.state for o in outcomes] == ["complete"]


def test_a_second_search_replays_every_fit_from_the_memo(tmp_path: Path) -> None:
    data = _data()
    memo = Memo(tmp_path / "fits")
    with open_executor("serial") as ex:
        first, _ = _explore(ex, data, memo=memo)
        second, _ = _explore(ex, data, memo=memo)
    assert first.search is not None and second.search is not None
    assert first.search.fits > 0 and first.search.cached_fits == 0
    assert second.search.fits == 0 and second.search.cached_fits == first.search.fits
    assert _comparable(second) == _comparable(first)


def test_changed_data_never_replays_stale_fits(tmp_path: Path) -> None:
    memo = Memo(tmp_path / "fits")
    data = _data()
    other = _data(folds=4)
    assert data.key != other.key
    with open_executor("serial") as ex:
        _explore(ex, data, memo=memo)
        board, _ = _explore(ex, other, memo=memo)
    assert board.search is not None and board.search.cached_fits == 0


def _tune(executor: Executor, data: SearchData, memo: Memo | None = None) -> Any:
    with open_executor("serial") as serial:
        board, _ = _explore(serial, data)
    results, rows, oof = tune(
        data, executor.share(data), executor, families=["lightgbm", "linear"], warm=board.rows,
        greater_is_better=True, seed=3, n_trials=7, memo=memo,
    )  # fmt: skip
    return results, rows, oof


def _trials(results: Any) -> list[tuple[Any, ...]]:
    return [(t.name, [(h.number, h.state, h.value, h.params) for h in t.history]) for t in results]


def test_tuning_by_trial_count_is_reproducible_in_any_completion_order() -> None:
    data = _data("binary")
    with open_executor("serial") as ex:
        serial, rows, _ = _tune(ex, data)
    shuffled = Shuffled(workers=4, seed=1)
    try:
        again, rows_again, _ = _tune(shuffled, data)
    finally:
        shuffled.close()
    assert _trials(again) == _trials(serial)
    assert [r.name for r in rows] == [r.name for r in rows_again]
    for result in serial:
        assert result.stopped_by == "trials"
        assert result.n_trials_completed + result.n_pruned + result.n_failed == 7
        assert result.warm_start >= 1  # the portfolio's configurations seed the study
        assert len({str(h.params) for h in result.history}) == 7  # no repeated parameters


def test_an_interrupted_study_replays_the_same_trials(tmp_path: Path) -> None:
    """A study stopped half way (here: its process's fits partly in the memo) and run again
    asks the same trials and ends with the same result as one never interrupted."""
    data = _data("binary")
    memo = Memo(tmp_path / "fits")
    with open_executor("serial") as ex:
        reference, _, _ = _tune(ex, data)
        entries = sorted((tmp_path / "fits").rglob("*.pkl")) if (tmp_path / "fits").exists() else []
        assert entries == []
        _tune(ex, data, memo=memo)
    written = sorted((tmp_path / "fits").rglob("*.pkl"))
    for path in written[len(written) // 2 :]:  # forget the second half, as if killed
        path.unlink()
    with open_executor("serial") as ex:
        resumed, _, _ = _tune(ex, data, memo=memo)
    assert _trials(resumed) == _trials(reference)


def test_group_folds_never_split_a_group() -> None:
    X, y = penguins()
    groups = X["island"].to_numpy()
    folds = [(a, b) for a, b in GroupKFold(3).split(X, y, groups)]
    data = prepare(X, y, task="multiclass", metric="f1_macro", folds=folds,
                   preprocessor=preprocessor(X), seed=0)  # fmt: skip
    for fold in data.folds:
        assert not set(groups[fold.train]) & set(groups[fold.valid])


@given(
    score=st.floats(0, 1),
    refs=st.lists(st.floats(0, 1), min_size=0, max_size=12),
    quantile=st.sampled_from([0.25, 0.5]),
)
def test_pruning_rule_is_rank_based_and_needs_enough_references(
    score: float, refs: list[float], quantile: float
) -> None:
    pruned = worse_than_quantile(score, refs, quantile, True, 4)
    if len(refs) < 4:
        assert not pruned
    if refs and len(refs) >= 4 and score >= max(refs):
        assert not pruned
    if len(refs) >= 4 and score < min(refs):
        assert pruned
    # the same rule for a loss, mirrored
    assert worse_than_quantile(-score, [-r for r in refs], quantile, False, 4) == pruned


@pytest.mark.timeout(180)
def test_a_budget_ends_tuning_even_when_no_further_fit_fits() -> None:
    """With a wall-clock budget there is no trial count: the deadline alone must end the
    study (a loop once asked for trial after trial that could not start, for ever)."""
    import time

    data = _data("binary")
    with open_executor("serial") as ex:
        board, _ = _explore(ex, data)
        results, rows, _ = tune(
            data, ex.share(data), ex, families=["lightgbm", "linear"], warm=board.rows,
            greater_is_better=True, seed=3, n_trials=None, deadline=time.monotonic() + 3.0,
        )  # fmt: skip
    assert all(r.stopped_by == "budget" for r in results)
    assert 0 < len(rows) < 500


def test_with_many_classes_forests_come_before_boosters() -> None:
    names = ["dummy", "linear", "lightgbm", "xgboost", "extra_trees", "random_forest"]
    few = [c.label for c in portfolio(names, "multiclass", n_classes=3)]
    many = [c.label for c in portfolio(names, "multiclass", n_classes=23)]
    assert few.index("extra_trees") > few.index("xgboost")
    assert many[:4] == ["dummy", "linear", "extra_trees", "random_forest"]
    assert sorted(few) == sorted(many)
