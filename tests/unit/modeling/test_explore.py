"""Exploration: every candidate cross-validated on the same folds into a sorted leaderboard."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.model_selection import KFold, StratifiedKFold

from modelyard.modeling.explore import Leaderboard, explore
from tests.unit.modeling.test_zoo import diamonds, fast, one_thread, penguins, preprocessor

__all__ = ["one_thread"]  # the autouse fixture, re-used


def accuracy(
    y: np.ndarray, pred: np.ndarray, proba: np.ndarray | None, classes: np.ndarray | None
) -> float:
    assert proba is not None and classes is not None
    assert list(classes) == ["Adelie", "Chinstrap", "Gentoo"]
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-6)
    return float(np.mean(pred == y))


def mae(
    y: np.ndarray, pred: np.ndarray, proba: np.ndarray | None, classes: np.ndarray | None
) -> float:
    assert proba is None and classes is None
    return float(np.mean(np.abs(y - pred)))


def _penguins_board(
    candidates: list[str], params: dict[str, dict[str, object]] | None = None
) -> Leaderboard:
    X, y = penguins()
    calls: list[tuple[int, int, str]] = []
    board = explore(
        X,
        y,
        task="multiclass",
        candidates=candidates,
        preprocessor=preprocessor(X),
        cv=StratifiedKFold(3, shuffle=True, random_state=0),
        scorer=accuracy,
        greater_is_better=True,
        seed=0,
        params={name: fast(name) for name in candidates} | (params or {}),
        progress=lambda done, total, what: calls.append((done, total, what)),
    )
    assert calls[0] == (0, len(candidates), candidates[0])
    assert calls[-1] == (len(candidates), len(candidates), "done")
    return board


def test_dummy_baseline_ranks_last_on_penguins() -> None:
    board = _penguins_board(["dummy", "linear", "hist_gradient_boosting", "xgboost"])
    assert [r.name for r in board.rows][-1] == "dummy"
    assert board.best is not None and board.best.mean is not None and board.best.mean > 0.95
    assert board.n_folds == 3
    for row in board.rows:
        assert row.error is None
        assert len(row.scores) == 3
        assert row.mean == pytest.approx(np.mean(row.scores))
        assert row.std == pytest.approx(np.std(row.scores))
        assert row.fit_seconds is not None and row.fit_seconds > 0
    means = [r.mean for r in board.rows]
    assert means == sorted(means, reverse=True)
    assert board.rows[-1].mean == pytest.approx(np.mean(penguins()[1] == "Adelie"), abs=0.01)
    assert {r.name: r.params for r in board.rows}["xgboost"]["n_estimators"] == 60
    assert [r.name for r in board.top(2)] == [r.name for r in board.rows if r.name != "dummy"][:2]


def test_a_failing_candidate_is_recorded_not_fatal() -> None:
    board = _penguins_board(
        ["linear", "random_forest", "lightgbm"],
        params={
            "random_forest": {"n_estimators": -5, "n_jobs": 1},
            "lightgbm": {"n_estimatorz": 3},
        },
    )
    by_name = {r.name: r for r in board.rows}
    assert board.rows[0].name == "linear"  # the only success, first
    forest = by_name["random_forest"]
    assert forest.error is not None and "n_estimators" in forest.error
    assert forest.mean is None and forest.scores == []
    assert forest.params["n_estimators"] == -5
    assert (
        by_name["lightgbm"].error is not None
        and "did you mean 'n_estimators'" in by_name["lightgbm"].error
    )
    assert by_name["linear"].error is None
    assert board.best is not None and board.best.name == "linear"


def test_lower_is_better_metric_sorts_ascending() -> None:
    X, y = diamonds()
    candidates = ["dummy", "linear", "hist_gradient_boosting", "random_forest"]
    board = explore(
        X,
        y,
        task="regression",
        candidates=candidates,
        preprocessor=preprocessor(X),
        cv=KFold(3, shuffle=True, random_state=0),
        scorer=mae,
        greater_is_better=False,
        seed=0,
        params={name: fast(name) for name in candidates},
    )
    means = [r.mean for r in board.rows]
    assert means == sorted(means)  # ascending: the smallest error first
    assert board.rows[-1].name == "dummy"
    assert board.rows[0].mean is not None and board.rows[0].mean < 0.3 * means[-1]


def test_same_seed_same_leaderboard_and_sample_weight_is_used() -> None:
    X, y = diamonds()
    kwargs = dict(
        task="regression",
        candidates=["linear", "hist_gradient_boosting"],
        preprocessor=preprocessor(X),
        cv=KFold(3, shuffle=True, random_state=1),
        scorer=mae,
        greater_is_better=False,
        seed=5,
    )
    a = explore(X, y, **kwargs)  # type: ignore[arg-type]
    b = explore(X, y, **kwargs)  # type: ignore[arg-type]
    assert [r.scores for r in a.rows] == [r.scores for r in b.rows]
    heavy = np.where(X["carat"].to_numpy() > 1.0, 100.0, 1.0)
    weighted = explore(X, y, sample_weight=heavy, **kwargs)  # type: ignore[arg-type]
    assert {r.name: r.scores for r in weighted.rows} != {r.name: r.scores for r in a.rows}
