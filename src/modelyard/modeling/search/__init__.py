"""The model search: portfolio exploration, tuning and ensemble selection on an executor.

::

    data.py       the folds of the search sample, preprocessed once, sent to workers once
    fit.py        the unit of work: one configuration on one fold (runs on workers)
    scheduler.py  configurations fold by fold on the executor: halving, deadline, fit cache
    explore.py    the portfolio of every family -> the leaderboard
    tune.py       Optuna ask-and-tell per family, trials in parallel, reproducible by count
    ensemble.py   greedy ensemble selection on out-of-fold predictions; the final estimator
    budget.py     the wall-clock budget: auto size, shares, the final fit's reserve
    progress.py   elapsed, budget left, best so far, one line per finished configuration
    results.py    the leaderboard, search facts and out-of-fold predictions
"""
