"""Hold-out splits and CV folds, on real data."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from modelyard.config.schema import ColumnRoles, ContractSection, SplitSection
from modelyard.data.contract import DataContract, infer_contract
from modelyard.errors import ModelyardError
from modelyard.modeling.splits import cv_splitter, make_split
from tests.conftest import ADULT_COLUMNS


def _contract(df: pl.DataFrame, target: str, roles: ColumnRoles | None = None) -> DataContract:
    return infer_contract(
        df, target=target, task=None, roles=roles or ColumnRoles(), options=ContractSection()
    )


@pytest.fixture(scope="module")
def titanic(shared_data: Path) -> tuple[pl.DataFrame, DataContract]:
    df = pl.read_csv(shared_data / "titanic.csv").with_row_index("row")
    return df, _contract(df, "survived", ColumnRoles(id=["row"]))


@pytest.fixture(scope="module")
def bike(shared_data: Path) -> tuple[pl.DataFrame, DataContract]:
    df = pl.read_csv(shared_data / "bike_sharing" / "hour.csv", try_parse_dates=True)
    return df, _contract(df, "cnt", ColumnRoles(id=["instant"], time="dteday"))


def _disjoint_and_complete(
    df: pl.DataFrame, train: pl.DataFrame, test: pl.DataFrame, key: str
) -> None:
    a, b = set(train[key].to_list()), set(test[key].to_list())
    assert not a & b
    assert a | b == set(df[key].to_list())


def test_stratified_keeps_class_shares(titanic: tuple[pl.DataFrame, DataContract]) -> None:
    df, contract = titanic
    split = make_split(df, contract, SplitSection(), seed=42)
    assert split.method == "stratified"
    assert (split.train.height, split.test.height) == (712, 179)
    _disjoint_and_complete(df, split.train, split.test, "row")
    share = df["survived"].mean()
    assert split.test["survived"].mean() == pytest.approx(share, abs=0.01)
    assert split.train["survived"].mean() == pytest.approx(share, abs=0.01)
    assert split.description.startswith("stratified 80/20 on survived, seed 42")
    again = make_split(df, contract, SplitSection(), seed=42)
    assert again.test["row"].to_list() == split.test["row"].to_list()
    other = make_split(df, contract, SplitSection(), seed=7)
    assert other.test["row"].to_list() != split.test["row"].to_list()


def test_stratified_falls_back_to_random_for_a_too_rare_class(
    titanic: tuple[pl.DataFrame, DataContract],
) -> None:
    df, contract = titanic
    df = df.with_columns(
        pl.when(pl.col("row") == 0).then(2).otherwise(pl.col("survived")).alias("survived")
    )
    split = make_split(df, contract, SplitSection(method="stratified"), seed=1)
    assert split.method == "random"
    assert "not stratified" in split.description and "fewer than 2 rows" in split.description
    _disjoint_and_complete(df, split.train, split.test, "row")


def test_time_split_at_a_cutoff(bike: tuple[pl.DataFrame, DataContract]) -> None:
    df, contract = bike
    split = make_split(df, contract, SplitSection(method="time", cutoff="2012-01-01"), seed=0)
    assert split.train["dteday"].dt.year().unique().to_list() == [2011]
    assert split.test["dteday"].dt.year().unique().to_list() == [2012]
    assert split.train.height == df.filter(pl.col("yr") == 0).height == 8645
    assert split.test.height == 8734
    assert split.train["dteday"].is_sorted() and split.test["dteday"].is_sorted()
    _disjoint_and_complete(df, split.train, split.test, "instant")
    assert split.description == (
        "time on dteday: train < 2012-01-01 (8,645 rows), test >= 2012-01-01 (8,734 rows)"
    )


def test_time_split_without_cutoff_keeps_boundary_times_together(
    bike: tuple[pl.DataFrame, DataContract],
) -> None:
    df, contract = bike
    split = make_split(df, contract, SplitSection(method="time", test_size=0.25), seed=0)
    assert split.train["dteday"].max() < split.test["dteday"].min()
    assert split.test.height == pytest.approx(0.25 * df.height, rel=0.01)
    assert split.test["dteday"].max() == dt.date(2012, 12, 31)


def test_time_split_errors(bike: tuple[pl.DataFrame, DataContract]) -> None:
    df, contract = bike
    no_time = contract.model_copy(
        update={
            "columns": [
                c.model_copy(update={"role": "feature"}) if c.role == "time" else c
                for c in contract.columns
            ]
        }
    )
    with pytest.raises(ModelyardError, match="time column"):
        make_split(df, no_time, SplitSection(method="time"), seed=0)
    with pytest.raises(ModelyardError, match="did you mean 'dteday'"):
        make_split(df, contract, SplitSection(method="time", time_column="dtday"), seed=0)
    with pytest.raises(ModelyardError, match="training set empty"):
        make_split(df, contract, SplitSection(method="time", cutoff="2010-01-01"), seed=0)
    with pytest.raises(ModelyardError, match="ISO date"):
        make_split(df, contract, SplitSection(method="time", cutoff="next year"), seed=0)


def test_random_split_for_regression(shared_data: Path) -> None:
    df = pl.read_csv(shared_data / "diamonds.csv").with_row_index("row")
    contract = _contract(df, "price", ColumnRoles(id=["row"]))
    split = make_split(df, contract, SplitSection(test_size=0.1), seed=3)
    assert split.method == "random"
    assert (split.train.height, split.test.height) == (48546, 5394)
    _disjoint_and_complete(df, split.train, split.test, "row")


def test_group_split_never_straddles(shared_data: Path) -> None:
    df = pl.read_csv(shared_data / "penguins.csv", null_values=["NA", ""]).with_row_index("row")
    contract = _contract(df, "species", ColumnRoles(id=["row"]))
    split = make_split(
        df, contract, SplitSection(method="group", group_column="island", test_size=0.34), seed=0
    )
    assert not set(split.train["island"].to_list()) & set(split.test["island"].to_list())
    _disjoint_and_complete(df, split.train, split.test, "row")
    with pytest.raises(ModelyardError, match="did you mean 'island'"):
        make_split(df, contract, SplitSection(method="group", group_column="iland"), seed=0)


def test_test_file(shared_data: Path) -> None:
    cols = ADULT_COLUMNS

    def read(name: str, skip: int) -> pl.DataFrame:
        df = pl.read_csv(
            shared_data / "adult" / name, has_header=False, new_columns=cols, skip_rows=skip
        )
        df = df.with_columns(pl.col(pl.String).str.strip_chars().str.strip_suffix("."))
        return df.filter(pl.col("income").is_not_null())  # the files end with a blank line

    train, test = read("adult.data", 0), read("adult.test", 1)
    contract = _contract(train, "income")
    split = make_split(train, contract, SplitSection(), test=test, seed=0)
    assert split.method == "test_file"
    assert (split.train.height, split.test.height) == (32561, 16281)
    assert split.description == "test file: train 32,561 rows, test 16,281 rows"
    with pytest.raises(ModelyardError, match=r"data\.test"):
        make_split(train, contract, SplitSection(method="random"), test=test, seed=0)
    with pytest.raises(ModelyardError, match="no test file"):
        make_split(train, contract, SplitSection(method="test_file"), seed=0)
    with pytest.raises(ModelyardError, match="lacks 1 column"):
        make_split(train, contract, SplitSection(), test=test.drop("race"), seed=0)


def test_cv_splitter_kinds() -> None:
    from sklearn.model_selection import GroupKFold, KFold, StratifiedKFold, TimeSeriesSplit

    s = cv_splitter("binary", SplitSection(cv_folds=4), n_rows=100, seed=1)
    assert isinstance(s, StratifiedKFold) and s.n_splits == 4 and s.shuffle and s.random_state == 1
    assert isinstance(cv_splitter("regression", SplitSection(), n_rows=100, seed=1), KFold)
    t = cv_splitter("regression", SplitSection(method="time"), n_rows=100, seed=1)
    assert isinstance(t, TimeSeriesSplit) and t.n_splits == 5
    assert cv_splitter("multiclass", SplitSection(cv_folds=10), n_rows=3, seed=1).n_splits == 3
    g = cv_splitter(
        "binary",
        SplitSection(method="group", group_column="g"),
        n_rows=50,
        seed=1,
        groups_available=True,
    )
    assert isinstance(g, GroupKFold)
    with pytest.raises(ModelyardError, match="group"):
        cv_splitter("binary", SplitSection(method="group"), n_rows=50, seed=1)
    # time folds: every validation fold lies after its training rows
    folds = list(t.split(np.arange(100)))
    assert all(tr.max() < va.min() for tr, va in folds)
