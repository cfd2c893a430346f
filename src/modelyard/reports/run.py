"""The run report: one self-contained HTML page (and its JSON) for a whole pipeline run.

:func:`build_run_report` gathers the typed results of the stages into one :class:`RunReport`;
every part is optional, so a run stopped after profiling (``--until profile``) gets a report
with its data part only. :func:`render_run_html` draws it (inline CSS and SVG, no URL to
anything outside the page, so it opens offline); :func:`run_report_json` is the same report for
machines.

Every key number on the page carries its exact value and where it is in the JSON, as a JSON
pointer: ``<td data-stat="mean" data-column="linear" data-path="/leaderboard/rows/0/mean"
data-value="0.8526">``. Non-finite numbers are ``null`` in the JSON and an empty
``data-value`` on the page.

>>> report = build_run_report(
...     project="demo", profile=None, validation={}, split=None, exploration=None,
...     tuning=None, trained=None, evaluation=None, registration=None,
... )
>>> report.data is None and report.evaluation is None
True
>>> "<!DOCTYPE html>" in render_run_html(report)
True
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field

from modelyard.data.leakage import LeakyColumn, ModelingContract
from modelyard.data.profile import Alert, Profile
from modelyard.data.validation import ValidationReport
from modelyard.errors import split_credentials
from modelyard.modeling.evaluate import Evaluation
from modelyard.modeling.search.results import (
    Leaderboard,
    LeaderboardRow,
    Member,
    SearchInfo,
    TuningResult,
)
from modelyard.ops.gate import GateDecision
from modelyard.ops.serving.latency import Latency
from modelyard.reports.html import (
    PlotSeries,
    badge,
    escape,
    fmt,
    fmt_share,
    page,
    stat,
    svg_confusion,
    svg_histogram,
    svg_plot,
)

if TYPE_CHECKING:
    from modelyard.modeling.splits import Split
    from modelyard.modeling.stages import Exploration, TrainedModel, Tuning
    from modelyard.ops.promotion import Registration

__all__ = [
    "REPORT_VERSION",
    "RunReport",
    "build_run_report",
    "render_run_html",
    "run_report_json",
]

REPORT_VERSION = 1
"""Bumped when the JSON layout of :class:`RunReport` changes incompatibly."""
PROFILE_LINK = "profile.html"
"""The full data profile, written beside the run report."""
TOP_ALERTS = 8
TOP_VIOLATIONS = 8


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --------------------------------------------------------------------------- the report


class ProfileSummary(_Model):
    """Headline numbers of the data profile (the full profile is in ``profile.html``)."""

    rows: int
    columns: int
    missing_cells: int
    missing_cells_share: float
    duplicate_rows: int
    duplicate_share: float
    quality_score: float
    target: str | None = None
    task: str | None = None
    alerts_total: int
    alerts_critical: int
    alerts_warning: int
    top_alerts: list[Alert]
    """The first alerts, most severe first (as the profile orders them)."""
    link: str = PROFILE_LINK


class ViolationSummary(_Model):
    check: str
    column: str | None
    rows: int
    message: str


class ValidationSummary(_Model):
    """One batch's validation (``train`` or ``test``)."""

    rows: int
    valid_rows: int
    invalid_rows: int
    invalid_fraction: float
    quarantined: int
    """Rows set aside in the quarantine (``on_error: quarantine``), else 0."""
    on_error: str
    max_invalid_fraction: float
    passed: bool
    rules: int
    violations_total: int
    violations: list[ViolationSummary]
    """The rules broken by the most rows, first."""


class DataSummary(_Model):
    profile: ProfileSummary | None = None
    validation: dict[str, ValidationSummary] = Field(default_factory=dict)


class FeaturesSummary(_Model):
    """Columns a critical leakage alert names: left out of the model, or kept on request."""

    excluded: list[LeakyColumn]
    """Left out of the model (``features.allow_leaky`` keeps one)."""
    allowed: list[LeakyColumn]
    """Kept as features by ``features.allow_leaky``."""


class SplitSummary(_Model):
    method: str
    description: str
    train_rows: int
    test_rows: int
    sample: str | None = None
    """A table of several parts: the in-memory samples the search and the gate used, e.g.
    "model search on a stratified sample of 250,000 of 8,000,000 training rows"."""


class LeaderboardSummary(_Model):
    metric: str | None
    """The cross-validated metric (known from the evaluation or the gate)."""
    greater_is_better: bool
    n_folds: int
    rows: list[LeaderboardRow]
    search: SearchInfo | None = None
    """How the search ran: budget or trials, why it stopped, where, on how many rows."""


class TrialPoint(_Model):
    number: int
    value: float | None
    state: str
    best_so_far: float | None
    """The best complete trial's value up to and including this one."""
    params: dict[str, Any]


class TuningSummary(_Model):
    name: str
    best_score: float
    best_params: dict[str, Any]
    n_trials_completed: int
    n_pruned: int
    n_failed: int
    stopped_by: str
    seconds: float
    history: list[TrialPoint]


class MemberRows(_Model):
    name: str
    family: str
    rows: int
    how: str
    """``all rows, out of core (...)``, ``in memory``, or ``the sample: <reason>``."""


class ChoiceSummary(_Model):
    name: str
    params: dict[str, Any]
    score: float
    """Out-of-fold score (every fold pooled)."""
    source: str
    reason: str
    members: list[Member] = Field(default_factory=list)
    """The configurations of the final model and their weights."""
    best_single: float | None = None
    """The best single configuration's out-of-fold score."""
    fit_rows: int | None = None
    """Training rows the final model was fitted on."""
    total_rows: int | None = None
    """Training rows there were (more than ``fit_rows`` when the budget left was short, or
    when a member of a big table's model could not train out of core)."""
    fitted: list[MemberRows] = Field(default_factory=list)
    """Per member: how many training rows it was fitted on, and how."""
    ensemble_score: float | None = None
    threshold: float | None = None
    """Binary tasks: the decision threshold chosen on out-of-fold predictions."""


class RegistrationSummary(_Model):
    model_name: str
    version: str
    run_id: str
    tracking: str
    """Where the run is tracked (credentials and query removed from a server URI)."""
    previous_champion: str | None
    alias: str
    """``champion`` when the gate promoted the model, else ``challenger``."""
    decision: GateDecision
    latency: Latency | None = None
    """Single-row prediction latency through the serving path, measured at register time."""


class RunReport(_Model):
    """Everything one run produced, for people (HTML) and machines (JSON)."""

    version: int = REPORT_VERSION
    project: str
    created: str
    """When the report was built, ISO 8601 in UTC."""
    data: DataSummary | None = None
    features: FeaturesSummary | None = None
    """Columns left out of the model because they leak the target (``None``: none flagged)."""
    split: SplitSummary | None = None
    leaderboard: LeaderboardSummary | None = None
    tuning: list[TuningSummary] | None = None
    tuning_skipped: str | None = None
    """Why tuning did not run (the budget was spent)."""
    choice: ChoiceSummary | None = None
    evaluation: Evaluation | None = None
    registration: RegistrationSummary | None = None

    @property
    def has_modeling(self) -> bool:
        parts = (self.split, self.leaderboard, self.tuning, self.choice, self.evaluation)
        return any(p is not None for p in parts)


# --------------------------------------------------------------------------- building


def _profile_summary(p: Profile) -> ProfileSummary:
    d = p.dataset
    return ProfileSummary(
        rows=d.rows,
        columns=d.columns,
        missing_cells=d.missing_cells,
        missing_cells_share=d.missing_cells_share,
        duplicate_rows=d.duplicate_rows,
        duplicate_share=d.duplicate_share,
        quality_score=d.quality_score,
        target=p.target,
        task=p.task,
        alerts_total=len(p.alerts),
        alerts_critical=sum(1 for a in p.alerts if a.severity == "critical"),
        alerts_warning=sum(1 for a in p.alerts if a.severity == "warning"),
        top_alerts=list(p.alerts[:TOP_ALERTS]),
    )


def _validation_summary(v: ValidationReport) -> ValidationSummary:
    return ValidationSummary(
        rows=v.rows,
        valid_rows=v.valid_rows,
        invalid_rows=v.invalid_rows,
        invalid_fraction=v.invalid_fraction,
        quarantined=v.invalid_rows if v.on_error == "quarantine" else 0,
        on_error=v.on_error,
        max_invalid_fraction=v.max_invalid_fraction,
        passed=v.passed,
        rules=v.rules,
        violations_total=len(v.violations),
        violations=[
            ViolationSummary(check=x.check, column=x.column, rows=x.rows, message=str(x))
            for x in v.violations[:TOP_VIOLATIONS]
        ],
    )


def _history(result: TuningResult, greater_is_better: bool) -> list[TrialPoint]:
    best: float | None = None
    out = []
    for t in sorted(result.history, key=lambda t: t.number):
        v = t.value
        finished = t.state == "COMPLETE" and v is not None and math.isfinite(v)
        if finished and v is not None and (best is None or (v > best) == greater_is_better):
            best = v
        out.append(
            TrialPoint(number=t.number, value=v, state=t.state, best_so_far=best, params=t.params)
        )
    return out


def _redact_uri(uri: str) -> str:
    """A tracking URI without credentials, query or fragment.

    The credentials end at the last ``@`` (:func:`~modelyard.errors.split_credentials`): a
    password written without %-encoding may hold ``/``, ``#`` or ``@``, which would make a
    strict parser take its tail for the path or the fragment.
    """
    parts = split_credentials(uri)
    if parts is not None:
        uri = parts[0] + parts[3]
    parts_ = urlsplit(uri)
    if not parts_.netloc:
        return uri
    return f"{parts_.scheme}://{parts_.netloc}{parts_.path}"


def _direction(
    leaderboard: Leaderboard | None, evaluation: Evaluation | None, metric: str | None
) -> bool:
    if leaderboard is not None:
        return leaderboard.greater_is_better
    if metric is not None:
        from modelyard.modeling.tasks import greater_is_better

        try:
            return greater_is_better(metric)
        except Exception:  # an unknown metric: assume a score
            return True
    return True


def build_run_report(
    *,
    project: str,
    profile: Profile | None,
    validation: dict[str, ValidationReport],
    split: Split | None,
    exploration: Exploration | None,
    tuning: Tuning | None,
    trained: TrainedModel | None,
    evaluation: Evaluation | None,
    registration: Registration | None,
    created: datetime | None = None,
    modeling: ModelingContract | None = None,
) -> RunReport:
    """Gather the results of one run into a :class:`RunReport`; pass ``None`` (or ``{}``) for
    the stages that did not run. ``created`` defaults to now (UTC)."""
    when = (created or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0)
    metric = (
        evaluation.metric
        if evaluation is not None
        else registration.decision.metric
        if registration is not None
        else None
    )
    leaderboard = exploration.leaderboard if exploration is not None else None
    gib = _direction(leaderboard, evaluation, metric)
    data = None
    if profile is not None or validation:
        data = DataSummary(
            profile=_profile_summary(profile) if profile is not None else None,
            validation={k: _validation_summary(v) for k, v in validation.items()},
        )
    features = None
    if modeling is not None and (modeling.excluded or modeling.allowed):
        features = FeaturesSummary(excluded=modeling.excluded, allowed=modeling.allowed)
    return RunReport(
        project=project,
        created=when.isoformat().replace("+00:00", "Z"),
        data=data,
        features=features,
        split=(
            SplitSummary(
                method=split.method,
                description=split.description,
                train_rows=split.train_rows,
                test_rows=split.test_rows,
                sample=split.sample,
            )
            if split is not None
            else None
        ),
        leaderboard=(
            LeaderboardSummary(
                metric=metric,
                greater_is_better=leaderboard.greater_is_better,
                n_folds=leaderboard.n_folds,
                rows=list(leaderboard.rows),
                search=leaderboard.search,
            )
            if leaderboard is not None
            else None
        ),
        tuning=(
            [
                TuningSummary(
                    name=t.name,
                    best_score=t.best_score,
                    best_params=t.best_params,
                    n_trials_completed=t.n_trials_completed,
                    n_pruned=t.n_pruned,
                    n_failed=t.n_failed,
                    stopped_by=t.stopped_by,
                    seconds=t.seconds,
                    history=_history(t, gib),
                )
                for t in tuning.results
            ]
            if tuning is not None
            else None
        ),
        tuning_skipped=tuning.skipped if tuning is not None else None,
        choice=(
            ChoiceSummary(
                name=trained.choice.name,
                params=trained.choice.params,
                score=trained.choice.score,
                source=trained.choice.source,
                reason=trained.choice.reason,
                members=trained.choice.members,
                best_single=trained.choice.best_single,
                fit_rows=trained.fit_rows or None,
                total_rows=trained.total_rows or None,
                fitted=[
                    MemberRows(name=m.name, family=m.family, rows=m.rows, how=m.how)
                    for m in trained.members
                ],
                ensemble_score=trained.ensemble_score,
                threshold=trained.threshold,
            )
            if trained is not None
            else None
        ),
        evaluation=evaluation,
        registration=(
            RegistrationSummary(
                model_name=registration.model_name,
                version=registration.version,
                run_id=registration.run_id,
                tracking=_redact_uri(registration.tracking_uri),
                previous_champion=registration.previous_champion,
                alias="champion" if registration.decision.promote else "challenger",
                decision=registration.decision,
                latency=registration.latency,
            )
            if registration is not None
            else None
        ),
    )


def run_report_json(report: RunReport) -> str:
    """The report as indented JSON (non-finite floats become ``null``)."""
    return report.model_dump_json(indent=2)


# --------------------------------------------------------------------------- rendering helpers


def _ptr(*parts: str | int) -> str:
    """A JSON pointer (RFC 6901) to ``parts``."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def _num(
    value: int | float | None,
    path: str,
    name: str,
    *,
    column: str | None = None,
    tag: str = "td",
    text: str | None = None,
    cls: str | None = None,
    share: bool = False,
) -> str:
    """A number with its exact value and JSON pointer; non-finite values carry no value."""
    if isinstance(value, float) and not math.isfinite(value):
        text = text or fmt(value)
        value = None
    elif share and text is None and value is not None:
        text = fmt_share(value)
    return stat(value, name=name, column=column, tag=tag, text=text, cls=cls, path=path)


def _tile(label: str, value_html: str, sub: str = "", cls: str = "") -> str:
    sub_html = f'<div class="s">{sub}</div>' if sub else ""
    return (
        f'<div class="metric {cls}"><div class="k">{escape(label)}</div>{value_html}'
        f"{sub_html}</div>"
    )


def _section(anchor: str, title: str, body: str, note: str = "") -> str:
    note_html = f' <span class="muted">{escape(note)}</span>' if note else ""
    return f'<section id="{anchor}"><h2>{escape(title)}{note_html}</h2>{body}</section>'


def _card(title: str, body: str, extra: str = "", cls: str = "") -> str:
    head = f'<div class="card-head"><h3>{escape(title)}</h3>{extra}</div>' if title else ""
    return f'<div class="card {cls}">{head}{body}</div>'


def _short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _params(params: dict[str, Any]) -> str:
    if not params:
        return '<p class="muted">default parameters</p>'
    rows = "".join(
        f"<tr><td>{escape(k)}</td><td class='param'>{escape(_short(_param_text(v), 90))}</td></tr>"
        for k, v in params.items()
    )
    return f'<table class="stats params">{rows}</table>'


def _inline_params(params: dict[str, Any]) -> str:
    """Parameters on one wrapping line: ``learning_rate 0.05 · max_depth 6``."""
    if not params:
        return '<span class="muted">default parameters</span>'
    return " · ".join(
        f'<span class="kv"><span class="muted">{escape(k)}</span> '
        f"{escape(_short(_param_text(v), 90))}</span>"
        for k, v in params.items()
    )


def _param_text(v: Any) -> str:
    """A parameter's value as a person reads it (no Python repr of lists or dicts)."""
    if isinstance(v, bool) or v is None:
        return str(v)
    if isinstance(v, float):
        return fmt(v)
    if isinstance(v, dict):
        return ", ".join(f"{k}={_param_text(x)}" for k, x in v.items())
    if isinstance(v, list | tuple):
        return "(" + ", ".join(_param_text(x) for x in v) + ")"
    return str(v)


_METRIC_NAMES = {
    "roc_auc": "ROC AUC",
    "pr_auc": "PR AUC",
    "log_loss": "log loss",
    "f1": "F1",
    "f1_macro": "F1 (macro)",
    "precision": "precision",
    "recall": "recall",
    "accuracy": "accuracy",
    "brier": "Brier score",
    "rmse": "RMSE",
    "mae": "MAE",
    "r2": "R²",
    "mape": "MAPE",
}


def _metric_name(name: str | None) -> str:
    if name is None:
        return "score"
    return _METRIC_NAMES.get(name, name)


def _gate_badge(promote: bool) -> str:
    return badge("promoted · champion", "pass") if promote else badge("not promoted", "fail")


# --------------------------------------------------------------------------- sections


def _summary(r: RunReport) -> str:
    tiles: list[str] = []
    ev, ch, reg = r.evaluation, r.choice, r.registration
    if ev is not None:
        tiles.append(
            _tile(
                f"Test {_metric_name(ev.metric)}",
                _num(ev.score, _ptr("evaluation", "metrics", ev.metric), ev.metric, tag="div",
                     cls="v"),
                sub=f"hold-out, {_num(ev.rows, _ptr('evaluation', 'rows'), 'test_rows', tag='span')} rows",
                cls="hero",
            )
        )  # fmt: skip
    if ch is not None:
        tiles.append(
            _tile(
                "Model",
                f'<div class="v name">{escape(ch.name)}</div>',
                sub=f"CV {escape(_metric_name(r.leaderboard.metric if r.leaderboard else None))} "
                + _num(ch.score, _ptr("choice", "score"), "cv_score", tag="span"),
            )
        )
    if reg is not None:
        tiles.append(
            _tile(
                "Registered",
                f'<div class="v name">{escape(reg.model_name)} v{escape(reg.version)}</div>',
                sub=escape(f"alias @{reg.alias}"),
            )
        )
        tiles.append(
            _tile(
                "Promotion gate",
                f'<div class="v">{_gate_badge(reg.decision.promote)}</div>',
                sub=(
                    "margin "
                    + _num(
                        reg.decision.margin,
                        _ptr("registration", "decision", "margin"),
                        "margin",
                        tag="span",
                    )
                    if reg.decision.champion is not None
                    else "no champion yet"
                ),
            )
        )
    if r.has_modeling and r.data is not None and r.data.profile is not None:
        p = r.data.profile
        tiles.append(
            _tile(
                "Data quality",
                _num(p.quality_score, _ptr("data", "profile", "quality_score"), "quality_score",
                     tag="div", cls="v", share=True),
                sub=_num(p.rows, _ptr("data", "profile", "rows"), "rows", tag="span")
                + f" rows · {escape(str(p.alerts_total))} alerts",
            )
        )  # fmt: skip
    if not tiles:
        return ""
    return f'<section id="summary"><div class="metrics summary">{"".join(tiles)}</div></section>'


def _data(r: RunReport) -> str:
    d = r.data
    if d is None:
        return ""
    parts: list[str] = []
    if d.profile is not None:
        p = d.profile
        base = ("data", "profile")
        tiles = [
            _tile("Rows", _num(p.rows, _ptr(*base, "rows"), "rows", tag="div", cls="v")),
            _tile("Columns", _num(p.columns, _ptr(*base, "columns"), "columns", tag="div",
                                  cls="v")),
            _tile("Quality score", _num(p.quality_score, _ptr(*base, "quality_score"),
                                        "quality_score", tag="div", cls="v", share=True)),
            _tile("Missing cells", _num(p.missing_cells, _ptr(*base, "missing_cells"),
                                        "missing_cells", tag="div", cls="v"),
                  sub=_num(p.missing_cells_share, _ptr(*base, "missing_cells_share"),
                           "missing_cells_share", tag="span", share=True) + " of cells"),
            _tile("Duplicate rows", _num(p.duplicate_rows, _ptr(*base, "duplicate_rows"),
                                         "duplicate_rows", tag="div", cls="v"),
                  sub=_num(p.duplicate_share, _ptr(*base, "duplicate_share"), "duplicate_share",
                           tag="span", share=True) + " of rows"),
        ]  # fmt: skip
        if p.target:
            tiles.append(
                _tile("Target", f'<div class="v name">{escape(p.target)}</div>',
                      sub=escape(p.task or ""))
            )  # fmt: skip
        parts.append(f'<div class="metrics">{"".join(tiles)}</div>')
    if d.validation:
        rows = []
        for label, v in d.validation.items():
            base2 = ("data", "validation", label)
            status = badge("passed", "pass") if v.passed else badge("invalid rows", "warning")
            rows.append(
                f"<tr><td><b>{escape(label)}</b></td>"
                f"{_num(v.rows, _ptr(*base2, 'rows'), 'rows', column=label)}"
                f"{_num(v.valid_rows, _ptr(*base2, 'valid_rows'), 'valid_rows', column=label)}"
                f"{_num(v.invalid_rows, _ptr(*base2, 'invalid_rows'), 'invalid_rows', column=label)}"
                f"{_num(v.invalid_fraction, _ptr(*base2, 'invalid_fraction'), 'invalid_fraction', column=label, share=True)}"
                f"{_num(v.quarantined, _ptr(*base2, 'quarantined'), 'quarantined', column=label)}"
                f"{_num(v.rules, _ptr(*base2, 'rules'), 'rules', column=label)}"
                f"<td>{escape(v.on_error)}</td><td>{status}</td></tr>"
            )  # fmt: skip
        table = (
            '<div class="scroll"><table class="wide"><thead><tr><th>Batch</th><th class="num">'
            'Rows</th><th class="num">Valid</th><th class="num">Invalid</th><th class="num">'
            'Invalid share</th><th class="num">Quarantined</th><th class="num">Rules</th>'
            f"<th>On error</th><th>Status</th></tr></thead><tbody>{''.join(rows)}"
            "</tbody></table></div>"
        )
        broken = []
        for label, v in d.validation.items():
            for k, x in enumerate(v.violations):
                where = ("data", "validation", label, "violations", k)
                broken.append(
                    f"<li>{badge(label, 'kind')}{badge(x.check, 'warning')}"
                    f"<span>{escape(x.message)}</span>"
                    f"{_num(x.rows, _ptr(*where, 'rows'), 'violation_rows', column=x.column, tag='span', cls='right', text=fmt(x.rows) + ' rows')}</li>"
                )  # fmt: skip
            if v.violations_total > len(v.violations):
                more = v.violations_total - len(v.violations)
                broken.append(f'<li class="muted">… and {more} more rules on {escape(label)}</li>')
        viol = f'<h3 class="sub">Broken rules</h3><ul class="alerts">{"".join(broken)}</ul>'
        parts.append(f'<h3 class="sub">Validation</h3>{table}' + (viol if broken else ""))
    if d.profile is not None:
        p = d.profile
        if p.top_alerts:
            items = "".join(
                f'<li data-alert="{escape(a.kind)}" data-severity="{escape(a.severity)}">'
                f"{badge(a.severity, a.severity)}{badge(a.kind.replace('_', ' '), 'kind')}"
                f"<span>{escape(a.message)}</span></li>"
                for a in p.top_alerts
            )
            more = p.alerts_total - len(p.top_alerts)
            if more > 0:
                items += f'<li class="muted">… and {more} more in the data profile</li>'
            alerts = f'<ul class="alerts">{items}</ul>'
        else:
            alerts = '<p class="muted">No alerts.</p>'
        parts.append(
            f'<h3 class="sub">Alerts <span class="muted">({p.alerts_total}: '
            f"{p.alerts_critical} critical, {p.alerts_warning} warnings)</span></h3>{alerts}"
            f'<p class="link"><a href="{escape(p.link)}">Open the full data profile →</a> '
            f'<span class="muted">per-column statistics, distributions, correlations '
            f"({escape(p.link)}, beside this report)</span></p>"
        )
    parts.append(_features(r))
    return _section("data", "Data and quality", "".join(parts))


def _features(r: RunReport) -> str:
    f = r.features
    if f is None:
        return ""
    items = "".join(
        f'<li data-excluded="{escape(x.name)}">{badge("left out", "critical")}'
        f"{badge('leakage', 'kind')}<span><b>{escape(x.name)}</b>: {escape(x.reason)}. "
        f"Keep it with <code>features.allow_leaky: [{escape(x.name)}]</code>.</span></li>"
        for x in f.excluded
    ) + "".join(
        f'<li data-allowed="{escape(x.name)}">{badge("kept", "warning")}'
        f"{badge('leakage', 'kind')}<span><b>{escape(x.name)}</b>: {escape(x.reason)}. "
        "Kept as a feature by <code>features.allow_leaky</code>.</span></li>"
        for x in f.allowed
    )
    return (
        '<h3 class="sub">Columns that leak the target</h3>'
        '<p class="muted">A critical leakage alert of the profile names them: the model is '
        "trained without them unless features.allow_leaky keeps them.</p>"
        f'<ul class="alerts" id="leaky-columns">{items}</ul>'
    )


def _split(r: RunReport) -> str:
    s = r.split
    if s is None:
        return ""
    total = s.train_rows + s.test_rows
    train_share = s.train_rows / total if total else 0.0
    bar = (
        f'<div class="splitbar"><div class="train" style="width:{train_share * 100:.1f}%">'
        f'train</div><div class="test">test</div></div>'
    )
    tiles = (
        _tile("Method", f'<div class="v name">{escape(s.method)}</div>')
        + _tile("Train rows", _num(s.train_rows, _ptr("split", "train_rows"), "train_rows",
                                   tag="div", cls="v"))
        + _tile("Test rows", _num(s.test_rows, _ptr("split", "test_rows"), "test_rows",
                                  tag="div", cls="v"))
    )  # fmt: skip
    body = (
        f'<div class="metrics">{tiles}</div>{bar}<p>{escape(s.description)}</p>'
        + (
            f'<p class="muted">{escape(s.sample[0].upper() + s.sample[1:])}.</p>'
            if s.sample
            else ""
        )
        + '<p class="muted">Exploration and tuning cross-validate on the training rows only; the '
        "test rows are scored once, by the evaluation.</p>"
    )
    return _section("split", "Train / test split", body)


def _whisker(mean: float | None, std: float | None, lo: float, hi: float, best: bool) -> str:
    if mean is None or not math.isfinite(mean):
        return ""
    w, h = 180, 16
    span = (hi - lo) or 1.0

    def x(v: float) -> float:
        return 6 + (w - 12) * (v - lo) / span

    sd = std if std is not None and math.isfinite(std) else 0.0
    color = "#e4572e" if best else "#3b6fd8"
    return (
        f'<svg class="whisker" viewBox="0 0 {w} {h}" width="{w}" height="{h}">'
        f'<line x1="6" y1="8" x2="{w - 6}" y2="8" stroke="#eef0f3"/>'
        f'<line x1="{x(mean - sd):.1f}" y1="8" x2="{x(mean + sd):.1f}" y2="8" stroke="{color}" '
        f'stroke-width="2"/><circle cx="{x(mean):.1f}" cy="8" r="4" fill="{color}"/></svg>'
    )


def _leaderboard(r: RunReport) -> str:
    lb = r.leaderboard
    if lb is None:
        return ""
    weights = {m.key: m.weight for m in r.choice.members} if r.choice is not None else {}
    ends = [
        v
        for row in lb.rows
        if row.mean is not None and math.isfinite(row.mean)
        for v in (row.mean - (row.std or 0.0), row.mean + (row.std or 0.0))
        if math.isfinite(v)
    ]
    lo, hi = (min(ends), max(ends)) if ends else (0.0, 1.0)
    pad = (hi - lo) * 0.05
    lo, hi = lo - pad, hi + pad
    rows = []
    for k, row in enumerate(lb.rows):
        base = ("leaderboard", "rows", k)
        chosen = row.key in weights
        mark = " " + badge(f"in the model · {weights[row.key]:.2f}", "pass") if chosen else ""
        state = badge(row.state, _STATE_KIND.get(row.state, "kind"))
        status = (
            f'<td class="err" title="{escape(row.error)}">{state} '
            f"{escape(_short(row.error, 240))}</td>"
            if row.error
            else f"<td>{state}</td>"
        )
        folds = ", ".join(fmt(s) for s in row.scores)
        rows.append(
            f'<tr class="{"chosen" if chosen else ""}"><td>{k + 1}</td>'
            f"<td><b>{escape(row.name)}</b>{mark}</td>"
            f"{_num(row.mean, _ptr(*base, 'mean'), 'mean', column=row.name)}"
            f'{_num(row.std, _ptr(*base, "std"), "std", column=row.name, text="± " + fmt(row.std))}'
            f"<td>{_whisker(row.mean, row.std, lo, hi, chosen)}</td>"
            f'<td class="muted small">{escape(folds)}</td>'
            f"{_num(row.fit_seconds, _ptr(*base, 'fit_seconds'), 'fit_seconds', column=row.name, text=(fmt(row.fit_seconds) + ' s') if row.fit_seconds is not None else None)}"
            f"{status}</tr>"
        )  # fmt: skip
    direction = "higher is better" if lb.greater_is_better else "lower is better"
    table = (
        '<div class="scroll"><table class="wide sortable"><thead><tr><th>#</th><th>Model</th>'
        f'<th class="num">CV {escape(_metric_name(lb.metric))} (mean)</th><th class="num">std'
        '</th><th>mean ± std</th><th>Fold scores</th><th class="num">Fit time / fold</th>'
        "<th>Status</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table></div>"
    )
    note = f"({_cv_rows_text(lb)}, {direction})"
    search = (
        f'<p class="muted small">{escape(_search_text(lb.search, lb.n_folds))}</p>'
        if lb.search
        else ""
    )
    return _section("leaderboard", "Leaderboard", search + table, note)


def _cv_rows_text(lb: LeaderboardSummary) -> str:
    """What the leaderboard's scores were cross-validated on, e.g. "5-fold CV on a stratified
    sample of 20,000 of 32,561 rows" or "5-fold CV on all 891 rows"."""
    info = lb.search
    if info is None or not info.rows:
        return f"{lb.n_folds}-fold CV on the training rows"
    if info.total_rows and info.rows < info.total_rows:
        how = f"{info.sample} " if info.sample else ""
        return f"{lb.n_folds}-fold CV on a {how}sample of {info.rows:,} of {info.total_rows:,} rows"
    return f"{lb.n_folds}-fold CV on all {info.rows:,} rows"


_STATE_KIND = {"complete": "kind", "pruned": "warning", "failed": "fail", "stopped": "warning"}
_STOPPED = {
    "done": "every planned configuration ran",
    "budget": "the budget ran out",
    "trials": "the trial count was reached",
}


def _search_text(info: SearchInfo, folds: int) -> str:
    """One sentence on how the search ran: mode, budget, sample, where, why it stopped."""
    if info.total_rows and info.rows < info.total_rows:
        how = f"{info.sample} " if info.sample else ""
        rows = f"a {how}sample of {info.rows:,} of the {info.total_rows:,} training rows"
    else:
        rows = f"all {info.rows:,} training rows"
    if info.mode == "budget" and info.budget_seconds is not None:
        mode = f"a wall-clock budget of {info.budget_seconds:.0f} s for exploration, tuning and the final fit"
    else:
        cap = f", capped at {info.budget_seconds:.0f} s" if info.budget_seconds else ""
        mode = f"a trial count (reproducible){cap}"
    cached = f", {info.cached_fits} from the fit cache" if info.cached_fits else ""
    missing = (
        f" Not installed, so not searched: {', '.join(info.not_installed)}."
        if info.not_installed
        else ""
    )
    overtime = (
        f" No model had finished when the budget ran out, so the search kept one going "
        f"{info.overtime_seconds:.1f} s longer (the machine was slower than the budget "
        f"assumed; raise models.budget)."
        if info.overtime_seconds
        else ""
    )
    return (
        f"Searched with {mode}; {folds}-fold cross-validation on {rows}; "
        f"exploration took {info.seconds:.1f} s ({info.fits} fits{cached}) on {info.executor}; "
        f"it ended because {_STOPPED.get(info.stopped_by, info.stopped_by)}. Pruned "
        f"configurations stopped after their first fold.{missing}{overtime}"
    )


_STATE_COLOR = {"COMPLETE": "#3b6fd8", "PRUNED": "#9ca3af", "FAIL": "#b42318"}


def _tuning(r: RunReport) -> str:
    if not r.tuning:
        if r.tuning_skipped:
            body = f'<p class="muted">Tuning did not run: {escape(r.tuning_skipped)}.</p>'
            return _section("tuning", "Tuning", body)
        return ""
    metric = _metric_name(r.leaderboard.metric if r.leaderboard else None)
    cards = []
    for k, t in enumerate(r.tuning):
        base = ("tuning", k)
        series = []
        for state, label in (("COMPLETE", "trial"), ("PRUNED", "pruned (last report)")):
            pts = [h for h in t.history if h.state == state and h.value is not None]
            if pts:
                series.append(
                    PlotSeries(
                        label,
                        [float(h.number) for h in pts],
                        [float(h.value) for h in pts if h.value is not None],
                        kind="points",
                        color=_STATE_COLOR[state],
                        hollow=state == "PRUNED",
                        tips=[
                            f"trial {h.number}: {fmt(h.value)} "
                            + ", ".join(f"{a}={_param_text(b)}" for a, b in h.params.items())
                            for h in pts
                        ],
                    )
                )
        best = [h for h in t.history if h.best_so_far is not None]
        if best:
            series.append(
                PlotSeries(
                    "best so far",
                    [float(h.number) for h in best],
                    [float(h.best_so_far) for h in best if h.best_so_far is not None],
                    kind="step",
                    color="#e4572e",
                )
            )
        chart = svg_plot(
            series, x_label="trial", y_label=f"CV {metric}", integer_x=True,
            title=f"tuning history of {t.name}", width=560, height=280,
        ) or '<p class="muted">No finished trial to plot.</p>'  # fmt: skip
        stats = (
            f"<tr><td>Best CV {escape(metric)}</td>"
            f"{_num(t.best_score, _ptr(*base, 'best_score'), 'best_score', column=t.name)}</tr>"
            f"<tr><td>Complete trials</td>"
            f"{_num(t.n_trials_completed, _ptr(*base, 'n_trials_completed'), 'n_trials_completed', column=t.name)}</tr>"
            f"<tr><td>Pruned</td>{_num(t.n_pruned, _ptr(*base, 'n_pruned'), 'n_pruned', column=t.name)}</tr>"
            f"<tr><td>Failed</td>{_num(t.n_failed, _ptr(*base, 'n_failed'), 'n_failed', column=t.name)}</tr>"
            f"<tr><td>Seconds</td>{_num(t.seconds, _ptr(*base, 'seconds'), 'seconds', column=t.name)}</tr>"
        )  # fmt: skip
        body = (
            f'<div class="chartbox">{chart}</div><div class="card-body">'
            f'<table class="stats">{stats}</table>'
            f'<div><div class="muted small">best parameters</div>{_params(t.best_params)}</div>'
            "</div>"
        )
        extra = badge(_STOPPED.get(t.stopped_by, t.stopped_by), "kind")
        cards.append(_card(t.name, body, extra))
    return _section(
        "tuning",
        "Tuning",
        f'<div class="cards">{"".join(cards)}</div>',
        "(Optuna's TPE, started from the portfolio's results; each trial is one cross-validation"
        ", pruned after its first fold when below the median; the best score is optimistic: "
        "best of many)",
    )


def _choice(r: RunReport) -> str:
    c = r.choice
    if c is None:
        return ""
    rows = (
        f"<tr><td>Out-of-fold score</td>{_num(c.score, _ptr('choice', 'score'), 'cv_score')}</tr>"
        + (
            f"<tr><td>Best single model</td>"
            f"{_num(c.best_single, _ptr('choice', 'best_single'), 'best_single')}</tr>"
            if c.best_single is not None
            else ""
        )
        + (
            f"<tr><td>Decision threshold</td>"
            f"{_num(c.threshold, _ptr('choice', 'threshold'), 'threshold')}</tr>"
            if c.threshold is not None
            else ""
        )
    )
    members = "".join(
        f'<tr data-member="{escape(m.name)}"><td>{k + 1}</td><td><b>{escape(m.name)}</b></td>'
        f"<td>{escape(m.family)}</td>"
        f"{_num(m.weight, _ptr('choice', 'members', k, 'weight'), 'weight', column=m.name, share=True)}"
        f'<td class="wbar"><div class="bar" style="width:{max(m.weight, 0.0) * 100:.1f}%"></div></td>'
        f'<td class="wrap small">{_inline_params(m.params)}</td></tr>'
        for k, m in enumerate(c.members)
    )  # fmt: skip
    table = (
        f'<h3 class="sub">Members <span class="muted">({len(c.members)}; the final model '
        "averages their predictions with these weights)</span></h3>"
        '<table class="wide members"><thead><tr><th>#</th><th>Member</th><th>Family</th>'
        '<th class="num">Weight</th><th></th><th class="wrap">Parameters</th></tr></thead>'
        f"<tbody>{members}</tbody></table>"
    )
    fitted = ""
    if c.total_rows and any(m.how != "in memory" for m in c.fitted):
        items = "".join(
            f"<li>{escape(m.name)}: {m.rows:,} of {c.total_rows:,} training rows "
            f'<span class="muted">({escape(m.how)})</span></li>'
            for m in c.fitted
        )
        fitted = f'<p class="muted small">Final fit, per member:</p><ul class="small">{items}</ul>'
    elif c.fit_rows and c.total_rows:
        fitted = (
            f'<p class="muted small">Fitted on {_num(c.fit_rows, _ptr("choice", "fit_rows"), "fit_rows", tag="span")}'
            f' of {_num(c.total_rows, _ptr("choice", "total_rows"), "total_rows", tag="span")} training rows'
            + (" (a seeded, stratified sample: the budget left could not refit on all of them)."
               if c.fit_rows < c.total_rows else ".")
            + "</p>"
        )  # fmt: skip
    body = (
        f'<p class="reason">{escape(c.reason)}</p>{fitted}<div class="card-body">'
        f'<table class="stats">{rows}</table></div><div class="scroll">{table}</div>'
    )
    extra = badge(f"from {c.source}", "kind")
    return _section("choice", "Chosen model", _card(c.name, body, extra, cls="wide-card"))


def _curve_card(title: str, plot: str, note: str = "") -> str:
    if not plot:
        return ""
    note_html = f'<p class="muted small">{escape(note)}</p>' if note else ""
    return _card(title, f'<div class="chartbox">{plot}</div>{note_html}')


def _evaluation(r: RunReport) -> str:
    ev = r.evaluation
    if ev is None:
        return ""
    cards: list[str] = []
    # metrics
    rows = "".join(
        f'<tr class="{"sel" if name == ev.metric else ""}"><td>{escape(_metric_name(name))}'
        f"{' ' + badge('selected', 'pass') if name == ev.metric else ''}</td>"
        f"{_num(value, _ptr('evaluation', 'metrics', name), name)}</tr>"
        for name, value in ev.metrics.items()
    )
    cards.append(
        _card(
            "Metrics",
            f'<table class="stats metrics-table">{rows}</table>'
            f'<p class="muted small">on {fmt(ev.rows)} hold-out rows'
            + (
                f"; label metrics at probability ≥ 0.5, positive class "
                f"'{escape(ev.positive_class)}'"
                if ev.positive_class is not None
                else ""
            )
            + "</p>",
        )
    )
    # threshold
    if ev.threshold is not None:
        source = {
            "given": "chosen on out-of-fold predictions of the training rows",
            "default": "the default 0.5",
            "test": "chosen on the test rows (its metrics below are optimistic)",
        }.get(ev.threshold_source or "", "")
        trows = "".join(
            f"<tr><td>{escape(_metric_name(name))}</td>"
            f"{_num(value, _ptr('evaluation', 'threshold_metrics', name), name, column='threshold')}</tr>"
            for name, value in (ev.threshold_metrics or {}).items()
        )  # fmt: skip
        cards.append(
            _card(
                "Decision threshold",
                f'<div class="big">{_num(ev.threshold, _ptr("evaluation", "threshold"), "threshold", tag="div", cls="v")}</div>'
                f'<p class="muted small">predict \'{escape(ev.positive_class or "")}\' when its '
                f"probability ≥ the threshold; {escape(source)}</p>"
                f'<table class="stats">{trows}</table>',
            )
        )  # fmt: skip
    # confusion matrix
    cm = ev.confusion_matrix
    if cm is not None:
        at = (
            f"at threshold {fmt(ev.threshold)}"
            if ev.threshold is not None
            else "at the predicted label"
        )
        cards.append(
            _card(
                "Confusion matrix",
                '<div class="chartbox cm">'
                + svg_confusion(cm.labels, cm.matrix, path=_ptr("evaluation", "confusion_matrix", "matrix"))
                + f'</div><p class="muted small">rows: actual class, columns: predicted, {escape(at)}; '
                "shading: share of the actual class</p>",
            )
        )  # fmt: skip
    # curves
    if ev.roc_curve:
        auc = ev.metrics.get("roc_auc")
        cards.append(
            _curve_card(
                "ROC curve",
                svg_plot(
                    [PlotSeries("", [p.x for p in ev.roc_curve], [p.y for p in ev.roc_curve])],
                    x_label="false positive rate", y_label="true positive rate",
                    x_range=(0, 1), y_range=(0, 1), diagonal=True, legend=False,
                    title="ROC curve",
                ),
                f"AUC {fmt(auc)}; dashed: a random ranking" if auc is not None else "",
            )
        )  # fmt: skip
    if ev.pr_curve:
        prevalence = None
        if cm is not None and ev.positive_class in cm.labels:
            i = cm.labels.index(ev.positive_class or "")
            total = sum(sum(row) for row in cm.matrix)
            prevalence = sum(cm.matrix[i]) / total if total else None
        series = [PlotSeries("", [p.x for p in ev.pr_curve], [p.y for p in ev.pr_curve])]
        if prevalence is not None:
            series.append(
                PlotSeries("", [0.0, 1.0], [prevalence, prevalence], color="#9ca3af", dashed=True)
            )
        ap = ev.metrics.get("pr_auc")
        cards.append(
            _curve_card(
                "Precision-recall curve",
                svg_plot(series, x_label="recall", y_label="precision", x_range=(0, 1),
                         y_range=(0, 1), legend=False, title="precision-recall curve"),
                (f"PR AUC {fmt(ap)}" if ap is not None else "")
                + (f"; dashed: share of positives ({fmt_share(prevalence)})"
                   if prevalence is not None else ""),
            )
        )  # fmt: skip
    if ev.calibration:
        cal = ev.calibration
        cards.append(
            _curve_card(
                "Calibration",
                svg_plot(
                    [PlotSeries("", [c.predicted for c in cal], [c.observed for c in cal],
                                kind="linepoints",
                                tips=[f"predicted {fmt(c.predicted)}, observed {fmt(c.observed)},"
                                      f" {c.count} rows" for c in cal])],
                    x_label="mean predicted probability", y_label="observed share of positives",
                    x_range=(0, 1), y_range=(0, 1), diagonal=True, legend=False,
                    title="calibration curve",
                ),
                "10 bins of predicted probability; dashed: perfect calibration",
            )
        )  # fmt: skip
    # residuals
    res = ev.residuals
    if res is not None:
        lo = min(min(res.actual, default=0.0), min(res.predicted, default=0.0))
        hi = max(max(res.actual, default=1.0), max(res.predicted, default=1.0))
        cards.append(
            _curve_card(
                "Predicted vs actual",
                svg_plot(
                    [PlotSeries("", res.actual, res.predicted, kind="points")],
                    x_label="actual", y_label="predicted", x_range=(lo, hi), y_range=(lo, hi),
                    diagonal=True, legend=False, title="predicted vs actual",
                ),
                f"{fmt(len(res.actual))} test rows"
                + (" (sample)" if len(res.actual) < ev.rows else "")
                + "; dashed: perfect prediction",
            )
        )  # fmt: skip
        errors = [a - p for a, p in zip(res.actual, res.predicted, strict=True)]
        hist = _histogram(errors)
        srows = "".join(
            f"<tr><td>{escape(name.replace('_', ' '))}</td>"
            f"{_num(value, _ptr('evaluation', 'residuals', 'summary', name), name, column='residual')}</tr>"
            for name, value in res.summary.items()
        )  # fmt: skip
        cards.append(
            _card(
                "Residuals (actual − predicted)",
                f'<div class="chartbox">{hist}</div><table class="stats">{srows}</table>'
                '<p class="muted small">summary over all test rows</p>',
            )
        )
    parts = [f'<div class="cards eval">{"".join(cards)}</div>']
    # permutation importance
    if ev.permutation_importance:
        imp = ev.permutation_importance
        top = max((i.mean for i in imp if math.isfinite(i.mean)), default=0.0) or 1.0
        irows = "".join(
            f"<tr><td>{k + 1}</td><td>{escape(i.feature)}</td>"
            f"{_num(i.mean, _ptr('evaluation', 'permutation_importance', k, 'mean'), 'importance', column=i.feature)}"
            f"{_num(i.std, _ptr('evaluation', 'permutation_importance', k, 'std'), 'importance_std', column=i.feature, text='± ' + fmt(i.std))}"
            f'<td style="width:45%"><div class="bar" style="width:'
            f'{max(i.mean, 0.0) / top * 100 if math.isfinite(i.mean) else 0:.1f}%"></div></td></tr>'
            for k, i in enumerate(imp)
        )  # fmt: skip
        parts.append(
            f'<h3 class="sub">Permutation importance <span class="muted">(drop in '
            f"{escape(_metric_name(ev.metric))} when a column is shuffled; 5 repeats)</span></h3>"
            '<div class="scroll"><table class="wide sortable"><thead><tr><th>#</th>'
            '<th>Column</th><th class="num">Mean drop</th><th class="num">std</th><th></th>'
            "</tr></thead>"
            f"<tbody>{irows}</tbody></table></div>"
        )
    # slices
    if ev.slices:
        names = list(dict.fromkeys(n for s in ev.slices for n in s.metrics))
        head = "".join(
            f'<th class="num{" sel" if n == ev.metric else ""}">{escape(_metric_name(n))}</th>'
            for n in names
        )
        srows = "".join(
            f"<tr><td>{escape(s.column)}</td><td>{escape(s.value)}</td>"
            f"{_num(s.rows, _ptr('evaluation', 'slices', k, 'rows'), 'slice_rows', column=s.column)}"
            + "".join(
                _num(s.metrics[n], _ptr("evaluation", "slices", k, "metrics", n), n,
                     column=s.column, cls="sel" if n == ev.metric else None)
                if n in s.metrics else "<td></td>"
                for n in names
            )
            + "</tr>"
            for k, s in enumerate(ev.slices)
        )  # fmt: skip
        overall = "".join(
            _num(ev.metrics[n], _ptr("evaluation", "metrics", n), n, column="(all rows)",
                 cls="sel" if n == ev.metric else None)
            if n in ev.metrics else "<td></td>"
            for n in names
        )  # fmt: skip
        parts.append(
            '<h3 class="sub">Metrics per slice</h3><div class="scroll"><table class="wide '
            'sortable"><thead><tr><th>Column</th><th>Value</th><th class="num">Rows</th>'
            f"{head}</tr></thead>"
            f'<tbody>{srows}</tbody><tfoot><tr><td colspan="2"><b>all test rows</b></td>'
            f"{_num(ev.rows, _ptr('evaluation', 'rows'), 'slice_rows', column='(all rows)')}"
            f"{overall}</tr></tfoot></table></div>"
        )
    note = f"(hold-out test set, {ev.task})"
    return _section("evaluation", "Evaluation", "".join(parts), note)


def _histogram(values: Sequence[float], bins: int = 30) -> str:
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return ""
    lo, hi = min(finite), max(finite)
    if hi == lo:
        hi = lo + 1.0
    width = (hi - lo) / bins
    counts = [0] * bins
    for v in finite:
        counts[min(int((v - lo) / width), bins - 1)] += 1
    edges = [lo + j * width for j in range(bins + 1)]
    return svg_histogram(edges, counts, title="residual histogram", width=420, height=150)


def _gate(r: RunReport) -> str:
    reg = r.registration
    if reg is None:
        return ""
    d = reg.decision
    base = ("registration", "decision")
    verdict = (
        f"Version {reg.version} of '{reg.model_name}' is the new champion."
        if d.promote
        else f"Version {reg.version} of '{reg.model_name}' was registered as the challenger; "
        "the champion is unchanged."
    )
    tiles = (
        _tile(f"Candidate {_metric_name(d.metric)}",
              _num(d.candidate, _ptr(*base, "candidate"), "candidate", tag="div", cls="v"),
              sub="on the test rows")
        + _tile(f"Champion {_metric_name(d.metric)}",
                _num(d.champion, _ptr(*base, "champion"), "champion", tag="div", cls="v",
                     text=None if d.champion is not None else "none"),
                sub=(f"version {escape(reg.previous_champion)}, same test rows"
                     if d.champion_comparable else
                     f"version {escape(reg.previous_champion)}, not comparable")
                if reg.previous_champion else "no champion yet")
        + _tile("Margin", _num(d.margin, _ptr(*base, "margin"), "margin", tag="div", cls="v"),
                sub="improvement in the good direction")
    )  # fmt: skip
    if d.baseline is not None:
        tiles += _tile(
            f"Baseline {_metric_name(d.metric)}",
            _num(d.baseline, _ptr(*base, "baseline"), "baseline", tag="div", cls="v"),
            sub="the dummy model, same test rows",
        )
    if reg.latency is not None:
        lat = reg.latency
        tiles += _tile(
            "p99 latency (ms)",
            _num(lat.p99_ms, _ptr("registration", "latency", "p99_ms"), "p99_ms", tag="div",
                 cls="v"),
            sub=f"{lat.rows} single rows, " + ("fast path" if lat.fast_path else "pipeline"),
        )  # fmt: skip
    reasons = "".join(f"<li><span>{escape(x)}</span></li>" for x in d.reasons)
    details = (
        f"<tr><td>Registered model</td><td>{escape(reg.model_name)}</td></tr>"
        f"<tr><td>Version</td><td>{escape(reg.version)}</td></tr>"
        f"<tr><td>Alias</td><td>@{escape(reg.alias)}</td></tr>"
        f"<tr><td>Previous champion</td><td>{escape(reg.previous_champion or '—')}</td></tr>"
        f"<tr><td>MLflow run</td><td><code>{escape(reg.run_id)}</code></td></tr>"
        f"<tr><td>Tracking</td><td><code>{escape(_shown_uri(reg.tracking))}</code></td></tr>"
    )
    body = (
        f'<div class="verdict {"pass" if d.promote else "fail"}">{_gate_badge(d.promote)}'
        f"<span>{escape(verdict)}</span></div>"
        f'<div class="metrics">{tiles}</div><div class="card-body">'
        f'<div><h3 class="sub">Checks</h3><ul class="alerts reasons">{reasons}</ul></div>'
        f'<div><h3 class="sub">Registration</h3><table class="stats">{details}</table></div>'
        "</div>"
    )
    return _section("gate", "Promotion gate", body)


def _shown_uri(uri: str) -> str:
    """A tracking location as text that is no link (``scheme://`` dropped for servers)."""
    parts = urlsplit(uri)
    if parts.scheme in ("http", "https") and parts.netloc:
        return f"MLflow server {parts.netloc}{parts.path}"
    return uri


# --------------------------------------------------------------------------- page

_CSS = """
header{position:relative}
header .head-badge{position:absolute;right:32px;top:24px}
header .head-badge .badge{font-size:13px;padding:4px 12px}
.metrics.summary{grid-template-columns:repeat(auto-fill,minmax(200px,1fr))}
.metric.hero{border-color:#c7d5f5;background:#f5f8ff}
.metric .v.name{font-size:18px;word-break:break-all}
.badge.pass{background:#dcfce7;color:#166534}
.badge.fail{background:#fee4e2;color:var(--crit)}
.metric .v .badge{font-size:13px;padding:3px 10px}
h3.sub{font-size:14px;margin:18px 0 8px;color:var(--fg)}
.alerts li .right{margin-left:auto;color:var(--muted)}
.alerts.reasons li:before{content:"•";color:var(--muted)}
p.link a{color:var(--accent);font-weight:600;text-decoration:none}
p.link a:hover{text-decoration:underline}
.splitbar{display:flex;height:22px;border-radius:6px;overflow:hidden;font-size:11px;
font-weight:600;color:#fff;margin:0 0 8px;max-width:640px}
.splitbar .train{background:var(--accent);padding:2px 8px}
.splitbar .test{background:#e4572e;padding:2px 8px;flex:1}
table.wide tr.chosen td{background:#fff7ed}
td.err{color:var(--crit);white-space:normal;overflow-wrap:anywhere;min-width:260px}
table.members td.wbar{width:120px}
table.members .kv{display:inline-block;max-width:100%}
.small{font-size:12px}
table.params td.param{color:var(--fg);white-space:normal;word-break:break-all}
table.stats td:nth-child(odd){color:var(--muted)}
table.metrics-table tr.sel td, th.sel, td.sel{font-weight:600;color:var(--fg)}
.cards.eval{grid-template-columns:repeat(auto-fill,minmax(400px,1fr))}
.card.wide-card{max-width:980px}
.card .big .v{font-size:26px;font-weight:600;text-align:left}
p.reason{font-size:15px;margin:0 0 12px}
.chartbox.cm{overflow:auto}
svg.confusion{max-width:100%;height:auto}
svg.plot text.axis{font-size:11px}
svg text.axis-title{font-size:12px;fill:var(--fg)}
svg text.legend{font-size:11px;fill:var(--fg)}
svg text.cm-count{font-size:15px;font-weight:600}
svg text.cm-share{font-size:10px}
svg.whisker{display:inline-block;vertical-align:middle}
.verdict{display:flex;gap:12px;align-items:center;padding:12px 16px;border-radius:10px;
margin-bottom:14px;font-size:15px;border:1px solid var(--line);background:var(--card)}
.verdict.pass{border-color:#bbf7d0;background:#f0fdf4}
.verdict.fail{border-color:#fecdca;background:#fff6f5}
.verdict .badge{font-size:13px;padding:3px 10px}
th.num{text-align:right}
tfoot td{border-top:2px solid var(--line);background:#fafbfc}
code{font:12px ui-monospace,SFMono-Regular,Menlo,monospace;word-break:break-all;white-space:normal}
"""


def render_run_html(report: RunReport) -> str:
    """The report as one self-contained HTML page (inline CSS and SVG, no external URL)."""
    r = report
    sections = [
        ("data", "Data", _data(r)),
        ("split", "Split", _split(r)),
        ("leaderboard", "Leaderboard", _leaderboard(r)),
        ("tuning", "Tuning", _tuning(r)),
        ("choice", "Choice", _choice(r)),
        ("evaluation", "Evaluation", _evaluation(r)),
        ("gate", "Gate", _gate(r)),
    ]
    body = _summary(r) + "".join(html for _, _, html in sections)
    if not any(html for _, _, html in sections):
        body += '<p class="muted">This run produced no results to report yet.</p>'
    nav = [(anchor, label) for anchor, label, html in sections if html]
    subtitle = f"run report · {r.created.replace('T', ' ').replace('Z', ' UTC')}"
    if r.registration is not None:
        subtitle += f" · {r.registration.model_name} v{r.registration.version}"
        subtitle += " · promoted" if r.registration.decision.promote else " · not promoted"
    elif r.choice is not None:
        subtitle += f" · model {r.choice.name}"
    if not r.has_modeling:
        subtitle += " · data steps only"
    html = page(r.project, body, subtitle=subtitle, nav=nav)
    if r.registration is not None:
        verdict = _gate_badge(r.registration.decision.promote)
        html = html.replace("</header>", f'<div class="head-badge">{verdict}</div></header>', 1)
    footer = (
        f"<footer>modelyard run report, format {r.version}. Every number carries its exact "
        "value (<code>data-value</code>) and its place in the report's JSON "
        "(<code>data-path</code>).</footer>"
    )
    html = html.replace("</style>", _CSS + "</style>", 1)
    return html.replace("</main>", "</main>" + footer, 1)
