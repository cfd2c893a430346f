"""Windowed monitoring, its Prometheus exposition, the emitted rules (promtool) and the
HTML report."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from modelyard.config.schema import MonitoringSection
from tests.conftest import skip_or_fail
from tests.unit.ops.monitoring._synthetic import report


def test_windows_drift_quality_and_performance() -> None:
    r = report()
    assert [w.label for w in r.windows] == ["2024-01-01", "2024-01-02"]
    day1, day2 = r.windows
    assert r.window_by == "event_time"
    assert not day1.drift.drifted and day1.drift.feature("x").status == "ok"
    assert day2.drift.drifted_features == ["x"] and day2.drift.feature("c").drifted is False
    assert 0 < day1.rejected_share < 0.15 and day1.flagged_share == 0
    # labels agree with the prediction 90% of the time
    assert day1.metric == pytest.approx(0.9, abs=0.05) and r.metric == "accuracy"
    assert day1.performance_drop == pytest.approx(0.99 - day1.metric)
    # predictions: against the first window (no reference predictions given)
    assert r.prediction_baseline == "first window"
    assert {f.column for f in day2.prediction_drift} == {"prediction", "proba_0", "proba_1"}
    assert day2.prediction_drift[0].drifted
    assert any(a.startswith("data drift in window 2024-01-02") for a in r.alerts)
    assert any(a.startswith("performance drop in window 2024-01-02") for a in r.alerts)


def test_label_drift_is_reported_apart_from_the_features() -> None:
    # the reference's labels are 50% "1"; the log's labels follow x: about 35% "1" on day 1,
    # 89% on day 2. The target is never one of the window's features.
    r = report()
    day1, day2 = r.windows
    for w in (day1, day2):
        assert "y" not in [f.column for f in w.drift.features]
        assert w.label_drift is not None and w.label_drift.column == "y"
        assert w.label_drift.kind == "categorical" and w.label_drift.reference_rows == 400
        assert w.label_drift.current_rows == w.labelled
    assert day2.label_drift is not None and day2.label_drift.drifted
    assert day2.label_drift.jensen_shannon is not None and day2.label_drift.jensen_shannon > 0.3
    assert any(a.startswith("label drift in window 2024-01-02") for a in r.alerts)
    from modelyard.reports.drift import render_monitor_html

    html = render_monitor_html(r)
    assert "<th>label drift</th>" in html
    assert 'data-window="2024-01-02" data-stat="jensen_shannon" data-column="y"' in html


def test_exposition_has_the_documented_metrics() -> None:
    from prometheus_client import CollectorRegistry, generate_latest

    from modelyard.ops.monitoring.prometheus import MonitorCollector

    registry = CollectorRegistry()
    registry.register(MonitorCollector(report()))
    text = generate_latest(registry).decode()
    for line in (
        'modelyard_drift_score{feature="x",method="psi"}',
        'modelyard_drift_score{feature="c",method="jensen_shannon"}',
        'modelyard_feature_drift{feature="x"} 1.0',
        'modelyard_feature_drift{feature="c"} 0.0',
        "modelyard_dataset_drift 1.0",
        "modelyard_drift_share 0.5",
        'modelyard_prediction_drift_score{method="psi",output="prediction"}',
        'modelyard_window_performance{metric="accuracy"}',
        'modelyard_reference_performance{metric="accuracy"} 0.99',
        'modelyard_performance_drop{metric="accuracy"}',
        'modelyard_window_rows{status="rejected"}',
        "modelyard_window_rejected_share",
        'modelyard_drift_threshold{method="psi"} 0.2',
        'modelyard_drift_threshold{method="p_value"} 0.01',
        'modelyard_label_drift{target="y"} 1.0',
        'modelyard_label_drift_score{method="jensen_shannon",target="y"}',
        "modelyard_monitor_last_run_timestamp_seconds",
    ):
        assert line in text, line
    empty = CollectorRegistry()
    empty.register(MonitorCollector())
    assert "modelyard_monitor_last_run_timestamp_seconds" in generate_latest(empty).decode()


def test_emitted_rules_pass_promtool_and_fire_on_drift(tmp_path: Path) -> None:
    from modelyard.ops.monitoring.prometheus import PANELS, emit_config

    rules, dash, prom = emit_config(tmp_path, MonitoringSection(), for_="1m")
    board = json.loads(dash.read_text())
    assert [p["targets"][0]["expr"] for p in board["panels"]] == [expr for _, expr, _ in PANELS]
    promtool = shutil.which("promtool")
    if promtool is None:
        skip_or_fail("promtool is missing (apt-get install prometheus)")
    assert promtool is not None
    done = subprocess.run([promtool, "check", "rules", str(rules)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS: 8 rules found" in done.stdout
    done = subprocess.run([promtool, "check", "config", str(prom)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    # unit-test the rules: drift for 2 minutes fires after 1m; a performance drop too
    (tmp_path / "test.yml").write_text(
        f"""
rule_files: [{rules.name}]
evaluation_interval: 30s
tests:
  - interval: 30s
    input_series:
      - series: modelyard_dataset_drift{{job="m"}}
        values: 0 0 1 1 1 1 1
      - series: modelyard_performance_drop{{job="m",metric="rmse"}}
        values: 0 0 0 0 1 1 1
      - series: modelyard_label_drift{{job="m",target="cnt"}}
        values: 1 1 1 1 1 1 1
    alert_rule_test:
      - eval_time: 30s
        alertname: ModelyardDatasetDrift
        exp_alerts: []
      - eval_time: 3m
        alertname: ModelyardDatasetDrift
        exp_alerts:
          - exp_labels: {{severity: warning, job: m}}
            exp_annotations:
              summary: Input data drifted
              description: "1: at least the configured share of the features drifted in the latest monitoring window (modelyard monitor)."
      - eval_time: 3m
        alertname: ModelyardPerformanceDrop
        exp_alerts:
          - exp_labels: {{severity: critical, job: m, metric: rmse}}
            exp_annotations:
              summary: Model performance dropped
              description: "rmse is 1 worse than at training."
      - eval_time: 3m
        alertname: ModelyardLabelDrift
        exp_alerts:
          - exp_labels: {{severity: warning, job: m, target: cnt}}
            exp_annotations:
              summary: The labels of cnt drifted
              description: "The labels that arrived through /feedback in the latest judged window differ from the reference's target (modelyard monitor)."
"""
    )
    done = subprocess.run(
        [promtool, "test", "rules", "test.yml"], cwd=tmp_path, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_html_report_has_trends_and_exact_values() -> None:
    from modelyard.reports.drift import monitor_json, render_drift_html, render_monitor_html

    r = report()
    page = render_monitor_html(r)
    assert page.startswith("<!DOCTYPE html>")
    assert 'src="http' not in page and 'href="http' not in page  # self-contained
    assert page.count("<svg") >= 4
    day2 = r.windows[1]
    assert (
        f'data-window="2024-01-02" data-stat="drift_share" data-value="{day2.drift.drift_share!r}"'
        in page
    )
    psi = day2.drift.feature("x").psi
    assert f'data-window="2024-01-02" data-stat="psi" data-column="x" data-value="{psi!r}"' in page
    assert json.loads(monitor_json(r))["windows"][1]["drift"]["drifted_features"] == ["x"]
    single = render_drift_html(day2.drift)
    assert 'data-stat="psi" data-column="x"' in single and single.count("<svg") == 2
