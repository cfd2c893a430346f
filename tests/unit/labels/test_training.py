"""The label set as training data: joined to source rows by key, or appended with its row."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import polars as pl

from modelyard.labels.keys import content_key, row_keys
from modelyard.labels.records import LabelRecord, LabelSpec
from modelyard.labels.store import LabelSet
from modelyard.labels.training import join_labels, label_set_digest, label_table

T0 = datetime(2026, 12, 1, tzinfo=UTC)


def test_keys_from_one_or_more_columns_or_from_the_feature_values() -> None:
    frame = pl.DataFrame({"id": [1, 2], "site": ["a", None], "x": ["1", "2"], "y": ["p", "q"]})
    assert row_keys(frame, ["id"]).to_list() == ["1", "2"]
    assert row_keys(frame, ["id", "site"]).to_list() == [
        '["1", "a"]',
        None,
    ]  # as text: CSV and typed agree
    digests = row_keys(frame, [], ["x"]).to_list()
    assert digests[0] == content_key({"x": "1"}) == content_key({"x": 1})  # CSV text == typed
    assert digests[0] != digests[1] and digests[0].startswith("h:")


def test_labels_fill_missing_targets_correct_given_ones_and_add_queued_rows(tmp_path: Path) -> None:
    train = pl.DataFrame({"id": ["1", "2", "3"], "x": ["a", "b", "c"], "y": ["no", None, None]})
    spec = LabelSpec("y", "binary", ("no", "yes"), key_columns=("id",))
    LabelSet(tmp_path).append([
        LabelRecord("1", "yes", "ann", T0, "labelbox"),
        LabelRecord("2", "yes", "ann", T0, "labelbox"),
        LabelRecord("log:9", "no", "ann", T0, "labelbox", extra={"row": {"id": "log:9", "x": "z"}}),
        LabelRecord("gone", "no", "ann", T0, "labelbox"),
    ])  # fmt: skip
    table = label_table(tmp_path, spec, "majority")
    out, unmatched = join_labels(train, table, spec)
    assert out.to_dicts() == [
        {"id": "1", "x": "a", "y": "yes"},  # the reviewed label replaces the source's
        {"id": "2", "x": "b", "y": "yes"},
        {"id": "3", "x": "c", "y": None},  # still unlabelled: validation decides
        {"id": "log:9", "x": "z", "y": "no"},  # a queued row from outside the source
    ]
    assert unmatched == 1


def test_the_digest_changes_with_every_version(tmp_path: Path) -> None:
    empty = label_set_digest(tmp_path)
    LabelSet(tmp_path).append([LabelRecord("1", "yes", "a", T0, "file")])
    one = label_set_digest(tmp_path)
    LabelSet(tmp_path).append([LabelRecord("2", "no", "a", T0, "file")])
    assert len({empty, one, label_set_digest(tmp_path)}) == 3
