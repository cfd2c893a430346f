"""The artifact store: content-addressed step outputs under ``<workdir>/artifacts``.

Every artifact is a folder ``artifacts/<step>/<key>/`` holding the output's files and a
``meta.json`` stamped with the format version, the library versions that wrote it and how long
the step took. Writes are atomic: the folder is built under ``tmp/`` and renamed into place, so
a run killed at any moment leaves either a whole artifact or none.

:class:`Store` is what the runner needs of a store; :class:`ArtifactStore` is the local one,
:class:`~modelyard.engine.remote.RemoteStore` the one in an object store (any fsspec URL),
which keeps a local :class:`ArtifactStore` as its cache.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import json
import os
import pickle
import platform
import shutil
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from modelyard.engine.cache import digest

STORE_FORMAT = 1
_STAMPED_LIBRARIES = (
    "polars", "pyarrow", "numpy", "pandas", "sklearn", "scipy", "xgboost", "lightgbm",
    "optuna", "mlflow", "pydantic",
)  # fmt: skip


class Codec(Protocol):
    """Saves one step output into a folder and loads it back."""

    def save(self, value: Any, folder: Path) -> dict[str, Any]:
        """Write ``value`` into ``folder``; return JSON metadata needed to load it."""

    def load(self, folder: Path, meta: dict[str, Any]) -> Any:
        """Read the value back."""


def _qualname(obj: type) -> str:
    return f"{obj.__module__}:{obj.__qualname__}"


def _import(path: str) -> Any:
    module, _, name = path.partition(":")
    target: Any = importlib.import_module(module)
    for part in name.split("."):
        target = getattr(target, part)
    return target


class AutoCodec:
    """Stores values by type, in formats people can open themselves.

    polars DataFrame -> Parquet; a table (a Parquet dataset, :mod:`modelyard.data.table`) ->
    its part files, hard-linked from where the step wrote them; pydantic model -> JSON; dataclass -> one entry per field;
    ``None``/str/int/float/bool/list/dict of those -> JSON; anything else -> pickle.
    """

    def save(self, value: Any, folder: Path) -> dict[str, Any]:
        return self._save(value, folder, "value")

    def load(self, folder: Path, meta: dict[str, Any]) -> Any:
        return self._load(folder, meta)

    def _save(self, value: Any, folder: Path, stem: str) -> dict[str, Any]:
        kind = type(value)
        if kind.__module__.startswith("polars") and kind.__name__ == "DataFrame":
            value.write_parquet(folder / f"{stem}.parquet", statistics=False)
            return {"kind": "parquet", "file": f"{stem}.parquet"}
        if _is_table(value):
            target = folder / stem
            target.mkdir()
            for part in value.parts():
                _link_or_copy(part, target / part.name)
            return {"kind": "table", "dir": stem, "rows": value.num_rows, "class": _qualname(kind)}
        if hasattr(value, "model_dump_json") and hasattr(type(value), "model_validate_json"):
            (folder / f"{stem}.json").write_text(value.model_dump_json(indent=1), encoding="utf-8")
            return {"kind": "pydantic", "file": f"{stem}.json", "class": _qualname(kind)}
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            fields = {
                f.name: self._save(getattr(value, f.name), folder, f"{stem}.{f.name}")
                for f in dataclasses.fields(value)
            }
            return {"kind": "dataclass", "class": _qualname(kind), "fields": fields}
        if _is_json(value):
            (folder / f"{stem}.json").write_text(json.dumps(value), encoding="utf-8")
            return {"kind": "json", "file": f"{stem}.json"}
        with (folder / f"{stem}.pkl").open("wb") as fh:
            pickle.dump(value, fh, protocol=pickle.HIGHEST_PROTOCOL)
        return {"kind": "pickle", "file": f"{stem}.pkl"}

    def _load(self, folder: Path, meta: dict[str, Any]) -> Any:
        kind = meta["kind"]
        if kind == "parquet":
            import polars as pl

            return pl.read_parquet(folder / meta["file"])
        if kind == "table":
            return _import(meta["class"])(folder / meta["dir"], meta["rows"])
        if kind == "pydantic":
            cls = _import(meta["class"])
            return cls.model_validate_json((folder / meta["file"]).read_text(encoding="utf-8"))
        if kind == "dataclass":
            cls = _import(meta["class"])
            return cls(**{name: self._load(folder, m) for name, m in meta["fields"].items()})
        if kind == "json":
            return json.loads((folder / meta["file"]).read_text(encoding="utf-8"))
        if kind == "pickle":
            with (folder / meta["file"]).open("rb") as fh:
                return pickle.load(fh)
        raise ValueError(f"unknown artifact kind {kind!r}")


def auto_codec() -> Codec:
    return AutoCodec()


def _is_table(value: Any) -> bool:
    kind = type(value)
    return kind.__module__ == "modelyard.data.table" and kind.__name__ == "Table"


def _link_or_copy(source: Path, target: Path) -> None:
    """A hard link (the step's staging copy and the artifact share the bytes), a copy across
    file systems."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def _is_json(value: Any) -> bool:
    if value is None or isinstance(value, str | bool | int | float):
        return True
    if isinstance(value, list | tuple):
        return all(_is_json(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _is_json(v) for k, v in value.items())
    return False


def library_versions() -> dict[str, str]:
    """Versions of the libraries loaded in this process (those that could have written data)."""
    versions = {"python": platform.python_version()}
    for name in _STAMPED_LIBRARIES:
        module = sys.modules.get(name)
        if module is not None:
            versions[name] = str(getattr(module, "__version__", "?"))
    return versions


@dataclass(frozen=True)
class Artifact:
    step: str
    key: str
    folder: Path
    meta: dict[str, Any]


class Store(Protocol):
    """What the runner and the project need of a store (local or in an object store)."""

    @property
    def location(self) -> str:
        """Where the artifacts are: a folder or a URL."""

    def has(self, step: str, key: str) -> bool: ...

    def meta(self, step: str, key: str) -> dict[str, Any]: ...

    def save(
        self,
        step: str,
        key: str,
        value: Any,
        codec: Codec,
        *,
        info: dict[str, Any],
        replace: bool = False,
        identity: Callable[[Any], Any] | None = None,
    ) -> Artifact: ...

    def load(self, step: str, key: str, codec: Codec) -> Any: ...

    def alias(self, step: str, key: str, new_key: str) -> None: ...

    def scratch(self, name: str) -> Path: ...

    def read_json(self, step: str, key: str) -> Any: ...

    def clear_tmp(self) -> int: ...

    def remember(self, step: str, record: dict[str, Any]) -> None: ...

    def recall(self, step: str) -> dict[str, Any] | None: ...

    def clean(self, *, keep: dict[str, str] | None = None) -> tuple[int, int]: ...

    def lock(self, *, command: str, shared: bool = False) -> AbstractContextManager[Any]:
        """Exclusive for a whole run or a clean, shared for a single step."""


class ArtifactStore:
    """Step outputs addressed by (step, cache key), written atomically."""

    def __init__(self, root: Path, *, stamp: dict[str, str] | None = None) -> None:
        self.root = Path(root)
        self.artifacts = self.root / "artifacts"
        self.tmp = self.root / "tmp"
        self.state = self.root / "state"
        self._stamp = stamp or {}
        self._scratch: set[Path] = set()

    @property
    def location(self) -> str:
        return str(self.root)

    def lock(self, *, command: str, shared: bool = False) -> AbstractContextManager[Any]:
        """The ``flock`` on ``<root>/lock`` (:mod:`modelyard.engine.lock`)."""
        from modelyard.engine.lock import ProjectLock

        return ProjectLock(self.root / "lock", command=command, shared=shared)

    def folder(self, step: str, key: str) -> Path:
        return self.artifacts / step / key

    def has(self, step: str, key: str) -> bool:
        return (self.folder(step, key) / "meta.json").is_file()

    def meta(self, step: str, key: str) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(
            (self.folder(step, key) / "meta.json").read_text(encoding="utf-8")
        )
        return data

    def save(
        self,
        step: str,
        key: str,
        value: Any,
        codec: Codec,
        *,
        info: dict[str, Any],
        replace: bool = False,
        identity: Callable[[Any], Any] | None = None,
    ) -> Artifact:
        """Write atomically: build in tmp/, fsync, then rename into place.

        An artifact already under ``key`` is kept (it is an identical result), unless
        ``replace``: a step re-run for its side effects (a model registered again) whose new
        result must be the one read from now on.

        ``meta["content_digest"]`` is the digest of the files written; ``meta["digest"]``, what
        the keys of later steps hash, is the same unless ``identity`` is given: then it is the
        digest of ``identity(value)``, a JSON-able value (see :class:`~modelyard.engine.step.
        Step`).
        """
        self.tmp.mkdir(parents=True, exist_ok=True)
        staging = self.tmp / f"{step}-{key}-{uuid.uuid4().hex[:8]}"
        staging.mkdir()
        try:
            content = codec.save(value, staging)
            files = content_digest(staging)
            meta = {
                "digest": files if identity is None else digest(identity(value)),
                "content_digest": files,
                "format": STORE_FORMAT,
                "step": step,
                "key": key,
                "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "content": content,
                "versions": {**self._stamp, **library_versions()},
                **info,
            }
            # meta.json is written last: its presence marks a complete artifact
            _write_json_synced(staging / "meta.json", meta)
            final = self.folder(step, key)
            final.parent.mkdir(parents=True, exist_ok=True)
            if final.exists() and replace:  # moved aside first: the rename needs a free name
                old = self.tmp / f"{step}-{key}-{uuid.uuid4().hex[:8]}.old"
                final.replace(old)
                staging.replace(final)
                _fsync_dir(final.parent)
                shutil.rmtree(old, ignore_errors=True)
            elif final.exists():  # another identical result already landed (same key): it
                shutil.rmtree(staging)  # stays, and its digest is the one the next run reads
                meta = self.meta(step, key)
            else:
                try:
                    staging.replace(final)
                    _fsync_dir(final.parent)
                except OSError:  # another writer's landed meanwhile (single steps share
                    if not self.has(step, key):  # the lock): it stays, as above
                        raise
                    shutil.rmtree(staging)
                    meta = self.meta(step, key)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return Artifact(step, key, final, meta)

    def alias(self, step: str, key: str, new_key: str) -> None:
        """Make the artifact ``key`` of ``step`` also available under ``new_key`` (hard links).

        For a result that is known to equal what another parameterisation would produce, e.g.
        a contract written to a file that the next run reads back unchanged.
        """
        if self.has(step, new_key) or not self.has(step, key):
            return
        self.tmp.mkdir(parents=True, exist_ok=True)
        staging = self.tmp / f"{step}-{new_key}-{uuid.uuid4().hex[:8]}"
        try:
            shutil.copytree(self.folder(step, key), staging, copy_function=os.link)
            meta = json.loads((staging / "meta.json").read_text(encoding="utf-8"))
            (staging / "meta.json").unlink()
            meta.update(key=new_key, alias_of=key)
            _write_json_synced(staging / "meta.json", meta)
            staging.replace(self.folder(step, new_key))
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise

    def scratch(self, name: str) -> Path:
        """A fresh, empty folder for a step to write a large output into (a table's parts);
        removed with the rest of ``tmp/`` by the next run of another store object (the
        outputs of this one's steps, saved or not, may still be read from it)."""
        self.tmp.mkdir(parents=True, exist_ok=True)
        folder = self.tmp / f"scratch-{name}-{uuid.uuid4().hex[:8]}"
        folder.mkdir()
        self._scratch.add(folder)
        return folder

    def load(self, step: str, key: str, codec: Codec) -> Any:
        folder = self.folder(step, key)
        meta = self.meta(step, key)
        return codec.load(folder, meta["content"])

    def read_json(self, step: str, key: str) -> Any:
        """The stored JSON of a JSON or pydantic artifact, without importing its class (``None``
        for other kinds, or when there is no such artifact)."""
        try:
            meta = self.meta(step, key)
        except (OSError, ValueError):
            return None
        content = meta.get("content", {})
        if content.get("kind") not in ("json", "pydantic"):
            return None
        try:
            return json.loads((self.folder(step, key) / content["file"]).read_text("utf-8"))
        except (OSError, ValueError):
            return None

    def clear_tmp(self) -> int:
        """Remove leftovers of killed runs; returns how many there were."""
        if not self.tmp.exists():
            return 0
        leftovers = [p for p in self.tmp.iterdir() if p not in self._scratch]
        for item in leftovers:
            shutil.rmtree(item, ignore_errors=True) if item.is_dir() else item.unlink(
                missing_ok=True
            )
        return len(leftovers)

    def entries(self) -> Iterator[Artifact]:
        if not self.artifacts.exists():
            return
        for step_dir in sorted(self.artifacts.iterdir()):
            for key_dir in sorted(step_dir.iterdir()):
                meta_file = key_dir / "meta.json"
                if meta_file.is_file():
                    yield Artifact(
                        step_dir.name, key_dir.name, key_dir, json.loads(meta_file.read_text())
                    )

    # -- the last key each step ran with, to explain why a step will re-run

    def remember(self, step: str, record: dict[str, Any]) -> None:
        self.state.mkdir(parents=True, exist_ok=True)
        _write_json_atomic(self.state / f"{step}.json", record)

    def recall(self, step: str) -> dict[str, Any] | None:
        file = self.state / f"{step}.json"
        if not file.is_file():
            return None
        try:
            data: dict[str, Any] = json.loads(file.read_text(encoding="utf-8"))
        except ValueError:
            return None
        return data

    def clean(self, *, keep: dict[str, str] | None = None) -> tuple[int, int]:
        """Delete artifacts; with ``keep`` (step -> key) keep those. Returns (removed, bytes)."""
        removed = freed = 0
        for art in list(self.entries()):
            if keep is not None and keep.get(art.step) == art.key:
                continue
            freed += sum(f.stat().st_size for f in art.folder.rglob("*") if f.is_file())
            shutil.rmtree(art.folder)
            removed += 1
        self.clear_tmp()
        if keep is None and self.state.exists():
            shutil.rmtree(self.state)
        return removed, freed


def content_digest(folder: Path) -> str:
    """A hash of every file's name and bytes under ``folder``: equal outputs, equal digests."""
    h = hashlib.blake2b(digest_size=16)
    for file in sorted(p for p in folder.rglob("*") if p.is_file() and p.name != "meta.json"):
        h.update(file.relative_to(folder).as_posix().encode() + b"\0")
        with file.open("rb") as fh:
            while chunk := fh.read(1 << 20):
                h.update(chunk)
        h.update(b"\0")
    return h.hexdigest()


def _write_json_synced(path: Path, data: Any) -> None:
    with path.open("w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=1, sort_keys=True, default=str)
        fh.flush()
        os.fsync(fh.fileno())


def _write_json_atomic(path: Path, data: Any) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}")
    _write_json_synced(tmp, data)
    tmp.replace(path)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
