"""The search budget: wall-clock seconds for exploration, tuning and the final fit together.

``auto`` sizes it from the table (training rows x feature columns): about a minute for a
table of a few thousand rows, growing slowly with size (:func:`auto_budget`). The budget is
shared out as the search goes: exploration may use :data:`EXPLORE_SHARE` of it; tuning gets
what exploration left, minus what the final fit is expected to take (:func:`refit_reserve`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

EXPLORE_SHARE = 0.6
"""The part of the budget the portfolio may use (it usually needs less)."""
MIN_BUDGET = 30.0
MAX_AUTO_BUDGET = 1800.0
MIN_TUNING_SECONDS = 3.0
"""Below this, tuning is skipped (the final fit needs the rest)."""
MIN_FINAL_SHARE = 0.1
"""The final fit may always use this share of the budget, even when the search spent more."""
STEP_OVERHEAD = 2.0
"""Seconds the engine spends between two search steps (loading inputs, saving outputs)."""
LIKELY_MEMBERS = 5
"""How many of the best configurations the final fit's reserve plans for."""


def auto_budget(rows: int, columns: int) -> float:
    """Seconds for a table of ``rows`` x ``columns``: 30 s up to 40k cells, then growing with
    the cube root of the cells (2.5 M cells: 2 min; 20 M cells: 4 min), at most 30 min.

    >>> auto_budget(1_000, 10), auto_budget(26_000, 14), auto_budget(400_000, 41)
    (30.0, 65.0, 225.0)
    """
    cells = max(1, rows) * max(1, columns)
    seconds = MIN_BUDGET * max(1.0, (cells / 40_000) ** (1 / 3))
    return float(min(MAX_AUTO_BUDGET, 5 * math.ceil(seconds / 5)))


def refit_reserve(
    fold_seconds: Sequence[float],
    *,
    fold_rows: int,
    total_rows: int,
    workers: int,
    prepare_seconds: float = 0.0,
    n_folds: int = 1,
) -> float:
    """Expected wall-clock seconds of the final fit: preprocessing every training row (what
    preparing the folds took, per fold, scaled by the rows), then refitting the likely ensemble
    members (their fold fit times scaled by the rows) side by side on ``workers``, plus the
    engine's step overhead."""
    scale = max(1.0, total_rows / max(1, fold_rows))
    prepare = prepare_seconds / max(1, n_folds) * scale
    per_member = sorted((s * scale for s in fold_seconds), reverse=True)
    lanes = [0.0] * max(1, workers)
    for seconds in per_member:  # longest first onto the least loaded worker
        lanes[lanes.index(min(lanes))] += seconds
    return prepare + max(lanes) * 1.1 + STEP_OVERHEAD


def out_of_core_seconds(
    fold_seconds: float, *, fold_rows: int, total_rows: int, threads: int
) -> float:
    """Expected wall-clock seconds of refitting one member out of core on every training row
    (outside the budget: a big table's final fit sees every row, whatever the search cost):
    its fold fit time scaled by the rows, times :data:`OUT_OF_CORE_SLOWDOWN`, on ``threads``
    threads (each fold fit ran on one).

    >>> round(out_of_core_seconds(1.0, fold_rows=16_000, total_rows=8_000_000, threads=2))
    375
    >>> out_of_core_seconds(1.0, fold_rows=16_000, total_rows=1_000, threads=1)
    1.5
    """
    scale = max(1.0, total_rows / max(1, fold_rows))
    return fold_seconds * scale * OUT_OF_CORE_SLOWDOWN / max(1, threads)


OUT_OF_CORE_SLOWDOWN = 1.5
"""How much slower a row is in an out-of-core refit than in a fold fit of the sample: the
parts are read and preprocessed, and the binned data no longer fits the CPU's caches.
Measured by bench/scale.py at 10M rows on an idle 2-core machine: the two LightGBM refits of
7,991,230 rows took 335.9 and 330.4 s, 1.42x and 1.46x their fold fit times scaled by the rows
and divided by the cores (bench/README.md)."""


SAMPLE_ROWS_PER_SECOND = 1000
"""``models.search_rows: auto``: rows of the in-memory search sample per budget second."""
MAX_SAMPLE_ROWS = 250_000
MAX_SAMPLE_CELLS = 5_000_000
"""The in-memory sample of a table of several parts stays below this many rows x columns."""


def search_rows(budget: float, columns: int, cv_sample: int | None) -> int:
    """The size of the in-memory sample of a big table's training rows (``search_rows: auto``):
    :data:`SAMPLE_ROWS_PER_SECOND` per budget second, at least ``cv_sample``, at most
    :data:`MAX_SAMPLE_ROWS` rows and :data:`MAX_SAMPLE_CELLS` cells.

    >>> search_rows(60, 20, 20_000), search_rows(480, 20, 20_000), search_rows(30, 10, None)
    (60000, 250000, 30000)
    """
    rows = max(int(budget * SAMPLE_ROWS_PER_SECOND), cv_sample or 0)
    return max(2, min(rows, MAX_SAMPLE_ROWS, MAX_SAMPLE_CELLS // max(1, columns)))
