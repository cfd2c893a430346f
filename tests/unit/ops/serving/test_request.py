"""The request schema and the per-record checker, generated from the data contract."""

from __future__ import annotations

import math
from typing import Any

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelyard.config.schema import ValidationSection
from modelyard.data.contract import ColumnContract, DataContract
from modelyard.data.validation import validate
from modelyard.ops.serving.request import RecordChecker, example_record, request_model

CONTRACT = DataContract(
    target="y",
    task="binary",
    columns=[
        ColumnContract(name="age", type="int", nullable=False, min=17.0, max=90.0),
        ColumnContract(name="hours", type="float", min=1.0, max=99.0),
        ColumnContract(name="sex", type="str", nullable=False, categories=["Female", "Male"]),
        ColumnContract(name="city", type="str"),
        ColumnContract(name="vip", type="bool"),
        ColumnContract(name="day", type="date", min="2020-01-01", max="2024-12-31", role="time"),
        ColumnContract(name="y", type="str", role="target", nullable=False),
    ],
)
POLARS = {
    "age": pl.Int64,
    "hours": pl.Float64,
    "sex": pl.String,
    "city": pl.String,
    "vip": pl.Boolean,
    "day": pl.Date,
    "y": pl.String,
}


def test_schema_has_fields_types_required_categories_ranges_and_example() -> None:
    model = request_model(CONTRACT)
    schema = model.model_json_schema()
    props = schema["properties"]
    assert set(props) == {"age", "hours", "sex", "city", "vip", "day"}  # not the target
    assert set(schema["required"]) == {"age", "sex"}
    assert props["age"]["minimum"] == 17 and props["age"]["maximum"] == 90
    enum_ref = props["sex"]["$ref"].split("/")[-1]
    assert schema["$defs"][enum_ref]["enum"] == ["Female", "Male"]
    assert schema["additionalProperties"] is False
    example = schema["example"]
    assert example == example_record(CONTRACT)
    assert RecordChecker(CONTRACT).check(example).violations == []
    model.model_validate(example)


@pytest.mark.parametrize(
    ("record", "expected"),
    [
        ({"sex": "Male"}, {("age", "required")}),
        ({"age": "40", "sex": "Male"}, {("age", "type")}),
        ({"age": 40.5, "sex": "Male"}, {("age", "type")}),
        ({"age": True, "sex": "Male"}, {("age", "type")}),
        ({"age": 12, "sex": "Male"}, {("age", "range")}),
        ({"age": 40, "sex": "male"}, {("sex", "category")}),
        ({"age": 40, "sex": None}, {("sex", "not_null")}),
        ({"age": 40, "sex": "Male", "hours": float("inf")}, {("hours", "type")}),
        ({"age": 40, "sex": "Male", "hours": float("nan")}, {("hours", "type")}),
        ({"age": 40, "sex": "Male", "day": "2019-12-31"}, {("day", "range")}),
        ({"age": 40, "sex": "Male", "day": "31/12/2021"}, {("day", "type")}),
        ({"age": 40, "sex": "Male", "vip": "yes"}, {("vip", "type")}),
        ({"age": 40, "sex": "Male", "y": "1"}, {("y", "unknown_field")}),
        ({"age": 40, "sex": "Male", "agee": 3}, {("agee", "unknown_field")}),
        ([1, 2], {(None, "record")}),
        (None, {(None, "record")}),
    ],
)
def test_hostile_records_name_the_field_and_rule(record: Any, expected: set[Any]) -> None:
    found = RecordChecker(CONTRACT).check(record).violations
    assert {(v.column, v.check) for v in found} == expected
    assert all(v.message for v in found)


def test_typed_values_are_what_the_model_boundary_expects() -> None:
    out = RecordChecker(CONTRACT).check({"age": 40, "sex": "Male", "day": "2021-05-01"})
    assert out.values["age"] == 40.0 and isinstance(out.values["age"], float)
    assert out.values["hours"] is None and out.values["city"] is None
    assert str(out.values["day"]) == "2021-05-01"


# -------------------------------------------------------------- agreement with validate()

ages = st.one_of(st.none(), st.integers(-5, 120))
hours = st.one_of(st.none(), st.floats(-10, 200, allow_nan=False, allow_infinity=False))
sexes = st.one_of(st.none(), st.sampled_from(["Female", "Male", "other", ""]))
cities = st.one_of(st.none(), st.text(max_size=5))
vips = st.one_of(st.none(), st.booleans())
days = st.one_of(st.none(), st.dates(min_value=__import__("datetime").date(2015, 1, 1)))


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(ages, hours, sexes, cities, vips, days), min_size=1, max_size=8),
)
def test_checker_verdicts_agree_with_batch_validation(rows: list[tuple[Any, ...]]) -> None:
    names = ["age", "hours", "sex", "city", "vip", "day"]
    records = [dict(zip(names, r, strict=True)) for r in rows]
    frame = pl.DataFrame([{**r, "y": "a"} for r in records], schema=POLARS, orient="row")
    result = validate(frame, CONTRACT, ValidationSection(max_invalid_fraction=1.0))
    quarantined = dict(
        zip(
            result.quarantine["_row"].to_list(),
            result.quarantine["_reasons"].to_list(),
            strict=True,
        )
    )
    checker = RecordChecker(CONTRACT)
    for i, rec in enumerate(records):
        sent = {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in rec.items()}
        mine = {v.column for v in checker.check(sent).violations}
        theirs = {part.split(":")[0] for part in quarantined.get(i, "").split("; ") if part}
        assert mine == theirs, (rec, mine, theirs)


def test_nan_counts_like_validate_only_in_lenient_docs() -> None:
    # JSON cannot carry NaN; a Python NaN reaching the checker is rejected, never predicted.
    assert RecordChecker(CONTRACT).check({"age": 40, "sex": "Male", "hours": math.nan}).violations
