"""The data contract: what a valid table looks like.

Inferred once from the reference (training) data, written as a readable YAML file that the
user edits and commits, and then the single definition used everywhere: validation of every
batch, the request schema of the prediction server, and the baseline of drift monitoring.
"""

from __future__ import annotations

import datetime as dt
import difflib
import functools
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal, cast

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from modelyard.config.schema import ColumnRoles, ContractSection
from modelyard.errors import ConfigError, DataError, Problem, name_list

if TYPE_CHECKING:
    import polars as pl

    from modelyard.compute import Executor
    from modelyard.data.table import Table
else:
    from modelyard.data.lazy import polars as pl

CONTRACT_VERSION = 1

ColumnType = Literal["int", "float", "str", "bool", "date", "datetime"]
ColumnRole = Literal["feature", "target", "id", "time", "leakage"]
Task = Literal["binary", "multiclass", "regression"]


class ColumnContract(BaseModel):
    """What one column may hold."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    name: str
    """Column name, as in the data."""
    type: ColumnType
    """Logical type; values that cannot be read as this type are violations."""
    role: ColumnRole = "feature"
    """What the column is for."""
    nullable: bool = True
    """Whether missing values are allowed."""
    min: float | str | None = None
    """Smallest allowed value (numbers; ISO strings for dates), inclusive."""
    max: float | str | None = None
    """Largest allowed value, inclusive."""
    categories: list[str] | None = None
    """Allowed values of a categorical column; ``None`` allows any value."""
    unique: bool = False
    """Whether values must be unique."""
    null_rate: float | None = Field(default=None, ge=0, le=1)
    """Share of missing values in the reference data (informational; drift baseline)."""
    distinct: int | None = None
    """Distinct non-missing values in the reference data (informational)."""
    text: bool = False
    """Free text (``str`` features only): encoded with TF-IDF (``features.text``), not as
    categories."""
    unreadable: int | None = Field(default=None, ge=0)
    """Non-missing values of the reference data that could not be read as ``type``
    (informational): their rows are quarantined at validation."""
    reason: str | None = None
    """Why modelyard chose this role, ``text`` or type from the data (an identifier, free
    text, a number column with a little junk). A role with a reason is the contract's own: it
    need not be declared in modelyard.yaml."""
    typical: int | float | str | bool | None = None
    """A typical value of the training data (informational): the median of a number, date or
    time column (a value the data holds: the lower middle one), the most frequent value of a
    text or bool column. Filled in the contract registered with a model (the example record of
    the prediction server's API docs); ``None`` when unknown or the column is empty."""


class DataContract(BaseModel):
    """The contract of a whole table."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    version: int = CONTRACT_VERSION
    """Format version of the contract file."""
    target: str | None = None
    """The target column, if any."""
    task: Task | None = None
    """The learning task inferred from (or declared for) the target."""
    rows: int | None = None
    """Rows of the reference data the contract was inferred from (informational)."""
    allow_extra_columns: bool = False
    """Whether columns not listed here are accepted (and ignored) or are an error."""
    columns: list[ColumnContract]
    """One entry per column, in order."""

    def column(self, name: str) -> ColumnContract:
        for col in self.columns:
            if col.name == name:
                return col
        raise KeyError(name)

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def features(self) -> list[ColumnContract]:
        return [c for c in self.columns if c.role == "feature"]


# --------------------------------------------------------------------------- typing rules
#
# One set of parsing rules serves inference (which type does a column hold?) and validation
# (cast a batch to the contract's types). Both are polars expressions: no per-row Python.

_INT_LIMIT = 2.0**63
_UNIQUE_MIN_ROWS = 20
"""Below this many non-null values, a column that happens to be unique is not declared unique."""
_ARTICLE = {"int": "an", "float": "a", "str": "a", "bool": "a", "date": "a", "datetime": "a"}


def logical_type(dtype: pl.DataType) -> ColumnType | None:
    """The contract type a native polars dtype maps to directly (``None``: unsupported).

    Integers are ``int``, floats ``float``, ``Boolean`` ``bool``, ``Date`` ``date``,
    ``Datetime`` ``datetime``; ``String``, ``Categorical``, ``Enum`` and the all-null ``Null``
    dtype are ``str``. Nested types (lists, structs), durations, times and binary are not
    supported in a contract.
    """
    if dtype.is_integer():
        return "int"
    if dtype.is_float():
        return "float"
    if dtype == pl.Boolean:
        return "bool"
    if dtype == pl.Date:
        return "date"
    if isinstance(dtype, pl.Datetime):
        return "datetime"
    if dtype in (pl.String, pl.Categorical, pl.Null) or isinstance(dtype, pl.Enum | pl.Categorical):
        return "str"
    return None


def is_native(dtype: pl.DataType, typ: ColumnType) -> bool:
    """Whether a column of ``dtype`` already holds ``typ`` values (no cast needed)."""
    if typ == "int":
        return dtype.is_integer()
    if typ == "float":
        return dtype.is_float()
    if typ == "str":
        return dtype == pl.String
    if typ == "bool":
        return dtype == pl.Boolean
    if typ == "date":
        return dtype == pl.Date
    return isinstance(dtype, pl.Datetime)


def parse_expr(e: pl.Expr, dtype: pl.DataType, typ: ColumnType) -> pl.Expr:
    """Turn the column ``e`` of ``dtype`` into ``typ``; a value that cannot be read is null.

    Rules for ``String`` input (what CSV ingestion produces):

    - ``int``: an integer literal (``"3"``, ``"-12"``), or a number with no fractional part
      (``"3.0"``, ``"1e3"``); ``"3.5"`` is not an int. Surrounding spaces are not stripped.
    - ``float``: any number polars reads (``"3"``, ``"-1.5e-3"``, ``"nan"``, ``"inf"``).
    - ``bool``: ``true``/``false`` in any letter case; nothing else (not yes/no/0/1).
    - ``date``: ISO ``YYYY-MM-DD``; ``datetime``: ISO 8601 date and time (``T`` or space).
    - ``str``: the value as is.

    Native input: floats become ints only when integral; ints are 0/1 for bools; a datetime
    becomes a date by dropping its time; anything becomes ``str`` by its text form.
    """
    if is_native(dtype, typ):
        return e
    if dtype == pl.String:
        if typ == "int":
            as_float = e.cast(pl.Float64, strict=False)
            integral = pl.when((as_float.round() == as_float) & (as_float.abs() < _INT_LIMIT))
            return pl.coalesce(
                e.cast(pl.Int64, strict=False), integral.then(as_float).cast(pl.Int64, strict=False)
            )
        if typ == "float":
            return e.cast(pl.Float64, strict=False)
        if typ == "bool":
            low = e.str.to_lowercase()
            return pl.when(low == "true").then(True).when(low == "false").then(False)
        if typ == "date":
            return e.str.to_date("%Y-%m-%d", strict=False)
        if typ == "datetime":
            # Values that do not start like an ISO date skip the (slow) format inference.
            iso = pl.when(e.str.contains(r"^\d{4}-\d{2}-\d{2}")).then(e)
            return iso.str.to_datetime(strict=False, time_unit="us")
    if typ == "int" and dtype.is_float():
        integral = pl.when((e.round() == e) & (e.abs() < _INT_LIMIT))
        return integral.then(e).cast(pl.Int64, strict=False)
    if typ == "bool" and dtype.is_numeric():
        return pl.when(e == 1).then(True).when(e == 0).then(False)
    if typ == "date" and isinstance(dtype, pl.Datetime):
        return e.dt.date()
    if typ == "datetime" and dtype == pl.Date:
        return e.cast(pl.Datetime("us"))
    if typ == "str":
        return e.cast(pl.String, strict=False)
    return e.cast(_polars_types()[typ], strict=False)


@functools.cache
def _polars_types() -> dict[str, pl.DataType]:
    return {
        "int": pl.Int64(),
        "float": pl.Float64(),
        "str": pl.String(),
        "bool": pl.Boolean(),
        "date": pl.Date(),
        "datetime": pl.Datetime("us"),
    }


def polars_type(typ: ColumnType) -> pl.DataType:
    """The polars dtype a contract type is cast to (``int`` is ``Int64``, ``datetime`` is
    ``Datetime("us")``, ...)."""
    return _polars_types()[typ]


def _fast_bool(e: pl.Expr) -> pl.Expr:
    """``true``/``false`` as written by most tools (no lowercasing of every value)."""
    out = pl.when(e == "true").then(True).when(e == "false").then(False)
    for yes, no in (("True", "False"), ("TRUE", "FALSE")):
        out = out.when(e == yes).then(True).when(e == no).then(False)
    return out


_FAST_PARSE: dict[str, Any] = {
    "int": lambda e: e.cast(pl.Int64, strict=False),
    "bool": _fast_bool,
    "datetime": lambda e: (
        pl.when(e.str.contains(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$"))
        .then(e)
        .str.to_datetime("%Y-%m-%d %H:%M:%S", strict=False, time_unit="us")
    ),
}
"""For text columns, a cheaper expression that gives :func:`parse_expr`'s value wherever it
reads one (plain integers; the usual spellings of booleans; ISO datetimes to the second, the
usual CSV form): when it reads every value of a column, the general rule (several casts; a
datetime format inferred) is not needed."""


def cast_columns(
    df: pl.DataFrame, types: Mapping[str, ColumnType]
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The columns of ``types`` cast by :func:`parse_expr`'s rules, and the failures.

    Returns ``(typed, failed)``: ``typed`` has the columns of ``types`` in that order (float
    NaN becomes null, i.e. NaN counts as missing); ``failed`` has one boolean column per column
    that needed parsing (true where a non-null value could not be read); columns already of
    their type are not cast and have no failure column. Each value is parsed once, for its
    value and its failure flag, and a text column that :data:`_FAST_PARSE` reads entirely skips
    the general rule.
    """
    schema = df.schema  # built once: df.schema makes a new mapping on every access
    parse = {n: t for n, t in types.items() if not is_native(schema[n], t)}
    fast = {
        n: _FAST_PARSE[t] for n, t in parse.items() if schema[n] == pl.String and t in _FAST_PARSE
    }
    parsed = df.select(fn(pl.col(n)).alias(n) for n, fn in fast.items()) if fast else None
    done = set()
    if parsed is not None:
        nulls = df.select(pl.col(n).null_count() for n in fast).row(0, named=True)
        done = {n for n in fast if parsed[n].null_count() == nulls[n]}
    general = [
        parse_expr(pl.col(n), schema[n], t).alias(n) for n, t in parse.items() if n not in done
    ]
    rest = df.select(general) if general else pl.DataFrame()
    columns: dict[str, pl.Series] = {}
    failed: dict[str, pl.Series] = {}
    for name, typ in types.items():
        if name not in parse:
            value = df[name]
        else:
            value = parsed[name] if name in done and parsed is not None else rest[name]
            failed[name] = df[name].is_not_null() & value.is_null()
        if typ == "float":
            value = value.fill_nan(None)
        columns[name] = value
    return pl.DataFrame(columns), pl.DataFrame(failed)  # no columns: an empty frame


def fmt_type(typ: str) -> str:
    """``"an int"``, ``"a float"``: the type with its article, for messages."""
    return f"{_ARTICLE.get(typ, 'a')} {typ}"


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    """``" (did you mean 'x'?)"`` when a close candidate exists, else ``""``."""
    close = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


# --------------------------------------------------------------------------- inference


def _infer_types(
    df: pl.DataFrame, names: list[str], type_hints: Mapping[str, str], min_share: float
) -> dict[str, ColumnType]:
    types: dict[str, ColumnType] = {}
    to_parse: list[str] = []
    schema = df.schema  # built once: df.schema makes a new mapping on every access
    for name in names:
        dtype = schema[name]
        if name in type_hints:
            types[name] = cast("ColumnType", type_hints[name])
            continue
        if dtype == pl.String:
            to_parse.append(name)
            continue
        typ = logical_type(dtype)
        if typ is None:
            raise DataError(
                f"column '{name}' has the type {dtype}, which a data contract cannot describe",
                where="contract inference",
                expected="numbers, booleans, strings, dates or datetimes",
                found=str(dtype),
                fix="Drop the column (data.columns.drop) or convert it before modelyard reads it.",
            )
        types[name] = typ
    if not to_parse:
        return types

    def enough(ok: int, nonnull: int) -> bool:
        return nonnull > 0 and ok >= min_share * nonnull

    # Pass 1: numbers (the common case), with the non-null counts. A column is numeric when
    # enough of its values read as numbers; it is int when every one of them is an integer
    # ("55.3" among "55", "57" makes a float column, not junk in an int column).
    counts = df.select(
        *[pl.col(c).count().alias(f"n:{c}") for c in to_parse],
        *[pl.col(c).cast(pl.Int64, strict=False).count().alias(f"int:{c}") for c in to_parse],
        *[pl.col(c).cast(pl.Float64, strict=False).count().alias(f"num:{c}") for c in to_parse],
    ).row(0, named=True)
    rest: list[str] = []
    for c in to_parse:
        if enough(counts[f"num:{c}"], counts[f"n:{c}"]):
            types[c] = "int" if counts[f"int:{c}"] == counts[f"num:{c}"] else "float"
        else:
            rest.append(c)
    if not rest:
        return types
    # Pass 2: two cheap counts that rule out booleans and dates: a value is a bool only if it
    # is true/false, a date or datetime only if it starts like an ISO date.
    iso = r"^\d{4}-\d{2}-\d{2}"
    counts2 = df.select(
        *[
            pl.col(c).str.to_lowercase().is_in(["true", "false"]).sum().alias(f"bool:{c}")
            for c in rest
        ],
        *[pl.col(c).str.contains(iso).sum().alias(f"iso:{c}") for c in rest],
    ).row(0, named=True)
    dated: list[str] = []
    for c in rest:
        n = counts[f"n:{c}"]
        if enough(counts2[f"bool:{c}"], n):
            types[c] = "bool"
        elif enough(counts2[f"iso:{c}"], n):
            dated.append(c)
        else:
            types[c] = "str"
    if dated:  # Pass 3: parse only the columns that look like dates.
        counts3 = df.select(
            parse_expr(pl.col(c), pl.String(), t).count().alias(f"{t}:{c}")
            for c in dated
            for t in ("date", "datetime")
        ).row(0, named=True)
        for c in dated:
            n = counts[f"n:{c}"]
            dates: tuple[ColumnType, ...] = ("date", "datetime")
            types[c] = next((t for t in dates if enough(counts3[f"{t}:{c}"], n)), "str")
    return types


def _widen(lo: Any, hi: Any, typ: ColumnType, margin: float) -> tuple[float, float]:
    lo_f, hi_f = float(lo), float(hi)
    pad = (hi_f - lo_f) * margin
    if pad:
        # Never widen across zero (counts stay non-negative); keep the numbers short.
        lo_f = max(lo_f - pad, 0.0) if lo_f >= 0 else lo_f - pad
        hi_f = min(hi_f + pad, 0.0) if hi_f <= 0 else hi_f + pad
        lo_f, hi_f = float(f"{lo_f:.12g}"), float(f"{hi_f:.12g}")
    if typ == "int":
        lo_f, hi_f = float(math.floor(lo_f)), float(math.ceil(hi_f))
    return lo_f, hi_f


def _infer_task(typ: ColumnType, distinct: int) -> Task:
    if typ == "float":
        return "regression"
    if typ in ("str", "bool", "date", "datetime"):
        return "binary" if distinct <= 2 else "multiclass"
    return "binary" if distinct <= 2 else "regression"


def infer_contract(
    df: pl.DataFrame,
    *,
    target: str | None,
    task: Task | None,
    roles: ColumnRoles,
    options: ContractSection,
    type_hints: Mapping[str, str] = MappingProxyType({}),
) -> DataContract:
    """Infer the data contract of the reference (training) frame ``df``.

    Rules, column by column (columns listed in ``roles.drop`` are left out):

    - **type**: a native column maps directly (:func:`logical_type`). A ``String`` column (CSV
      files are read as text) is tried as a number (``int`` when every number in it is an
      integer, else ``float``), then ``bool`` (true/false only), ``date``, ``datetime`` (ISO
      8601); the first that reads at least ``options.min_parsed_share`` (95%) of its non-null
      values wins, else it stays ``str``.
      A little junk (``"n/a"``, ``"?"``) thus does not make a number column text: the column
      keeps its type, ``unreadable`` counts the junk, ``reason`` says so with examples, and
      validation quarantines those rows with the reason. ``type_hints`` (``read.dtypes`` /
      ``parse_dates``) override the inference.
    - **nullable**: whether the column has missing values in the reference (NaN counts as
      missing); the target is never nullable.
    - **min / max**: for numbers, the observed range widened by ``options.range_margin`` times
      its span (rounded outwards for ints; a bound is never widened across zero, so
      non-negative data keeps a minimum of at least 0). Dates and datetimes get no inferred
      bounds: time moves on, and next month's rows are not invalid (declare ``min``/``max``
      in contract.yaml to bound them).
    - **categories**: for ``str`` columns with at most ``options.max_categories`` distinct
      values, the sorted distinct values.
    - **unique**: for ``id`` columns, and for non-float columns whose (at least 20) non-null
      values are all different.
    - **role**: from ``target`` and ``roles``; **null_rate** and **distinct** are informational.
    - **identifiers and free text**: a ``str`` column of undeclared role whose distinct values
      are more than ``options.max_categories`` and at least ``options.near_unique_share`` of
      its (at least 20) values is no category. If most of its values hold several words it is
      free text (``text: true``: TF-IDF features), else an identifier (role ``id``: never a
      feature). ``reason`` says which, and why.
    - **task**: ``task`` if given, else from the target: float -> regression, int with two
      values -> binary, other ints -> regression, text/bool -> binary or multiclass.

    The work is a few column-parallel polars passes (parse counts, cast, statistics).
    """
    present = set(df.columns)
    wanted = {"target": [target] if target else [], "id": roles.id, "leakage": roles.leakage}
    wanted["time"] = [roles.time] if roles.time else []
    wanted["type_hints"] = list(type_hints)
    for what, cols in wanted.items():
        for col in cols:
            if col not in present:
                raise DataError(
                    f"the {what} column '{col}' is not in the data{did_you_mean(col, present)}",
                    where="contract inference",
                    expected=f"one of {name_list(df.columns)}",
                    fix="Correct the column name in modelyard.yaml.",
                )
    for col, hint in type_hints.items():
        if hint not in _polars_types():
            raise DataError(
                f"the type hint '{hint}' for column '{col}' is not a contract type",
                where="contract inference",
                expected=f"one of {list(_polars_types())}",
            )
    dropped = set(roles.drop)
    names = [c for c in df.columns if c not in dropped]
    n = df.height
    types = _infer_types(df, names, type_hints, options.min_parsed_share)
    typed, failed = cast_columns(df, types)
    fail_counts: dict[str, int] = failed.sum().row(0, named=True) if failed.width else {}

    ranged = [c for c in names if types[c] in ("int", "float")]
    stats = typed.select(
        *[pl.col(c).null_count().alias(f"null:{c}") for c in names],
        *[pl.col(c).drop_nulls().n_unique().alias(f"distinct:{c}") for c in names],
        *[pl.col(c).min().alias(f"min:{c}") for c in ranged],
        *[pl.col(c).max().alias(f"max:{c}") for c in ranged],
    ).row(0, named=True)
    categorical = [
        c
        for c in names
        if types[c] == "str" and 0 < stats[f"distinct:{c}"] <= options.max_categories
    ]
    cats: dict[str, list[str]] = {}
    if categorical:
        row = typed.select(
            pl.col(c).drop_nulls().unique().sort().implode() for c in categorical
        ).row(0, named=True)
        cats = {c: list(row[c]) for c in categorical}

    role_of = declared_roles(target, roles)
    reasons = _junk_reasons(df, types, failed, fail_counts, n)
    inferred = _identifiers_and_text(typed, names, types, role_of, stats, n, options)
    columns: list[ColumnContract] = []
    for c in names:
        typ = types[c]
        missing = stats[f"null:{c}"] - fail_counts.get(c, 0)
        nonnull = n - stats[f"null:{c}"]
        distinct = stats[f"distinct:{c}"]
        role = role_of.get(c, "feature")
        text, why = False, reasons.get(c)
        if c in inferred:
            kind, why = inferred[c]
            role, text = ("id", False) if kind == "id" else ("feature", True)
        lo: float | str | None = None
        hi: float | str | None = None
        if c in ranged and stats[f"min:{c}"] is not None:
            lo, hi = _widen(stats[f"min:{c}"], stats[f"max:{c}"], typ, options.range_margin)
        all_different = typ != "float" and nonnull >= _UNIQUE_MIN_ROWS and distinct == nonnull
        unique = c in roles.id or all_different
        columns.append(
            ColumnContract(
                name=c,
                type=typ,
                role=role,
                nullable=missing > 0 and role != "target",
                min=lo,
                max=hi,
                categories=cats.get(c),
                unique=unique,
                null_rate=round(missing / n, 6) if n else 0.0,
                distinct=distinct,
                text=text,
                unreadable=fail_counts.get(c) or None,
                reason=why,
            )
        )
    if target and task is None:
        task = _infer_task(types[target], stats[f"distinct:{target}"])
    return DataContract(target=target, task=task if target else None, rows=n, columns=columns)


def with_typical_values(contract: DataContract, frame: pl.DataFrame) -> DataContract:
    """``contract`` with each column's :attr:`~ColumnContract.typical` value taken from
    ``frame`` (the training rows, typed as the contract says): the median of a number, date or
    time column (the lower middle value, so a value the data holds; NaN and infinities left
    out), the most frequent value of a ``str`` or ``bool`` column (ties: the smallest).
    Columns missing from ``frame``, or without a value, keep ``None``."""
    columns: list[ColumnContract] = []
    for col in contract.columns:
        value: Any = None
        if col.name in frame.columns:
            value = _typical(frame.get_column(col.name), col.type)
        columns.append(col.model_copy(update={"typical": value}))
    return contract.model_copy(update={"columns": columns})


def _typical(series: pl.Series, typ: ColumnType) -> Any:
    values = series.drop_nulls()
    if typ in ("str", "bool"):
        if values.len() == 0:
            return None
        counts = values.rename("value").value_counts(name="count")
        top = counts.filter(pl.col("count") == pl.col("count").max()).sort("value")
        value = top.get_column("value")[0]
        return bool(value) if typ == "bool" else str(value)
    if values.dtype.is_float():
        values = values.filter(values.is_finite())
    if values.len() == 0:
        return None
    middle = values.sort()[(values.len() - 1) // 2]
    if typ == "int":
        return int(middle)
    if typ == "float":
        return float(middle)
    if isinstance(middle, dt.date):  # date and datetime: ISO text, as min and max
        return middle.isoformat()
    return middle if isinstance(middle, int | float | str) else str(middle)


def _junk_reasons(
    df: pl.DataFrame,
    types: Mapping[str, ColumnType],
    failed: pl.DataFrame,
    fail_counts: Mapping[str, int],
    rows: int,
) -> dict[str, str]:
    """Why a column kept its type although some of its values cannot be read as it."""
    junky = [c for c, k in fail_counts.items() if k]
    if not junky:
        return {}
    shown = {
        c: df[c].filter(failed[c]).unique(maintain_order=True).head(3).to_list() for c in junky
    }
    out: dict[str, str] = {}
    for c in junky:
        k = fail_counts[c]
        examples = ", ".join(f'"{v}"' for v in shown[c])
        out[c] = (
            f"{k:,} of {rows:,} values ({k / rows:.1%}) are not {fmt_type(types[c])} "
            f"(e.g. {examples}), so validation quarantines their rows; make the type str "
            "to keep them"
        )
    return out


def _identifiers_and_text(
    typed: pl.DataFrame,
    names: list[str],
    types: Mapping[str, ColumnType],
    role_of: Mapping[str, ColumnRole],
    stats: Mapping[str, Any],
    rows: int,
    options: ContractSection,
) -> dict[str, tuple[Literal["id", "text"], str]]:
    """Text columns of undeclared role that are no categories: free text, or identifiers."""
    candidates = []
    for c in names:
        nonnull = rows - stats[f"null:{c}"]
        distinct = stats[f"distinct:{c}"]
        if (
            types[c] == "str"
            and c not in role_of
            and nonnull >= _UNIQUE_MIN_ROWS
            and distinct > options.max_categories
            and distinct >= options.near_unique_share * nonnull
        ):
            candidates.append(c)
    if not candidates:
        return {}
    worded = typed.select(
        pl.col(c).str.strip_chars().str.contains(r"\s").sum().alias(c) for c in candidates
    ).row(0, named=True)
    out: dict[str, tuple[Literal["id", "text"], str]] = {}
    for c in candidates:
        nonnull = rows - stats[f"null:{c}"]
        distinct = stats[f"distinct:{c}"]
        words = worded[c] or 0
        head = f"{distinct:,} distinct values in {nonnull:,} rows ({distinct / nonnull:.0%})"
        if words >= 0.5 * nonnull:
            out[c] = (
                "text",
                f"{head} and several words in {words / nonnull:.0%} of them, so free text "
                "(TF-IDF features), not categories",
            )
        else:
            out[c] = (
                "id",
                f"{head} and a single word in {1 - words / nonnull:.0%} of them, so an "
                "identifier, not a feature",
            )
    return out


# --------------------------------------------------------------------------- roles

_ROLE_KEY = {
    "target": "data.target",
    "id": "data.columns.id",
    "leakage": "data.columns.leakage",
    "time": "data.columns.time",
}


def declared_roles(target: str | None, roles: ColumnRoles) -> dict[str, ColumnRole]:
    """The roles modelyard.yaml declares, by column (columns it drops have none)."""
    out: dict[str, ColumnRole] = {}
    for c in roles.leakage:
        out[c] = "leakage"
    if roles.time:
        out[roles.time] = "time"
    for c in roles.id:
        out[c] = "id"
    if target:
        out[target] = "target"
    for c in roles.drop:
        out.pop(c, None)
    return out


def check_roles(
    contract: DataContract,
    *,
    target: str | None,
    roles: ColumnRoles,
    text: str,
    source: str,
    config_source: str = "modelyard.yaml",
) -> None:
    """Raise a :class:`~modelyard.errors.ConfigError` naming both files when the contract's
    roles disagree with the roles modelyard.yaml declares.

    The rule (no file silently wins): a column modelyard.yaml declares (``data.target``,
    ``data.columns.id`` / ``leakage`` / ``time``) must have that role in the contract, and
    every other column must be a ``feature`` there, unless the contract gives a ``reason``
    for its role (modelyard inferred it: an identifier; or you documented your own choice).
    ``text`` (the contract file's text) locates each problem by line.
    """
    declared = declared_roles(target, roles)
    by_name = {c.name: (i, c) for i, c in enumerate(contract.columns)}
    found: list[tuple[tuple[str | int, ...], str]] = []
    if (contract.target or None) != (target or None):
        yaml_says = f"'{target}' ({_ROLE_KEY['target']})" if target else "no target"
        found.append(
            (
                ("target",),
                f"the target is {contract.target!r} here, but {config_source} has {yaml_says}",
            )
        )
    for name, role in declared.items():
        key = _ROLE_KEY[role]
        if name not in by_name:
            hint = did_you_mean(name, by_name)
            found.append(
                (
                    ("columns",),
                    f"{config_source} declares '{name}' as {role} ({key}), but there is no such "
                    f"column here{hint}",
                )
            )
            continue
        i, col = by_name[name]
        if col.role != role:
            found.append(
                (
                    ("columns", i, "role"),
                    f"'{name}' has role {col.role} here, but {config_source} declares it {role} "
                    f"({key}): set role: {role} here, or change {key}",
                )
            )
    for name, (i, col) in by_name.items():
        if name in declared or col.role == "feature" or col.reason is not None:
            continue
        key = _ROLE_KEY.get(col.role, "data.columns")
        found.append(
            (
                ("columns", i, "role"),
                f"'{name}' has role {col.role} here, but {config_source} does not declare it "
                f"({key}): add it there, set role: feature here, or give the role a reason: "
                "line here",
            )
        )
    if not found:
        return
    loc = _Locator(text, source)
    problems = [Problem(loc(path), _dotted(path), message) for path, message in found]
    problems.append(
        Problem(
            source,
            "",
            f"no file wins: make {source} and {config_source} agree, or delete {source} to "
            f"infer it again from the data and {config_source}",
        )
    )
    raise ConfigError(problems, source=f"{source} (against {config_source})")


# --------------------------------------------------------------------------- YAML

_HEADER = """\
# modelyard data contract (format version {version}).
#
# Inferred from the reference data, then yours: edit it and commit it. Every batch is
# validated against it; rows that break it go to the quarantine with the reason.
#
# Per column:
#   type        int | float | str | bool | date | datetime (values that cannot be read
#               as this type are violations)
#   role        feature | target | id | time | leakage. Roles declared in modelyard.yaml
#               (data.target, data.columns.id / leakage / time) must be the same here: a
#               difference is an error that names both files. A role modelyard inferred
#               comes with a reason.
#   nullable    false: a missing value is a violation (the target is never nullable)
#   min, max    inclusive range (numbers; ISO text for dates); delete a line to drop the bound
#   categories  the allowed values of a text column; delete the key to allow any value
#   unique      true: repeated values are violations (the first occurrence is kept)
#   text        true: free text, encoded with TF-IDF instead of as categories
#   null_rate, distinct, unreadable   what the reference data held (informational)
#   reason      why modelyard inferred this role, text or type (an identifier, free text,
#               a number column with some junk)
#   typical     the median (numbers, dates) or most frequent value (text, bool) of the
#               training data, in the contract registered with a model (informational)
# Top level: allow_extra_columns: true accepts (and ignores) columns not listed here.
"""

_FLOW_WIDTH = 88
_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
"""libyaml's safe loader when PyYAML has it: a contract of 10,000 columns loads in a second
instead of half a minute."""
_DUMPER: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def _scalar(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return "true" if value is True else "false" if value is False else "null"
    if isinstance(value, int):
        return str(value)
    text = yaml.dump(
        value, Dumper=_DUMPER, default_flow_style=True, allow_unicode=True, width=1 << 30
    )
    return text.removesuffix("\n").removesuffix("\n...").strip()


def _number(value: float | str, typ: str) -> str:
    if isinstance(value, float) and typ == "int" and value.is_integer():
        return _scalar(int(value))
    return _scalar(value)


def contract_to_yaml(contract: DataContract) -> str:
    """The contract as a readable YAML document, with a header explaining how to edit it.

    Keys come in a fixed order; optional keys that are unset are left out; a short list of
    categories is written on one line (``[a, b, c]``), a long one as a block list.
    ``contract_from_yaml(contract_to_yaml(c)) == c``.
    """
    lines = [_HEADER.format(version=contract.version).rstrip("\n")]
    lines.append(f"version: {contract.version}")
    lines.append(f"target: {_scalar(contract.target)}")
    lines.append(f"task: {_scalar(contract.task)}")
    if contract.rows is not None:
        lines.append(f"rows: {contract.rows}")
    lines.append(f"allow_extra_columns: {_scalar(contract.allow_extra_columns)}")
    lines.append("columns:")
    for col in contract.columns:
        lines.append(f"  - name: {_scalar(col.name)}")
        lines.append(f"    type: {col.type}")
        lines.append(f"    role: {col.role}")
        lines.append(f"    nullable: {_scalar(col.nullable)}")
        if col.min is not None:
            lines.append(f"    min: {_number(col.min, col.type)}")
        if col.max is not None:
            lines.append(f"    max: {_number(col.max, col.type)}")
        if col.categories is not None:
            flow = _scalar(col.categories)
            if len(flow) <= _FLOW_WIDTH and "\n" not in flow:
                lines.append(f"    categories: {flow}")
            else:
                lines.append("    categories:")
                lines.extend(f"      - {_scalar(v)}" for v in col.categories)
        if col.unique:
            lines.append("    unique: true")
        if col.null_rate is not None:
            lines.append(f"    null_rate: {_scalar(col.null_rate)}")
        if col.distinct is not None:
            lines.append(f"    distinct: {col.distinct}")
        if col.text:
            lines.append("    text: true")
        if col.unreadable is not None:
            lines.append(f"    unreadable: {col.unreadable}")
        if col.reason is not None:
            lines.append(f"    reason: {_scalar(col.reason)}")
        if col.typical is not None:
            lines.append(f"    typical: {_scalar(col.typical)}")
    return "\n".join(lines) + "\n"


class _Locator:
    """``source:line`` of a key path of the YAML ``text``; the document is composed (slow for
    a contract of 10,000 columns) only when a problem needs a line."""

    def __init__(self, text: str, source: str) -> None:
        self._text, self._source = text, source
        self._lines: dict[tuple[str | int, ...], int] | None = None

    def __call__(self, path: tuple[str | int, ...]) -> str:
        if self._lines is None:
            self._lines = _line_map(self._text)
        while path and path not in self._lines:
            path = path[:-1]
        return f"{self._source}:{self._lines[path]}" if path in self._lines else self._source


def _dotted(path: tuple[str | int, ...]) -> str:
    """``columns[2].type``: a key path as text."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _line_map(text: str) -> dict[tuple[str | int, ...], int]:
    """1-based line of every key / list item of a YAML document, by its path."""
    lines: dict[tuple[str | int, ...], int] = {}

    def walk(node: yaml.Node, path: tuple[str | int, ...]) -> None:
        lines[path] = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                sub = (*path, str(key.value))
                walk(value, sub)
                lines[sub] = key.start_mark.line + 1
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                walk(item, (*path, i))

    try:
        root = yaml.compose(text, Loader=_LOADER)
    except yaml.YAMLError:
        return lines
    if root is not None:
        walk(root, ())
    return lines


_FIELDS = {
    "contract": list(DataContract.model_fields),
    "column": list(ColumnContract.model_fields),
}


def contract_from_yaml(text: str, *, source: str) -> DataContract:
    """Read a contract written by :func:`contract_to_yaml` (and maybe edited by hand).

    Every problem is collected and raised at once as a :class:`~modelyard.errors.ConfigError`
    whose problems carry ``source:line``, the key path (``columns[2].type``) and a message;
    unknown keys and misspelt values get a "did you mean". Beyond the field types it checks
    that column names are unique, the target is a column and is not nullable, ``min <= max``,
    and that only ``str`` columns have categories.
    """
    try:
        data = yaml.load(text, Loader=_LOADER)  # a safe loader (libyaml when available)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark is not None else source
        raise ConfigError(
            [Problem(where, "", f"not valid YAML: {getattr(exc, 'problem', exc)}")], source=source
        ) from None
    if not isinstance(data, dict):
        raise ConfigError(
            [Problem(source, "", "a contract is a mapping with 'version' and 'columns' keys")],
            source=source,
        )
    for col in data.get("columns") or []:  # unquoted YAML dates load as date objects
        if isinstance(col, dict):
            for bound in ("min", "max", "typical"):
                if isinstance(col.get(bound), dt.date):
                    col[bound] = col[bound].isoformat()
    loc, key = _Locator(text, source), _dotted

    def column_name(path: tuple[str | int, ...]) -> str:
        cols = data.get("columns")
        if (
            len(path) >= 2
            and path[0] == "columns"
            and isinstance(path[1], int)
            and isinstance(cols, list)
            and path[1] < len(cols)
            and isinstance(cols[path[1]], dict)
            and cols[path[1]].get("name") is not None
        ):
            return f"column '{cols[path[1]]['name']}': "
        return ""

    problems: list[Problem] = []
    try:
        contract = DataContract.model_validate(data)
    except ValidationError as exc:
        for err in exc.errors():
            epath = tuple(err["loc"])
            if err["type"] == "extra_forbidden":
                fields = _FIELDS["column" if epath and epath[0] == "columns" else "contract"]
                msg = f"unknown key '{epath[-1]}'{did_you_mean(str(epath[-1]), fields)}"
            elif err["type"] == "literal_error":
                expected = str(err.get("ctx", {}).get("expected", ""))
                options = [o.strip(" '") for o in expected.replace(" or ", ", ").split(",")]
                found = err["input"]
                msg = f"{expected} expected, found {found!r}{did_you_mean(str(found), options)}"
            elif err["type"] == "missing":
                msg = "required key is missing"
            else:
                msg = f"{err['msg']} (found {err['input']!r})"
            problems.append(Problem(loc(epath), key(epath), column_name(epath) + msg))
        raise ConfigError(problems, source=source) from None

    seen: set[str] = set()
    for i, col in enumerate(contract.columns):
        path: tuple[str | int, ...] = ("columns", i)
        if col.name in seen:
            problems.append(Problem(loc(path), key(path), f"column '{col.name}' is listed twice"))
        seen.add(col.name)
        if col.min is not None and col.max is not None:
            if type(col.min) is not type(col.max):
                problems.append(
                    Problem(
                        loc(path), key(path), f"column '{col.name}': min and max differ in kind"
                    )
                )
            elif col.min > col.max:  # type: ignore[operator]
                problems.append(
                    Problem(
                        loc(path), key(path), f"column '{col.name}': min {col.min} > max {col.max}"
                    )
                )
        for bound in ("min", "max"):
            value = getattr(col, bound)
            if value is None:
                continue
            if col.type in ("int", "float") and not isinstance(value, float):
                problems.append(
                    Problem(
                        loc((*path, bound)),
                        key((*path, bound)),
                        f"column '{col.name}': {bound} of a number column must be a number, found {value!r}",
                    )
                )
            elif col.type in ("date", "datetime"):
                try:
                    (dt.date if col.type == "date" else dt.datetime).fromisoformat(str(value))
                except ValueError:
                    problems.append(
                        Problem(
                            loc((*path, bound)),
                            key((*path, bound)),
                            f"column '{col.name}': {bound} must be an ISO {col.type}, found {value!r}",
                        )
                    )
            elif col.type in ("str", "bool"):
                problems.append(
                    Problem(
                        loc((*path, bound)),
                        key((*path, bound)),
                        f"column '{col.name}': a {col.type} column has no {bound}",
                    )
                )
        if col.categories is not None and col.type != "str":
            problems.append(
                Problem(
                    loc((*path, "categories")),
                    key((*path, "categories")),
                    f"column '{col.name}': only str columns have categories (type is {col.type})",
                )
            )
    if contract.target is not None:
        if contract.target not in seen:
            problems.append(
                Problem(
                    loc(("target",)),
                    "target",
                    f"'{contract.target}' is not a column{did_you_mean(contract.target, seen)}",
                )
            )
        else:
            i = contract.names.index(contract.target)
            if contract.columns[i].nullable:
                problems.append(
                    Problem(
                        loc(("columns", i, "nullable")),
                        key(("columns", i, "nullable")),
                        f"column '{contract.target}': the target cannot be nullable",
                    )
                )
    if problems:
        raise ConfigError(problems, source=source)
    return contract


# --------------------------------------------------------------------------- tables

SAMPLE_ROWS = 200_000
"""Rows of a multi-part table the contract's types and roles are inferred from."""
_EXAMPLES = 3


def infer_contract_table(
    table: Table,
    *,
    target: str | None,
    task: Task | None,
    roles: ColumnRoles,
    options: ContractSection,
    type_hints: Mapping[str, str] = MappingProxyType({}),
    seed: int = 0,
    executor: Executor | None = None,
    sample_rows: int = SAMPLE_ROWS,
    task_of: Callable[[pl.Series], Task] | None = None,
) -> DataContract:
    """:func:`infer_contract` for a table of any size, without holding it in memory.

    A table of one part is read whole: exactly :func:`infer_contract`. A larger table is
    sampled: at most ``sample_rows`` rows, spread over every part in proportion to its rows,
    at positions drawn from ``seed`` (the whole table when it has no more rows). Types, roles,
    ``text`` and the identifiers are inferred from the sample. Then one streamed pass over
    every part (one task per part through ``executor``, statistics merged in part order)
    makes right for the whole table what validation enforces, so that no valid row of the
    training data is quarantined because the sample missed it:

    - ``min`` / ``max``: the whole table's range, widened as :func:`infer_contract` does;
    - ``nullable``, ``null_rate``, ``unreadable`` (and its ``reason``): whole-table counts;
    - ``categories``: the whole table's values of every text column that had at most
      ``options.max_categories`` in the sample; more than that in the table: no list (any
      value), as :func:`infer_contract` decides; ``distinct`` is then exact for those columns
      (and from the sample for the others: informational);
    - ``unique`` (inferred, not declared): kept only when no value repeats in the whole table
      (:func:`~modelyard.data.parts.repeats_across_parts`, exact).

    ``task_of`` (``task`` is ``None``): the task inferred from the target's values: the
    sample's, plus the target values the sample missed.
    """
    import numpy as np

    from modelyard.compute import map_in_order
    from modelyard.data.parts import repeats_across_parts

    parts = table.parts()
    if len(parts) == 1:
        df = table.collect()
        if target is not None and task is None and task_of is not None:
            task = task_of(df.get_column(target))
        return infer_contract(
            df, target=target, task=task, roles=roles, options=options, type_hints=type_hints
        )
    sizes = table.part_rows()
    n = sum(sizes)
    picks = _sample_positions(sizes, sample_rows, seed)
    sample = pl.concat(
        map_in_order(
            executor, _read_rows, [(str(p), k) for p, k in zip(parts, picks, strict=True)]
        ),
        how="vertical",
    )
    infer_task = target is not None and task is None and task_of is not None
    if sample.height == n:  # the whole table: exactly infer_contract
        if infer_task and target in sample.columns:
            assert task_of is not None
            task = task_of(sample.get_column(target))
        return infer_contract(
            sample, target=target, task=task, roles=roles, options=options, type_hints=type_hints
        )
    contract = infer_contract(
        sample, target=target, task=task, roles=roles, options=options, type_hints=type_hints
    )  # the task (when inferred) comes after the pass: the sample may miss a rare class
    schema = sample.schema
    types = {c.name: c.type for c in contract.columns}
    levels = [
        c.name
        for c in contract.columns
        if c.type == "str" and (c.distinct or 0) <= options.max_categories
    ]  # the columns that are categories, or could be: their values in the whole table
    if target is not None and target not in levels:
        levels.append(target)
    cap = max(options.max_categories, 1_000)
    maybe_float = [
        c for c, t in types.items() if t == "int" and schema[c] == pl.String and c not in type_hints
    ]  # int in the sample; float if the table holds a number that is not an integer
    stats = list(
        map_in_order(
            executor,
            _contract_stats,
            [(str(p), types, dict(schema), levels, cap, maybe_float) for p in parts],
        )
    )
    merged = _merge_stats(stats, cap)
    floats = {
        c for c in maybe_float if merged["num"][f"int:{c}"] != merged["num"][f"num:{c}"]
    }  # as infer_contract decides: int only when every number is an integer
    unique = [c.name for c in contract.columns if c.unique and c.name not in roles.id]
    repeated: set[str] = set()
    if unique:
        offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64).tolist()
        found = repeats_across_parts(parts, offsets, unique, types, executor)
        repeated = {c for c in unique if any(len(f[c]) for f in found)}
    columns: list[ColumnContract] = []
    for inferred in contract.columns:
        col, c = inferred, inferred.name
        nulls, fails = merged["null"][c], merged["fail"].get(c, 0)
        if c in floats:
            nulls, fails = merged["num"][f"null:{c}"], merged["num"][f"fail:{c}"]
            merged["min"][c], merged["max"][c] = (
                merged["num"][f"min:{c}"],
                merged["num"][f"max:{c}"],
            )
            col = inferred.model_copy(update={"type": "float", "unique": c in roles.id})
            merged["junk"][c] = [v for v in merged["junk"].get(c, []) if not _is_number(v)]
        missing = nulls - fails
        update: dict[str, Any] = {
            "nullable": missing > 0 and col.role != "target",
            "null_rate": round(missing / n, 6) if n else 0.0,
            "unreadable": fails or None,
        }
        if col.type in ("int", "float"):
            lo, hi = merged["min"].get(c), merged["max"].get(c)
            if lo is not None and hi is not None:
                update["min"], update["max"] = _widen(lo, hi, col.type, options.range_margin)
        if c in levels and col.type == "str":
            values = merged["levels"][c]
            update["distinct"] = len(values) if values is not None else col.distinct
            ok = values is not None and 0 < len(values) <= options.max_categories
            update["categories"] = sorted(values) if ok and values is not None else None
        if c in repeated:
            update["unique"] = False
        if fails and (col.reason is None or col.unreadable):
            shown = ", ".join(f'"{v}"' for v in merged["junk"].get(c, [])[:_EXAMPLES])
            eg = f" (e.g. {shown})" if shown else ""
            update["reason"] = (
                f"{fails:,} of {n:,} values ({fails / n:.1%}) are not {fmt_type(col.type)}"
                f"{eg}, so validation quarantines their rows; make the type str to keep them"
            )
        columns.append(col.model_copy(update=update))
    task = contract.task
    if infer_task:  # from the sample's target values and those the sample missed
        assert task_of is not None and target is not None
        raw = sample.get_column(target)
        typed = cast_columns(raw.to_frame(), {target: types[target]})[0].to_series()
        seen = set(typed.drop_nulls().to_list())
        more = [v for v in (merged["levels"].get(target) or []) if v not in seen]
        extra = pl.Series(target, more).cast(schema[target], strict=False)
        task = task_of(pl.concat([raw, extra]) if more else raw)
    return contract.model_copy(update={"columns": columns, "rows": n, "task": task})


def _is_number(value: Any) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


def _sample_positions(sizes: Sequence[int], rows: int, seed: int) -> list[list[int]]:
    """Positions of at most ``rows`` rows, in each part in proportion to its rows (every
    row when the table has no more), drawn from ``seed``."""
    import numpy as np

    total = sum(sizes)
    if total <= rows:
        return [list(range(s)) for s in sizes]
    shares = [s * rows // total for s in sizes]
    rest = rows - sum(shares)
    for i in sorted(range(len(sizes)), key=lambda i: -(sizes[i] * rows % total))[:rest]:
        shares[i] += 1
    out = []
    for i, (size, k) in enumerate(zip(sizes, shares, strict=True)):
        rng = np.random.default_rng([seed, i])
        out.append(sorted(rng.choice(size, size=min(k, size), replace=False).tolist()))
    return out


def _read_rows(path: str, positions: list[int]) -> pl.DataFrame:
    """The task of the sample: the rows of one part at ``positions`` (sorted), read as a
    stream (the part is never held whole)."""
    index = "\x00modelyard_index"
    return (
        pl.scan_parquet(path)
        .with_row_index(index)
        .filter(pl.col(index).is_in(pl.Series(positions, dtype=pl.UInt32).implode()))
        .collect(engine="streaming")
        .sort(index)  # in the part's order, whatever the engine's
        .drop(index)
    )


def _contract_stats(
    path: str,
    types: Mapping[str, ColumnType],
    schema: Mapping[str, pl.DataType],
    levels: Sequence[str],
    cap: int,
    maybe_float: Sequence[str] = (),
) -> dict[str, Any]:
    """The task of the streamed pass: one part's mergeable statistics (typed as ``types``;
    the columns ``maybe_float`` also as floats)."""
    df = pl.read_parquet(path, columns=list(types))
    cast: dict[Any, Any] = {c: schema[c] for c in df.columns if c in schema}
    if any(df.schema[c] != t for c, t in cast.items()):
        df = df.cast(cast)
    typed, failed = cast_columns(df, types)
    ranged = [c for c, t in types.items() if t in ("int", "float")]
    row = typed.select(
        *[pl.col(c).null_count().alias(f"null:{c}") for c in types],
        *[pl.col(c).min().alias(f"min:{c}") for c in ranged],
        *[pl.col(c).max().alias(f"max:{c}") for c in ranged],
    ).row(0, named=True)
    fails = failed.sum().row(0, named=True) if failed.width else {}
    junk = {
        c: df[c].filter(failed[c]).unique(maintain_order=True).head(_EXAMPLES).to_list()
        for c, k in fails.items()
        if k
    }
    num: dict[str, Any] = {}
    if maybe_float:
        # each column cast once: an eager select casts again for every expression that casts
        as_float = df.select(pl.col(c).cast(pl.Float64, strict=False) for c in maybe_float)
        numbers = as_float.fill_nan(None)
        ints = df.select(pl.col(c).cast(pl.Int64, strict=False).count() for c in maybe_float)
        for c in maybe_float:
            value, number = as_float.get_column(c), numbers.get_column(c)
            num[f"int:{c}"] = int(ints.get_column(c).item())
            num[f"num:{c}"] = value.count()
            num[f"null:{c}"] = number.null_count()
            num[f"fail:{c}"] = int((df.get_column(c).is_not_null() & value.is_null()).sum())
            num[f"min:{c}"], num[f"max:{c}"] = number.min(), number.max()
    found: dict[str, list[Any] | None] = {}
    for c in levels:
        distinct = typed.get_column(c).drop_nulls().unique(maintain_order=True)
        found[c] = distinct.to_list() if distinct.len() <= cap else None
    return {
        "null": {c: row[f"null:{c}"] for c in types},
        "fail": {c: int(k) for c, k in fails.items()},
        "min": {c: row[f"min:{c}"] for c in ranged},
        "max": {c: row[f"max:{c}"] for c in ranged},
        "junk": junk,
        "levels": found,
        "num": num,
    }


def _merge_stats(stats: Sequence[dict[str, Any]], cap: int) -> dict[str, Any]:
    """The parts' statistics merged in part order (counts summed, extremes, level sets)."""
    out: dict[str, Any] = {
        "null": {}, "fail": {}, "min": {}, "max": {}, "junk": {}, "levels": {}, "num": {},
    }  # fmt: skip
    for part in stats:
        for key, v in part["num"].items():
            kind = key.split(":", 1)[0]
            old = out["num"].get(key)
            if kind in ("min", "max"):
                pick = min if kind == "min" else max
                out["num"][key] = v if old is None else old if v is None else pick(old, v)
            else:
                out["num"][key] = (old or 0) + v
        for c, k in part["null"].items():
            out["null"][c] = out["null"].get(c, 0) + k
        for c, k in part["fail"].items():
            out["fail"][c] = out["fail"].get(c, 0) + k
        for c, v in part["min"].items():
            if v is not None and (out["min"].get(c) is None or v < out["min"][c]):
                out["min"][c] = v
        for c, v in part["max"].items():
            if v is not None and (out["max"].get(c) is None or v > out["max"][c]):
                out["max"][c] = v
        for c, values in part["junk"].items():
            shown = out["junk"].setdefault(c, [])
            shown.extend(v for v in values if v not in shown and len(shown) < _EXAMPLES)
        for c, values in part["levels"].items():
            if c in out["levels"] and out["levels"][c] is None:
                continue
            if values is None:
                out["levels"][c] = None
                continue
            known = out["levels"].setdefault(c, {})
            known.update(dict.fromkeys(values))
            if len(known) > cap:
                out["levels"][c] = None
    out["levels"] = {c: None if v is None else list(v) for c, v in out["levels"].items()}
    return out
