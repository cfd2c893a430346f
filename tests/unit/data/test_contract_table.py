"""The contract of a big table (issue 13): inferred from a sample, made right for every part.

A multi-part table's contract is inferred from a bounded, seeded sample, then widened by a
streamed pass, so that validating the whole table in training mode quarantines no row that
the contract inferred from the whole table (in memory) accepts.
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
from modelyard.config.schema import ColumnRoles, ContractSection, ValidationSection
from modelyard.data.contract import DataContract, infer_contract, infer_contract_table
from modelyard.data.sources import infer_task
from modelyard.data.table import as_table
from modelyard.data.validation import validate

OPTIONS = ContractSection(max_categories=8)
ROLES = ColumnRoles()


def infer_whole(df: pl.DataFrame, **kw: object) -> DataContract:
    task = infer_task(df["y"]) if "y" in df.columns else None
    return infer_contract(df, target="y", task=task, roles=ROLES, options=OPTIONS, **kw)  # type: ignore[arg-type]


def infer_parts(
    df: pl.DataFrame,
    folder: Path,
    batch_rows: int,
    sample_rows: int,
    executor: Executor | None = None,
    seed: int = 0,
) -> DataContract:
    table = as_table(df, folder, batch_rows=batch_rows)
    return infer_contract_table(
        table, target="y", task=None, roles=ROLES, options=OPTIONS, seed=seed,
        executor=executor, sample_rows=sample_rows, task_of=infer_task,
    )  # fmt: skip


def quarantined(df: pl.DataFrame, contract: DataContract) -> set[int]:
    options = ValidationSection(max_invalid_fraction=1.0)
    return set(validate(df, contract, options).quarantine["_row"].to_list())


@pytest.fixture(scope="module")
def serial() -> Iterator[Executor]:
    with open_executor("serial") as ex:
        yield ex


def frame(**columns: list[str | None]) -> pl.DataFrame:
    return pl.DataFrame(columns, schema=dict.fromkeys(columns, pl.String))


# --------------------------------------------------------------------------- the property

number = st.one_of(st.none(), st.integers(-1000, 1000).map(str))
rare = st.one_of(number, st.sampled_from(["2.5", "-0.5", "1e4"]))  # makes an int column float
level = st.one_of(st.none(), st.sampled_from("abcdefghijkl"))  # 12 levels, 8 allowed


@st.composite
def tables(draw: st.DrawFn) -> pl.DataFrame:
    n = draw(st.integers(2, 80))
    common = st.lists(number, min_size=n, max_size=n)
    return frame(
        n=draw(common),
        x=draw(st.lists(st.one_of(number, number, rare), min_size=n, max_size=n)),
        cat=draw(st.lists(st.one_of(st.sampled_from("abc"), level), min_size=n, max_size=n)),
        key=draw(st.lists(st.integers(0, 10 * n).map(str), min_size=n, max_size=n)),
        y=draw(st.permutations(["p", "q", *draw(st.lists(st.sampled_from("pqpr"), min_size=n - 2, max_size=n - 2))])),
    )  # fmt: skip


@settings(
    max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    df=tables(), batch_rows=st.integers(1, 20), sample=st.integers(1, 30), seed=st.integers(0, 9)
)
def test_the_sampled_contract_accepts_every_row_the_whole_table_contract_accepts(
    serial: Executor, df: pl.DataFrame, batch_rows: int, sample: int, seed: int
) -> None:
    whole = infer_whole(df)
    with tempfile.TemporaryDirectory() as tmp:
        parts = infer_parts(df, Path(tmp), batch_rows, sample, serial, seed)
    assert quarantined(df, parts) <= quarantined(df, whole)
    assert parts.rows == df.height
    assert [c.name for c in parts.columns] == [c.name for c in whole.columns]
    for mine, theirs in zip(parts.columns, whole.columns, strict=True):
        assert mine.nullable == theirs.nullable and mine.null_rate == theirs.null_rate
        if mine.type == theirs.type and mine.type in ("int", "float"):
            assert (mine.min, mine.max) == (theirs.min, theirs.max)
        if theirs.categories is not None and mine.type == "str":
            assert mine.categories == theirs.categories
        if mine.unique:
            assert theirs.unique or theirs.role == "id"


# --------------------------------------------------------------------------- examples


def test_one_part_is_exactly_the_contract_of_the_whole_frame(tmp_path: Path) -> None:
    df = frame(n=["1", "2", None, "40"], cat=["a", "b", "a", "c"], y=["p", "q", "p", "q"])
    assert infer_parts(df, tmp_path, 100, 2) == infer_whole(df)


def test_a_table_within_the_sample_size_gets_the_contract_of_the_whole_frame(
    tmp_path: Path, serial: Executor
) -> None:
    df = frame(n=[str(i) for i in range(30)], cat=list("abcab" * 6), y=["p", "q", "r"] * 10)
    assert infer_parts(df, tmp_path, 7, 1000, serial) == infer_whole(df)


def test_what_the_sample_missed_is_made_right_for_the_whole_table(
    tmp_path: Path, serial: Executor
) -> None:
    n = 400
    values = [str(i % 50) for i in range(n)]
    values[-1] = "5000"  # an extreme in the last part
    cats = ["a", "b"] * (n // 2)
    cats[-3] = "z"  # a rare level
    many = ["a", "b"] * (n // 2)
    many[-20:] = [f"level{i}" for i in range(20)]  # more levels than a category list allows
    nulls: list[str | None] = ["1"] * n
    nulls[-2] = None  # a missing value where the sample had none
    ints = [str(i) for i in range(n)]
    ints[-5] = "2.5"  # a number that is not an integer: the column is float
    ids = [str(i) for i in range(n)]
    ids[-1] = "0"  # unique in the sample, not in the table
    target = ["p", "q"] * (n // 2)
    target[-4] = "r"  # a third class: multiclass, not binary
    df = frame(n=values, cat=cats, many=many, nulls=nulls, ints=ints, ids=ids, y=target)
    sampled = infer_parts(df, tmp_path, 50, 40, serial)
    by = {c.name: c for c in sampled.columns}
    assert by["n"].max is not None and by["n"].max >= 5000
    assert by["cat"].categories == ["a", "b", "z"]
    assert by["many"].categories is None
    assert by["nulls"].nullable and by["nulls"].null_rate == round(1 / n, 6)
    assert by["ints"].type == "float" and by["ints"].unreadable is None
    assert not by["ids"].unique
    assert by["y"].categories == ["p", "q", "r"] and sampled.task == "multiclass"
    assert sampled.rows == n
    assert quarantined(df, sampled) == set()


def test_junk_the_sample_missed_is_counted_with_its_reason(tmp_path: Path) -> None:
    values = [str(i) for i in range(200)]
    values[150] = "n/a"
    df = frame(n=values, y=["p", "q"] * 100)
    sampled = infer_parts(df, tmp_path, 20, 10)
    col = sampled.column("n")
    assert col.type == "int" and col.unreadable == 1
    assert (
        col.reason is not None
        and '1 of 200 values (0.5%) are not an int (e.g. "n/a")' in col.reason
    )
    assert quarantined(df, sampled) == {150}


def test_the_sample_is_seeded_bounded_and_serial_equals_local(tmp_path: Path) -> None:
    df = frame(
        n=[str(i * 7 % 1000) for i in range(600)],
        cat=[("abcdef" * 100)[i] for i in range(600)],
        word=[f"w{i % 97}" for i in range(600)],
        y=["p", "q", "r"] * 200,
    )
    results = []
    for kind, workers in (("serial", 1), ("local", 2)):
        with open_executor(kind, workers=workers) as ex:  # type: ignore[arg-type]
            results.append(infer_parts(df, tmp_path / kind, 64, 50, ex, seed=3))
    assert results[0] == results[1]
    again = infer_parts(df, tmp_path / "again", 64, 50, None, seed=3)
    assert again == results[0]
