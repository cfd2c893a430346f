"""The profile of a table of many parts: exact numbers equal the one-part profile's, merging
in part order makes the result independent of the executor, estimates say so."""

from __future__ import annotations

import math
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from modelyard.compute import open_executor
from modelyard.config.schema import ProfileSection
from modelyard.data.profile import (
    Profile,
    _ColumnState,
    _histogram,
    _Layout,
    _read_sorted,
    profile,
)
from modelyard.data.table import Table, as_table
from modelyard.reports.profile import render_profile_html
from tests.unit.data.test_profile import frames, make_contract

APPROX = {"mean", "std", "skew", "kurtosis", "target_association", "matrix"}
"""Numbers summed in another order when merged part by part: equal up to rounding."""


FLOAT_ALERTS = {"skewed", "leakage"}
"""Alerts that follow from moments or correlations."""


def _exact_only(doc: dict[str, Any]) -> dict[str, Any]:
    """The profile without the numbers that depend on the order of a floating-point sum.

    Hypothesis draws columns such as ``[1e308, -1e308, 3.0]`` where the moments and
    correlations are rounding noise, so summing in another order changes them entirely;
    :func:`test_serial_and_a_process_pool_give_identical_profiles` and the pandas tests
    check them on data where they mean something.
    """

    def strip(x: Any) -> Any:
        if isinstance(x, dict):
            return {k: strip(v) for k, v in x.items() if not any(a == k for a in APPROX)}
        if isinstance(x, list):
            return [strip(v) for v in x]
        return x

    out = strip(doc)
    out["alerts"] = [a for a in out["alerts"] if a["kind"] not in FLOAT_ALERTS]
    out["target_associations"] = [a["column"] for a in doc["target_associations"]]
    out["target_associations"].sort()
    for col in out["columns"]:
        col.pop("target_association", None)
    return out


def _compare(a: Any, b: Any, path: str = "", scale: float = 0.0) -> None:
    """Exact numbers equal; floats summed in another order (moments, correlations) close,
    relative to the size of the column's values (``scale``)."""
    if isinstance(a, dict):
        assert a.keys() == b.keys(), path
        if "skew" in a:  # numeric statistics
            ends = [abs(v) for v in (a["min"], a["max"]) if v is not None and math.isfinite(v)]
            scale = max(ends, default=0.0)
            std = a["std"]
            if std is None or not math.isfinite(std) or std <= 1e-6 * scale:
                # (nearly) constant: skew and kurtosis are rounding noise in both orders
                a, b = dict(a, skew=None, kurtosis=None), dict(b, skew=None, kurtosis=None)
        for k in a:
            if k == "memory_bytes":  # polars' estimate of the in-memory size, not a statistic
                continue
            _compare(a[k], b[k], f"{path}.{k}", scale)
    elif isinstance(a, list):
        assert len(a) == len(b), path
        for i, (u, v) in enumerate(zip(a, b, strict=True)):
            _compare(u, v, f"{path}[{i}]", scale)
    elif isinstance(a, float) and isinstance(b, float) and any(k in path for k in APPROX):
        if math.isnan(a) or math.isinf(a):
            assert math.isnan(b) or math.isinf(b) or abs(b) > 1e300, path
        else:
            assert b == pytest.approx(a, rel=1e-6, abs=1e-9 + 1e-7 * scale), path
    elif any(k in path for k in APPROX) and (a is None) != (b is None):
        pass  # 0/0 in one summation order, tiny/tiny in the other: both "undefined"
    elif isinstance(a, float) and isinstance(b, float) and math.isnan(a):
        assert math.isnan(b), path
    else:
        assert a == b, (path, a, b)


def _table(df: pl.DataFrame, folder: Path, batch_rows: int) -> Table:
    return as_table(df, folder, batch_rows=batch_rows)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(df=frames(), pick=st.integers(min_value=0, max_value=10), batch=st.integers(1, 12))
def test_a_multi_part_table_profiles_like_one_part(df: pl.DataFrame, pick: int, batch: int) -> None:
    target = df.columns[pick % df.width] if pick < 8 else None
    contract = make_contract(df, target)
    options = ProfileSection(bins=7, top_values=3)
    one = profile(df, contract, options)
    folder = Path(tempfile.mkdtemp(prefix="profile-parts-"))
    try:
        many = profile(_table(df, folder / "t", batch), contract, options)
    finally:
        shutil.rmtree(folder)
    assert many.dataset.rows == df.height
    a, b = _exact_only(one.model_dump()), _exact_only(many.model_dump())
    a["dataset"].pop("memory_bytes")
    b["dataset"].pop("memory_bytes")
    assert _nan_as_text(a) == _nan_as_text(b)


def _nan_as_text(value: Any) -> Any:
    """NaN never equals NaN (not even in a dict, unless it is the same object): an undefined
    quantile of a column of infinities is NaN in both profiles, and must compare equal."""
    if isinstance(value, float) and math.isnan(value):
        return "nan"
    if isinstance(value, dict):
        return {k: _nan_as_text(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_nan_as_text(v) for v in value]
    return value


def _mixed(n: int, seed: int) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    return pl.DataFrame(
        {
            "x": x,
            "y": x * 2 + rng.normal(size=n),
            "k": rng.integers(0, 5, n),
            "c": pl.Series(rng.choice(["a", "b", "c", ""], n).tolist()).replace("", None),
            "d": pl.date_range(
                pl.date(2020, 1, 1), pl.date(2020, 1, 1) + pl.duration(days=n - 1), eager=True
            ),
            "t": rng.choice(["yes", "no"], n, p=[0.2, 0.8]),
        }
    )


def _profiles_on(kind: str, table: Table, contract: Any, options: ProfileSection) -> Profile:
    if kind == "dask":
        pytest.importorskip("distributed", reason="uv sync --extra dask")
    with open_executor(kind, workers=2) as ex:  # type: ignore[arg-type]
        return profile(table, contract, options, executor=ex)


@pytest.mark.parametrize("kind", ["local", "dask"])
def test_serial_and_parallel_executors_give_identical_profiles(kind: str, tmp_path: Path) -> None:
    df = _mixed(3_000, 1)
    table = as_table(df, tmp_path / "t", batch_rows=400)
    contract = make_contract(df, "t", "binary")
    options = ProfileSection()
    serial = _profiles_on("serial", table, contract, options)
    parallel = _profiles_on(kind, table, contract, options)
    inline = profile(table, contract, options)  # no executor: inline, part by part
    assert serial == parallel == inline  # merged in part order: bit for bit, wherever they ran
    _compare(profile(df, contract, options).model_dump(), serial.model_dump())


@pytest.mark.parametrize(
    ("footers", "correlation_columns", "second_pass"),
    [
        ("recorded", 30, None),  # one pass: the footers give the histograms' edges
        ("absent", 30, "histograms"),  # a table another tool wrote
        ("wrong", 30, "histograms"),  # extremes that are not the data's: checked, not used
        ("recorded", 2, "correlations"),  # 3 numeric columns, 2 in the matrix: which ones
    ],  # depends on the first pass
)
def test_the_first_pass_counts_the_histograms_when_the_footers_record_the_extremes(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    footers: str,
    correlation_columns: int,
    second_pass: str | None,
) -> None:
    import json

    import modelyard.data.profile as profile_module
    from modelyard.data.table import EXTREMES_KEY

    df = _mixed(3_000, 6).with_columns(
        pl.when(pl.col("k") == 4).then(float("inf")).otherwise(pl.col("x")).alias("x")
    )
    table = as_table(df, tmp_path / "t", batch_rows=400)
    for part in table.parts():
        if footers == "absent":
            pl.read_parquet(part).write_parquet(part)
        elif footers == "wrong":
            found = json.loads(pl.read_parquet_metadata(part)[EXTREMES_KEY])
            found["y"] = [found["y"][0] - 1.0, found["y"][1]]
            pl.read_parquet(part).write_parquet(part, metadata={EXTREMES_KEY: json.dumps(found)})
    passes: list[Any] = []
    real = profile_module.bin_part

    def counted(path: str, plan: Any) -> Any:
        passes.append(plan)
        return real(path, plan)

    monkeypatch.setattr(profile_module, "bin_part", counted)
    contract = make_contract(df, "t", "binary")
    options = ProfileSection(correlation_columns=correlation_columns)
    many = profile(table, contract, options)
    if second_pass is None:
        assert passes == []
    else:
        assert len(passes) == len(table.parts())
        assert bool(passes[0].layouts) == (second_pass == "histograms")
        assert bool(passes[0].correlate) == (second_pass == "correlations")
    one = profile(df, contract, options)  # in memory, exact
    assert many.column("x").numeric.histogram == one.column("x").numeric.histogram  # type: ignore[union-attr]
    assert many.column("d").temporal.histogram == one.column("d").temporal.histogram  # type: ignore[union-attr]
    assert many.correlations is not None and one.correlations is not None
    assert many.correlations.columns == one.correlations.columns
    _compare(one.model_dump(), many.model_dump())


def test_the_seeded_sample_is_the_same_rows_in_one_part_or_many(tmp_path: Path) -> None:
    df = _mixed(2_000, 2)
    contract = make_contract(df, "y", "regression")
    options = ProfileSection(sample=500)
    one = profile(df, contract, options, seed=4)
    many = profile(as_table(df, tmp_path / "t", batch_rows=300), contract, options, seed=4)
    assert one.sample_rows == many.sample_rows == 500
    assert one.correlations is not None and one.correlations.rows_used == 500
    _compare(one.model_dump(), many.model_dump())


def test_estimates_are_marked_with_their_bounds(tmp_path: Path) -> None:
    """Beyond the exact thresholds the numbers are estimates, each with its error bound;
    the counts, min/max, histogram totals and moments stay exact."""
    n = 240_000
    rng = np.random.default_rng(5)
    ids = [f"id{i}" for i in range(n)]
    df = pl.DataFrame(
        {
            "v": rng.lognormal(size=n),
            "id": ids,
            "small": rng.integers(0, 3, n),
        }
    )
    table = as_table(df, tmp_path / "t", batch_rows=60_000)
    prof = profile(table, make_contract(df), ProfileSection())
    v = prof.column("v")
    assert set(v.estimated) == {"distinct", "quantiles", "outliers"}
    assert v.estimated["quantiles"].unit == "rank"
    eps = v.estimated["quantiles"].bound
    assert 0 < eps < 0.002
    assert v.numeric is not None and v.numeric.quantiles.p50 is not None
    rank = float((df["v"] <= v.numeric.quantiles.p50).mean())
    assert abs(rank - 0.5) <= eps + 1e-5
    # the outliers, counted by the sketch against its quartiles: within both sides' bound
    q1, q3 = v.numeric.quantiles.p25, v.numeric.quantiles.p75
    assert q1 is not None and q3 is not None and v.numeric.outliers > 0
    true = int(((df["v"] < q1 - 1.5 * (q3 - q1)) | (df["v"] > q3 + 1.5 * (q3 - q1))).sum())
    assert v.estimated["outliers"].bound == pytest.approx(2 * eps)
    assert abs(v.numeric.outliers - true) <= 2 * eps * n
    assert abs(v.distinct - n) <= 3 * v.estimated["distinct"].bound * n
    assert v.numeric.histogram is not None and sum(v.numeric.histogram.counts) == n
    assert v.numeric.mean == pytest.approx(float(df["v"].mean()), rel=1e-12)
    ident = prof.column("id")
    assert set(ident.estimated) == {"distinct", "top"}
    assert ident.distinct <= n
    assert any(a.kind == "unique" and a.columns == ["id"] for a in prof.alerts)
    assert set(prof.column("small").estimated) == {"quantiles", "outliers"}  # compacted
    assert prof.column("small").distinct == 3  # exact: few distinct values
    assert prof.dataset.estimated == {}
    assert prof.dataset.duplicate_rows == 0
    html = render_profile_html(prof)
    assert 'data-estimated="distinct"' in html and "HyperLogLog" in html
    assert "rank error (99% confidence)" in html and "≈" in html
    assert Profile.model_validate_json(prof.model_dump_json()) == prof


def test_a_small_profile_has_no_estimate_marks() -> None:
    df = _mixed(500, 3)
    prof = profile(df, make_contract(df, "t", "binary"), ProfileSection())
    assert all(c.estimated == {} for c in prof.columns) and prof.dataset.estimated == {}
    html = render_profile_html(prof)
    assert "≈" not in html and "data-estimated" not in html


_values = st.lists(
    st.one_of(
        st.floats(allow_nan=False, width=64),
        st.sampled_from([0.0, -0.0, 1.0, -1.0, 1e300, -1e300, 5e-324, math.inf, -math.inf]),
    ),
    max_size=300,
)


@settings(max_examples=200, deadline=None)
@example(values=[0.0, 5e-324], bins=30, integral=False, span=(0.0, 5e-324))  # halves: 0
@given(
    values=_values,
    bins=st.integers(1, 60),
    integral=st.booleans(),
    span=st.tuples(st.floats(-1e6, 1e6), st.floats(0, 1e6)),
)
def test_a_histogram_of_sorted_values_counts_what_binning_each_value_counts(
    values: list[float], bins: int, integral: bool, span: tuple[float, float]
) -> None:
    """The first pass counts a numeric column's histogram from its sorted values by bisection
    (a few dozen evaluations); a second pass, or a table of one part, bins every value: the
    counts must be the same, whatever the values (also outside the layout's range)."""
    finite = np.array([v for v in values if math.isfinite(v)], dtype=np.float64)
    lo, width = span
    if integral:
        lo, finite = float(round(lo)), np.round(finite) % 1e6
    hi = lo + width
    lay = _Layout(lo, hi, bins if hi > lo else 1, integral)  # as _layout lays them out
    want = _histogram(finite, lay)
    got = _histogram(np.sort(finite), lay, ordered=True)
    assert got.dtype == want.dtype == np.int64
    assert got.tolist() == want.tolist()
    assert int(got.sum()) == finite.size


@settings(max_examples=200, deadline=None)
@given(values=_values)
def test_a_numeric_columns_extremes_and_counts_come_from_its_sorted_values(
    values: list[float],
) -> None:
    """What the first pass reads off a column's sorted values equals what polars computes."""
    s = pl.Series("v", values, dtype=pl.Float64)
    state = _ColumnState()
    finite = _read_sorted(np.sort(s.to_numpy()), state)
    fin = s.filter(s.is_finite())
    assert (state.lo, state.hi) == (s.min(), s.max())
    assert (state.flo, state.fhi) == (fin.min(), fin.max())
    assert state.zeros == int((s == 0).sum())
    assert state.negatives == int((s < 0).sum())
    assert state.infinite == int(s.is_infinite().sum())
    assert finite.tolist() == sorted(fin.to_list())


def test_a_histogram_spanning_more_than_the_largest_float_counts_every_value() -> None:
    lay = _Layout(-1e308, 1e308, 30, False)  # hi - lo overflows to inf: binned in halves
    values = np.array([-1e308, -5e307, 0.0, 5e-324, 5e307, 1e308])
    counts = _histogram(values, lay)
    assert counts.tolist() == _histogram(values, lay, ordered=True).tolist()
    assert (counts[0], counts[7], counts[15], counts[22], counts[29]) == (1, 1, 2, 1, 1)
