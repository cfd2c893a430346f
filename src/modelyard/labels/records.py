"""What the label loop passes around: a row asked to be labelled, and a label given for a row."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class QueueItem:
    """One row of the annotation queue, with why it is worth a label.

    ``key`` identifies the row (its id columns, or a content hash when it has none) and is
    what an imported label is matched back on. ``prediction`` is the champion's answer (a
    class, or a number for regression), ``probabilities`` its class probabilities when it
    has them. ``score`` orders the queue (higher first); ``reason`` says in words why
    (e.g. ``"entropy 0.69 of 0.69; margin 0.02"``).
    """

    key: str
    row: dict[str, Any]
    score: float
    reason: str
    model_version: str
    prediction: Any = None
    probabilities: dict[str, float] | None = None


@dataclass(frozen=True)
class LabelRecord:
    """One label for one row, as given by one annotator at one time.

    ``source`` names where it came from (``"label-studio"``, ``"labelbox"``,
    ``"label-studio-webhook"``, ``"file"``); ``task`` is the tool's own id for the task,
    when it has one, so that a label can be traced back to it.
    """

    key: str
    label: Any
    annotator: str
    at: datetime
    source: str
    task: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class LabelSpec:
    """What a label must be, for the tools that collect it and for checking it on import.

    ``task`` is ``"binary"``, ``"multiclass"`` or ``"regression"``; ``classes`` the known
    classes of a classifier, in the model's order (``None`` for regression). Imported labels
    are checked against these: an unknown class is quarantined with its reason, never mapped.
    """

    target: str
    task: str
    classes: tuple[Any, ...] | None
    key_columns: tuple[str, ...] = ()
    features: tuple[str, ...] = ()
