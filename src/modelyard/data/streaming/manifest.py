"""The manifest of an ingested dataset: the commit point of continuous ingestion.

A dataset is a folder of Parquet parts under ``partition=value/`` folders plus
``_manifest.json``, which lists the committed parts (valid rows and quarantined records) and the
source positions they cover: Kafka ``topic -> partition -> next offset``, or the files of a
watched folder with their signature (size and mtime, or ETag).

A batch commits in this order (:meth:`DatasetWriter.commit`):

1. every part is written under a temporary name, fsynced, and renamed to its final name;
2. the folders holding them are fsynced;
3. the new manifest is written to a temporary file, fsynced, and ``os.replace``-d over the old
   one, and the dataset folder is fsynced.

Step 3 is the commit: a crash before it leaves part files that no manifest lists; readers
ignore them and the next writer deletes them (:meth:`DatasetWriter.open`). The source
positions are in the same manifest, so a restarted ingester resumes exactly after the last
committed record, and a record replayed by the source (offset below the manifest's, a file
already seen) is detected and skipped: each record lands exactly once in data + quarantine.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import os
import urllib.parse
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal

import polars as pl

from modelyard.errors import DataError

__all__ = [
    "MANIFEST",
    "DatasetWriter",
    "Manifest",
    "Part",
    "fingerprint_dataset",
    "load_manifest",
    "read_dataset",
    "read_quarantine",
]

MANIFEST = "_manifest.json"
"""The manifest's file name, in the dataset folder."""
MANIFEST_FORMAT = 1
_LOCK = ".lock"
_TMP_PREFIX = ".tmp-"
_PART_PREFIX = "part-"
_NULL_PARTITION = "__null__"

QUARANTINE_SCHEMA: dict[str, pl.DataType] = {
    "_source": pl.String(),
    "_payload": pl.String(),
    "_encoding": pl.String(),
    "_reasons": pl.String(),
    "_batch": pl.Int64(),
}
"""Columns of the quarantine: where the record came from, its raw payload (``utf8`` text,
``base64`` bytes, or ``json`` of a file row's raw values), why it is invalid, its batch."""


@dataclass(frozen=True)
class Part:
    """One committed Parquet file."""

    path: str
    """Relative to the dataset folder (``ingestion_date=2026-11-26/part-....parquet``)."""
    rows: int
    kind: Literal["data", "quarantine"]
    batch: int
    size: int


@dataclass
class Manifest:
    """The committed state of a dataset."""

    root: Path
    batch: int = 0
    """Number of the last committed batch (0: none)."""
    parts: list[Part] = field(default_factory=list)
    kafka: dict[str, dict[int, int]] = field(default_factory=dict)
    """Kafka positions: topic -> partition -> the next offset to read."""
    files: dict[str, str] = field(default_factory=dict)
    """Files of a watched folder already ingested -> their signature."""
    records: int = 0
    """Records ingested in total (valid + quarantined)."""
    committed_at: str | None = None

    def data_parts(self) -> list[Part]:
        return [p for p in self.parts if p.kind == "data"]

    def quarantine_parts(self) -> list[Part]:
        return [p for p in self.parts if p.kind == "quarantine"]

    def next_offset(self, topic: str, partition: int) -> int | None:
        """The first offset of ``topic``/``partition`` not yet in the dataset."""
        return self.kafka.get(topic, {}).get(partition)

    def is_replay(self, topic: str, partition: int, offset: int) -> bool:
        """Whether the record at ``offset`` is already committed."""
        nxt = self.next_offset(topic, partition)
        return nxt is not None and offset < nxt

    def to_json(self) -> dict[str, Any]:
        return {
            "format": MANIFEST_FORMAT,
            "batch": self.batch,
            "committed_at": self.committed_at,
            "records": self.records,
            "kafka": {t: {str(p): o for p, o in ps.items()} for t, ps in self.kafka.items()},
            "files": self.files,
            "parts": [p.__dict__ for p in self.parts],
        }

    @classmethod
    def from_json(cls, root: Path, data: Mapping[str, Any]) -> Manifest:
        return cls(
            root=root,
            batch=int(data["batch"]),
            parts=[Part(**p) for p in data["parts"]],
            kafka={t: {int(p): int(o) for p, o in ps.items()} for t, ps in data["kafka"].items()},
            files=dict(data["files"]),
            records=int(data.get("records", 0)),
            committed_at=data.get("committed_at"),
        )


def load_manifest(root: Path) -> Manifest:
    """The dataset's manifest; an empty one when nothing was committed yet."""
    file = root / MANIFEST
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        return Manifest(root=root)
    except OSError as exc:
        raise DataError(
            "cannot read the dataset manifest", where=str(file), found=str(exc)
        ) from None
    try:
        data = json.loads(text)
        if data.get("format") != MANIFEST_FORMAT:
            raise ValueError(f"format {data.get('format')!r}")
        return Manifest.from_json(root, data)
    except (ValueError, KeyError, TypeError) as exc:
        raise DataError(
            "the dataset manifest is damaged",
            where=str(file),
            expected=f"a modelyard dataset manifest (format {MANIFEST_FORMAT})",
            found=str(exc),
            fix="Restore it from a backup; it is only ever replaced atomically, so a damaged "
            "manifest means it was edited or the disk failed.",
        ) from None


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_atomic(path: Path, write: Any) -> int:
    """Write through ``write(fh)`` into a temp file beside ``path``, fsync, rename; return the
    size. The caller fsyncs the folder."""
    tmp = path.with_name(f"{_TMP_PREFIX}{uuid.uuid4().hex}-{path.name}")
    try:
        with tmp.open("wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        size = tmp.stat().st_size
        tmp.replace(path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    return size


def _partition_dir(column: str, value: Any) -> str:
    if value is None:
        text = _NULL_PARTITION
    elif isinstance(value, dt.datetime | dt.date):
        text = value.isoformat()
    else:
        text = str(value)
    return f"{column}={urllib.parse.quote(text, safe='')}"


class DatasetWriter:
    """Appends batches to a dataset, each committed atomically with its source positions.

    ``partition_by`` is ``ingestion_date`` (the UTC date of the commit, a folder only) or a
    column of the valid rows (kept in the files too). Quarantined records go under
    ``quarantine`` (default ``<root>/_quarantine``), partitioned by ingestion date. One writer
    per dataset: :meth:`open` takes an exclusive lock (released by the OS if the process dies).
    """

    def __init__(
        self, root: Path, *, partition_by: str = "ingestion_date", quarantine: Path | None = None
    ) -> None:
        self.root = Path(root)
        self.partition_by = partition_by
        self.quarantine = Path(quarantine) if quarantine is not None else self.root / "_quarantine"
        self.manifest = Manifest(root=self.root)
        self._lock: IO[bytes] | None = None

    # ------------------------------------------------------------------ lifecycle

    def open(self) -> Manifest:
        """Lock the dataset, load its manifest and delete uncommitted part files."""
        import fcntl

        self.root.mkdir(parents=True, exist_ok=True)
        self.quarantine.mkdir(parents=True, exist_ok=True)
        lock = (self.root / _LOCK).open("ab")
        try:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            lock.close()
            raise DataError(
                "another ingester is writing this dataset",
                where=str(self.root),
                fix="Stop the other `modelyard ingest --follow`, or give this one another "
                "ingest.dataset.",
            ) from None
        self._lock = lock
        self.manifest = load_manifest(self.root)
        self.collect_garbage()
        return self.manifest

    def close(self) -> None:
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    def __enter__(self) -> DatasetWriter:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def collect_garbage(self) -> list[Path]:
        """Delete part and temp files that the manifest does not list (left by a crash)."""
        keep = {(self.root / p.path).resolve() for p in self.manifest.parts}
        removed: list[Path] = []
        for folder in {self.root, self.quarantine}:
            for file in _walk(folder):
                name = file.name
                if not (name.startswith(_TMP_PREFIX) or name.startswith(_PART_PREFIX)):
                    continue
                if file.resolve() in keep:
                    continue
                with contextlib.suppress(FileNotFoundError):
                    file.unlink()
                    removed.append(file)
        return removed

    # ------------------------------------------------------------------ commit

    def commit(
        self,
        valid: pl.DataFrame,
        quarantine: pl.DataFrame,
        *,
        records: int,
        kafka: Mapping[str, Mapping[int, int]] | None = None,
        files: Mapping[str, str] | None = None,
        now: dt.datetime | None = None,
    ) -> Manifest:
        """Write one batch and commit it with the new source positions (see module doc)."""
        now = now or dt.datetime.now(dt.UTC)
        batch = self.manifest.batch + 1
        token = uuid.uuid4().hex[:12]
        parts: list[Part] = []
        folders: set[Path] = set()
        if valid.height:
            for key, frame in self._partitions(valid, now):
                folder = self.root / key
                parts.append(
                    self._write_part(
                        folder, frame, "data", batch=batch, token=token, index=len(parts)
                    )
                )
                folders.add(folder)
        if quarantine.height:
            folder = self.quarantine / _partition_dir("ingestion_date", now.date())
            parts.append(
                self._write_part(
                    folder, quarantine, "quarantine", batch=batch, token=token, index=len(parts)
                )
            )
            folders.add(folder)
        for folder in folders:
            _fsync_dir(folder)
        new = Manifest(
            root=self.root,
            batch=batch,
            parts=[*self.manifest.parts, *parts],
            kafka={t: dict(ps) for t, ps in self.manifest.kafka.items()},
            files={**self.manifest.files, **(files or {})},
            records=self.manifest.records + records,
            committed_at=now.isoformat(),
        )
        for topic, positions in (kafka or {}).items():
            current = new.kafka.setdefault(topic, {})
            for partition, offset in positions.items():
                current[partition] = max(offset, current.get(partition, 0))
        body = json.dumps(new.to_json(), separators=(",", ":")).encode()
        _write_atomic(self.root / MANIFEST, lambda fh: fh.write(body))
        _fsync_dir(self.root)  # the commit point is durable
        self.manifest = new
        return new

    def _partitions(
        self, valid: pl.DataFrame, now: dt.datetime
    ) -> Iterator[tuple[str, pl.DataFrame]]:
        if self.partition_by == "ingestion_date":
            yield _partition_dir("ingestion_date", now.date()), valid
            return
        for (value,), frame in valid.group_by([self.partition_by], maintain_order=True):
            yield _partition_dir(self.partition_by, value), frame

    def _write_part(
        self,
        folder: Path,
        frame: pl.DataFrame,
        kind: Literal["data", "quarantine"],
        *,
        batch: int,
        token: str,
        index: int,
    ) -> Part:
        folder.mkdir(parents=True, exist_ok=True)
        file = folder / f"{_PART_PREFIX}{batch:08d}-{token}-{index:03d}.parquet"
        size = _write_atomic(file, lambda fh: frame.write_parquet(fh, compression="zstd"))
        rel = os.path.relpath(file, self.root)
        return Part(path=Path(rel).as_posix(), rows=frame.height, kind=kind, batch=batch, size=size)


def _walk(folder: Path) -> Iterator[Path]:
    if not folder.is_dir():
        return
    for dirpath, _dirs, names in os.walk(folder):
        for name in names:
            yield Path(dirpath) / name


# ---------------------------------------------------------------------- reading


def _read_parts(root: Path, parts: list[Part], what: str) -> pl.DataFrame:
    frames = []
    for part in parts:
        file = root / part.path
        try:
            frames.append(pl.read_parquet(file))
        except (OSError, pl.exceptions.PolarsError) as exc:
            raise DataError(
                f"a committed {what} part of the dataset cannot be read",
                where=str(file),
                found=str(exc).splitlines()[0],
                fix="The manifest lists it: restore the file, or the dataset from a backup.",
            ) from None
    if not frames:
        return pl.DataFrame()
    try:
        return pl.concat(frames, how="vertical_relaxed")
    except pl.exceptions.PolarsError:
        return pl.concat(frames, how="diagonal_relaxed")


def read_dataset(root: Path) -> pl.DataFrame:
    """The valid rows of an ingested dataset: only the parts its manifest lists (files of an
    interrupted batch are invisible). The ``ingestion_date`` partition is a folder only, not a
    column; a partition column of the data is in the files."""
    root = Path(root)
    manifest = load_manifest(root)
    if not (root / MANIFEST).exists():
        raise DataError(
            "no ingested dataset here",
            where=str(root),
            expected=f"a folder with {MANIFEST} (written by `modelyard ingest --follow`)",
            found="no manifest" if root.is_dir() else "no such folder",
            fix="Run the ingestion first, or check data.source.dataset.",
        )
    df = _read_parts(root, manifest.data_parts(), "data")
    if df.height == 0:
        raise DataError(
            "the ingested dataset has no valid rows yet",
            where=str(root),
            expected="at least one committed row",
            found=f"{manifest.records} records ingested, all quarantined"
            if manifest.records
            else "nothing committed",
            fix="Let the ingestion run, or look at its quarantine.",
        )
    return df


def read_quarantine(root: Path) -> pl.DataFrame:
    """The quarantined records of an ingested dataset (``_source``, ``_payload``,
    ``_encoding``, ``_reasons``, ``_batch``)."""
    manifest = load_manifest(Path(root))
    parts = manifest.quarantine_parts()
    if not parts:
        return pl.DataFrame(schema=QUARANTINE_SCHEMA)
    return _read_parts(Path(root), parts, "quarantine")


def fingerprint_dataset(root: Path) -> str:
    """A hash of the committed data parts (names, rows, sizes): parts are immutable and named
    uniquely, so this changes exactly when rows are added."""
    manifest = load_manifest(Path(root))
    digest = hashlib.blake2b(digest_size=32)
    for part in manifest.data_parts():
        digest.update(f"{part.path}\0{part.rows}\0{part.size}\n".encode())
    return digest.hexdigest()
