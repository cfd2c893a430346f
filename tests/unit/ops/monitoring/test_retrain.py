"""The closed loop on a tiny real project (penguins, candidates dummy + linear, no tuning):
a challenger that passes the gate is promoted, one that fails it is kept, never promoted, and
every decision is in the monitoring audit log."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest

from tests.unit.ops.monitoring._projects import penguins_project

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


def _log(rows: pl.DataFrame, prediction: pl.Expr) -> pl.DataFrame:
    """Log rows as :func:`read_prediction_log` gives them, labelled with the true species."""
    start = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    n = rows.height
    return rows.with_columns(
        pl.Series("request_id", [f"r{i}" for i in range(n)]),
        pl.lit(0).alias("row"),
        pl.Series("arrival_time", [start + dt.timedelta(minutes=i) for i in range(n)]),
        pl.lit(None, dtype=pl.Datetime("us")).alias("event_time"),
        pl.lit("served").alias("status"),
        pl.lit("1").alias("model_version"),
        pl.lit(1.0).alias("latency_ms"),
        prediction.alias("prediction"),
        pl.col("species").alias("label"),
    ).drop("species")


def test_retrain_promotes_a_better_challenger_and_keeps_a_worse_one(
    tmp_path: Path, shared_data: Path
) -> None:
    from modelyard.data.sources import read_source
    from modelyard.data.validation import cast_to_contract
    from modelyard.ops.monitoring.monitor import monitor
    from modelyard.ops.monitoring.retrain import read_audit, retrain
    from modelyard.recipe import Project

    project = Project.from_yaml(penguins_project(tmp_path, shared_data, models="[dummy]"))
    first = project.run()
    assert first.registration is not None and first.registration.version == "1"
    config = project.config
    contract = project.declared_contract()
    assert contract is not None
    data = config.data
    reference = read_source(data.source, normalize=data.normalize, drop=data.columns.drop)
    typed = cast_to_contract(reference, contract)[0].filter(pl.col("species").is_not_null())
    champion = project.registry().champion()
    assert champion is not None
    ref_metric = champion.metrics["test_f1_macro"]

    def run(cfg: object) -> object:
        return Project(cfg).run()  # type: ignore[arg-type]

    # the same population, predicted perfectly: nothing crosses a threshold -> skipped
    calm = _log(typed.sample(fraction=1.0, shuffle=True, seed=1), pl.col("species"))
    report = monitor(
        calm, reference, contract, settings=config.monitoring, reference_metric=ref_metric
    )
    assert report.alerts == [], [
        (w.label, [f.reasons for f in w.drift.features]) for w in report.windows
    ]
    skipped = retrain(
        config, report=report, reference=reference, log=calm, contract=contract, run=run
    )
    assert skipped.outcome == "skipped" and skipped.trigger.reasons == ["no threshold crossed"]

    # only Gentoo penguins arrive (Biscoe island, heavy), the dummy says Adelie: drift + drop
    gentoo = _log(typed.filter(pl.col("species") == "Gentoo"), pl.lit("Adelie"))
    report = monitor(
        gentoo, reference, contract, settings=config.monitoring, reference_metric=ref_metric
    )
    latest = report.latest()
    assert latest is not None and latest.drift.drifted
    assert {"island", "body_mass_g"} <= set(latest.drift.drifted_features)

    better = config.model_copy(
        update={"models": config.models.model_copy(update={"candidates": ["dummy", "linear"]})}
    )
    promoted = retrain(
        better, report=report, reference=reference, log=gentoo, contract=contract, run=run
    )
    assert promoted.outcome == "promoted", promoted.gate_reasons
    assert promoted.trigger.retrain and any("data drift" in r for r in promoted.trigger.reasons)
    assert promoted.version == "2" and promoted.previous_champion == "1"
    assert promoted.labelled_rows == gentoo.height
    assert promoted.training_rows == reference.height + gentoo.height
    assert promoted.data_file is not None and Path(promoted.data_file).is_file()
    registry = project.registry()
    assert registry.champion().version == "2"  # type: ignore[union-attr]

    # the dummy alone cannot beat the linear champion: kept as challenger, never promoted
    kept = retrain(
        config, report=report, reference=reference, log=gentoo, contract=contract, run=run
    )
    assert kept.outcome == "kept" and kept.version == "3"
    assert any("champion" in r for r in kept.gate_reasons)
    assert registry.champion().version == "2"  # type: ignore[union-attr]
    assert registry.challenger().version == "3"  # type: ignore[union-attr]

    audit = read_audit(config.workdir)
    assert [a["action"] for a in audit] == ["retrain_skipped", "retrain_promoted", "retrain_kept"]
    assert audit[2]["version"] == "3" and audit[2]["gate_reasons"] == kept.gate_reasons
    # the registry's own audit log still reads (monitoring writes beside it, not into it)
    assert [e.to_version for e in registry.history()][-2:] == ["2", "3"]
