"""Validation of a batch against the data contract and the declared checks.

:func:`validate` casts the batch to the contract's types, evaluates every rule as a boolean
polars expression in one ``select`` (true where a row breaks the rule), and splits the rows:
valid rows continue, typed; invalid rows go to the quarantine with their **raw** values, their
input position ``_row`` and the reasons ``_reasons``. No row is ever silently dropped: in
``quarantine`` mode every input row is in exactly one of the two frames.

Rules of the contract, per column (see :mod:`modelyard.data.contract` for the casts):

- ``type``: a non-missing value that cannot be read as the column's type;
- ``not_null``: a missing value (null, or NaN in a float column) in a non-nullable column
  (the target is never nullable); a value that failed its cast is reported as ``type`` only;
- ``range``: a value below ``min`` or above ``max`` (inclusive bounds);
- ``category``: a value not in ``categories``;
- ``unique``: a repeat of a value seen earlier in the batch; the first occurrence is valid,
  every later one is a violation (so the valid rows stay unique).

Declared checks (``validation.checks``) ignore missing values except ``not_null``; ``min`` /
``max`` on a text column compare the values read as numbers (text that is not a number fails);
``in`` values are read as the column's type; ``regex`` must match the whole value; an
``expression`` is SQL (``pl.sql_expr``) evaluated on the typed columns and must be true
(null counts as false). A check naming an unknown column, or an expression that does not
parse, names an unknown column or is not true/false, is a :class:`~modelyard.errors.DataError`
raised before any row is checked. So is a missing contract column or an unexpected extra one.

Two modes. ``train`` (the pipeline's validation) enforces every rule above. ``score`` (batch
scoring and the prediction server) reads the contract's ``range`` and ``category`` rules as
what the training data held, not as validity: a value outside the training range or a category
never seen in training is **drift**. Such rows are scored and flagged (``drift`` in the report,
the :data:`DRIFT` reasons in :attr:`ValidationResult.drift`), never quarantined. Types,
nullability, ``unique`` and the declared checks stay hard in both modes; a row of labelled
data without its target goes as ``validation.missing_target`` says in both modes (by default to
the quarantine, counted apart, not invalid). :class:`RowChecks`
evaluates the declared checks on records (the prediction server) with the same expressions.

A table of any size (:func:`validate_table`) is validated part by part with the same rules,
one task per part through the executor; the parts' counts merge into one report, equal to the
report of the whole table validated at once, and ``unique`` holds across parts. The input
lines that ingestion could not read as rows join the quarantine there, and count as invalid.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field

from modelyard.config.schema import Check, ValidationSection
from modelyard.data.contract import (
    ColumnType,
    DataContract,
    cast_columns,
    did_you_mean,
    fmt_type,
    logical_type,
    polars_type,
)
from modelyard.errors import NAMES_SHOWN, DataError, ValidationFailed, name_list

if TYPE_CHECKING:
    import numpy as np
    import polars as pl

    from modelyard.compute import Executor
    from modelyard.data.table import Ingested, Table
else:
    from modelyard.data.lazy import numpy as np
    from modelyard.data.lazy import polars as pl

log = logging.getLogger(__name__)

ROW = "_row"
"""Quarantine column: 0-based position of the row in the validated batch (in the whole table
for :func:`validate_table`)."""
REASONS = "_reasons"
"""Quarantine column: why the row is invalid, reasons joined by ``"; "``."""
DRIFT = "_drift"
"""Scoring output column: why a scored row is flagged as drift (a value outside the training
range, an unseen category), reasons joined by ``"; "``; null when the row is not flagged."""
DRIFT_CHECKS = ("range", "category")
"""Contract rules that are drift, not invalid data, when scoring (``mode="score"``)."""

Mode = Literal["train", "score"]

_EXAMPLES = 5
_SHOW_CHARS = 40
_MASK = "\x00modelyard_mask_"
_FAIL = "\x00modelyard_fail_"
_DUP = "\x00modelyard_dup_"

Example = str | int | float | bool | None


class Violation(BaseModel):
    """One rule broken by some rows."""

    check: str
    """``type``, ``not_null``, ``range``, ``category``, ``unique`` (contract rules),
    ``missing_target`` (rows left out of training, not invalid) or the name of a declared
    check."""
    column: str | None
    """The column, or ``None`` for a row-level expression check."""
    rows: int
    """How many rows break the rule."""
    examples: list[Example] = Field(default_factory=list)
    """The first offending raw values (long text shortened)."""
    example_rows: list[int] = Field(default_factory=list)
    """The input positions of the first offending rows."""
    example_lines: list[str] = Field(default_factory=list)
    """``file:line`` of the first input lines that are not rows (check ``malformed_line``)."""
    message: str = ""
    """What the rule requires, in words."""

    def __str__(self) -> str:
        if self.example_lines:
            lines = f"{self.rows:,} line{'s' if self.rows != 1 else ''}"
            return f"malformed lines: {lines} (e.g. {', '.join(self.example_lines[:3])})"
        where = f"{self.check} on '{self.column}'" if self.column else f"check {self.check}"
        values = list(dict.fromkeys(v for v in self.examples if v is not None))[:3]
        if values:  # a missing value says nothing: show where the rows are instead
            eg = f" (e.g. {', '.join(repr(v) for v in values)})"
        elif self.example_rows:
            eg = f" (e.g. row{'s' if len(self.example_rows) > 1 else ''} "
            eg += f"{', '.join(str(r) for r in self.example_rows[:3])})"
        else:
            eg = ""
        return f"{where}: {self.rows:,} row{'s' if self.rows != 1 else ''}{eg}"


class ValidationReport(BaseModel):
    """What validation found, for people (``summary``) and machines (JSON)."""

    rows: int
    valid_rows: int
    """Rows that broke no rule and have their target: the rows that train."""
    invalid_rows: int
    """Rows that broke a rule (a missing target excepted): they count against
    ``max_invalid_fraction``."""
    invalid_fraction: float
    missing_target_rows: int = 0
    """Rows whose target is missing (``missing_target: exclude``): in the quarantine with the
    reason ``missing target value`` and left out of training, but not invalid data."""
    on_error: Literal["quarantine", "warn", "fail"]
    max_invalid_fraction: float
    violations: list[Violation]
    """Broken rules, most rows first."""
    passed: bool
    """No row broke any rule."""
    contract_checked: bool
    """Whether the data contract was checked (``validation.contract``)."""
    rules: int
    """How many rules were evaluated."""
    cast_columns: list[str] = Field(default_factory=list)
    """Columns that had to be read into their contract type (text from CSV files)."""
    mode: Mode = "train"
    """``train``: every contract rule is enforced; ``score``: ranges and categories are drift."""
    drifted_rows: int = 0
    """Rows kept (``score`` mode) holding a value outside the training range or an unseen
    category."""
    drift: list[Violation] = Field(default_factory=list)
    """The ``range`` and ``category`` rules those rows break, most rows first."""

    def summary(self, top: int = 5) -> str:
        head = (
            f"{self.invalid_rows:,} of {self.rows:,} rows invalid ({self.invalid_fraction:.2%})"
            if self.invalid_rows
            else f"all {self.rows:,} rows valid"
        )
        if self.missing_target_rows:
            head += f"; {self.missing_target_rows:,} without a target (left out of training)"
        lines = [head, *(f"  - {v}" for v in self.violations[:top])]
        if len(self.violations) > top:
            lines.append(f"  - ... and {len(self.violations) - top} more rules")
        if self.drifted_rows:
            lines.append(f"{self.drifted_rows} rows flagged as drift (outside the training data)")
            lines.extend(f"  - {v}" for v in self.drift[:top])
            if len(self.drift) > top:
                lines.append(f"  - ... and {len(self.drift) - top} more rules")
        return "\n".join(lines)


@dataclass
class ValidatedFrame:
    """The outcome of :func:`validate` (one batch in memory)."""

    valid: pl.DataFrame
    """Typed rows that continue, in input order: the valid ones, or with ``on_error: warn``
    all rows that have their target (values that failed their cast are null there)."""
    quarantine: pl.DataFrame
    """Raw values of the invalid rows and of the rows without a target, plus ``_row`` and
    ``_reasons``."""
    report: ValidationReport
    valid_index: np.ndarray[Any, np.dtype[np.int64]] = field(
        default_factory=lambda: np.zeros(0, dtype=np.int64)
    )
    """Input position of each row of ``valid``."""
    drift: pl.Series = field(default_factory=lambda: pl.Series(DRIFT, [], dtype=pl.String))
    """``score`` mode: the :data:`DRIFT` reasons of each row of ``valid`` (null: not flagged).
    Empty in ``train`` mode."""


@dataclass(frozen=True)
class ValidationResult:
    """The outcome of :func:`validate_table` (a table of any size, validated part by part)."""

    valid: Table
    """Typed rows that continue, in input order (as :attr:`ValidatedFrame.valid`)."""
    quarantine: Table
    """Raw values of the invalid rows and of the rows without a target, plus ``_row`` (the
    row's input position) and ``_reasons``; when ingestion rejected input lines, those lines
    too (after the rows), with ``_file``, ``_line`` (1-based line number) and ``_text``, and
    null ``_row`` and row values. ``valid`` (its report count) + ``quarantine`` = input rows
    + rejected lines."""
    report: ValidationReport


@dataclass(frozen=True)
class _Rule:
    check: str
    column: str | None
    mask: pl.Expr
    """On the typed frame: true where the row breaks the rule (never null)."""
    reason: pl.Expr
    """On the raw frame: the reason, for the rows that break the rule."""
    message: str
    drift: bool = False
    """Breaking it flags the row as drift instead of making it invalid (``score`` mode)."""
    allowed: pl.Series | None = None
    """A declared ``in`` check: the allowed values, read as the column's type."""
    missing_target: bool = False
    """A missing target: the row is left out of training but is not invalid data."""


def _show(name: str) -> pl.Expr:
    """The raw value of ``name`` for a reason: quoted, shortened, or ``missing``."""
    s = pl.col(name).cast(pl.String, strict=False)
    short = (
        pl.when(s.str.len_chars() > _SHOW_CHARS)
        .then(s.str.slice(0, _SHOW_CHARS) + pl.lit("…"))
        .otherwise(s)
    )
    return pl.when(s.is_null()).then(pl.lit("missing")).otherwise(pl.lit("'") + short + pl.lit("'"))


def cast_to_contract(df: pl.DataFrame, contract: DataContract) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Cast ``df`` to the contract's types; return ``(typed, failures)``.

    ``typed`` has the columns of ``df`` in their order, contract columns in their contract
    type (NaN in float columns becomes null; values that cannot be read become null), other
    columns untouched. ``failures`` has one boolean column per column that needed a cast,
    true where a non-missing raw value could not be read. Columns already of their type are
    not cast (and have no failure column). Missing contract columns are ignored here.
    """
    schema = df.schema  # built once: df.schema makes a new mapping on every access
    types: dict[str, ColumnType] = {c.name: c.type for c in contract.columns if c.name in schema}
    values, fails = cast_columns(df, types)
    typed = df.with_columns(values) if types else df
    return typed, fails


def _check_columns(df: pl.DataFrame, contract: DataContract) -> None:
    names = contract.names
    columns = df.columns
    present, known = set(columns), set(names)
    missing = [c for c in names if c not in present]
    extra = [] if contract.allow_extra_columns else [c for c in columns if c not in known]
    if not missing and not extra:
        return
    parts = []
    if missing:
        hints = "".join(did_you_mean(c, extra or columns) for c in missing[:NAMES_SHOWN])
        parts.append(
            f"{len(missing):,} missing column{'s' if len(missing) > 1 else ''} "
            f"{name_list(missing)}{hints}"
        )
    if extra:
        parts.append(
            f"{len(extra):,} unexpected column{'s' if len(extra) > 1 else ''} {name_list(extra)}"
        )
    raise DataError(
        "the table does not match the data contract: " + "; ".join(parts),
        where="validation",
        expected=f"the {len(names):,} columns of the contract",
        found=f"{len(columns):,} columns",
        fix="Fix the data, or edit the contract (remove or rename the column, or set "
        "allow_extra_columns: true to ignore extra columns).",
    )


def _contract_rules(
    contract: DataContract,
    schema: pl.Schema,
    fails: set[str],
    missing_target: str = "exclude",
    mode: Mode = "train",
    repeated: Callable[[str], pl.Expr] | None = None,
) -> list[_Rule]:
    drift = mode == "score"
    repeated = repeated or _repeated
    rules: list[_Rule] = []
    for col in contract.columns:
        c, name = pl.col(col.name), col.name
        failed = pl.col(_FAIL + name) if name in fails else None
        if failed is not None:
            rules.append(
                _Rule(
                    "type",
                    name,
                    failed,
                    pl.lit(f"{name}: ") + _show(name) + pl.lit(f" is not {fmt_type(col.type)}"),
                    f"values must be {fmt_type(col.type)}",
                )
            )
        if not col.nullable:
            mask = c.is_null() if failed is None else c.is_null() & ~failed
            if col.role == "target" and missing_target == "exclude":
                rules.append(
                    _Rule(
                        "missing_target", name, mask, pl.lit(f"{name}: missing target value"),
                        "a target value (rows without one are left out of training)",
                        missing_target=True,
                    )
                )  # fmt: skip
            else:
                what = (
                    "missing target value"
                    if col.role == "target"
                    else "missing value (not nullable)"
                )
                rules.append(
                    _Rule("not_null", name, mask, pl.lit(f"{name}: {what}"), "no missing values")
                )
        if col.min is not None or col.max is not None:
            lo, hi = _bound(col.min, col.type), _bound(col.max, col.type)
            mask = pl.lit(False)
            if lo is not None:
                mask = mask | (c < lo)
            if hi is not None:
                mask = mask | (c > hi)
            span = f"[{_fmt(col.min)}, {_fmt(col.max)}]"
            rules.append(
                _Rule(
                    "range",
                    name,
                    mask.fill_null(False),
                    pl.lit(f"{name}: ") + _show(name) + pl.lit(f" is outside {span}"),
                    f"values within {span}",
                    drift,
                )
            )
        if col.categories is not None and logical_type(schema[name]) == "str":
            allowed = pl.Series(col.categories, dtype=pl.String)
            rules.append(
                _Rule(
                    "category",
                    name,
                    c.is_not_null() & ~_is_in(c, allowed),
                    pl.lit(f"{name}: ") + _show(name) + pl.lit(" is not an allowed category"),
                    f"one of {len(col.categories)} categories",
                    drift,
                )
            )
        if col.unique:
            rules.append(
                _Rule(
                    "unique",
                    name,
                    repeated(name),
                    pl.lit(f"{name}: ") + _show(name) + pl.lit(" is a duplicate"),
                    "unique values",
                )
            )
    return rules


_EQ_CHAIN = 16


def _is_in(c: pl.Expr, allowed: pl.Series) -> pl.Expr:
    """``c.is_in(allowed)``; a chain of equalities for short lists (several times faster).

    Nulls and repeats of ``allowed`` are dropped in plain Python: a polars query per column
    (``Series.unique``) made a table with thousands of category sets slow.
    """
    values = list(dict.fromkeys(v for v in allowed.to_list() if v is not None))
    if not values:
        return pl.lit(False)
    if len(values) <= _EQ_CHAIN:
        return pl.any_horizontal([c == pl.lit(v, dtype=allowed.dtype) for v in values])
    return c.is_in(pl.Series(values, dtype=allowed.dtype).implode())


def _bound(value: float | str | None, typ: ColumnType) -> Any:
    import datetime as dt

    if value is None:
        return None
    if typ == "date":
        return pl.lit(dt.date.fromisoformat(str(value)))
    if typ == "datetime":
        return pl.lit(dt.datetime.fromisoformat(str(value)))
    return value


def _fmt(value: float | str | None) -> str:
    if value is None:
        return "…"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _check_name(check: Check) -> str:
    if check.name:
        return check.name
    if check.expression is not None:
        text = check.expression if len(check.expression) <= 60 else check.expression[:59] + "…"
        return f"expression '{text}'"
    kinds = [
        k
        for k, on in (
            ("min", check.min is not None),
            ("max", check.max is not None),
            ("in", check.values is not None),
            ("regex", check.regex is not None),
            ("unique", check.unique),
            ("not_null", check.not_null),
        )
        if on
    ]
    return f"{check.column}.{'+'.join(kinds)}"


def _repeated(name: str) -> pl.Expr:
    """True on a non-missing value seen earlier in the batch (the ``unique`` rules)."""
    c = pl.col(name)
    return c.is_not_null() & ~c.is_first_distinct()


def _declared_rule(
    check: Check, schema: pl.Schema, repeated: Callable[[str], pl.Expr] | None = None
) -> _Rule:
    """The rule of one declared check; a :class:`DataError` if it cannot apply to ``schema``.

    ``repeated(column)``: the ``unique`` mask (default: within the batch)."""
    name = _check_name(check)

    def bad(problem: str, fix: str) -> DataError:
        return DataError(f"the check '{name}' {problem}", where="validation.checks", fix=fix)

    if check.expression is not None:
        try:
            expr = pl.sql_expr(check.expression)
            roots = expr.meta.root_names()
        except Exception as exc:
            raise bad(
                f"has an expression that does not parse: {exc}",
                'Write a SQL condition such as "x > 0 AND y > 0".',
            ) from None
        unknown = [r for r in roots if r not in schema]
        if unknown:
            hint = "".join(did_you_mean(u, schema.names()) for u in unknown[:NAMES_SHOWN])
            raise bad(
                f"names unknown column(s) {name_list(unknown)}{hint}",
                f"Use the columns of the data: {name_list(schema.names())}.",
            )
        try:
            dtype = pl.DataFrame(schema=schema).select(expr.alias("ok")).schema["ok"]
        except Exception as exc:
            raise bad(f"cannot be evaluated: {exc}", "Fix the expression.") from None
        if dtype != pl.Boolean:
            raise bad(
                f"is not a true/false condition (it gives {dtype})",
                'Compare values, e.g. "price > 0".',
            )
        return _Rule(
            name,
            None,
            ~expr.fill_null(False),
            pl.lit(f"check {name} failed"),
            f"rows satisfy {check.expression}",
        )

    col = str(check.column)
    if col not in schema:
        raise bad(
            f"is on column '{col}', which is not in the data{did_you_mean(col, schema.names())}",
            "Correct the column name of the check.",
        )
    dtype = schema[col]
    typ = logical_type(dtype)
    c = pl.col(col)
    masks: list[pl.Expr] = []
    allowed: pl.Series | None = None
    if check.min is not None or check.max is not None:
        if typ in ("int", "float"):
            num = c
            unreadable = pl.lit(False)
        elif typ == "str":
            num = c.cast(pl.Float64, strict=False)
            unreadable = c.is_not_null() & num.is_null()
        else:
            raise bad(
                f"has min/max but column '{col}' is {typ}",
                "Use an expression check for dates, e.g. \"day >= '2020-01-01'\".",
            )
        out = pl.lit(False)
        if check.min is not None:
            out = out | (num < check.min)
        if check.max is not None:
            out = out | (num > check.max)
        masks.append(out.fill_null(False) | unreadable)
    if check.values is not None:
        raw_values = [v for v in check.values if v is not None]
        if typ == "str":
            allowed = pl.Series([str(v) for v in raw_values], dtype=pl.String)
        else:
            try:
                allowed = pl.Series(raw_values).cast(dtype, strict=False)
            except Exception:
                allowed = pl.Series([None] * len(raw_values), dtype=dtype)
            if allowed.null_count():
                raise bad(
                    f"allows values {raw_values} that are not all {typ} like column '{col}'",
                    f"List {typ} values in 'in'.",
                )
        masks.append(c.is_not_null() & ~_is_in(c, allowed))
    if check.regex is not None:
        pattern = f"^(?:{check.regex})$"
        try:
            pl.Series([""]).str.contains(pattern)
        except Exception as exc:
            raise bad(
                f"has a regex polars cannot use: {exc}",
                "Use the Rust regex syntax (no look-around or back-references).",
            ) from None
        text = c.cast(pl.String, strict=False)
        masks.append(text.is_not_null() & ~text.str.contains(pattern).fill_null(False))
    if check.unique:
        masks.append((repeated or _repeated)(col))
    if check.not_null:
        masks.append(c.is_null())
    mask = pl.any_horizontal(masks) if len(masks) > 1 else masks[0]
    return _Rule(
        name,
        col,
        mask,
        pl.lit(f"{col}: ") + _show(col) + pl.lit(f" failed check {name}"),
        f"check {name}",
        allowed=allowed,
    )


def _example(value: Any) -> Example:
    if value is None or isinstance(value, bool | int | float):
        return value
    text = (
        value
        if isinstance(value, str)
        else (value.isoformat() if hasattr(value, "isoformat") else str(value))
    )
    return text if len(text) <= 80 else text[:79] + "…"


def validate(
    df: pl.DataFrame,
    contract: DataContract | None,
    options: ValidationSection,
    *,
    mode: Mode = "train",
    duplicates: Mapping[str, np.ndarray[Any, np.dtype[np.int64]]] | None = None,
) -> ValidatedFrame:
    """Validate the batch ``df`` against ``contract`` and ``options.checks``.

    ``duplicates``: for a batch of a larger input (batch scoring), by column of the
    ``unique`` rules, the positions in the batch of the values seen earlier in the whole
    input (as :func:`validate_table` computes them); without it, repeats are looked for in
    the batch.

    ``mode="score"`` (data to be scored by a trained model) flags values outside the
    contract's ranges and categories as drift instead of invalid (see the module docstring).

    With ``options.contract`` false or ``contract`` ``None`` only the declared checks run, on
    the values as they are (no cast). ``options.on_error`` decides what happens to invalid
    rows: ``quarantine`` (set aside), ``warn`` (kept, listed in the report and quarantine
    frame), ``fail`` (:class:`~modelyard.errors.ValidationFailed`). In every mode more invalid
    rows than ``options.max_invalid_fraction`` raise ``ValidationFailed``; the exception
    carries the whole :class:`ValidatedFrame` (``.result``: report and quarantine), so that
    the caller can write them before it stops.

    Rows with a missing target are left out of ``valid`` and put in the quarantine (reason
    ``missing target value``), but with ``options.missing_target: exclude`` (the default) they
    are not invalid data: they are counted in ``missing_target_rows``, not in
    ``invalid_rows``, and never make the run fail. With ``missing_target: invalid`` they are
    ``not_null`` violations like any other.

    A frame-level problem (missing or unexpected columns, an unusable check) raises
    :class:`~modelyard.errors.DataError` before any row is checked.

    This is the function for one batch in memory (batch scoring, continuous ingestion,
    labelling); :func:`validate_table` validates a table of any size part by part.
    """
    batch = _validate_batch(df, contract, options, mode, duplicates=duplicates)
    report = _report(batch.tally, options, mode, options.contract and contract is not None)
    result = ValidatedFrame(
        valid=batch.valid,
        quarantine=batch.quarantine,
        report=report,
        valid_index=batch.kept_index,
        drift=batch.drift,
    )
    _enforce(report, result)
    return result


@dataclass(frozen=True)
class _Hits:
    """Rows breaking one rule: how many, and the first few (raw value, input position)."""

    rows: int
    examples: list[Example]
    example_rows: list[int]
    example_lines: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Tally:
    """What the validation of a batch found, in numbers that add up across batches."""

    rows: int
    kept: int
    """Rows that continue (written to ``valid``)."""
    out: int
    """Rows in the quarantine."""
    invalid: int
    unlabelled: int
    drifted: int
    rules: tuple[tuple[str, str | None, str], ...]
    """``(check, column, message)`` of every rule, by rule index."""
    hits: dict[int, _Hits]
    """Rules broken by some rows (drift rules excepted), by rule index."""
    drift: dict[int, _Hits]
    """Drift rules broken by kept rows (``score`` mode), by rule index."""
    cast_columns: tuple[str, ...]
    lines: _Hits | None = None
    """Input lines that are not rows (rejected by ingestion): in the quarantine, invalid."""


@dataclass(frozen=True)
class _Batch:
    valid: pl.DataFrame
    quarantine: pl.DataFrame
    kept_index: np.ndarray[Any, np.dtype[np.int64]]
    drift: pl.Series
    tally: _Tally


def _validate_batch(
    df: pl.DataFrame,
    contract: DataContract | None,
    options: ValidationSection,
    mode: Mode,
    *,
    offset: int = 0,
    duplicates: Mapping[str, np.ndarray[Any, np.dtype[np.int64]]] | None = None,
) -> _Batch:
    """Validate one batch; never raises for invalid rows (the caller decides, on the merged
    report). ``offset``: the input position of the batch's first row (``_row`` and the
    examples are input positions). ``duplicates``: for the columns of ``unique`` rules, the
    batch positions of the values seen earlier in the whole table (computed by
    :func:`validate_table` across parts); without it, repeats are looked for in the batch."""
    columns = df.columns
    for reserved in (ROW, REASONS, *((DRIFT,) if mode == "score" else ())):
        if reserved in columns:
            raise DataError(
                f"the column name '{reserved}' is reserved for the quarantine",
                where="validation",
                fix=f"Rename the column '{reserved}'.",
            )
    use_contract = contract if options.contract else None
    if use_contract is not None:
        _check_columns(df, use_contract)
        typed, fails = cast_to_contract(df, use_contract)
    else:
        typed, fails = df, pl.DataFrame()
    schema = typed.schema
    n = df.height
    frame = (
        typed.hstack(fails.rename({c: _FAIL + c for c in fails.columns})) if fails.width else typed
    )
    repeated: Callable[[str], pl.Expr] | None = None
    if duplicates is not None:
        flags = []
        for name, positions in duplicates.items():
            seen = np.zeros(n, dtype=bool)
            seen[positions] = True
            flags.append(pl.Series(_DUP + name, seen, dtype=pl.Boolean))
        if flags:
            frame = frame.hstack(flags)
        known = set(duplicates)

        def repeated(name: str) -> pl.Expr:
            return pl.col(_DUP + name) if name in known else _repeated(name)

    rules = (
        _contract_rules(
            use_contract, schema, set(fails.columns), options.missing_target, mode, repeated
        )
        if use_contract
        else []
    )
    rules += [_declared_rule(check, schema, repeated) for check in options.checks]

    no_row = pl.Series([False] * n, dtype=pl.Boolean)
    if rules:
        masks = frame.select(
            r.mask.fill_null(False).alias(f"{_MASK}{i}") for i, r in enumerate(rules)
        )
        counts = masks.select(pl.all().sum()).row(0)
        hard = [f"{_MASK}{i}" for i, r in enumerate(rules) if not (r.drift or r.missing_target)]
        unlabelled_cols = [f"{_MASK}{i}" for i, r in enumerate(rules) if r.missing_target]
        invalid = masks.select(pl.any_horizontal(hard)).to_series() if hard else no_row
        unlabelled = (
            masks.select(pl.any_horizontal(unlabelled_cols)).to_series()
            if unlabelled_cols
            else no_row
        )
    else:
        masks, counts, invalid, unlabelled = pl.DataFrame(), (), no_row, no_row
    out = invalid | unlabelled  # rows that go to the quarantine
    invalid_rows = int(invalid.sum()) if n else 0
    unlabelled_rows = int(unlabelled.sum()) if n else 0
    out_rows = int(out.sum()) if n else 0
    # the rows that continue: with on_error: warn the invalid ones too, never those without a target
    warn = options.on_error == "warn"
    keep = ~unlabelled if warn else ~out
    keep_all = not (unlabelled_rows if warn else out_rows)
    kept_index = (
        np.arange(offset, offset + n, dtype=np.int64)
        if keep_all
        else np.flatnonzero(keep.to_numpy()).astype(np.int64) + offset
    )
    drifted_rows, drift, drift_reasons = _drift(
        df, masks, rules, counts, None if keep_all else keep, kept_index, mode
    )

    hits: dict[int, _Hits] = {}
    hit = [i for i, k in enumerate(counts) if k and not rules[i].drift]
    if out_rows:
        bad_idx = np.flatnonzero(out.to_numpy()) + offset
        raw_bad = df.filter(out).with_columns(pl.Series(ROW, bad_idx, dtype=pl.Int64))
        mask_bad = masks.filter(out).select(f"{_MASK}{i}" for i in hit)
        both = raw_bad.hstack(mask_bad)
        reasons = both.select(
            pl.concat_str(
                [pl.when(pl.col(f"{_MASK}{i}")).then(rules[i].reason) for i in hit],
                separator="; ",
                ignore_nulls=True,
            ).alias(REASONS)
        ).to_series()
        quarantine = raw_bad.with_columns(reasons)
        for i in hit:
            rule = rules[i]
            shown = [ROW, f"{_MASK}{i}", *([rule.column] if rule.column else [])]
            sel = both.select(shown).filter(pl.col(f"{_MASK}{i}")).head(_EXAMPLES)
            examples = [_example(v) for v in sel[rule.column].to_list()] if rule.column else []
            hits[i] = _Hits(int(counts[i]), examples, sel[ROW].to_list())
    else:
        quarantine = df.head(0).with_columns(
            pl.Series(ROW, [], dtype=pl.Int64), pl.Series(REASONS, [], dtype=pl.String)
        )
    tally = _Tally(
        rows=n,
        kept=len(kept_index),
        out=out_rows,
        invalid=invalid_rows,
        unlabelled=unlabelled_rows,
        drifted=drifted_rows,
        rules=tuple((r.check, r.column, r.message) for r in rules),
        hits=hits,
        drift=drift,
        cast_columns=tuple(fails.columns),
    )
    valid = typed if keep_all else typed.filter(keep)
    return _Batch(valid, quarantine, kept_index, drift_reasons, tally)


def _merge(tallies: Sequence[_Tally]) -> _Tally:
    """The tally of the batches one after the other (``tallies`` in input order): counts
    summed, examples the first ones in input order."""
    if len(tallies) == 1:
        return tallies[0]

    def hits(which: Callable[[_Tally], Mapping[int, _Hits]]) -> dict[int, _Hits]:
        out: dict[int, _Hits] = {}
        for tally in tallies:
            for i, h in which(tally).items():
                prev = out.get(i)
                if prev is None:
                    out[i] = h
                else:
                    out[i] = _Hits(
                        prev.rows + h.rows,
                        (prev.examples + h.examples)[:_EXAMPLES],
                        (prev.example_rows + h.example_rows)[:_EXAMPLES],
                    )
        return dict(sorted(out.items()))

    rules = max((t.rules for t in tallies), key=len)
    lines = [t.lines for t in tallies if t.lines is not None and t.lines.rows]
    return _Tally(
        rows=sum(t.rows for t in tallies),
        kept=sum(t.kept for t in tallies),
        out=sum(t.out for t in tallies),
        invalid=sum(t.invalid for t in tallies),
        unlabelled=sum(t.unlabelled for t in tallies),
        drifted=sum(t.drifted for t in tallies),
        rules=rules,
        hits=hits(lambda t: t.hits),
        drift=hits(lambda t: t.drift),
        cast_columns=tuple(dict.fromkeys(c for t in tallies for c in t.cast_columns)),
        lines=_Hits(
            sum(h.rows for h in lines),
            [e for h in lines for e in h.examples][:_EXAMPLES],
            [],
            [e for h in lines for e in h.example_lines][:_EXAMPLES],
        )
        if lines
        else None,
    )


MALFORMED = "malformed_line"
"""The check of input lines that are not rows (too few or too many fields)."""


def _violations(
    rules: Sequence[tuple[str, str | None, str]], hits: Mapping[int, _Hits]
) -> list[Violation]:
    out = [
        Violation(
            check=rules[i][0],
            column=rules[i][1],
            rows=h.rows,
            examples=h.examples,
            example_rows=h.example_rows,
            message=rules[i][2],
        )
        for i, h in sorted(hits.items())
        if h.rows
    ]
    out.sort(key=lambda v: -v.rows)
    return out


def _report(
    tally: _Tally, options: ValidationSection, mode: Mode, contract_checked: bool
) -> ValidationReport:
    lines = tally.lines.rows if tally.lines is not None else 0
    rows = tally.rows + lines
    invalid = tally.invalid + lines
    violations = _violations(tally.rules, tally.hits)
    if lines:
        assert tally.lines is not None
        violations.append(
            Violation(
                check=MALFORMED,
                column=None,
                rows=lines,
                examples=tally.lines.examples,
                example_lines=tally.lines.example_lines,
                message="lines that read as rows of the table (as many fields as columns)",
            )
        )
        violations.sort(key=lambda v: -v.rows)
    fraction = invalid / rows if rows else 0.0
    return ValidationReport(
        rows=rows,
        valid_rows=rows - tally.out - lines,
        invalid_rows=invalid,
        invalid_fraction=fraction,
        missing_target_rows=tally.unlabelled,
        on_error=options.on_error,
        max_invalid_fraction=options.max_invalid_fraction,
        violations=violations,
        passed=invalid == 0,
        contract_checked=contract_checked,
        rules=len(tally.rules),
        cast_columns=list(tally.cast_columns),
        mode=mode,
        drifted_rows=tally.drifted,
        drift=_violations(tally.rules, tally.drift),
    )


def _enforce(report: ValidationReport, result: Any) -> None:
    """Raise :class:`ValidationFailed` (carrying ``result``) when the report breaks the
    policy (``max_invalid_fraction``, ``on_error: fail``); warn with ``on_error: warn``."""
    found = _found(report.violations)
    n, invalid_rows, fraction = report.rows, report.invalid_rows, report.invalid_fraction
    if fraction > report.max_invalid_fraction:
        raise ValidationFailed(
            f"{invalid_rows:,} of {n:,} rows ({fraction:.2%}) are invalid, more than "
            f"validation.max_invalid_fraction ({report.max_invalid_fraction:.2%})",
            where="validation",
            found=found,
            fix="Fix the data at its source, correct the contract if it is too strict, or "
            "raise validation.max_invalid_fraction.",
            result=result,
        )
    if invalid_rows and report.on_error == "fail":
        raise ValidationFailed(
            f"{invalid_rows:,} of {n:,} rows are invalid and validation.on_error is 'fail'",
            where="validation",
            found=found,
            fix="Fix the data or the contract, or set validation.on_error to 'quarantine' "
            "to set invalid rows aside.",
            result=result,
        )
    if invalid_rows and report.on_error == "warn":
        log.warning("validation: %s", report.summary())


def _found(violations: list[Violation], shown: int = 5) -> str:
    """The first few broken rules (a missing target is not one), and how many more."""
    broken = [v for v in violations if v.check != "missing_target"]
    text = "; ".join(str(v) for v in broken[:shown])
    more = len(broken) - shown
    return text + (f"; and {more:,} more rules" if more > 0 else "")


def _drift(
    df: pl.DataFrame,
    masks: pl.DataFrame,
    rules: list[_Rule],
    counts: Sequence[int],
    kept: pl.Series | None,
    kept_index: np.ndarray[Any, np.dtype[np.int64]],
    mode: Mode,
) -> tuple[int, dict[int, _Hits], pl.Series]:
    """Rows kept despite drift rules (``score`` mode): how many, which rules, and why."""
    soft = [i for i, k in enumerate(counts) if k and rules[i].drift]
    if not soft:
        rows = len(kept_index) if mode == "score" else 0
        return 0, {}, pl.Series(DRIFT, [None] * rows, dtype=pl.String)
    cols = [f"{_MASK}{i}" for i in soft]
    raw = df if kept is None else df.filter(kept)
    both = raw.hstack(masks.select(cols) if kept is None else masks.filter(kept).select(cols))
    both = both.with_columns(pl.Series(ROW, kept_index, dtype=pl.Int64))
    flagged = pl.any_horizontal(cols)
    reasons = both.select(
        pl.when(flagged)
        .then(
            pl.concat_str(
                [pl.when(pl.col(f"{_MASK}{i}")).then(rules[i].reason) for i in soft],
                separator="; ",
                ignore_nulls=True,
            )
        )
        .alias(DRIFT)
    ).to_series()
    drift: dict[int, _Hits] = {}
    for i in soft:
        rule = rules[i]
        shown = [ROW, f"{_MASK}{i}", *([rule.column] if rule.column else [])]
        sel = both.select(shown).filter(pl.col(f"{_MASK}{i}"))
        if not sel.height:
            continue
        head = sel.head(_EXAMPLES)
        drift[i] = _Hits(
            sel.height,
            [_example(v) for v in head[rule.column].to_list()] if rule.column else [],
            head[ROW].to_list(),
        )
    return int(reasons.is_not_null().sum()), drift, reasons


# --------------------------------------------------------------------------- tables

_LINE_COLUMNS = ("_file", "_line", "_text")
"""Quarantine columns of the input lines that are not rows (when ingestion rejected some)."""
_PROBE_ROWS = 64


def validate_table(
    ingested: Ingested,
    contract: DataContract | None,
    options: ValidationSection,
    *,
    mode: Mode = "train",
    folder: Path,
    executor: Executor | None = None,
) -> ValidationResult:
    """Validate a table part by part: :func:`validate`'s rules, for a table of any size.

    One task per part of ``ingested.rows`` runs through ``executor`` (a one-part table runs
    inline: exactly :func:`validate` on the whole frame); each writes its part of the valid
    table and of the quarantine (``folder/valid``, ``folder/quarantine``, same part number) and
    returns its counts and first examples, which merge in part order into one
    :class:`ValidationReport`: counts summed, examples the first in input order,
    ``invalid_fraction`` over the whole input, ``_row`` the row's position in the whole table.
    The input lines that ingestion could not read as rows (``ingested.rejected``) are added
    to the quarantine after the rows (with ``_file``, ``_line``, ``_text`` and their
    ``_reasons``) and count as invalid rows: valid + quarantined = rows + rejected lines.

    Rules across rows hold across parts: ``unique`` (contract and declared checks) is decided
    over the whole table, exactly: a first pass hashes the typed values, a second reads the
    values of the rows whose hash repeats (true repeats and rare collisions). A declared ``expression`` check that compares
    a row with others (an aggregate, a window: ``x < MAX(x)``) would depend on the batch: on a
    table of several parts it is a :class:`~modelyard.errors.DataError`.

    The policy (``max_invalid_fraction``, ``on_error: fail``) is applied to the merged report,
    after both tables are written: :class:`~modelyard.errors.ValidationFailed` carries this
    result, so that the caller can publish the quarantine before it stops.
    """
    from modelyard.compute import map_in_order
    from modelyard.data.table import Table, part_path

    rows = ingested.rows
    parts = rows.parts()
    schema = rows.schema
    sizes = rows.part_rows() if len(parts) > 1 else [rows.num_rows]
    offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64).tolist()
    # Frame-level problems (columns, reserved names, unusable checks) before any row is read.
    _validate_batch(pl.DataFrame(schema=schema), contract, options, mode)
    duplicates: list[dict[str, np.ndarray[Any, np.dtype[np.int64]]] | None] = [None] * len(parts)
    if len(parts) > 1:
        _refuse_checks_across_rows(parts[0], contract, options)
        duplicates = _duplicates_across_parts(parts, offsets, contract, options, executor)
    lines = ingested.rejected.num_rows if ingested.rejected is not None else 0
    valid_dir, quarantine_dir = folder / "valid", folder / "quarantine"
    valid_dir.mkdir(parents=True, exist_ok=True)
    quarantine_dir.mkdir(parents=True, exist_ok=True)
    tasks = [
        (
            str(part),
            str(part_path(valid_dir, i)),
            str(part_path(quarantine_dir, i)),
            contract,
            options,
            mode,
            offsets[i],
            duplicates[i],
            dict(schema),
            lines > 0,
        )
        for i, part in enumerate(parts)
    ]
    try:
        tallies: list[_Tally] = list(map_in_order(executor, _validate_part, tasks))
        if lines:
            tallies.append(_quarantine_lines(ingested.rejected, schema, quarantine_dir, len(parts)))
    except BaseException:
        import shutil

        shutil.rmtree(folder / "valid", ignore_errors=True)
        shutil.rmtree(folder / "quarantine", ignore_errors=True)
        raise
    tally = _merge(tallies)
    report = _report(tally, options, mode, options.contract and contract is not None)
    quarantined = tally.out + (tally.lines.rows if tally.lines is not None else 0)
    result = ValidationResult(
        valid=Table(valid_dir, tally.kept),
        quarantine=Table(quarantine_dir, quarantined),
        report=report,
    )
    _enforce(report, result)
    return result


def _validate_part(
    path: str,
    valid_path: str,
    quarantine_path: str,
    contract: DataContract | None,
    options: ValidationSection,
    mode: Mode,
    offset: int,
    duplicates: Mapping[str, np.ndarray[Any, np.dtype[np.int64]]] | None,
    schema: Mapping[str, pl.DataType],
    with_lines: bool,
) -> _Tally:
    """The task of one part: validate it, write its valid rows and its quarantine."""
    from modelyard.data.table import write_part

    df = _read_part(path, schema)
    batch = _validate_batch(df, contract, options, mode, offset=offset, duplicates=duplicates)
    quarantine = batch.quarantine
    if with_lines:
        quarantine = quarantine.with_columns(
            pl.lit(None, dtype=pl.String).alias("_file"),
            pl.lit(None, dtype=pl.Int64).alias("_line"),
            pl.lit(None, dtype=pl.String).alias("_text"),
        )
    write_part(batch.valid, Path(valid_path))
    write_part(quarantine, Path(quarantine_path))
    return batch.tally


def _read_part(path: str, schema: Mapping[str, pl.DataType], **kw: Any) -> pl.DataFrame:
    """A part, in the table's column types (every part of a table has them)."""
    df = pl.read_parquet(path, **kw)
    wanted: dict[Any, Any] = {c: schema[c] for c in df.columns if c in schema}
    if any(df.schema[c] != t for c, t in wanted.items()):
        df = df.cast(wanted)  # strict: a value that does not fit is an error, never a null
    return df


def _quarantine_lines(rejected: Table, schema: pl.Schema, folder: Path, first: int) -> _Tally:
    """The input lines that are not rows, as quarantine parts ``first``, ``first + 1``, ...
    (row columns null), and their tally: invalid, with their first texts and places."""
    from modelyard.data.table import part_path, write_part

    nulls = [pl.lit(None, dtype=dtype).alias(name) for name, dtype in schema.items()]
    total, index = 0, first
    examples: list[Example] = []
    places: list[str] = []
    for part in rejected.batches():
        if not part.height:
            continue
        frame = part.select(
            *nulls,
            pl.lit(None, dtype=pl.Int64).alias(ROW),
            pl.col("_reasons").cast(pl.String).alias(REASONS),
            pl.col("_file").cast(pl.String),
            pl.col("_line").cast(pl.Int64),
            pl.col("_text").cast(pl.String),
        )
        write_part(frame, part_path(folder, index))
        index += 1
        total += frame.height
        if len(places) < _EXAMPLES:
            head = part.head(_EXAMPLES - len(places))
            examples += [_example(t) for t in head["_text"].to_list()]
            places += [f"{f}:{n}" for f, n in head.select("_file", "_line").iter_rows()]
    return _Tally(
        rows=0, kept=0, out=0, invalid=0, unlabelled=0, drifted=0, rules=(), hits={}, drift={},
        cast_columns=(), lines=_Hits(total, examples, [], places),
    )  # fmt: skip


def _unique_columns(contract: DataContract | None, options: ValidationSection) -> list[str]:
    """The columns of the ``unique`` rules (contract and declared checks)."""
    names: list[str] = []
    if contract is not None and options.contract:
        names += [c.name for c in contract.columns if c.unique]
    names += [str(c.column) for c in options.checks if c.unique and c.column is not None]
    return list(dict.fromkeys(names))


def _duplicates_across_parts(
    parts: Sequence[Path],
    offsets: Sequence[int],
    contract: DataContract | None,
    options: ValidationSection,
    executor: Executor | None,
) -> list[dict[str, np.ndarray[Any, np.dtype[np.int64]]] | None]:
    """For each part, the positions (in the part) of the values of ``unique`` columns seen
    earlier in the table (:func:`~modelyard.data.parts.repeats_across_parts`)."""
    from modelyard.data.parts import repeats_across_parts

    columns = _unique_columns(contract, options)
    if not columns:
        return [None] * len(parts)
    use = contract if options.contract else None
    types = {c.name: c.type for c in use.columns if c.name in columns} if use else {}
    return list(repeats_across_parts(parts, offsets, columns, types, executor))


def _refuse_checks_across_rows(
    first_part: Path, contract: DataContract | None, options: ValidationSection
) -> None:
    """A declared expression check that compares rows (``x < MAX(x)``) cannot run per part:
    its result would depend on where the parts begin. A :class:`DataError` names it."""
    expressions = [c for c in options.checks if c.expression is not None]
    if not expressions:
        return
    head = pl.read_parquet(first_part, n_rows=_PROBE_ROWS)
    use = contract if options.contract else None
    typed = cast_to_contract(head, use)[0] if use is not None else head
    for check in expressions:
        rule = _declared_rule(check, typed.schema)
        if _spans_rows(rule.mask, typed):
            name = _check_name(check)
            raise DataError(
                f"the check '{name}' compares a row with other rows (an aggregate or a "
                "window), so its result would depend on how the table is cut into batches",
                where="validation.checks",
                expected="a condition on the values of one row",
                found=str(check.expression),
                fix="Compare with fixed values (a min/max check, or an expression such as "
                '"x < 100"), or raise data.batch_rows above the table\'s row count to check '
                "the whole table at once.",
            )


_ACROSS_ROWS = (
    r'\{"(Agg|Over|Window)":'  # an aggregate or a window
    r'|(?<!"Column":)"Len"'  # COUNT(*), ROW_NUMBER()
    r'|"function":\{?"(Shift|Rank|Quantile|Diff|Cum\w*|Unique|NUnique|ArgMin|ArgMax)"'
)


def _spans_rows(mask: pl.Expr, typed: pl.DataFrame) -> bool:
    """Whether ``mask`` reads other rows: an aggregate, window or shift in its plan, or a
    result on the probe rows that differs when each row is evaluated alone."""
    try:
        plan = mask.meta.serialize(format="json")
    except Exception:
        plan = ""
    if re.search(_ACROSS_ROWS, plan):
        return True
    if typed.height < 2:
        return False
    together = typed.select(mask.fill_null(False).alias("m")).to_series().to_list()
    alone = [
        typed.slice(i, 1).select(mask.fill_null(False).alias("m")).item()
        for i in range(typed.height)
    ]
    return together != alone


# --------------------------------------------------------------------------- scoring records


def check_columns(check: Check) -> list[str]:
    """The columns a declared check reads (an expression that does not parse reads none)."""
    if check.expression is None:
        return [str(check.column)]
    try:
        return list(pl.sql_expr(check.expression).meta.root_names())
    except Exception:
        return []


def scoring_checks(
    checks: Sequence[Check], absent: Sequence[str]
) -> tuple[list[Check], list[Check]]:
    """The declared checks that can run on scoring data, and those that cannot.

    Scoring data lacks some contract columns by design: the target of unlabelled data, the
    target and leakage columns of a prediction request. A check reading one of ``absent``
    is skipped there (it was enforced on the training data).
    """
    gone = set(absent)
    kept: list[Check] = []
    skipped: list[Check] = []
    for check in checks:
        (skipped if gone.intersection(check_columns(check)) else kept).append(check)
    return kept, skipped


class RowChecks:
    """The declared checks compiled once, then evaluated on records of typed values.

    The prediction server's view of ``validation.checks``: a record passes online exactly
    when its row passes :func:`validate` in batch scoring. Column checks on number and text
    columns (``min``/``max``, ``in``, ``regex``, ``unique`` within the request, ``not_null``)
    are compiled to plain Python predicates with the semantics of their polars rules (a
    property test holds the two together); everything else (``expression`` checks, ``min`` /
    ``max`` on text, ``regex`` on non-text columns) runs the very polars rule of
    :func:`validate` on a one-frame batch of the request's records (about 0.1-0.2 ms a
    request).

    >>> from modelyard.config.schema import Check
    >>> from modelyard.data.contract import ColumnContract, DataContract
    >>> contract = DataContract(columns=[ColumnContract(name="age", type="int")])
    >>> checks = RowChecks([Check(column="age", min=17, max=90)], contract, ["age"])
    >>> checks([{"age": 40.0}, {"age": 95.0}, {"age": None}])
    [[], [('age.min+max', 'age', "age: '95' failed check age.min+max")], []]
    """

    def __init__(
        self, checks: Sequence[Check], contract: DataContract, columns: Sequence[str]
    ) -> None:
        types = {c.name: c.type for c in contract.columns if c.name in set(columns)}
        schema = pl.Schema({name: polars_type(typ) for name, typ in types.items()})
        self._python: list[_PyCheck] = []
        self._rules: list[_Rule] = []
        for check in checks:
            rule = _declared_rule(check, schema)  # also: the check can apply to these columns
            fast = _python_check(check, rule, types)
            if fast is not None:
                self._python.append(fast)
            else:
                self._rules.append(rule)
        needed: set[str] = set()
        for rule in self._rules:
            needed.update(rule.mask.meta.root_names())
            needed.update(rule.reason.meta.root_names())
        self._types = {name: typ for name, typ in types.items() if name in needed}
        self._schema = pl.Schema({name: schema[name] for name in self._types})
        self._masks = [
            r.mask.fill_null(False).alias(f"{_MASK}{i}") for i, r in enumerate(self._rules)
        ]

    def __bool__(self) -> bool:
        return bool(self._python or self._rules)

    def __call__(
        self, rows: Sequence[Mapping[str, Any]]
    ) -> list[list[tuple[str, str | None, str]]]:
        """For each row, the checks it breaks as ``(check, column, message)``."""
        out: list[list[tuple[str, str | None, str]]] = [[] for _ in rows]
        if not rows:
            return out
        for fast in self._python:
            fast.run(rows, out)
        if self._rules:
            self._run_polars(rows, out)
        return out

    def _run_polars(
        self, rows: Sequence[Mapping[str, Any]], out: list[list[tuple[str, str | None, str]]]
    ) -> None:
        types = self._types.items()
        frame = pl.from_dicts(
            [{name: _cell(row.get(name), typ) for name, typ in types} for row in rows],
            schema=self._schema,
        )
        masks = frame.select(self._masks)
        hits = [i for i in range(masks.width) if masks.to_series(i).any()]
        if not hits:
            return
        index = pl.Series(ROW, range(len(rows)), dtype=pl.Int64)
        both = frame.hstack(masks).with_columns(index)
        for i in hits:
            rule = self._rules[i]
            broken = both.filter(pl.col(f"{_MASK}{i}")).select(ROW, rule.reason.alias(REASONS))
            for row, reason in broken.iter_rows():
                out[row].append((rule.check, rule.column, str(reason)))


@dataclass(frozen=True)
class _PyCheck:
    """A declared column check as a Python predicate on typed values (see :class:`RowChecks`)."""

    name: str
    column: str
    fails: Any
    """``value -> bool``: true where the (non-unique) rules of the check break."""
    unique: bool
    typ: ColumnType

    def run(
        self, rows: Sequence[Mapping[str, Any]], out: list[list[tuple[str, str | None, str]]]
    ) -> None:
        col, fails = self.column, self.fails
        seen: set[Any] = set()
        for i, row in enumerate(rows):
            value = row.get(col)
            bad = fails(value)
            if self.unique and value is not None:
                bad = bad or value in seen
                seen.add(value)
            if bad:
                out[i].append(
                    (self.name, col, f"{col}: {self._show(value)} failed check {self.name}")
                )

    def _show(self, value: Any) -> str:
        if value is None:
            return "missing"
        if isinstance(value, bool):
            text = str(value).lower()
        elif self.typ == "int":
            text = str(int(value))
        else:
            text = str(value)
        if len(text) > _SHOW_CHARS:
            text = text[:_SHOW_CHARS] + "…"
        return f"'{text}'"


def _python_check(check: Check, rule: _Rule, types: Mapping[str, ColumnType]) -> _PyCheck | None:
    """The check as a Python predicate, or ``None`` when only its polars rule is exact."""
    if check.expression is not None or rule.column is None:
        return None
    typ = types[rule.column]
    numeric = typ in ("int", "float")
    if (check.min is not None or check.max is not None) and not numeric:
        return None  # text read as numbers: polars' parsing rules
    if check.regex is not None and typ != "str":
        return None  # non-text shown as text: polars' formatting
    lo, hi = check.min, check.max
    allowed = None if rule.allowed is None else frozenset(rule.allowed.drop_nulls().to_list())
    pattern = None if check.regex is None else re.compile(check.regex)
    not_null = check.not_null

    def fails(value: Any) -> bool:
        if value is None:
            return not_null
        if lo is not None and value < lo:
            return True
        if hi is not None and value > hi:
            return True
        if allowed is not None and value not in allowed:
            return True
        return pattern is not None and pattern.fullmatch(value) is None

    return _PyCheck(rule.check, rule.column, fails, check.unique, typ)


def _cell(value: Any, typ: ColumnType) -> Any:
    """A record's typed value as its polars column holds it (ints arrive as floats)."""
    if value is not None and typ == "int":
        return int(value)
    return value
