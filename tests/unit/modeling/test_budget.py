"""The search budget's arithmetic (:mod:`modelyard.modeling.search.budget`)."""

from __future__ import annotations

import doctest

from modelyard.modeling.search import budget


def test_the_examples_in_the_docstrings_hold() -> None:
    failures, tried = doctest.testmod(budget, report=False)
    assert tried >= 3
    assert failures == 0


def test_an_out_of_core_refit_grows_with_the_rows_and_shrinks_with_the_threads() -> None:
    one = budget.out_of_core_seconds(2.0, fold_rows=10_000, total_rows=1_000_000, threads=1)
    assert one == 2.0 * 100 * budget.OUT_OF_CORE_SLOWDOWN
    more_rows = budget.out_of_core_seconds(2.0, fold_rows=10_000, total_rows=3_000_000, threads=1)
    assert more_rows == 3 * one
    threads = budget.out_of_core_seconds(2.0, fold_rows=10_000, total_rows=1_000_000, threads=4)
    assert threads == one / 4
    # never below the fold's own time, whatever the table
    assert budget.out_of_core_seconds(2.0, fold_rows=10_000, total_rows=10, threads=1) == (
        2.0 * budget.OUT_OF_CORE_SLOWDOWN
    )
