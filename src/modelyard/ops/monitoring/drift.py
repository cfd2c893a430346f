"""Data drift between a reference and a current table, decided on effect size.

Every feature gets a method suited to its type. A signal counts when its effect size crosses a
documented threshold (:class:`~modelyard.config.schema.DriftThresholds`) **and** the test
beside it rules out chance (p-value below ``thresholds.p_value``): an effect size alone flags
sampling noise in small windows (two samples of 100 rows of one population score Wasserstein
0.19 on average), a p-value alone flags negligible shifts at a million rows.

Numbers (ints, floats; dates and datetimes by their instant)
    - **PSI**, the population stability index ``sum((c - r) * ln(c / r))`` over up to ``bins``
      bins cut at the reference's quantiles (repeated quantiles merge, so a value holding a
      large share of the reference gets its own bin); empty bins count as a share of
      :data:`EPSILON`.
    - **Wasserstein** (earth mover's) distance between the two empirical distributions,
      divided by the reference's standard deviation (by 1 for a constant reference): "the
      mass moved this many reference standard deviations on average" (Cohen's ``d`` for a
      shifted normal variable).
    - Kolmogorov-Smirnov statistic and its asymptotic p-value: the noise test.
    - Drifted when ``psi > thresholds.psi`` or ``wasserstein > thresholds.wasserstein``, and
      the KS p-value is below ``thresholds.p_value``.
Categories (strings, booleans)
    - **Jensen-Shannon distance** (base 2, from 0 = same shares to 1 = disjoint) between the
      category shares; PSI over the categories is reported too.
    - chi-squared test of homogeneity and its p-value: the noise test.
    - Drifted when ``jensen_shannon > thresholds.jensen_shannon`` and the chi-squared p-value
      is below ``thresholds.p_value``.
    - **New categories** (values the reference never had) are listed; drifted when their share
      of the current values exceeds ``thresholds.new_category_rate``.
Missing values (every type)
    - Missing values (null, NaN) are left out of the distributions above and form a signal of
      their own: drifted when the missing share changes by more than ``thresholds.missing_rate``
      and a two-proportion z-test gives a p-value below ``thresholds.p_value``.
Small windows
    - With fewer than ``min_rows`` rows in the reference or the current table a feature gets
      the status ``insufficient_data`` and no verdict. With enough rows but fewer than
      ``min_rows`` non-missing values only the missing-share signal is judged.
An effect that crosses its threshold within noise is named in ``reasons`` ("within sampling
noise") without a drift verdict.

The target is never a feature: its shift is **label drift**, reported apart
(:attr:`DriftReport.target`) and left out of the dataset verdict. The dataset has drifted when
at least ``thresholds.share`` of the features with a verdict has.

>>> import polars as pl
>>> ref = pl.DataFrame({"x": [float(i % 10) for i in range(1000)]})
>>> report = drift(ref, ref.with_columns(pl.col("x") + 5), min_rows=100)
>>> report.drifted_features
['x']
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import polars as pl
from pydantic import BaseModel, Field

from modelyard.config.schema import DriftThresholds
from modelyard.data.frames import from_pandas
from modelyard.errors import ModelyardError

if TYPE_CHECKING:
    from modelyard.data.contract import DataContract

EPSILON = 1e-4
"""The share an empty bin counts as in PSI (so that the index stays finite)."""
DEFAULT_BINS = 10
"""Quantile bins of the reference for PSI."""
MAX_SHOWN = 20
"""Categories shown in the report's bars (the rest are lumped as ``(other)``)."""

Kind = Literal["numeric", "categorical"]
Status = Literal["drift", "ok", "insufficient_data"]


class FeatureDrift(BaseModel):
    """The drift of one column."""

    column: str
    kind: Kind
    status: Status
    """``drift``, ``ok``, or ``insufficient_data`` (no verdict)."""
    drifted: bool | None
    reference_rows: int
    current_rows: int
    psi: float | None = None
    """Population stability index (numbers: reference-quantile bins; categories)."""
    wasserstein: float | None = None
    """Wasserstein distance / reference standard deviation (numbers)."""
    jensen_shannon: float | None = None
    """Jensen-Shannon distance, base 2 (categories)."""
    test: Literal["ks", "chi2"] | None = None
    """The test reported beside the effect sizes."""
    statistic: float | None = None
    p_value: float | None = None
    missing_reference: float = 0.0
    """Share of missing values in the reference."""
    missing_current: float = 0.0
    missing_delta: float = 0.0
    """``missing_current - missing_reference`` (negative: fewer missing values now)."""
    missing_p_value: float | None = None
    """p-value of the two-proportion z-test of the missing shares."""
    new_category_share: float | None = None
    """Share of the current non-missing values that are categories unseen in the reference."""
    new_categories: list[str] = Field(default_factory=list)
    """Up to 20 of them, most frequent first."""
    reasons: list[str] = Field(default_factory=list)
    """One sentence per signal that crossed its threshold (or why there is no verdict)."""
    bins: list[str] = Field(default_factory=list)
    """Bin labels of the distributions below (for plots)."""
    reference_shares: list[float] = Field(default_factory=list)
    current_shares: list[float] = Field(default_factory=list)

    def scores(self) -> dict[str, float]:
        """The finite effect sizes by method name, as magnitudes (what Prometheus exports and
        alert rules compare with thresholds: ``missing_delta`` is ``|missing_delta|`` here; the
        reports show the signed change)."""
        out = {
            "psi": self.psi,
            "wasserstein": self.wasserstein,
            "jensen_shannon": self.jensen_shannon,
            "missing_delta": abs(self.missing_delta),
            "new_category_share": self.new_category_share,
        }
        return {k: float(v) for k, v in out.items() if v is not None and math.isfinite(v)}


class SetAside(BaseModel):
    """Lines of one file that are not rows (a wrong number of fields, broken quoting), left
    out of the comparison as ingest sets them aside."""

    table: Literal["reference", "current"]
    lines: int
    first_line: int
    """The (1-based, physical) line number of the first of them."""
    first: str
    """The first of them: the file and line, what is wrong, its text."""


class DriftReport(BaseModel):
    """Drift of every compared column, and the dataset's verdict."""

    status: Status
    drifted: bool | None
    drift_share: float | None
    """Share of the features with a verdict that drifted."""
    drifted_features: list[str]
    reference_rows: int
    current_rows: int
    min_rows: int
    thresholds: DriftThresholds
    features: list[FeatureDrift]
    target: FeatureDrift | None = None
    """Label drift: the shift of the target column (when it is known and in both tables),
    judged like a feature but not one of them (not in ``features``, ``drifted_features`` or
    ``drift_share``)."""
    skipped_columns: list[str] = Field(default_factory=list)
    """Columns of one table only (not compared)."""
    set_aside: list[SetAside] = Field(default_factory=list)
    """Per file, the lines that are not rows (not compared; the rows counts leave them out)."""
    seconds: float = 0.0

    def feature(self, name: str) -> FeatureDrift:
        for f in self.features:
            if f.column == name:
                return f
        raise KeyError(name)


# --------------------------------------------------------------------------- the API


def drift(
    reference: Any,
    current: Any,
    *,
    contract: DataContract | None = None,
    columns: Sequence[str] | None = None,
    target: str | None = None,
    thresholds: DriftThresholds | None = None,
    min_rows: int = 100,
    bins: int = DEFAULT_BINS,
) -> DriftReport:
    """Compare ``current`` with ``reference`` (polars or pandas DataFrames), column by column.

    ``contract``: cast both tables to its types and compare its features (a CSV read as text
    becomes typed); without it, columns are compared as typed, numbers as numbers, everything
    else as categories. ``columns``: compare only these. ``target`` (default: the contract's):
    the label column, reported as label drift (:attr:`DriftReport.target`) and never as a
    feature; a classification target (the contract's task) is compared as categories. See the
    module docstring for methods and thresholds.
    """
    started = time.perf_counter()
    t = thresholds or DriftThresholds()
    ref = _as_polars(reference, "reference")
    cur = _as_polars(current, "current")
    if contract is not None:
        from modelyard.data.validation import cast_to_contract

        ref = cast_to_contract(ref, contract)[0]
        cur = cast_to_contract(cur, contract)[0]
        wanted = [c.name for c in contract.features]
    else:
        wanted = list(ref.columns)
    if columns is not None:
        missing = [c for c in columns if c not in ref.columns or c not in cur.columns]
        if missing:
            raise ModelyardError(
                f"cannot compare column(s) {missing}: not in both tables",
                expected=f"columns of both tables: {sorted(set(ref.columns) & set(cur.columns))}",
                found=f"reference {ref.columns}, current {cur.columns}",
                fix="Name columns present in both tables.",
            )
        wanted = list(columns)
    label = target or (contract.target if contract is not None else None)
    if label is not None and label not in ref.columns:
        import difflib

        guess = difflib.get_close_matches(label, ref.columns, n=1)
        raise ModelyardError(
            f"the target column '{label}' is not in the reference table",
            expected=f"one of {ref.columns}",
            fix="Name a column of the reference data as the target, or leave the target out."
            + (f" Did you mean '{guess[0]}'?" if guess else ""),
        )
    wanted = [c for c in wanted if c != label]
    compared = [c for c in wanted if c in ref.columns and c in cur.columns]
    skipped = [c for c in wanted if c not in compared] + [
        c
        for c in cur.columns
        if c not in ref.columns and c != label and (columns is None and contract is None)
    ]
    features = [
        column_drift(
            ref.get_column(c), cur.get_column(c), thresholds=t, min_rows=min_rows, bins=bins
        )
        for c in compared
    ]
    report = summarise(
        features, ref.height, cur.height, thresholds=t, min_rows=min_rows, skipped=skipped
    )
    if label is not None and label in cur.columns:
        task = contract.task if contract is not None else None
        report.target = column_drift(
            ref.get_column(label), cur.get_column(label), thresholds=t, min_rows=min_rows,
            bins=bins, kind="categorical" if task in ("binary", "multiclass") else None,
        )  # fmt: skip
    report.seconds = time.perf_counter() - started
    return report


def summarise(
    features: list[FeatureDrift],
    reference_rows: int,
    current_rows: int,
    *,
    thresholds: DriftThresholds,
    min_rows: int,
    skipped: Sequence[str] = (),
) -> DriftReport:
    """The dataset verdict of per-feature results."""
    judged = [f for f in features if f.drifted is not None]
    drifted = [f.column for f in judged if f.drifted]
    if not judged:
        status: Status = "insufficient_data"
        share = None
        verdict = None
    else:
        share = len(drifted) / len(judged)
        verdict = share >= thresholds.share
        status = "drift" if verdict else "ok"
    return DriftReport(
        status=status,
        drifted=verdict,
        drift_share=share,
        drifted_features=drifted,
        reference_rows=reference_rows,
        current_rows=current_rows,
        min_rows=min_rows,
        thresholds=thresholds,
        features=features,
        skipped_columns=list(skipped),
    )


def _as_polars(frame: Any, what: str) -> pl.DataFrame:
    if isinstance(frame, pl.DataFrame):
        return frame
    if isinstance(frame, pl.LazyFrame):
        return frame.collect()
    try:
        out = from_pandas(frame)
    except (TypeError, ValueError) as exc:
        raise ModelyardError(
            f"the {what} table is not a DataFrame",
            expected="a polars or pandas DataFrame",
            found=type(frame).__name__,
            fix="Pass a polars.DataFrame (or pandas.DataFrame).",
        ) from exc
    assert isinstance(out, pl.DataFrame)
    return out


# --------------------------------------------------------------------------- one column


def kind_of(dtype: pl.DataType) -> Kind:
    """Numbers, dates and datetimes are ``numeric``; strings, booleans and the rest categories."""
    if dtype == pl.Boolean:
        return "categorical"
    if dtype.is_numeric() or dtype.is_temporal():
        return "numeric"
    return "categorical"


def _missing(s: pl.Series) -> pl.Series:
    """The non-missing values (NaN counts as missing)."""
    if s.dtype.is_float():
        s = s.fill_nan(None)
    return s.drop_nulls()


def column_drift(
    reference: pl.Series,
    current: pl.Series,
    *,
    thresholds: DriftThresholds | None = None,
    min_rows: int = 100,
    bins: int = DEFAULT_BINS,
    kind: Kind | None = None,
) -> FeatureDrift:
    """The drift of one column (see the module docstring)."""
    t = thresholds or DriftThresholds()
    ref, cur = _align(reference, current)
    k = kind or (
        "numeric"
        if kind_of(ref.dtype) == "numeric" and kind_of(cur.dtype) == "numeric"
        else "categorical"
    )
    n_ref, n_cur = ref.len(), cur.len()
    ref_v, cur_v = _missing(ref), _missing(cur)
    miss_r = 1.0 - ref_v.len() / n_ref if n_ref else 0.0
    miss_c = 1.0 - cur_v.len() / n_cur if n_cur else 0.0
    out = FeatureDrift(
        column=reference.name,
        kind=k,
        status="insufficient_data",
        drifted=None,
        reference_rows=n_ref,
        current_rows=n_cur,
        missing_reference=miss_r,
        missing_current=miss_c,
        missing_delta=miss_c - miss_r,
    )
    if n_ref < min_rows or n_cur < min_rows:
        out.reasons = [
            f"insufficient data: {min(n_ref, n_cur)} rows in the "
            f"{'reference' if n_ref < min_rows else 'current window'}, fewer than min_rows={min_rows}"
        ]
        return out
    reasons: list[str] = []
    notes: list[str] = []

    def judge(effects: list[str], p_value: float | None, test: str) -> None:
        """Material effects count when the test rules out chance, else they are a note."""
        if not effects:
            return
        if p_value is not None and p_value < t.p_value:
            reasons.extend(effects)
        else:
            shown = "n/a" if p_value is None else f"{p_value:.2g}"
            notes.append(
                f"{'; '.join(effects)}, but within sampling noise "
                f"({test} p-value {shown} >= {t.p_value:g})"
            )

    out.missing_p_value = two_proportion_p(n_ref - ref_v.len(), n_ref, n_cur - cur_v.len(), n_cur)
    if abs(out.missing_delta) > t.missing_rate:
        judge(
            [
                f"missing share changed from {miss_r:.1%} to {miss_c:.1%} "
                f"(|change| > {t.missing_rate:g})"
            ],
            out.missing_p_value,
            "two-proportion z-test",
        )
    enough = ref_v.len() >= min_rows and cur_v.len() >= min_rows
    if enough:
        effects: list[str] = []
        if k == "numeric":
            _numeric(out, ref_v, cur_v, bins)
            if out.psi is not None and out.psi > t.psi:
                effects.append(f"PSI {out.psi:.3g} > {t.psi:g}")
            if out.wasserstein is not None and out.wasserstein > t.wasserstein:
                effects.append(
                    f"Wasserstein distance {out.wasserstein:.3g} reference standard deviations "
                    f"> {t.wasserstein:g}"
                )
            judge(effects, out.p_value, "Kolmogorov-Smirnov")
        else:
            _categorical(out, ref_v, cur_v)
            if out.jensen_shannon is not None and out.jensen_shannon > t.jensen_shannon:
                effects.append(
                    f"Jensen-Shannon distance {out.jensen_shannon:.3g} > {t.jensen_shannon:g}"
                )
            judge(effects, out.p_value, "chi-squared")
            if out.new_category_share is not None and out.new_category_share > t.new_category_rate:
                reasons.append(
                    f"{out.new_category_share:.1%} of the values are new categories "
                    f"(> {t.new_category_rate:g}): {', '.join(out.new_categories[:5])}"
                )
    out.drifted = bool(reasons)
    out.status = "drift" if reasons else "ok"
    if not enough:
        notes.append(f"distribution not judged: fewer than min_rows={min_rows} non-missing values")
    out.reasons = reasons + notes
    return out


def two_proportion_p(x1: int, n1: int, x2: int, n2: int) -> float:
    """Two-sided p-value of the z-test that ``x1/n1`` and ``x2/n2`` are one proportion.

    >>> round(two_proportion_p(30, 100, 50, 100), 4)
    0.0039
    """
    if n1 == 0 or n2 == 0:
        return 1.0
    pooled = (x1 + x2) / (n1 + n2)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if se == 0:
        return 1.0
    z = abs(x1 / n1 - x2 / n2) / se
    return math.erfc(z / math.sqrt(2))


def _align(ref: pl.Series, cur: pl.Series) -> tuple[pl.Series, pl.Series]:
    """Bring both to one comparable dtype (numbers as Float64, else strings)."""
    if ref.dtype.is_temporal() or cur.dtype.is_temporal():
        if ref.dtype.is_temporal() and cur.dtype.is_temporal():
            return (
                ref.cast(pl.Datetime("us")).to_physical().cast(pl.Float64),
                cur.cast(pl.Datetime("us")).to_physical().cast(pl.Float64),
            )
        return ref.cast(pl.String), cur.cast(pl.String)
    r_num = ref.dtype.is_numeric() and ref.dtype != pl.Boolean
    c_num = cur.dtype.is_numeric() and cur.dtype != pl.Boolean
    if r_num and c_num:
        return ref.cast(pl.Float64), cur.cast(pl.Float64)
    if (r_num or ref.dtype == pl.Null) and (c_num or cur.dtype == pl.Null):
        return ref.cast(pl.Float64), cur.cast(pl.Float64)
    if (ref.dtype == pl.String and c_num) or (cur.dtype == pl.String and r_num):
        # a number column on one side, text on the other (CSV read as text): numbers if they
        # all parse, else text on both sides
        text = ref if ref.dtype == pl.String else cur
        parsed = text.cast(pl.Float64, strict=False)
        if parsed.null_count() == text.null_count():
            return ref.cast(pl.Float64, strict=False), cur.cast(pl.Float64, strict=False)
    return ref.cast(pl.String), cur.cast(pl.String)


def _sorted(s: pl.Series) -> np.ndarray:
    return np.ascontiguousarray(s.sort().to_numpy(), dtype=np.float64)


def _uniques(x: np.ndarray) -> np.ndarray:
    """Distinct values of a sorted array (O(n), no second sort)."""
    keep = np.empty(x.size, dtype=bool)
    keep[:1] = True
    np.not_equal(x[1:], x[:-1], out=keep[1:])
    return x[keep]


def psi(reference_shares: np.ndarray, current_shares: np.ndarray) -> float:
    """Population stability index of two share vectors (empty bins count as ``EPSILON``).

    >>> round(psi(np.array([0.5, 0.5]), np.array([0.25, 0.75])), 4)
    0.2747
    """
    r = np.maximum(reference_shares, EPSILON)
    c = np.maximum(current_shares, EPSILON)
    return float(np.sum((c - r) * np.log(c / r)))


def jensen_shannon(p: np.ndarray, q: np.ndarray) -> float:
    """Jensen-Shannon distance (base 2) between two share vectors: 0 same, 1 disjoint.

    >>> jensen_shannon(np.array([1.0, 0.0]), np.array([0.0, 1.0]))
    1.0
    """
    p = p / p.sum()
    q = q / q.sum()
    m = (p + q) / 2

    def kl(a: np.ndarray) -> float:
        nz = a > 0
        return float(np.sum(a[nz] * np.log2(a[nz] / m[nz])))

    return float(math.sqrt(max(0.0, (kl(p) + kl(q)) / 2)))


def kolmogorov_sf(x: float) -> float:
    """P(K > x) of the Kolmogorov distribution (the asymptotic two-sample KS p-value).

    >>> round(kolmogorov_sf(1.36), 3)
    0.049
    """
    if x <= 0:
        return 1.0
    if x < 0.2:
        return 1.0  # the series converges slowly there and the value is 1 to 1e-20
    total = 0.0
    for k in range(1, 101):
        term = (-1) ** (k - 1) * math.exp(-2.0 * k * k * x * x)
        total += term
        if abs(term) < 1e-16:
            break
    return min(1.0, max(0.0, 2.0 * total))


def chi2_sf(stat: float, dof: int) -> float:
    """P(X > stat) for a chi-squared variable with ``dof`` degrees of freedom.

    The regularised upper incomplete gamma function Q(dof/2, stat/2): a series below
    ``a + 1``, a continued fraction above (Numerical Recipes, 6.2); no scipy import.

    >>> round(chi2_sf(3.841, 1), 3)
    0.05
    """
    if stat <= 0:
        return 1.0
    a, x = dof / 2.0, stat / 2.0
    gln = math.lgamma(a)
    if x < a + 1:
        term = total = 1.0 / a
        ap = a
        for _ in range(1000):
            ap += 1
            term *= x / ap
            total += term
            if abs(term) < abs(total) * 1e-15:
                break
        return max(0.0, 1.0 - total * math.exp(-x + a * math.log(x) - gln))
    tiny = 1e-300
    b = x + 1 - a
    c = 1 / tiny
    d = 1 / b
    h = d
    for i in range(1, 1000):
        an = -i * (i - a)
        b += 2
        d = an * d + b
        d = tiny if abs(d) < tiny else d
        c = b + an / c
        c = tiny if abs(c) < tiny else c
        d = 1 / d
        delta = d * c
        h *= delta
        if abs(delta - 1) < 1e-15:
            break
    return min(1.0, math.exp(-x + a * math.log(x) - gln) * h)


def _numeric(out: FeatureDrift, ref_s: pl.Series, cur_s: pl.Series, bins: int) -> None:
    ref = _sorted(ref_s)
    cur = _sorted(cur_s)
    n, m = ref.size, cur.size
    # PSI over reference-quantile bins: (-inf, e0], (e0, e1], ..., (ek, inf)
    idx = (np.arange(1, bins) * n) // bins - 1  # the k/bins quantile: the (k*n/bins)-th value
    edges = np.unique(ref[np.clip(idx, 0, n - 1)])
    cr = np.diff(np.concatenate(([0], np.searchsorted(ref, edges, side="right"), [n])))
    cc = np.diff(np.concatenate(([0], np.searchsorted(cur, edges, side="right"), [m])))
    ref_shares, cur_shares = cr / n, cc / m
    out.psi = psi(ref_shares, cur_shares)
    # Wasserstein-1 and KS from the two empirical CDFs on the union of distinct values
    grid = np.union1d(_uniques(ref), _uniques(cur))
    gap = np.abs(
        np.searchsorted(ref, grid, side="right") / n - np.searchsorted(cur, grid, side="right") / m
    )
    w1 = float(np.sum(gap[:-1] * np.diff(grid)))
    std = float(ref.std())
    scale = std if std > 0 and math.isfinite(std) else 1.0
    out.wasserstein = w1 / scale
    ks = float(gap.max()) if gap.size else 0.0
    out.test = "ks"
    out.statistic = ks
    en = math.sqrt(n * m / (n + m))
    out.p_value = kolmogorov_sf(ks * en)
    labels = [f"≤ {_num(edges[0])}"] if edges.size else []
    labels += [f"({_num(a)}, {_num(b)}]" for a, b in itertools.pairwise(edges)]
    labels += [f"> {_num(edges[-1])}"] if edges.size else ["all"]
    out.bins = labels
    out.reference_shares = [float(v) for v in ref_shares]
    out.current_shares = [float(v) for v in cur_shares]


def _num(v: float) -> str:
    return f"{v:.4g}"


def _counts(s: pl.Series) -> dict[str, int]:
    vc = s.value_counts()
    return dict(zip(vc.get_column(s.name).to_list(), vc.get_column("count").to_list(), strict=True))


def _categorical(out: FeatureDrift, ref_s: pl.Series, cur_s: pl.Series) -> None:
    rc, cc = _counts(ref_s), _counts(cur_s)
    cats = sorted(rc, key=lambda c: (-rc[c], str(c)))
    new = sorted((c for c in cc if c not in rc), key=lambda c: (-cc[c], str(c)))
    order = cats + new
    r = np.array([rc.get(c, 0) for c in order], dtype=np.float64)
    c = np.array([cc.get(k, 0) for k in order], dtype=np.float64)
    rs, cs = r / r.sum(), c / c.sum()
    out.jensen_shannon = jensen_shannon(rs, cs)
    out.psi = psi(rs, cs)
    out.new_category_share = float(sum(cc[k] for k in new) / c.sum())
    out.new_categories = [str(k) for k in new[:20]]
    out.test = "chi2"
    if len(order) >= 2:
        table = np.vstack([r, c])
        expected = table.sum(axis=1, keepdims=True) * table.sum(axis=0) / table.sum()
        stat = float(np.sum((table - expected) ** 2 / expected))
        out.statistic, out.p_value = stat, chi2_sf(stat, len(order) - 1)
    else:
        out.statistic, out.p_value = 0.0, 1.0
    shown = order[:MAX_SHOWN]
    out.bins = [str(k) for k in shown]
    out.reference_shares = [float(v) for v in rs[: len(shown)]]
    out.current_shares = [float(v) for v in cs[: len(shown)]]
    if len(order) > MAX_SHOWN:
        out.bins.append("(other)")
        out.reference_shares.append(float(rs[MAX_SHOWN:].sum()))
        out.current_shares.append(float(cs[MAX_SHOWN:].sum()))
