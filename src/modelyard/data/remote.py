"""Files in object stores (``s3://``, ``gs://``, any fsspec protocol), for sources and watched
prefixes.

fsspec and the protocol's package (``s3fs`` for ``s3://``) load lazily; a missing one raises
:class:`~modelyard.errors.MissingExtraError` or a :class:`~modelyard.errors.DataError` naming
the package. Storage options come from the config (secrets as ``SecretStr``) and are revealed
only here, when the filesystem is built.
"""

from __future__ import annotations

import hashlib
import re
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from modelyard.config.schema import StorageOptions, plain_options
from modelyard.errors import DataError, MissingExtraError

__all__ = [
    "download",
    "fetch",
    "file_signature",
    "filesystem",
    "fingerprint",
    "list_files",
    "open_file",
]

_GLOB_CHARS = re.compile(r"[*?\[]")
_PACKAGES = {
    "s3": "s3fs",
    "s3a": "s3fs",
    "gs": "gcsfs",
    "gcs": "gcsfs",
    "az": "adlfs",
    "abfs": "adlfs",
}


def filesystem(url: str, storage_options: StorageOptions) -> tuple[Any, str]:
    """The fsspec filesystem of ``url`` and the path inside it."""
    protocol = url.split("://", 1)[0].lower()
    try:
        import fsspec  # type: ignore[import-untyped]
    except ImportError:
        raise MissingExtraError("fsspec", "s3", f"reading {protocol}:// URLs") from None
    try:
        fs, path = fsspec.core.url_to_fs(url, **plain_options(storage_options))
    except ImportError as exc:
        package = _PACKAGES.get(protocol)
        if package == "s3fs":
            raise MissingExtraError("s3fs", "s3", f"reading {protocol}:// URLs") from None
        raise DataError(
            f"the {protocol}:// protocol needs a package that is not installed",
            where=url,
            found=str(exc).splitlines()[0],
            fix=f"Install {package or 'the fsspec implementation of ' + protocol}.",
        ) from None
    except (ValueError, TypeError) as exc:
        raise DataError(
            f"cannot open {protocol}:// URLs",
            where=url,
            found=str(exc).splitlines()[0],
            fix="Check the URL's protocol and data.source.storage_options.",
        ) from None
    return fs, str(path)


def _url(fs: Any, path: str) -> str:
    return str(fs.unstrip_protocol(path))


def _remote_error(what: str, url: str, exc: BaseException) -> DataError:
    return DataError(
        what,
        where=url,
        found=f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}",
        fix="Check the URL, the credentials and endpoint in storage_options, and that the "
        "object store is reachable.",
    )


def list_files(url: str, storage_options: StorageOptions) -> tuple[Any, list[str]]:
    """The filesystem and the URLs of the files ``url`` names (a file, or a glob), sorted."""
    fs, path = filesystem(url, storage_options)
    try:
        fs.invalidate_cache()  # fsspec reuses filesystem instances and their listings
        if _GLOB_CHARS.search(path):
            found = sorted(p for p in fs.glob(path) if fs.isfile(p))
            if not found:
                raise DataError(
                    "the glob matches no file",
                    where=url,
                    expected="at least one matching object",
                    fix="Check the pattern, the bucket and the prefix.",
                )
            return fs, [_url(fs, p) for p in found]
        if not fs.exists(path):
            raise DataError(
                "the file does not exist", where=url, fix="Check the bucket and the key."
            )
        if fs.isdir(path):
            raise DataError(
                "the URL names a folder (prefix), not a file",
                where=url,
                expected="an object or a glob",
                fix=f"Use a glob such as {url.rstrip('/')}/*.parquet.",
            )
    except DataError:
        raise
    except Exception as exc:  # network, permissions, unknown bucket: the backend's own errors
        raise _remote_error("cannot list the object store", url, exc) from None
    return fs, [_url(fs, path)]


def fetch(fs: Any, url: str) -> bytes:
    """The bytes of one remote file."""
    try:
        return bytes(fs.cat_file(url))
    except Exception as exc:
        raise _remote_error("cannot read the remote file", url, exc) from None


def open_file(fs: Any, url: str) -> Any:
    """One remote file opened for reading bytes (a seekable file object that fetches ranges on
    demand, so a large file is streamed, never held whole)."""
    try:
        return fs.open(url, "rb")
    except Exception as exc:
        raise _remote_error("cannot read the remote file", url, exc) from None


def read_error(url: str, exc: BaseException) -> DataError:
    """The error for a failure while reading an opened remote file."""
    return _remote_error("cannot read the remote file", url, exc)


def download(fs: Any, url: str, target: Path) -> None:
    """Copy one remote file to the local path ``target``, a chunk at a time."""
    try:
        with fs.open(url, "rb") as src, target.open("wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 22)
    except Exception as exc:
        raise _remote_error("cannot read the remote file", url, exc) from None


def file_signature(info: Mapping[str, Any]) -> str:
    """What identifies a version of a remote file: its ETag, else checksum, else mtime; with
    its size."""
    tag = info.get("ETag") or info.get("etag") or info.get("checksum") or info.get("md5Hash")
    if tag is None:
        tag = info.get("LastModified") or info.get("mtime") or info.get("last_modified") or ""
    return f"{info.get('size', '')}:{str(tag).strip(chr(34))}"


def fingerprint(url: str, storage_options: StorageOptions) -> str:
    """A hash of the names and signatures (size + ETag) of the files ``url`` names; an object
    store's ETag changes with the content, so no byte is downloaded."""
    fs, urls = list_files(url, storage_options)
    digest = hashlib.blake2b(digest_size=32)
    for file in urls:
        try:
            info = fs.info(file)
        except Exception as exc:
            raise _remote_error("cannot read the remote file's details", file, exc) from None
        digest.update(f"{file}\0{file_signature(info)}\n".encode())
    return digest.hexdigest()
