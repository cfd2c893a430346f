"""Mergeable statistics: merging parts gives the statistics of the whole (exactly for exact
ones, within the stated bound for sketches), in whatever order the parts come."""

from __future__ import annotations

import itertools
import math

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from modelyard.data.sketches import (
    CoMoments,
    DistinctSketch,
    Moments,
    QuantileSketch,
    RowSet,
    TopCounts,
    hll_error,
    row_hashes,
    sorted_floats,
    sorted_value_hashes,
    value_hashes,
)

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def split(values: np.ndarray, cuts: list[int]) -> list[np.ndarray]:
    """``values`` cut at the (sorted, clipped) positions ``cuts``: the parts of a table."""
    points = sorted({min(max(c, 0), values.size) for c in cuts})
    return [p for p in np.split(values, points)]


def merged(items: list, how):  # type: ignore[no-untyped-def]
    out = items[0]
    for item in items[1:]:
        out = how(out, item)
    return out


_values = st.lists(
    st.floats(min_value=-1e6, max_value=1e6, allow_nan=False), min_size=0, max_size=400
)
_cuts = st.lists(st.integers(min_value=0, max_value=400), max_size=6)


# --------------------------------------------------------------------------- moments


@SETTINGS
@given(values=_values, cuts=_cuts, order=st.randoms())
def test_moments_of_parts_merge_into_the_whole(values: list[float], cuts: list[int], order) -> None:  # type: ignore[no-untyped-def]
    x = np.array(values, dtype=np.float64)
    whole = Moments.from_values(x)
    parts = [Moments.from_values(p) for p in split(x, cuts)]
    for arrangement in (parts, order.sample(parts, len(parts))):  # order-independent
        m = merged(arrangement, Moments.merge)
        assert m.n == whole.n == x.size
        if x.size == 0:
            continue
        scale = float(np.abs(x).max()) or 1.0
        assert m.mean == pytest.approx(float(x.mean()), rel=1e-9, abs=1e-9 * scale)
        assert m.m2 == pytest.approx(whole.m2, rel=1e-7, abs=1e-6 * scale**2)
        if x.size >= 2:
            want = float(np.std(x, ddof=1))
            assert m.std() == pytest.approx(want, rel=1e-6, abs=1e-6 * scale)


def test_moments_match_pandas() -> None:
    import pandas as pd

    rng = np.random.default_rng(7)
    x = rng.lognormal(size=5_000)
    parts = [Moments.from_values(p) for p in np.array_split(x, 7)]
    m = merged(parts, Moments.merge)
    s = pd.Series(x)
    assert m.skew() == pytest.approx(float(s.skew()), rel=1e-9)
    assert m.kurtosis() == pytest.approx(float(s.kurt()), rel=1e-9)
    assert m.std() == pytest.approx(float(s.std()), rel=1e-12)


# --------------------------------------------------------------------------- quantiles

QS = [0.0, 0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99, 1.0]


@SETTINGS
@given(values=_values.filter(bool), cuts=_cuts, order=st.randoms())
def test_quantiles_are_exact_while_the_sketch_holds_every_value(
    values: list[float],
    cuts: list[int],
    order,  # type: ignore[no-untyped-def]
) -> None:
    x = np.array(values, dtype=np.float64)
    parts = [QuantileSketch.from_values(p) for p in split(x, cuts)]
    want = np.quantile(x, QS, method="linear").tolist()
    for arrangement in (parts, order.sample(parts, len(parts))):
        sketch = merged(arrangement, QuantileSketch.merge)
        assert sketch.is_exact and sketch.rank_error() == 0.0
        assert sketch.quantiles(QS) == want  # bit for bit


@SETTINGS
@given(
    values=st.lists(st.integers(-50, 50), min_size=1, max_size=3_000),
    cuts=st.lists(st.integers(0, 3_000), max_size=8),
    probes=st.lists(st.integers(-55, 55), min_size=1, max_size=10),
    seed=st.integers(0, 100),
)
def test_compacted_ranks_stay_within_the_worst_case_bound(
    values: list[int], cuts: list[int], probes: list[int], seed: int
) -> None:
    """Each compaction at level h moves any rank by 0 or 2**h: the worst case is their sum."""
    x = np.array(values, dtype=np.float64)
    parts = [QuantileSketch.from_values(p, k=16, exact=32, seed=seed) for p in split(x, cuts)]
    sketch = merged(parts, QuantileSketch.merge)
    assert sketch.n == x.size
    assert sketch.size <= 32 + 16 * len(sketch.levels)  # bounded memory
    bound = sketch.max_rank_error()
    for p in probes:
        true = float((x <= p).mean())
        assert abs(sketch.rank(p) - true) <= bound + 1e-12


@SETTINGS
@given(
    values=st.lists(
        st.one_of(st.floats(-100, 100, allow_nan=False), st.sampled_from([-math.inf, math.inf])),
        max_size=400,
    ),
    cuts=_cuts,
    fences=st.tuples(st.floats(-120, 120), st.floats(-120, 120)).map(sorted),
)
def test_values_outside_two_fences_are_counted_exactly_while_the_sketch_is_exact(
    values: list[float], cuts: list[int], fences: list[float]
) -> None:
    x = np.array(values, dtype=np.float64)
    sketch = merged(
        [QuantileSketch.from_values(p) for p in split(x, cuts)] or [QuantileSketch()],
        QuantileSketch.merge,
    )
    lo, hi = fences
    assert sketch.outside(lo, hi) == int(((x < lo) | (x > hi)).sum())  # ±inf are outside


@SETTINGS
@given(
    values=st.lists(st.integers(-50, 50), min_size=1, max_size=3_000),
    cuts=st.lists(st.integers(0, 3_000), max_size=8),
    fences=st.tuples(st.integers(-55, 55), st.integers(-55, 55)).map(sorted),
    seed=st.integers(0, 100),
)
def test_values_outside_two_fences_stay_within_the_bound_once_compacted(
    values: list[int], cuts: list[int], fences: list[int], seed: int
) -> None:
    x = np.array(values, dtype=np.float64)
    parts = [QuantileSketch.from_values(p, k=16, exact=32, seed=seed) for p in split(x, cuts)]
    sketch = merged(parts, QuantileSketch.merge)
    lo, hi = fences
    true = int(((x < lo) | (x > hi)).sum())
    assert abs(sketch.outside(lo, hi) - true) <= 2 * sketch.max_rank_error() * x.size + 1e-9


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_quantiles_of_a_million_values_within_the_stated_rank_error(seed: int) -> None:
    rng = np.random.default_rng(seed)
    x = rng.standard_cauchy(1_000_000)  # heavy tails: value errors would be huge, ranks not
    parts = [QuantileSketch.from_values(p, seed=seed) for p in np.array_split(x, 13)]
    sketch = merged(parts, QuantileSketch.merge)
    assert not sketch.is_exact
    eps = sketch.rank_error()
    assert 0 < eps < 0.002  # the stated bound: ±0.2% rank error at most (99% confidence)
    ordered = np.sort(x)
    for q, got in zip(QS[1:-1], sketch.quantiles(QS[1:-1]), strict=True):
        assert got is not None
        rank = np.searchsorted(ordered, got, side="right") / x.size
        assert abs(rank - q) <= eps + 1 / x.size, (q, rank, eps)
    assert sketch.size < 100_000 + 4096 * len(sketch.levels)


# --------------------------------------------------------------------------- distinct counts


@SETTINGS
@given(
    values=st.lists(
        st.one_of(
            st.floats(allow_nan=False),  # +-inf, +-0.0, subnormals, huge
            st.sampled_from([0.0, -0.0, 1.5, -1.5, 1e300]),  # repeats
        ),
        max_size=300,
    )
)
@example(values=[0.0, -0.0, -0.0, 0.0])
def test_a_sorted_float_column_hashes_its_distinct_values_as_the_column_does(
    values: list[float],
) -> None:
    """The profile hashes a float column's distinct values from its sorted values (sorted
    for the quantile sketch anyway): the hashes must be those of ``value_hashes``."""
    s = pl.Series(values, dtype=pl.Float64)
    got = np.sort(sorted_value_hashes(sorted_floats(s.to_numpy())))
    assert np.array_equal(got, np.sort(value_hashes(s)))


@SETTINGS
@given(
    values=st.lists(st.one_of(st.none(), st.integers(-30, 30)), max_size=300),
    cuts=_cuts,
    order=st.randoms(),
)
def test_distinct_counts_are_exact_below_the_threshold(
    values: list[int | None],
    cuts: list[int],
    order,  # type: ignore[no-untyped-def]
) -> None:
    s = pl.Series(values, dtype=pl.Int64)
    pieces = [s.slice(a, b - a) for a, b in _bounds(s.len(), cuts)]
    parts = [DistinctSketch.from_hashes(value_hashes(p)) for p in pieces]
    for arrangement in (parts, order.sample(parts, len(parts))):
        sketch = merged(arrangement, DistinctSketch.merge)
        assert sketch.is_exact and sketch.error() == 0.0
        assert sketch.count() == s.drop_nulls().n_unique()


@SETTINGS
@given(
    a=st.sets(st.integers(0, 2**64 - 1), max_size=300),
    b=st.sets(st.integers(0, 2**64 - 1), max_size=300),
    shared=st.sets(st.integers(0, 2**64 - 1), max_size=50),
)
def test_the_exact_distinct_sets_merge_into_their_union(
    a: set[int], b: set[int], shared: set[int]
) -> None:
    # the merge of two exact sketches is a linear merge of their sorted hashes: the union
    left, right = (np.array(sorted(x | shared), dtype=np.uint64) for x in (a, b))
    merged = DistinctSketch(hashes=left, exact=10_000).merge(DistinctSketch(hashes=right))
    assert merged.hashes is not None
    assert merged.hashes.dtype == np.uint64
    assert merged.hashes.tolist() == sorted(a | b | shared)


def _bounds(n: int, cuts: list[int]) -> list[tuple[int, int]]:
    points = [0, *sorted({min(max(c, 0), n) for c in cuts}), n]
    return list(itertools.pairwise(points))


def test_hyperloglog_within_three_sigma_on_100k_distinct_and_merge_is_exact() -> None:
    n = 100_000
    s = pl.Series(np.arange(n).repeat(3))  # 300k values, 100k distinct
    whole = DistinctSketch.from_hashes(value_hashes(s), exact=0)
    pieces = [s.slice(i, 37_000) for i in range(0, s.len(), 37_000)]
    parts = [DistinctSketch.from_hashes(value_hashes(p), exact=0) for p in pieces]
    forward = merged(parts, DistinctSketch.merge)
    backward = merged(parts[::-1], DistinctSketch.merge)
    assert not forward.is_exact
    # max of registers: merging parts gives the registers of the whole, in any order
    assert np.array_equal(forward.registers, whole.registers)
    assert np.array_equal(backward.registers, whole.registers)
    assert forward.error() == pytest.approx(hll_error()) == pytest.approx(1.04 / 128)
    assert abs(forward.count() - n) / n <= 3 * forward.error()


# --------------------------------------------------------------------------- top values


@SETTINGS
@given(
    values=st.lists(st.sampled_from("abcdefghijklmnop"), max_size=400),
    cuts=_cuts,
    order=st.randoms(),
)
def test_top_counts_exact_then_misra_gries_within_its_error(
    values: list[str],
    cuts: list[int],
    order,  # type: ignore[no-untyped-def]
) -> None:
    s = pl.Series(values, dtype=pl.String)
    pieces = [s.slice(a, b - a) for a, b in _bounds(s.len(), cuts)]
    truth = {v: values.count(v) for v in set(values)}
    exact = [TopCounts.from_values(p) for p in pieces]
    for arrangement in (exact, order.sample(exact, len(exact))):
        got = merged(arrangement, TopCounts.merge)
        assert got.is_exact and got.error == 0
        assert dict(got.counts.iter_rows()) == truth
    small = [TopCounts.from_values(p, capacity=3, exact=4) for p in pieces]
    for arrangement in (small, order.sample(small, len(small))):
        got = merged(arrangement, TopCounts.merge)
        counts = dict(got.counts.iter_rows())
        assert len(counts) <= max(4, 3)
        for v, true in truth.items():
            est = counts.get(v, 0)
            assert true - got.error <= est <= true  # low by at most ``error``
        assert got.error <= len(values) / (3 + 1)  # Misra-Gries: n / (counters + 1)


# --------------------------------------------------------------------------- rows, co-moments


@SETTINGS
@given(
    rows=st.lists(st.tuples(st.integers(0, 3), st.sampled_from(["x", "y", None])), max_size=200),
    cuts=_cuts,
)
def test_duplicate_rows_merge_exactly(rows: list[tuple[int, str | None]], cuts: list[int]) -> None:
    df = pl.DataFrame(rows, schema={"a": pl.Int64, "b": pl.String}, orient="row")
    want = df.height - df.unique().height
    pieces = [df.slice(a, b - a) for a, b in _bounds(df.height, cuts)]
    sets = [RowSet.from_hashes(row_hashes(p)) for p in pieces]
    assert merged(sets, RowSet.merge).duplicates() == want
    assert merged(sets[::-1], RowSet.merge).duplicates() == want


def test_a_chain_of_merges_unites_the_row_hashes_only_when_counted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Merging part after part united the growing set with each new part: quadratic in the
    parts (4.4 s of the driver's time for 66 parts of 450,000 rows). Now the runs are united
    when the rows are counted, or when more than ``_MAX_RUNS`` of them are held."""
    from modelyard.data import sketches

    calls: list[int] = []
    united = sketches._united

    def counting(runs: tuple[tuple[np.ndarray, ...], ...]) -> tuple[np.ndarray, ...]:
        calls.append(len(runs))
        return united(runs)

    monkeypatch.setattr(sketches, "_united", counting)
    df = pl.DataFrame({"a": np.arange(4_000) % 1_500, "b": np.arange(4_000) % 7})
    parts = [RowSet.from_hashes(row_hashes(p)) for p in df.iter_slices(100)]
    assert len(parts) == 40 > sketches._MAX_RUNS
    got = merged(parts, RowSet.merge)
    assert calls == [sketches._MAX_RUNS + 1]  # once, when the 33rd run came
    assert got.runs is not None and len(got.runs) == 1 + 40 - (sketches._MAX_RUNS + 1)
    assert got.duplicates() == df.height - df.unique().height
    assert calls[1:] == [len(got.runs)]


def test_row_set_beyond_its_limit_estimates() -> None:
    df = pl.DataFrame({"a": np.arange(60_000) % 50_000})
    parts = [RowSet.from_hashes(row_hashes(p), exact=20_000) for p in df.iter_slices(15_000)]
    got = merged(parts, RowSet.merge)
    assert not got.is_exact
    assert abs(got.duplicates() - 10_000) <= 3 * hll_error() * 50_000


@SETTINGS
@given(
    data=st.lists(
        st.tuples(*[st.one_of(st.none(), st.floats(-1e3, 1e3)) for _ in range(3)]),
        min_size=0,
        max_size=120,
    ),
    cuts=_cuts,
)
@example(  # column 2 is constant on the rows where column 0 is present: r is undefined
    data=[
        (None, None, 0.0),
        (None, None, 0.0),
        (0.0, None, 1.035093589149028),
        (1.035093589149028, None, 1.035093589149028),
    ],
    cuts=[1],
)
def test_co_moments_of_parts_merge_into_the_whole(
    data: list[tuple[float | None, ...]], cuts: list[int]
) -> None:
    x = np.array([[np.nan if v is None else v for v in row] for row in data], dtype=np.float64)
    x = x.reshape(len(data), 3)
    whole = CoMoments.from_matrix(x)
    parts = [CoMoments.from_matrix(np.ascontiguousarray(p)) for p in split(x, cuts)]
    for arrangement in (parts, parts[::-1]):
        got = merged(arrangement, CoMoments.merge)
        assert np.array_equal(got.n, whole.n)
        a, b = got.correlation(), whole.correlation()
        assert np.array_equal(np.isnan(a), np.isnan(b)) or _degenerate(whole)
        ok = ~(np.isnan(a) | np.isnan(b))
        assert np.allclose(a[ok], b[ok], atol=1e-6)


def test_a_column_without_spread_on_a_pairs_rows_has_no_correlation_with_the_other() -> None:
    """Found by Hypothesis: the whole table said r = -1, merged parts said r = 0, for a column
    that is constant on the rows the pair shares (its mean over its other rows differs)."""
    x = np.array([[np.nan, 0.0], [np.nan, 0.0], [0.0, 1.035], [1.035, 1.035], [2.0, 1.035]])
    whole = CoMoments.from_matrix(x)
    parts = CoMoments.from_matrix(x[:2]).merge(CoMoments.from_matrix(x[2:]))
    for c in (whole, parts):
        assert np.isnan(c.correlation()[0, 1]) and np.isnan(c.correlation()[1, 0])
    y = x.copy()
    y[3, 1] = 1.036  # a real spread, however small: a real correlation
    shared = y[2:]
    want = float(np.corrcoef(shared[:, 0], shared[:, 1])[0, 1])
    assert CoMoments.from_matrix(y).correlation()[0, 1] == pytest.approx(want, rel=1e-6)


def test_the_co_moments_of_some_columns_are_those_of_the_whole_matrix() -> None:
    """Pairwise-complete: a pair's sums never depend on the other columns (the profile counts
    every numeric column in its first pass, then keeps the correlation matrix's columns)."""
    rng = np.random.default_rng(8)
    x = rng.normal(size=(500, 4))
    x[rng.random(x.shape) < 0.2] = np.nan
    x[:, 3] = 1.0  # no spread
    whole = CoMoments.from_matrix(x)
    for keep in ([0, 2], [2, 0, 1], [1, 3]):
        sub = CoMoments.from_matrix(np.ascontiguousarray(x[:, keep]))
        got = whole.subset(keep)
        assert np.array_equal(got.n, sub.n)
        a, b = got.correlation(), sub.correlation()
        assert np.array_equal(np.isnan(a), np.isnan(b))
        assert np.allclose(a[~np.isnan(a)], b[~np.isnan(b)], rtol=1e-12, atol=1e-12)


def _degenerate(c: CoMoments) -> bool:
    """A pair without spread: r is 0/0, and rounding may leave a tiny m2 in one of the two."""
    return bool((np.abs(c.m2) < 1e-6).any())


def test_co_moments_equal_pandas_pairwise_correlations() -> None:
    import pandas as pd

    rng = np.random.default_rng(3)
    x = rng.normal(size=(2_000, 4))
    x[:, 1] += x[:, 0]
    x[rng.random(x.shape) < 0.1] = np.nan
    parts = [CoMoments.from_matrix(np.ascontiguousarray(p)) for p in np.array_split(x, 9)]
    got = merged(parts, CoMoments.merge).correlation()
    want = pd.DataFrame(x).corr().to_numpy()
    assert np.allclose(got, want, atol=1e-12)
    assert not math.isnan(got[0, 1])
