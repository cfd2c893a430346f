"""A watched folder (or object-store prefix) as a record source: each new file once.

The manifest holds the files already ingested with their signature (size and mtime for local
files, ETag for object stores); a file is ingested once, by its name. Hidden and temporary
files (``.name``, ``_name``, ``*.tmp``, ``*.part``) are ignored, and a local file modified less
than ``settle_seconds`` ago is left for a later listing (it may still be being written; writers
should write then rename). A file that cannot be read is quarantined whole, with the reason.
"""

from __future__ import annotations

import logging
import re
import time
from collections import deque
from pathlib import Path
from typing import Any

from modelyard.config.schema import IngestSection, is_url
from modelyard.data import remote
from modelyard.data.sources import read_file
from modelyard.data.streaming.manifest import Manifest
from modelyard.data.streaming.records import Chunk, Rejected
from modelyard.errors import DataError

__all__ = ["FolderSource"]

log = logging.getLogger(__name__)

_GLOB_CHARS = re.compile(r"[*?\[]")
_IGNORED_SUFFIXES = (".tmp", ".part", ".crdownload", ".partial")


def _ignored(name: str) -> bool:
    return name.startswith((".", "_")) or name.endswith(_IGNORED_SUFFIXES)


class FolderSource:
    """Lists ``section.from_`` every ``poll_seconds`` and yields one new file per poll."""

    generation = 0
    duplicates = 0

    def __init__(self, section: IngestSection) -> None:
        self.section = section
        self.location = section.from_
        self._seen: dict[str, str] = {}
        self._pending: dict[str, str] = {}
        self._queue: deque[tuple[str, str]] = deque()
        self._next_listing = 0.0
        self._fs: Any = None
        self._root = ""

    def open(self, manifest: Manifest) -> None:
        self._seen = dict(manifest.files)
        if is_url(self.location):
            self._fs, self._root = remote.filesystem(
                str(self.location), self.section.storage_options
            )

    # ------------------------------------------------------------------ listing

    def _list_local(self) -> dict[str, tuple[str, float]]:
        path = Path(self.location)
        if _GLOB_CHARS.search(str(path)):
            anchor = next(i for i, part in enumerate(path.parts) if _GLOB_CHARS.search(part))
            base = Path(*path.parts[:anchor])
            candidates = list(base.glob(str(Path(*path.parts[anchor:])))) if base.is_dir() else []
        elif path.is_dir():
            candidates = list(path.iterdir())
        else:
            raise DataError(
                "the watched folder does not exist",
                where=str(path),
                fix="Create it, or fix ingest.from (relative paths start at modelyard.yaml's folder).",
            )
        out: dict[str, tuple[str, float]] = {}
        for file in candidates:
            try:
                stat = file.stat()
            except OSError:  # removed while listing
                continue
            if file.is_file() and not _ignored(file.name):
                out[str(file.resolve())] = (f"{stat.st_size}:{stat.st_mtime_ns}", stat.st_mtime)
        return out

    def _list_remote(self) -> dict[str, tuple[str, float]]:
        fs = self._fs
        try:
            fs.invalidate_cache()
            if _GLOB_CHARS.search(self._root):
                infos = {p: fs.info(p) for p in fs.glob(self._root)}
            else:
                infos = fs.find(self._root, detail=True)
        except Exception as exc:
            raise DataError(
                "cannot list the watched prefix",
                where=str(self.location),
                found=f"{type(exc).__name__}: {exc}",
                fix="Check the URL, the credentials and that the object store is reachable.",
            ) from None
        out: dict[str, tuple[str, float]] = {}
        for name, info in infos.items():
            if info.get("type", "file") != "file" or _ignored(name.rsplit("/", 1)[-1]):
                continue
            out[str(fs.unstrip_protocol(name))] = (remote.file_signature(info), 0.0)
        return out

    def _refill(self) -> None:
        listing = self._list_remote() if self._fs is not None else self._list_local()
        now = time.time()
        queued = {name for name, _ in self._queue}
        for name in sorted(listing):
            signature, mtime = listing[name]
            if name in self._seen or name in self._pending or name in queued:
                if name in self._seen and self._seen[name] != signature:
                    log.debug("watched file %s changed after ingestion; ignored", name)
                continue
            if self._fs is None and now - mtime < self.section.settle_seconds:
                continue  # maybe still being written
            self._queue.append((name, signature))

    # ------------------------------------------------------------------ source protocol

    def poll(self, max_records: int, timeout: float) -> Chunk | None:
        if not self._queue:
            now = time.monotonic()
            if now < self._next_listing:
                time.sleep(min(timeout, self._next_listing - now))
                return None
            self._next_listing = now + self.section.poll_seconds
            self._refill()
            if not self._queue:
                return None
        name, signature = self._queue.popleft()
        self._pending[name] = signature
        try:
            frame = read_file(
                name if self._fs is not None else Path(name),
                format=self.section.format,
                read=self.section.read,
                fs=self._fs,
            )
        except DataError as exc:
            return Chunk(
                frame=_empty(),
                sources=[],
                rejected=[Rejected(name, self._raw(name), f"unreadable file: {exc}")],
            )
        return Chunk(frame=frame, sources=[f"{name}:{i + 1}" for i in range(frame.height)])

    def _raw(self, name: str) -> bytes | None:
        try:
            if self._fs is not None:
                return remote.fetch(self._fs, name)
            return Path(name).read_bytes()
        except (OSError, DataError):
            return None

    def pending_files(self) -> dict[str, str]:
        return dict(self._pending)

    def pending_positions(self) -> dict[str, dict[int, int]]:
        return {}

    def committed(self, manifest: Manifest) -> None:
        self._seen = dict(manifest.files)
        self._pending.clear()

    def discard(self) -> None:
        self._pending.clear()
        self._queue.clear()

    def close(self) -> None:
        self._fs = None


def _empty() -> Any:
    import polars as pl

    return pl.DataFrame()
