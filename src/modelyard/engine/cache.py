"""Cache keys: a pure function of (step code version, input fingerprints, resolved parameters)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import PurePath
from typing import Any

ROOT = "<project>"
"""What the project's folder is replaced by in the canonical form of a parameter."""


def canonical(value: Any, root: str | None = None) -> Any:
    """A JSON-able, order-independent form of a parameter value (pydantic models included).

    ``root``: a folder; in every text (a path, a URL such as ``sqlite:////root/x.db``) it is
    replaced by :data:`ROOT`, so that the form does not depend on where the folder is.

    >>> canonical({"b": ["/p/q/data.csv", 1], "a": "sqlite:////p/q/x.db"}, root="/p/q")
    {'a': 'sqlite:///<project>/x.db', 'b': ['<project>/data.csv', 1]}
    """
    if hasattr(value, "model_dump"):
        return canonical(value.model_dump(mode="json", by_alias=False, warnings=False), root)
    if isinstance(value, Mapping):
        return {
            str(k): canonical(v, root) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))
        }
    if isinstance(value, list | tuple):
        return [canonical(v, root) for v in value]
    if isinstance(value, set | frozenset):
        return sorted(canonical(v, root) for v in value)
    if isinstance(value, PurePath):
        return canonical(str(value), root)
    if isinstance(value, str) and root:
        return _portable(value, root.rstrip("/"))
    if value is None or isinstance(value, str | int | float | bool):
        return value
    raise TypeError(
        f"parameter value of type {type(value).__name__} cannot be part of a cache key; "
        "use JSON-like values or pydantic models"
    )


def _portable(text: str, root: str) -> str:
    """``text`` with the folder ``root`` (a whole path component) replaced by :data:`ROOT`."""
    if root not in text:
        return text
    out, start = [], 0
    while (at := text.find(root, start)) >= 0:
        end = at + len(root)
        if end == len(text) or text[end] in "/\\?#;,\"' ":  # not /p/q2 for /p/q
            out.append(text[start:at] + ROOT)
        else:
            out.append(text[start:end])
        start = end
    return "".join(out) + text[start:]


def digest(value: Any, root: str | None = None) -> str:
    text = json.dumps(canonical(value, root), sort_keys=True, separators=(",", ":"))
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def cache_key(
    *,
    step: str,
    code_version: str,
    inputs: Mapping[str, str],
    params: Mapping[str, Any],
    external: str | None,
    root: str | None = None,
) -> str:
    """The key of a step's output.

    >>> a = cache_key(step="s", code_version="1:ab", inputs={"x": "k1"}, params={"n": 1}, external=None)
    >>> a == cache_key(step="s", code_version="1:ab", inputs={"x": "k1"}, params={"n": 1}, external=None)
    True
    >>> a == cache_key(step="s", code_version="1:ab", inputs={"x": "k1"}, params={"n": 2}, external=None)
    False
    """
    return digest(
        {
            "step": step,
            "code": code_version,
            "inputs": dict(inputs),
            "params": params,
            "external": external,
        },
        root,
    )[:20]
