"""``modelyard drift A B`` and ``modelyard monitor --emit-config`` as a user runs them."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
from click.testing import CliRunner

from modelyard.cli.monitor import drift, monitor


def _halves(tmp_path: Path, shared_data: Path) -> tuple[Path, Path, Path]:
    diamonds = pl.read_csv(shared_data / "diamonds.csv")
    a, b = diamonds[:20000], diamonds[20000:40000]
    ref, same, moved = tmp_path / "ref.csv", tmp_path / "same.parquet", tmp_path / "moved.csv"
    a.write_csv(ref)
    a.sample(fraction=1.0, shuffle=True, seed=0).write_parquet(same)
    b.with_columns(pl.col("carat") * 1.5, pl.lit("Fair").alias("cut")).write_csv(moved)
    return ref, same, moved


def test_drift_command_on_two_files(tmp_path: Path, shared_data: Path) -> None:
    ref, same, moved = _halves(tmp_path, shared_data)
    done = CliRunner().invoke(drift, [str(ref), str(same), "--json"])
    assert done.exit_code == 0, done.output
    report = json.loads(done.output)
    assert report["status"] == "ok" and report["drifted_features"] == []
    assert {f["column"]: f["kind"] for f in report["features"]}["carat"] == "numeric"  # CSV typed
    html = tmp_path / "out" / "drift.html"
    done = CliRunner().invoke(drift, [str(ref), str(moved), "--html", str(html)])
    assert done.exit_code == 0, done.output
    assert "carat" in done.output and "cut" in done.output
    flagged = [line.split()[1] for line in done.output.splitlines() if line.startswith(" !")]
    assert {"carat", "cut"} <= set(flagged)
    assert 'data-stat="psi" data-column="carat"' in html.read_text()


def test_drift_command_with_a_project_reports_its_target_as_label_drift(
    tmp_path: Path, shared_data: Path
) -> None:
    # the project's target was compared (and counted) as one more feature
    from tests.unit.ops.monitoring._projects import bike_project

    yaml, y2012 = bike_project(tmp_path, shared_data)
    y2012.write_csv(tmp_path / "2012.csv")
    done = CliRunner().invoke(
        drift, ["-c", str(yaml), str(tmp_path / "train-2011.csv"), str(tmp_path / "2012.csv"),
                "--json"],
    )  # fmt: skip
    assert done.exit_code == 0, done.output
    report = json.loads(done.output)
    features = [f["column"] for f in report["features"]]
    assert "cnt" not in features and {"casual", "registered", "hum"} <= set(features)
    assert report["target"]["column"] == "cnt" and report["target"]["status"] == "drift"
    assert report["target"]["kind"] == "numeric"  # a regression target
    assert "cnt" not in report["drifted_features"]
    assert report["thresholds"]["wasserstein"] == 0.2 and report["thresholds"]["p_value"] == 0.01


def test_drift_command_user_errors(tmp_path: Path) -> None:
    done = CliRunner().invoke(drift, [str(tmp_path / "nope.csv"), str(tmp_path / "nope.csv")])
    assert done.exit_code != 0


def test_emit_config(tmp_path: Path) -> None:
    yaml = tmp_path / "modelyard.yaml"
    yaml.write_text(
        "version: 1\nname: p\ndata: {source: {builtin: iris}}\nmonitoring: {performance_drop: 0.02}\n"
    )
    done = CliRunner().invoke(
        monitor, ["-c", str(yaml), "--emit-config", str(tmp_path / "p"), "--json"]
    )
    assert done.exit_code == 0, done.output
    written = json.loads(done.output)["written"]
    assert [Path(p).name for p in written] == [
        "modelyard-alerts.yml",
        "modelyard-dashboard.json",
        "prometheus.yml",
    ]
    rules = (tmp_path / "p" / "modelyard-alerts.yml").read_text()
    assert "modelyard_performance_drop > 0.02" in rules
    assert "modelyard_http_request_duration_seconds_bucket" in rules
    assert "127.0.0.1:9108" in (tmp_path / "p" / "prometheus.yml").read_text()
