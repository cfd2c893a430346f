"""The request schema of the prediction server, generated from the data contract.

Two views of one definition:

- :func:`request_model` builds a pydantic model (field names, JSON types, required/optional,
  allowed categories as an enum, ranges, an example) for the OpenAPI document;
- :class:`RecordChecker` is the per-request checker compiled from the same contract: one small
  closure per column, plain Python, no DataFrame. Its verdicts agree with
  :func:`modelyard.data.validation.validate` on the contract rules ``type``, ``not_null``,
  ``range`` and ``category`` (a test holds them together). ``unique`` is a property of a data
  set, not of a request, and is not checked here.

JSON typing rules (stricter than CSV parsing, since JSON carries types): ``int`` takes a JSON
integer (or a number with no fractional part), ``float`` any finite JSON number, ``bool``
``true``/``false``, ``str`` a JSON string, ``date`` an ISO ``YYYY-MM-DD`` string and
``datetime`` an ISO 8601 string. ``null`` (or an absent key) is a missing value. Non-finite
numbers (``NaN``, ``Infinity``, ``1e999``) are always rejected.

Accepted fields: the contract's ``feature``, ``time`` and ``id`` columns. A field of a
non-nullable column is required; the others are optional. The target and leakage columns, and
unknown keys, are violations unless the contract sets ``allow_extra_columns``.
"""

from __future__ import annotations

import datetime as dt
import enum
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, create_model

from modelyard.data.contract import ColumnContract, DataContract, did_you_mean, fmt_type

ACCEPTED_ROLES = ("feature", "time", "id")
_SHOW_CHARS = 40


@dataclass(frozen=True)
class FieldViolation:
    """One broken rule in one record."""

    column: str | None
    """The field, or ``None`` for a problem with the record as a whole."""
    check: str
    """``type``, ``not_null``, ``range``, ``category`` (the contract rules), ``required``
    (a missing non-nullable field), ``unknown_field`` or ``record``."""
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {"column": self.column, "check": self.check, "message": self.message}


Checked = tuple[Any, FieldViolation | None]
"""A value checked by a column's closure: the typed value (``None`` if missing or invalid) and
the violation, if any."""


def _show(value: Any) -> str:
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


def _compile_column(col: ColumnContract) -> Callable[[Any], Checked]:
    """The checker of one column: value -> (typed value, violation or None)."""
    name, typ = col.name, col.type
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
        return None, FieldViolation(name, "range", f"{name}: {_show(value)} is outside {span}")

    def missing() -> Checked:
        return (None, None) if nullable else (None, not_null)

    if typ in ("int", "float"):
        is_int = typ == "int"

        def check_number(value: Any) -> Checked:
            if value is None:
                return missing()
            if isinstance(value, bool) or not isinstance(value, int | float):
                return bad_type(value)
            number = float(value)
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
                return None, FieldViolation(
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


class RecordChecker:
    """Checks JSON records against the contract (compiled once; see the module docstring).

    >>> from modelyard.data.contract import ColumnContract, DataContract
    >>> contract = DataContract(columns=[
    ...     ColumnContract(name="age", type="int", nullable=False, min=17.0, max=90.0),
    ...     ColumnContract(name="sex", type="str", categories=["Female", "Male"])])
    >>> checker = RecordChecker(contract)
    >>> checker.check({"age": 40, "sex": "Male"}).violations
    []
    >>> [v.message for v in checker.check({"age": 12.5, "sex": "Mal"}).violations]
    ["age: '12.5' is not an int", "sex: 'Mal' is not an allowed category (did you mean 'Male'?)"]
    """

    def __init__(self, contract: DataContract) -> None:
        self.contract = contract
        self.columns = [c for c in contract.columns if c.role in ACCEPTED_ROLES]
        self.names = [c.name for c in self.columns]
        self._checks = [(c.name, _compile_column(c), not c.nullable) for c in self.columns]
        self._known = frozenset(self.names)
        self._other_roles = {c.name: c.role for c in contract.columns if c.name not in self._known}
        self.allow_extra = contract.allow_extra_columns
        time_cols = [c.name for c in contract.columns if c.role == "time"]
        self.time_column = time_cols[0] if time_cols else None

    def check(self, record: Any) -> CheckedRecord:
        """Check one JSON value (expected: an object); collect every violation."""
        if not isinstance(record, dict):
            what = type(record).__name__ if record is not None else "null"
            return CheckedRecord(
                {n: None for n in self.names},
                [FieldViolation(None, "record", f"a record must be a JSON object, found {what}")],
                record,
            )
        values: dict[str, Any] = {}
        violations: list[FieldViolation] = []
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
                violations.append(problem)
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
        return CheckedRecord(values, violations, record)

    def check_many(self, records: Sequence[Any]) -> list[CheckedRecord]:
        check = self.check
        return [check(r) for r in records]


# --------------------------------------------------------------------------- OpenAPI model


def _example_value(col: ColumnContract) -> Any:
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
    """A record that passes the contract (for the OpenAPI docs and smoke tests)."""
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
    :class:`RecordChecker`). Field aliases are the column names."""
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
        elif col.categories is not None:
            members = {f"v{i}": v for i, v in enumerate(col.categories)}
            base = enum.Enum(_identifier(col.name, set()) + "_category", members)  # type: ignore[misc,no-redef]
        else:
            base = str
        if col.type in ("int", "float"):
            if col.min is not None:
                extra["ge"] = col.min
            if col.max is not None:
                extra["le"] = col.max
        ident = _identifier(col.name, taken)
        annotation = base if not col.nullable else base | None
        description = f"{col.type}, {col.role}" + ("" if col.nullable else ", required")
        if col.type in ("date", "datetime") and (col.min is not None or col.max is not None):
            description += f", within [{_fmt_bound(col.min)}, {_fmt_bound(col.max)}]"
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


def categories_of(contract: DataContract) -> Mapping[str, list[str]]:
    """Allowed categories per accepted column (those that have them)."""
    return {
        c.name: list(c.categories)
        for c in contract.columns
        if c.role in ACCEPTED_ROLES and c.categories is not None
    }
