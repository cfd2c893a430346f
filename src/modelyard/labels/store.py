"""The label set: every label ever imported, versioned and append-only.

Each :meth:`LabelSet.append` writes one new, immutable JSON-lines file
``labels-000001.jsonl``, ``labels-000002.jsonl``, ... under the set's folder, complete
before it is visible (written to a temporary name, fsynced, then hard-linked to its name). A version is the
number of files; reading a version reads the files up to it, so a training run that used
version 3 can be reproduced after more labels arrive. Labels are JSON values, so an
integer class stays an integer and a string class a string.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path

from modelyard.errors import DataError
from modelyard.labels.records import LabelRecord

_FILE = re.compile(r"^labels-(\d{6})\.jsonl$")


class LabelSet:
    """The append-only label set kept in ``root`` (created on first append)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def _files(self) -> list[Path]:
        if not self.root.is_dir():
            return []
        found = sorted(
            (int(m.group(1)), p) for p in self.root.iterdir() if (m := _FILE.match(p.name))
        )
        return [p for _, p in found]

    @property
    def version(self) -> int:
        """How many appends the set holds; 0 when empty."""
        return len(self._files())

    def append(self, records: Iterable[LabelRecord]) -> int:
        """Add ``records`` as a new version and return its number (the current one if empty)."""
        lines = [json.dumps(_to_json(r), sort_keys=True, default=str) for r in records]
        if not lines:
            return self.version
        self.root.mkdir(parents=True, exist_ok=True)
        version = self.version + 1
        final = self.root / f"labels-{version:06d}.jsonl"
        fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".labels-", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write("\n".join(lines) + "\n")
                out.flush()
                os.fsync(out.fileno())
            try:  # a hard link never replaces: two writers cannot both take one number
                os.link(tmp, final)
            except FileExistsError:
                raise DataError(
                    "the label set changed while labels were being added",
                    where=str(self.root),
                    fix="add the labels again",
                ) from None
        finally:
            Path(tmp).unlink(missing_ok=True)
        return version

    def read(self, version: int | None = None) -> list[LabelRecord]:
        """Every record up to ``version`` (default: the latest), oldest first."""
        files = self._files()
        if version is not None:
            if not 0 <= version <= len(files):
                raise DataError(
                    f"the label set has no version {version}", where=str(self.root),
                    expected=f"a version from 0 to {len(files)}",
                )  # fmt: skip
            files = files[:version]
        records: list[LabelRecord] = []
        for file in files:
            for number, line in enumerate(file.read_text(encoding="utf-8").splitlines(), 1):
                if line.strip():
                    records.append(_from_json(json.loads(line), where=f"{file}:{number}"))
        return records


def _to_json(record: LabelRecord) -> dict[str, object]:
    return {
        "key": record.key, "label": record.label, "annotator": record.annotator,
        "at": record.at.isoformat(), "source": record.source, "task": record.task,
        "extra": record.extra,
    }  # fmt: skip


def _from_json(item: dict[str, object], *, where: str) -> LabelRecord:
    try:
        return LabelRecord(
            key=str(item["key"]), label=item["label"], annotator=str(item["annotator"]),
            at=datetime.fromisoformat(str(item["at"])), source=str(item["source"]),
            task=None if item.get("task") is None else str(item["task"]),
            extra=dict(item.get("extra") or {}),  # type: ignore[call-overload]
        )  # fmt: skip
    except (KeyError, ValueError, TypeError) as exc:
        raise DataError(f"a label set file is damaged ({exc})", where=where) from None
