"""Performance estimated before labels (CBPE): the estimator's math where the truth is known,
its invariants, the calibration path, and its place in the monitor, the Prometheus exposition,
the alert rules and the HTML report."""

from __future__ import annotations

import math
import shutil
import subprocess
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from modelyard.config.schema import MonitoringSection
from modelyard.errors import ModelyardError
from modelyard.ops.monitoring.estimate import (
    Calibration,
    IsotonicMap,
    calibration_from_search,
    estimate,
    expected_auc,
    fit_calibration,
)
from modelyard.ops.monitoring.monitor import MonitorReport
from tests.conftest import skip_or_fail

IDENTITY = IsotonicMap(x=[0.0, 1.0], y=[0.0, 1.0])
BINARY = Calibration(task="binary", classes=["0", "1"], positive="1", maps=[IDENTITY], rows=1)


def _realised(y: np.ndarray, p1: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    from sklearn.metrics import accuracy_score, f1_score, roc_auc_score

    return {
        "accuracy": accuracy_score(y, pred),
        "f1": f1_score(y, pred),
        "roc_auc": roc_auc_score(y, p1),
    }


def _sd_accuracy(q: np.ndarray) -> float:
    """Standard deviation of the realised accuracy when record i is right with probability q_i
    (a sum of independent Bernoullis over n)."""
    return float(np.sqrt(np.sum(q * (1 - q))) / q.size)


def _sd_auc(auc: float, positives: float, negatives: float) -> float:
    """An upper bound of the AUC's standard deviation: AUC (1 - AUC) / min(positives,
    negatives) (Hanley & McNeil's variance is below it for AUC >= 0.5)."""
    return math.sqrt(max(auc * (1 - auc), 1e-4) / max(min(positives, negatives), 1.0))


# --------------------------------------------------------------------------- known truth


def test_perfectly_calibrated_probabilities_estimate_the_realised_metrics() -> None:
    # labels drawn from the very probabilities the model gives: the estimate is unbiased and
    # the realised metric scatters around it by its sampling error alone
    rng = np.random.default_rng(0)
    n = 20_000
    p = rng.beta(2, 3, n)
    y = (rng.random(n) < p).astype(int)
    pred = (p >= 0.5).astype(int)
    est = estimate(BINARY, np.column_stack([1 - p, p]), pred.astype(str))
    real = _realised(y, p, pred)
    q_right = np.where(pred == 1, p, 1 - p)
    assert abs(est["accuracy"] - real["accuracy"]) <= 4 * _sd_accuracy(q_right)
    auc_sd = _sd_auc(real["roc_auc"], y.sum(), n - y.sum())
    assert abs(est["roc_auc"] - real["roc_auc"]) <= 4 * auc_sd
    # F1: the delta method bound is loose; 4/sqrt(predicted positives) is generous but finite
    assert abs(est["f1"] - real["f1"]) <= 4 / math.sqrt(pred.sum())
    assert set(est) == {"roc_auc", "f1", "precision", "recall", "accuracy"}


def test_miscalibrated_scores_are_calibrated_on_the_reference_and_survive_covariate_shift() -> None:
    # the model's score is p**2 (over-confident negatives); the truth is p. Calibrated on a
    # reference sample, the estimate on windows drawn from other regions of the input space
    # (P(x) moves, P(y | x) does not) tracks the realised accuracy and AUC.
    rng = np.random.default_rng(1)

    def draw(a: float, b: float, n: int) -> tuple[np.ndarray, np.ndarray]:
        p = rng.beta(a, b, n)
        return p, (rng.random(n) < p).astype(int)

    p_ref, y_ref = draw(2, 2, 20_000)
    cal = fit_calibration(y_ref, np.column_stack([1 - p_ref**2, p_ref**2]), [0, 1])
    assert cal.task == "binary" and cal.positive == "1" and cal.rows == 20_000
    raw_error, est_error = [], []
    for a, b in ((2, 2), (1, 4), (4, 1), (0.5, 0.5)):
        p, y = draw(a, b, 5_000)
        s = p**2
        pred = (s >= 0.5).astype(int)
        est = estimate(cal, np.column_stack([1 - s, s]), pred.astype(str))
        real = _realised(y, s, pred)
        q_right = np.where(pred == 1, p, 1 - p)
        # sampling error (4 sd) plus the isotonic fit's own error on 20,000 rows (<= 0.01)
        assert abs(est["accuracy"] - real["accuracy"]) <= 4 * _sd_accuracy(q_right) + 0.01
        sd = _sd_auc(real["roc_auc"], y.sum(), y.size - y.sum())
        assert abs(est["roc_auc"] - real["roc_auc"]) <= 4 * sd + 0.01
        est_error.append(abs(est["accuracy"] - real["accuracy"]))
        raw = estimate(BINARY, np.column_stack([1 - s, s]), pred.astype(str))
        raw_error.append(abs(raw["accuracy"] - real["accuracy"]))
    # without the calibration the same windows are estimated far worse
    assert max(raw_error) > 0.05 > max(est_error)


def test_multiclass_accuracy_and_macro_f1_from_calibrated_probabilities() -> None:
    from sklearn.metrics import accuracy_score, f1_score

    rng = np.random.default_rng(2)
    n, k = 20_000, 3
    p = rng.dirichlet([0.6, 0.8, 1.0], n)
    y = np.array([rng.choice(k, p=row) for row in p])
    names = ["a", "b", "c"]
    cal = Calibration(task="multiclass", classes=names, maps=[IDENTITY] * k, rows=1)
    pred = p.argmax(axis=1)
    est = estimate(cal, p, np.asarray(names)[pred])
    assert set(est) == {"accuracy", "f1_macro"}
    q_right = p[np.arange(n), pred]
    assert abs(est["accuracy"] - accuracy_score(y, pred)) <= 4 * _sd_accuracy(q_right)
    assert abs(est["f1_macro"] - f1_score(y, pred, average="macro")) <= 0.02
    # the default served label is the most probable class
    assert estimate(cal, p) == est


# --------------------------------------------------------------------------- invariants

probs = arrays(float, st.integers(2, 60), elements=st.floats(0.0, 1.0))


@settings(max_examples=60, deadline=None)
@given(probs, st.integers(0, 2**32 - 1))
def test_estimates_are_in_0_1_and_do_not_depend_on_record_order(p: np.ndarray, seed: int) -> None:
    proba = np.column_stack([1 - p, p])
    pred = np.where(p >= 0.5, "1", "0")
    est = estimate(BINARY, proba, pred)
    assert all(0.0 <= v <= 1.0 for v in est.values()), est
    order = np.random.default_rng(seed).permutation(p.size)
    shuffled = estimate(BINARY, proba[order], pred[order])
    assert shuffled.keys() == est.keys()
    for name, value in est.items():
        assert shuffled[name] == pytest.approx(value, abs=1e-12)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.booleans(), min_size=2, max_size=40), st.integers(0, 2**32 - 1))
def test_certain_probabilities_give_exactly_the_realised_metrics(
    labels: list[bool], seed: int
) -> None:
    # calibrated probabilities of exactly 0 or 1: the expected confusion matrix is the
    # realised one, whatever the model served
    from sklearn.metrics import accuracy_score, f1_score, roc_auc_score

    y = np.asarray(labels, dtype=int)
    pred = np.random.default_rng(seed).integers(0, 2, y.size)
    score = np.random.default_rng(seed + 1).random(y.size)
    # calibration sends the score of positives to 1 and of negatives to 0: order by label
    score = np.where(y == 1, 0.5 + score / 2, score / 2 - 1e-9).clip(0, 1)
    step = IsotonicMap(x=[0.0, 0.5 - 1e-12, 0.5, 1.0], y=[0.0, 0.0, 1.0, 1.0])
    cal = BINARY.model_copy(update={"maps": [step]})
    est = estimate(cal, np.column_stack([1 - score, score]), pred.astype(str))
    assert est["accuracy"] == pytest.approx(accuracy_score(y, pred))
    assert est["f1"] == pytest.approx(f1_score(y, pred, zero_division=0.0))
    if 0 < y.sum() < y.size:
        assert est["roc_auc"] == pytest.approx(roc_auc_score(y, score))
    else:
        assert "roc_auc" not in est  # no expected positive (or negative): undefined


@settings(max_examples=60, deadline=None)
@given(probs, probs)
def test_expected_auc_is_the_weighted_auc(score: np.ndarray, q: np.ndarray) -> None:
    # each record counts q as a positive and 1 - q as a negative: scikit-learn's weighted AUC
    # of the records duplicated, ties included
    from sklearn.metrics import roc_auc_score

    n = min(score.size, q.size)
    score, q = np.round(score[:n], 1), q[:n]  # rounding makes ties
    auc = expected_auc(score, q)
    if q.sum() == 0 or (1 - q).sum() == 0:
        assert math.isnan(auc)
        return
    want = roc_auc_score(
        np.r_[np.ones(n), np.zeros(n)], np.r_[score, score], sample_weight=np.r_[q, 1 - q]
    )
    assert auc == pytest.approx(want, abs=1e-9)


# --------------------------------------------------------------------------- calibration


def test_calibration_is_monotone_json_and_checks_its_input() -> None:
    rng = np.random.default_rng(3)
    p = rng.random(2_000)
    y = np.where(rng.random(2_000) < p, "yes", "no")
    cal = fit_calibration(y, np.column_stack([1 - p, p]), ["no", "yes"])
    assert cal.positive == "yes"
    assert np.all(np.diff(cal.maps[0].y) >= 0) and np.all(np.diff(cal.maps[0].x) >= 0)
    again = Calibration.model_validate_json(cal.model_dump_json())
    grid = np.column_stack([1 - np.linspace(0, 1, 11), np.linspace(0, 1, 11)])
    assert np.array_equal(again.apply(grid), cal.apply(grid))
    assert np.allclose(cal.apply(grid).sum(axis=1), 1.0)
    with pytest.raises(ModelyardError, match="classes the model does not know"):
        fit_calibration(np.array(["no", "maybe"]), np.full((2, 2), 0.5), ["no", "yes"])
    with pytest.raises(ModelyardError, match="do not match the calibration's classes"):
        estimate(cal, np.full((3, 3), 1 / 3))
    with pytest.raises(ModelyardError, match="NaN"):
        estimate(cal, np.array([[0.5, np.nan]]))
    with pytest.raises(ModelyardError, match="served labels"):
        estimate(cal, np.full((2, 2), 0.5), ["no", "maybe"])
    assert estimate(cal, np.empty((0, 2))) == {}


def test_calibration_from_the_search_blends_the_chosen_members_out_of_fold() -> None:
    from modelyard.modeling.search.ensemble import Choice, Member
    from modelyard.modeling.search.results import OutOfFold

    rng = np.random.default_rng(4)
    n = 3_000
    p = rng.random(n)
    y = (rng.random(n) < p).astype(int)
    covered = np.ones(n, dtype=bool)
    covered[:100] = False  # rows no fold validated: NaN, left out
    a = np.column_stack([1 - p**2, p**2])
    b = np.column_stack([1 - np.sqrt(p), np.sqrt(p)])
    a[~covered] = b[~covered] = np.nan
    oof = OutOfFold(y=y, covered=covered, classes=["0", "1"], predictions={"a": a, "b": b})
    members = [
        Member(key="a", name="a", family="linear", params={}, weight=0.5),
        Member(key="b", name="b", family="linear", params={}, weight=0.5),
    ]
    choice = Choice(name="ensemble", members=members, score=0.0, source="ensemble", reason="r")
    cal = calibration_from_search(choice, oof)
    assert cal is not None and cal.rows == n - 100
    blend = (a + b)[covered] / 2
    assert cal == fit_calibration(y[covered], blend, ["0", "1"])
    regression = OutOfFold(y=p, covered=covered, classes=None, predictions={"a": p})
    assert calibration_from_search(choice, regression) is None


# --------------------------------------------------------------------------- in the monitor


def _shifted_log() -> tuple[pl.DataFrame, pl.DataFrame, Calibration]:
    """A reference, a log of two days (day 2 drawn from a region where the model is unsure)
    with labels drawn from the true probabilities, and the model's calibration."""
    import datetime as dt

    rng = np.random.default_rng(5)

    def truth(x: np.ndarray) -> np.ndarray:
        return 1 / (1 + np.exp(-3 * x))

    x_ref = rng.normal(0, 1.5, 5_000)
    score_ref = truth(x_ref) ** 2  # the model's raw score: miscalibrated
    y_ref = (rng.random(x_ref.size) < truth(x_ref)).astype(int)
    cal = fit_calibration(y_ref, np.column_stack([1 - score_ref, score_ref]), ["0", "1"])
    n = 3_000
    x = np.r_[rng.normal(0, 1.5, n), rng.normal(0, 0.3, n)]  # day 2: close to the boundary
    s = truth(x) ** 2
    start = dt.datetime(2024, 1, 1)
    t = [start + dt.timedelta(seconds=86400 * i // n) for i in range(2 * n)]
    y = (rng.random(x.size) < truth(x)).astype(int).astype(str)
    log = pl.DataFrame(
        {
            "request_id": [f"r{i}" for i in range(2 * n)],
            "row": [0] * (2 * n),
            "arrival_time": [v.replace(tzinfo=dt.UTC) for v in t],
            "event_time": t,
            "status": ["served"] * (2 * n),
            "model_version": ["1"] * (2 * n),
            "latency_ms": [1.0] * (2 * n),
            "prediction": np.where(s >= 0.5, "1", "0"),
            "proba_0": 1 - s,
            "proba_1": s,
            "label": [None] * n + list(y[n:]),  # day 1 has no label yet
            "t": t,
            "x": x,
            "c": ["a"] * (2 * n),
        }
    )
    ref = pl.DataFrame({"x": x_ref, "c": ["a"] * x_ref.size, "y": y_ref.astype(str)})
    return ref, log, cal


def _monitor(calibration: Calibration | None) -> MonitorReport:
    from modelyard.ops.monitoring.monitor import monitor
    from tests.unit.ops.monitoring._synthetic import CONTRACT

    ref, log, _ = _shifted_log()
    s = MonitoringSection.model_validate({"windows": {"size": "1d"}, "min_rows": 100})
    return monitor(
        log, ref, CONTRACT, settings=s, metric="accuracy", reference_metric=0.85,
        calibration=calibration,
    )  # fmt: skip


def test_monitor_estimates_every_window_and_alerts_on_the_estimated_drop() -> None:
    r = _monitor(_shifted_log()[2])
    day1, day2 = r.windows
    assert r.estimation.available and r.estimation.calibration_rows == 5_000
    # day 1: no label, yet an estimate; it is the reference's population
    assert day1.metric is None and day1.estimated_rows == 3_000
    assert day1.estimated_metric == pytest.approx(0.85, abs=0.03)
    # day 2: near the boundary the model is unsure; the estimate sees it and matches the labels
    assert day2.metric is not None and day2.estimated_metric is not None
    assert day2.estimated_metric < 0.75
    assert abs(day2.estimated_metric - day2.metric) <= 4 * 0.5 / math.sqrt(3_000)
    assert day2.estimated_drop == pytest.approx(0.85 - day2.estimated_metric)
    assert set(day2.estimated) == {"roc_auc", "f1", "precision", "recall", "accuracy"}
    assert any(a.startswith("estimated performance drop in window 2024-01-02") for a in r.alerts)
    assert not any("estimated" in a and "2024-01-01" in a for a in r.alerts)


def test_no_calibration_or_regression_says_why_there_is_no_estimate() -> None:
    from modelyard.ops.monitoring.monitor import _estimation
    from modelyard.reports.drift import render_monitor_html

    r = _monitor(None)
    assert not r.estimation.available and "no calibration" in r.estimation.reason
    assert all(not w.estimated and w.estimated_metric is None for w in r.windows)
    assert "Not estimated: the model has no calibration" in render_monitor_html(r)
    reason = _estimation(None, "regression", pl.DataFrame()).reason
    assert reason.startswith("regression is not estimated")
    three = Calibration(task="multiclass", classes=list("abc"), maps=[IDENTITY] * 3, rows=1)
    _, log, _ = _shifted_log()
    assert "does not match" in _estimation(three, "binary", log).reason


def test_estimated_gauges_beside_the_realised_ones() -> None:
    from prometheus_client import CollectorRegistry, generate_latest

    from modelyard.ops.monitoring.prometheus import MonitorCollector

    r = _monitor(_shifted_log()[2])
    registry = CollectorRegistry()
    registry.register(MonitorCollector(r))
    text = generate_latest(registry).decode()
    day2 = r.windows[1]
    for line in (
        f'modelyard_estimated_performance{{metric="accuracy"}} {day2.estimated["accuracy"]!r}',
        'modelyard_estimated_performance{metric="roc_auc"}',
        'modelyard_estimated_performance{metric="f1"}',
        f'modelyard_estimated_performance_drop{{metric="accuracy"}} {day2.estimated_drop!r}',
        "modelyard_estimated_rows 3000.0",
        f'modelyard_window_performance{{metric="accuracy"}} {day2.metric!r}',
    ):
        assert line in text, line
    bare = CollectorRegistry()
    bare.register(MonitorCollector(_monitor(None)))
    assert "modelyard_estimated_performance" not in generate_latest(bare).decode()


def test_the_estimated_drop_alert_fires_in_promtool(tmp_path: Path) -> None:
    from modelyard.ops.monitoring.prometheus import emit_config

    rules, _, _ = emit_config(tmp_path, MonitoringSection(), for_="1m")
    promtool = shutil.which("promtool")
    if promtool is None:
        skip_or_fail("promtool is missing (apt-get install prometheus)")
    assert promtool is not None
    done = subprocess.run([promtool, "check", "rules", str(rules)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    # 0.04 is under the default performance_drop (0.05): no alert; 0.12 for 2 minutes fires
    (tmp_path / "test.yml").write_text(
        f"""
rule_files: [{rules.name}]
evaluation_interval: 30s
tests:
  - interval: 30s
    input_series:
      - series: modelyard_estimated_performance_drop{{job="m",metric="roc_auc"}}
        values: 0.04 0.04 0.04 0.12 0.12 0.12 0.12 0.12
    alert_rule_test:
      - eval_time: 1m
        alertname: ModelyardEstimatedPerformanceDrop
        exp_alerts: []
      - eval_time: 2m
        alertname: ModelyardEstimatedPerformanceDrop
        exp_alerts: []
      - eval_time: 3m
        alertname: ModelyardEstimatedPerformanceDrop
        exp_alerts:
          - exp_labels: {{severity: warning, job: m, metric: roc_auc}}
            exp_annotations:
              summary: Model performance is estimated to have dropped
              description: "roc_auc is estimated 0.12 worse than at training, from the calibrated probabilities of the latest window (no labels needed; modelyard monitor)."
"""
    )
    done = subprocess.run(
        [promtool, "test", "rules", "test.yml"], cwd=tmp_path, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_report_section_shows_estimated_and_realised_over_time() -> None:
    from modelyard.reports.drift import render_monitor_html

    r = _monitor(_shifted_log()[2])
    page = render_monitor_html(r)
    assert "<section id='estimated'>" in page and 'href="#estimated"' in page
    section = page[page.index("<section id='estimated'>") :]
    section = section[: section.index("</section>")]
    assert section.count("<svg") == 1
    assert "accuracy estimated" in section and "accuracy realised (labelled)" in section
    day1, day2 = r.windows
    want = day1.estimated["accuracy"]
    assert (
        f'data-window="2024-01-01" data-stat="estimated_accuracy" data-value="{want!r}"' in section
    )
    real = day2.performance["accuracy"]
    assert f'data-window="2024-01-02" data-stat="accuracy" data-value="{real!r}"' in section
    assert 'src="http' not in page and 'href="http' not in page
