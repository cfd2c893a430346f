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
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
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
        return text


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
        return self.what


class DataError(ModelyardError):
    """Data cannot be read or used as configured."""


class ValidationFailed(DataError):
    """Rows broke the data contract and the configured policy stops the run."""


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
