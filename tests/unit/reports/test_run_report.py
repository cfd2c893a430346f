"""The run report: every shown number equals the JSON, sections follow the run, nothing external."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from modelyard.compute import open_executor
from modelyard.config.schema import (
    ColumnRoles,
    ContractSection,
    EvaluationSection,
    FeaturesSection,
    ModelsSection,
    ProfileSection,
    SplitSection,
    TuningSection,
    ValidationSection,
)
from modelyard.data.contract import infer_contract
from modelyard.data.profile import Profile, profile
from modelyard.data.validation import ValidationReport, Violation, validate
from modelyard.modeling.evaluate import (
    ConfusionMatrix,
    Evaluation,
    Importance,
    SliceMetrics,
)
from modelyard.modeling.search.ensemble import Choice, Member
from modelyard.modeling.search.results import Leaderboard, LeaderboardRow, OutOfFold
from modelyard.modeling.search.tune import TrialRecord, TuningResult
from modelyard.modeling.splits import Split
from modelyard.modeling.stages import (
    Exploration,
    TrainedModel,
    Tuning,
    evaluate_model,
    explore_models,
    split_data,
    train_final,
    tune_models,
)
from modelyard.ops.gate import GateDecision
from modelyard.ops.promotion import Registration
from modelyard.reports.html import PlotSeries, nice_ticks, svg_confusion, svg_plot
from modelyard.reports.run import RunReport, build_run_report, render_run_html, run_report_json
from tests.unit.reports.stats import collect, double_escaped

URL_IN_HTML = re.compile(
    r"""(?:src|href|action)\s*=\s*["']?\s*(?:https?:|//|ftp:|data:)|url\(|@import""", re.I
)
MODELING_SECTIONS = ("split", "leaderboard", "tuning", "choice", "evaluation", "gate")
CREATED = datetime(2026, 11, 3, 12, 0, tzinfo=UTC)


# --------------------------------------------------------------------------- checking


def resolve(doc: Any, pointer: str) -> Any:
    """The value at a JSON pointer (RFC 6901)."""
    assert pointer.startswith("/"), pointer
    for raw in pointer[1:].split("/"):
        key = raw.replace("~1", "/").replace("~0", "~")
        doc = doc[int(key)] if isinstance(doc, list) else doc[key]
    return doc


def check_report_against_json(html: str, doc: dict[str, Any]) -> int:
    """Assert every data-value in ``html`` equals the JSON value at its data-path; return how
    many were checked."""
    items = collect(html)
    for item in items:
        path = item.get("data-path")
        assert path, f"a number without data-path: {item}"
        want = resolve(doc, path)
        raw = item["data-value"]
        if want is None:
            assert raw == "", (item, want)
        else:
            assert not isinstance(want, str | dict | list), (item, want)
            got = float(raw or "nan")
            assert got == float(want), (item, want)
    return len(items)


def stats_of(html: str) -> set[tuple[str | None, str | None]]:
    return {(i["data-stat"], i.get("data-column")) for i in collect(html)}


# --------------------------------------------------------------------------- real results


@dataclass
class Results:
    profile: Profile
    validation: ValidationReport
    split: Split
    exploration: Exploration
    tuning: Tuning
    trained: TrainedModel
    evaluation: Evaluation

    def report(self, project: str, registration: Registration | None = None) -> RunReport:
        return build_run_report(
            project=project,
            profile=self.profile,
            validation={"train": self.validation},
            split=self.split,
            exploration=self.exploration,
            tuning=self.tuning,
            trained=self.trained,
            evaluation=self.evaluation,
            registration=registration,
            created=CREATED,
        )


def run_stages(
    df: pl.DataFrame,
    target: str,
    *,
    slices: list[str],
    leakage: list[str] | None = None,
    cv_sample: int | None = None,
) -> Results:
    """The real stage functions on ``df`` with a tiny budget (dummy + linear, 3 trials, 3 folds;
    cross-validated on a sample of ``cv_sample`` training rows when given)."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        contract = infer_contract(
            df,
            target=target,
            task=None,
            roles=ColumnRoles(leakage=leakage or []),
            options=ContractSection(),
        )
        validated = validate(df, contract, ValidationSection())
        prof = profile(validated.valid, contract, ProfileSection())
        split_options = SplitSection(cv_folds=3)
        models = ModelsSection(candidates=["dummy", "linear"], cv_sample=cv_sample)
        features = FeaturesSection()
        split = split_data(validated.valid, None, contract, split_options, 0)
        tuning = TuningSection(n_trials=3, top_k=1)
        options = EvaluationSection(slices=slices)
        with open_executor("serial") as ex:
            board = explore_models(
                split, contract, features, split_options, models, 0, ex, reproducible=True
            )
            tuned = tune_models(
                split, contract, board, features, split_options, models, tuning, 0, ex
            )
            trained = train_final(split, contract, board, tuned, features, models, options, 0, ex)
        evaluation = evaluate_model(trained, split, contract, models, options, 0)
    return Results(prof, validated.report, split, board, tuned, trained, evaluation)


def registration(ev: Evaluation, *, promote: bool, champion: float | None) -> Registration:
    margin = 0.0 if champion is None else ev.score - champion
    return Registration(
        tracking_uri="http://admin:s3cret@127.0.0.1:5000/?token=abc",
        run_id="0123456789abcdef",
        model_name="demo-model",
        version="4",
        previous_champion=None if champion is None else "3",
        decision=GateDecision(
            promote=promote,
            reasons=["no absolute bar set (gate.min_metric)", "data validation passed"],
            metric=ev.metric,
            candidate=ev.score,
            champion=champion,
            margin=margin,
        ),
    )


@pytest.fixture(scope="module")
def titanic(shared_data: Path) -> Results:
    df = pl.read_csv(shared_data / "titanic.csv")
    return run_stages(df, "survived", slices=["sex"], leakage=["alive"])


@pytest.fixture(scope="module")
def penguins(shared_data: Path) -> Results:
    df = pl.read_csv(shared_data / "penguins.csv", null_values="NA")
    return run_stages(df, "species", slices=["island"])


@pytest.fixture(scope="module")
def diamonds(shared_data: Path) -> Results:
    df = pl.read_csv(shared_data / "diamonds.csv").sample(1500, seed=0)
    return run_stages(df, "price", slices=["cut"])


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        yield


# --------------------------------------------------------------------------- tests


@pytest.mark.parametrize("name", ["titanic", "penguins", "diamonds"])
def test_every_number_equals_the_json(name: str, request: pytest.FixtureRequest) -> None:
    res: Results = request.getfixturevalue(name)
    ev = res.evaluation
    report = res.report(name, registration(ev, promote=True, champion=ev.score * 0.9))
    html = render_run_html(report)
    doc = json.loads(run_report_json(report))
    n = check_report_against_json(html, doc)
    assert n > 40
    stats = stats_of(html)
    assert (ev.metric, None) in stats  # the headline test metric
    assert ("quality_score", None) in stats and ("rows", "train") in stats
    assert ("quarantined", "train") in stats
    assert {("mean", "linear"), ("std", "linear"), ("fit_seconds", "dummy")} <= stats
    assert ("best_score", "linear") in stats
    assert {("candidate", None), ("champion", None), ("margin", None)} <= stats
    assert ("importance", ev.permutation_importance[0].feature) in stats  # type: ignore[index]
    assert any(s == "slice_rows" for s, _ in stats)
    if ev.task == "regression":
        assert ("mae", "residual") in stats
        assert 'aria-label="predicted vs actual"' in html
        assert "confusion" not in {s for s, _ in stats}
    else:
        cells = [i for i in collect(html) if i["data-stat"] == "confusion"]
        assert len(cells) == len(ev.confusion_matrix.labels) ** 2  # type: ignore[union-attr]
        assert sum(int(c["data-value"] or 0) for c in cells) == ev.rows
    binary = ev.task == "binary"
    assert ('aria-label="ROC curve"' in html) is binary
    assert ('aria-label="calibration curve"' in html) is binary
    assert ("threshold", None) in stats if binary else ("threshold", None) not in stats


def test_sections_of_a_full_run(titanic: Results) -> None:
    ev = titanic.evaluation
    html = render_run_html(titanic.report("titanic", registration(ev, promote=False, champion=0.9)))
    for section in ("summary", "data", *MODELING_SECTIONS):
        assert f'<section id="{section}">' in html, section
        assert html.count(f'<section id="{section}">') == 1
    order = [html.index(f'<section id="{s}">') for s in ("data", *MODELING_SECTIONS)]
    assert order == sorted(order)
    assert 'href="profile.html"' in html
    assert "not promoted" in html and "@challenger" in html
    assert 'aria-label="tuning history of linear"' in html
    assert "best so far" in html
    assert titanic.trained.choice.reason in html.replace("&#x27;", "'")


def test_a_data_only_run_has_no_modeling_sections(titanic: Results) -> None:
    report = build_run_report(
        project="data only",
        profile=titanic.profile,
        validation={"train": titanic.validation},
        split=None,
        exploration=None,
        tuning=None,
        trained=None,
        evaluation=None,
        registration=None,
        created=CREATED,
    )
    html = render_run_html(report)
    doc = json.loads(run_report_json(report))
    assert check_report_against_json(html, doc) > 5
    assert '<section id="data">' in html
    for section in MODELING_SECTIONS:
        assert f'id="{section}"' not in html, section
        assert f'href="#{section}"' not in html
    assert "data steps only" in html
    assert 'href="profile.html"' in html
    for key in ("split", "leaderboard", "tuning", "choice", "evaluation", "registration"):
        assert doc[key] is None
    assert doc["created"] == "2026-11-03T12:00:00Z"
    assert doc["data"]["validation"]["train"]["quarantined"] == 0


def test_columns_left_out_for_leakage_and_the_latency_are_reported(titanic: Results) -> None:
    from modelyard.data.contract import ColumnContract, DataContract
    from modelyard.data.leakage import LeakyColumn, ModelingContract
    from modelyard.ops.serving.latency import Latency

    reason = "'alive' (almost) determines the target 'survived' (Goodman-Kruskal λ = 1.0000)"
    modeling = ModelingContract(
        contract=DataContract(columns=[ColumnContract(name="alive", type="str", role="leakage")]),
        excluded=[LeakyColumn(name="alive", reason=reason)],
        allowed=[LeakyColumn(name="who", reason="'who' <b>leaks</b>")],
    )
    reg = registration(titanic.evaluation, promote=True, champion=None)
    reg.latency = Latency(
        rows=179, p50_ms=0.41, p99_ms=4.92, max_ms=6.5, fast_path=True, note="compiled"
    )
    report = build_run_report(
        project="titanic", profile=titanic.profile, validation={"train": titanic.validation},
        split=titanic.split, exploration=titanic.exploration, tuning=titanic.tuning,
        trained=titanic.trained, evaluation=titanic.evaluation, registration=reg,
        created=CREATED, modeling=modeling,
    )  # fmt: skip
    doc = json.loads(run_report_json(report))
    assert doc["features"]["excluded"] == [{"name": "alive", "reason": reason}]
    assert doc["registration"]["latency"]["p99_ms"] == 4.92
    html = render_run_html(report)
    assert check_report_against_json(html, doc) > 5
    assert 'data-excluded="alive"' in html and 'data-allowed="who"' in html
    assert "features.allow_leaky: [alive]" in html
    assert "&lt;b&gt;leaks&lt;/b&gt;" in html  # escaped
    assert 'data-path="/registration/latency/p99_ms"' in html
    assert html.index('id="leaky-columns"') < html.index('<section id="split">')
    # nothing flagged: no part of the page about it
    plain = titanic.report("titanic")
    assert plain.features is None and 'id="leaky-columns"' not in render_run_html(plain)


def test_an_empty_report_renders() -> None:
    report = build_run_report(
        project="nothing yet",
        profile=None,
        validation={},
        split=None,
        exploration=None,
        tuning=None,
        trained=None,
        evaluation=None,
        registration=None,
    )
    html = render_run_html(report)
    assert "<section" not in html and "produced no results" in html
    assert report.created.endswith("Z")
    assert RunReport.model_validate_json(run_report_json(report)) == report


def test_self_contained_and_no_secrets(titanic: Results, diamonds: Results) -> None:
    for res in (titanic, diamonds):
        report = res.report("p", registration(res.evaluation, promote=True, champion=None))
        html = render_run_html(report)
        text = run_report_json(report)
        assert not URL_IN_HTML.search(html)
        assert "http://" not in html and "https://" not in html and "<link" not in html
        assert "<img" not in html and "<iframe" not in html
        assert html.count("<script>") == 1  # only the page's own table-sorting script
        for secret in ("s3cret", "admin", "token=abc"):
            assert secret not in html and secret not in text
        assert json.loads(text)["registration"]["tracking"] == "http://127.0.0.1:5000/"


def test_json_round_trips(penguins: Results) -> None:
    report = penguins.report("penguins")
    again = RunReport.model_validate_json(run_report_json(report))
    assert again == report
    assert again.leaderboard is not None and again.leaderboard.metric == "f1_macro"


def _hostile_report() -> RunReport:
    evil = "<script>alert(1)</script>"
    img = '<img src="https://evil.example/x.png" onerror="alert(2)">'
    label = 'quote"s & ünïcödé 名前 ~/slash'
    violation = Violation(check="range", column=evil, rows=3, examples=[img], message=img)
    validation = ValidationReport(
        rows=10, valid_rows=7, invalid_rows=3, invalid_fraction=0.3, on_error="quarantine",
        max_invalid_fraction=0.5, violations=[violation], passed=False, contract_checked=True,
        rules=4,
    )  # fmt: skip
    board = Leaderboard(
        rows=[
            LeaderboardRow(name="linear", mean=0.9, std=0.01, scores=[0.9, 0.9], fit_seconds=0.1),
            LeaderboardRow(name="xgboost", mean=None, std=None, error=f"ValueError: {img}"),
        ],
        greater_is_better=True,
        n_folds=2,
    )
    tuning = TuningResult(
        name="linear", best_params={"C": evil}, best_score=0.91, n_trials_completed=2,
        n_pruned=1, stopped_by="budget", seconds=1.5,
        history=[
            TrialRecord(number=0, value=0.9, state="COMPLETE", params={"C": 1.0}),
            TrialRecord(number=1, value=0.5, state="PRUNED", params={"C": evil}),
            TrialRecord(number=2, value=0.91, state="COMPLETE", params={"C": 2.0}),
        ],
    )  # fmt: skip
    ev = Evaluation(
        task="multiclass",
        metric="f1_macro",
        metrics={"f1_macro": 0.8, "accuracy": 0.75, "log_loss": math.nan},
        rows=8,
        confusion_matrix=ConfusionMatrix(labels=[evil, label], matrix=[[3, 1], [1, 3]]),
        permutation_importance=[Importance(feature=evil, mean=0.1, std=0.02)],
        slices=[
            SliceMetrics(column=label, value=img, rows=8, metrics={"f1_macro": 0.8}),
        ],
    )
    member = Member(name=evil, family="linear", params={"C": evil}, weight=1.0)
    trained = TrainedModel(
        choice=Choice(name="linear", members=[member], score=0.91, source="tuning",
                      reason=f"because {evil}"),
        threshold=None, model=None,
    )  # fmt: skip
    reg = Registration(
        tracking_uri="sqlite:////tmp/<b>mlflow</b>.db", run_id=evil, model_name=label,
        version="1", previous_champion=None,
        decision=GateDecision(promote=True, reasons=[img], metric="f1_macro", candidate=0.8,
                              champion=None, margin=0.0),
    )  # fmt: skip
    split = Split(pl.DataFrame({"a": [1, 2]}), pl.DataFrame({"a": [3]}), "random", evil)
    return build_run_report(
        project=evil, profile=None, validation={label: validation}, split=split,
        exploration=_exploration(board), tuning=Tuning([tuning]), trained=trained, evaluation=ev,
        registration=reg,
    )  # fmt: skip


def _exploration(board: Leaderboard) -> Exploration:
    return Exploration(
        board,
        OutOfFold(y=pl.Series([0]).to_numpy(), covered=pl.Series([True]).to_numpy(), classes=None),
    )


def test_hostile_strings_are_escaped() -> None:
    report = _hostile_report()
    html = render_run_html(report)
    assert "<script>alert" not in html
    assert "<img" not in html and "<b>mlflow" not in html
    assert html.count("<script>") == 1
    assert not URL_IN_HTML.search(html)
    assert "名前" in html and "ünïcödé" in html  # unicode survives, escaped only where needed
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    doc = json.loads(run_report_json(report))
    # the JSON pointer of the hostile validation label is escaped (~0, ~1) and resolves
    n = check_report_against_json(html, doc)
    assert n > 20
    assert any("~0~1slash" in (i.get("data-path") or "") for i in collect(html))
    # NaN: null in the JSON, an empty data-value, "NaN" on the page
    assert doc["evaluation"]["metrics"]["log_loss"] is None
    (loss,) = [i for i in collect(html) if i.get("data-path") == "/evaluation/metrics/log_loss"]
    assert loss["data-value"] == ""


def test_best_so_far_follows_the_metric_direction() -> None:
    history = [
        TrialRecord(number=0, value=10.0, state="COMPLETE", params={}),
        TrialRecord(number=1, value=5.0, state="PRUNED", params={}),  # pruned: not a best
        TrialRecord(number=2, value=8.0, state="COMPLETE", params={}),
        TrialRecord(number=3, value=None, state="FAIL", params={}),
        TrialRecord(number=4, value=9.0, state="COMPLETE", params={}),
    ]
    result = TuningResult(
        name="lightgbm", best_params={}, best_score=8.0, n_trials_completed=3, n_pruned=1,
        n_failed=1, stopped_by="trials", seconds=1.0, history=history,
    )  # fmt: skip
    board = Leaderboard(rows=[], greater_is_better=False, n_folds=3)
    report = build_run_report(
        project="p", profile=None, validation={}, split=None, exploration=_exploration(board),
        tuning=Tuning([result]), trained=None, evaluation=None, registration=None,
    )  # fmt: skip
    assert report.tuning is not None
    assert [t.best_so_far for t in report.tuning[0].history] == [10.0, 10.0, 8.0, 8.0, 8.0]
    up = build_run_report(
        project="p", profile=None, validation={}, split=None,
        exploration=_exploration(board.model_copy(update={"greater_is_better": True})),
        tuning=Tuning([result]), trained=None, evaluation=None, registration=None,
    )  # fmt: skip
    assert up.tuning is not None
    assert [t.best_so_far for t in up.tuning[0].history] == [10.0, 10.0, 10.0, 10.0, 10.0]


def test_chart_helpers() -> None:
    assert nice_ticks(0, 1) == [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
    ticks = nice_ticks(0.848, 0.8549)
    assert ticks[0] <= 0.848 and ticks[-1] >= 0.8549 and 3 <= len(ticks) <= 8
    assert nice_ticks(5, 5)  # a flat range still gets ticks
    svg = svg_plot(
        [PlotSeries("a", [0, 1, 2], [1.0, math.nan, 3.0], kind="points")],
        x_label="x", y_label="y", diagonal=True,
    )  # fmt: skip
    assert svg.startswith("<svg") and svg.count("<circle") == 2 + 1  # 2 points + legend mark
    assert svg_plot([PlotSeries("a", [0.0], [math.nan])]) == ""
    cm = svg_confusion(["a", "b"], [[1, 2], [3, 4]], path="/m")
    assert 'data-path="/m/1/0"' in cm and 'data-value="3"' in cm


def test_a_password_with_reserved_characters_leaves_nothing_in_the_shown_tracking_uri() -> None:
    """Issue 11 item 17: a parser that stops at the first '@' showed 'ss/w:rd' as the host."""
    from modelyard.reports.run import _redact_uri

    shown = _redact_uri("http://admin:p@ss/w:rd#x@127.0.0.1:5000/?token=abc")
    assert shown == "http://127.0.0.1:5000/"


# --------------------------------------------------------------------------- issue 12


def _ensemble(report: RunReport) -> RunReport:
    """``report`` with a final model of three weighted members."""
    assert report.choice is not None
    members = [
        Member(name="hist_gradient_boosting trial 12", family="hist_gradient_boosting",
               params={"learning_rate": 0.05, "max_leaf_nodes": 31}, weight=0.55, key="a"),
        Member(name="mlp 2", family="mlp", params={"hidden_layer_sizes": [64, 32]},
               weight=0.3, key="b"),
        Member(name="linear", family="linear", params={"C": 1.0}, weight=0.15, key="c"),
    ]  # fmt: skip
    choice = report.choice.model_copy(
        update={"name": "ensemble", "members": members, "source": "ensemble",
                "params": {"members": [m.model_dump() for m in members]}}
    )  # fmt: skip
    return report.model_copy(update={"choice": choice})


def test_ensemble_members_are_a_table_of_names_and_weights(titanic: Results) -> None:
    """Issue 12: the members were printed as a raw, truncated Python list."""
    report = _ensemble(titanic.report("titanic"))
    html = render_run_html(report)
    choice = html[html.index('<section id="choice">') :]
    choice = choice[: choice.index("</section>")]
    table = re.search(r'<table class="wide members">.*?</table>', choice, re.S)
    assert table, "no members table"
    rows = re.findall(r'<tr data-member="([^"]+)">(.*?)</tr>', table.group(0), re.S)
    assert [name for name, _ in rows] == [
        "hist_gradient_boosting trial 12", "mlp 2", "linear",
    ]  # fmt: skip
    for k, (_, row) in enumerate(rows):
        assert f'data-path="/choice/members/{k}/weight"' in row
    assert ">55%<" in rows[0][1] and ">hist_gradient_boosting<" in rows[0][1]
    assert "hidden_layer_sizes</span> (64, 32)" in rows[1][1]
    # no Python repr of the members (or of any list) anywhere on the page
    for raw in ("[{", "{'", "'name':", "[64, 32]", "Member("):
        assert raw not in choice, raw
    doc = json.loads(run_report_json(report))
    assert check_report_against_json(html, doc) > 40
    assert double_escaped(html) == []


def _leaderboard_note(html: str) -> str:
    head = re.search(r'<section id="leaderboard"><h2>Leaderboard <span class="muted">(.*?)</span>',
                     html)  # fmt: skip
    assert head is not None
    return head.group(1)


def test_the_leaderboard_header_says_what_cv_ran_on(titanic: Results) -> None:
    """Issue 12: the leaderboard's own header says whether CV ran on a sample, and its size."""
    from modelyard.modeling.search.results import SearchInfo

    report = titanic.report("titanic")
    assert report.leaderboard is not None
    info = report.leaderboard.search
    assert info is not None and info.rows == info.total_rows == titanic.split.train.height
    assert info.sample is None
    note = _leaderboard_note(render_run_html(report))
    assert note == f"(3-fold CV on all {info.rows:,} rows, higher is better)"

    for sample, shown in (("stratified", "a stratified sample"), ("random", "a random sample")):
        lb = report.leaderboard.model_copy(update={"search": SearchInfo(
            mode="budget", rows=20000, total_rows=32561, sample=sample)})  # fmt: skip
        note = _leaderboard_note(render_run_html(report.model_copy(update={"leaderboard": lb})))
        assert note == f"(3-fold CV on {shown} of 20,000 of 32,561 rows, higher is better)"


def test_a_classification_search_on_a_sample_is_stratified(shared_data: Path) -> None:
    df = pl.read_csv(shared_data / "titanic.csv")
    res = run_stages(df, "survived", slices=[], cv_sample=300)
    search = res.exploration.leaderboard.search
    assert search is not None
    assert (search.rows, search.total_rows, search.sample) == (
        300, res.split.train.height, "stratified",
    )  # fmt: skip
    note = _leaderboard_note(render_run_html(res.report("titanic")))
    assert note.startswith(
        f"(3-fold CV on a stratified sample of 300 of {search.total_rows:,} rows"
    )


def test_a_long_legend_wraps_inside_the_plot() -> None:
    """The monitoring report plots one line per feature: the legend wraps instead of running
    off the chart (11 px legend text: < 6.8 px a character)."""
    import xml.etree.ElementTree as ET

    names = [f"dst_host_feature_{k}_rate" for k in range(14)]
    svg = svg_plot(
        [PlotSeries(n, [0.0, 1.0], [float(k), k + 1.0]) for k, n in enumerate(names)],
        width=640, height=260, x_label="window", y_label="PSI",
    )  # fmt: skip
    root = ET.fromstring(svg)
    texts = [t for t in root.iter("text") if t.get("class") == "legend"]
    assert [t.text for t in texts] == names
    assert len({t.get("y") for t in texts}) > 1  # more than one row
    for t in texts:
        assert float(t.get("x", 0)) + 6.8 * len(t.text or "") <= 640, t.text
    frame = next(r for r in root.iter("rect"))
    lowest = max(float(t.get("y", 0)) for t in texts)
    assert float(frame.get("y", 0)) > lowest  # the plot starts below the legend
