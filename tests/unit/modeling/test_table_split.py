"""The split of a table of several parts: per row, by a hash, with no shuffle."""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelyard.compute import Executor, open_executor
from modelyard.config.schema import ColumnRoles, ContractSection, ModelsSection, SplitSection
from modelyard.data.contract import DataContract, infer_contract
from modelyard.data.table import Table, as_table
from modelyard.errors import ModelyardError
from modelyard.modeling.splits import make_split
from modelyard.modeling.stages import split_data
from modelyard.modeling.table_split import split_table


def _contract(df: pl.DataFrame, target: str, roles: ColumnRoles | None = None) -> DataContract:
    return infer_contract(
        df, target=target, task=None, roles=roles or ColumnRoles(), options=ContractSection()
    )


class _Scratch:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.count = itertools.count()

    def __call__(self, name: str) -> Path:
        folder = self.root / f"{name}-{next(self.count)}"
        folder.mkdir(parents=True)
        return folder


def _synthetic(n: int, seed: int = 0) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    return pl.DataFrame(
        {
            "id": np.arange(n),
            "x": rng.normal(size=n),
            "group": rng.integers(0, 300, n),
            "day": rng.integers(0, 1000, n),
            "y": np.where(rng.random(n) < 0.1, "rare", np.where(rng.random(n) < 0.5, "a", "b")),
        }
    )


@pytest.fixture(scope="module")
def big() -> tuple[pl.DataFrame, DataContract]:
    df = _synthetic(20_000)
    return df, _contract(df, "y", ColumnRoles(id=["id"]))


def _split(
    df: pl.DataFrame,
    contract: DataContract,
    tmp: Path,
    options: SplitSection | None = None,
    *,
    seed: int = 7,
    batch_rows: int = 2_000,
    executor: Executor | None = None,
    sample: int = 3_000,
) -> tuple[pl.DataFrame, pl.DataFrame, object]:
    scratch = _Scratch(tmp)
    table = as_table(df, scratch("valid"), batch_rows=batch_rows)
    assert len(table.parts()) == math.ceil(df.height / batch_rows)
    split = split_table(
        table, contract, options or SplitSection(), seed=seed, scratch=scratch,
        executor=executor, sample_rows=lambda n: sample,
    )  # fmt: skip
    assert split.train_table is not None and split.test_table is not None
    return split.train_table.collect(), split.test_table.collect(), split


def test_hash_split_is_deterministic_in_order_and_complete(
    big: tuple[pl.DataFrame, DataContract], tmp_path: Path
) -> None:
    df, contract = big
    train, test, split = _split(df, contract, tmp_path / "a")
    again_train, again_test, _ = _split(df, contract, tmp_path / "b")
    assert train.equals(again_train) and test.equals(again_test)
    # every row once, in input order on each side (no shuffle)
    assert sorted(train["id"].to_list() + test["id"].to_list()) == list(range(df.height))
    assert train["id"].is_sorted() and test["id"].is_sorted()
    # a row's side depends on the row alone: other part sizes and a reversed table agree
    other_train, _, _ = _split(df.reverse(), contract, tmp_path / "c", batch_rows=777)
    assert set(other_train["id"].to_list()) == set(train["id"].to_list())
    assert split.method == "hash"  # type: ignore[attr-defined]
    assert "hash of the id column" in split.description  # type: ignore[attr-defined]


def test_hash_split_share_and_class_shares_within_binomial_noise(
    big: tuple[pl.DataFrame, DataContract], tmp_path: Path
) -> None:
    df, contract = big
    _, test, _ = _split(df, contract, tmp_path, SplitSection(test_size=0.25))
    n = df.height
    assert abs(test.height - 0.25 * n) < 5 * math.sqrt(n * 0.25 * 0.75)
    for label, count in df["y"].value_counts().iter_rows():
        k = int((test["y"] == label).sum())
        assert abs(k - 0.25 * count) < 5 * math.sqrt(count * 0.25 * 0.75), label


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), share=st.floats(0.05, 0.5))
def test_hash_split_share_property(seed: int, share: float) -> None:
    import tempfile

    df = _synthetic(4_000, seed=seed % 7)
    contract = _contract(df, "y", ColumnRoles(id=["id"]))
    with tempfile.TemporaryDirectory() as tmp:
        _, test, _ = _split(
            df, contract, Path(tmp), SplitSection(test_size=share), seed=seed, batch_rows=500
        )
    n = df.height
    assert abs(test.height - share * n) < 5 * math.sqrt(n * share * (1 - share))


@pytest.fixture(scope="module")
def local() -> Iterator[Executor]:
    with open_executor("local", workers=2) as ex:
        yield ex


def test_serial_and_local_executors_give_the_same_split_and_sample(
    big: tuple[pl.DataFrame, DataContract], tmp_path: Path, local: Executor
) -> None:
    df, contract = big
    with open_executor("serial") as serial:
        a = _split(df, contract, tmp_path / "serial", executor=serial)
    b = _split(df, contract, tmp_path / "local", executor=local)
    assert a[0].equals(b[0]) and a[1].equals(b[1])
    assert a[2].train.equals(b[2].train) and a[2].test.equals(b[2].test)  # type: ignore[attr-defined]


def test_group_split_never_straddles(
    big: tuple[pl.DataFrame, DataContract], tmp_path: Path
) -> None:
    df, contract = big
    options = SplitSection(method="group", group_column="group", test_size=0.3)
    train, test, split = _split(df, contract, tmp_path, options)
    assert not set(train["group"].to_list()) & set(test["group"].to_list())
    assert train.height + test.height == df.height
    assert 0.1 < test.height / df.height < 0.5
    assert split.method == "group"  # type: ignore[attr-defined]


def test_time_split_matches_the_in_memory_rule(
    big: tuple[pl.DataFrame, DataContract], tmp_path: Path
) -> None:
    df, contract = big
    options = SplitSection(method="time", time_column="day", test_size=0.2)
    train, test, split = _split(df, contract, tmp_path / "auto", options)
    memory = make_split(df, contract, options, seed=7)
    assert set(train["id"].to_list()) == set(memory.train["id"].to_list())
    assert set(test["id"].to_list()) == set(memory.test["id"].to_list())
    assert train["day"].max() < test["day"].min()
    assert split.train["day"].is_sorted()  # type: ignore[attr-defined]  # TimeSeriesSplit needs it
    at = SplitSection(method="time", time_column="day", cutoff="500")
    train, test, _ = _split(df, contract, tmp_path / "cut", at)
    assert train["day"].max() < 500 <= test["day"].min()
    with pytest.raises(ModelyardError, match="leaves the test set empty"):
        _split(df, contract, tmp_path / "late", SplitSection(method="time", time_column="day",
                                                             cutoff="5000"))  # fmt: skip


def test_training_sample_is_stratified_exact_seeded_and_keeps_rare_classes(
    tmp_path: Path,
) -> None:
    df = _synthetic(20_000).with_columns(
        y=pl.when(pl.col("id") < 12).then(pl.lit("tiny")).otherwise(pl.col("y"))
    )
    contract = _contract(df, "y", ColumnRoles(id=["id"]))
    train, test, split = _split(df, contract, tmp_path / "a", sample=2_000)
    sample = split.train  # type: ignore[attr-defined]
    assert abs(sample.height - 2_000) <= 12  # rounding per class, plus the rare class kept
    assert set(sample.columns) == set(df.columns)
    assert sample["id"].is_sorted() and set(sample["id"]) <= set(train["id"])
    tiny = int((train["y"] == "tiny").sum())
    assert tiny and int((sample["y"] == "tiny").sum()) == tiny  # every row of a rare class
    for label in ("a", "b", "rare"):
        share = (train["y"] == label).mean()
        assert abs((sample["y"] == label).mean() - share) < 0.01, label  # type: ignore[operator]
    assert split.sample.startswith("model search on a stratified sample of")  # type: ignore[attr-defined]
    assert split.test.height == test.height  # a small test table is held whole  # type: ignore[attr-defined]
    again = _split(df, contract, tmp_path / "b", sample=2_000)[2]
    assert again.train.equals(sample)  # type: ignore[attr-defined]


def test_test_sample_is_bounded(
    big: tuple[pl.DataFrame, DataContract], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from modelyard.modeling import table_split

    monkeypatch.setattr(table_split, "TEST_SAMPLE_ROWS", 500)
    df, contract = big
    _, test, split = _split(df, contract, tmp_path)
    assert split.test.height == 500 < test.height  # type: ignore[attr-defined]
    assert set(split.test["id"]) <= set(test["id"])  # type: ignore[attr-defined]
    assert "the gate compares models on a sample of 500 test rows" in split.sample  # type: ignore[attr-defined]


def test_split_data_keeps_one_part_in_memory_and_splits_a_big_frame_per_part(
    shared_data: Path, tmp_path: Path
) -> None:
    df = pl.read_csv(shared_data / "titanic.csv").with_row_index("row")
    contract = _contract(df, "survived", ColumnRoles(id=["row"]))
    scratch = _Scratch(tmp_path)
    options = SplitSection()
    one_part = as_table(df, scratch("one"), batch_rows=10_000)
    memory = make_split(df, contract, options, seed=3)
    for data in (df, one_part):
        same = split_data(data, None, contract, options, 3, scratch=scratch, batch_rows=10_000)
        assert same.train.equals(memory.train) and same.test.equals(memory.test)
        assert same.train_table is None and same.test_table is None and same.sample is None
    models = ModelsSection(search_rows=300)
    big_split = split_data(
        df, None, contract, options, 3, models=models, scratch=scratch, batch_rows=200
    )
    assert isinstance(big_split.train_table, Table) and len(big_split.train_table.parts()) == 5
    assert big_split.train_rows + big_split.test_rows == df.height
    assert big_split.train.height == pytest.approx(300, abs=3)


def test_a_big_test_file_is_kept_whole_on_disk_and_sampled_for_the_gate(
    big: tuple[pl.DataFrame, DataContract], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from modelyard.modeling import table_split

    monkeypatch.setattr(table_split, "TEST_SAMPLE_ROWS", 700)
    df, contract = big
    scratch = _Scratch(tmp_path)
    train = as_table(df[:15_000], scratch("train"), batch_rows=2_000)
    test = as_table(df[15_000:], scratch("test"), batch_rows=2_000)
    split = split_table(
        train, contract, SplitSection(), test=test, seed=1, scratch=scratch, executor=None,
        sample_rows=lambda n: 1_000,
    )  # fmt: skip
    assert split.method == "test_file"
    assert split.train_rows == 15_000 and split.test_rows == 5_000
    assert split.test_table is not None and split.test_table.collect().equals(df[15_000:])
    assert split.test.height == 700 and split.train.height == pytest.approx(1_000, abs=3)
    lacking = as_table(df[15_000:].drop("x"), scratch("lacking"), batch_rows=2_000)
    with pytest.raises(ModelyardError, match="lacks 1 column"):
        split_table(
            train, contract, SplitSection(), test=lacking, seed=1, scratch=scratch,
            executor=None, sample_rows=lambda n: 1_000,
        )  # fmt: skip
