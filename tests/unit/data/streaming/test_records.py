"""Decoding of hostile messages: every record ends in the data or the quarantine, nothing
crashes."""

from __future__ import annotations

import base64
import json

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from modelyard.config.schema import ValidationSection
from modelyard.data.streaming.ingester import Ingester
from modelyard.data.streaming.manifest import DatasetWriter
from modelyard.data.streaming.records import Decoder, payload_text

from ._project import CONTRACT, message
from .test_manifest import NullSource

COLUMNS = ["id", "x", "label"]


def _checker() -> Ingester:
    import tempfile
    from pathlib import Path

    writer = DatasetWriter(Path(tempfile.mkdtemp()))
    return Ingester(NullSource(), writer, CONTRACT, ValidationSection())


HOSTILE: list[tuple[bytes | None, str]] = [
    (None, "empty message"),
    (b"", "empty message"),
    (b"not json at all", "not JSON"),
    (b'{"id": 1, "x": ', "not JSON"),
    (b"\xff\xfe\x00garbage", "not UTF-8"),
    (b"[1, 2, 3]", "not an object"),
    (b"42", "not an object"),
    (b'{"id": 1, "x": 2.0, "label": "a", "extra": 1}', "unexpected field 'extra'"),
    (b"x" * 2000, "larger than ingest.max_message_bytes"),
    (b"[" * 100_000 + b"]" * 100_000, "larger than"),
]


def test_hostile_payloads_are_rejected_with_reasons() -> None:
    decoder = Decoder(COLUMNS, max_bytes=1000)
    chunk = decoder.decode((f"m{i}", p) for i, (p, _) in enumerate(HOSTILE))
    assert chunk.frame.height == 0
    assert len(chunk.rejected) == len(HOSTILE)
    for rej, (_, reason) in zip(chunk.rejected, HOSTILE, strict=True):
        assert reason in rej.reason, (rej, reason)


def test_deep_nesting_within_size_limit_does_not_crash() -> None:
    deep = b'{"id": ' + b"[" * 50_000 + b"]" * 50_000 + b"}"
    chunk = Decoder(COLUMNS, max_bytes=1 << 20).decode([("m", deep)])
    assert chunk.records == 1


def test_wrong_types_and_missing_fields_go_to_quarantine_with_raw_payload() -> None:
    payloads = [
        message(1),
        message(2, x="not a number"),  # wrong type
        json.dumps({"x": 3.0, "label": "a"}).encode(),  # missing non-nullable id
        message(4, x=1000.0),  # out of range
        message(5, label="zzz"),  # unknown category
        json.dumps({"id": 6, "x": 1.5}).encode(),  # missing nullable field: valid
        b"\xff\xfe",
    ]
    chunk = Decoder(COLUMNS).decode((f"k@{i}", p) for i, p in enumerate(payloads))
    valid, quarantine = _checker().check(chunk, batch=1)
    assert sorted(valid["id"].to_list()) == [1, 6]
    assert valid.schema["x"] == pl.Float64
    assert quarantine.height == 5
    by_source = {r["_source"]: r for r in quarantine.iter_rows(named=True)}
    assert "type" in by_source["k@1"]["_reasons"] or "x" in by_source["k@1"]["_reasons"]
    assert json.loads(by_source["k@1"]["_payload"]) == json.loads(payloads[1])
    assert by_source["k@6"]["_encoding"] == "base64"
    assert base64.b64decode(by_source["k@6"]["_payload"]) == b"\xff\xfe"


def test_payload_text() -> None:
    assert payload_text(b"abc") == ("abc", "utf8")
    assert payload_text(None) == (None, "none")
    assert payload_text(b"\xff")[1] == "base64"


@settings(max_examples=100, deadline=None)
@given(st.lists(st.one_of(st.binary(max_size=64), st.none()), max_size=20))
def test_any_bytes_end_in_exactly_one_place(payloads: list[bytes | None]) -> None:
    chunk = Decoder(COLUMNS, max_bytes=48).decode((str(i), p) for i, p in enumerate(payloads))
    assert chunk.records == len(payloads)
    valid, quarantine = _checker().check(chunk, batch=1)
    assert valid.height + quarantine.height == len(payloads)
