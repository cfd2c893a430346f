"""Records in flight: what a source hands the ingester, and the decoding of messages.

A :class:`Chunk` holds the records that could be parsed as a frame of **raw** values (one row
per record; typing happens in validation, as for CSV files) and the records that could not be
parsed at all (:class:`Rejected`: empty, huge, not UTF-8, not JSON, not an object, a decoder
error). Both end in the dataset or its quarantine; nothing is dropped.
"""

from __future__ import annotations

import base64
import importlib
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from modelyard.errors import DataError

__all__ = ["Chunk", "Decoder", "Rejected", "payload_text"]


@dataclass(frozen=True)
class Rejected:
    """A record that could not be parsed, with its raw payload."""

    source: str
    payload: bytes | None
    reason: str


@dataclass
class Chunk:
    """Records from a source, ready for validation."""

    frame: pl.DataFrame
    """Raw values, one row per parsed record."""
    sources: list[str]
    """Where each row of ``frame`` came from (``kafka:topic/partition@offset``, ``file:row``)."""
    payloads: list[bytes | None] | None = None
    """The raw payload of each row (Kafka messages); ``None`` when the row is its own payload."""
    rejected: list[Rejected] = field(default_factory=list)

    @property
    def records(self) -> int:
        return self.frame.height + len(self.rejected)


def payload_text(payload: bytes | None) -> tuple[str | None, str]:
    """The payload as text (``utf8``) when it is UTF-8, else as ``base64``."""
    if payload is None:
        return None, "none"
    try:
        return payload.decode("utf-8"), "utf8"
    except UnicodeDecodeError:
        return base64.b64encode(payload).decode("ascii"), "base64"


def _text(value: Any) -> str | None:
    """A JSON value as the raw text validation parses (like a CSV field)."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(value, ensure_ascii=False, default=str)


def _json_object(payload: bytes) -> Any:
    return json.loads(payload.decode("utf-8"))  # strict UTF-8: no UTF-16/32 guessing


def load_decoder(ref: str) -> Callable[[bytes], Any]:
    """``json`` or the function ``package.module:function``."""
    if ref == "json":
        return _json_object
    module_name, _, name = ref.partition(":")
    try:
        func = getattr(importlib.import_module(module_name), name)
    except (ImportError, AttributeError) as exc:
        raise DataError(
            "the ingest decoder cannot be loaded",
            where=f"ingest.decoder: {ref}",
            found=f"{type(exc).__name__}: {exc}",
            fix="Check the module is importable (on PYTHONPATH) and defines the function.",
        ) from None
    if not callable(func):
        raise DataError("the ingest decoder is not a function", where=f"ingest.decoder: {ref}")
    return func  # type: ignore[no-any-return]


class Decoder:
    """Turns message payloads into a :class:`Chunk` with the contract's ``columns``.

    A field not in ``columns`` rejects the record unless ``allow_extra`` (then it is dropped);
    a missing field is a missing value (validation decides whether that is allowed).
    """

    def __init__(
        self,
        columns: Sequence[str],
        *,
        decoder: str = "json",
        allow_extra: bool = False,
        max_bytes: int = 1 << 20,
    ) -> None:
        self.columns = list(columns)
        self.decoder = decoder
        self.allow_extra = allow_extra
        self.max_bytes = max_bytes
        self._func = load_decoder(decoder)
        self._known = frozenset(self.columns)

    def _check(self, payload: bytes | None) -> tuple[Mapping[str, Any] | None, str | None]:
        if payload is None or len(payload) == 0:
            return None, "empty message"
        if len(payload) > self.max_bytes:
            return None, (
                f"message of {len(payload)} bytes is larger than "
                f"ingest.max_message_bytes ({self.max_bytes})"
            )
        try:
            value = self._func(payload)
        except UnicodeDecodeError:
            return None, "not UTF-8 text"
        except json.JSONDecodeError as exc:
            return None, f"not JSON ({exc.msg} at line {exc.lineno} column {exc.colno})"
        except RecursionError:
            return None, "JSON nested too deeply"
        except Exception as exc:
            return None, f"decoder {self.decoder} failed: {type(exc).__name__}: {exc}"
        if not isinstance(value, Mapping):
            return None, f"a JSON {type(value).__name__}, not an object"
        if not self.allow_extra:
            extra = [str(k) for k in value if k not in self._known]
            if extra:
                names = ", ".join(f"'{k}'" for k in extra[:5])
                return None, f"unexpected field{'s' if len(extra) > 1 else ''} {names}"
        return value, None

    def decode(self, items: Iterable[tuple[str, bytes | None]]) -> Chunk:
        """Decode ``(source, payload)`` pairs."""
        columns: dict[str, list[str | None]] = {c: [] for c in self.columns}
        sources: list[str] = []
        payloads: list[bytes | None] = []
        rejected: list[Rejected] = []
        for source, payload in items:
            value, reason = self._check(payload)
            if value is None:
                rejected.append(Rejected(source, payload, reason or "cannot be decoded"))
                continue
            for name, values in columns.items():
                values.append(_text(value.get(name)))
            sources.append(source)
            payloads.append(payload)
        frame = pl.DataFrame(columns, schema=dict.fromkeys(self.columns, pl.String))
        return Chunk(frame=frame, sources=sources, payloads=payloads, rejected=rejected)
