"""Contract inference, YAML round trip and hand-edited contract errors."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from modelyard.config.schema import ColumnRoles, ContractSection, ValidationSection
from modelyard.data.contract import (
    ColumnContract,
    DataContract,
    contract_from_yaml,
    contract_to_yaml,
    infer_contract,
)
from modelyard.data.validation import validate
from modelyard.errors import ConfigError, DataError
from tests.conftest import ADULT_COLUMNS

ADULT = ADULT_COLUMNS


def infer(df: pl.DataFrame, target: str | None = None, **kw: object) -> DataContract:
    roles = kw.pop("roles", ColumnRoles())
    options = kw.pop("options", ContractSection(range_margin=0.0))
    return infer_contract(df, target=target, task=None, roles=roles, options=options, **kw)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def titanic(shared_data: Path) -> pl.DataFrame:
    return pl.read_csv(shared_data / "titanic.csv", infer_schema=False)


@pytest.fixture(scope="module")
def adult(shared_data: Path) -> pl.DataFrame:
    df = pl.read_csv(
        shared_data / "adult" / "adult.data",
        has_header=False,
        new_columns=ADULT,
        infer_schema=False,
        separator=",",
    )
    df = df.with_columns(pl.all().str.strip_chars())
    return df.with_columns(pl.when(pl.all() == "?").then(None).otherwise(pl.all()).name.keep())


def test_titanic_from_strings(titanic: pl.DataFrame) -> None:
    c = infer(titanic, "survived", roles=ColumnRoles(leakage=["alive"]))
    assert c.target == "survived" and c.task == "binary" and c.rows == 891
    by = {col.name: col for col in c.columns}
    assert by["survived"].type == "int" and by["survived"].role == "target"
    assert not by["survived"].nullable
    assert by["age"].type == "float" and by["age"].nullable
    assert by["age"].null_rate == pytest.approx(177 / 891, abs=1e-6)
    assert (by["age"].min, by["age"].max) == (0.42, 80.0)
    assert by["fare"].type == "float" and not by["fare"].nullable
    assert by["adult_male"].type == "bool" and by["alone"].type == "bool"
    assert by["sex"].categories == ["female", "male"]
    assert by["embarked"].categories == ["C", "Q", "S"] and by["embarked"].nullable
    assert by["alive"].role == "leakage"
    assert not any(col.unique for col in c.columns)
    assert c.names == titanic.columns


def test_adult_categories_and_target(adult: pl.DataFrame) -> None:
    c = infer(adult, "income", options=ContractSection(max_categories=40, range_margin=0.0))
    by = {col.name: col for col in c.columns}
    assert c.task == "binary"
    assert by["income"].categories == ["<=50K", ">50K"]
    assert by["workclass"].nullable and len(by["workclass"].categories or []) == 8
    assert by["native-country"].categories is None  # 41 > 40
    assert by["age"].type == "int" and by["age"].min == 17
    assert by["education-num"].distinct == 16


def test_diamonds_native_types(shared_data: Path) -> None:
    df = pl.read_csv(shared_data / "diamonds.csv")
    c = infer(df, "price", options=ContractSection(range_margin=0.1))
    by = {col.name: col for col in c.columns}
    assert c.task == "regression"
    assert by["price"].type == "int"
    assert by["cut"].categories == sorted(["Fair", "Good", "Very Good", "Premium", "Ideal"])
    assert by["x"].min == 0.0  # observed 0, never widened below zero
    span = 18823 - 326
    assert by["price"].min == pytest.approx(max(0, 326 - 0.1 * span), abs=1)
    assert by["price"].max == pytest.approx(18823 + 0.1 * span, abs=1)


def test_kddcup_contract(shared_data: Path) -> None:
    names = [
        line.split(":")[0]
        for line in (shared_data / "kddcup99" / "kddcup.names").read_text().splitlines()[1:]
        if ":" in line
    ]
    df = pl.read_csv(
        shared_data / "kddcup99" / "kddcup.data_10_percent.gz",
        has_header=False,
        new_columns=[*names, "label"],
        infer_schema=False,
    )
    c = infer(df, "label")
    by = {col.name: col for col in c.columns}
    assert c.task == "multiclass"
    assert by["protocol_type"].categories == ["icmp", "tcp", "udp"]
    assert by["num_outbound_cmds"].distinct == 1
    assert by["src_bytes"].type == "int" and by["serror_rate"].type == "float"


def test_parse_threshold_and_hints() -> None:
    values = [str(i) for i in range(199)] + ["oops"]  # 99.5% ints
    df = pl.DataFrame({"a": values, "b": ["1", "x"] * 100, "d": ["2020-01-02"] * 200})
    c = infer(df)
    assert [col.type for col in c.columns] == ["int", "str", "date"]
    c = infer(df, type_hints={"a": "str"})
    assert c.column("a").type == "str" and c.column("a").categories is None
    assert c.column("a").unique  # 200 distinct non-float values


def test_a_little_junk_does_not_make_a_number_column_text(titanic: pl.DataFrame) -> None:
    """Issue 11 item 19: 1% junk turned a numeric column into text, silently."""
    fare = titanic["fare"].to_list()
    for i in range(0, 891, 100):  # 9 of 891 values (1.0%)
        fare[i] = "n/a" if i % 200 else "?"
    df = titanic.with_columns(pl.Series("fare", fare))
    c = infer(df, "survived")
    col = c.column("fare")
    assert col.type == "float" and col.unreadable == 9 and not col.nullable
    assert col.reason is not None
    assert col.reason.startswith('9 of 891 values (1.0%) are not a float (e.g. "?", "n/a")')
    assert "quarantines their rows" in col.reason
    result = validate(df, c, ValidationSection(max_invalid_fraction=0.05))
    assert result.quarantine["_row"].to_list() == list(range(0, 891, 100))
    assert set(result.quarantine["_reasons"]) == {
        "fare: '?' is not a float",
        "fare: 'n/a' is not a float",
    }
    assert contract_from_yaml(contract_to_yaml(c), source="c.yaml") == c
    # Beyond the threshold it stays text (and says nothing).
    many = df.with_columns(
        pl.when(pl.int_range(891) % 10 == 1).then(pl.lit("?")).otherwise("fare").alias("fare")
    )
    assert infer(many, "survived").column("fare").type == "str"
    strict = infer(df, "survived", options=ContractSection(min_parsed_share=0.995))
    assert strict.column("fare").type == "str" and strict.column("fare").reason is None


def test_integers_among_decimals_make_a_float_column_not_junk(shared_data: Path) -> None:
    """diamonds' 'table' is 55, 57, ... and 1.7% of 55.3, 56.4: a float column."""
    diamonds = pl.read_csv(shared_data / "diamonds.csv", infer_schema=False)
    col = infer(diamonds, "price").column("table")
    assert col.type == "float" and col.unreadable is None and col.reason is None


def test_near_unique_text_columns_are_free_text_or_identifiers() -> None:
    """Issue 11 item 8: a near-unique title column became a giant categorical."""
    n = 400
    rng = np.random.default_rng(0)
    words = ["red", "fox", "river", "night", "old", "song", "city", "blue", "the", "of"]
    distinct_titles = [" ".join(rng.choice(words, 4)) + f" {i}" for i in range(380)]
    titles = [distinct_titles[i % 380] for i in range(n)]  # 95% distinct
    df = pl.DataFrame(
        {
            "title": titles,
            "sku": [f"SKU-{i % 390:05d}" for i in range(n)],
            "ticket": [f"T{i}" for i in range(n)],
            "city": rng.choice([f"city {i}" for i in range(60)], n).tolist(),  # 60 levels
            "y": rng.choice(["a", "b"], n).tolist(),
        }
    )
    c = infer(df, "y", roles=ColumnRoles(id=["ticket"]))
    title, sku, ticket, city = (c.column(k) for k in ("title", "sku", "ticket", "city"))
    assert (title.role, title.text, title.categories, title.unique) == (
        "feature",
        True,
        None,
        False,
    )
    assert title.reason is not None and title.reason.startswith(
        "380 distinct values in 400 rows (95%)"
    )
    assert "free text (TF-IDF features)" in title.reason
    assert (sku.role, sku.text, sku.unique) == ("id", False, False)  # 10 repeats: not unique
    assert sku.reason is not None and "an identifier, not a feature" in sku.reason
    assert (ticket.role, ticket.reason, ticket.unique) == ("id", None, True)  # declared: no reason
    assert (city.role, city.text, city.reason) == ("feature", False, None)  # 60 of 400: a category
    assert [f.name for f in c.features] == ["title", "city"]
    assert contract_from_yaml(contract_to_yaml(c), source="c.yaml") == c
    fewer = infer(df, "y", options=ContractSection(near_unique_share=0.99, range_margin=0.0))
    assert fewer.column("title").reason is None and fewer.column("sku").role == "feature"


def test_datetime_and_unique_and_roles() -> None:
    n = 30
    df = pl.DataFrame(
        {
            "id": [f"r{i}" for i in range(n)],
            "ts": [f"2020-01-01 10:{i:02d}:00" for i in range(n)],
            "v": [float(i) for i in range(n)],
            "flag": ["TRUE", "false"] * 15,
            "junk": [None] * n,
        }
    )
    c = infer(df, "flag", roles=ColumnRoles(id=["id"], time="ts", drop=["junk"]))
    by = {col.name: col for col in c.columns}
    assert "junk" not in by
    assert by["id"].role == "id" and by["id"].unique
    assert by["ts"].type == "datetime" and by["ts"].role == "time"
    assert by["ts"].min is None and by["ts"].max is None  # time moves on: no inferred bounds
    assert not by["v"].unique  # floats are never inferred unique
    assert by["flag"].type == "bool" and c.task == "binary"


def test_unknown_target_is_a_data_error() -> None:
    with pytest.raises(DataError, match="did you mean 'price'"):
        infer(pl.DataFrame({"price": [1]}), "prise")


def test_all_null_and_empty_frames() -> None:
    c = infer(pl.DataFrame({"a": [None, None]}, schema={"a": pl.String}))
    assert c.column("a").type == "str" and c.column("a").nullable
    c = infer(pl.DataFrame(schema={"a": pl.String, "b": pl.Int64}))
    assert [col.type for col in c.columns] == ["str", "int"] and c.rows == 0


def test_yaml_round_trip(titanic: pl.DataFrame) -> None:
    c = infer(titanic, "survived", options=ContractSection(range_margin=0.05))
    text = contract_to_yaml(c)
    assert text.startswith("# modelyard data contract")
    assert "categories: [female, male]" in text
    assert contract_from_yaml(text, source="contract.yaml") == c
    assert contract_to_yaml(contract_from_yaml(text, source="c.yaml")) == text


def test_yaml_round_trip_odd_values() -> None:
    c = DataContract(
        target="y",
        task="multiclass",
        columns=[
            ColumnContract(name="y", type="str", nullable=False, categories=["yes", "no", "1"]),
            ColumnContract(
                name="naïve: col", type="str", categories=[f"v{i:03d}" for i in range(40)]
            ),
            ColumnContract(name="d", type="date", min="2011-01-01", max="2012-12-31"),
            ColumnContract(name="f", type="float", min=-0.1, max=1e300, unique=False),
        ],
    )
    text = contract_to_yaml(c)
    assert "      - v000" in text  # long list in block style
    assert contract_from_yaml(text, source="c.yaml") == c


def test_hand_edited_unquoted_date_is_accepted() -> None:
    text = "version: 1\ncolumns:\n  - name: d\n    type: date\n    min: 2011-01-01\n"
    assert contract_from_yaml(text, source="c.yaml").columns[0].min == "2011-01-01"


def test_hand_edit_errors_all_at_once() -> None:
    text = """\
version: 1
target: y
tagret: y
columns:
  - name: a
    type: integer
    nulable: true
  - name: b
    type: float
    min: 5
    max: 1
  - name: y
    type: str
    nullable: true
    min: 3
"""
    with pytest.raises(ConfigError) as info:
        contract_from_yaml(text, source="contract.yaml")
    problems = info.value.problems
    messages = [str(p) for p in problems]
    assert any("contract.yaml:3" in m and "did you mean 'target'" in m for m in messages)
    assert any("columns[0].type" in m and "did you mean 'int'" in m for m in messages)
    assert any("columns[0].nulable" in m and "did you mean 'nullable'" in m for m in messages)
    assert len(problems) == 3  # structural problems first ...

    fixed = (
        text.replace("tagret: y\n", "").replace("integer", "int").replace("    nulable: true\n", "")
    )
    with pytest.raises(ConfigError) as info:
        contract_from_yaml(fixed, source="contract.yaml")
    messages = [str(p) for p in info.value.problems]  # ... then all semantic ones together
    assert any("min 5.0 > max 1.0" in m for m in messages)
    assert any("target cannot be nullable" in m for m in messages)
    assert any("a str column has no min" in m for m in messages)
    assert len(messages) == 3


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("version: [1\n", "not valid YAML"),
        ("- a\n", "a contract is a mapping"),
        ("version: 1\n", "columns: required key is missing"),
        ("version: 1\ncolumns:\n  - name: d\n    type: date\n    min: soon\n", "ISO date"),
        ("version: 1\ncolumns:\n  - {name: a, type: int}\n  - {name: a, type: int}\n", "twice"),
        ("version: 1\ncolumns:\n  - {name: a, type: int, categories: [x]}\n", "only str"),
        ("version: 1\ntarget: b\ncolumns:\n  - {name: a, type: int}\n", "not a column"),
    ],
)
def test_hand_edit_error_kinds(text: str, needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        contract_from_yaml(text, source="c.yaml")


def test_dates_native_get_their_type_and_no_inferred_bounds() -> None:
    df = pl.DataFrame({"d": [dt.date(2020, 1, 1), dt.date(2020, 1, 11)]})
    c = infer(df, options=ContractSection(range_margin=0.1))
    assert c.column("d").type == "date"
    assert (c.column("d").min, c.column("d").max) == (None, None)


def test_the_default_margin_widens_inferred_ranges_by_a_tenth_of_the_span() -> None:
    frame = pl.DataFrame({"x": ["10", "20", "30"]})
    contract = infer_contract(
        frame, target=None, task=None, roles=ColumnRoles(), options=ContractSection()
    )
    assert (contract.column("x").min, contract.column("x").max) == (8.0, 32.0)  # span 20, 10% = 2
