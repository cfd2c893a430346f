"""The promotion gate: does a new model become the champion?

A pure function of numbers: the caller scores the candidate *and the current champion* on the
same test data and says whether data validation passed. Three checks, all reported:

1. an absolute floor on the metric (a ceiling for error metrics such as rmse),
2. beat the champion by at least ``min_improvement`` (strictly better when it is 0),
3. the data passed validation (unless ``require_valid_data`` is off).

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

from pydantic import BaseModel

from modelyard.config.schema import GateSection

_EPS = 1e-12
"""Float slack when comparing an improvement with ``min_improvement``."""


class GateDecision(BaseModel):
    """The gate's verdict, with one readable reason per check."""

    promote: bool
    """Whether the candidate becomes the champion (else it becomes the challenger)."""
    reasons: list[str]
    """One sentence per check, passed or failed, in order: floor, champion, data."""
    metric: str
    """The metric compared."""
    candidate: float
    """The candidate's score on the test data."""
    champion: float | None
    """The current champion's score on the same test data; ``None`` without a champion."""
    margin: float
    """Improvement over the champion in the metric's good direction (positive = better);
    0.0 without a champion."""


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
) -> GateDecision:
    """Decide whether ``candidate`` replaces the champion; every check gives a reason."""
    ok = True
    reasons: list[str] = []
    name = f"{metric} {_fmt(candidate)}"

    # 1. absolute floor (ceiling when lower is better)
    if math.isnan(candidate):
        ok = False
        reasons.append(f"{metric} is NaN: the candidate could not be scored")
    elif options.min_metric is not None:
        bar = _fmt(options.min_metric)
        if greater_is_better:
            if candidate >= options.min_metric:
                reasons.append(f"{name} is at or above the floor {bar} (gate.min_metric)")
            else:
                ok = False
                reasons.append(f"{name} is below the floor {bar} (gate.min_metric)")
        elif candidate <= options.min_metric:
            reasons.append(
                f"{name} is at or below the ceiling {bar} (gate.min_metric; lower is better)"
            )
        else:
            ok = False
            reasons.append(f"{name} is above the ceiling {bar} (gate.min_metric; lower is better)")
    else:
        reasons.append(f"{name}: no absolute bar set (gate.min_metric)")

    # 2. the champion, on the same test data
    margin = 0.0
    if champion is None or math.isnan(champion):
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
            ok = False
            reasons.append(f"{metric} cannot be compared with the champion's {_fmt(champion)}")
        elif beats:
            reasons.append(
                f"{name} beats the champion's {_fmt(champion)} by {_fmt(margin)} (required: {wanted})"
            )
        else:
            ok = False
            how = "worse than" if margin < 0 else ("equal to" if margin == 0 else "only")
            detail = (
                f"beats the champion's {_fmt(champion)} by only {_fmt(margin)}"
                if how == "only"
                else f"is {how} the champion's {_fmt(champion)}"
            )
            reasons.append(f"{name} {detail} (required: {wanted})")

    # 3. data validation
    if data_valid:
        reasons.append("data validation passed")
    elif options.require_valid_data:
        ok = False
        reasons.append("data validation failed its limits (gate.require_valid_data is true)")
    else:
        reasons.append("data validation failed, ignored (gate.require_valid_data is false)")

    return GateDecision(
        promote=ok,
        reasons=reasons,
        metric=metric,
        candidate=candidate,
        champion=champion,
        margin=margin,
    )
