"""The manifest is the commit point: crashes at any step leave no half batch, and replays are
detected."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import polars as pl
import pytest

from modelyard.config.schema import Source, ValidationSection
from modelyard.data.sources import fingerprint_source, read_source
from modelyard.data.streaming.ingester import Ingester
from modelyard.data.streaming.manifest import (
    MANIFEST,
    DatasetWriter,
    load_manifest,
    read_dataset,
    read_quarantine,
)
from modelyard.data.streaming.records import Chunk, Decoder
from modelyard.errors import DataError

from ._project import CONTRACT, message

QSCHEMA = {
    "_source": pl.String,
    "_payload": pl.String,
    "_encoding": pl.String,
    "_reasons": pl.String,
    "_batch": pl.Int64,
}


class NullSource:
    """A source with nothing to say (for tests of the checker)."""

    generation = 0
    duplicates = 0

    def open(self, manifest: object) -> None: ...
    def poll(self, max_records: int, timeout: float) -> Chunk | None:
        return None

    def pending_positions(self) -> dict[str, dict[int, int]]:
        return {}

    def committed(self, manifest: object) -> None: ...
    def discard(self) -> None: ...
    def close(self) -> None: ...


class ListSource(NullSource):
    """A fake single-partition topic: offsets 0..n-1, replaying from the manifest position."""

    def __init__(self, payloads: list[bytes], *, replay_from: int = 0) -> None:
        self.payloads = payloads
        self.decoder = Decoder(["id", "x", "label"])
        self.pos = 0
        self.replay_from = replay_from
        self.pending: dict[int, int] = {}

    def open(self, manifest: object) -> None:
        # a redelivering broker: starts *before* the committed position
        self.next = load_manifest(self.root).next_offset("t", 0) or 0
        self.pos = min(self.next, self.replay_from)

    def poll(self, max_records: int, timeout: float) -> Chunk | None:
        items = []
        while self.pos < len(self.payloads) and len(items) < max_records:
            if self.pos >= self.next:  # replay detection as KafkaSource does it
                items.append((f"t/0@{self.pos}", self.payloads[self.pos]))
                self.next = self.pos + 1
                self.pending[0] = self.pos + 1
            else:
                self.duplicates += 1
            self.pos += 1
        return self.decoder.decode(items) if items else None

    def pending_positions(self) -> dict[str, dict[int, int]]:
        return {"t": dict(self.pending)} if self.pending else {}

    def committed(self, manifest: object) -> None:
        self.pending.clear()


def _run(root: Path, source: ListSource, max_rows: int = 10) -> None:
    source.root = root  # type: ignore[attr-defined]
    ing = Ingester(
        source,
        DatasetWriter(root),
        CONTRACT,
        ValidationSection(),
        max_rows=max_rows,
        max_seconds=0.1,
    )
    ing.run(until_idle=0.0)


def _ids(root: Path) -> list[int]:
    data = read_dataset(root)["id"].to_list()
    quarantine = [json.loads(p)["id"] for p in read_quarantine(root)["_payload"].to_list()]
    return sorted(data + quarantine)


def test_commit_writes_parts_and_manifest(tmp_path: Path) -> None:
    payloads = [message(i) for i in range(25)] + [message(25, x="bad")]
    _run(tmp_path, ListSource(payloads))
    manifest = load_manifest(tmp_path)
    assert manifest.batch == 3
    assert manifest.kafka == {"t": {0: 26}}
    assert manifest.records == 26
    assert _ids(tmp_path) == list(range(26))
    assert read_quarantine(tmp_path).height == 1
    assert not list(tmp_path.rglob(".tmp-*"))


def test_replayed_records_are_detected_and_not_duplicated(tmp_path: Path) -> None:
    payloads = [message(i) for i in range(30)]
    _run(tmp_path, ListSource(payloads[:20]))
    source = ListSource(payloads, replay_from=0)  # the broker redelivers everything
    _run(tmp_path, source)
    assert source.duplicates == 20
    assert _ids(tmp_path) == list(range(30))


@pytest.mark.parametrize("crash_at", ["part", "manifest-tmp", "manifest-replace"])
def test_crash_at_any_step_leaves_no_half_batch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, crash_at: str
) -> None:
    payloads = [message(i) for i in range(30)]
    _run(tmp_path, ListSource(payloads[:10]))
    before = (tmp_path / MANIFEST).read_bytes()

    real_replace = Path.replace
    real_fsync = os.fsync

    class Crash(BaseException):
        pass

    def replace(self: Path, target: Path) -> Path:
        name = Path(target).name
        if crash_at == "part" and name.startswith("part-"):
            raise Crash
        if crash_at == "manifest-replace" and name == MANIFEST:
            raise Crash
        return real_replace(self, target)

    calls = {"n": 0}

    def fsync(fd: int) -> None:
        calls["n"] += 1
        if crash_at == "manifest-tmp" and calls["n"] == 3:  # after the data part, in the manifest
            raise Crash
        real_fsync(fd)

    monkeypatch.setattr(Path, "replace", replace)
    monkeypatch.setattr(os, "fsync", fsync)
    with pytest.raises(Crash):
        _run(tmp_path, ListSource(payloads))
    monkeypatch.undo()
    assert (tmp_path / MANIFEST).read_bytes() == before  # nothing committed
    # an uncommitted part may be on disk, but readers do not see it
    assert read_dataset(tmp_path).height == 10
    _run(tmp_path, ListSource(payloads))  # restart: garbage collected, resumed
    assert _ids(tmp_path) == list(range(30))
    listed = {p.path for p in load_manifest(tmp_path).parts}
    on_disk = {f.relative_to(tmp_path).as_posix() for f in tmp_path.rglob("part-*.parquet")}
    assert on_disk == listed


def test_stray_part_from_a_killed_writer_is_collected(tmp_path: Path) -> None:
    _run(tmp_path, ListSource([message(i) for i in range(5)]))
    stray = tmp_path / "ingestion_date=2020-01-01" / "part-00000009-dead-000.parquet"
    stray.parent.mkdir()
    pl.DataFrame({"id": [99]}).write_parquet(stray)
    (tmp_path / ".tmp-abc-part-x.parquet").write_bytes(b"half")
    keep = tmp_path / "notes.txt"
    keep.write_text("mine")
    assert read_dataset(tmp_path)["id"].to_list() == [0, 1, 2, 3, 4]
    writer = DatasetWriter(tmp_path)
    writer.open()
    writer.close()
    assert not stray.exists()
    assert not (tmp_path / ".tmp-abc-part-x.parquet").exists()
    assert keep.exists()


def test_one_writer_per_dataset(tmp_path: Path) -> None:
    with DatasetWriter(tmp_path), pytest.raises(DataError, match="another ingester"):
        DatasetWriter(tmp_path).open()


def test_partition_by_column_and_dataset_as_a_source(tmp_path: Path) -> None:
    writer = DatasetWriter(tmp_path, partition_by="label")
    with writer:
        df = pl.DataFrame({"id": [1, 2, 3], "x": [1.0, 2.0, 3.0], "label": ["a", "b", None]})
        writer.commit(df, pl.DataFrame(schema=QSCHEMA), records=3)
    dirs = sorted(p.name for p in tmp_path.iterdir() if p.is_dir() and "=" in p.name)
    assert dirs == ["label=__null__", "label=a", "label=b"]
    source = Source(dataset=tmp_path)
    first = fingerprint_source(source)
    assert sorted(read_source(source)["id"].to_list()) == [1, 2, 3]
    with writer:
        writer.commit(df.head(1), pl.DataFrame(schema=QSCHEMA), records=1)
    assert fingerprint_source(source) != first
    assert read_source(source).height == 4


def test_reading_a_dataset_that_is_not_there(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no ingested dataset"):
        read_dataset(tmp_path / "nope")
    (tmp_path / MANIFEST).write_text("{not json")
    with pytest.raises(DataError, match="manifest is damaged"):
        read_dataset(tmp_path)


def test_stop_event_commits_the_buffered_batch(tmp_path: Path) -> None:
    stop = threading.Event()
    source = ListSource([message(i) for i in range(7)])
    source.root = tmp_path  # type: ignore[attr-defined]
    ing = Ingester(
        source,
        DatasetWriter(tmp_path),
        CONTRACT,
        ValidationSection(),
        max_rows=1000,
        max_seconds=60,
    )
    timer = threading.Timer(0.5, stop.set)
    timer.start()
    stats = ing.run(stop_event=stop)
    assert stats.stopped_by == "stop"
    assert stats.records == 7
    assert _ids(tmp_path) == list(range(7))
