"""The promotion gate: floor, champion margin, lower-is-better metrics, invalid data."""

from __future__ import annotations

import math

import pytest

from modelyard.config.schema import GateSection
from modelyard.ops.gate import GateDecision, decide


def _decide(
    candidate: float,
    champion: float | None = None,
    *,
    greater: bool = True,
    metric: str = "accuracy",
    valid: bool = True,
    baseline: float | None = None,
    **options: object,
) -> GateDecision:
    return decide(
        metric=metric,
        greater_is_better=greater,
        candidate=candidate,
        champion=champion,
        options=GateSection.model_validate(options),
        data_valid=valid,
        baseline=baseline,
        baseline_what="the training class shares, predicted for every row",
    )


def test_first_model_above_the_floor_is_promoted() -> None:
    d = _decide(0.9, min_metric=0.8)
    assert d.promote
    assert d.champion is None and d.margin == 0.0
    assert d.reasons == [
        "accuracy 0.9 is at or above the floor 0.8 (gate.min_metric)",
        "no champion yet: nothing to beat",
        "data validation passed",
    ]


def test_below_the_floor_is_refused_even_without_champion() -> None:
    d = _decide(0.7, min_metric=0.8)
    assert not d.promote
    assert "accuracy 0.7 is below the floor 0.8 (gate.min_metric)" in d.reasons


def test_no_floor_is_said() -> None:
    d = _decide(0.1)
    assert d.promote
    assert d.reasons[0] == "accuracy 0.1: no absolute bar set (gate.min_metric)"


@pytest.mark.parametrize(
    ("candidate", "champion", "min_improvement", "promote"),
    [
        (0.91, 0.90, 0.0, True),
        (0.90, 0.90, 0.0, False),  # a tie does not beat the champion
        (0.89, 0.90, 0.0, False),
        (0.91, 0.90, 0.01, True),  # exactly the margin (despite float noise)
        (0.905, 0.90, 0.01, False),
        (0.95, 0.90, 0.01, True),
    ],
)
def test_champion_margin(
    candidate: float, champion: float, min_improvement: float, promote: bool
) -> None:
    d = _decide(candidate, champion, min_improvement=min_improvement)
    assert d.promote is promote
    assert d.margin == pytest.approx(candidate - champion)


def test_champion_reasons_are_readable() -> None:
    worse = _decide(0.85, 0.9)
    assert worse.reasons[1] == (
        "accuracy 0.85 is worse than the champion's 0.9 (required: strictly better, "
        "gate.min_improvement is 0)"
    )
    short = _decide(0.905, 0.9, min_improvement=0.01)
    assert short.reasons[1] == (
        "accuracy 0.905 beats the champion's 0.9 by only 0.005 (required: at least 0.01, "
        "gate.min_improvement)"
    )
    tie = _decide(0.9, 0.9)
    assert "is equal to the champion's 0.9" in tie.reasons[1]


def test_lower_is_better_metric_uses_a_ceiling_and_reverses_the_margin() -> None:
    ok = _decide(3.1, 3.4, greater=False, metric="rmse", min_metric=5.0, min_improvement=0.1)
    assert ok.promote
    assert ok.margin == pytest.approx(0.3)
    assert (
        ok.reasons[0] == "rmse 3.1 is at or below the ceiling 5 (gate.min_metric; lower is better)"
    )

    above_ceiling = _decide(6.0, None, greater=False, metric="rmse", min_metric=5.0)
    assert not above_ceiling.promote
    assert (
        "rmse 6 is above the ceiling 5 (gate.min_metric; lower is better)" in above_ceiling.reasons
    )

    worse = _decide(3.5, 3.4, greater=False, metric="rmse")
    assert not worse.promote
    assert worse.margin == pytest.approx(-0.1)
    assert "rmse 3.5 is worse than the champion's 3.4" in worse.reasons[1]


@pytest.mark.parametrize(
    ("candidate", "baseline", "greater", "promote", "says"),
    [
        (0.42, 0.5, True, False, "is worse than the baseline's 0.5"),
        (0.5, 0.5, True, False, "only equals the baseline's 0.5"),
        (0.5 + 1e-15, 0.5, True, False, "only equals"),  # float noise is no improvement
        (0.51, 0.5, True, True, "beats the baseline's 0.5"),
        (2.9, 3.0, False, True, "beats the baseline's 3"),  # lower is better: rmse
        (3.1, 3.0, False, False, "is worse than the baseline's 3"),
    ],
)
def test_a_first_model_must_beat_the_baseline(
    candidate: float, baseline: float, greater: bool, promote: bool, says: str
) -> None:
    """A model no better than predicting the training class shares was promoted as the first
    champion: there was no champion to beat and no floor set."""
    metric = "roc_auc" if greater else "rmse"
    d = _decide(candidate, None, greater=greater, metric=metric, baseline=baseline)
    assert d.promote is promote
    assert d.baseline == baseline
    check = d.reasons[1]
    assert says in check
    assert "(the training class shares, predicted for every row)" in check
    assert (check in d.failed) is not promote
    assert d.reasons[2] == "no champion yet: nothing to beat"


def test_the_baseline_check_can_be_turned_off_or_skipped() -> None:
    allowed = _decide(0.42, None, metric="roc_auc", baseline=0.5, beat_baseline=False)
    assert allowed.promote
    assert allowed.reasons[1].endswith("allowed (gate.beat_baseline is false)")

    undefined = _decide(0.42, None, metric="roc_auc", baseline=math.nan)
    assert undefined.promote
    assert undefined.reasons[1] == (
        "the baseline could not be scored on the test rows: check skipped"
    )

    not_given = _decide(0.42, None, metric="roc_auc")
    assert not_given.promote and not_given.baseline is None
    assert not any("baseline" in r for r in not_given.reasons)

    nan = _decide(math.nan, None, metric="roc_auc", baseline=0.5)
    assert not nan.promote
    assert nan.failed == ["roc_auc is NaN: the candidate could not be scored"]


def test_every_check_of_a_useless_model_against_a_champion_is_reported() -> None:
    d = _decide(0.45, 0.7, metric="roc_auc", baseline=0.5)
    assert not d.promote
    assert len(d.failed) == 2
    assert "worse than the baseline's 0.5" in d.failed[0]
    assert "worse than the champion's 0.7" in d.failed[1]


def test_invalid_data_blocks_promotion_unless_allowed() -> None:
    blocked = _decide(0.99, 0.5, valid=False)
    assert not blocked.promote
    assert (
        blocked.reasons[-1] == "data validation failed its limits (gate.require_valid_data is true)"
    )

    allowed = _decide(0.99, 0.5, valid=False, require_valid_data=False)
    assert allowed.promote
    assert (
        allowed.reasons[-1] == "data validation failed, ignored (gate.require_valid_data is false)"
    )


def test_every_failed_check_is_reported() -> None:
    d = _decide(0.5, 0.9, valid=False, min_metric=0.8)
    assert not d.promote
    assert len(d.reasons) == 3
    assert "below the floor" in d.reasons[0]
    assert "worse than the champion" in d.reasons[1]
    assert "validation failed" in d.reasons[2]


def test_nan_candidate_is_refused() -> None:
    d = _decide(math.nan, 0.9)
    assert not d.promote
    assert d.reasons[0] == "accuracy is NaN: the candidate could not be scored"


def test_decision_serialises_to_json() -> None:
    d = _decide(0.91, 0.9)
    again = GateDecision.model_validate_json(d.model_dump_json())
    assert again == d


def _full(
    candidate: float = 0.9,
    champion: float | None = None,
    *,
    note: str | None = None,
    metrics: dict[str, float] | None = None,
    leakage: tuple[str, ...] = (),
    p99: float | None = None,
    **options: object,
) -> GateDecision:
    return decide(
        metric="roc_auc",
        greater_is_better=True,
        candidate=candidate,
        champion=champion,
        options=GateSection.model_validate(options),
        data_valid=True,
        champion_note=note,
        test_metrics=metrics,
        leakage=leakage,
        p99_ms=p99,
    )


LEAK = "'alive' (almost) determines the target 'survived'"


def test_a_perfect_score_with_a_standing_leakage_alert_is_refused_unless_allowed() -> None:
    perfect = {"roc_auc": 1.0, "accuracy": 0.9995, "precision": 1.0, "log_loss": 0.01}
    refused = _full(1.0, metrics=perfect, leakage=(LEAK,))
    assert not refused.promote
    assert refused.perfect == {"roc_auc": 1.0, "accuracy": 0.9995}  # not precision, not losses
    assert refused.leakage == [LEAK]
    (failed,) = refused.failed
    assert failed.startswith("test roc_auc 1, accuracy 0.9995: implausibly perfect")
    assert LEAK in failed and "gate.allow_perfect_score" in failed

    allowed = _full(1.0, metrics=perfect, leakage=(LEAK,), allow_perfect_score=True)
    assert allowed.promote and "allowed (gate.allow_perfect_score is true)" in allowed.reasons[-1]
    # no alert standing: a perfect score alone is not refused
    assert _full(1.0, metrics=perfect).promote
    # an alert standing but a plausible score: passes, and says so
    plausible = _full(0.86, metrics={"roc_auc": 0.86}, leakage=(LEAK,))
    assert plausible.promote and "the score is not perfect" in plausible.reasons[-1]
    # the bar is a setting
    assert not _full(0.97, metrics={"roc_auc": 0.97}, leakage=(LEAK,), perfect_score=0.95).promote


def test_a_champion_that_is_not_comparable_refuses_or_is_skipped() -> None:
    note = "version 3 takes 'alive', which the new test data lacks"
    refused = _full(0.8, 0.99, note=note)
    assert not refused.promote and not refused.champion_comparable
    assert refused.champion is None and refused.margin == 0.0
    assert refused.failed == [
        f"the champion is not comparable: {note} "
        "(gate.champion_not_comparable is refuse: promote by hand with --force)"
    ]
    skipped = _full(0.8, 0.99, note=note, champion_not_comparable="skip")
    assert skipped.promote
    assert skipped.reasons[1] == (
        f"the champion is not comparable: {note}; check skipped "
        "(gate.champion_not_comparable is skip)"
    )
    # the other checks still apply
    assert not _full(0.8, note=note, champion_not_comparable="skip", min_metric=0.85).promote


def test_latency_is_checked_against_max_p99_ms() -> None:
    assert _full(p99=3.2).reasons[-1] == "p99 latency 3.2 ms: no limit set (gate.max_p99_ms)"
    within = _full(p99=3.2, max_p99_ms=5)
    assert within.promote and within.p99_ms == 3.2
    assert within.reasons[-1] == "p99 latency 3.2 ms is within 5 ms (gate.max_p99_ms)"
    slow = _full(p99=7.5, max_p99_ms=5)
    assert not slow.promote
    assert slow.failed == ["p99 latency 7.5 ms exceeds 5 ms (gate.max_p99_ms)"]
    unmeasured = _full(p99=None, max_p99_ms=5)
    assert not unmeasured.promote and "could not be measured" in unmeasured.failed[0]
    broken = decide(
        metric="roc_auc", greater_is_better=True, candidate=0.9, champion=None,
        options=GateSection(), data_valid=True, latency_error="TypeError: no steps",
    )  # fmt: skip
    assert broken.promote  # no limit: said, not enforced
    assert broken.reasons[-1] == (
        "the latency could not be measured: TypeError: no steps (no gate.max_p99_ms set)"
    )
    # without a measurement nor a limit, nothing is said (the three classic checks only)
    assert len(_full().reasons) == 3


def test_max_p99_ms_needs_a_measurement() -> None:
    with pytest.raises(ValueError, match=r"gate\.latency_rows above 0"):
        GateSection(max_p99_ms=5, latency_rows=0)
