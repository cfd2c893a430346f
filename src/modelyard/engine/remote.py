"""The artifact store in an object store (``s3://bucket/prefix``, or any fsspec filesystem).

An object store has no rename, so a write cannot be made atomic the way the local store does
it. The commit protocol instead:

1. The step's output is saved in the local cache first (a local :class:`ArtifactStore` under
   the workdir, atomic as always).
2. Its files are uploaded under ``<root>/artifacts/<step>/<key>/<upload>/``, where ``<upload>``
   is unique to this writer: two writers racing for one key never write the same object.
3. The manifest ``<root>/artifacts/<step>/<key>/meta.json`` (the artifact's metadata, its
   files with their sizes, its upload and the content digest) is written **last**, in one put.

Readers trust only keys with a manifest, and a manifest only ever names a complete upload:
a writer killed mid-upload leaves files nobody reads (``clean`` removes them) and no
manifest, so the next execution of the step runs it again. Two writers of one key both leave
a valid result: the key is a pure function of the inputs, the last manifest wins, and each
names its own complete upload. A download is checked against the manifest's digest before it
enters the cache; a mismatch is refused, never loaded.

``remember``/``recall`` (why a step will run again) live under ``<root>/state/``.

The lock is a *lease* (:class:`Lease`) under ``<root>/locks/``: see its docstring.

Only fsspec's filesystem interface is used (``cat_file``, ``pipe_file``, ``put_file``,
``get_file``, ``ls``, ``rm``); the caller builds the filesystem, so the engine needs no
object-store package of its own.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import socket
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, suppress
from pathlib import Path
from types import TracebackType
from typing import Any

from modelyard.engine.lock import ProjectLocked
from modelyard.engine.store import Artifact, ArtifactStore, Codec, content_digest
from modelyard.errors import ModelyardError

MANIFEST = "meta.json"
UPLOAD_PAUSE_ENV = "MODELYARD_TEST_UPLOAD_PAUSE"
"""Testing aid: seconds to pause after each uploaded file, so that a test can kill a writer
mid-upload deterministically. Unset (the default) in any real use."""

LEASE_SECONDS = 60.0
"""How long a lease lives without renewal; its holder renews it every third of that."""


class StoreCorrupt(ModelyardError):
    """A committed artifact's files do not match its manifest."""


class StoreUnreachable(ModelyardError):
    """The object store refused or failed a request (credentials, bucket, network)."""

    def __init__(self, url: str, exc: BaseException) -> None:
        first = str(exc).splitlines()[0] if str(exc) else ""
        super().__init__(
            "cannot use the artifact store",
            where=url,
            found=f"{type(exc).__name__}: {first}",
            fix="Check the URL (the bucket must exist), the credentials and endpoint "
            "(store_options, or AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_ENDPOINT_URL "
            "for s3://), and that the store is reachable from here.",
        )


def _files_digest(meta: dict[str, Any]) -> str:
    """The digest of an artifact's files (``digest`` itself for an artifact written before
    steps could declare an identity)."""
    return str(meta.get("content_digest", meta["digest"]))


def _is_local(fs: Any) -> bool:
    protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
    return protocol in ("file", "local")


def _cat(fs: Any, path: str) -> bytes:
    """An object's bytes, read now: fsspec keeps listings (s3fs consults them even to read a
    file), and another writer may have committed since."""
    fs.invalidate_cache(path)
    data: bytes = fs.cat_file(path)
    return data


def _parent_dirs(fs: Any, path: str) -> None:
    """A local filesystem needs the folders of a file to exist; an object store has none."""
    if _is_local(fs):
        fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)


class RemoteStore:
    """Step outputs in an object store, committed by a manifest written last (see the module).

    ``fs``: an fsspec filesystem; ``root``: the path of the store inside it (``bucket/prefix``);
    ``cache``: the local store outputs are staged in and downloaded to; ``url``: the store as
    the user wrote it (for messages).
    """

    def __init__(
        self,
        fs: Any,
        root: str,
        *,
        cache: ArtifactStore,
        url: str | None = None,
        lease_seconds: float = LEASE_SECONDS,
    ) -> None:
        self.fs = fs
        self.root = root.rstrip("/")
        self.cache = cache
        self.url = url or str(fs.unstrip_protocol(self.root))
        self.lease_seconds = lease_seconds
        self._manifests: dict[tuple[str, str], dict[str, Any]] = {}

    @property
    def location(self) -> str:
        return self.url

    # -- paths

    def _key_path(self, step: str, key: str) -> str:
        return f"{self.root}/artifacts/{step}/{key}"

    def _manifest_path(self, step: str, key: str) -> str:
        return f"{self._key_path(step, key)}/{MANIFEST}"

    def _file_path(self, step: str, key: str, manifest: dict[str, Any], name: str) -> str:
        return f"{self._key_path(step, key)}/{manifest['upload']}/{name}"

    # -- reading

    def _manifest(self, step: str, key: str) -> dict[str, Any] | None:
        """The committed manifest, or ``None`` (committed manifests are kept per instance:
        one is only ever replaced by a manifest naming an equal result)."""
        known = self._manifests.get((step, key))
        if known is not None:
            return known
        try:
            data = _cat(self.fs, self._manifest_path(step, key))
        except FileNotFoundError:
            return None
        except Exception as exc:  # whatever the protocol's package raises
            raise StoreUnreachable(self.url, exc) from exc
        manifest: dict[str, Any] = json.loads(data)
        self._manifests[(step, key)] = manifest
        return manifest

    def has(self, step: str, key: str) -> bool:
        return self._manifest(step, key) is not None

    def meta(self, step: str, key: str) -> dict[str, Any]:
        manifest = self._manifest(step, key)
        if manifest is None:
            raise FileNotFoundError(f"{self.url}: no committed artifact {step}/{key}")
        return manifest

    def local_folder(self, step: str, key: str) -> Path:
        """The committed artifact in the local cache (downloaded and checked if need be)."""
        manifest = self.meta(step, key)
        if self._cached(step, key, manifest):
            return self.cache.folder(step, key)
        self.cache.tmp.mkdir(parents=True, exist_ok=True)
        self.fs.invalidate_cache(self._key_path(step, key))
        staging = self.cache.tmp / f"{step}-{key}-{uuid.uuid4().hex[:8]}.get"
        try:
            staging.mkdir()
            for name in manifest["files"]:
                target = staging / name
                target.parent.mkdir(parents=True, exist_ok=True)
                self.fs.get_file(self._file_path(step, key, manifest, name), str(target))
            found = content_digest(staging)
            if found != _files_digest(manifest):
                raise StoreCorrupt(
                    f"the files of artifact {step}/{key} do not match its manifest",
                    where=f"{self.url}/artifacts/{step}/{key}",
                    expected=f"content digest {_files_digest(manifest)}",
                    found=found,
                    fix="Delete the artifact (its meta.json first) and run the step again: "
                    f"`modelyard run --step {step}`.",
                )
            (staging / MANIFEST).write_text(json.dumps(_local_meta(manifest)), encoding="utf-8")
            final = self.cache.folder(step, key)
            final.parent.mkdir(parents=True, exist_ok=True)
            if self._cached(step, key, manifest):  # another process (a step run alongside,
                shutil.rmtree(staging)  # in this workdir) put it there meanwhile: it is
                return final  # the same, and may be in use: it stays
            if final.exists():  # a copy with other bytes: the committed one replaces it
                old = self.cache.tmp / f"{step}-{key}-{uuid.uuid4().hex[:8]}.old"
                final.replace(old)
                staging.replace(final)
                shutil.rmtree(old, ignore_errors=True)
            else:
                try:
                    staging.replace(final)
                except OSError:  # installed meanwhile by another process
                    if not self._cached(step, key, manifest):
                        raise
                    shutil.rmtree(staging)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return final

    def _cached(self, step: str, key: str, manifest: dict[str, Any]) -> bool:
        try:
            return _files_digest(self.cache.meta(step, key)) == _files_digest(manifest)
        except (OSError, ValueError, KeyError):
            return False

    def load(self, step: str, key: str, codec: Codec) -> Any:
        folder = self.local_folder(step, key)
        return codec.load(folder, self.meta(step, key)["content"])

    def read_json(self, step: str, key: str) -> Any:
        manifest = self._manifest(step, key)
        if manifest is None:
            return None
        content = manifest.get("content", {})
        if content.get("kind") not in ("json", "pydantic"):
            return None
        try:
            return json.loads(_cat(self.fs, self._file_path(step, key, manifest, content["file"])))
        except (OSError, ValueError):
            return None

    # -- writing

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
        """Save in the local cache, upload the files, then commit the manifest (last).

        A key another writer committed meanwhile is kept as it is (an equal result), unless
        ``replace``.
        """
        local = self.cache.save(
            step, key, value, codec, info=info, replace=replace, identity=identity
        )
        if not replace:
            self._manifests.pop((step, key), None)
            committed = self._manifest(step, key)
            if committed is not None:
                return Artifact(step, key, local.folder, committed)
        manifest = self._upload(step, key, local.folder)
        return Artifact(step, key, local.folder, manifest)

    def _upload(self, step: str, key: str, folder: Path) -> dict[str, Any]:
        meta: dict[str, Any] = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
        upload = f"upload-{uuid.uuid4().hex}"
        files = sorted(p for p in folder.rglob("*") if p.is_file() and p.name != MANIFEST)
        pause = float(os.environ.get(UPLOAD_PAUSE_ENV) or 0)
        sizes: dict[str, int] = {}
        for file in files:
            name = file.relative_to(folder).as_posix()
            target = f"{self._key_path(step, key)}/{upload}/{name}"
            _parent_dirs(self.fs, target)
            self.fs.put_file(str(file), target)
            sizes[name] = file.stat().st_size
            if pause:
                time.sleep(pause)
        manifest = {**meta, "files": sizes, "upload": upload}
        self._put_atomic(self._manifest_path(step, key), json.dumps(manifest, indent=1).encode())
        self._manifests[(step, key)] = manifest
        return manifest

    def _put_atomic(self, path: str, data: bytes) -> None:
        """One object, whole or absent: an object store's put is atomic; on a local
        filesystem (``file://``), a temporary file renamed into place."""
        if _is_local(self.fs):
            tmp = f"{path}.{uuid.uuid4().hex[:8]}.tmp"
            _parent_dirs(self.fs, path)
            self.fs.pipe_file(tmp, data)
            Path(tmp).replace(path)
        else:
            self.fs.pipe_file(path, data)

    def alias(self, step: str, key: str, new_key: str) -> None:
        if self.has(step, new_key) or not self.has(step, key):
            return
        self.local_folder(step, key)
        self.cache.alias(step, key, new_key)
        self._upload(step, new_key, self.cache.folder(step, new_key))

    def scratch(self, name: str) -> Path:
        return self.cache.scratch(name)

    def clear_tmp(self) -> int:
        return self.cache.clear_tmp()

    # -- the last key each step ran with

    def remember(self, step: str, record: dict[str, Any]) -> None:
        self.cache.remember(step, record)
        self._put_atomic(f"{self.root}/state/{step}.json", json.dumps(record).encode())

    def recall(self, step: str) -> dict[str, Any] | None:
        try:
            data: dict[str, Any] = json.loads(_cat(self.fs, f"{self.root}/state/{step}.json"))
        except (FileNotFoundError, ValueError):
            return None
        return data

    # -- listing and pruning

    def _ls(self, path: str) -> list[str]:
        self.fs.invalidate_cache(path)
        try:
            return sorted(str(p).rstrip("/") for p in self.fs.ls(path, detail=False))
        except FileNotFoundError:
            return []

    def entries(self) -> Iterator[Artifact]:
        """Every committed artifact (with its local cache folder, present or not)."""
        for step_dir in self._ls(f"{self.root}/artifacts"):
            step = step_dir.rsplit("/", 1)[-1]
            for key_dir in self._ls(step_dir):
                key = key_dir.rsplit("/", 1)[-1]
                manifest = self._manifest(step, key)
                if manifest is not None:
                    yield Artifact(step, key, self.cache.folder(step, key), manifest)

    def clean(self, *, keep: dict[str, str] | None = None) -> tuple[int, int]:
        """Delete committed artifacts (but those of ``keep``: step -> key) and uploads no
        manifest names (left by killed writers). A manifest goes before its files, so a
        reader never trusts a key whose files are going. Hold the exclusive lock."""
        removed = freed = 0
        for step_dir in self._ls(f"{self.root}/artifacts"):
            step = step_dir.rsplit("/", 1)[-1]
            for key_dir in self._ls(step_dir):
                key = key_dir.rsplit("/", 1)[-1]
                self._manifests.pop((step, key), None)
                manifest = self._manifest(step, key)
                kept = manifest is not None and keep is not None and keep.get(step) == key
                if manifest is not None and not kept:
                    self.fs.rm_file(self._manifest_path(step, key))
                    self._manifests.pop((step, key), None)
                    removed += 1
                    freed += sum(int(size) for size in manifest["files"].values())
                live = manifest["upload"] if kept and manifest is not None else None
                for child in self._ls(key_dir):
                    name = child.rsplit("/", 1)[-1]
                    if name not in (MANIFEST, live):
                        self.fs.rm(child, recursive=True)
        if keep is None:
            for state in self._ls(f"{self.root}/state"):
                self.fs.rm_file(state)
        self.cache.clean(keep=keep)
        return removed, freed

    # -- the lock

    def lock(self, *, command: str, shared: bool = False) -> AbstractContextManager[Any]:
        """The local cache's ``flock`` and the store's lease, both shared or both exclusive."""
        stack = ExitStack()
        local = self.cache.lock(command=command, shared=shared)
        lease = Lease(
            self.fs, f"{self.root}/locks", url=self.url, shared=shared, command=command,
            seconds=self.lease_seconds,
        )  # fmt: skip

        class _Both(AbstractContextManager[Any]):
            def __enter__(self) -> Any:
                stack.enter_context(local)
                try:
                    stack.enter_context(lease)
                except BaseException:
                    stack.close()
                    raise
                return lease

            def __exit__(self, *exc: Any) -> None:
                stack.close()

        return _Both()


def _local_meta(manifest: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in manifest.items() if k not in ("files", "upload")}


class Lease:
    """A lock in an object store: lease objects with an expiry under ``folder``.

    A holder writes its own object ``<shared|exclusive>-<id>.json`` (who, and until when),
    then lists the folder: an exclusive holder gives way to any other live lease, a shared one
    to a live exclusive lease. A lease is written before the folder is listed, and listings
    see every completed put (S3 and the usual object stores are strongly consistent), so of two
    conflicting contenders at least one sees the other: never both hold. When both see each
    other, both retry after a random pause, a few times.

    A holder renews its lease every third of ``seconds``; a lease not renewed by its expiry
    (the holder was killed: SIGKILL, a lost node) is ignored, and removed by the next
    contender once it has been expired for another ``seconds``. Expiry times are the holders'
    clocks: the machines sharing a store must agree on the time to well within ``seconds``.
    A holder that finds its lease gone when renewing (it was stalled past its expiry) sets
    :attr:`lost`.
    """

    def __init__(
        self,
        fs: Any,
        folder: str,
        *,
        url: str = "",
        shared: bool = False,
        command: str = "",
        seconds: float = LEASE_SECONDS,
        clock: Callable[[], float] = time.time,
        renew: bool = True,
        attempts: int = 4,
    ) -> None:
        self.fs = fs
        self.folder = folder.rstrip("/")
        self.url = url or folder
        self.shared = shared
        self.command = command or " ".join(sys.argv)
        self.seconds = seconds
        self.clock = clock
        self.renew = renew
        self.attempts = attempts
        self.id = uuid.uuid4().hex
        self.path = f"{self.folder}/{'shared' if shared else 'exclusive'}-{self.id}.json"
        self.lost = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _record(self) -> dict[str, Any]:
        now = self.clock()
        return {
            "mode": "shared" if self.shared else "exclusive",
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "command": self.command,
            "since": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(now)) + " UTC",
            "expires": now + self.seconds,
        }

    def _write(self) -> None:
        data = json.dumps(self._record()).encode()
        if _is_local(self.fs):
            self.fs.makedirs(self.folder, exist_ok=True)
            tmp = f"{self.folder}/.{self.id}.tmp"
            self.fs.pipe_file(tmp, data)
            Path(tmp).replace(self.path)
        else:
            self.fs.pipe_file(self.path, data)

    def others(self) -> list[dict[str, Any]]:
        """The live leases of other holders (expired ones long enough are removed)."""
        self.fs.invalidate_cache(self.folder)
        try:
            paths = self.fs.ls(self.folder, detail=False)
        except FileNotFoundError:
            return []
        now = self.clock()
        live = []
        for path in sorted(str(p) for p in paths):
            name = path.rsplit("/", 1)[-1]
            if not name.endswith(".json") or path.rstrip("/") == self.path or name.startswith("."):
                continue
            try:
                record = json.loads(_cat(self.fs, path))
                expires = float(record["expires"])
            except FileNotFoundError:
                continue  # released meanwhile
            except (ValueError, KeyError, TypeError):
                record, expires = {"mode": "unknown"}, now + self.seconds  # being written
            if expires > now:
                live.append(record)
            elif expires + self.seconds < now:
                with suppress(FileNotFoundError):
                    self.fs.rm_file(path)
        return live

    def _conflicts(self, others: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if not self.shared:
            return others
        return [o for o in others if o.get("mode") != "shared"]

    def __enter__(self) -> Lease:
        conflicts: list[dict[str, Any]] = []
        for attempt in range(self.attempts):
            try:
                self._write()
                conflicts = self._conflicts(self.others())
            except Exception as exc:  # the first request to the store
                raise StoreUnreachable(self.url, exc) from exc
            if not conflicts:
                break
            self._remove()
            if attempt + 1 < self.attempts:
                time.sleep(random.uniform(0.05, 0.3) * (attempt + 1))
        else:
            holder = conflicts[0]
            who = dict(holder)
            if "host" in holder:
                who["pid"] = f"{holder.get('pid')} on {holder['host']}"
            raise ProjectLocked(
                f"{self.url}/{self.folder.rsplit('/', 1)[-1]}",
                who,
                fix="Wait for it to finish (or stop it). A holder that was killed keeps its "
                f"lease until it expires, {self.seconds:.0f} s after its last renewal.",
            )
        if self.renew:
            self._thread = threading.Thread(target=self._renew, name="modelyard-lease", daemon=True)
            self._thread.start()
        return self

    def _renew(self) -> None:
        while not self._stop.wait(self.seconds / 3):
            try:
                if not self.renew_once():
                    return
            except Exception:  # a network blip: try again at the next tick
                continue

    def renew_once(self) -> bool:
        """Push the expiry on; ``False`` (and :attr:`lost`) when the lease is gone."""
        self.fs.invalidate_cache(self.folder)
        if not self.fs.exists(self.path):
            self.lost = True
            return False
        self._write()
        return True

    def _remove(self) -> None:
        with suppress(FileNotFoundError):
            self.fs.rm_file(self.path)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self._remove()
