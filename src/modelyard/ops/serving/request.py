"""The request schema of the prediction server, generated from the data contract.

Two views of one definition:

- :func:`request_model` builds a pydantic model (field names, JSON types, required/optional,
  allowed categories as an enum, ranges, an example) for the OpenAPI document;
- :class:`RecordChecker` is the per-request checker compiled from the same contract: one small
  closure per column, plain Python, no DataFrame. Its verdicts agree with
  :func:`modelyard.data.validation.validate` in ``score`` mode (a test holds them together):
  ``type``, ``not_null`` and the declared ``validation.checks`` are violations; a value
  outside the contract's ``range`` or a ``category`` never seen in training is **drift**: the
  value is kept, the record predicted and flagged. ``unique`` is a property of a data set,
  not of a request, and is not checked here.

JSON typing rules (stricter than CSV parsing, since JSON carries types): ``int`` takes a JSON
integer (or a number with no fractional part), ``float`` any finite JSON number, ``bool``
``true``/``false``, ``str`` a JSON string, ``date`` an ISO ``YYYY-MM-DD`` string and
``datetime`` an ISO 8601 string. ``null`` (or an absent key) is a missing value. Non-finite
numbers (``NaN``, ``Infinity``, ``1e999``) are always rejected.

Accepted fields: the contract's ``feature``, ``time`` and ``id`` columns. A field of a
non-nullable column is required; the others are optional. The target and leakage columns, and
unknown keys, are violations unless the contract sets ``allow_extra_columns``. Declared checks
that read a target or leakage column are skipped (a request never carries them).
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, create_model

from modelyard.config.schema import Check
from modelyard.data.contract import ColumnContract, DataContract, did_you_mean, fmt_type
from modelyard.data.validation import Mode, RowChecks, scoring_checks

ACCEPTED_ROLES = ("feature", "time", "id")
_SHOW_CHARS = 40
_SHOWN_CATEGORIES = 20


@dataclass(frozen=True)
class FieldViolation:
    """One broken rule in one record."""

    column: str | None
    """The field, or ``None`` for a problem with the record as a whole."""
    check: str
    """``type``, ``not_null``, ``range``, ``category`` (the contract rules), ``required``
    (a missing non-nullable field), ``unknown_field``, ``record``, or the name of a declared
    check."""
    message: str
    drift: bool = False
    """A value outside the training data (``range``, ``category``): flagged, not rejected."""

    def as_dict(self) -> dict[str, Any]:
        return {"column": self.column, "check": self.check, "message": self.message}


Checked = tuple[Any, FieldViolation | None]
"""A value checked by a column's closure: the typed value (``None`` if missing or not of the
column's type; a value outside the range or categories is kept, as batch validation keeps it)
and the violation, if any."""


def _show(value: Any) -> str:
    if isinstance(value, dict | list):  # never repr a nested value: it may be huge or deep
        return "a JSON object" if isinstance(value, dict) else "a JSON array"
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**_SHOW_CHARS:
        return f"an integer of about {int(abs(value).bit_length() * 0.30103) + 1} digits"
    text = value if isinstance(value, str) else repr(value)
    if len(text) > _SHOW_CHARS:
        text = text[:_SHOW_CHARS] + "…"
    return f"'{text}'"


def _fmt_bound(value: float | str | None) -> str:
    if value is None:
        return "…"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _compile_column(col: ColumnContract, mode: Mode = "score") -> Callable[[Any], Checked]:
    """The checker of one column: value -> (typed value, violation or None).

    In ``score`` mode a value outside the range or categories keeps its typed value and comes
    with a ``drift`` violation."""
    name, typ = col.name, col.type
    drift = mode == "score"
    nullable = col.nullable
    span = f"[{_fmt_bound(col.min)}, {_fmt_bound(col.max)}]"
    not_null = FieldViolation(name, "not_null", f"{name}: missing value (not nullable)")

    lo: Any = None
    hi: Any = None
    if typ in ("int", "float"):
        lo = None if col.min is None else float(col.min)
        hi = None if col.max is None else float(col.max)
    elif typ == "date":
        lo = None if col.min is None else dt.date.fromisoformat(str(col.min))
        hi = None if col.max is None else dt.date.fromisoformat(str(col.max))
    elif typ == "datetime":
        lo = None if col.min is None else dt.datetime.fromisoformat(str(col.min))
        hi = None if col.max is None else dt.datetime.fromisoformat(str(col.max))
    allowed = frozenset(col.categories) if col.categories is not None and typ == "str" else None

    def bad_type(value: Any) -> Checked:
        return None, FieldViolation(name, "type", f"{name}: {_show(value)} is not {fmt_type(typ)}")

    def out_of_range(value: Any, typed: Any) -> Checked:
        message = f"{name}: {_show(value)} is outside {span}"
        if drift:
            return typed, FieldViolation(name, "range", message + " (the training range)", True)
        return typed, FieldViolation(name, "range", message)

    def missing() -> Checked:
        return (None, None) if nullable else (None, not_null)

    if typ in ("int", "float"):
        is_int = typ == "int"

        def check_number(value: Any) -> Checked:
            if value is None:
                return missing()
            if isinstance(value, bool) or not isinstance(value, int | float):
                return bad_type(value)
            try:
                number = float(value)
            except OverflowError:  # a JSON integer beyond 1.8e308
                number = math.inf
            if not math.isfinite(number):
                return None, FieldViolation(
                    name, "type", f"{name}: {_show(value)} is not a finite number"
                )
            if is_int and (not number.is_integer() or abs(number) >= 2.0**63):
                return bad_type(value)
            if (lo is not None and number < lo) or (hi is not None and number > hi):
                return out_of_range(value, number)
            return number, None

        return check_number

    if typ == "bool":

        def check_bool(value: Any) -> Checked:
            if value is None:
                return missing()
            if not isinstance(value, bool):
                return bad_type(value)
            return value, None

        return check_bool

    if typ == "str":

        def check_str(value: Any) -> Checked:
            if value is None:
                return missing()
            if not isinstance(value, str):
                return bad_type(value)
            if allowed is not None and value not in allowed:
                if drift:
                    message = f"{name}: {_show(value)} is a category unseen in training"
                    return value, FieldViolation(
                        name, "category", message + did_you_mean(value, allowed), True
                    )
                return value, FieldViolation(
                    name,
                    "category",
                    f"{name}: {_show(value)} is not an allowed category"
                    + did_you_mean(value, allowed),
                )
            return value, None

        return check_str

    parse: Callable[[str], Any]
    if typ == "date":

        def parse(text: str) -> Any:
            if len(text) != 10:
                raise ValueError(text)
            return dt.date.fromisoformat(text)

    else:

        def parse(text: str) -> Any:
            if len(text) < 10 or not text[:4].isdigit() or text[4] != "-":
                raise ValueError(text)
            stamp = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
            if stamp.tzinfo is not None:  # naive UTC, as the contract's datetimes
                stamp = stamp.astimezone(dt.UTC).replace(tzinfo=None)
            return stamp

    def check_time(value: Any) -> Checked:
        if value is None:
            return missing()
        if not isinstance(value, str):
            return bad_type(value)
        try:
            stamp = parse(value)
        except ValueError:
            return bad_type(value)
        if (lo is not None and stamp < lo) or (hi is not None and stamp > hi):
            return out_of_range(value, stamp)
        return stamp, None

    return check_time


@dataclass
class CheckedRecord:
    """One record after checking: typed values by column, and what it broke."""

    values: dict[str, Any]
    violations: list[FieldViolation]
    raw: Any
    drift: list[FieldViolation] = field(default_factory=list)
    """Values outside the training data (``score`` mode): kept, predicted, flagged."""


class RecordChecker:
    """Checks JSON records against the contract and the declared checks (compiled once; see
    the module docstring).

    >>> from modelyard.config.schema import Check
    >>> from modelyard.data.contract import ColumnContract, DataContract
    >>> contract = DataContract(columns=[
    ...     ColumnContract(name="age", type="int", nullable=False, min=17.0, max=90.0),
    ...     ColumnContract(name="sex", type="str", categories=["Female", "Male"])])
    >>> checker = RecordChecker(contract, checks=[Check(column="age", max=99)])
    >>> checker.check({"age": 40, "sex": "Male"}).violations
    []
    >>> [v.message for v in checker.check({"age": 12.5, "sex": None}).violations]
    ["age: '12.5' is not an int"]
    >>> [v.message for v in checker.check({"age": 120, "sex": None}).violations]
    ["age: '120' failed check age.max"]
    >>> out = checker.check({"age": 95, "sex": "Mal"})
    >>> out.violations, [v.message for v in out.drift]
    ([], ["age: '95' is outside [17, 90] (the training range)", "sex: 'Mal' is a category unseen in training (did you mean 'Male'?)"])
    """

    def __init__(
        self, contract: DataContract, *, checks: Sequence[Check] = (), mode: Mode = "score"
    ) -> None:
        self.contract = contract
        self.mode = mode
        self.columns = [c for c in contract.columns if c.role in ACCEPTED_ROLES]
        self.names = [c.name for c in self.columns]
        self._checks = [(c.name, _compile_column(c, mode), not c.nullable) for c in self.columns]
        absent = [c.name for c in contract.columns if c.role not in ACCEPTED_ROLES]
        kept, self.skipped_checks = scoring_checks(checks, absent)
        self._declared = RowChecks(kept, contract, self.names) if kept else None
        self._known = frozenset(self.names)
        self._other_roles = {c.name: c.role for c in contract.columns if c.name not in self._known}
        self.allow_extra = contract.allow_extra_columns
        time_cols = [c.name for c in contract.columns if c.role == "time"]
        self.time_column = time_cols[0] if time_cols else None

    def check(self, record: Any) -> CheckedRecord:
        """Check one JSON value (expected: an object); collect every violation."""
        if self._declared is not None:
            return self.check_many([record])[0]
        return self._check(record)

    def _check(self, record: Any) -> CheckedRecord:
        if not isinstance(record, dict):
            what = type(record).__name__ if record is not None else "null"
            return CheckedRecord(
                {n: None for n in self.names},
                [FieldViolation(None, "record", f"a record must be a JSON object, found {what}")],
                record,
            )
        values: dict[str, Any] = {}
        violations: list[FieldViolation] = []
        drift: list[FieldViolation] = []
        get = record.get
        for name, check, required in self._checks:
            raw = get(name)
            if raw is None and required and name not in record:
                values[name] = None
                violations.append(FieldViolation(name, "required", f"{name}: field required"))
                continue
            typed, problem = check(raw)
            values[name] = typed
            if problem is not None:
                (drift if problem.drift else violations).append(problem)
        if len(record) > len(values) or not self.allow_extra:
            extra = [k for k in record if k not in self._known]
            if extra and not self.allow_extra:
                for key in extra:
                    role = self._other_roles.get(key)
                    if role == "target":
                        msg = f"{key}: is the target; send labels to POST /feedback"
                    elif role is not None:
                        msg = f"{key}: a {role} column is not a model input"
                    else:
                        msg = f"{key}: unknown field{did_you_mean(str(key), self.names)}"
                    violations.append(FieldViolation(str(key), "unknown_field", msg))
        return CheckedRecord(values, violations, record, drift)

    def check_many(self, records: Sequence[Any]) -> list[CheckedRecord]:
        check = self._check
        out = [check(r) for r in records]
        declared = self._declared
        if declared is not None:
            for rec, broken in zip(out, declared([c.values for c in out]), strict=True):
                for name, column, message in broken:
                    rec.violations.append(FieldViolation(column, name, message))
                for _, column, _ in broken:  # lenient: a failed value counts as missing
                    if column is not None:
                        rec.values[column] = None
        return out


# --------------------------------------------------------------------------- OpenAPI model


def _example_value(col: ColumnContract) -> Any:
    """The column's typical training value (median or mode) when the contract has it, else
    (a contract registered before it did) a value that passes the contract."""
    if col.typical is not None:
        return col.typical
    if col.categories:
        return col.categories[0]
    if col.type in ("int", "float"):
        if col.min is not None and col.max is not None:
            mid = (float(col.min) + float(col.max)) / 2
            return int(mid) if col.type == "int" else round(mid, 3)
        return 0 if col.type == "int" else 0.0
    if col.type == "bool":
        return False
    if col.type == "date":
        return str(col.min) if col.min is not None else "2024-01-01"
    if col.type == "datetime":
        return str(col.min) if col.min is not None else "2024-01-01T00:00:00"
    return "text"


def example_record(contract: DataContract) -> dict[str, Any]:
    """A typical record of the training data (medians and most frequent values), for the
    OpenAPI docs and smoke tests; values the contract allows where it has no typical value."""
    return {c.name: _example_value(c) for c in contract.columns if c.role in ACCEPTED_ROLES}


def _identifier(name: str, taken: set[str]) -> str:
    ident = "".join(ch if ch.isalnum() else "_" for ch in name) or "field"
    if ident[0].isdigit():
        ident = "f_" + ident
    while ident in taken or ident.startswith("model_"):
        ident = "x_" + ident
    taken.add(ident)
    return ident


def request_model(contract: DataContract, *, title: str = "Record") -> type[BaseModel]:
    """The pydantic model of one record (for documentation; requests go through
    :class:`RecordChecker`). Field aliases are the column names.

    The schema constrains what is rejected (types, required fields, unknown fields); the
    training range of a number and the categories of a text column are not constraints (a value
    outside them is predicted and flagged as drift): they are documented in the description and
    in ``x-training-range`` / ``x-training-categories``.
    """
    fields: dict[str, Any] = {}
    taken: set[str] = set()
    for col in contract.columns:
        if col.role not in ACCEPTED_ROLES:
            continue
        base: Any
        extra: dict[str, Any] = {}
        if col.type == "int":
            base = int
        elif col.type == "float":
            base = float
            extra["allow_inf_nan"] = False
        elif col.type == "bool":
            base = bool
        elif col.type == "date":
            base = dt.date
        elif col.type == "datetime":
            base = dt.datetime
        else:
            base = str
        ident = _identifier(col.name, taken)
        annotation = base if not col.nullable else base | None
        description = f"{col.type}, {col.role}" + ("" if col.nullable else ", required")
        training: dict[str, Any] = {}
        if col.type != "str" and (col.min is not None or col.max is not None):
            training["x-training-range"] = [col.min, col.max]
            description += (
                f"; training range [{_fmt_bound(col.min)}, {_fmt_bound(col.max)}] (values "
                "outside are predicted and flagged as drift)"
            )
        elif col.type == "str" and col.categories is not None:
            training["x-training-categories"] = list(col.categories)
            shown = ", ".join(col.categories[:_SHOWN_CATEGORIES])
            more = len(col.categories) - _SHOWN_CATEGORIES
            description += (
                f"; categories seen in training: {shown}{f' and {more} more' if more > 0 else ''}"
                " (others are predicted and flagged as drift)"
            )
        if training:
            extra["json_schema_extra"] = training
        default: Any = ... if not col.nullable else None
        fields[ident] = (
            annotation,
            Field(
                default,
                alias=col.name,
                description=description,
                examples=[_example_value(col)],
                **extra,
            ),
        )
    config = ConfigDict(
        extra="allow" if contract.allow_extra_columns else "forbid",
        json_schema_extra={"example": example_record(contract)},
        title=title,
    )
    model: type[BaseModel] = create_model(title, __config__=config, **fields)
    return model


_SMALLEST_VALUE = {"int": "0", "float": "0", "bool": "true", "str": '""', "date": '"2000-01-01"',
                   "datetime": '"2000-01-01"'}  # fmt: skip


def smallest_record(contract: DataContract) -> str:
    """The shortest JSON text of a record the server accepts: ``{}`` plus every required
    field with its shortest value (declared checks aside)."""
    parts = [
        f"{json.dumps(c.name)}:{_SMALLEST_VALUE[c.type]}"
        for c in contract.columns
        if c.role in ACCEPTED_ROLES and not c.nullable
    ]
    return "{" + ",".join(parts) + "}"


def max_records(
    contract: DataContract, body_bytes: int, batch_rows: int, *, wrapper: int = 0
) -> int:
    """The most records one request can hold: ``batch_rows``, or fewer when even the smallest
    records (:func:`smallest_record`, compact JSON) of that many would exceed ``body_bytes``.
    ``wrapper`` is the length of the text around the array (``{"instances":`` ... ``}``)."""
    size = len(smallest_record(contract).encode())
    fit = (body_bytes - wrapper - 1) // (size + 1)  # "[" + n records + (n - 1) commas + "]"
    return max(0, min(batch_rows, fit))


def categories_of(contract: DataContract) -> Mapping[str, list[str]]:
    """Allowed categories per accepted column (those that have them)."""
    return {
        c.name: list(c.categories)
        for c in contract.columns
        if c.role in ACCEPTED_ROLES and c.categories is not None
    }
