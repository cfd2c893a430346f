"""Validation of a table part by part (issue 13): the parts add up to the one-part result.

Small ``batch_rows`` (a few rows to a few dozen) put batch boundaries everywhere: between a
value and its repeat, inside runs of invalid rows, around the rejected lines.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelyard.compute import Executor, open_executor
from modelyard.config.schema import Check, ValidationSection
from modelyard.data.contract import ColumnContract, DataContract
from modelyard.data.table import Ingested, Table, as_table, rejected_schema, write_table
from modelyard.data.validation import (
    MALFORMED,
    ValidationResult,
    validate,
    validate_table,
)
from modelyard.errors import DataError, ValidationFailed

CONTRACT = DataContract(
    target="y",
    task="binary",
    columns=[
        ColumnContract(name="id", type="int", role="id", nullable=False, unique=True),
        ColumnContract(name="age", type="int", min=0, max=120),
        ColumnContract(name="kind", type="str", categories=["a", "b"]),
        ColumnContract(name="code", type="str"),
        ColumnContract(name="y", type="str", role="target", nullable=False),
    ],
)
COLUMNS = ["id", "age", "kind", "code", "y"]


def opts(**kw: object) -> ValidationSection:
    kw.setdefault("max_invalid_fraction", 1.0)
    return ValidationSection(**kw)  # type: ignore[arg-type]


def ingested(
    df: pl.DataFrame, folder: Path, batch_rows: int, lines: list[tuple[int, str, str]] = ()
) -> Ingested:
    rows = as_table(df, folder / "rows", batch_rows=batch_rows)
    rejected = pl.DataFrame(
        {
            "_file": ["data.csv"] * len(lines),
            "_line": [n for n, _, _ in lines],
            "_text": [t for _, t, _ in lines],
            "_reasons": [r for _, _, r in lines],
        },
        schema=rejected_schema(),
    )
    step = max(1, batch_rows // 4)
    frames = [rejected.slice(i, step) for i in range(0, rejected.height, step)]
    return Ingested(rows, write_table(frames, folder / "rejected", schema=rejected_schema()))


def run(
    data: Ingested,
    folder: Path,
    contract: DataContract | None = CONTRACT,
    executor: Executor | None = None,
    mode: str = "train",
    **kw: object,
) -> ValidationResult:
    return validate_table(
        data,
        contract,
        opts(**kw),
        mode=mode,
        folder=folder,
        executor=executor,  # type: ignore[arg-type]
    )


@pytest.fixture(scope="module")
def serial() -> Iterator[Executor]:
    with open_executor("serial") as ex:
        yield ex


# --------------------------------------------------------------------------- the property

value = st.one_of(st.none(), st.sampled_from(["0", "7", "30", "121", "-3", "x", "1.5", "a", "b"]))
row = st.fixed_dictionaries(
    {
        "id": st.one_of(st.none(), st.sampled_from(["1", "2", "3", "4", "5", "x"]), st.integers(6, 10**6).map(str)),
        "age": value,
        "kind": value,
        "code": value,
        "y": st.one_of(st.none(), st.sampled_from(["p", "q"])),
    }
)  # fmt: skip
lines = st.lists(
    st.tuples(st.integers(1, 10**6), st.text(max_size=30), st.sampled_from(["3 fields", "9 fields"])),
    max_size=6,
)  # fmt: skip
checks = st.lists(
    st.sampled_from(
        [
            Check(name="code_unique", column="code", unique=True),
            Check(name="young", expression="age < 100"),
            Check(name="codes", column="code", values=["a", "b", "x"]),
        ]
    ),
    max_size=2,
    unique_by=lambda c: c.name,
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    rows=st.lists(row, max_size=60),
    batch_rows=st.integers(1, 25),
    lines=lines,
    checks=checks,
    on_error=st.sampled_from(["quarantine", "warn"]),
    mode=st.sampled_from(["train", "score"]),
    missing_target=st.sampled_from(["exclude", "invalid"]),
)
def test_the_parts_add_up_to_the_one_part_result(
    serial: Executor,
    rows: list[dict[str, str | None]],
    batch_rows: int,
    lines: list[tuple[int, str, str]],
    checks: list[Check],
    on_error: str,
    mode: str,
    missing_target: str,
) -> None:
    df = pl.DataFrame(rows, schema=dict.fromkeys(COLUMNS, pl.String))
    kw = {"checks": checks, "on_error": on_error, "missing_target": missing_target}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        whole = run(ingested(df, folder / "a", 10**6, lines), folder / "a", mode=mode, **kw)
        parts = ingested(df, folder / "b", batch_rows, lines)
        assert len(parts.rows.parts()) == max(1, -(-df.height // batch_rows))
        cut = run(parts, folder / "b", executor=serial, mode=mode, **kw)

        # valid + quarantined = input rows + rejected lines, always
        n = df.height + len(lines)
        for result in (whole, cut):
            assert result.report.rows == n
            assert result.report.valid_rows + result.quarantine.num_rows == n
            assert result.quarantine.num_rows == result.quarantine.collect().height
            assert result.valid.num_rows == result.valid.collect().height
            if on_error == "quarantine":
                assert result.valid.num_rows == result.report.valid_rows
        # the merged report is the one-part report: counts, rules, examples, in order
        assert cut.report == whole.report
        # the same valid rows in the same order, the same quarantine (with global _row)
        assert cut.valid.collect().equals(whole.valid.collect())
        assert cut.quarantine.collect().equals(whole.quarantine.collect())

        # the one-part table is the DataFrame validation, plus the rejected lines
        frame = validate(df, CONTRACT, opts(**kw), mode=mode)  # type: ignore[arg-type]
        assert whole.valid.collect().equals(frame.valid)
        q = whole.quarantine.collect()
        quarantined_rows = q.filter(pl.col("_row").is_not_null())
        assert quarantined_rows.select(frame.quarantine.columns).equals(frame.quarantine)
        assert quarantined_rows["_row"].to_list() == frame.quarantine["_row"].to_list()
        assert frame.report.invalid_rows + len(lines) == whole.report.invalid_rows
        # every input row is in exactly one place (warn keeps invalid rows in both)
        kept = set(frame.valid_index.tolist())
        assert set(quarantined_rows["_row"].to_list()) | kept == set(range(df.height))
        rejected = q.filter(pl.col("_row").is_null())
        if lines:
            assert rejected["_line"].to_list() == [n for n, _, _ in lines]
            assert rejected["_reasons"].to_list() == [r for _, _, r in lines]
            assert rejected["_text"].to_list() == [t for _, t, _ in lines]
            assert rejected.select(COLUMNS).null_count().row(0) == (len(lines),) * len(COLUMNS)
        else:
            assert rejected.height == 0 and "_line" not in q.columns


# --------------------------------------------------------------------------- examples


def table_of(values: dict[str, list[str | None]]) -> pl.DataFrame:
    n = len(next(iter(values.values())))
    base = {"id": [str(i) for i in range(n)], "age": ["30"] * n, "kind": ["a"] * n}
    base.update({"code": [None] * n, "y": ["p"] * n})
    base.update(values)
    return pl.DataFrame(base, schema=dict.fromkeys(COLUMNS, pl.String))


def test_a_repeat_in_a_later_part_is_a_duplicate_and_the_first_occurrence_stays(
    tmp_path: Path, serial: Executor
) -> None:
    ids = ["1", "2", "3", "4", "1", "6", "2", "2", "9", "1.0"]  # 1.0 is the int 1 again
    df = table_of({"id": ids})
    result = run(ingested(df, tmp_path, 3), tmp_path, executor=serial)
    q = result.quarantine.collect()
    assert q["_row"].to_list() == [4, 6, 7, 9]
    assert set(q["_reasons"].str.extract(r"(is a duplicate)").to_list()) == {"is a duplicate"}
    assert result.valid.collect()["id"].to_list() == [1, 2, 3, 4, 6, 9]
    (unique,) = [v for v in result.report.violations if v.check == "unique"]
    assert (unique.rows, unique.example_rows) == (4, [4, 6, 7, 9])


def test_a_declared_unique_check_holds_across_parts_on_extra_columns(
    tmp_path: Path, serial: Executor
) -> None:
    df = table_of({"code": ["a", None, "b", None, "a", "c", "b"]})
    check = Check(name="one_code", column="code", unique=True)
    result = run(ingested(df, tmp_path, 2), tmp_path, executor=serial, checks=[check])
    assert result.quarantine.collect()["_row"].to_list() == [4, 6]  # nulls are never repeats


def test_hash_collisions_are_not_repeats(tmp_path: Path, serial: Executor) -> None:
    """Many distinct values across many parts: only the true repeats are quarantined."""
    n = 5000
    ids = [str(i) for i in range(n)] + ["17", "4999"]
    df = table_of({"id": ids})
    result = run(ingested(df, tmp_path, 64), tmp_path, executor=serial)
    assert result.quarantine.collect()["_row"].to_list() == [n, n + 1]


def test_an_expression_comparing_rows_is_refused_on_several_parts_only(
    tmp_path: Path, serial: Executor
) -> None:
    df = table_of({"age": ["10", "20", "30", "40"]})
    for expression in ("age < MAX(age)", "age > AVG(age)", "age = ROW_NUMBER() OVER ()"):
        check = Check(name="rel", expression=expression)
        one = run(ingested(df, tmp_path / "one", 100), tmp_path / "one", checks=[check])
        assert one.report.rows == 4  # one part: the whole table at once, as before
        for sub in ("one", "many"):
            import shutil

            shutil.rmtree(tmp_path / sub, ignore_errors=True)
        with pytest.raises(DataError, match="compares a row with other rows"):
            run(ingested(df, tmp_path / "many", 2), tmp_path / "many", checks=[check])
    fine = Check(name="fine", expression="age < 35 AND kind = 'a'")
    result = run(ingested(df, tmp_path / "ok", 2), tmp_path / "ok", checks=[fine], executor=serial)
    assert result.quarantine.collect()["_row"].to_list() == [3]


def test_rejected_lines_count_against_the_limit_and_are_quarantined_first(
    tmp_path: Path, serial: Executor
) -> None:
    df = table_of({"age": ["30"] * 18 + ["500", "30"]})
    lines = [(7, "1,2", "expected 5 fields, found 2"), (30, "1,2,3,4,5,6", "expected 5, found 6")]
    with pytest.raises(ValidationFailed) as err:
        run(ingested(df, tmp_path, 6, lines), tmp_path, executor=serial, max_invalid_fraction=0.1)
    result = err.value.result
    assert isinstance(result, ValidationResult)
    report = result.report
    assert (report.rows, report.invalid_rows, report.valid_rows) == (22, 3, 19)
    assert "3 of 22 rows" in str(err.value)
    malformed = next(v for v in report.violations if v.check == MALFORMED)
    assert malformed.example_lines == ["data.csv:7", "data.csv:30"]
    assert "malformed lines: 2 lines (e.g. data.csv:7, data.csv:30)" in report.summary()
    q = result.quarantine.collect()  # written before the error
    assert q["_row"].to_list() == [18, None, None]
    assert q["_line"].to_list() == [None, 7, 30]


def test_an_empty_table_and_a_table_without_contract(tmp_path: Path) -> None:
    empty = run(ingested(table_of({"id": []}), tmp_path / "e", 5), tmp_path / "e")
    assert (empty.report.rows, empty.valid.num_rows, empty.quarantine.num_rows) == (0, 0, 0)
    assert empty.valid.collect().columns == COLUMNS
    df = table_of({"code": ["a", "b", "a"]})
    check = Check(name="one_code", column="code", unique=True)
    raw = run(ingested(df, tmp_path / "r", 1), tmp_path / "r", contract=None, checks=[check])
    assert raw.quarantine.collect()["_row"].to_list() == [2]
    assert raw.valid.collect().equals(df.slice(0, 2))  # untyped: no contract


def test_frame_level_problems_are_raised_before_any_part_is_read(tmp_path: Path) -> None:
    df = table_of({"age": ["1"] * 4}).rename({"kind": "knd"})
    with pytest.raises(DataError, match="missing column 'kind'"):
        run(ingested(df, tmp_path, 2), tmp_path)
    assert not (tmp_path / "valid").exists() or not list((tmp_path / "valid").iterdir())


def test_serial_and_local_executors_give_identical_results(tmp_path: Path) -> None:
    rows = [
        {"id": str(i % 37), "age": str(i % 130), "kind": "abc"[i % 3], "code": str(i % 5),
         "y": None if i % 11 == 0 else "pq"[i % 2]}
        for i in range(300)
    ]  # fmt: skip
    df = pl.DataFrame(rows, schema=dict.fromkeys(COLUMNS, pl.String))
    lines = [(i * 10, f"bad {i}", "too many fields") for i in range(4)]
    check = Check(name="one_code", column="code", unique=True)
    results = []
    for kind, workers in (("serial", 1), ("local", 2)):
        with open_executor(kind, workers=workers) as ex:  # type: ignore[arg-type]
            data = ingested(df, tmp_path / kind, 40, lines)
            results.append(run(data, tmp_path / kind, executor=ex, checks=[check]))
    serial, local = results
    assert len(local.valid.parts()) == 8
    assert serial.report == local.report
    assert serial.valid.collect().equals(local.valid.collect())
    assert serial.quarantine.collect().equals(local.quarantine.collect())
    assert [t.num_rows for t in (serial.valid, serial.quarantine)] == [
        t.num_rows for t in (local.valid, local.quarantine)
    ]


def test_the_quarantine_streams_to_one_file(tmp_path: Path) -> None:
    df = table_of({"age": ["500", "30", "-1", "30", "x"]})
    result = run(ingested(df, tmp_path, 2, [(3, "?", "2 fields")]), tmp_path)
    out = tmp_path / "q.parquet"
    result.quarantine.scan().sink_parquet(out)
    assert isinstance(result.quarantine, Table)
    assert pl.read_parquet(out)["_row"].to_list() == [0, 2, 4, None]
