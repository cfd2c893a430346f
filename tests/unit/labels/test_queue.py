"""The queue's ranking: uncertainty measures and the uncertainty-weighted k-center."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from modelyard.labels.queue import select, spread, uncertainty

finite = st.integers(-20, 20).map(lambda i: i / 4)  # distinct rows lie well apart


@st.composite
def problems(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, list[str], int]:
    """Rows (with duplicated rows on purpose), uncertainties, unique keys and a budget."""
    n = draw(st.integers(1, 30))
    d = draw(st.integers(1, 4))
    distinct = draw(arrays(np.float64, (draw(st.integers(1, n)), d), elements=finite))
    rows = distinct[draw(st.lists(st.integers(0, len(distinct) - 1), min_size=n, max_size=n))]
    scores = draw(arrays(np.float64, n, elements=st.floats(0, 1, allow_nan=False, width=32)))
    keys = [f"k{i:03d}" for i in range(n)]
    return rows, scores, keys, draw(st.integers(0, n + 3))


@settings(max_examples=150, deadline=None)
@given(problems(), st.randoms(use_true_random=False))
def test_the_order_does_not_depend_on_the_order_of_the_input(problem, rnd) -> None:
    X, u, keys, budget = problem
    perm = list(range(len(keys)))
    rnd.shuffle(perm)
    first = [keys[p.index] for p in select(X, u, budget, keys=keys)]
    Xp, up, kp = X[perm], u[perm], [keys[i] for i in perm]
    assert [kp[p.index] for p in select(Xp, up, budget, keys=kp)] == first


@settings(max_examples=150, deadline=None)
@given(problems())
def test_a_batch_respects_the_budget_and_holds_no_duplicate_rows(problem) -> None:
    X, u, keys, budget = problem
    picks = select(X, u, budget, keys=keys)
    distinct = len(np.unique(X + 0.0, axis=0))  # + 0.0: -0.0 is the point 0.0
    assert len(picks) == min(budget, distinct)  # as many as allowed, no more than distinct rows
    chosen = [(X[p.index] + 0.0).tobytes() for p in picks]
    assert len(set(chosen)) == len(chosen)  # no two picks are the same row
    assert len({p.index for p in picks}) == len(picks)


@settings(max_examples=100, deadline=None)
@given(problems())
def test_priorities_never_rise_along_the_queue(problem) -> None:
    X, u, keys, budget = problem
    priorities = [p.priority for p in select(X, u, budget, keys=keys)]
    assert all(a >= b for a, b in itertools.pairwise(priorities))


@settings(max_examples=100, deadline=None)
@given(problems())
def test_the_first_pick_is_a_most_uncertain_row(problem) -> None:
    X, u, keys, budget = problem
    picks = select(X, u, max(budget, 1), keys=keys)
    assert u[picks[0].index] == u.max()


@settings(max_examples=60, deadline=None)
@given(problems())
def test_rows_already_labelled_are_never_asked_again(problem) -> None:
    X, u, keys, budget = problem
    labelled = X[: max(1, len(X) // 3)]
    for pick in select(X, u, budget, keys=keys, labelled=labelled):
        assert not any((X[pick.index] == row).all() for row in labelled)


def test_diversity_beats_a_cluster_of_equally_unsure_near_duplicates() -> None:
    """Ten near-copies of one unsure row and one slightly less unsure row far away: a batch
    of two takes one of the copies and the far row, not two copies."""
    X = np.vstack([np.full((10, 2), 0.0) + np.arange(10)[:, None] * 1e-4, [[5.0, 5.0]]])
    u = np.array([0.9] * 10 + [0.8])
    picks = select(X, u, 2)
    assert picks[1].index == 10


def test_the_pool_limits_the_candidates_to_the_most_uncertain() -> None:
    X = np.arange(20, dtype=float)[:, None]
    u = np.linspace(0, 1, 20)
    picks = select(X, u, 3, pool=5)
    assert {p.index for p in picks} <= set(range(15, 20))


def test_bad_shapes_and_budgets_are_refused() -> None:
    with pytest.raises(ValueError, match="do not match"):
        select(np.zeros((3, 2)), np.zeros(4), 1)
    with pytest.raises(ValueError, match="budget"):
        select(np.zeros((3, 2)), np.zeros(3), -1)
    assert select(np.zeros((0, 2)), np.zeros(0), 5) == []


def test_nan_features_and_scores_do_not_break_the_ranking() -> None:
    X = np.array([[np.nan, 1.0], [2.0, np.inf], [3.0, 3.0]])
    u = np.array([np.nan, 0.5, 0.7])
    assert len(select(X, u, 3)) == 3


@settings(max_examples=100, deadline=None)
@given(arrays(np.float64, st.tuples(st.integers(1, 20), st.integers(2, 6)),
              elements=st.floats(0, 1, allow_nan=False)))  # fmt: skip
def test_uncertainty_is_between_zero_and_one(proba) -> None:
    for measure in ("entropy", "margin"):
        u = uncertainty(proba, measure)
        assert u.shape == (proba.shape[0],)
        assert ((u >= 0) & (u <= 1)).all()


def test_uncertainty_is_highest_for_uniform_and_lowest_for_sure_answers() -> None:
    proba = np.array([[1 / 3] * 3, [0.8, 0.1, 0.1], [1.0, 0.0, 0.0]])
    for measure in ("entropy", "margin"):
        u = uncertainty(proba, measure)
        assert u[0] == pytest.approx(1.0) and u[2] == pytest.approx(0.0) and u[0] > u[1] > u[2]
    with pytest.raises(ValueError, match="unknown"):
        uncertainty(proba, "gini")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="classes"):
        uncertainty(np.ones(3))


def test_spread_is_the_disagreement_of_members() -> None:
    assert spread(np.array([[1.0, 5.0], [1.0, 1.0], [1.0, 3.0]])).round(3).tolist() == [0.0, 1.633]
    with pytest.raises(ValueError, match="members"):
        spread(np.ones((1, 3)))
