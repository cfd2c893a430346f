"""The modeling contract: columns with a critical leakage alert are left out of the model."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelyard.config.schema import ProfileSection
from modelyard.data.contract import ColumnContract, DataContract
from modelyard.data.leakage import modeling_contract, standing_alerts
from modelyard.data.profile import Alert, profile
from modelyard.errors import ModelyardError
from modelyard.modeling.features import feature_columns, to_pandas
from tests.unit.data.test_profile import make_contract


def test_titanic_alive_is_left_out_of_the_model_unless_allowed(shared_data: Path) -> None:
    df = pl.read_csv(shared_data / "titanic.csv")
    contract = make_contract(df, "survived", "binary")
    prof = profile(df, contract, ProfileSection())

    m = modeling_contract(contract, prof.alerts)
    assert [x.name for x in m.excluded] == ["alive"]
    assert m.excluded[0].reason == prof.alerts[0].message
    assert "determines the target 'survived'" in m.excluded[0].reason
    assert m.contract.column("alive").role == "leakage"
    assert "alive" not in feature_columns(m.contract)
    assert "alive" not in to_pandas(df, m.contract).columns
    # nothing else moved, and the user's contract is untouched
    others = [c for c in m.contract.columns if c.name != "alive"]
    assert others == [c for c in contract.columns if c.name != "alive"]
    assert contract.column("alive").role == "feature"
    assert [set(a.columns) for a in m.leakage_alerts] == [{"alive"}]

    kept = modeling_contract(contract, prof.alerts, allow_leaky=["alive"])
    assert kept.excluded == [] and [x.name for x in kept.allowed] == ["alive"]
    assert kept.contract == contract
    assert "alive" in to_pandas(df, kept.contract).columns


def test_both_columns_of_a_sum_leak_are_left_out(shared_data: Path) -> None:
    df = pl.read_csv(shared_data / "bike_sharing" / "day.csv", try_parse_dates=True)
    contract = make_contract(df, "cnt", "regression")
    m = modeling_contract(contract, profile(df, contract, ProfileSection()).alerts)
    assert {"casual", "registered"} <= {x.name for x in m.excluded}
    assert {"casual", "registered"}.isdisjoint(feature_columns(m.contract))


def test_a_declared_leakage_column_is_not_excluded_twice(shared_data: Path) -> None:
    df = pl.read_csv(shared_data / "titanic.csv")
    contract = make_contract(df, "survived", "binary", roles={"alive": "leakage"})
    m = modeling_contract(contract, profile(df, contract, ProfileSection()).alerts)
    assert m.excluded == [] and m.contract == contract  # its alert is a warning, already handled
    assert [a.severity for a in m.leakage_alerts] == ["warning"]


def test_allow_leaky_must_name_a_column() -> None:
    contract = DataContract(columns=[ColumnContract(name="alive", type="str")])
    with pytest.raises(ModelyardError) as err:
        modeling_contract(contract, [], allow_leaky=["alvie"])
    message = str(err.value)
    assert message.startswith("features.allow_leaky: ")
    assert "did you mean 'alive'?" in message and "'alvie'" in message


def test_standing_alerts_are_those_on_the_model_inputs() -> None:
    a = Alert(kind="leakage", columns=["casual", "registered"], severity="critical", message="m")
    other = Alert(kind="skewed", columns=["casual"], severity="info", message="s")
    assert standing_alerts([a, other], ["registered", "temp"]) == [a]
    assert standing_alerts([a, other], ["temp"]) == []


NAMES = [f"c{i}" for i in range(6)]


@settings(max_examples=200, deadline=None)
@given(
    roles=st.lists(st.sampled_from(["feature", "id", "time", "leakage"]), min_size=6, max_size=6),
    alerts=st.lists(
        st.tuples(
            st.lists(st.sampled_from(NAMES), min_size=1, max_size=2, unique=True),
            st.sampled_from(["critical", "warning", "info"]),
            st.sampled_from(["leakage", "constant"]),
        ),
        max_size=4,
    ),
    allow=st.lists(st.sampled_from(NAMES), unique=True, max_size=3),
)
def test_exactly_the_unallowed_features_of_critical_leakage_alerts_are_excluded(
    roles: list[str], alerts: list[tuple[list[str], str, str]], allow: list[str]
) -> None:
    contract = DataContract(
        target="y",
        columns=[ColumnContract(name="y", type="int", role="target")]
        + [ColumnContract(name=n, type="float", role=r) for n, r in zip(NAMES, roles, strict=True)],  # type: ignore[arg-type]
    )
    given_alerts = [
        Alert(kind=kind, columns=cols, severity=sev, message=f"{kind} {cols}")  # type: ignore[arg-type]
        for cols, sev, kind in alerts
    ]
    m = modeling_contract(contract, given_alerts, allow_leaky=allow)
    flagged = {
        c
        for cols, sev, kind in alerts
        if sev == "critical" and kind == "leakage"
        for c in cols
        if contract.column(c).role == "feature"
    }
    assert {x.name for x in m.excluded} == flagged - set(allow)
    assert {x.name for x in m.allowed} == flagged & set(allow)
    for before, after in zip(contract.columns, m.contract.columns, strict=True):
        assert after.name == before.name
        want = "leakage" if before.name in flagged - set(allow) else before.role
        assert after.role == want
        assert after.model_copy(update={"role": before.role}) == before
    assert all(a.kind == "leakage" for a in m.leakage_alerts)
    assert len(m.leakage_alerts) == sum(1 for *_, kind in alerts if kind == "leakage")
