"""Bike sharing: train on 2011, replay 2012 with its timestamps through the prediction server's
scoring path, then monitor month by month (event-time windows).

The model is trained with modelyard's stages (ingest, contract, validate, the feature
preprocessor, tracking + registry) rather than ``Project.run``: with a date ``time`` column the
run's ``register`` step currently fails (the preprocessor uses the time column through its
parts, the pyfunc's feature list does not include it); here the model sees the features only.

The replay calls the server's own ``Server.predict`` / ``Server.feedback`` in process (the code
behind POST /predict and POST /feedback, prediction log included) instead of going through
HTTP: the HTTP layer is covered by the serving and Prometheus integration tests.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner

from tests.unit.ops.monitoring._projects import bike_project

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


def test_2012_replayed_month_by_month_shows_drift_and_performance(
    tmp_path: Path, shared_data: Path
) -> None:
    from modelyard.cli.monitor import monitor
    from modelyard.data.validation import cast_to_contract
    from modelyard.ops.serving.app import Server, ServeSettings
    from modelyard.recipe import Project

    yaml, y2012 = bike_project(tmp_path, shared_data)
    project = Project.from_yaml(yaml)
    contract, reference_rmse = _train_and_register(project)
    assert project.declared_contract() == contract
    sent = [c.name for c in contract.columns if c.role in ("feature", "time", "id")]
    typed = cast_to_contract(y2012, contract)[0].with_columns(pl.col("dteday").cast(pl.String))
    registry = project.registry()
    log_dir = tmp_path / "predlog"
    server = Server(
        ServeSettings(
            model="bike@champion", tracking_uri=registry.tracking_uri, log_path=str(log_dir),
            poll_seconds=0, cache_dir=str(tmp_path / "cache"), lenient=True,
        ),
        None,
    )  # fmt: skip
    server.start()
    try:
        for (day,), rows in typed.group_by(["dteday"], maintain_order=True):
            request_id = f"req-{day}"
            records = rows.select(sent).to_dicts()
            response = server.predict(
                records, request_id, "/predict", f"{day}T12:00:00+00:00", time.perf_counter()
            )
            assert response.status_code == 200
            labels = rows.get_column("cnt").to_list()
            fb = server.feedback({"request_id": request_id, "labels": labels})
            assert fb.status_code in (200, 202)
    finally:
        server.stop()

    html = tmp_path / "monitoring.html"
    done = CliRunner().invoke(
        monitor, ["-c", str(yaml), "--log", str(log_dir), "--html", str(html), "--json"]
    )
    assert done.exit_code == 0, done.output
    payload = json.loads(done.output)
    report = payload["monitor"]
    labels = [w["label"] for w in report["windows"]]
    assert labels == [f"2012-{m:02d}" for m in range(1, 13)]
    assert report["window_by"] == "event_time"
    assert sum(w["rows"] for w in report["windows"]) == y2012.height
    # live data quality: 2012 values outside 2011 ranges would be flagged (served leniently)
    assert all(w["rejected_share"] == 0 for w in report["windows"])
    assert sum(w["flagged_share"] * w["rows"] for w in report["windows"]) < y2012.height / 10
    # performance month by month, from the /feedback labels
    for w in report["windows"]:
        assert w["labelled"] == w["rows"]
        assert w["metric"] is not None and w["metric"] > 0
        assert set(w["performance"]) >= {"rmse", "mae", "r2"}
    assert report["metric"] == "rmse"
    assert report["reference_metric"] == pytest.approx(reference_rmse)
    # 2012 rents more than 2011: the 2011 model under-predicts, worse than its test score
    assert max(w["performance_drop"] for w in report["windows"]) > 0
    # a single month against the whole of 2011: the temperature moves with the season
    jan, jul = report["windows"][0], report["windows"][6]
    temp_jan = next(f for f in jan["drift"]["features"] if f["column"] == "temp")
    temp_jul = next(f for f in jul["drift"]["features"] if f["column"] == "temp")
    assert temp_jan["drifted"] and temp_jul["drifted"]
    assert "mnth" in jan["drift"]["drifted_features"]
    # prediction drift is measured against the first window (no reference predictions given)
    assert report["prediction_baseline"] == "first window"
    assert any(f["column"] == "prediction" for f in jul["prediction_drift"])
    # the HTML report: trends as plots, every number with its exact value
    page = html.read_text()
    assert page.count("<svg") >= 5
    assert 'data-window="2012-07" data-stat="metric"' in page
    assert f'data-value="{jul["metric"]!r}"' in page or str(jul["metric"])[:8] in page
    assert html.with_suffix(".json").is_file()


def _train_and_register(project: object) -> tuple[object, float]:
    """A ridge model on 2011 Jan-Oct, scored on Nov-Dec, registered as the champion."""
    import numpy as np
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import Pipeline

    from modelyard import recipe
    from modelyard.compute import open_executor
    from modelyard.config.schema import FeaturesSection
    from modelyard.data.contract import contract_to_yaml
    from modelyard.modeling.features import build_preprocessor, target_array, to_pandas
    from modelyard.ops.tracking import log_training_run

    config = project.config  # type: ignore[attr-defined]
    scratch = project.store.scratch  # type: ignore[attr-defined]
    serial = open_executor("serial")
    train = recipe.ingest(config, scratch, serial)
    contract = recipe.contract(train, config, None, serial)
    # the time, the year and the row id only grow: no bounds on them (2012 would break them)
    contract = contract.model_copy(
        update={
            "columns": [
                c.model_copy(update={"min": None, "max": None})
                if c.name in ("dteday", "yr", "instant")
                else c
                for c in contract.columns
            ]
        }
    )
    config.contract.path.write_text(contract_to_yaml(contract))
    valid = recipe.validate(train, contract, config, scratch, serial).valid.collect()
    features_only = contract.model_copy(
        update={"columns": [c for c in contract.columns if c.role != "time"]}
    )
    cut = pl.col("dteday") < pl.date(2011, 11, 1)
    fit, hold = valid.filter(cut), valid.filter(~cut)
    model = Pipeline(
        [
            (
                "features",
                build_preprocessor(features_only, FeaturesSection(), task="regression", seed=0),
            ),
            ("model", Ridge()),
        ]
    ).fit(to_pandas(fit, features_only), target_array(fit, contract))
    x_hold = to_pandas(hold, features_only)
    rmse = float(np.sqrt(np.mean((model.predict(x_hold) - target_array(hold, contract)) ** 2)))
    run = log_training_run(
        tracking=config.tracking, workdir=config.workdir, project="bike", params={"model": "ridge"},
        metrics={"test_rmse": rmse}, model=model, contract=contract, task="regression",
        input_example=x_hold.head(5), artifacts={}, tags={"code_version": "test"},
    )  # fmt: skip
    assert run.registered_version is not None
    project.registry().promote(run.registered_version, reason="test", command="test")  # type: ignore[attr-defined]
    return contract, rmse
