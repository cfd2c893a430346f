"""Single-record latency through the serving path, as the promotion gate measures it."""

from __future__ import annotations

import polars as pl

from modelyard.data.contract import ColumnContract
from modelyard.ops.serving.latency import json_records, measure_latency, served_from_pipeline
from tests.unit.ops._penguins import FEATURES, TARGET, load_penguins
from tests.unit.ops._register import contract_of, fit


def test_records_are_what_a_client_sends() -> None:
    data = load_penguins()
    contract = contract_of(FEATURES)
    leaky = contract.model_copy(
        update={
            "columns": [
                *contract.columns,
                ColumnContract(name="tag", type="str", role="leakage"),
            ]
        }
    )
    rows = pl.from_pandas(data.test).with_columns(pl.lit("x").alias("tag"))
    records = json_records(rows, leaky, 7)
    assert len(records) == 7
    assert all(set(r) == set(FEATURES) for r in records)  # no target, no leakage column
    first = data.test.iloc[0]
    assert records[0]["island"] == first["island"]
    assert records[0]["bill_length_mm"] == first["bill_length_mm"]
    assert json_records(rows.head(3), leaky, 10) == json_records(rows, leaky, 3)


def test_latency_is_measured_through_the_fast_path_on_single_records() -> None:
    data = load_penguins()
    contract = contract_of(FEATURES)
    model = fit(FEATURES)
    served = served_from_pipeline(model, contract, task="multiclass")
    assert served.compiled is not None, served.fast_reason
    records = json_records(pl.from_pandas(data.test), contract, 40)
    rows = [served.checker.check(r).values for r in records]
    fast, slow = served.predict(rows), served.predict_slow(rows)
    assert fast.predictions == slow.predictions == list(model.predict(data.test[FEATURES][:40]))
    assert TARGET not in served.features

    lat = measure_latency(served, records, warmup=3)
    assert lat is not None
    assert lat.rows == 40 and lat.fast_path
    assert 0 < lat.p50_ms <= lat.p99_ms <= lat.max_ms
    assert measure_latency(served, []) is None


def test_a_model_the_server_cannot_build_is_reported_not_raised() -> None:
    from sklearn.dummy import DummyClassifier

    from modelyard.config.schema import GateSection
    from modelyard.ops.promotion import measure_candidate

    data = load_penguins()
    contract = contract_of(FEATURES)
    bare = DummyClassifier().fit(data.train[FEATURES], data.train[TARGET])  # not a Pipeline
    rows = pl.from_pandas(data.test)
    latency, error = measure_candidate(bare, contract, rows, task="multiclass", gate=GateSection())
    assert latency is None and error is not None and error.startswith("AttributeError")
    off = measure_candidate(
        bare, contract, rows, task="multiclass", gate=GateSection(latency_rows=0)
    )
    assert off == (None, None)
    latency, error = measure_candidate(
        fit(FEATURES), contract, rows.head(0), task="multiclass", gate=GateSection()
    )
    assert latency is None and error == "the test set has no rows"
