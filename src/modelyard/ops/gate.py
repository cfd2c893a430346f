"""The promotion gate: does a new model become the champion?

A pure function of numbers: the caller scores the candidate *and the current champion* on the
same test data (each model on the columns it was trained on), says whether data validation
passed, which leakage alerts of the profile name one of the candidate's inputs, and how fast it
predicts. The checks, each with one reason in this order:

1. an absolute floor on the metric (a ceiling for error metrics such as rmse),
2. beat the baseline (when the caller scored it): the ``dummy`` model, which predicts the
   training class shares or mean for every row, on the same test data. A model that does not
   beat it has learnt nothing from its features (``beat_baseline: false`` lets it through),
3. beat the champion by at least ``min_improvement`` (strictly better when it is 0). A champion
   that cannot be scored on the new test data is *not comparable*: the candidate is refused
   (``champion_not_comparable: refuse``, the default) or the check is skipped (``skip``),
4. the data passed validation (unless ``require_valid_data`` is off),
5. leakage (only when something stands): a test score at or above ``perfect_score`` while a
   leakage alert names one of the model's inputs is refused, unless ``allow_perfect_score``,
6. latency (when it was measured or ``max_p99_ms`` is set): the p99 of single-row predictions
   must not exceed ``max_p99_ms``.

>>> from modelyard.config.schema import GateSection
>>> d = decide(metric="rmse", greater_is_better=False, candidate=3.1, champion=3.4,
...            options=GateSection(min_metric=5.0, min_improvement=0.1), data_valid=True)
>>> d.promote, round(d.margin, 6)
(True, 0.3)
>>> print("\\n".join(d.reasons))
rmse 3.1 is at or below the ceiling 5 (gate.min_metric; lower is better)
rmse 3.1 beats the champion's 3.4 by 0.3 (required: at least 0.1, gate.min_improvement)
data validation passed
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from pydantic import BaseModel, Field

from modelyard.config.schema import GateSection

_EPS = 1e-12
"""Float slack when comparing an improvement with ``min_improvement``."""
PERFECT_METRICS = ("roc_auc", "pr_auc", "accuracy", "f1", "f1_macro", "r2")
"""Test metrics whose best value is 1 and that a useful model rarely reaches (``precision`` and
``recall`` are left out: one of them is trivially 1 for a model that predicts one class)."""


class GateDecision(BaseModel):
    """The gate's verdict, with one readable reason per check."""

    promote: bool
    """Whether the candidate becomes the champion (else it becomes the challenger)."""
    reasons: list[str]
    """One sentence per check, passed or failed, in order: floor, champion, data, then leakage
    and latency when they apply."""
    failed: list[str] = Field(default_factory=list)
    """The reasons of the checks that failed (empty when the candidate is promoted)."""
    metric: str
    """The metric compared."""
    candidate: float
    """The candidate's score on the test data."""
    champion: float | None
    """The current champion's score on the same test data; ``None`` without a champion."""
    baseline: float | None = None
    """The baseline's score on the same test data (see :func:`~modelyard.modeling.tasks.
    baseline_score`); ``None`` when the caller did not score it."""
    margin: float
    """Improvement over the champion in the metric's good direction (positive = better);
    0.0 without a champion."""
    champion_comparable: bool = True
    """False when there is a champion but it could not be scored on the new test data."""
    perfect: dict[str, float] = Field(default_factory=dict)
    """The test metrics at or above ``gate.perfect_score`` (implausibly perfect)."""
    leakage: list[str] = Field(default_factory=list)
    """Leakage alerts of the data profile that name one of the candidate's inputs."""
    p99_ms: float | None = None
    """The measured p99 latency of single-row predictions, in milliseconds."""


def _fmt(x: float) -> str:
    return f"{x:.4g}"


def decide(
    *,
    metric: str,
    greater_is_better: bool,
    candidate: float,
    champion: float | None,
    options: GateSection,
    data_valid: bool,
    baseline: float | None = None,
    baseline_what: str = "a constant prediction",
    champion_note: str | None = None,
    test_metrics: Mapping[str, float] | None = None,
    leakage: Sequence[str] = (),
    p99_ms: float | None = None,
    latency_error: str | None = None,
) -> GateDecision:
    """Decide whether ``candidate`` replaces the champion; every check gives a reason.

    ``baseline`` is the baseline's score on the same test data (``None``: no such check) and
    ``baseline_what`` what it predicts; ``champion_note`` says why an existing champion could
    not be scored (``champion`` is then ignored); ``test_metrics`` are all the candidate's test metrics (for the perfect-score
    check); ``leakage`` the messages of the profile's leakage alerts on the candidate's inputs;
    ``p99_ms`` its measured single-row latency, or ``latency_error`` why it could not be measured.
    """
    reasons: list[str] = []
    failed: list[str] = []

    def fail(reason: str) -> None:
        reasons.append(reason)
        failed.append(reason)

    name = f"{metric} {_fmt(candidate)}"

    # 1. absolute floor (ceiling when lower is better)
    if math.isnan(candidate):
        fail(f"{metric} is NaN: the candidate could not be scored")
    elif options.min_metric is not None:
        bar = _fmt(options.min_metric)
        if greater_is_better:
            if candidate >= options.min_metric:
                reasons.append(f"{name} is at or above the floor {bar} (gate.min_metric)")
            else:
                fail(f"{name} is below the floor {bar} (gate.min_metric)")
        elif candidate <= options.min_metric:
            reasons.append(
                f"{name} is at or below the ceiling {bar} (gate.min_metric; lower is better)"
            )
        else:
            fail(f"{name} is above the ceiling {bar} (gate.min_metric; lower is better)")
    else:
        reasons.append(f"{name}: no absolute bar set (gate.min_metric)")

    # 2. the baseline, on the same test data
    checked = _against_baseline(name, candidate, baseline, baseline_what, options,
                                greater_is_better=greater_is_better)  # fmt: skip
    if checked is not None and checked[1]:
        reasons.append(checked[0])
    elif checked is not None:
        fail(checked[0])

    # 3. the champion, on the same test data
    margin = 0.0
    comparable = champion_note is None
    if champion_note is not None:
        champion = None
        if options.champion_not_comparable == "refuse":
            fail(
                f"the champion is not comparable: {champion_note} "
                "(gate.champion_not_comparable is refuse: promote by hand with --force)"
            )
        else:
            reasons.append(
                f"the champion is not comparable: {champion_note}; "
                "check skipped (gate.champion_not_comparable is skip)"
            )
    elif champion is None or math.isnan(champion):
        reasons.append("no champion yet: nothing to beat")
    else:
        margin = candidate - champion if greater_is_better else champion - candidate
        need = options.min_improvement
        wanted = (
            f"at least {_fmt(need)}, gate.min_improvement"
            if need > 0
            else "strictly better, gate.min_improvement is 0"
        )
        beats = margin > 0 and margin + _EPS >= need
        if math.isnan(margin):
            fail(f"{metric} cannot be compared with the champion's {_fmt(champion)}")
        elif beats:
            reasons.append(
                f"{name} beats the champion's {_fmt(champion)} by {_fmt(margin)} (required: {wanted})"
            )
        else:
            how = "worse than" if margin < 0 else ("equal to" if margin == 0 else "only")
            detail = (
                f"beats the champion's {_fmt(champion)} by only {_fmt(margin)}"
                if how == "only"
                else f"is {how} the champion's {_fmt(champion)}"
            )
            fail(f"{name} {detail} (required: {wanted})")

    # 4. data validation
    if data_valid:
        reasons.append("data validation passed")
    elif options.require_valid_data:
        fail("data validation failed its limits (gate.require_valid_data is true)")
    else:
        reasons.append("data validation failed, ignored (gate.require_valid_data is false)")

    # 5. leakage: an implausibly perfect score while a leakage alert stands
    perfect = {
        k: float(v)
        for k, v in (test_metrics or {}).items()
        if k in PERFECT_METRICS and math.isfinite(v) and v >= options.perfect_score
    }
    if leakage:
        named = "; ".join(leakage)
        if not perfect:
            reasons.append(
                f"a leakage alert names an input of the model, the score is not perfect: {named}"
            )
        elif options.allow_perfect_score:
            reasons.append(
                f"test {_metrics(perfect)}: implausibly perfect while a leakage alert names an "
                f"input of the model, allowed (gate.allow_perfect_score is true): {named}"
            )
        else:
            fail(
                f"test {_metrics(perfect)}: implausibly perfect (gate.perfect_score "
                f"{_fmt(options.perfect_score)}) while a leakage alert names an input of the "
                f"model: {named}. Leave the column out of features.allow_leaky, or set "
                "gate.allow_perfect_score"
            )

    # 6. latency of single-row predictions
    limit = options.max_p99_ms
    why = f": {latency_error}" if latency_error else ""
    if p99_ms is None and limit is None and latency_error:
        reasons.append(f"the latency could not be measured{why} (no gate.max_p99_ms set)")
    elif p99_ms is not None or limit is not None:
        if p99_ms is None or math.isnan(p99_ms):
            fail(f"the latency could not be measured{why} (gate.max_p99_ms is {_fmt(limit or 0)})")
        elif limit is None:
            reasons.append(f"p99 latency {_fmt(p99_ms)} ms: no limit set (gate.max_p99_ms)")
        elif p99_ms <= limit:
            reasons.append(
                f"p99 latency {_fmt(p99_ms)} ms is within {_fmt(limit)} ms (gate.max_p99_ms)"
            )
        else:
            fail(f"p99 latency {_fmt(p99_ms)} ms exceeds {_fmt(limit)} ms (gate.max_p99_ms)")

    return GateDecision(
        promote=not failed,
        reasons=reasons,
        failed=failed,
        metric=metric,
        candidate=candidate,
        champion=champion,
        baseline=baseline,
        margin=margin,
        champion_comparable=comparable,
        perfect=perfect,
        leakage=list(leakage),
        p99_ms=p99_ms,
    )


def _against_baseline(
    name: str,
    candidate: float,
    baseline: float | None,
    what: str,
    options: GateSection,
    *,
    greater_is_better: bool,
) -> tuple[str, bool] | None:
    """The baseline check's reason and whether it passed (strictly better, or the model has
    learnt nothing); ``None`` when there is nothing to say (no baseline, or a NaN candidate,
    which the floor check already refused)."""
    if baseline is None:
        return None
    if math.isnan(baseline):
        return "the baseline could not be scored on the test rows: check skipped", True
    if math.isnan(candidate):
        return None
    base = f"the baseline's {_fmt(baseline)} ({what})"
    margin = candidate - baseline if greater_is_better else baseline - candidate
    if margin > _EPS * max(1.0, abs(baseline)):
        return f"{name} beats {base}", True
    if not options.beat_baseline:
        return f"{name} does not beat {base}, allowed (gate.beat_baseline is false)", True
    how = "is worse than" if margin < 0 else "only equals"
    return (
        f"{name} {how} {base}: the model has learnt nothing usable from its features "
        "(gate.beat_baseline)",
        False,
    )


def _metrics(values: Mapping[str, float]) -> str:
    return ", ".join(f"{k} {_fmt(v)}" for k, v in values.items())
