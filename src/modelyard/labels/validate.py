"""Imported labels become data: one validation for every format, conflict rules, agreement.

:func:`check` takes what a format's ``load`` read and sorts it: a label is accepted into the
label set only if its row key is known and its value is one of the contract's classes (a
classifier) or a finite number (a regressor). Everything else is quarantined with its reason,
never mapped to something close:

- ``missing row key``: the record has no key;
- ``unknown row key``: no queued or source row has it;
- ``unknown class``: the value is not one of the classes (``"cat "`` is not ``"cat"``, and
  ``"1"`` is not ``1``; the format modules turn a tool's text back into the class it names);
- ``wrong type``: a list, an object, a bool, or text for a regressor; ``not a finite number``;
- ``duplicate``: the same label by the same annotator at the same time as one already in the
  set or earlier in the import (a file imported twice adds nothing).

An annotator who labels a row again (a later time) is not a duplicate: their latest label is
their answer. :func:`resolve` turns the label set into one label per row with the configured
rule when annotators disagree (``majority``, ``latest`` or ``hold`` for review), and
:func:`agreement` reports how often they agree.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from modelyard.labels.formats import Rejected
from modelyard.labels.records import LabelRecord, LabelSpec

ConflictRule = Literal["majority", "latest", "hold"]


@dataclass(frozen=True)
class Quarantined:
    """A label (or an item of a tool's export) kept out of the label set, and why."""

    where: str
    reason: str
    record: LabelRecord | None = None
    item: Any = None


@dataclass
class Checked:
    """The outcome of :func:`check`."""

    accepted: list[LabelRecord] = field(default_factory=list)
    quarantined: list[Quarantined] = field(default_factory=list)


def check(
    records: Sequence[LabelRecord],
    spec: LabelSpec,
    *,
    known_keys: Collection[str] | None,
    existing: Iterable[LabelRecord] = (),
    rejected: Sequence[Rejected] = (),
) -> Checked:
    """Sort ``records`` into accepted and quarantined (see the module docstring).

    ``known_keys``: the row keys a label may name (``None``: any); ``existing``: the labels
    already in the set (for duplicates); ``rejected``: what the format could not read, carried
    into the quarantine as it is.
    """
    out = Checked(quarantined=[Quarantined(r.where, r.reason, item=r.item) for r in rejected])
    seen = {_identity(r) for r in existing}
    for n, record in enumerate(records):
        where = f"label {n}" + (f" (task {record.task})" if record.task else "")
        reason = problem(record, spec, known_keys)
        if reason is None and _identity(record) in seen:
            reason = (
                "duplicate: the same label by the same annotator at the same time is already there"
            )
        if reason is not None:
            out.quarantined.append(Quarantined(where, reason, record))
            continue
        seen.add(_identity(record))
        out.accepted.append(record)
    return out


def problem(record: LabelRecord, spec: LabelSpec, known_keys: Collection[str] | None) -> str | None:
    """Why ``record`` cannot be accepted (``None``: it can), duplicates aside."""
    if not isinstance(record.key, str) or not record.key.strip():
        return "missing row key: the label names no row"
    if known_keys is not None and record.key not in known_keys:
        return f"unknown row key {record.key!r}: no queued or source row has it"
    value = record.label
    if value is None:
        return "no label: the value is empty"
    if spec.task == "regression":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return f"wrong type: expected a number for {spec.target!r}, found {_shown(value)}"
        if not math.isfinite(value):
            return f"not a finite number: {value!r}"
        return None
    if isinstance(value, (dict, list, tuple, bool, float)):
        return f"wrong type: expected one of the classes of {spec.target!r}, found {_shown(value)}"
    classes = spec.classes or ()
    if not any(type(value) is type(c) and value == c for c in classes):
        shown = ", ".join(repr(c) for c in classes[:20]) + (", ..." if len(classes) > 20 else "")
        return f"unknown class {value!r}: the classes of {spec.target!r} are {shown}"
    return None


def _identity(record: LabelRecord) -> tuple[Any, ...]:
    return (record.key, record.annotator, _hashable(record.label), record.at)


def _hashable(value: Any) -> Any:
    try:
        hash(value)
    except TypeError:
        return repr(value)
    return (type(value).__name__, value)


def _shown(value: Any) -> str:
    kind = {dict: "an object", list: "a list", tuple: "a list", bool: "a bool", str: "text"}
    return f"{kind.get(type(value), type(value).__name__)} {value!r}"[:200]


# ----------------------------------------------------------------------------- conflicts


@dataclass(frozen=True)
class RowAgreement:
    """How the annotators of one row answered."""

    key: str
    labels: dict[str, Any]
    """annotator -> their latest label"""
    agree: bool
    top_share: float
    """share of annotators who gave the most frequent label"""


@dataclass(frozen=True)
class Agreement:
    """How often annotators agree, over the rows labelled by two or more of them."""

    rows: list[RowAgreement]
    overall: float | None
    """share of those rows where every annotator gave the same label (``None``: no such row)"""
    fleiss_kappa: float | None
    """Fleiss' kappa (with a varying number of annotators per row; Scott's pi for two): 1 is
    perfect agreement, 0 what chance gives. ``None`` for a regressor, or without such rows."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows_with_several_annotators": len(self.rows),
            "all_agree_share": self.overall,
            "fleiss_kappa": self.fleiss_kappa,
            "disagreements": [
                {"key": r.key, "labels": r.labels, "top_share": r.top_share}
                for r in self.rows
                if not r.agree
            ],
        }


@dataclass
class Resolution:
    """One label per row for training, the rows held for review, and the agreement."""

    labels: dict[str, Any]
    held: dict[str, dict[str, Any]]
    """key -> annotator -> label, for rows the rule could not (or must not) decide"""
    agreement: Agreement
    rows: dict[str, dict[str, Any]] = field(default_factory=dict)
    """key -> the row's values, for labelled rows that carry them (``extra["row"]``)"""


def latest_by_annotator(records: Iterable[LabelRecord]) -> dict[str, dict[str, LabelRecord]]:
    """key -> annotator -> that annotator's latest record for the row."""
    out: dict[str, dict[str, LabelRecord]] = {}
    for record in records:
        mine = out.setdefault(record.key, {})
        before = mine.get(record.annotator)
        if before is None or record.at >= before.at:
            mine[record.annotator] = record
    return out


def resolve(records: Iterable[LabelRecord], spec: LabelSpec, rule: ConflictRule) -> Resolution:
    """One label per row from every annotator's latest label, by ``rule`` where they differ.

    ``majority``: the most frequent label (for a regressor: the median); a tie is held.
    ``latest``: the most recent label (a tie in time is held). ``hold``: every disagreement
    is held for review. Rows where all annotators agree are never held.
    """
    if rule not in ("majority", "latest", "hold"):
        raise ValueError(f"unknown conflict rule {rule!r}: expected majority, latest or hold")
    grouped = latest_by_annotator(records)
    labels: dict[str, Any] = {}
    held: dict[str, dict[str, Any]] = {}
    rows: dict[str, dict[str, Any]] = {}
    for key in sorted(grouped):
        by = grouped[key]
        for record in by.values():
            if isinstance(record.extra.get("row"), dict):
                rows[key] = record.extra["row"]
        values = [r.label for r in by.values()]
        counts = Counter(_hashable(v) for v in values)
        if len(counts) == 1:
            labels[key] = values[0]
            continue
        decided = _decide(list(by.values()), counts, spec, rule)
        if decided is _HOLD:
            held[key] = {a: r.label for a, r in sorted(by.items())}
        else:
            labels[key] = decided
    return Resolution(labels, held, agreement_of(grouped, spec), rows)


_HOLD = object()


def _decide(records: list[LabelRecord], counts: Counter[Any], spec: LabelSpec, rule: str) -> Any:
    if rule == "hold":
        return _HOLD
    if rule == "latest":
        newest = max(r.at for r in records)
        last = [r for r in records if r.at == newest]
        values = {_hashable(r.label) for r in last}
        return last[0].label if len(values) == 1 else _HOLD
    if spec.task == "regression":
        import statistics

        return float(statistics.median(float(r.label) for r in records))
    (top, n), *rest = counts.most_common()
    if rest and rest[0][1] == n:
        return _HOLD
    return next(r.label for r in records if _hashable(r.label) == top)


def agreement(records: Iterable[LabelRecord], spec: LabelSpec) -> Agreement:
    """The agreement of the annotators' latest labels (see :class:`Agreement`)."""
    return agreement_of(latest_by_annotator(records), spec)


def agreement_of(grouped: dict[str, dict[str, LabelRecord]], spec: LabelSpec) -> Agreement:
    rows: list[RowAgreement] = []
    tables: list[Counter[Any]] = []
    for key in sorted(grouped):
        by = grouped[key]
        if len(by) < 2:
            continue
        counts = Counter(_hashable(r.label) for r in by.values())
        top = counts.most_common(1)[0][1]
        rows.append(
            RowAgreement(
                key, {a: r.label for a, r in sorted(by.items())}, len(counts) == 1, top / len(by)
            )
        )
        tables.append(counts)
    if not rows:
        return Agreement([], None, None)
    overall = sum(r.agree for r in rows) / len(rows)
    kappa = None if spec.task == "regression" else fleiss_kappa(tables)
    return Agreement(rows, overall, kappa)


def fleiss_kappa(tables: Sequence[Counter[Any]]) -> float | None:
    """Fleiss' kappa of rows given as ``label -> number of annotators`` (each >= 2 in all).

    >>> fleiss_kappa([Counter({"a": 2}), Counter({"b": 2})])
    1.0
    >>> round(fleiss_kappa([Counter({"a": 1, "b": 1}), Counter({"a": 1, "b": 1})]), 3)
    -1.0
    """
    items = [t for t in tables if sum(t.values()) >= 2]
    if not items:
        return None
    per_item = []
    totals: Counter[Any] = Counter()
    for t in items:
        n = sum(t.values())
        per_item.append((sum(c * c for c in t.values()) - n) / (n * (n - 1)))
        totals.update(t)
    observed = sum(per_item) / len(per_item)
    grand = sum(totals.values())
    expected = sum((c / grand) ** 2 for c in totals.values())
    if expected >= 1.0:
        return 1.0 if observed >= 1.0 else None
    return (observed - expected) / (1.0 - expected)
