"""A step: a plain typed function plus the names of the steps that feed it and its parameters.

The function's parameter names are its inputs. Each parameter is bound either to the output of
another step (``inputs``) or to a value (``params``). A parameter named ``progress`` receives a
:class:`~modelyard.engine.events.Progress` the step may use to report how far it got.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from modelyard.engine.store import Codec, auto_codec

PROGRESS_PARAMETER = "progress"


def source_hash(func: Callable[..., Any]) -> str:
    """A short hash of a function's source: editing the function changes its code version.

    Once per function and process (reading the source back is the plan's main cost); a
    function redefined, as in a notebook, is another function.
    """
    try:
        return _cached_source_hash(func)
    except TypeError:  # an unhashable callable
        return _source_hash(func)


def _source_hash(func: Callable[..., Any]) -> str:
    try:
        text = inspect.getsource(func)
    except (OSError, TypeError):
        text = f"{func.__module__}.{getattr(func, '__qualname__', repr(func))}"
    return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


_cached_source_hash = functools.cache(_source_hash)


@dataclass(frozen=True)
class Step:
    """One node of the pipeline.

    Attributes:
        name: unique name, used on the command line (``--from``, ``--until``).
        func: the function to call; its parameters are filled from ``inputs`` and ``params``.
        inputs: function parameter -> name of the step whose output it receives.
        params: function parameter -> a value (must be JSON-serialisable or a pydantic model).
        version: bump to invalidate cached results when behaviour changes beyond ``func``'s
            own source (which is hashed automatically).
        external: returns a fingerprint of state outside the pipeline the step reads (files,
            tables); a change re-runs the step.
        codec: how the output is stored; the default picks by type.
        description: one line for ``--dry-run`` and progress.
        resources: function parameters filled at run time from the run's resources (an
            executor, a cache of partial work): they change how the step runs, never what it
            returns, so they are not part of its key.
        identity: for an output that carries measurements (how long fits took): a JSON-able
            fingerprint of the output without them. The store digests that instead of the
            output's files, so the keys of the steps after it are the same on every machine
            and every run.
    """

    name: str
    func: Callable[..., Any]
    inputs: Mapping[str, str] = field(default_factory=dict)
    params: Mapping[str, Any] = field(default_factory=dict)
    version: str = "1"
    external: Callable[[], str] | None = None
    codec: Codec = field(default_factory=auto_codec)
    description: str = ""
    resources: tuple[str, ...] = ()
    identity: Callable[[Any], Any] | None = None

    @property
    def code_version(self) -> str:
        return f"{self.version}:{source_hash(self.func)}"

    @property
    def upstream(self) -> list[str]:
        return sorted(set(self.inputs.values()))
