"""One validation for every format; conflict rules; annotator agreement."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelyard.labels.formats import Rejected
from modelyard.labels.records import LabelRecord, LabelSpec
from modelyard.labels.validate import agreement, check, fleiss_kappa, resolve

T0 = datetime(2026, 12, 1, tzinfo=UTC)
CLS = LabelSpec("y", "multiclass", ("cat", "dog", 3))
REG = LabelSpec("price", "regression", None)


def rec(key: str, label: object, who: str = "a", minute: int = 0) -> LabelRecord:
    return LabelRecord(key, label, who, T0 + timedelta(minutes=minute), "labelbox")


def test_bad_labels_are_quarantined_with_their_reason_never_mapped() -> None:
    records = [
        rec("r1", "cat"),
        rec("r2", "Cat"),  # not mapped to "cat"
        rec("r3", "3"),  # not mapped to 3
        rec("r4", 3),
        rec("", "dog"),
        rec("zz", "dog"),
        rec("r5", ["cat"]),
        rec("r6", True),
        rec("r7", None),
        rec("r8", 2.0),
    ]
    known = {f"r{i}" for i in range(1, 9)}
    out = check(records, CLS, known_keys=known)
    assert [r.key for r in out.accepted] == ["r1", "r4"]
    reasons = {q.record.key: q.reason for q in out.quarantined if q.record}
    assert reasons["r2"].startswith("unknown class 'Cat'")
    assert reasons["r3"].startswith("unknown class '3'")
    assert reasons[""].startswith("missing row key")
    assert reasons["zz"].startswith("unknown row key 'zz'")
    assert reasons["r5"].startswith("wrong type") and "a list" in reasons["r5"]
    assert reasons["r6"].startswith("wrong type")
    assert reasons["r7"].startswith("no label")
    assert reasons["r8"].startswith("wrong type")


def test_regression_labels_must_be_finite_numbers() -> None:
    out = check([rec("a", 1), rec("b", 2.5), rec("c", "2.5"), rec("d", float("nan")),
                 rec("e", True)], REG, known_keys=None)  # fmt: skip
    assert [r.key for r in out.accepted] == ["a", "b"]
    assert [q.reason.split(":")[0] for q in out.quarantined] == [
        "wrong type", "not a finite number", "wrong type"]  # fmt: skip


def test_duplicates_are_quarantined_within_an_import_and_against_the_set() -> None:
    first = check([rec("r1", "cat"), rec("r1", "cat")], CLS, known_keys=None)
    assert len(first.accepted) == 1 and first.quarantined[0].reason.startswith("duplicate")
    again = check([rec("r1", "cat"), rec("r1", "dog", minute=5)], CLS, known_keys=None,
                  existing=first.accepted)  # fmt: skip
    assert [r.label for r in again.accepted] == ["dog"]  # a relabel later is no duplicate
    assert again.quarantined[0].reason.startswith("duplicate")


def test_what_a_format_could_not_read_goes_to_the_quarantine_too() -> None:
    out = check([], CLS, known_keys=None, rejected=[Rejected("f:3", "not JSON", "{x")])
    assert [(q.where, q.reason, q.item) for q in out.quarantined] == [("f:3", "not JSON", "{x")]


def votes() -> list[LabelRecord]:
    return [
        rec("agree", "cat", "a"), rec("agree", "cat", "b"),
        rec("two-one", "cat", "a", 1), rec("two-one", "dog", "b", 2), rec("two-one", "cat", "c", 3),
        rec("tie", "cat", "a", 1), rec("tie", "dog", "b", 9),
        rec("alone", "dog", "a"),
        rec("changed", "dog", "a", 1), rec("changed", "cat", "a", 5), rec("changed", "cat", "b", 2),
    ]  # fmt: skip


def test_majority_takes_the_most_frequent_and_holds_a_tie() -> None:
    r = resolve(votes(), CLS, "majority")
    assert r.labels == {"agree": "cat", "two-one": "cat", "alone": "dog", "changed": "cat"}
    assert r.held == {"tie": {"a": "cat", "b": "dog"}}


def test_latest_takes_the_most_recent() -> None:
    r = resolve(votes(), CLS, "latest")
    assert r.labels["two-one"] == "cat" and r.labels["tie"] == "dog" and r.held == {}


def test_hold_keeps_every_disagreement_out_for_review() -> None:
    r = resolve(votes(), CLS, "hold")
    assert set(r.held) == {"two-one", "tie"}
    assert r.labels == {
        "agree": "cat",
        "alone": "dog",
        "changed": "cat",
    }  # an annotator's latest counts


def test_regression_majority_is_the_median() -> None:
    r = resolve([rec("k", 1.0, "a"), rec("k", 2.0, "b"), rec("k", 10.0, "c")], REG, "majority")
    assert r.labels == {"k": 2.0}


def test_unknown_rule_is_refused() -> None:
    with pytest.raises(ValueError, match="conflict rule"):
        resolve([], CLS, "vote")  # type: ignore[arg-type]


def test_agreement_report_per_row_and_overall() -> None:
    a = agreement(votes(), CLS)
    rows = {r.key: r for r in a.rows}
    assert set(rows) == {"agree", "two-one", "tie", "changed"}  # "alone" has one annotator
    assert rows["two-one"].top_share == pytest.approx(2 / 3) and not rows["two-one"].agree
    assert a.overall == pytest.approx(2 / 4)
    assert a.fleiss_kappa is not None and -1 <= a.fleiss_kappa <= 1
    report = a.to_dict()
    assert report["rows_with_several_annotators"] == 4
    assert {d["key"] for d in report["disagreements"]} == {"two-one", "tie"}
    assert agreement([rec("x", "cat")], CLS).overall is None


def test_fleiss_kappa_matches_a_worked_example() -> None:
    """Fleiss (1971)'s style check on a small table computed by hand: two items, three raters,
    P_i = (1, 1/3), P_bar = 2/3; p = (4/6, 2/6), P_e = 5/9; kappa = (2/3 - 5/9) / (4/9) = 1/4."""
    from collections import Counter

    assert fleiss_kappa([Counter({"a": 3}), Counter({"a": 1, "b": 2})]) == pytest.approx(0.25)
    assert fleiss_kappa([]) is None


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.sampled_from("abcd"), st.sampled_from(["cat", "dog", 3]),
                          st.sampled_from(["x", "y", "z"]), st.integers(0, 5)), max_size=30),
       st.sampled_from(["majority", "latest", "hold"]))  # fmt: skip
def test_every_row_is_either_resolved_or_held_with_a_label_someone_gave(data, rule) -> None:
    records = [rec(k, label, who, minute) for k, label, who, minute in data]
    r = resolve(records, CLS, rule)
    keys = {x.key for x in records}
    assert set(r.labels) | set(r.held) == keys and not set(r.labels) & set(r.held)
    for key, label in r.labels.items():
        assert label in {x.label for x in records if x.key == key}
