"""The modeling stages' own decisions: samples that keep rare classes, a final fit that keeps
to the budget, the search plan."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from modelyard.compute import open_executor
from modelyard.config.schema import ColumnRoles, ContractSection, ModelsSection
from modelyard.data.contract import infer_contract
from modelyard.modeling.search.ensemble import Choice, Member
from modelyard.modeling.search.results import Leaderboard, LeaderboardRow, OutOfFold, SearchInfo
from modelyard.modeling.stages import (
    Exploration,
    Problem,
    Tuning,
    _refit_rows,
    _sample,
    search_plan,
)


def _frame(n: int = 20_000) -> pl.DataFrame:
    rng = np.random.default_rng(0)
    label = np.where(rng.random(n) < 0.7, "common", "other").astype(object)
    label[:2] = "rare"  # a class of two rows, as in kddcup99
    return pl.DataFrame({"x": rng.normal(size=n), "label": label.astype(str)})


def _problem(frame: pl.DataFrame) -> Problem:
    contract = infer_contract(
        frame, target="label", task=None, roles=ColumnRoles(), options=ContractSection()
    )
    return Problem.of(contract, ModelsSection())


def test_a_sample_keeps_every_row_of_a_rare_class() -> None:
    frame = _frame()
    sample = _sample(frame, 1_000, _problem(frame), seed=1)
    assert sample["label"].to_list().count("rare") == 2
    assert abs(sample.height - 1_000) <= 2
    share = sample["label"].to_list().count("common") / sample.height
    assert share == pytest.approx(0.7, abs=0.03)  # the others keep their share


def _exploration(budget: float, fit_seconds: float, rows: int) -> Exploration:
    row = LeaderboardRow(name="lightgbm", family="lightgbm", mean=0.9, std=0.0,
                         fit_seconds=fit_seconds, key="k")  # fmt: skip
    search = SearchInfo(mode="budget", budget_seconds=budget, seconds=budget * 0.8, rows=rows)
    board = Leaderboard(rows=[row], greater_is_better=True, n_folds=5, search=search)
    oof = OutOfFold(y=np.zeros(1), covered=np.ones(1, dtype=bool), classes=None)
    return Exploration(board, oof)


@pytest.mark.parametrize(
    ("fit_seconds", "expect_all"), [(0.01, True), (5.0, False)], ids=["cheap", "too-slow"]
)
def test_the_final_fit_keeps_to_the_budget_left(fit_seconds: float, expect_all: bool) -> None:
    frame = _frame()
    exploration = _exploration(budget=30.0, fit_seconds=fit_seconds, rows=2_000)
    row = exploration.leaderboard.rows[0]
    choice = Choice(name="lightgbm", members=[Member(name="lightgbm", family="lightgbm",
                    params={}, weight=1.0, key="k")], score=0.9, source="leaderboard",
                    reason="")  # fmt: skip
    with open_executor("serial") as ex:
        rows = _refit_rows(frame, exploration, Tuning([]), choice, {"k": row}, ex,
                           _problem(frame), 0)  # fmt: skip
    if expect_all:
        assert rows.height == frame.height
    else:
        assert 2_000 <= rows.height < frame.height  # never below the search sample
        assert rows["label"].to_list().count("rare") == 2


def test_the_search_plan_names_its_mode() -> None:
    budget = search_plan(ModelsSection(budget="2m"), None, 1_000, 10)
    assert (budget.mode, budget.budget, budget.deterministic) == ("budget", 120.0, False)
    auto = search_plan(ModelsSection(), None, 1_000, 10)
    assert auto.auto and auto.budget == 30.0
    trials = search_plan(ModelsSection(), 5, 1_000, 10)
    assert trials.deterministic and trials.budget is None and "reproducible" in trials.describe()
    capped = search_plan(ModelsSection(budget=60), 5, 1_000, 10)
    assert capped.budget == 60.0 and "capped" in capped.describe()


def test_a_missing_extra_is_skipped_by_default_and_an_error_when_asked_for(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from modelyard.errors import MissingExtraError
    from modelyard.modeling import zoo
    from modelyard.modeling.stages import _available

    monkeypatch.setattr(type(zoo.family("catboost")), "module", "no_such_module_here")
    ready, missing = _available(ModelsSection())
    assert "catboost" not in ready and missing == ["catboost"]
    with pytest.raises(MissingExtraError, match=r"modelyard\[catboost\]"):
        _available(ModelsSection(candidates=["lightgbm", "catboost"]))
