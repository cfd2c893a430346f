"""Cache keys: a pure function of (step code version, input fingerprints, resolved parameters)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import PurePath
from typing import Any


def canonical(value: Any) -> Any:
    """A JSON-able, order-independent form of a parameter value (pydantic models included)."""
    if hasattr(value, "model_dump"):
        return canonical(value.model_dump(mode="json", by_alias=False, warnings=False))
    if isinstance(value, Mapping):
        return {str(k): canonical(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, list | tuple):
        return [canonical(v) for v in value]
    if isinstance(value, set | frozenset):
        return sorted(canonical(v) for v in value)
    if isinstance(value, PurePath):
        return str(value)
    if value is None or isinstance(value, str | int | float | bool):
        return value
    raise TypeError(
        f"parameter value of type {type(value).__name__} cannot be part of a cache key; "
        "use JSON-like values or pydantic models"
    )


def digest(value: Any) -> str:
    text = json.dumps(canonical(value), sort_keys=True, separators=(",", ":"))
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def cache_key(
    *,
    step: str,
    code_version: str,
    inputs: Mapping[str, str],
    params: Mapping[str, Any],
    external: str | None,
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
        }
    )[:20]
