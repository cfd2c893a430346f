"""The one exception tree of modelyard.

Every error a user can cause is a :class:`ModelyardError`. Its message says *what* went
wrong, *where* (file, key path, column, step), what was *expected*, what was *found*, and
*how to fix* it. The CLI prints it as one paragraph, without a traceback.

::

    ModelyardError
    ├── ConfigError          modelyard.yaml is wrong (all problems at once)
    ├── DataError            a data file or table cannot be read or is unusable
    │   └── ValidationFailed rows broke the data contract and the policy says stop
    ├── PipelineError        the step graph is wrong (missing input, cycle, unknown step)
    ├── StepFailed           a step raised; names the step and the command to resume
    ├── LockedError          another run holds the project's lock
    └── MissingExtraError    an optional capability needs an extra to be installed

Two helpers keep messages short and free of secrets, wherever they are written:
:func:`name_list` (the first few names of a long list, and how many there are) and
:func:`mask_url` (a URL with its password hidden). Every error's message goes through
:func:`mask_urls`, so a URL with a password never reaches a person through an error.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any


class ModelyardError(Exception):
    """Root of all errors a user can cause; the message is meant to be read by a person."""

    def __init__(
        self,
        what: str,
        *,
        where: str | None = None,
        expected: str | None = None,
        found: str | None = None,
        fix: str | None = None,
    ) -> None:
        self.what = what
        self.where = where
        self.expected = expected
        self.found = found
        self.fix = fix
        super().__init__(self.render())

    def __reduce__(self) -> tuple[Any, ...]:
        # Rebuilt from its state, not by calling __init__ again (subclasses take other
        # arguments): an error raised in a worker process arrives in the driver as itself.
        return (_restore, (type(self), self.args, self.__dict__))

    def render(self) -> str:
        head = f"{self.where}: {self.what}" if self.where else self.what
        parts = [head]
        if self.expected is not None:
            parts.append(f"Expected {self.expected}")
        if self.found is not None:
            parts.append(f"found {self.found}")
        text = parts[0]
        if len(parts) > 1:
            text += ". " + ", ".join(parts[1:])
        if not text.endswith("."):
            text += "."
        if self.fix:
            text += f" {self.fix}"
        return mask_urls(text)


def _restore(cls: type[ModelyardError], args: tuple[Any, ...], state: dict[str, Any]) -> Any:
    error = cls.__new__(cls)
    error.args = args
    error.__dict__.update(state)
    return error


@dataclass(frozen=True)
class Problem:
    """One problem in a configuration file."""

    location: str  # "modelyard.yaml:12" or "modelyard.yaml"
    key: str  # dotted key path, e.g. "data.source.path"
    message: str

    def __str__(self) -> str:
        key = f" {self.key}:" if self.key else ""
        return f"{self.location}:{key} {self.message}"


class ConfigError(ModelyardError):
    """modelyard.yaml (or another config file) has one or more problems; all are listed."""

    def __init__(self, problems: Sequence[Problem], *, source: str) -> None:
        self.problems = list(problems)
        self.source = source
        n = len(self.problems)
        what = f"{n} problem{'s' if n != 1 else ''} in {source}:\n" + "\n".join(
            f"  - {p}" for p in self.problems
        )
        super().__init__(what)

    def render(self) -> str:
        return mask_urls(self.what)


class DataError(ModelyardError):
    """Data cannot be read or used as configured."""


class ValidationFailed(DataError):
    """Rows broke the data contract and the configured policy stops the run.

    ``result`` is the validation's outcome (a ``ValidationResult``: the report and the
    quarantine), so that the rows can be written where the user inspects them before the run
    stops; ``None`` when there is none to show.
    """

    result: Any
    run: Any = None
    """The run that stopped (a ``RunResult`` of the recipe), with what it wrote first."""

    def __init__(self, what: str, *, result: Any = None, **details: str | None) -> None:
        self.result = result
        super().__init__(what, **details)


class PipelineError(ModelyardError):
    """The step graph is invalid: a missing input, a cycle, an unknown step or parameter."""


class StepFailed(ModelyardError):
    """A step raised; the message names the step and the exact command to resume."""

    def __init__(self, step: str, cause: BaseException, resume: str | None = None) -> None:
        self.step = step
        self.cause = cause
        detail = (
            str(cause) if isinstance(cause, ModelyardError) else f"{type(cause).__name__}: {cause}"
        )
        fix = f"Fix the cause, then resume with: {resume}" if resume else None
        super().__init__(f"step '{step}' failed: {detail}", fix=fix)


class LockedError(ModelyardError):
    """Another run holds the project's lock."""


class MissingExtraError(ModelyardError):
    """An optional capability needs a package that is not installed."""

    def __init__(self, package: str, extra: str, purpose: str) -> None:
        super().__init__(
            f"{purpose} needs the package '{package}', which is not installed",
            fix=f"Install it with: pip install 'modelyard[{extra}]' (or uv sync --extra {extra}).",
        )


# ----------------------------------------------------------------------------- message helpers

NAMES_SHOWN = 8
"""How many names :func:`name_list` shows before it counts the rest."""


def name_list(names: Iterable[object], limit: int = NAMES_SHOWN) -> str:
    """Names for a message: all of a short list, else the first ``limit`` and a count.

    Quoted with ``repr``, so a name with spaces or an empty name stays readable. One line
    whatever the length of the list (a table of 10,000 columns gives one short line).

    >>> name_list(["a", "b"])
    "'a', 'b'"
    >>> name_list([f"c{i}" for i in range(10_000)], limit=3)
    "'c0', 'c1', 'c2', ... and 9,997 more (10,000 in all)"
    """
    items = list(names)
    shown = ", ".join(repr(n) for n in items[:limit])
    if len(items) <= limit:
        return shown
    return f"{shown}, ... and {len(items) - limit:,} more ({len(items):,} in all)"


def shown_path(path: Path) -> str:
    """A path for a message: relative to the working folder when it is below it (shorter)."""
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


MASK = "***"
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://)(.*)$", re.DOTALL)
_SECRET_QUERY_KEY = re.compile(r"secret|passw|token|key|credential|signature", re.IGNORECASE)


def split_credentials(url: str) -> tuple[str, str, str | None, str] | None:
    """``(scheme://, user, password, rest)`` of a URL with credentials, else ``None``.

    The credentials end at the **last** ``@`` of the URL, not at the first: a password
    written without %-encoding may hold ``@``, ``/``, ``:``, ``#`` or ``?`` (``p@ss/w:rd#x``),
    which a strict parser (``urllib.parse``, SQLAlchemy) would cut at the first of them,
    taking the rest of the password for the host, path or fragment. The user name ends at
    the first ``:``; a URL whose part before the last ``@`` is a path (it holds a ``/`` before
    any ``:``) has no credentials.

    >>> split_credentials("postgresql://me:p@ss/w:rd#x@db:5432/app")
    ('postgresql://', 'me', 'p@ss/w:rd#x', 'db:5432/app')
    >>> split_credentials("s3://bucket/key@2024.csv") is None
    True
    """
    match = _SCHEME.match(url)
    if match is None:
        return None
    scheme, rest = match.groups()
    userinfo, at, after = rest.rpartition("@")
    if not at:
        return None
    user, colon, password = userinfo.partition(":")
    if any(ch in user for ch in "/?#"):
        return None  # an '@' in a path or query, not credentials
    return scheme, user, password if colon else None, after


def mask_url(url: str) -> str:
    """``url`` fit for a message or a log: its password and secret query values masked.

    ``postgresql://me:p@ss/w:rd#x@db/app`` becomes ``postgresql://me:***@db/app`` (see
    :func:`split_credentials` for why the password ends at the last ``@``); values of query
    parameters whose name says secret, password, token, key or credential become ``***``.
    The one helper for every URL shown to a person: SQL, object stores, Kafka, MLflow.

    >>> mask_url("http://me:p@ss/w:rd#x@mlflow:5000/")
    'http://me:***@mlflow:5000/'
    >>> mask_url("s3://bucket/data.csv?versionId=3&token=abc")
    's3://bucket/data.csv?versionId=3&token=***'
    """
    parts = split_credentials(url)
    if parts is not None:
        scheme, user, password, rest = parts
        url = f"{scheme}{user}{':' + MASK if password is not None else ''}@{rest}"
    head, question, query = url.partition("?")
    if not question:
        return url
    query, hash_, fragment = query.partition("#")
    pairs = []
    for pair in query.split("&"):
        key, eq, _value = pair.partition("=")
        pairs.append(f"{key}={MASK}" if eq and _SECRET_QUERY_KEY.search(key) else pair)
    return f"{head}?{'&'.join(pairs)}{hash_}{fragment}"


_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>`]+")


def mask_urls(text: str) -> str:
    """``text`` with :func:`mask_url` applied to every URL in it (a URL ends at white space
    or a quote).

    >>> mask_urls("cannot connect to 'postgresql://me:p@ss/w:rd#x@db/app': refused")
    "cannot connect to 'postgresql://me:***@db/app': refused"
    """
    if "://" not in text:
        return text
    return _URL_IN_TEXT.sub(lambda m: mask_url(m.group(0)), text)
