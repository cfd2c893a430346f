"""Which rows to label next: uncertainty together with diversity, as pure functions.

Numbers in, an order out; no model, no file. The command layer
(:mod:`modelyard.labelling`) scores rows with the champion and hands the results here.

- :func:`uncertainty` of a classifier's probabilities: normalised entropy (0 = sure,
  1 = uniform) or margin (1 - (p1 - p2)).
- :func:`spread` of a regressor: the standard deviation of its ensemble members' (or a
  forest's trees') predictions for the same row.
- :func:`select`: greedy k-center over the model's feature space, weighted by uncertainty.
  Each pick maximises ``uncertainty x distance to the nearest row already chosen (or already
  labelled)``; with no labelled rows given, the first pick is the most uncertain row. A row at distance 0 (a duplicate,
  or within ``min_distance``) of a chosen row is never chosen, so a batch holds no
  near-duplicates: the batch is shorter than the budget when there are fewer distinct rows.
  A row's priority only falls as picks are made, so the priorities of the picks never rise:
  the order is the order of value.

Ties are broken by the rows' keys, so the result does not depend on the order of the input.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

Measure = Literal["entropy", "margin"]

_FLOOR = 1e-3
"""Added to every uncertainty in the priority: among rows the model is sure of, distance
still orders the picks (a pure k-center), rather than the input order."""


_FAR = 1e150
"""The distance of a row to no centre at all: larger than any real one, still finite."""


def uncertainty(proba: np.ndarray, measure: Measure = "entropy") -> np.ndarray:
    """How unsure a classifier is of each row, in [0, 1].

    ``proba`` is ``(rows, classes)``. ``entropy``: the Shannon entropy over ``log(classes)``;
    ``margin``: one minus the gap between the two most probable classes.

    >>> uncertainty(np.array([[0.5, 0.5], [1.0, 0.0]])).round(3).tolist()
    [1.0, 0.0]
    >>> uncertainty(np.array([[0.6, 0.3, 0.1]]), "margin").round(3).tolist()
    [0.7]
    """
    p = np.asarray(proba, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] < 2:
        raise ValueError(f"probabilities must be (rows, classes >= 2), found shape {p.shape}")
    p = np.clip(np.nan_to_num(p, nan=0.0), 0.0, 1.0)
    total = p.sum(axis=1, keepdims=True)
    p = np.divide(p, total, out=np.full_like(p, 1.0 / p.shape[1]), where=total > 0)
    if measure == "entropy":
        with np.errstate(divide="ignore", invalid="ignore"):
            terms = np.where(p > 0, -p * np.log(p), 0.0)
        return np.asarray(np.clip(terms.sum(axis=1) / np.log(p.shape[1]), 0.0, 1.0))
    if measure == "margin":
        top = np.sort(p, axis=1)[:, ::-1]
        return np.asarray(np.clip(1.0 - (top[:, 0] - top[:, 1]), 0.0, 1.0))
    raise ValueError(f"unknown uncertainty measure {measure!r}: expected entropy or margin")


def spread(member_predictions: np.ndarray) -> np.ndarray:
    """The standard deviation, per row, of several models' predictions ``(members, rows)``.

    >>> spread(np.array([[1.0, 2.0], [3.0, 2.0]])).tolist()
    [1.0, 0.0]
    """
    m = np.asarray(member_predictions, dtype=np.float64)
    if m.ndim != 2 or m.shape[0] < 2:
        raise ValueError(f"member predictions must be (members >= 2, rows), found {m.shape}")
    return np.asarray(np.nan_to_num(m.std(axis=0), nan=0.0))


@dataclass(frozen=True)
class Pick:
    """One chosen row: its position in the input, and why."""

    index: int
    priority: float
    """uncertainty (plus a small floor) x distance: what ordered the pick."""
    uncertainty: float
    distance: float
    """to the nearest row chosen before it or already labelled (``inf`` for the first)."""


def select(
    features: np.ndarray,
    scores: np.ndarray,
    budget: int,
    *,
    keys: Sequence[str] | None = None,
    labelled: np.ndarray | None = None,
    pool: int | None = None,
    min_distance: float = 1e-9,
) -> list[Pick]:
    """Choose up to ``budget`` rows, most valuable first (see the module docstring).

    ``features``: ``(rows, dims)``, the model's view of each row (after preprocessing);
    ``scores``: each row's uncertainty (>= 0; scaled by its maximum); ``keys``: the rows'
    keys, to break ties (default: the features' bytes, still independent of the input
    order); ``labelled``: rows already labelled, which count as already chosen;
    ``pool``: consider only the ``pool`` most uncertain rows (default: all).
    """
    X = np.asarray(features, dtype=np.float64)
    u = np.asarray(scores, dtype=np.float64)
    if X.ndim != 2 or u.ndim != 1 or X.shape[0] != u.shape[0]:
        raise ValueError(f"features {X.shape} and scores {u.shape} do not match")
    if budget < 0:
        raise ValueError(f"the budget must be >= 0, found {budget}")
    n = X.shape[0]
    if n == 0 or budget == 0:
        return []
    X = np.nan_to_num(X, nan=0.0, posinf=0.0, neginf=0.0)
    u = np.clip(np.nan_to_num(u, nan=0.0, posinf=0.0, neginf=0.0), 0.0, None)
    top = u.max()
    u = u / top if top > 0 else u
    tie = _tie_ranks(X, keys)
    order = np.lexsort((tie, -u))  # most uncertain first, then by key
    if pool is not None and pool < n:
        order = order[: max(pool, budget)]
    Xc, uc, tc = X[order], u[order], tie[order]
    nearest = np.full(len(order), np.inf)
    if labelled is not None and len(labelled):
        L = np.nan_to_num(np.asarray(labelled, dtype=np.float64), nan=0.0)
        step = max(1, 4_000_000 // max(1, len(Xc)))  # a bounded block of distances at a time
        for start in range(0, len(L), step):
            nearest = np.minimum(nearest, _min_dist(Xc, L[start : start + step]))
    weight = uc + _FLOOR
    chosen = np.zeros(len(order), dtype=bool)
    picks: list[Pick] = []
    while len(picks) < budget:
        far = np.where(np.isinf(nearest), _FAR, nearest)  # no centre yet: uncertainty decides
        priority = np.where(chosen | (nearest <= min_distance), -1.0, weight * far)
        best = priority.max()
        if best < 0:
            break  # every row left duplicates a chosen or labelled one
        candidates = np.flatnonzero(priority == best)
        i = int(candidates[np.argmin(tc[candidates])])
        picks.append(Pick(int(order[i]), float(best), float(uc[i] * top), float(nearest[i])))
        chosen[i] = True
        nearest = np.minimum(nearest, _min_dist(Xc, Xc[i : i + 1]))
    return picks


def _min_dist(X: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """Euclidean distance of every row of ``X`` to its nearest row of ``centres`` (exact: a
    duplicate is at 0, not at a rounding error from it)."""
    from scipy.spatial.distance import cdist

    return np.asarray(cdist(X, centres).min(axis=1), dtype=np.float64)


def _tie_ranks(X: np.ndarray, keys: Sequence[str] | None) -> np.ndarray:
    """A rank per row from its key (or its features' bytes): an order independent of the input's."""
    if keys is not None:
        if len(keys) != X.shape[0]:
            raise ValueError(f"{len(keys)} keys for {X.shape[0]} rows")
        values = [str(k) for k in keys]
    else:
        values = [row.tobytes().hex() for row in X]
    ranks = np.empty(len(values), dtype=np.int64)
    ranks[sorted(range(len(values)), key=values.__getitem__)] = np.arange(len(values))
    return ranks
