"""Validation: each rule, each on_error mode, frame-level errors and the quarantine invariant."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelyard.config.schema import Check, ColumnRoles, ContractSection, ValidationSection
from modelyard.data.contract import (
    ColumnContract,
    DataContract,
    contract_from_yaml,
    contract_to_yaml,
    infer_contract,
)
from modelyard.data.validation import cast_to_contract, validate
from modelyard.errors import DataError, ValidationFailed

CONTRACT = DataContract(
    target="y",
    task="binary",
    columns=[
        ColumnContract(name="id", type="int", role="id", nullable=False, unique=True),
        ColumnContract(name="age", type="int", min=0, max=120),
        ColumnContract(name="w", type="float", nullable=False, min=0.0, max=1.0),
        ColumnContract(name="kind", type="str", categories=["a", "b"]),
        ColumnContract(name="ok", type="bool"),
        ColumnContract(name="day", type="date", min="2020-01-01", max="2020-12-31"),
        ColumnContract(name="y", type="str", role="target", nullable=False),
    ],
)
GOOD = {
    "id": "1",
    "age": "30",
    "w": "0.5",
    "kind": "a",
    "ok": "true",
    "day": "2020-05-01",
    "y": "p",
}


def frame(*rows: dict[str, str | None]) -> pl.DataFrame:
    records = [{**GOOD, "id": str(i), **r} for i, r in enumerate(rows)]
    return pl.DataFrame(records, schema=dict.fromkeys(GOOD, pl.String))


def opts(**kw: object) -> ValidationSection:
    kw.setdefault("max_invalid_fraction", 1.0)
    return ValidationSection(**kw)  # type: ignore[arg-type]


def reasons(df: pl.DataFrame, contract: DataContract | None = CONTRACT, **kw: object) -> list[str]:
    return validate(df, contract, opts(**kw)).quarantine["_reasons"].to_list()


def test_all_good_rows_are_typed() -> None:
    r = validate(frame({"id": "1"}, {"id": "2", "age": "3.0", "ok": "FALSE"}), CONTRACT, opts())
    assert r.report.passed and r.quarantine.height == 0
    assert r.valid.schema["age"] == pl.Int64 and r.valid.schema["day"] == pl.Date
    assert r.valid["age"].to_list() == [30, 3]  # "3.0" reads as an int
    assert r.valid["ok"].to_list() == [True, False]
    assert r.valid_index.tolist() == [0, 1]
    assert r.report.cast_columns == ["id", "age", "w", "ok", "day"]


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ({"age": "abc"}, "age: 'abc' is not an int"),
        ({"age": "3.5"}, "age: '3.5' is not an int"),
        ({"ok": "yes"}, "ok: 'yes' is not a bool"),
        ({"day": "2020-02-30"}, "day: '2020-02-30' is not a date"),
        ({"age": "121"}, "age: '121' is outside [0, 120]"),
        ({"day": "2021-01-01"}, "day: '2021-01-01' is outside [2020-01-01, 2020-12-31]"),
        ({"w": None}, "w: missing value (not nullable)"),
        ({"w": "nan"}, "w: missing value (not nullable)"),  # NaN counts as missing
        ({"y": None}, "y: missing target value"),
        ({"kind": "Foo"}, "kind: 'Foo' is not an allowed category"),
        ({"kind": "x" * 1000}, "kind: '" + "x" * 40 + "…' is not an allowed category"),
    ],
)
def test_contract_rules(row: dict[str, str | None], reason: str) -> None:
    r = validate(frame({}, row), CONTRACT, opts())
    assert r.quarantine["_reasons"].to_list() == [reason]
    assert r.quarantine["_row"].to_list() == [1]
    assert r.valid.height == 1 and r.valid_index.tolist() == [0]


def test_duplicates_keep_the_first_occurrence() -> None:
    r = validate(frame({"id": "1"}, {"id": "2"}, {"id": "1"}, {"id": "1"}), CONTRACT, opts())
    assert r.quarantine["_row"].to_list() == [2, 3]
    assert r.quarantine["_reasons"].to_list() == ["id: '1' is a duplicate"] * 2
    (v,) = r.report.violations
    assert (v.check, v.column, v.rows, v.examples, v.example_rows) == (
        "unique",
        "id",
        2,
        ["1", "1"],
        [2, 3],
    )


def test_several_reasons_are_joined() -> None:
    assert reasons(frame({"age": "-1", "kind": "z", "y": None})) == [
        "age: '-1' is outside [0, 120]; kind: 'z' is not an allowed category; y: missing target value"
    ]


def test_declared_checks() -> None:
    df = pl.DataFrame(
        {"x": [1.0, -1.0, 2.0, None], "s": ["ab", "abc", "AB", "ab"], "n": ["1", "2", "zz", "9"]}
    )
    checks = [
        Check(name="positive", column="x", min=0),
        Check(column="s", regex="[a-z]+", unique=True),
        Check(column="n", values=[1, 2, 9]),
        Check(column="n", max=5),
        Check(column="x", not_null=True),
        Check(name="rowwise", expression="x < 1.5"),
    ]
    r = validate(df, None, opts(checks=checks))
    got = r.quarantine.select("_row", "_reasons").rows()
    assert got == [
        (1, "x: '-1.0' failed check positive"),
        (2, "s: 'AB' failed check s.regex+unique; n: 'zz' failed check n.in; "
            "n: 'zz' failed check n.max; check rowwise failed"),
        (3, "s: 'ab' failed check s.regex+unique; n: '9' failed check n.max; "
            "x: missing failed check x.not_null; check rowwise failed"),
    ]  # fmt: skip
    assert r.valid_index.tolist() == [0]
    assert r.valid.equals(df.head(1))  # no contract: values are not cast
    assert not r.report.contract_checked


def test_contract_off_runs_only_checks() -> None:
    r = validate(frame({"age": "abc"}), CONTRACT, opts(contract=False))
    assert r.report.passed and r.valid.schema["age"] == pl.String


def test_warn_keeps_every_row() -> None:
    r = validate(frame({}, {"age": "abc"}, {"kind": "q"}), CONTRACT, opts(on_error="warn"))
    assert r.valid.height == 3 and r.valid["age"].to_list() == [30, None, 30]
    assert r.quarantine["_row"].to_list() == [1, 2]
    assert r.valid_index.tolist() == [0, 1, 2] and not r.report.passed


def test_fail_mode() -> None:
    validate(frame({}), CONTRACT, opts(on_error="fail"))  # nothing invalid: no error
    with pytest.raises(
        ValidationFailed, match=r"1 of 2 rows are invalid.*type on 'age': 1 row \(e.g. 'abc'\)"
    ):
        validate(frame({}, {"age": "abc"}), CONTRACT, opts(on_error="fail"))


@pytest.mark.parametrize("mode", ["quarantine", "warn", "fail"])
def test_max_invalid_fraction_in_every_mode(mode: str) -> None:
    df = frame({}, {}, {}, {"age": "x"})
    validate(df, CONTRACT, opts(on_error="warn", max_invalid_fraction=0.25))  # 25% is allowed
    with pytest.raises(
        ValidationFailed, match=r"25.00%.*more than validation.max_invalid_fraction \(20.00%\)"
    ):
        validate(df, CONTRACT, opts(on_error=mode, max_invalid_fraction=0.2))


def test_rows_without_a_target_are_set_aside_but_are_not_invalid_data() -> None:
    """Issue 11 item 16: a missing target is reported as such, left out of training, and
    does not count against max_invalid_fraction."""
    df = frame({}, {"y": None}, {"y": None}, {"y": None, "age": "x"}, {})
    for mode in ("quarantine", "warn"):
        r = validate(df, CONTRACT, opts(on_error=mode, max_invalid_fraction=0.25))
        assert r.report.missing_target_rows == 3 and r.report.invalid_rows == 1
        assert r.report.invalid_fraction == pytest.approx(0.2)
        assert r.quarantine["_row"].to_list() == [1, 2, 3]
        assert r.quarantine["_reasons"].to_list()[:2] == ["y: missing target value"] * 2
        assert r.valid["y"].null_count() == 0  # never trains, whatever on_error says
        assert r.report.valid_rows == 2
        assert {v.check for v in r.report.violations} == {"missing_target", "type"}
    warned = validate(df, CONTRACT, opts(on_error="warn"))
    assert warned.valid_index.tolist() == [0, 4]  # the invalid row with no target is out too
    clean = validate(frame({}, {"y": None}), CONTRACT, opts(max_invalid_fraction=0.0))
    assert clean.report.passed and clean.report.invalid_rows == 0
    strict = validate(frame({}, {"y": None}), CONTRACT, opts(on_error="fail"))
    assert strict.valid.height == 1 and strict.quarantine.height == 1
    assert "1 without a target (left out of training)" in clean.report.summary()
    with pytest.raises(ValidationFailed, match="1 of 2 rows"):  # the old behaviour, on demand
        validate(
            frame({}, {"y": None}),
            CONTRACT,
            opts(max_invalid_fraction=0.0, missing_target="invalid"),
        )


def test_a_failed_validation_carries_its_report_and_quarantine() -> None:
    """Issue 11 item 16: the rows that made the run stop can be written before it stops."""
    df = frame({}, {"w": None}, {"w": None}, {"w": None}, {"age": "x"})
    with pytest.raises(ValidationFailed) as err:
        validate(df, CONTRACT, opts(max_invalid_fraction=0.05))
    result = err.value.result
    assert result is not None and result.report.invalid_rows == 4  # type: ignore[attr-defined]
    assert result.quarantine["_row"].to_list() == [1, 2, 3, 4]  # type: ignore[attr-defined]
    message = str(err.value)
    assert "None" not in message  # a missing value is no example: its rows are
    assert "not_null on 'w': 3 rows (e.g. rows 1, 2, 3)" in message
    assert "type on 'age': 1 row (e.g. 'x')" in message


def test_missing_and_extra_columns() -> None:
    df = frame({}).rename({"kind": "knd"})
    with pytest.raises(
        DataError,
        match=r"1 missing column 'kind' \(did you mean 'knd'\?\).*1 unexpected column 'knd'",
    ):
        validate(df, CONTRACT, opts())
    extra = frame({}).with_columns(pl.lit("z").alias("note"))
    with pytest.raises(DataError, match="unexpected column"):
        validate(extra, CONTRACT, opts())
    loose = CONTRACT.model_copy(update={"allow_extra_columns": True})
    r = validate(extra, loose, opts())
    assert r.report.passed and r.valid["note"].to_list() == ["z"]


@pytest.mark.parametrize(
    ("check", "needle"),
    [
        (
            Check(name="bad", expression="x >>> 1"),
            "check 'bad' has an expression that does not parse",
        ),
        (Check(expression="ag > 1"), r"unknown column\(s\) 'ag' \(did you mean 'age'\?\)"),
        (Check(name="num", expression="age + 1"), "not a true/false condition"),
        (Check(column="agee", min=1), "not in the data \\(did you mean 'age'\\?\\)"),
        (Check(column="age", values=["old"]), "not all int"),
        (Check(column="day", min=1), "min/max but column 'day' is date"),
        (Check(column="y", regex="(?=a)"), "regex polars cannot use"),
    ],
)
def test_unusable_checks_are_data_errors(check: Check, needle: str) -> None:
    with pytest.raises(DataError, match=needle):
        validate(frame({}), CONTRACT, opts(checks=[check]))


def test_empty_frame_and_all_null_columns() -> None:
    r = validate(frame({}).head(0), CONTRACT, opts(max_invalid_fraction=0.0))
    assert r.valid.height == 0 and r.report.rows == 0 and r.report.passed
    assert r.valid.schema["age"] == pl.Int64 and r.quarantine.columns[-2:] == ["_row", "_reasons"]
    nulls = frame({"age": None, "kind": None, "ok": None, "day": None}, {"age": None})
    r = validate(nulls, CONTRACT, opts())
    assert r.report.passed and r.valid["age"].null_count() == 2


def test_unicode_values() -> None:
    c = CONTRACT.model_copy(deep=True)
    c.column("kind").categories = ["é", "日本"]
    assert reasons(frame({"kind": "日本"}, {"kind": "🙂"}), c) == [
        "kind: '🙂' is not an allowed category"
    ]


def test_cast_to_contract_masks() -> None:
    _typed, fails = cast_to_contract(frame({"age": "x"}, {"w": "?"}), CONTRACT)
    assert fails["age"].to_list() == [True, False] and fails["w"].to_list() == [False, True]
    assert "kind" not in fails.columns  # already a string: no cast


def test_real_diamonds(shared_data: Path) -> None:
    ref = pl.read_csv(shared_data / "diamonds.csv", infer_schema=False)
    contract = infer_contract(
        ref,
        target="price",
        task=None,
        roles=ColumnRoles(),
        options=ContractSection(range_margin=0.0),
    )
    checks = [Check(name="positive_dims", expression="x > 0 AND y > 0 AND z > 0")]
    r = validate(ref, contract, opts(checks=checks, max_invalid_fraction=0.01))
    assert r.report.invalid_rows == 20  # the physically impossible diamonds
    assert set(r.quarantine["_reasons"]) == {"check positive_dims failed"}
    assert r.valid.height == ref.height - 20 and r.valid.schema["price"] == pl.Int64


# --------------------------------------------------------------------------- invariant

SMALL = DataContract(
    columns=[
        ColumnContract(name="k", type="int", unique=True, nullable=False),
        ColumnContract(name="n", type="float", min=-10.0, max=10.0),
        ColumnContract(name="c", type="str", nullable=False, categories=["a", "b", "ü"]),
    ]
)
VALUES = {
    "k": st.one_of(st.none(), st.integers(-3, 3).map(str), st.sampled_from(["x", "1.0", "1e2"])),
    "n": st.one_of(
        st.none(),
        st.floats(allow_nan=True, allow_infinity=True).map(str),
        st.integers(-20, 20).map(str),
        st.text(max_size=5),
    ),
    "c": st.one_of(st.none(), st.sampled_from(["a", "b", "ü", "A", ""]), st.text(max_size=300)),
}
rows_strategy = st.lists(st.fixed_dictionaries(VALUES), max_size=40)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=rows_strategy, expression=st.booleans())
def test_every_row_ends_up_exactly_once(
    rows: list[dict[str, str | None]], expression: bool
) -> None:
    df = pl.DataFrame(rows, schema=dict.fromkeys(VALUES, pl.String))
    checks = [Check(name="e", expression="n > -5 OR k = 0")] if expression else []
    r = validate(df, SMALL, opts(checks=checks))
    q = r.quarantine
    n = df.height
    assert sorted([*r.valid_index.tolist(), *q["_row"].to_list()]) == list(range(n))
    assert r.report.valid_rows == r.valid.height == len(r.valid_index)
    assert r.report.invalid_rows == q.height
    # quarantine rows are the raw input rows, unchanged
    assert q.drop("_row", "_reasons").equals(df[q["_row"].to_numpy()])
    assert q["_reasons"].null_count() == 0 and all(q["_reasons"].str.len_chars() > 0)
    # valid rows are the typed input rows, and they obey the contract
    typed, _ = cast_to_contract(df, SMALL)
    assert r.valid.equals(typed[r.valid_index])
    assert r.valid["k"].null_count() == 0 and r.valid["k"].is_unique().all()
    assert r.valid["c"].is_in(["a", "b", "ü"]).all()
    assert r.valid.filter((pl.col("n") < -10) | (pl.col("n") > 10)).height == 0
    if expression:
        assert r.valid.filter(~pl.sql_expr("n > -5 OR k = 0").fill_null(False)).height == 0
    sizes = {v.check: v.rows for v in r.report.violations}
    assert all(1 <= k <= q.height for k in sizes.values())
    assert np.all(np.diff(r.valid_index) > 0)  # input order


TARGETED = DataContract(
    target="t",
    task="binary",
    columns=[
        ColumnContract(name="n", type="float", min=-10.0, max=10.0),
        ColumnContract(name="t", type="str", role="target", nullable=False, categories=["a", "b"]),
    ],
)


@settings(max_examples=100, deadline=None)
@given(
    rows=st.lists(
        st.fixed_dictionaries(
            {
                "n": st.one_of(st.none(), st.integers(-20, 20).map(str), st.just("x")),
                "t": st.one_of(st.none(), st.sampled_from(["a", "b", "c"])),
            }
        ),
        max_size=30,
    ),
    mode=st.sampled_from(["quarantine", "warn"]),
)
def test_rows_without_a_target_never_train_and_never_count_as_invalid(
    rows: list[dict[str, str | None]], mode: str
) -> None:
    df = pl.DataFrame(rows, schema={"n": pl.String, "t": pl.String})
    r = validate(df, TARGETED, opts(on_error=mode))
    no_target = set(np.flatnonzero(df["t"].is_null().to_numpy()).tolist())
    broken = {
        i
        for i, row in enumerate(rows)
        if row["n"] == "x" or (row["n"] is not None and abs(int(row["n"])) > 10) or row["t"] == "c"
    }
    assert r.report.missing_target_rows == len(no_target)
    assert r.report.invalid_rows == len(broken)
    assert set(r.quarantine["_row"].to_list()) == no_target | broken
    kept = set(r.valid_index.tolist())
    assert not kept & no_target and r.valid["t"].null_count() == 0
    assert kept == set(range(len(rows))) - no_target - (broken if mode == "quarantine" else set())


@settings(max_examples=100, deadline=None)
@given(
    rows=st.lists(
        st.fixed_dictionaries(
            {
                "n": st.one_of(st.none(), st.integers(-20, 20).map(str), st.just("x")),
                "t": st.one_of(st.none(), st.sampled_from(["a", "b", "c"])),
            }
        ),
        max_size=30,
    ),
    on_error=st.sampled_from(["quarantine", "warn"]),
)
def test_scoring_keeps_rows_without_a_target_apart_and_flags_drift_on_the_rows_it_keeps(
    rows: list[dict[str, str | None]], on_error: str
) -> None:
    """Both rules at once: a missing target is counted apart (not invalid), and when scoring,
    ranges and categories are drift, flagged on exactly the rows that continue."""
    df = pl.DataFrame(rows, schema={"n": pl.String, "t": pl.String})
    r = validate(df, TARGETED, opts(on_error=on_error), mode="score")
    no_target = {i for i, row in enumerate(rows) if row["t"] is None}
    unreadable = {i for i, row in enumerate(rows) if row["n"] == "x"}
    drifted = {
        i
        for i, row in enumerate(rows)
        if (row["n"] not in (None, "x") and abs(int(row["n"])) > 10) or row["t"] == "c"
    }
    assert r.report.missing_target_rows == len(no_target)
    assert r.report.invalid_rows == len(unreadable)
    assert set(r.quarantine["_row"].to_list()) == no_target | unreadable
    kept = set(range(len(rows))) - no_target - (unreadable if on_error == "quarantine" else set())
    assert r.valid_index.tolist() == sorted(kept) and r.valid.height == len(kept)
    assert r.drift.len() == r.valid.height
    flagged = {i for i, why in zip(r.valid_index.tolist(), r.drift.to_list(), strict=True) if why}
    assert flagged == drifted & kept and r.report.drifted_rows == len(flagged)
    assert {v.check for v in r.report.violations} <= {"type", "missing_target"}


def test_a_table_of_ten_thousand_columns_is_inferred_and_validated_right() -> None:
    """Issue 11 item 18: 300 x 10,000 (inference was quadratic in the columns; an error listed
    9,982 names on one line). Correctness only: the timing is bench/wide.py's."""
    rng = np.random.default_rng(0)
    rows, per_kind = 300, 2_500
    data: dict[str, list[str]] = {}
    for i in range(per_kind):
        data[f"i{i}"] = rng.integers(-50, 50, rows).astype(str).tolist()
        data[f"f{i}"] = np.round(rng.normal(size=rows), 3).astype(str).tolist()
        data[f"c{i}"] = rng.choice(["red", "green", "blue"], rows).tolist()
        data[f"b{i}"] = rng.choice(["true", "false"], rows).tolist()
    data["y"] = rng.choice(["yes", "no"], rows).tolist()
    reference = pl.DataFrame(data)
    contract = infer_contract(
        reference, target="y", task=None, roles=ColumnRoles(), options=ContractSection()
    )
    kinds = {"i": "int", "f": "float", "c": "str", "b": "bool"}
    assert len(contract.columns) == 10_001 and contract.task == "binary"
    assert all(c.type == kinds[c.name[0]] for c in contract.columns if c.name != "y")
    assert contract.column("c2499").categories == ["blue", "green", "red"]
    assert contract_from_yaml(contract_to_yaml(contract), source="c.yaml") == contract

    batch = reference.with_columns(
        pl.when(pl.int_range(rows) == 5).then(pl.lit("oops")).otherwise("f1777").alias("f1777"),
        pl.when(pl.int_range(rows) == 7).then(pl.lit("pink")).otherwise("c2499").alias("c2499"),
    )
    r = validate(batch, contract, opts())
    assert r.quarantine["_row"].to_list() == [5, 7]
    assert r.quarantine["_reasons"].to_list() == [
        "f1777: 'oops' is not a float",
        "c2499: 'pink' is not an allowed category",
    ]
    assert r.valid.height == rows - 2 and r.valid.width == 10_001
    assert r.valid.schema["i0"] == pl.Int64 and r.valid.schema["b2499"] == pl.Boolean

    scored = validate(batch, contract, opts(), mode="score")  # an unseen category is drift
    assert scored.quarantine["_row"].to_list() == [5]
    assert scored.valid_index.tolist() == [i for i in range(rows) if i != 5]
    assert scored.report.drifted_rows == 1
    assert scored.drift[6] == "c2499: 'pink' is not an allowed category"  # input row 7

    with pytest.raises(DataError) as err:
        validate(batch.select(batch.columns[:18]), contract, opts())
    message = str(err.value)
    assert len(message) < 600 and "\n" not in message
    assert "9,983 missing columns 'c4', 'b4', 'i5'" in message
    assert "... and 9,975 more (9,983 in all)" in message


# --------------------------------------------------------------------------- scoring mode


def test_scoring_flags_values_outside_the_training_data_and_scores_them() -> None:
    # issue 11 item 7: a row 18 % above the training maximum was quarantined by predict
    df = frame(
        {},
        {"age": "142", "kind": "c"},  # above the range, an unseen category: drift
        {"day": "2021-03-01"},  # a later date: drift
        {"w": "2.5", "age": "x"},  # a type error stays invalid
        {"w": None},  # a missing required value stays invalid
        {"id": "0"},  # a repeated id stays invalid (unique)
    )
    options = opts(checks=[Check(column="age", max=130, name="plausible_age")])
    train = validate(df, CONTRACT, options)
    assert train.report.invalid_rows == 5 and train.report.drifted_rows == 0
    assert train.drift.len() == 0
    scored = validate(df, CONTRACT, options, mode="score")
    report = scored.report
    assert scored.valid_index.tolist() == [0, 2] and report.mode == "score"
    assert report.invalid_rows == 4  # 142 breaks the declared check: hard
    assert {(v.check, v.column) for v in report.violations} == {
        ("type", "age"), ("not_null", "w"), ("unique", "id"), ("plausible_age", "age"),
    }  # fmt: skip
    assert scored.drift.to_list() == [None, "day: '2021-03-01' is outside [2020-01-01, 2020-12-31]"]
    assert report.drifted_rows == 1
    assert [(v.check, v.column, v.rows, v.example_rows) for v in report.drift] == [
        ("range", "day", 1, [2])
    ]
    assert "1 rows flagged as drift" in report.summary()


def test_scoring_drift_reasons_follow_the_kept_rows() -> None:
    df = frame({"age": "121"}, {"age": "x"}, {"kind": "z", "w": "1.5"}, {})
    for on_error, kept in (("quarantine", [0, 2, 3]), ("warn", [0, 1, 2, 3])):
        r = validate(df, CONTRACT, opts(on_error=on_error), mode="score")
        assert r.valid_index.tolist() == kept and r.valid.height == r.drift.len() == len(kept)
        flagged = dict(zip(kept, r.drift.to_list(), strict=True))
        assert flagged[0] == "age: '121' is outside [0, 120]"
        assert flagged[2] == "w: '1.5' is outside [0, 1]; kind: 'z' is not an allowed category"
        assert flagged[3] is None
        assert r.report.drifted_rows == 2
    r = validate(frame({}), CONTRACT, opts(), mode="score")
    assert r.drift.to_list() == [None] and r.report.drift == []


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.fixed_dictionaries(
            {
                "age": st.one_of(st.none(), st.integers(-50, 200).map(str), st.just("x")),
                "w": st.one_of(st.none(), st.floats(-1, 2, allow_nan=False).map(str)),
                "kind": st.one_of(st.none(), st.sampled_from(["a", "b", "c", ""])),
            }
        ),
        min_size=1,
        max_size=20,
    )
)
def test_scoring_only_moves_ranges_and_categories_from_invalid_to_drift(
    rows: list[dict[str, str | None]],
) -> None:
    df = frame(*rows)
    train = validate(df, CONTRACT, opts())
    score = validate(df, CONTRACT, opts(), mode="score")
    drift_checks = {"range", "category"}
    hard = {
        (v.check, v.column, v.rows) for v in train.report.violations if v.check not in drift_checks
    }
    assert {(v.check, v.column, v.rows) for v in score.report.violations} == hard
    # every row is scored or quarantined; a row quarantined when scoring was invalid in training
    assert set(score.valid_index.tolist()) | set(score.quarantine["_row"].to_list()) == set(
        range(df.height)
    )
    assert set(score.quarantine["_row"].to_list()) <= set(train.quarantine["_row"].to_list())
    flagged = score.drift.is_not_null().sum()
    assert flagged == score.report.drifted_rows <= score.valid.height
