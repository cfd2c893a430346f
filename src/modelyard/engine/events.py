"""Events the runner emits while it plans and runs; the CLI turns them into progress output."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class StepStarted:
    step: str
    description: str
    index: int
    total: int


@dataclass(frozen=True)
class StepProgress:
    step: str
    done: float
    total: float | None
    message: str
    note: str = ""
    """A finished unit of work worth a line of its own in a log (e.g. a model's CV score)."""


@dataclass(frozen=True)
class StepFinished:
    step: str
    status: Literal["ran", "cached"]
    seconds: float


@dataclass(frozen=True)
class StepFailedEvent:
    step: str
    error: str
    seconds: float


Event = StepStarted | StepProgress | StepFinished | StepFailedEvent
Listener = Callable[[Event], None]


def ignore(_: Event) -> None:
    """The listener used when nobody listens."""


class Progress:
    """Handed to a step that declares a ``progress`` parameter.

    >>> p = Progress("train", ignore)
    >>> p.update(3, 10, "fold 3/10")
    """

    def __init__(self, step: str, listener: Listener) -> None:
        self._step = step
        self._listener = listener

    def update(
        self, done: float, total: float | None = None, message: str = "", note: str = ""
    ) -> None:
        self._listener(StepProgress(self._step, done, total, message, note))
