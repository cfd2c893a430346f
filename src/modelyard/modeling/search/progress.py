"""What a user sees while a search runs: the budget left (the console adds the time elapsed),
the best score so far, what is being fitted now, and one line per finished configuration."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

from modelyard.modeling.search.scheduler import Evaluator, Outcome

Progress = Callable[..., None]
"""``progress(done, total, message, note="")``: ``note`` is a line worth keeping in a log."""


def _seconds(value: float) -> str:
    value = max(0.0, value)
    return f"{value:.0f}s" if value < 120 else f"{value / 60:.1f}min"


class Watch:
    """Turns an evaluator's events into progress updates (see the module docstring)."""

    def __init__(
        self,
        progress: Progress | None,
        *,
        greater_is_better: bool,
        allotted: float | None,
        planned: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.progress = progress
        self.gib = greater_is_better
        self.allotted = allotted
        self.planned = planned
        self.clock = clock
        self.started = clock()
        self.best: tuple[str, float] | None = None
        self.finished = 0
        self.evaluator: Evaluator | None = None

    def __call__(self, outcome: Outcome | None) -> None:
        if self.progress is None:
            return
        note = ""
        if outcome is not None:
            self.finished += 1
            note = self._line(outcome)
            mean = outcome.mean if outcome.state == "complete" else None
            better = (
                mean is not None
                and not math.isnan(mean)
                and (
                    self.best is None or (mean > self.best[1] if self.gib else mean < self.best[1])
                )
            )
            if better:
                assert mean is not None
                self.best = (outcome.config.label, mean)
        elapsed = self.clock() - self.started
        parts = []
        if self.allotted is not None:
            parts.append(f"{_seconds(self.allotted - elapsed)} of {_seconds(self.allotted)} left")
        if self.planned:
            parts.append(f"{self.finished}/{self.planned} models")
        if self.best is not None:
            parts.append(f"best {self.best[0]} {self.best[1]:.4f}")
        now = self._running()
        if now:
            parts.append(f"fitting {now}")
        done: Any = round(elapsed, 1)
        self.progress(done, self.allotted, " · ".join(parts), note=note)

    def _running(self) -> str:
        if self.evaluator is None:
            return ""
        labels: list[str] = []
        for outcome, fold in self.evaluator._running.values():
            text = f"{outcome.config.label} (fold {fold + 1}/{self.evaluator.n_folds})"
            if text not in labels:
                labels.append(text)
        return ", ".join(labels[:2]) + (f" +{len(labels) - 2}" if len(labels) > 2 else "")

    def _line(self, outcome: Outcome) -> str:
        label = outcome.config.label
        if outcome.state == "complete" and outcome.mean is not None:
            per_fold = outcome.fit_seconds or 0.0
            return (
                f"{label}: {outcome.mean:.4f} over {len(outcome.folds)} folds "
                f"({per_fold:.1f}s a fold)"
            )
        if outcome.state == "pruned" and outcome.first is not None:
            return f"{label}: pruned after fold 1 ({outcome.first:.4f})"
        return f"{label}: {outcome.state}{f' ({outcome.error})' if outcome.error else ''}"
