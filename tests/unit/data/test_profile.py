"""The profile stage: numbers equal pandas', alerts fire on real leaks, invariants hold."""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path
from typing import Any

import pandas as pd
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelyard.config.schema import ProfileSection
from modelyard.data.contract import ColumnContract, DataContract, Task
from modelyard.data.profile import QUANTILES, Profile, profile, type_of
from modelyard.reports.profile import profile_json, render_profile_html

REL = 1e-9


def make_contract(
    df: pl.DataFrame,
    target: str | None = None,
    task: Task | None = None,
    roles: dict[str, Any] | None = None,
    **rules: dict[str, Any],
) -> DataContract:
    """A contract built by hand from the dtypes (independent of contract inference)."""
    roles = roles or {}
    cols = []
    for name, dtype in df.schema.items():
        role = roles.get(name, "target" if name == target else "feature")
        cols.append(
            ColumnContract(name=name, type=type_of(dtype), role=role, **rules.get(name, {}))
        )
    return DataContract(target=target, task=task, columns=cols)


def kdd_names(data: Path) -> list[str]:
    text = (data / "kddcup99" / "kddcup.names").read_text().splitlines()[1:]
    return [line.split(":")[0] for line in text if ":" in line] + ["label"]


def close(a: float | None, b: float) -> bool:
    if a is None:
        return math.isnan(b)
    return a == pytest.approx(b, rel=REL, abs=1e-12)


# --------------------------------------------------------------------------- vs pandas


@pytest.mark.parametrize(
    ("file", "target", "task"),
    [
        ("diamonds.csv", "price", "regression"),
        ("titanic.csv", "survived", "binary"),
    ],
)
def test_statistics_equal_pandas(shared_data: Path, file: str, target: str, task: Task) -> None:
    path = shared_data / file
    df = pl.read_csv(path)
    pdf = pd.read_csv(path)
    prof = profile(df, make_contract(df, target, task), ProfileSection())

    assert prof.dataset.rows == len(pdf)
    assert prof.dataset.columns == pdf.shape[1]
    assert prof.dataset.missing_cells == int(pdf.isna().sum().sum())
    assert prof.dataset.duplicate_rows == int(pdf.duplicated().sum())
    for col in prof.columns:
        s = pdf[col.name]
        assert col.missing == int(s.isna().sum()), col.name
        assert col.count == int(s.notna().sum()), col.name
        assert col.distinct == int(s.nunique()), col.name
        if col.numeric is None:
            assert col.categorical is not None
            counts = s.value_counts()
            for top in col.categorical.top:
                key = {"true": True, "false": False}.get(top.value, top.value)
                assert top.count == int(counts[key]), (col.name, top.value)
            continue
        n = col.numeric
        assert close(n.mean, float(s.mean())), (col.name, "mean")
        assert close(n.std, float(s.std(ddof=1))), (col.name, "std")
        assert close(n.min, float(s.min())), (col.name, "min")
        assert close(n.max, float(s.max())), (col.name, "max")
        for qn, q in QUANTILES:
            want = float(s.quantile(q, interpolation="linear"))
            assert close(getattr(n.quantiles, qn), want), (col.name, qn)
        assert n.skew == pytest.approx(float(s.skew()), rel=1e-6, abs=1e-9), col.name
        assert n.zeros == int((s == 0).sum())
        assert n.negatives == int((s < 0).sum())
        iqr = s.quantile(0.75) - s.quantile(0.25)
        outliers = ((s < s.quantile(0.25) - 1.5 * iqr) | (s > s.quantile(0.75) + 1.5 * iqr)).sum()
        assert n.outliers == int(outliers), col.name
        assert n.histogram is not None
        assert sum(n.histogram.counts) == col.count


def test_correlations_equal_pandas(shared_data: Path) -> None:
    df = pl.read_csv(shared_data / "titanic.csv")
    pdf = pd.read_csv(shared_data / "titanic.csv")
    prof = profile(df, make_contract(df, "survived", "binary"), ProfileSection())
    corr = prof.correlations
    assert corr is not None
    want = pdf[corr.columns].corr()  # pairwise complete, like ours (age has NaN)
    for i, a in enumerate(corr.columns):
        for j, b in enumerate(corr.columns):
            got = corr.matrix[i][j]
            assert got is not None
            assert got == pytest.approx(float(want.loc[a, b]), abs=1e-9), (a, b)


# --------------------------------------------------------------------------- alerts


def _leaks(prof: Profile) -> list[set[str]]:
    return [set(a.columns) for a in prof.alerts if a.kind == "leakage"]


def test_titanic_alive_is_leakage_at_the_top(shared_data: Path) -> None:
    df = pl.read_csv(shared_data / "titanic.csv")
    prof = profile(df, make_contract(df, "survived", "binary"), ProfileSection())
    assert prof.alerts[0].kind == "leakage"
    assert prof.alerts[0].columns == ["alive"]
    assert prof.alerts[0].severity == "critical"
    assert _leaks(prof) == [{"alive"}]
    assert prof.target_associations[0].column == "alive"
    assert prof.target_associations[0].score == pytest.approx(1.0)
    balance = prof.class_balance
    assert balance is not None
    assert [(c.value, c.count) for c in balance.classes] == [("0", 549), ("1", 342)]
    assert balance.imbalance_ratio == pytest.approx(549 / 342)
    assert {"duplicates", "high_missing"} <= {a.kind for a in prof.alerts}


def test_declared_leakage_is_still_mentioned(shared_data: Path) -> None:
    df = pl.read_csv(shared_data / "titanic.csv")
    contract = make_contract(df, "survived", "binary", roles={"alive": "leakage"})
    prof = profile(df, contract, ProfileSection())
    (alert,) = [a for a in prof.alerts if a.kind == "leakage"]
    assert alert.columns == ["alive"]
    assert "already declared" in alert.message
    assert alert.severity == "warning"


def test_bike_sharing_sum_leakage(shared_data: Path) -> None:
    df = pl.read_csv(shared_data / "bike_sharing" / "hour.csv", try_parse_dates=True)
    assert df.schema["dteday"] == pl.Date
    prof = profile(df, make_contract(df, "cnt", "regression"), ProfileSection())
    assert {"casual", "registered"} in _leaks(prof)
    assert prof.alerts[0].kind == "leakage"
    assert "R²" in prof.alerts[0].message
    dteday = prof.column("dteday").temporal
    assert dteday is not None
    assert (dteday.min, dteday.max) == ("2011-01-01", "2012-12-31")
    assert dteday.histogram is not None
    assert sum(dteday.histogram.counts) == 17_379


def test_kddcup_constant_columns_and_imbalance(shared_data: Path) -> None:
    df = pl.read_csv(
        shared_data / "kddcup99" / "kddcup.data_10_percent.gz",
        has_header=False,
        new_columns=kdd_names(shared_data),
        n_rows=50_000,
    )
    prof = profile(df, make_contract(df, "label", "multiclass"), ProfileSection())
    constant = {a.columns[0] for a in prof.alerts if a.kind == "constant"}
    assert {"num_outbound_cmds", "is_host_login"} <= constant
    assert prof.column("num_outbound_cmds").constant
    assert prof.class_balance is not None
    assert any(a.kind == "class_imbalance" for a in prof.alerts)
    assert any(a.kind == "duplicates" for a in prof.alerts)
    assert not _leaks(prof)  # strongly associated features, but none determines the label
    assert prof.correlations is not None
    assert len(prof.correlations.columns) <= ProfileSection().correlation_columns


def test_diamonds_has_no_leakage(shared_data: Path) -> None:
    df = pl.read_csv(shared_data / "diamonds.csv")
    prof = profile(df, make_contract(df, "price", "regression"), ProfileSection())
    assert not _leaks(prof)
    assert prof.target_associations[0].column == "carat"


# --------------------------------------------------------------------------- contract rules


def test_validity_and_uniqueness_follow_the_contract() -> None:
    df = pl.DataFrame(
        {
            "id": [1, 2, 2, 4],
            "x": [0.5, 2.0, None, -1.0],
            "c": ["a", "b", "zz", None],
            "d": [dt.date(2020, 1, 1), dt.date(2021, 1, 1), dt.date(2019, 1, 1), None],
        }
    )
    contract = make_contract(
        df,
        roles={"id": "id"},
        x={"min": 0, "max": 1},
        c={"categories": ["a", "b"]},
        d={"min": "2020-01-01"},
    )
    prof = profile(df, contract, ProfileSection())
    x = prof.column("x").quality
    assert x.invalid == 2
    assert x.completeness == pytest.approx(0.75)
    assert x.validity == pytest.approx(1 / 3)
    assert x.score == pytest.approx(0.75 / 3)
    assert prof.column("c").quality.invalid == 1
    assert prof.column("d").quality.invalid == 1
    assert prof.column("id").quality.uniqueness == pytest.approx(0.75)
    assert prof.column("x").quality.uniqueness is None


def test_sample_only_touches_the_sampled_parts(shared_data: Path) -> None:
    df = pl.read_csv(shared_data / "diamonds.csv")
    contract = make_contract(df, "price", "regression")
    full = profile(df, contract, ProfileSection())
    part = profile(df, contract, ProfileSection(sample=5_000), seed=3)
    again = profile(df, contract, ProfileSection(sample=5_000), seed=3)
    assert part.sample_rows == 5_000
    assert part.correlations is not None
    assert part.correlations.rows_used == 5_000
    for a, b in zip(full.columns, part.columns, strict=True):  # statistics use all rows
        assert a.model_copy(update={"target_association": None}) == b.model_copy(
            update={"target_association": None}
        )
    # Seeded: the same sample (group-by sums may differ in the last bit: parallel order).
    assert part.correlations == again.correlations
    assert [a.column for a in part.target_associations] == [
        a.column for a in again.target_associations
    ]
    for a, b in zip(part.target_associations, again.target_associations, strict=True):
        assert a.score == pytest.approx(b.score, rel=1e-12)


def test_nan_counts_as_missing_and_inf_is_reported() -> None:
    df = pl.DataFrame({"f": [1.0, float("nan"), float("inf"), None, 3.0]})
    prof = profile(df, make_contract(df), ProfileSection())
    col = prof.column("f")
    assert (col.count, col.missing) == (3, 2)
    assert col.numeric is not None
    assert col.numeric.infinite == 1
    assert col.numeric.histogram is not None
    assert sum(col.numeric.histogram.counts) == 2
    assert any(a.kind == "infinite" for a in prof.alerts)


def test_a_column_spanning_a_subnormal_range_has_a_histogram() -> None:
    """Its span halved (the overflow guard) is 0: the bins were 0/0, and the whole profile
    step failed casting NaN to a bin number."""
    df = pl.DataFrame({"f": [0.0, 5e-324, 5e-324, 0.0]})
    col = profile(df, make_contract(df), ProfileSection()).column("f")
    assert col.numeric is not None and col.numeric.histogram is not None
    counts = col.numeric.histogram.counts
    assert (counts[0], counts[-1], sum(counts)) == (2, 2, 4)


def test_json_round_trip(shared_data: Path) -> None:
    df = pl.read_csv(shared_data / "titanic.csv")
    prof = profile(df, make_contract(df, "survived", "binary"), ProfileSection())
    assert Profile.model_validate_json(profile_json(prof)) == prof


# --------------------------------------------------------------------------- properties

_names = st.text(min_size=1, max_size=12)
_floats = st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True))
_ints = st.one_of(st.none(), st.integers(min_value=-(2**62), max_value=2**62))
_strs = st.one_of(st.none(), st.text(max_size=5), st.text(min_size=2000, max_size=2001))
_bools = st.one_of(st.none(), st.booleans())
_dates = st.one_of(
    st.none(), st.dates(min_value=dt.date(1900, 1, 1), max_value=dt.date(2100, 1, 1))
)
_kinds: dict[str, tuple[Any, Any]] = {
    "int": (_ints, pl.Int64),
    "float": (_floats, pl.Float64),
    "str": (_strs, pl.String),
    "bool": (_bools, pl.Boolean),
    "date": (_dates, pl.Date),
}


@st.composite
def frames(draw: st.DrawFn) -> pl.DataFrame:
    rows = draw(st.integers(min_value=0, max_value=25))
    names = draw(st.lists(_names, min_size=1, max_size=5, unique=True))
    data: dict[str, pl.Series] = {}
    for name in names:
        kind = draw(st.sampled_from(sorted(_kinds)))
        values_st, dtype = _kinds[kind]
        mode = draw(st.sampled_from(["any", "null", "single"]))
        if mode == "null":
            values = [None] * rows
        elif mode == "single":
            v = draw(values_st)
            values = [v] * rows
        else:
            values = draw(st.lists(values_st, min_size=rows, max_size=rows))
        data[name] = pl.Series(name, values, dtype=dtype)
    return pl.DataFrame(list(data.values()))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(df=frames(), pick=st.integers(min_value=0, max_value=10), bins=st.integers(2, 40))
def test_invariants_on_generated_frames(df: pl.DataFrame, pick: int, bins: int) -> None:
    target = df.columns[pick % df.width] if pick < 8 else None
    prof = profile(df, make_contract(df, target), ProfileSection(bins=bins, top_values=3))
    assert prof.dataset.rows == df.height
    assert prof.dataset.missing_cells == sum(c.missing for c in prof.columns)
    assert 0.0 <= prof.dataset.quality_score <= 1.0
    assert 0 <= prof.dataset.duplicate_rows < max(df.height, 1)
    for col in prof.columns:
        assert col.missing + col.count == df.height
        assert 0 <= col.distinct <= col.count
        assert 0.0 <= col.quality.score <= 1.0
        if col.numeric is not None:
            n = col.numeric
            if n.histogram is not None:
                assert sum(n.histogram.counts) == col.count - n.infinite
                assert len(n.histogram.edges) == len(n.histogram.counts) + 1
            else:
                assert col.count - n.infinite == 0
            qs = [getattr(n.quantiles, qn) for qn, _ in QUANTILES]
            finite = [q for q in qs if q is not None and math.isfinite(q)]
            if len(finite) == len(qs):
                assert finite == sorted(finite)
                assert n.min is not None and n.max is not None
                assert n.min <= finite[0] and finite[-1] <= n.max
        if col.categorical is not None:
            assert sum(t.count for t in col.categorical.top) + col.categorical.other_count == (
                col.count
            )
            assert len(col.categorical.top) <= 3
        if col.temporal is not None and col.temporal.histogram is not None:
            assert sum(col.temporal.histogram.counts) == col.count
    for a in prof.target_associations:
        assert 0.0 <= a.score <= 1.0
    if prof.correlations is not None:
        for row in prof.correlations.matrix:
            assert all(v is None or -1.0 <= v <= 1.0 for v in row)
    # Renders and serialises without error.
    assert "</html>" in render_profile_html(prof)
    Profile.model_validate_json(profile_json(prof))


def test_empty_frame() -> None:
    df = pl.DataFrame({"a": pl.Series([], dtype=pl.Float64), "b": pl.Series([], dtype=pl.String)})
    prof = profile(df, make_contract(df, "a", "regression"), ProfileSection())
    assert prof.dataset.rows == 0
    assert prof.column("a").count == 0
    assert prof.column("a").constant


# --------------------------------------------------------------------------- issue 11


def test_a_zero_one_flag_is_neither_skewed_nor_full_of_outliers() -> None:
    """Issue 11 item 10: "'Short' has 9458 outliers", "'Action' is skewed" on 0/1 flags."""
    n = 2_000
    df = pl.DataFrame(
        {
            "short": [1 if i % 10 == 0 else 0 for i in range(n)],  # 10% ones: all "outliers"
            "action": [1 if i % 50 == 0 else 0 for i in range(n)],  # 2% ones: skew 6.9
            "runtime": [float(2 ** (i % 20)) for i in range(n)],  # a truly skewed number
        }
    )
    prof = profile(df, make_contract(df), ProfileSection())
    kinds = {(a.kind, c) for a in prof.alerts for c in a.columns}
    assert ("outliers", "short") not in kinds and ("skewed", "action") not in kinds
    assert ("skewed", "short") not in kinds and ("outliers", "action") not in kinds
    assert prof.column("short").numeric.outliers == 0  # type: ignore[union-attr]
    assert prof.column("action").numeric.skew == pytest.approx(6.9, abs=0.1)  # type: ignore[union-attr]
    assert ("skewed", "runtime") in kinds  # numbers still get the alert


def _eta_all_levels(df: pd.DataFrame, x: str, y: str) -> float:
    grand = df[y].mean()
    groups = df.groupby(x)[y]
    between = float((groups.count() * (groups.mean() - grand) ** 2).sum())
    total = float(((df[y] - grand) ** 2).sum())
    return math.sqrt(between / total)


def test_the_correlation_ratio_of_a_near_unique_column_is_over_its_levels(
    shared_data: Path,
) -> None:
    """Issue 11 item 8: a near-unique title column scored 0.03, its correlation ratio is ~1.

    η² = between-level / total sum of squares, over the column's *own* levels. Lumping every
    level beyond the 50 most frequent into one "other" level (98% of the rows here) measured
    another variable; with about one row per level the within-level spread is ~0, so η ≈ 1.
    """
    diamonds = pl.read_csv(shared_data / "diamonds.csv").head(5_000)
    lot = [f"lot {i // 2 if i % 10 == 0 else i}" for i in range(diamonds.height)]  # 95% distinct
    df = diamonds.with_columns(pl.Series("lot", lot))
    prof = profile(df, make_contract(df, "price", "regression"), ProfileSection())
    by = {a.column: a for a in prof.target_associations}
    pdf = df.to_pandas()
    assert by["lot"].method == "correlation_ratio"
    assert by["lot"].score == pytest.approx(_eta_all_levels(pdf, "lot", "price"), rel=1e-9)
    assert by["lot"].score > 0.95
    assert by["cut"].score == pytest.approx(_eta_all_levels(pdf, "cut", "price"), rel=1e-9)
    assert prof.column("lot").target_association == by["lot"].score


def test_contract_decisions_show_as_alerts() -> None:
    df = pl.DataFrame({"fare": [1.0, 2.0, None, 4.0], "sku": ["a", "b", "c", "d"]})
    contract = DataContract(
        columns=[
            ColumnContract(
                name="fare",
                type="float",
                unreadable=1,
                reason='1 of 4 values are not a float (e.g. "?")',
            ),
            ColumnContract(name="sku", type="str", role="id", reason="4 distinct values in 4 rows"),
        ]
    )
    alerts = {a.kind: a for a in profile(df, contract, ProfileSection()).alerts}
    assert alerts["unreadable"].severity == "warning"
    assert (
        alerts["unreadable"].message
        == "'fare' is typed float, but 1 of 4 values are not a float (e.g. \"?\")"
    )
    assert alerts["inferred"].message.startswith("'sku' is an identifier, not a feature (contract)")


def test_a_range_wider_than_the_largest_float_still_bins() -> None:
    """Found by the invariants test: hi - lo overflowed to inf and binning failed."""
    df = pl.DataFrame({"x": [-1.7e308, 1.7e308, 0.0]})
    hist = profile(df, make_contract(df), ProfileSection(bins=2)).column("x").numeric.histogram  # type: ignore[union-attr]
    assert hist is not None and hist.counts == [1, 2]
    assert all(math.isfinite(e) for e in hist.edges) and hist.edges[0] == -1.7e308


def test_columns_named_like_the_counts_profile() -> None:
    """Hypothesis found it: a target, or a category column with many levels, named ``n``
    crashed the profile (the value counts' own column is called ``n``)."""
    many = pl.DataFrame({"n": [f"v{i % 60}" for i in range(240)], "y": ["a", "b"] * 120})
    prof = profile(many, make_contract(many, "y", "binary"), ProfileSection())
    assert prof.dataset.rows == 240
    target = pl.DataFrame({"n": ["a", "b", "a", "c"] * 10, "x": [float(i) for i in range(40)]})
    prof = profile(target, make_contract(target, "n", "multiclass"), ProfileSection())
    assert prof.class_balance is not None and prof.class_balance.majority == "a"


def test_columns_named_like_patterns_profile() -> None:
    """Hypothesis found it: ``pl.col("*")`` is every column and ``pl.col("^x$")`` a regex, so
    a column called ``*`` broke the profile (duplicate output names, an ambiguous filter)."""
    df = pl.DataFrame(
        {
            "*": [1.0, 2.0, None, 4.0] * 5,
            "^x$": ["a", "b", "a", None] * 5,
            "y": [0, 1, 0, 1] * 5,
        }
    )
    prof = profile(df, make_contract(df, "y", "binary"), ProfileSection())
    assert prof.column("*").count == 15 and prof.column("*").missing == 5
    assert prof.column("^x$").distinct == 2
    assert {a.column for a in prof.target_associations} == {"*", "^x$"}
    star = pl.DataFrame({"*": ["p", "q"] * 10, "0": [1.5, 2.5] * 10})
    prof = profile(star, make_contract(star, "*", "binary"), ProfileSection())
    assert prof.class_balance is not None and prof.class_balance.majority == "p"
