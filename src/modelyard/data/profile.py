"""Profile a validated table: per-column statistics, quality, correlations, target relationship.

The stage is :func:`profile`. It is a plain function of a typed ``polars.DataFrame`` and the
:class:`~modelyard.data.contract.DataContract`; its result, :class:`Profile`, is a pydantic
model and *is* the JSON output (``Profile.model_dump_json()``); the HTML report renders it.

How it computes (performance): one wide ``select`` over all columns gives every scalar
statistic and the top values (polars runs the expressions in parallel); a second ``select``
gives the IQR outlier counts and histogram bin indices (``numpy.bincount`` counts them);
duplicates come from two independent 64-bit row hashes (a 128-bit key, exact in practice);
correlations are pairwise-complete Pearson from four matrix products; target associations
use one ``group_by`` for all numeric features and one per categorical feature. No per-row
Python anywhere. ``ProfileSection.sample`` (seeded) only applies to the correlation matrix and
the target relationship; every statistic is computed on all rows.

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
from itertools import combinations
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field

from modelyard.config.schema import ProfileSection
from modelyard.data.contract import ColumnContract, ColumnRole, ColumnType, DataContract, Task

if TYPE_CHECKING:
    import numpy as np
    import polars as pl
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


class NumericStats(_Model):
    min: float | None = None
    max: float | None = None
    mean: float | None = None
    std: float | None = None
    """Standard deviation, ddof=1."""
    skew: float | None = None
    """Adjusted Fisher-Pearson skewness (pandas' ``skew``)."""
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
    """Rows used by the sampled parts (correlations, target relationship) when sampled."""
    quality_formula: str = QUALITY_FORMULA

    def column(self, name: str) -> ColumnProfile:
        for col in self.columns:
            if col.name == name:
                return col
        raise KeyError(name)


# --------------------------------------------------------------------------- helpers


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


def profile(
    df: pl.DataFrame, contract: DataContract, options: ProfileSection, *, seed: int = 0
) -> Profile:
    """Profile ``df`` (validated and typed per ``contract``); see the module docstring."""
    names = df.columns
    rows = df.height
    schema = df.schema  # built once: df.schema makes a new mapping on every access
    in_contract = {c.name: c for c in contract.columns}
    specs: dict[str, ColumnContract | None] = {name: in_contract.get(name) for name in names}
    kinds = {n: _kind(schema[n]) for n in names}
    # NaN counts as missing (as in pandas): normalise floats once.
    floats = [n for n in names if schema[n].is_float()]
    work = df.with_columns(pl.col(f).fill_nan(None) for f in floats) if floats else df
    fetch = max(options.top_values, LUMP_LEVELS)

    # ---- pass 1: every scalar statistic and the top values, one select.
    exprs: list[pl.Expr] = []
    for i, name in enumerate(names):
        x = pl.col(name)
        kind = kinds[name]
        dtype = schema[name]
        k = f"{i}|"
        exprs += [
            x.count().alias(k + "count"),
            x.null_count().alias(k + "missing"),
            x.drop_nulls().n_unique().alias(k + "distinct"),
            _invalid_expr(x, specs[name], kind, dtype).alias(k + "invalid"),
        ]
        if kind == "numeric":
            xf = x.cast(pl.Float64)
            exprs += [
                xf.min().alias(k + "min"),
                xf.max().alias(k + "max"),
                xf.mean().alias(k + "mean"),
                xf.std(ddof=1).alias(k + "std"),
                xf.skew(bias=False).alias(k + "skew"),
                (x == 0).sum().alias(k + "zeros"),
                (x < 0).sum().alias(k + "negatives"),
            ]
            exprs += [xf.quantile(q, interpolation="linear").alias(k + qn) for qn, q in QUANTILES]
            if dtype.is_float():
                finite = xf.filter(xf.is_finite())
                exprs += [
                    x.is_infinite().sum().alias(k + "infinite"),
                    finite.min().alias(k + "fmin"),
                    finite.max().alias(k + "fmax"),
                ]
        elif kind == "temporal":
            p = x.to_physical().cast(pl.Float64)
            exprs += [p.min().alias(k + "fmin"), p.max().alias(k + "fmax")]
        else:
            v = x.drop_nulls().alias("v")
            vc = v.value_counts(name="n")
            exprs.append(
                vc.sort_by([vc.struct.field("n"), vc.struct.field("v")], descending=[True, False])
                .head(fetch)
                .implode()
                .alias(k + "top")
            )
    stats: dict[str, object] = work.select(exprs).row(0, named=True) if exprs else {}

    def s(i: int, key: str) -> object:
        return stats.get(f"{i}|{key}")

    # ---- pass 2: IQR outliers and histogram bin indices.
    bins = options.bins
    outlier_exprs: list[pl.Expr] = []
    bin_exprs: list[pl.Expr] = []
    layouts: dict[str, tuple[float, float, int, bool]] = {}  # lo, hi, nbins, integer-aligned
    for i, name in enumerate(names):
        kind = kinds[name]
        if kind == "categorical":
            continue
        dtype = schema[name]
        x = pl.col(name)
        if kind == "numeric":
            lo, hi = (
                (s(i, "fmin"), s(i, "fmax")) if dtype.is_float() else (s(i, "min"), s(i, "max"))
            )
            q1, q3 = _num(s(i, "p25")), _num(s(i, "p75"))
            flag = _int(s(i, "distinct")) <= 2  # a 0/1 flag: its rarer value is no outlier
            quartiles = (
                q1 is not None and q3 is not None and math.isfinite(q1) and math.isfinite(q3)
            )
            if quartiles and not flag:
                assert q1 is not None and q3 is not None
                iqr = q3 - q1
                xf = x.cast(pl.Float64)
                outlier_exprs.append(
                    ((xf < q1 - 1.5 * iqr) | (xf > q3 + 1.5 * iqr)).sum().alias(f"{i}|outliers")
                )
            xv = x.cast(pl.Float64)
        else:
            lo, hi = s(i, "fmin"), s(i, "fmax")
            xv = x.to_physical().cast(pl.Float64)
        flo, fhi = _num(lo), _num(hi)
        if flo is None or fhi is None:
            continue
        integral = (kind == "temporal" or dtype.is_integer()) and fhi - flo + 1 <= bins
        if integral:
            nb = int(fhi - flo) + 1
            idx = (xv - flo).round(0)
        elif fhi > flo:
            nb = bins
            # In halves: hi - lo overflows to inf for values near ±1.8e308 (halving is exact).
            idx = ((xv * 0.5 - flo * 0.5) / (fhi * 0.5 - flo * 0.5) * nb).floor()
        else:
            nb = 1
            idx = xv * 0.0
        layouts[name] = (flo, fhi, nb, integral)
        keep = xv.is_finite()
        bin_exprs.append(
            pl.when(keep).then(idx.clip(0, nb - 1)).otherwise(None).cast(pl.Int32).alias(str(i))
        )
    if outlier_exprs:
        stats.update(work.select(outlier_exprs).row(0, named=True))
    histograms: dict[str, Histogram] = {}
    if bin_exprs:
        binned = work.select(bin_exprs)
        for i, name in enumerate(names):
            if name not in layouts:
                continue
            flo, fhi, nb, integral = layouts[name]
            arr = binned.get_column(str(i)).drop_nulls().to_numpy()
            counts = np.bincount(arr, minlength=nb)[:nb] if arr.size else np.zeros(nb, np.int64)
            if integral:
                edges = [flo - 0.5 + j for j in range(nb + 1)]
            elif nb == 1:
                edges = [flo, fhi]
            else:
                edges = [flo * (1 - j / nb) + fhi * (j / nb) for j in range(nb)] + [fhi]
            labels = None
            if kinds[name] == "temporal":
                labels = _temporal_labels(edges, schema[name])
            histograms[name] = Histogram(
                edges=edges, counts=[int(c) for c in counts], labels=labels
            )

    # ---- duplicates: a 128-bit row key from two seeded 64-bit hashes.
    duplicates = 0
    if rows and names:
        key = pl.DataFrame({"a": df.hash_rows(seed=1), "b": df.hash_rows(seed=20_231_117)})
        duplicates = rows - key.n_unique()

    # ---- per-column profiles.
    columns: list[ColumnProfile] = []
    for i, name in enumerate(names):
        spec = specs[name]
        kind = kinds[name]
        dtype = schema[name]
        count, missing, distinct = (
            _int(s(i, "count")),
            _int(s(i, "missing")),
            _int(s(i, "distinct")),
        )
        invalid = _int(s(i, "invalid"))
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
            q = Quantiles(**{qn: _num(s(i, qn)) for qn, _ in QUANTILES})
            spread = q.p75 - q.p25 if q.p75 is not None and q.p25 is not None else None
            col.numeric = NumericStats(
                min=_num(s(i, "min")),
                max=_num(s(i, "max")),
                mean=_num(s(i, "mean")),
                std=_num(s(i, "std")),
                skew=_num(s(i, "skew")),
                quantiles=q,
                iqr=spread,
                zeros=_int(s(i, "zeros")),
                negatives=_int(s(i, "negatives")),
                infinite=_int(s(i, "infinite")),
                outliers=_int(s(i, "outliers")),
                histogram=histograms.get(name),
            )
        elif kind == "temporal":
            hist = histograms.get(name)
            col.temporal = TemporalStats(
                min=_temporal_labels([float(s(i, "fmin"))], dtype)[0]  # type: ignore[arg-type]
                if s(i, "fmin") is not None
                else None,
                max=_temporal_labels([float(s(i, "fmax"))], dtype)[0]  # type: ignore[arg-type]
                if s(i, "fmax") is not None
                else None,
                histogram=hist,
            )
        else:
            raw = s(i, "top")
            items = raw if isinstance(raw, list) else []
            top = [
                TopValue(
                    value=_label(it["v"]), count=int(it["n"]), share=_share(int(it["n"]), count)
                )
                for it in items[: options.top_values]
            ]
            col.categorical = CategoricalStats(
                top=top, other_count=count - sum(t.count for t in top)
            )
        columns.append(col)

    missing_cells = sum(c.missing for c in columns)
    cells = rows * len(names)
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
        memory_bytes=int(df.estimated_size()),
        quality_score=mean_score * (1.0 - dup_share),
    )

    # ---- sampled parts: correlations and target relationship.
    sample_rows: int | None = None
    sample = work
    if options.sample is not None and options.sample < rows:
        sample = work.sample(n=options.sample, seed=seed)
        sample_rows = sample.height
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
            class_balance = _class_balance(work, target)
        leaks = _single_leakage(sample, by_name, target, task, associations)
        if task == "regression":
            leaks += _pair_leakage(sample, by_name, target, associations)

    correlations = _correlations(sample, columns, target, options.correlation_columns)

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
    x = pl.col(name).cast(pl.String)
    if not top:
        return x
    return pl.when(x.is_null()).then(None).when(x.is_in(top)).then(x).otherwise(pl.lit("\x00other"))


def _top_levels(df: pl.DataFrame, name: str) -> list[str]:
    values = df.get_column(name).drop_nulls().cast(pl.String).rename("value")
    vc = values.value_counts(sort=True, name="n")  # renamed: a column may be called "n"
    if vc.height <= LUMP_LEVELS:
        return []
    return [str(v) for v in vc.get_column("value").head(LUMP_LEVELS).to_list()]


def _numeric_value(name: str, kind: Kind) -> pl.Expr:
    x = pl.col(name)
    xf = (x.to_physical() if kind == "temporal" else x).cast(pl.Float64)
    return pl.when(xf.is_finite()).then(xf).otherwise(None)


def _cramers_v(df: pl.DataFrame, a: pl.Expr, b: pl.Expr) -> float | None:
    ct = df.select(a.alias("a"), b.alias("b")).drop_nulls().group_by("a", "b").len()
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
    aggs: list[pl.Expr] = []
    for j, v in enumerate(values):
        aggs += [
            v.count().alias(f"n{j}"),
            v.mean().alias(f"m{j}"),
            v.var(ddof=0).alias(f"v{j}"),
        ]
    roots = list(dict.fromkeys(r for v in values for r in v.meta.root_names()))
    g = df.select(group.alias("\x00g"), *roots).filter(pl.col("\x00g").is_not_null())
    agg = g.group_by("\x00g").agg(aggs)
    out: list[float | None] = []
    for j in range(len(values)):  # numpy per column: a query on ``agg`` is O(its width)
        cnt_all = agg.get_column(f"n{j}").cast(pl.Float64).to_numpy()
        present = cnt_all > 0
        if not present.any():
            out.append(None)
            continue
        cnt = cnt_all[present]
        means = agg.get_column(f"m{j}").cast(pl.Float64).to_numpy()[present]
        var = agg.get_column(f"v{j}").cast(pl.Float64).fill_null(0.0).to_numpy()[present]
        with np.errstate(all="ignore"):
            total = cnt.sum()
            mean = float((cnt * means).sum() / total)
            between = float((cnt * (means - mean) ** 2).sum())
            within = float((cnt * var).sum())
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
    base = df.filter(pl.col(target).is_not_null())
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
            (eta,) = _eta(pair(c.name), pl.col(c.name).cast(pl.String), [t])
            add(c, eta, "correlation_ratio")
    else:
        tgroup = _lumped(target, _top_levels(base, target) if tkind != "numeric" else [])
        if numeric:
            etas = _eta(base, tgroup, [_numeric_value(c.name, c.kind) for c in numeric])
            for c, eta in zip(numeric, etas, strict=True):
                add(c, eta, "correlation_ratio")
        for c in categorical:
            v = _cramers_v(pair(c.name), pl.col(c.name).cast(pl.String), tgroup)
            add(c, v, "cramers_v")
    found.sort(key=lambda a: (-a.score, a.column))
    return found


def _class_balance(df: pl.DataFrame, target: str) -> ClassBalance | None:
    vc = (
        df.get_column(target)
        .drop_nulls()
        .rename("value")  # a target may be called "n"
        .value_counts(name="n")
        .sort(["n", "value"], descending=[True, False])
    )
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


def _correlations(
    df: pl.DataFrame, cols: list[ColumnProfile], target: str | None, limit: int
) -> Correlations | None:
    cands = [c for c in cols if c.kind == "numeric" and not c.constant and c.count >= 2]
    if len(cands) < 2:
        return None
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
    x = df.select(_numeric_value(c.name, "numeric").alias(str(j)) for j, c in enumerate(cands))
    arr = x.to_numpy(order="c")
    r = _corr_matrix(arr)
    matrix = [[None if not math.isfinite(v) else float(v) for v in row] for row in r.tolist()]
    return Correlations(columns=[c.name for c in cands], matrix=matrix, rows_used=df.height)


def _determination(df: pl.DataFrame, c: ColumnProfile, target: str) -> float:
    """Goodman-Kruskal λ: how much knowing ``c`` reduces the error of guessing the target.

    1.0 means every value (or narrow bin) of ``c`` holds a single class: ``c`` determines it.
    """
    x = pl.col(c.name)
    if c.kind == "categorical":
        key = _lumped(c.name, _top_levels(df, c.name))
    elif c.distinct <= LUMP_LEVELS:
        key = x.cast(pl.String)
    else:
        v = _numeric_value(c.name, c.kind)
        key = ((v - v.min()) / (v.max() - v.min()) * 100).floor()
    ct = df.select(key.alias("k"), pl.col(target).alias("t")).drop_nulls().group_by("k", "t").len()
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
            if c.distinct == c.count and c.role != "id":
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
                        message=f"'{c.name}' has {c.distinct} distinct values",
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
