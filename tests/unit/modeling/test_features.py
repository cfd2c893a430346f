"""The preprocessor built from the data contract, on real data."""

from __future__ import annotations

import datetime as dt
import math
import pickle
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelyard.config.schema import ColumnRoles, ContractSection, FeaturesSection, SplitSection
from modelyard.data.contract import ColumnContract, DataContract, infer_contract
from modelyard.errors import ModelyardError
from modelyard.modeling.features import (
    DatetimeParts,
    build_preprocessor,
    feature_columns,
    target_array,
    to_pandas,
)
from modelyard.modeling.splits import make_split


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    """OpenMP models (hist-GBM) crawl when other processes load the CPUs; tests use 1 thread."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        yield


@pytest.fixture(scope="module")
def titanic(shared_data: Path) -> tuple[pl.DataFrame, DataContract]:
    df = pl.read_csv(shared_data / "titanic.csv").with_row_index("passenger_id")
    roles = ColumnRoles(id=["passenger_id"], leakage=["alive"])
    contract = infer_contract(
        df, target="survived", task=None, roles=roles, options=ContractSection()
    )
    return df, contract


def add_family(df: pd.DataFrame) -> pd.DataFrame:
    """A custom feature function, referenced as 'tests.unit.modeling.test_features:add_family'."""
    return df.assign(family=df["sibsp"] + df["parch"] + 1)


def test_to_pandas_keeps_only_features_typed_for_sklearn(
    titanic: tuple[pl.DataFrame, DataContract],
) -> None:
    df, contract = titanic
    X = to_pandas(df.with_columns(pl.lit(1).alias("not_in_contract")), contract)
    assert list(X.columns) == feature_columns(contract)
    assert not {"passenger_id", "alive", "survived", "not_in_contract"} & set(X.columns)
    assert X["age"].dtype == np.float64 and X["age"].isna().sum() == 177
    assert X["adult_male"].dtype == np.float64 and set(X["adult_male"].unique()) == {0.0, 1.0}
    assert X["deck"].dtype == object and X["deck"].isna().sum() == 688
    assert X["deck"].dropna().map(type).eq(str).all()
    y = target_array(df, contract)
    assert set(y) == {"0", "1"} and len(y) == 891
    with pytest.raises(ModelyardError, match="missing"):
        to_pandas(df.drop("age"), contract)


def test_id_and_leakage_never_reach_the_model(titanic: tuple[pl.DataFrame, DataContract]) -> None:
    df, contract = titanic
    pre = build_preprocessor(contract, FeaturesSection(), task="binary", seed=0)
    Z = pre.fit_transform(to_pandas(df, contract), target_array(df, contract))
    names = [str(n) for n in pre.get_feature_names_out()]
    assert Z.shape == (891, len(names)) and Z.dtype == np.float64 and np.isfinite(Z).all()
    for banned in ("passenger_id", "alive", "survived"):
        assert not any(banned in n for n in names), banned
    assert "num__missingindicator_age" in names
    assert "onehot__sex_female" in names


def test_unknown_categories_and_missing_values_at_predict_time(
    titanic: tuple[pl.DataFrame, DataContract],
) -> None:
    df, contract = titanic
    for high in ("target", "ordinal"):
        options = FeaturesSection.model_validate(
            {"categorical": {"one_hot_max_levels": 5, "high_cardinality": high}}
        )
        pre = build_preprocessor(contract, options, task="binary", seed=0)
        pre.fit(to_pandas(df, contract), target_array(df, contract))
        new = df.head(3).with_columns(
            pl.Series("sex", ["robot", None, "female"]),
            pl.Series("deck", ["Z", "Q", None]),  # deck has 7 levels: target/ordinal encoded
            pl.lit(None, dtype=pl.Float64).alias("age"),
        )
        Z = pre.transform(to_pandas(new, contract))
        assert Z.shape[0] == 3 and np.isfinite(Z).all()


def test_all_missing_columns_are_handled(titanic: tuple[pl.DataFrame, DataContract]) -> None:
    df, contract = titanic
    df = df.with_columns(
        pl.lit(None, dtype=pl.Float64).alias("empty_num"),
        pl.lit(None, dtype=pl.String).alias("empty_str"),
        pl.lit(None, dtype=pl.Boolean).alias("empty_bool"),
    )
    extra = [
        ColumnContract(name="empty_num", type="float"),
        ColumnContract(name="empty_str", type="str"),
        ColumnContract(name="empty_bool", type="bool"),
    ]
    contract = contract.model_copy(update={"columns": [*contract.columns, *extra]})
    pre = build_preprocessor(contract, FeaturesSection(), task="binary", seed=0)
    Z = pre.fit_transform(to_pandas(df, contract), target_array(df, contract))
    assert Z.shape[0] == 891 and np.isfinite(Z).all()


def test_datetime_parts_on_known_dates() -> None:
    X = pd.DataFrame({"t": pd.to_datetime(["2012-03-04 05:06", None, "2011-12-31 23:00"])})
    parts = DatetimeParts(
        parts=("year", "month", "day", "dayofweek", "hour", "dayofyear"), cyclical=True
    )
    Z = parts.fit_transform(X)
    names = list(parts.get_feature_names_out())
    row = dict(zip(names, Z[0], strict=True))
    # 2012-03-04 was a Sunday (Monday = 0); 2012 is a leap year: 31 + 29 + 4 = day 64
    assert (row["t_year"], row["t_month"], row["t_day"]) == (2012, 3, 4)
    assert (row["t_dayofweek"], row["t_hour"], row["t_dayofyear"]) == (6, 5, 64)
    assert row["t_month_sin"] == pytest.approx(1.0)  # sin(2π·3/12)
    assert row["t_month_cos"] == pytest.approx(0.0, abs=1e-12)
    assert row["t_hour_cos"] == pytest.approx(math.cos(2 * math.pi * 5 / 24))
    assert np.isnan(Z[1]).all()
    last = dict(zip(names, Z[2], strict=True))
    assert (last["t_dayofweek"], last["t_dayofyear"], last["t_hour"]) == (5, 365, 23)


def test_time_column_contributes_its_parts_only(shared_data: Path) -> None:
    df = pl.read_csv(shared_data / "bike_sharing" / "hour.csv", try_parse_dates=True)
    roles = ColumnRoles(id=["instant"], leakage=["casual", "registered"], time="dteday")
    contract = infer_contract(df, target="cnt", task=None, roles=roles, options=ContractSection())
    assert contract.column("dteday").type == "date"
    assert "dteday" in feature_columns(contract)
    assert "instant" not in feature_columns(contract)
    pre = build_preprocessor(contract, FeaturesSection(), task="regression", seed=0)
    sample = df.head(500)
    Z = pre.fit_transform(to_pandas(sample, contract), target_array(sample, contract))
    names = [str(n) for n in pre.get_feature_names_out()]
    assert "date__dteday_month" in names and "date__dteday_dayofweek_sin" in names
    assert not any("hour" in n for n in names if "dteday" in n)  # a date has no hour
    assert not any(n.endswith("__dteday") or "instant" in n or "casual" in n for n in names)
    assert np.isfinite(Z).all()


def test_custom_function_is_applied_first(titanic: tuple[pl.DataFrame, DataContract]) -> None:
    from sklearn.base import clone

    df, contract = titanic
    options = FeaturesSection(custom=["tests.unit.modeling.test_features:add_family"])
    pre = build_preprocessor(contract, options, task="binary", seed=0)
    X, y = to_pandas(df, contract), target_array(df, contract)
    Z = pre.fit_transform(X, y)
    names = [str(n) for n in pre.get_feature_names_out()]
    assert "new_num__family" in names
    family = Z[:, names.index("new_num__family")]
    expected = (X["sibsp"] + X["parch"] + 1).to_numpy()
    assert np.corrcoef(family, expected)[0, 1] == pytest.approx(1.0)  # standardised copy
    again = pickle.loads(pickle.dumps(pre))
    np.testing.assert_allclose(again.transform(X), Z)
    assert clone(pre).get_params()["custom__functions"] == tuple(options.custom)


def test_custom_function_errors_are_clear(titanic: tuple[pl.DataFrame, DataContract]) -> None:
    _, contract = titanic
    with pytest.raises(ModelyardError, match="cannot import the module 'no_such_module_xyz'"):
        build_preprocessor(
            contract, FeaturesSection(custom=["no_such_module_xyz:f"]), task="binary"
        )
    with pytest.raises(ModelyardError, match="did you mean 'add_family'"):
        build_preprocessor(
            contract,
            FeaturesSection(custom=["tests.unit.modeling.test_features:add_famly"]),
            task="binary",
        )
    with pytest.raises(ModelyardError, match="did you mean 'deck'"):
        build_preprocessor(
            contract, FeaturesSection.model_validate({"text": {"columns": ["dekc"]}}), task="binary"
        )


def test_feature_selection(titanic: tuple[pl.DataFrame, DataContract]) -> None:
    df, contract = titanic
    X, y = to_pandas(df, contract), target_array(df, contract)
    widths = {}
    for method in ("none", "variance", "mutual_info", "model"):
        options = FeaturesSection.model_validate({"selection": {"method": method, "k": 5}})
        Z = build_preprocessor(contract, options, task="binary", seed=0).fit_transform(X, y)
        widths[method] = Z.shape[1]
    assert widths["mutual_info"] == widths["model"] == 5
    assert 5 < widths["variance"] <= widths["none"]


def test_text_columns_become_tfidf(shared_data: Path) -> None:
    df = pl.read_csv(shared_data / "taxis.csv", try_parse_dates=True)
    contract = infer_contract(
        df,
        target="payment",
        task=None,
        roles=ColumnRoles(leakage=["total", "tip"]),
        options=ContractSection(),
    )
    df = df.filter(pl.col("payment").is_not_null())
    options = FeaturesSection.model_validate(
        {"text": {"columns": ["pickup_zone"], "max_features": 30}}
    )
    pre = build_preprocessor(contract, options, task="binary", seed=0)
    Z = pre.fit_transform(to_pandas(df, contract), target_array(df, contract))
    names = [str(n) for n in pre.get_feature_names_out()]
    assert sum(n.startswith("text_pickup_zone__") for n in names) == 30
    assert any(n.startswith("datetime__pickup_hour") for n in names)
    assert Z.shape == (df.height, len(names))


def test_a_column_the_contract_calls_text_becomes_tfidf_not_a_categorical(
    shared_data: Path,
) -> None:
    """Issue 11 item 8: a near-unique title column was target-encoded as a categorical."""
    df = pl.read_csv(shared_data / "taxis.csv", try_parse_dates=True)
    df = df.filter(pl.col("payment").is_not_null())
    df = df.with_columns(
        pl.format("{} to {} at {}", "pickup_zone", "dropoff_zone", "pickup").alias("trip")
    )
    contract = infer_contract(
        df, target="payment", task=None, roles=ColumnRoles(leakage=["total", "tip"]),
        options=ContractSection(),
    )  # fmt: skip
    assert contract.column("trip").text and contract.column("trip").role == "feature"
    options = FeaturesSection.model_validate({"text": {"max_features": 50}})
    pre = build_preprocessor(contract, options, task="binary", seed=0)
    Z = pre.fit_transform(to_pandas(df, contract), target_array(df, contract))
    names = [str(n) for n in pre.get_feature_names_out()]
    assert sum(n.startswith("text_trip__") for n in names) == 50
    assert not any(n.startswith(("high_card__trip", "onehot__trip")) for n in names)
    assert Z.shape == (df.height, len(names))


def test_penguins_sanity_accuracy(shared_data: Path) -> None:
    from sklearn.base import clone
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.pipeline import Pipeline

    df = pl.read_csv(shared_data / "penguins.csv", null_values=["NA", ""])
    contract = infer_contract(
        df, target="species", task=None, roles=ColumnRoles(), options=ContractSection()
    )
    assert contract.task == "multiclass"
    split = make_split(df, contract, SplitSection(), seed=42)
    model = Pipeline(
        [
            (
                "features",
                build_preprocessor(contract, FeaturesSection(), task="multiclass", seed=42),
            ),
            ("model", HistGradientBoostingClassifier(random_state=42)),
        ]
    )
    model.fit(to_pandas(split.train, contract), target_array(split.train, contract))
    pred = model.predict(to_pandas(split.test, contract))
    accuracy = float(np.mean(pred == target_array(split.test, contract)))
    assert accuracy >= 0.95
    restored = pickle.loads(pickle.dumps(model))
    assert (restored.predict(to_pandas(split.test, contract)) == pred).all()
    clone(model)


# --------------------------------------------------------------------------- property


@st.composite
def frames(draw: st.DrawFn) -> tuple[pl.DataFrame, DataContract, pl.DataFrame]:
    n = draw(st.integers(min_value=10, max_value=40))
    kinds = draw(st.lists(st.sampled_from(["int", "float", "str", "bool"]), min_size=1, max_size=5))
    data: dict[str, pl.Series] = {}
    unseen: dict[str, pl.Series] = {}
    cols = []
    for i, kind in enumerate(kinds):
        name = f"c{i}"
        if kind == "str":
            levels = [f"v{j}" for j in range(draw(st.integers(1, 25)))]
            values = draw(st.lists(st.sampled_from(levels) | st.none(), min_size=n, max_size=n))
            data[name] = pl.Series(name, values, dtype=pl.String)
            unseen[name] = pl.Series(name, ["never-seen", None], dtype=pl.String)
            cols.append(
                ColumnContract(
                    name=name,
                    type="str",
                    categories=levels if len(levels) < 20 else None,
                    distinct=len(levels),
                )
            )
        elif kind == "bool":
            values = draw(st.lists(st.booleans() | st.none(), min_size=n, max_size=n))
            data[name] = pl.Series(name, values, dtype=pl.Boolean)
            unseen[name] = pl.Series(name, [None, True], dtype=pl.Boolean)
            cols.append(ColumnContract(name=name, type="bool"))
        else:
            number = (
                st.floats(-1e6, 1e6, allow_nan=False)
                if kind == "float"
                else st.integers(-1000, 1000)
            )
            values = draw(st.lists(number | st.none(), min_size=n, max_size=n))
            dtype = pl.Float64 if kind == "float" else pl.Int64
            data[name] = pl.Series(name, values, dtype=dtype)
            unseen[name] = pl.Series(name, [None, None], dtype=dtype)
            cols.append(ColumnContract(name=name, type=kind))  # type: ignore[arg-type]
    y = ["a", "b"] * (n // 2) + ["a"] * (n % 2)
    data["y"] = pl.Series("y", y)
    unseen["y"] = pl.Series("y", ["a", "b"])
    cols.append(ColumnContract(name="y", type="str", role="target", nullable=False))
    contract = DataContract(target="y", task="binary", columns=cols)
    return pl.DataFrame(list(data.values())), contract, pl.DataFrame(list(unseen.values()))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=frames(), high=st.sampled_from(["target", "ordinal"]))
def test_property_any_contract_gives_finite_features(
    case: tuple[pl.DataFrame, DataContract, pl.DataFrame], high: str
) -> None:
    df, contract, unseen = case
    options = FeaturesSection.model_validate(
        {"categorical": {"one_hot_max_levels": 5, "high_cardinality": high}}
    )
    pre = build_preprocessor(contract, options, task="binary", seed=0)
    Z = pre.fit_transform(to_pandas(df, contract), target_array(df, contract))
    assert Z.shape[0] == df.height and Z.dtype == np.float64 and np.isfinite(Z).all()
    Z2 = pre.transform(to_pandas(unseen, contract))
    assert Z2.shape == (2, Z.shape[1]) and np.isfinite(Z2).all()


def test_datetime_parts_stay_in_range_over_a_leap_year() -> None:
    days = pd.date_range(dt.date(2012, 1, 1), dt.date(2012, 12, 31), freq="D")
    parts = DatetimeParts(parts=("month", "day", "dayofweek", "dayofyear"), cyclical=True)
    Z = parts.fit_transform(pd.DataFrame({"d": days}))
    col = {str(n): Z[:, i] for i, n in enumerate(parts.get_feature_names_out())}
    assert (col["d_month"].min(), col["d_month"].max()) == (1, 12)
    assert (col["d_day"].min(), col["d_day"].max()) == (1, 31)
    assert (col["d_dayofweek"].min(), col["d_dayofweek"].max()) == (0, 6)
    assert (col["d_dayofyear"].min(), col["d_dayofyear"].max()) == (1, 366)
    trig = [v for k, v in col.items() if k.endswith(("_sin", "_cos"))]
    assert len(trig) == 6 and all(np.all(np.abs(v) <= 1.0) for v in trig)
