"""A memo: small values kept on disk under content keys, for work finer than a step.

The model search keeps every finished fit here (key: a digest of its data, model, parameters
and fold), so a search that is interrupted, or re-run with another budget, replays what it
already did instead of fitting again. Writes are atomic (temp file + rename): a killed process
leaves a whole entry or none. Anything unreadable is a miss.
"""

from __future__ import annotations

import os
import pickle
import re
import shutil
import uuid
from pathlib import Path
from typing import Any

_KEY = re.compile(r"^[0-9a-f]{8,64}$")


class Memo:
    """Pickled values under ``folder/<key[:2]>/<key>.pkl``."""

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder)

    def _path(self, key: str) -> Path:
        if not _KEY.match(key):
            raise ValueError(f"a memo key is a hex digest, not {key!r}")
        return self.folder / key[:2] / f"{key}.pkl"

    def get(self, key: str) -> Any:
        """The value, or None."""
        try:
            with self._path(key).open("rb") as f:
                return pickle.load(f)
        except (OSError, EOFError, pickle.UnpicklingError, AttributeError, ImportError):
            return None

    def put(self, key: str, value: Any) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
        with tmp.open("wb") as f:
            pickle.dump(value, f, protocol=pickle.HIGHEST_PROTOCOL)
        tmp.replace(path)

    def clear(self) -> int:
        """Remove every entry; the bytes freed."""
        if not self.folder.is_dir():
            return 0
        size = sum(f.stat().st_size for f in self.folder.rglob("*") if f.is_file())
        shutil.rmtree(self.folder, ignore_errors=True)
        return size
