"""Profile a validated table: per-column statistics, quality, correlations, target relationship.

The stage is :func:`profile`. It is a plain function of a typed table (a
:class:`~modelyard.data.table.Table` of Parquet parts, or a ``polars.DataFrame``) and the
:class:`~modelyard.data.contract.DataContract`; its result, :class:`Profile`, is a pydantic
model and *is* the JSON output (``Profile.model_dump_json()``); the HTML report renders it.

How it computes (part by part, mergeable): a table is profiled one part at a time, one task
per part on the ``executor`` (inline for a table of one part), in one pass. Each part's
task summarises each column into mergeable statistics (:mod:`modelyard.data.sketches`):
counts, moments (mean, std, skew, kurtosis: Pébay's parallel update), min/max, a quantile
sketch, a distinct-count sketch, value counts, and 64-bit row hashes for duplicates; one wide
``select`` plus numpy per column, no per-row Python. The same task counts the histograms, on
edges fixed by the extremes the table's part footers record
(:meth:`~modelyard.data.table.Table.extremes`), and the co-moments of the pairwise-complete
Pearson correlations. The driver merges the parts' results in part order, so the result never
depends on where or in which order the parts ran (serial, a local pool, Dask: identical). A
second pass over the parts counts the histograms only when the footers do not record the
extremes (or record other ones than the summaries find), and the co-moments only when there
are more numeric columns than ``profile.correlation_columns``. Outliers are counted against
the quartiles by the quantile sketch. Peak memory is a few parts, whatever the table's size.

What is exact: everything for a table of one part, and for a larger one every count, share,
min/max, moment, histogram and correlation. Estimated beyond 100,000 values per column (and
marked in :attr:`ColumnProfile.estimated` with the sketch's error bound): quantiles (and the
IQR), outlier counts, distinct counts (HyperLogLog) and, beyond 20,000 distinct values, the
top value counts (Misra-Gries); duplicate rows beyond 50 million rows.

The target relationship and the leakage checks group by every level of a column, which has
no bounded mergeable form: for a table of several parts they use a seeded sample of at most
:data:`ASSOCIATION_ROWS` rows (every row of a smaller table, or of a table of one part), drawn
by row number so that a table gives the same sample in one part or many. ``ProfileSection.sample`` shrinks that sample and moves the correlation
matrix onto it too; every other statistic is computed on all rows.

Conventions (all match pandas): ``NaN`` in a float column counts as missing (as pandas does);
``std`` has ``ddof=1``; quantiles interpolate linearly; ``skew`` is the adjusted
Fisher-Pearson coefficient (``bias=False``); ``distinct`` excludes missing values; duplicate
rows count the rows that repeat an earlier row (``DataFrame.duplicated().sum()``).
Histograms count finite values only (``±inf`` are counted in ``infinite``).

Quality score (:data:`QUALITY_FORMULA`): per column
``score = completeness × validity × uniqueness`` where ``completeness = 1 − missing share``,
``validity`` = share of present values that pass the contract (min/max range, categories,
finite for floats; 1 when the contract sets no rule) and ``uniqueness = distinct / count`` only
for columns the contract marks ``unique`` or role ``id`` (1 otherwise). The product reads as
"the share of cells that are good". The dataset score is the mean column score
× (1 − duplicate row share).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from modelyard.config.schema import ProfileSection
from modelyard.data.contract import ColumnContract, ColumnRole, ColumnType, DataContract, Task
from modelyard.data.sketches import (
    EXACT_DISTINCT,
    EXACT_QUANTILE_VALUES,
    EXACT_TOP,
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

if TYPE_CHECKING:
    import numpy as np
    import polars as pl

    from modelyard.compute import Executor
    from modelyard.data.table import Extremes, Table
else:
    from modelyard.data.lazy import numpy as np
    from modelyard.data.lazy import polars as pl

PROFILE_VERSION = 1

QUALITY_FORMULA = (
    "column score = completeness × validity × uniqueness; completeness = 1 − missing share; "
    "validity = share of present values passing the contract (range, categories, finite); "
    "uniqueness = distinct / count for unique or id columns, else 1. "
    "Dataset score = mean column score × (1 − duplicate row share)."
)

QUANTILES: tuple[tuple[str, float], ...] = (
    ("p1", 0.01),
    ("p5", 0.05),
    ("p25", 0.25),
    ("p50", 0.50),
    ("p75", 0.75),
    ("p95", 0.95),
    ("p99", 0.99),
)

# Thresholds of the alerts (documented in the report).
HIGH_MISSING_SHARE = 0.2
HIGH_MISSING_WARN = 0.5
HIGH_CARDINALITY = 50
HIGH_CARDINALITY_SHARE = 0.5
SKEW_LIMIT = 2.0
OUTLIER_SHARE = 0.05
IMBALANCE_INFO = 3.0
IMBALANCE_WARN = 10.0
DUPLICATE_WARN = 0.1
LEAKAGE_SCORE = 0.99
LEAKAGE_PAIR_R2 = 0.999
LEAKAGE_PAIR_CANDIDATES = 8
LUMP_LEVELS = 50  # categories beyond the 50 most frequent are lumped together for associations
CLASS_TARGET_MAX_LEVELS = 50

Severity = Literal["critical", "warning", "info"]
AlertKind = Literal[
    "leakage",
    "constant",
    "high_missing",
    "high_cardinality",
    "unique",
    "duplicates",
    "skewed",
    "outliers",
    "infinite",
    "class_imbalance",
    "unreadable",
    "inferred",
]
Kind = Literal["numeric", "categorical", "temporal"]
AssocMethod = Literal["pearson_abs", "correlation_ratio", "cramers_v"]
_SEVERITY_ORDER = {"critical": 0, "warning": 1, "info": 2}


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)


class Quantiles(_Model):
    """Quantiles with linear interpolation (pandas' default)."""

    p1: float | None = None
    p5: float | None = None
    p25: float | None = None
    p50: float | None = None
    p75: float | None = None
    p95: float | None = None
    p99: float | None = None


class Histogram(_Model):
    """Equal-width bins over the finite values; ``len(edges) == len(counts) + 1``."""

    edges: list[float]
    """Bin edges (for dates: days since 1970-01-01; for datetimes: the column's time unit)."""
    counts: list[int]
    labels: list[str] | None = None
    """ISO labels of the edges of a date/datetime histogram."""


class Estimate(_Model):
    """How an estimated number was computed, and its error bound (exact numbers have none)."""

    method: str
    """The sketch, e.g. ``HyperLogLog, 16384 registers``."""
    bound: float
    unit: Literal["relative", "rank", "count"]
    """``relative``: relative standard error of a count (HyperLogLog); ``rank``: normalised
    rank error not exceeded with 99 % confidence (a quantile sketch); ``count``: how much a
    count can be low at most (Misra-Gries)."""

    def describe(self) -> str:
        """``HyperLogLog, 16384 registers, ±0.81%`` and the like."""
        if self.unit == "relative":
            return f"{self.method}, ±{self.bound:.2%} (standard error)"
        if self.unit == "rank":
            return f"{self.method}, ±{self.bound:.3%} rank error (99% confidence)"
        return f"{self.method}, counts low by at most {self.bound:,.0f}"


class NumericStats(_Model):
    min: float | None = None
    max: float | None = None
    mean: float | None = None
    std: float | None = None
    """Standard deviation, ddof=1."""
    skew: float | None = None
    """Adjusted Fisher-Pearson skewness (pandas' ``skew``)."""
    kurtosis: float | None = None
    """Adjusted excess kurtosis (pandas' ``kurt``)."""
    quantiles: Quantiles = Field(default_factory=Quantiles)
    iqr: float | None = None
    zeros: int = 0
    negatives: int = 0
    infinite: int = 0
    outliers: int = 0
    """Values outside [p25 − 1.5·IQR, p75 + 1.5·IQR]; 0 for a column of two values (a flag,
    whose rarer value is no outlier)."""
    histogram: Histogram | None = None


class TopValue(_Model):
    value: str
    count: int
    share: float
    """Share of the present (non-missing) values."""


class CategoricalStats(_Model):
    top: list[TopValue] = Field(default_factory=list)
    other_count: int = 0
    """Present values outside the top list."""


class TemporalStats(_Model):
    min: str | None = None
    max: str | None = None
    histogram: Histogram | None = None


class ColumnQuality(_Model):
    completeness: float
    validity: float
    uniqueness: float | None = None
    score: float
    invalid: int = 0
    """Present values that break the contract."""


class ColumnProfile(_Model):
    name: str
    type: ColumnType
    role: ColumnRole
    kind: Kind
    count: int
    """Present (non-missing) values."""
    missing: int
    missing_share: float
    distinct: int
    distinct_share: float
    """distinct / count."""
    constant: bool
    numeric: NumericStats | None = None
    categorical: CategoricalStats | None = None
    temporal: TemporalStats | None = None
    quality: ColumnQuality
    target_association: float | None = None
    """Association with the target in [0, 1] (see ``TargetAssociation.method``)."""
    estimated: dict[str, Estimate] = Field(default_factory=dict)
    """The numbers that are estimates (keys ``distinct``, ``quantiles`` -- which also
    places the IQR and the outlier fences -- and ``top``), with their error bounds. Empty
    when every number is exact, as it is for a table of one part (``data.batch_rows``) or of
    up to 100,000 values per column."""


class DatasetStats(_Model):
    rows: int
    columns: int
    cells: int
    missing_cells: int
    missing_cells_share: float
    duplicate_rows: int
    duplicate_share: float
    memory_bytes: int
    quality_score: float
    estimated: dict[str, Estimate] = Field(default_factory=dict)
    """``duplicate_rows`` when estimated (beyond 50 million rows), with its error bound."""


class Correlations(_Model):
    method: Literal["pearson"] = "pearson"
    columns: list[str]
    matrix: list[list[float | None]]
    """Pairwise-complete Pearson r; ``None`` where undefined."""
    rows_used: int


class TargetAssociation(_Model):
    column: str
    role: ColumnRole
    score: float
    """In [0, 1], comparable across columns (higher = stronger)."""
    method: AssocMethod


class ClassBalance(_Model):
    classes: list[TopValue]
    """Every class, most frequent first."""
    majority: str
    minority: str
    minority_share: float
    imbalance_ratio: float
    """Count of the majority class / count of the minority class."""


class Alert(_Model):
    kind: AlertKind
    columns: list[str]
    message: str
    severity: Severity


class Profile(_Model):
    """The profile of a table: the JSON output of the profile step."""

    version: int = PROFILE_VERSION
    dataset: DatasetStats
    columns: list[ColumnProfile]
    target: str | None = None
    task: Task | None = None
    correlations: Correlations | None = None
    target_associations: list[TargetAssociation] = Field(default_factory=list)
    """Ranked, strongest first."""
    class_balance: ClassBalance | None = None
    alerts: list[Alert] = Field(default_factory=list)
    """Most severe first; leakage at the top."""
    sample_rows: int | None = None
    """Rows of the seeded sample used by the target relationship and the leakage checks (and
    the correlations when ``profile.sample`` is set), when not every row was used."""
    quality_formula: str = QUALITY_FORMULA

    def column(self, name: str) -> ColumnProfile:
        for col in self.columns:
            if col.name == name:
                return col
        raise KeyError(name)


# --------------------------------------------------------------------------- helpers


def _col(name: str) -> pl.Expr:
    """The column called ``name``, literally (``pl.col`` reads ``*`` and ``^...$`` as patterns)."""
    import polars.selectors as cs

    return cs.by_name(name).as_expr()


def _kind(dtype: pl.DataType) -> Kind:
    if dtype == pl.Boolean:
        return "categorical"
    if dtype.is_numeric():
        return "numeric"
    if dtype in (pl.Date, pl.Datetime):
        return "temporal"
    return "categorical"


def type_of(dtype: pl.DataType) -> ColumnType:
    """The contract type of a polars dtype (used when a column is not in the contract)."""
    if dtype == pl.Boolean:
        return "bool"
    if dtype.is_integer():
        return "int"
    if dtype.is_float() or dtype.is_decimal():
        return "float"
    if dtype == pl.Date:
        return "date"
    if dtype == pl.Datetime:
        return "datetime"
    return "str"


def _num(v: object) -> float | None:
    if v is None:
        return None
    if isinstance(v, bool):
        return float(v)
    if isinstance(v, int | float):
        return float(v)
    return None


def _int(v: object) -> int:
    return int(v) if isinstance(v, int | float) and not isinstance(v, bool) else 0


def _share(a: int, b: int) -> float:
    return a / b if b else 0.0


def _fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.4g}"


def _bound(value: float | str | None, kind: Kind, dtype: pl.DataType) -> pl.Expr | None:
    """A contract bound as a literal comparable with the column."""
    if value is None:
        return None
    if kind == "numeric":
        try:
            return pl.lit(float(value))
        except ValueError:
            return None
    if kind == "temporal":
        try:
            parsed = dt.datetime.fromisoformat(str(value))
        except ValueError:
            return None
        if dtype == pl.Date:
            return pl.lit(parsed.date())
        return pl.lit(parsed).cast(dtype)
    return None


def _invalid_expr(x: pl.Expr, cc: ColumnContract | None, kind: Kind, dtype: pl.DataType) -> pl.Expr:
    """Count of present values that break the contract (range, categories, finiteness)."""
    bad = pl.lit(False)
    if kind == "numeric" and dtype.is_float():
        bad = bad | x.is_infinite()
    if cc is not None:
        lo = _bound(cc.min, kind, dtype)
        hi = _bound(cc.max, kind, dtype)
        if lo is not None:
            bad = bad | (x < lo)
        if hi is not None:
            bad = bad | (x > hi)
        if cc.categories is not None and kind == "categorical" and dtype != pl.Boolean:
            bad = bad | ~x.cast(pl.String).is_in(cc.categories)
    return (bad & x.is_not_null()).sum()


# --------------------------------------------------------------------------- the stage


ASSOCIATION_ROWS = 1_000_000
"""Rows of the seeded sample the target relationship and the leakage checks use for a table
of several parts that is larger (they group by every level of a column: no bounded mergeable
form). A table of one part is in memory already: they use all of its rows."""


@dataclass
class _Plan:
    """What a part's summary needs to know (small, sent with each task)."""

    names: list[str]
    kinds: dict[str, Kind]
    specs: dict[str, ColumnContract | None]
    counted: frozenset[str]
    """Columns whose value counts are kept (categorical columns and the target)."""
    seed: int
    exact: int = 0
    """Values (per column) below which every sketch stays exact: the sketches' defaults,
    or the whole table when it is one part (summarised in memory: exact, as it always was)."""
    binning: _Binning | None = None
    """Histograms and co-moments to count in the first pass too: laid out on the extremes
    the table's part footers record, so that a second pass is needed only when they were
    not recorded (or were wrong: :func:`profile` checks them against the summary)."""


@dataclass
class _ColumnState:
    """The mergeable summary of one column over some parts."""

    count: int = 0
    missing: int = 0
    invalid: int = 0
    zeros: int = 0
    negatives: int = 0
    infinite: int = 0
    lo: float | None = None
    """Minimum (numeric: of all values, ±inf included)."""
    hi: float | None = None
    flo: float | None = None
    """Minimum of the finite values (numeric) or of the physical values (temporal)."""
    fhi: float | None = None
    moments: Moments | None = None
    quantiles: QuantileSketch | None = None
    distinct: DistinctSketch | None = None
    top: TopCounts | None = None

    def merge(self, o: _ColumnState) -> _ColumnState:
        def pick(a: Any, b: Any, how: Any) -> Any:
            return b if a is None else a if b is None else how(a, b)

        return _ColumnState(
            self.count + o.count,
            self.missing + o.missing,
            self.invalid + o.invalid,
            self.zeros + o.zeros,
            self.negatives + o.negatives,
            self.infinite + o.infinite,
            pick(self.lo, o.lo, min),
            pick(self.hi, o.hi, max),
            pick(self.flo, o.flo, min),
            pick(self.fhi, o.fhi, max),
            pick(self.moments, o.moments, Moments.merge),
            pick(self.quantiles, o.quantiles, QuantileSketch.merge),
            pick(self.distinct, o.distinct, DistinctSketch.merge),
            pick(self.top, o.top, TopCounts.merge),
        )


@dataclass
class _Summary:
    """The first pass over some parts: column states, rows, duplicates, the sampled rows."""

    rows: int
    memory: int
    columns: list[_ColumnState]
    rowset: RowSet
    sample: pl.DataFrame
    binned: _Binned | None = None
    """The plan's first-pass histograms and co-moments (when it asked for them)."""

    def merge(self, o: _Summary) -> _Summary:
        return _Summary(
            self.rows + o.rows,
            self.memory + o.memory,
            [a.merge(b) for a, b in zip(self.columns, o.columns, strict=True)],
            self.rowset.merge(o.rowset),
            pl.concat([self.sample, o.sample], how="vertical"),
            None if self.binned is None or o.binned is None else self.binned.merge(o.binned),
        )


@dataclass(frozen=True)
class _Layout:
    """Histogram bins of one column: fixed edges on its finite extremes."""

    lo: float
    hi: float
    bins: int
    integral: bool


def _layout(lo: float, hi: float, kind: Kind, dtype: pl.DataType, bins: int) -> _Layout:
    """The bins of a column whose finite values span ``[lo, hi]``: one per value for an
    integer or temporal column of at most ``bins`` values, else ``bins`` equal widths."""
    integral = (kind == "temporal" or dtype.is_integer()) and hi - lo + 1 <= bins
    nb = int(hi - lo) + 1 if integral else bins if hi > lo else 1
    return _Layout(lo, hi, nb, integral)


@dataclass
class _Binning:
    """Histograms on fixed edges and co-moments (counted in the first pass when the edges
    are known before it, else in a second)."""

    layouts: dict[str, _Layout]
    correlate: list[str]
    kinds: dict[str, Kind]


@dataclass
class _Binned:
    counts: dict[str, np.ndarray]
    comoments: CoMoments | None

    def merge(self, o: _Binned) -> _Binned:
        co = self.comoments
        if co is not None and o.comoments is not None:
            co = co.merge(o.comoments)
        return _Binned({k: v + o.counts[k] for k, v in self.counts.items()}, co)


def _normalised(df: pl.DataFrame) -> pl.DataFrame:
    """NaN counts as missing (as in pandas): floats normalised once."""
    floats = [n for n, d in df.schema.items() if d.is_float()]
    return df.with_columns(_col(f).fill_nan(None) for f in floats) if floats else df


def _summarise(df: pl.DataFrame, plan: _Plan, take: np.ndarray | None) -> _Summary:
    """The first pass over one part (vectorised: one wide select, then numpy per column)."""
    work = _normalised(df)
    schema = work.schema
    exprs: list[pl.Expr] = []
    for i, name in enumerate(plan.names):
        x = pl.nth(i)  # by position: a column may be called "*" or "^.*$"
        kind = plan.kinds[name]
        dtype = schema[name]
        k = f"{i}|"
        exprs += [
            x.count().alias(k + "count"),
            x.null_count().alias(k + "missing"),
            _invalid_expr(x, plan.specs[name], kind, dtype).alias(k + "invalid"),
        ]
        if kind == "temporal":  # (a numeric column's extremes come from its sorted values)
            p = x.to_physical().cast(pl.Float64)
            exprs += [p.min().alias(k + "fmin"), p.max().alias(k + "fmax")]
    stats: dict[str, object] = work.select(exprs).row(0, named=True) if exprs else {}
    columns: list[_ColumnState] = []
    finite: dict[str, np.ndarray] = {}  # a numeric column's finite values, sorted
    for i, name in enumerate(plan.names):
        kind = plan.kinds[name]

        def s(key: str, i: int = i) -> object:
            return stats.get(f"{i}|{key}")

        # renamed: a Series method runs ``pl.col(its name)``, and a name may be a pattern
        series = work.get_column(name).rename("v")
        state = _ColumnState(
            count=_int(s("count")), missing=_int(s("missing")), invalid=_int(s("invalid"))
        )
        ordered: np.ndarray | None = None  # a numeric column's values, sorted
        if kind == "numeric":
            values = series.drop_nulls().cast(pl.Float64).to_numpy()
            state.moments = Moments.from_values(values)
            ordered = sorted_floats(values)
            finite[name] = _read_sorted(ordered, state)
            state.quantiles = QuantileSketch.from_values(
                ordered,
                seed=plan.seed + i,
                exact=max(EXACT_QUANTILE_VALUES, plan.exact),
                presorted=True,
            )
        elif kind == "temporal":
            state.flo, state.fhi = _num(s("fmin")), _num(s("fmax"))
        if name in plan.counted:
            counts = series.drop_nulls().value_counts(name="n").cast({"n": pl.Int64})
            state.top = TopCounts.from_counts(counts, exact=max(EXACT_TOP, plan.exact))
            state.distinct = DistinctSketch.from_hashes(
                value_hashes(counts.get_column("v")), exact=max(EXACT_DISTINCT, plan.exact)
            )
        else:
            hashes = (  # a float column's values are sorted already: the distinct ones show
                sorted_value_hashes(ordered)
                if ordered is not None and schema[name] == pl.Float64
                else value_hashes(series)
            )
            state.distinct = DistinctSketch.from_hashes(
                hashes, exact=max(EXACT_DISTINCT, plan.exact)
            )
        columns.append(state)
    rowset = RowSet.from_hashes(row_hashes(df)) if df.width and df.height else RowSet()
    sample = work if take is None else work[take]
    binned = _bin(work, plan.binning, finite) if plan.binning is not None else None
    return _Summary(df.height, int(df.estimated_size()), columns, rowset, sample, binned)


def _read_sorted(ordered: np.ndarray, state: _ColumnState) -> np.ndarray:
    """Set a numeric column's extremes and its counts of zeros, negatives and infinities from
    its present values, sorted (``ordered``); return its finite values (a slice of them)."""
    n = ordered.size
    lo = int(np.searchsorted(ordered, -np.inf, side="right"))  # past the -inf
    hi = int(np.searchsorted(ordered, np.inf, side="left"))  # up to the +inf
    below = int(np.searchsorted(ordered, 0.0, side="left"))
    upto = int(np.searchsorted(ordered, 0.0, side="right"))  # -0.0 == 0.0: both are zeros
    state.zeros, state.negatives, state.infinite = upto - below, below, lo + n - hi
    if n:
        state.lo, state.hi = float(ordered[0]), float(ordered[-1])
    if hi > lo:
        state.flo, state.fhi = float(ordered[lo]), float(ordered[hi - 1])
    return ordered[lo:hi]


def _bin_index(v: np.ndarray, lay: _Layout) -> np.ndarray:
    """The bin of each finite value of ``v`` (float64) on ``lay``. It never decreases as the
    value grows (each step is monotone), which :func:`_histogram` relies on for sorted values."""
    if lay.integral:
        idx = np.rint(v - lay.lo)
    elif lay.bins > 1:  # (then hi > lo)
        # A value far outside [lo, hi] (only where the footers' extremes were wrong) may
        # overflow to ±inf: clipped to the first or last bin, as it would be anyway.
        width = lay.hi - lay.lo
        with np.errstate(over="ignore"):
            if math.isfinite(width):
                idx = np.floor((v - lay.lo) / width * lay.bins)
            else:  # hi - lo overflows for values near ±1.8e308: in halves (halving is exact)
                idx = np.floor((v * 0.5 - lay.lo * 0.5) / (lay.hi * 0.5 - lay.lo * 0.5) * lay.bins)
    else:
        idx = v * 0.0
    return np.clip(idx, 0, lay.bins - 1).astype(np.int64)


def _histogram(v: np.ndarray, lay: _Layout, *, ordered: bool = False) -> np.ndarray:
    """How many of the finite values ``v`` fall in each bin of ``lay``. When they are sorted
    (``ordered``) the bins' boundaries are found by bisection, all bins at once: the same
    counts as binning every value, in a few dozen evaluations instead of one per value."""
    n = v.size
    if not ordered or n == 0:
        return np.bincount(_bin_index(v, lay), minlength=lay.bins).astype(np.int64)
    wanted = np.arange(1, lay.bins)  # the first position of each bin after the first
    lo = np.zeros(wanted.size, np.int64)
    hi = np.full(wanted.size, n, np.int64)
    while (searching := lo < hi).any():
        mid = (lo + hi) // 2  # below n where still searching
        past = _bin_index(v[np.minimum(mid, n - 1)], lay) >= wanted
        hi = np.where(searching & past, mid, hi)
        lo = np.where(searching & ~past, mid + 1, lo)
    return np.diff(np.concatenate(([0], lo, [n]))).astype(np.int64)


def _finite_physical(work: pl.DataFrame, name: str, kind: Kind) -> np.ndarray:
    """A numeric or temporal column's finite values (temporal: physical), as float64."""
    series = work.get_column(name)
    if kind == "temporal":
        series = series.to_physical()
    v = series.cast(pl.Float64).to_numpy()
    finite: np.ndarray = v[np.isfinite(v)]
    return finite


def _bin(
    work: pl.DataFrame, plan: _Binning, finite: dict[str, np.ndarray] | None = None
) -> _Binned:
    """Histogram bin counts and co-moments of one part (``finite``: numeric columns' finite
    values, sorted, when the caller has them)."""
    position = {name: i for i, name in enumerate(work.columns)}
    counts: dict[str, np.ndarray] = {}
    for name, lay in plan.layouts.items():
        if finite is not None and name in finite:
            counts[name] = _histogram(finite[name], lay, ordered=True)
        else:
            counts[name] = _histogram(_finite_physical(work, name, plan.kinds[name]), lay)
    comoments = None
    if plan.correlate:
        matrix = work.select(
            _numeric_value(c, plan.kinds[c], position[c]).alias(str(j))
            for j, c in enumerate(plan.correlate)
        )
        comoments = CoMoments.from_matrix(matrix.to_numpy(order="fortran"))
    return _Binned(counts, comoments)


def summarise_part(path: str, plan: _Plan, take: np.ndarray | None) -> _Summary:
    """A task: the first-pass summary of the part file at ``path``."""
    return _summarise(pl.read_parquet(path), plan, take)


def bin_part(path: str, plan: _Binning) -> _Binned:
    """A task: the second-pass counts of the part file at ``path`` (see :func:`profile`)."""
    return _bin(_normalised(pl.read_parquet(path)), plan)


def _over_parts(
    executor: Executor | None,
    fn: Callable[..., Any],
    parts: list[Path],
    args: list[tuple[Any, ...]],
) -> Any:
    """``fn(part, *args)`` for every part, merged in part order (so the result never depends
    on where or when a part ran); at most ``workers + 1`` parts in flight."""
    from modelyard.compute import map_in_order

    calls = ((str(part), *extra) for part, extra in zip(parts, args, strict=True))
    merged = None
    for out in map_in_order(executor, fn, calls):
        merged = out if merged is None else merged.merge(out)
    return merged


def _first_pass_binning(
    found: Extremes | None,
    schema: pl.Schema,
    kinds: dict[str, Kind],
    options: ProfileSection,
    *,
    sampled: bool,
) -> _Binning | None:
    """What the first pass can count besides the summaries: histograms laid out on the
    extremes the table records (``found``), and the co-moments of every numeric column when
    they are all candidates of the correlation matrix (at most ``correlation_columns``)."""
    layouts: dict[str, _Layout] = {}
    for name, kind in kinds.items():
        pair = found.get(name) if found is not None and kind != "categorical" else None
        if pair is not None:
            layouts[name] = _layout(pair[0], pair[1], kind, schema[name], options.bins)
    numeric = [n for n, k in kinds.items() if k == "numeric"]
    fits = not sampled and 2 <= len(numeric) <= options.correlation_columns
    correlate = numeric if fits else []
    return _Binning(layouts, correlate, kinds) if layouts or correlate else None


def _binned_in_first_pass(
    early: _Binning | None,
    binned: _Binned | None,
    layouts: dict[str, _Layout],
    correlate: list[str],
) -> tuple[dict[str, np.ndarray] | None, CoMoments | None]:
    """The histogram counts and co-moments the first pass counted that are the ones wanted
    (the counts only when every layout it used is the one the summary gives)."""
    if early is None or binned is None:
        return None, None
    right = all(early.layouts.get(name) == lay for name, lay in layouts.items())
    counts = {name: binned.counts[name] for name in layouts} if right else None
    comoments = None
    if correlate and binned.comoments is not None and set(correlate) <= set(early.correlate):
        comoments = binned.comoments.subset([early.correlate.index(n) for n in correlate])
    return counts, comoments


def _sample_index(rows: int, want: int | None, seed: int) -> np.ndarray | None:
    """Sorted row numbers of the seeded sample, or ``None`` for every row."""
    if want is None or want >= rows:
        return None
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(rows, size=want, replace=False))


def profile(
    data: Table | pl.DataFrame,
    contract: DataContract,
    options: ProfileSection,
    *,
    seed: int = 0,
    executor: Executor | None = None,
) -> Profile:
    """Profile ``data`` (validated and typed per ``contract``); see the module docstring.

    ``data`` is a :class:`~modelyard.data.table.Table` (profiled part by part, one task per
    part on ``executor``; inline when it has one part or no executor is given) or an
    in-memory ``DataFrame`` (one part).
    """
    frame: pl.DataFrame | None = None
    parts: list[Path] = []
    if isinstance(data, pl.DataFrame):
        frame = data
        schema = data.schema
        part_rows = [data.height]
    else:
        parts = data.parts()
        if len(parts) == 1:
            frame = pl.read_parquet(parts[0])
            schema = frame.schema
            part_rows = [frame.height]
        else:
            schema = data.schema
            part_rows = data.part_rows()
    names = list(schema.names())
    rows = sum(part_rows)
    in_contract = {c.name: c for c in contract.columns}
    specs: dict[str, ColumnContract | None] = {name: in_contract.get(name) for name in names}
    kinds = {n: _kind(schema[n]) for n in names}
    counted = frozenset(n for n in names if kinds[n] == "categorical" or n == contract.target)
    # The seeded sample of the target relationship (and of the correlations when
    # ``profile.sample`` is set): every row unless the table is large.
    sampled = options.sample is not None and options.sample < rows
    early = None
    if frame is None:  # several parts: their footers may record the extremes
        assert not isinstance(data, pl.DataFrame)
        early = _first_pass_binning(data.extremes(), schema, kinds, options, sampled=sampled)
    plan = _Plan(names, kinds, specs, counted, seed, rows if frame is not None else 0, early)
    want = options.sample if sampled else None if frame is not None else ASSOCIATION_ROWS
    index = _sample_index(rows, want, seed)

    # ---- pass 1: every column's mergeable summary, one part at a time.
    work: pl.DataFrame | None = None
    if frame is not None:
        summary = _summarise(frame, plan, index)
        work = summary.sample if index is None else None
    else:
        starts = np.cumsum([0, *part_rows])
        takes = [
            (
                None
                if index is None
                else index[(index >= starts[j]) & (index < starts[j + 1])] - starts[j],
            )
            for j in range(len(parts))
        ]
        summary = _over_parts(executor, summarise_part, parts, [(plan, *t) for t in takes])
    sample = summary.sample
    if work is None and frame is not None:
        work = _normalised(frame)

    # ---- per-column profiles.
    columns: list[ColumnProfile] = []
    for i, name in enumerate(names):
        st = summary.columns[i]
        spec = specs[name]
        kind = kinds[name]
        dtype = schema[name]
        assert st.distinct is not None
        count, missing, invalid = st.count, st.missing, st.invalid
        estimated: dict[str, Estimate] = {}
        distinct = st.distinct.count()
        if st.top is not None and st.top.is_exact:
            distinct = st.top.counts.height
        elif not st.distinct.is_exact:
            distinct = min(distinct, count)
            estimated["distinct"] = Estimate(
                method=f"HyperLogLog, {st.distinct.registers.size} registers",
                bound=st.distinct.error(),
                unit="relative",
            )
        ctype: ColumnType = spec.type if spec is not None else type_of(dtype)
        role: ColumnRole = spec.role if spec is not None else "feature"
        if contract.target == name:
            role = "target"
        completeness = 1.0 - _share(missing, rows) if rows else 1.0
        validity = 1.0 - _share(invalid, count) if count else 1.0
        uniqueness = (
            _share(distinct, count) if count and ((spec and spec.unique) or role == "id") else None
        )
        score = completeness * validity * (uniqueness if uniqueness is not None else 1.0)
        col = ColumnProfile(
            name=name,
            type=ctype,
            role=role,
            kind=kind,
            count=count,
            missing=missing,
            missing_share=_share(missing, rows),
            distinct=distinct,
            distinct_share=_share(distinct, count),
            constant=distinct <= 1,
            quality=ColumnQuality(
                completeness=completeness,
                validity=validity,
                uniqueness=uniqueness,
                score=score,
                invalid=invalid,
            ),
        )
        if kind == "numeric":
            assert st.quantiles is not None and st.moments is not None
            values = st.quantiles.quantiles([q for _, q in QUANTILES])
            q = Quantiles(**{qn: v for (qn, _), v in zip(QUANTILES, values, strict=True)})
            if not st.quantiles.is_exact:
                estimated["quantiles"] = Estimate(
                    method=f"KLL sketch, k={st.quantiles.k}",
                    bound=st.quantiles.rank_error(),
                    unit="rank",
                )
            spread = q.p75 - q.p25 if q.p75 is not None and q.p25 is not None else None
            outliers = 0
            if spread is not None and math.isfinite(spread) and distinct > 2:  # a 0/1 flag:
                assert q.p25 is not None and q.p75 is not None  # its rarer value is no outlier
                fences = (q.p25 - 1.5 * spread, q.p75 + 1.5 * spread)
                outliers = st.quantiles.outside(*fences)
                if not st.quantiles.is_exact:
                    estimated["outliers"] = Estimate(
                        method=f"KLL sketch, k={st.quantiles.k}, beyond the estimated fences",
                        bound=min(1.0, 2 * st.quantiles.rank_error()),
                        unit="rank",
                    )
            m = st.moments
            col.numeric = NumericStats(
                min=st.lo,
                max=st.hi,
                mean=m.mean if m.n else None,
                std=m.std(),
                skew=m.skew(),
                kurtosis=m.kurtosis(),
                quantiles=q,
                iqr=spread,
                outliers=outliers,
                zeros=st.zeros,
                negatives=st.negatives,
                infinite=st.infinite,
            )
        elif kind == "temporal":
            col.temporal = TemporalStats(
                min=_temporal_labels([st.flo], dtype)[0] if st.flo is not None else None,
                max=_temporal_labels([st.fhi], dtype)[0] if st.fhi is not None else None,
            )
        else:
            assert st.top is not None
            fetch = max(options.top_values, LUMP_LEVELS)
            items = st.top.top(fetch).rows()
            top = [
                TopValue(value=_label(v), count=int(n), share=_share(int(n), count))
                for v, n in items[: options.top_values]
            ]
            col.categorical = CategoricalStats(
                top=top, other_count=count - sum(t.count for t in top)
            )
            if not st.top.is_exact:
                estimated["top"] = Estimate(
                    method=f"Misra-Gries summary, {st.top.capacity} counters",
                    bound=float(st.top.error),
                    unit="count",
                )
        col.estimated = estimated
        columns.append(col)

    missing_cells = sum(c.missing for c in columns)
    cells = rows * len(names)
    duplicates = summary.rowset.duplicates()
    dup_share = _share(duplicates, rows)
    mean_score = sum(c.quality.score for c in columns) / len(columns) if columns else 1.0
    dataset = DatasetStats(
        rows=rows,
        columns=len(names),
        cells=cells,
        missing_cells=missing_cells,
        missing_cells_share=_share(missing_cells, cells),
        duplicate_rows=duplicates,
        duplicate_share=dup_share,
        memory_bytes=summary.memory,
        quality_score=mean_score * (1.0 - dup_share),
    )
    if not summary.rowset.is_exact:
        dataset.estimated["duplicate_rows"] = Estimate(
            method="HyperLogLog of the row hashes, "
            f"{summary.rowset.registers.size} registers (distinct rows)",
            bound=hll_error(),
            unit="relative",
        )

    # ---- the target relationship (and leakage) on the sample: every row unless large.
    sample_rows = sample.height if index is not None else None
    by_name = {c.name: c for c in columns}
    target = contract.target if contract.target in by_name else None
    task = contract.task
    associations: list[TargetAssociation] = []
    class_balance: ClassBalance | None = None
    leaks: list[Alert] = []
    if target is not None:
        tcol = by_name[target]
        if task is None:
            task = _infer_task(tcol)
        associations = _target_associations(sample, by_name, target, task, kinds)
        for a in associations:
            by_name[a.column].target_association = a.score
        if task in ("binary", "multiclass"):
            tstate = summary.columns[names.index(target)].top
            assert tstate is not None
            class_balance = _class_balance(tstate)
        leaks = _single_leakage(sample, by_name, target, task, associations)
        if task == "regression":
            leaks += _pair_leakage(sample, by_name, target, associations)

    # ---- histograms on edges fixed by the extremes, and co-moments: counted in the first
    # pass when its plan had them right, else in a second pass over the parts.
    cands = _correlation_columns(columns, target, options.correlation_columns)
    correlations: Correlations | None = None
    if cands and sampled:
        correlations = _correlations(sample, cands)
    layouts: dict[str, _Layout] = {}
    for c in columns:
        st = summary.columns[names.index(c.name)]
        if c.kind != "categorical" and st.flo is not None and st.fhi is not None:
            layouts[c.name] = _layout(st.flo, st.fhi, c.kind, schema[c.name], options.bins)
    correlate = [c.name for c in cands] if cands and not sampled else []
    counts, comoments = _binned_in_first_pass(plan.binning, summary.binned, layouts, correlate)
    rest = _Binning(
        {} if counts is not None else layouts, [] if comoments is not None else correlate, kinds
    )
    if rest.layouts or rest.correlate:
        if work is not None:
            binned = _bin(work, rest)
        else:
            binned = _over_parts(executor, bin_part, parts, [(rest,)] * len(parts))
        counts = binned.counts if counts is None else counts
        comoments = binned.comoments if comoments is None else comoments
    for c in columns:
        lay = layouts.get(c.name)
        if lay is None or counts is None:
            continue
        edges = _edges(lay)
        labels = _temporal_labels(edges, schema[c.name]) if c.kind == "temporal" else None
        hist = Histogram(edges=edges, counts=[int(v) for v in counts[c.name]], labels=labels)
        if c.numeric is not None:
            c.numeric.histogram = hist
        elif c.temporal is not None:
            c.temporal.histogram = hist
    if comoments is not None:
        correlations = _correlation_model(comoments.correlation(), cands, rows)

    alerts = _alerts(dataset, columns, class_balance, target, leaks, specs)
    return Profile(
        dataset=dataset,
        columns=columns,
        target=target,
        task=task,
        correlations=correlations,
        target_associations=associations,
        class_balance=class_balance,
        alerts=alerts,
        sample_rows=sample_rows,
    )


def _edges(lay: _Layout) -> list[float]:
    flo, fhi, nb = lay.lo, lay.hi, lay.bins
    if lay.integral:
        return [flo - 0.5 + j for j in range(nb + 1)]
    if nb == 1:
        return [flo, fhi]
    return [flo * (1 - j / nb) + fhi * (j / nb) for j in range(nb)] + [fhi]


def _label(v: object) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def _temporal_labels(values: list[float], dtype: pl.DataType) -> list[str]:
    ints = pl.Series([round(v) for v in values], dtype=pl.Int64)
    if dtype == pl.Date:
        return [str(d) for d in ints.cast(pl.Int32).cast(pl.Date).to_list()]
    out = ints.cast(dtype)
    return [str(v) for v in out.to_list()]


def _infer_task(tcol: ColumnProfile) -> Task:
    if tcol.kind == "numeric" and tcol.type == "float":
        return "regression"
    if tcol.kind == "numeric" and tcol.distinct > 20:
        return "regression"
    return "binary" if tcol.distinct <= 2 else "multiclass"


def _lumped(name: str, top: list[str]) -> pl.Expr:
    """A categorical column as strings, values outside ``top`` lumped into one level."""
    x = _col(name).cast(pl.String)
    if not top:
        return x
    return pl.when(x.is_null()).then(None).when(x.is_in(top)).then(x).otherwise(pl.lit("\x00other"))


def _top_levels(df: pl.DataFrame, name: str) -> list[str]:
    values = df.get_column(name).rename("value").drop_nulls().cast(pl.String)
    vc = values.value_counts(name="n")  # renamed: a column may be called "n"
    vc = vc.sort(["n", "value"], descending=[True, False])  # ties in value order: the same
    if vc.height <= LUMP_LEVELS:
        return []
    return [str(v) for v in vc.get_column("value").head(LUMP_LEVELS).to_list()]


def _numeric_value(name: str, kind: Kind, position: int | None = None) -> pl.Expr:
    x = _col(name) if position is None else pl.nth(position)
    xf = (x.to_physical() if kind == "temporal" else x).cast(pl.Float64)
    return pl.when(xf.is_finite()).then(xf).otherwise(None)


def _cramers_v(df: pl.DataFrame, a: pl.Expr, b: pl.Expr) -> float | None:
    ct = df.select(a.alias("a"), b.alias("b")).drop_nulls().group_by("a", "b").len()
    ct = ct.sort("a", "b")  # the group-by's order varies: sum the ratios in a fixed one
    if ct.height == 0:
        return None
    ct = ct.with_columns(
        pl.col("len").sum().over("a").alias("r"), pl.col("len").sum().over("b").alias("c")
    )
    n = float(ct.get_column("len").sum())
    ka, kb = ct.get_column("a").n_unique(), ct.get_column("b").n_unique()
    if min(ka, kb) < 2:
        return 0.0
    f64 = pl.Float64
    ratio = ct.select(
        (pl.col("len").cast(f64) ** 2 / (pl.col("r").cast(f64) * pl.col("c").cast(f64))).sum()
    ).item()
    chi2 = n * (float(ratio) - 1.0)
    v = math.sqrt(max(chi2, 0.0) / (n * (min(ka, kb) - 1)))
    return min(v, 1.0)


def _eta(df: pl.DataFrame, group: pl.Expr, values: list[pl.Expr]) -> list[float | None]:
    """Correlation ratio η of each numeric expression across the levels of ``group``."""
    if not values:
        return []
    g = df.select(group.alias("g"), *(v.alias(f"v{j}") for j, v in enumerate(values))).filter(
        pl.col("g").is_not_null()
    )
    # Sums by numpy in row order (a parallel group-by sums in a varying order: the last bits
    # of a score would change from run to run).
    codes = g.get_column("g").rank("dense").cast(pl.Int64).to_numpy() - 1
    out: list[float | None] = []
    for j in range(len(values)):
        x = g.get_column(f"v{j}").cast(pl.Float64).to_numpy()
        present = ~np.isnan(x)
        if not present.any():
            out.append(None)
            continue
        c, x = codes[present], x[present]
        with np.errstate(all="ignore"):
            cnt = np.bincount(c).astype(np.float64)
            seen = cnt > 0
            means = np.bincount(c, weights=x) / np.where(seen, cnt, 1.0)
            within = float(np.bincount(c, weights=(x - means[c]) ** 2).sum())
            cnt, means = cnt[seen], means[seen]
            mean = float((cnt * means).sum() / cnt.sum())
            between = float((cnt * (means - mean) ** 2).sum())
        denom = between + within
        if denom <= 0 or not math.isfinite(denom):
            out.append(None)
            continue
        out.append(min(math.sqrt(between / denom), 1.0))
    return out


def _target_associations(
    df: pl.DataFrame,
    cols: dict[str, ColumnProfile],
    target: str,
    task: Task,
    kinds: dict[str, Kind],
) -> list[TargetAssociation]:
    feats = [c for c in cols.values() if c.name != target and c.count > 0 and not c.constant]
    numeric = [c for c in feats if c.kind in ("numeric", "temporal")]
    categorical = [c for c in feats if c.kind == "categorical"]
    tkind = kinds[target]
    found: list[TargetAssociation] = []
    base = df.filter(_col(target).is_not_null())
    if base.height == 0:
        return []

    def add(c: ColumnProfile, score: float | None, method: AssocMethod) -> None:
        if score is not None and math.isfinite(score):
            found.append(
                TargetAssociation(
                    column=c.name,
                    role=c.role,
                    score=min(max(score, 0.0), 1.0),
                    method=method,
                )
            )

    def pair(name: str) -> pl.DataFrame:
        # Two columns, without a query on the whole frame: one per column of a wide table
        # made profiling quadratic in its width.
        return pl.DataFrame([base.get_column(name), base.get_column(target)])

    if task == "regression" and tkind == "numeric":
        t = _numeric_value(target, tkind)
        if numeric:
            rs = base.select(
                pl.corr(_numeric_value(c.name, c.kind), t).alias(str(j))
                for j, c in enumerate(numeric)
            ).row(0)
            for c, r in zip(numeric, rs, strict=True):
                add(c, abs(r) if r is not None else None, "pearson_abs")
        for c in categorical:
            (eta,) = _eta(pair(c.name), _col(c.name).cast(pl.String), [t])
            add(c, eta, "correlation_ratio")
    else:
        tgroup = _lumped(target, _top_levels(base, target) if tkind != "numeric" else [])
        if numeric:
            etas = _eta(base, tgroup, [_numeric_value(c.name, c.kind) for c in numeric])
            for c, eta in zip(numeric, etas, strict=True):
                add(c, eta, "correlation_ratio")
        for c in categorical:
            v = _cramers_v(pair(c.name), _col(c.name).cast(pl.String), tgroup)
            add(c, v, "cramers_v")
    found.sort(key=lambda a: (-a.score, a.column))
    return found


def _class_balance(counts: TopCounts) -> ClassBalance | None:
    """Every class with its count (from the target's mergeable value counts)."""
    vc = counts.top(counts.counts.height)
    if vc.height == 0:
        return None
    total = int(vc.get_column("n").sum())
    classes = [
        TopValue(value=_label(v), count=int(n), share=_share(int(n), total))
        for v, n in vc.iter_rows()
    ]
    return ClassBalance(
        classes=classes,
        majority=classes[0].value,
        minority=classes[-1].value,
        minority_share=classes[-1].share,
        imbalance_ratio=classes[0].count / classes[-1].count,
    )


def _corr_matrix(x: np.ndarray) -> np.ndarray:
    with np.errstate(all="ignore"):  # overflow on huge values gives inf/NaN, reported as None
        return _corr_matrix_raw(x)


def _corr_matrix_raw(x: np.ndarray) -> np.ndarray:
    """Pairwise-complete Pearson correlation of the columns of ``x`` (NaN = missing).

    Uses ``z.T @ z`` on one C-ordered matrix (numpy turns it into a single BLAS ``syrk``,
    far faster than general products of tall matrices).
    """
    k = x.shape[1]
    nan = np.isnan(x)
    if not nan.any():
        xc = x - x.mean(axis=0)
        g = xc.T @ xc
        nrows = float(x.shape[0])
        n = np.full((k, k), nrows)
        var = np.diag(g).copy()
        with np.errstate(invalid="ignore", divide="ignore"):
            r = g / np.sqrt(np.outer(var, var))
    else:
        mask = ~nan
        count = mask.sum(axis=0)
        centre = np.where(mask, x, 0.0).sum(axis=0) / np.maximum(count, 1)
        xc = np.where(mask, x - centre, 0.0)
        m = mask.astype(np.float64)
        z = np.ascontiguousarray(np.concatenate([xc, m, xc * xc], axis=1))
        g = z.T @ z
        sxy = g[:k, :k]
        sx = g[:k, k : 2 * k]  # sx[i, j] = sum of x_i where x_j is present too
        n = g[k : 2 * k, k : 2 * k]
        sxx = g[2 * k :, k : 2 * k]
        with np.errstate(invalid="ignore", divide="ignore"):
            cov = sxy - sx * sx.T / n
            vi = sxx - sx * sx / n
            r = cov / np.sqrt(vi * vi.T)
    r[n < 2] = np.nan
    r = np.clip(r, -1.0, 1.0)
    np.fill_diagonal(r, np.where(np.diag(n) >= 2, 1.0, np.nan))
    return np.asarray(r, dtype=np.float64)


def _correlation_columns(
    cols: list[ColumnProfile], target: str | None, limit: int
) -> list[ColumnProfile]:
    """The numeric columns of the correlation matrix (at most ``limit``)."""
    cands = [c for c in cols if c.kind == "numeric" and not c.constant and c.count >= 2]
    if len(cands) < 2:
        return []
    if len(cands) > limit:
        # Keep the target and the columns most associated with it (then the first ones).
        order = sorted(
            range(len(cands)),
            key=lambda j: (
                cands[j].name != target,
                -(cands[j].target_association or 0.0),
                j,
            ),
        )
        keep = sorted(order[:limit])
        cands = [cands[j] for j in keep]
    return cands


def _correlation_model(r: np.ndarray, cands: list[ColumnProfile], rows: int) -> Correlations:
    matrix = [[None if not math.isfinite(v) else float(v) for v in row] for row in r.tolist()]
    return Correlations(columns=[c.name for c in cands], matrix=matrix, rows_used=rows)


def _correlations(df: pl.DataFrame, cands: list[ColumnProfile]) -> Correlations:
    """The correlation matrix of ``cands`` over the rows of ``df`` (the seeded sample)."""
    x = df.select(_numeric_value(c.name, "numeric").alias(str(j)) for j, c in enumerate(cands))
    return _correlation_model(_corr_matrix(x.to_numpy(order="c")), cands, df.height)


def _determination(df: pl.DataFrame, c: ColumnProfile, target: str) -> float:
    """Goodman-Kruskal λ: how much knowing ``c`` reduces the error of guessing the target.

    1.0 means every value (or narrow bin) of ``c`` holds a single class: ``c`` determines it.
    """
    x = _col(c.name)
    if c.kind == "categorical":
        key = _lumped(c.name, _top_levels(df, c.name))
    elif c.distinct <= LUMP_LEVELS:
        key = x.cast(pl.String)
    else:
        v = _numeric_value(c.name, c.kind)
        key = ((v - v.min()) / (v.max() - v.min()) * 100).floor()
    ct = df.select(key.alias("k"), _col(target).alias("t")).drop_nulls().group_by("k", "t").len()
    n = int(ct.get_column("len").sum()) if ct.height else 0
    if n == 0:
        return 0.0
    best = int(ct.group_by("k").agg(pl.col("len").max()).get_column("len").sum())
    mode = int(ct.group_by("t").agg(pl.col("len").sum()).get_column("len").max())  # type: ignore[arg-type]
    return (best - mode) / (n - mode) if n > mode else 0.0


def _single_leakage(
    df: pl.DataFrame,
    cols: dict[str, ColumnProfile],
    target: str,
    task: Task,
    associations: list[TargetAssociation],
) -> list[Alert]:
    """Alert on single columns that (almost) determine the target."""
    alerts: list[Alert] = []
    for a in associations:
        c = cols[a.column]
        if c.kind == "categorical" and c.distinct > HIGH_CARDINALITY_SHARE * c.count:
            continue  # a near-unique key "determines" anything; that is an id, not a leak
        if task == "regression":
            if a.score < LEAKAGE_SCORE:
                continue
            how = {
                "pearson_abs": f"|r| = {a.score:.4f}",
                "correlation_ratio": f"η = {a.score:.4f}",
                "cramers_v": f"Cramér's V = {a.score:.4f}",
            }[a.method]
        else:
            if a.score < 0.9:
                continue
            lam = _determination(df, c, target)
            if lam < LEAKAGE_SCORE:
                continue
            how = f"Goodman-Kruskal λ = {lam:.4f}"
        declared = c.role in ("leakage", "id")
        alerts.append(
            Alert(
                kind="leakage",
                columns=[c.name],
                severity="warning" if declared else "critical",
                message=(
                    f"'{c.name}' (almost) determines the target '{target}' ({how})"
                    + (_declared(cols, [c.name]) or ": drop it or declare its role as leakage")
                ),
            )
        )
    return alerts


def _pair_leakage(
    df: pl.DataFrame,
    cols: dict[str, ColumnProfile],
    target: str,
    associations: list[TargetAssociation],
) -> list[Alert]:
    """Alert when the target is (almost) a linear combination of two numeric columns."""
    cands = [
        a.column
        for a in associations
        if a.method == "pearson_abs" and cols[a.column].kind == "numeric"
    ][:LEAKAGE_PAIR_CANDIDATES]
    if len(cands) < 2:
        return []
    x = df.select(
        [_numeric_value(target, "numeric").alias("t")]
        + [_numeric_value(c, "numeric").alias(str(j)) for j, c in enumerate(cands)]
    )
    r = _corr_matrix(x.to_numpy(order="c"))
    alerts: list[Alert] = []
    tnum = cols[target].numeric
    tstd = tnum.std if tnum else None
    for i, j in combinations(range(len(cands)), 2):
        r1, r2, r12 = r[0, i + 1], r[0, j + 1], r[i + 1, j + 1]
        if not (math.isfinite(r1) and math.isfinite(r2) and math.isfinite(r12)):
            continue
        if 1.0 - r12 * r12 < 1e-9 or max(r1 * r1, r2 * r2) >= LEAKAGE_SCORE**2:
            continue
        r2_pair = (r1 * r1 + r2 * r2 - 2 * r1 * r2 * r12) / (1.0 - r12 * r12)
        if r2_pair < LEAKAGE_PAIR_R2:
            continue
        a, b = cands[i], cands[j]
        b1 = (r1 - r2 * r12) / (1 - r12 * r12)
        b2 = (r2 - r1 * r12) / (1 - r12 * r12)
        na, nb = cols[a].numeric, cols[b].numeric
        sa = na.std if na else None
        sb = nb.std if nb else None
        formula = f"a linear combination of '{a}' and '{b}'"
        if tstd and sa and sb:
            formula = f"≈ {b1 * tstd / sa:.3g}·{a} + {b2 * tstd / sb:.3g}·{b}"
        alerts.append(
            Alert(
                kind="leakage",
                columns=[a, b],
                severity="critical",
                message=(
                    f"target '{target}' is {formula} (R² = {r2_pair:.6f}): "
                    f"'{a}' and '{b}' leak the target{_declared(cols, [a, b])}"
                ),
            )
        )
    return alerts


def _declared(cols: dict[str, ColumnProfile], names: list[str]) -> str:
    roles = [f"'{n}' as {cols[n].role}" for n in names if cols[n].role in ("leakage", "id")]
    return f" (already declared: {', '.join(roles)})" if roles else ""


def _alerts(
    dataset: DatasetStats,
    columns: list[ColumnProfile],
    balance: ClassBalance | None,
    target: str | None,
    pair_alerts: list[Alert],
    specs: dict[str, ColumnContract | None] | None = None,
) -> list[Alert]:
    by_name = {c.name: c for c in columns}
    alerts: list[Alert] = []
    for spec in (specs or {}).values():
        if spec is None or spec.reason is None:
            continue
        if spec.unreadable:
            alerts.append(
                Alert(
                    kind="unreadable",
                    columns=[spec.name],
                    severity="warning",
                    message=f"'{spec.name}' is typed {spec.type}, but {spec.reason}",
                )
            )
        elif spec.role == "id" or spec.text:
            what = "an identifier, not a feature" if spec.role == "id" else "free text (TF-IDF)"
            alerts.append(
                Alert(
                    kind="inferred",
                    columns=[spec.name],
                    severity="info",
                    message=f"'{spec.name}' is {what} (contract): {spec.reason}",
                )
            )
    for pair in pair_alerts:
        if all(by_name[n].role in ("leakage", "id") for n in pair.columns):
            pair = pair.model_copy(update={"severity": "warning"})  # noqa: PLW2901
        alerts.append(pair)
    if dataset.duplicate_rows:
        alerts.append(
            Alert(
                kind="duplicates",
                columns=[],
                severity="warning" if dataset.duplicate_share >= DUPLICATE_WARN else "info",
                message=(
                    f"{dataset.duplicate_rows} rows ({dataset.duplicate_share:.1%}) "
                    "repeat an earlier row"
                    if "duplicate_rows" not in dataset.estimated
                    else f"≈ {dataset.duplicate_rows} rows ({dataset.duplicate_share:.1%}) "
                    f"repeat an earlier row ({dataset.estimated['duplicate_rows'].describe()})"
                ),
            )
        )
    if balance is not None and balance.imbalance_ratio >= IMBALANCE_INFO:
        alerts.append(
            Alert(
                kind="class_imbalance",
                columns=[target] if target else [],
                severity="warning" if balance.imbalance_ratio >= IMBALANCE_WARN else "info",
                message=(
                    f"classes are imbalanced: majority '{balance.majority}' is "
                    f"{balance.imbalance_ratio:.4g}× the minority '{balance.minority}' "
                    f"({balance.minority_share:.2%} of rows)"
                ),
            )
        )
    for c in columns:
        if c.constant:
            what = "all values are missing" if c.count == 0 else "has a single value"
            alerts.append(
                Alert(
                    kind="constant",
                    columns=[c.name],
                    severity="warning",
                    message=f"'{c.name}' is constant: {what}",
                )
            )
        if c.missing_share >= HIGH_MISSING_SHARE and c.count > 0:
            alerts.append(
                Alert(
                    kind="high_missing",
                    columns=[c.name],
                    severity="warning" if c.missing_share >= HIGH_MISSING_WARN else "info",
                    message=f"'{c.name}' is missing in {c.missing} rows ({c.missing_share:.1%})",
                )
            )
        spec = (specs or {}).get(c.name)
        inferred = spec is not None and spec.reason is not None and (spec.text or c.role == "id")
        if c.kind == "categorical" and c.type == "str" and c.count > 1 and not inferred:
            est = c.estimated.get("distinct")
            # an estimated count within three standard errors of the row count: unique
            unique = (
                c.distinct == c.count
                if est is None
                else c.distinct >= c.count * (1.0 - 3.0 * est.bound)
            )
            if unique and c.role != "id":
                alerts.append(
                    Alert(
                        kind="unique",
                        columns=[c.name],
                        severity="info",
                        message=f"'{c.name}' has a distinct value in every row (an id?)",
                    )
                )
            elif c.distinct > HIGH_CARDINALITY and c.role != "id":
                alerts.append(
                    Alert(
                        kind="high_cardinality",
                        columns=[c.name],
                        severity="info",
                        message=(
                            f"'{c.name}' has {c.distinct} distinct values"
                            if est is None
                            else f"'{c.name}' has ≈ {c.distinct} distinct values ({est.describe()})"
                        ),
                    )
                )
        n = c.numeric
        if n is None or c.constant:
            continue
        if n.infinite:
            alerts.append(
                Alert(
                    kind="infinite",
                    columns=[c.name],
                    severity="warning",
                    message=f"'{c.name}' has {n.infinite} infinite values",
                )
            )
        flag = c.distinct <= 2  # a 0/1 flag is not a skewed number
        if not flag and n.skew is not None and math.isfinite(n.skew) and abs(n.skew) > SKEW_LIMIT:
            alerts.append(
                Alert(
                    kind="skewed",
                    columns=[c.name],
                    severity="info",
                    message=f"'{c.name}' is skewed (skew = {_fmt(n.skew)})",
                )
            )
        if c.count and n.outliers / c.count > OUTLIER_SHARE:
            alerts.append(
                Alert(
                    kind="outliers",
                    columns=[c.name],
                    severity="info",
                    message=(
                        f"'{c.name}' has {n.outliers} outliers by the 1.5·IQR rule "
                        f"({n.outliers / c.count:.1%})"
                    ),
                )
            )
    alerts.sort(key=lambda a: (a.kind != "leakage", _SEVERITY_ORDER[a.severity]))
    return alerts
