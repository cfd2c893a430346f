"""The pipeline: steps wired into a DAG, checked as a whole before any data moves."""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from modelyard.engine.cache import canonical
from modelyard.engine.step import PROGRESS_PARAMETER, Step
from modelyard.errors import PipelineError


class PipelineInvalid(PipelineError):
    """The graph is wrong; ``problems`` lists every issue found."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        what = (
            problems[0]
            if len(problems) == 1
            else "the pipeline is invalid:\n" + "\n".join(f"  - {p}" for p in problems)
        )
        super().__init__(what)


class UnknownStep(PipelineInvalid):
    """A step name given by the user (``--from``/``--until``) does not exist."""


def _suggest(name: str, names: Iterable[str]) -> str:
    guess = difflib.get_close_matches(name, list(names), n=1)
    return f" (did you mean '{guess[0]}'?)" if guess else ""


@dataclass(frozen=True)
class Pipeline:
    """An ordered, checked set of steps. Build with :meth:`of`.

    ``root``: the project's folder. A parameter naming a path inside it is keyed by its path
    relative to it, so a project keeps its keys when it moves (or runs in a container).
    """

    steps: tuple[Step, ...]
    root: str | None = None

    @classmethod
    def of(cls, steps: Iterable[Step], *, root: str | None = None) -> Pipeline:
        """Check the graph (names, inputs, parameters, cycles) and order it topologically."""
        steps = list(steps)
        problems: list[str] = []
        by_name: dict[str, Step] = {}
        for s in steps:
            if s.name in by_name:
                problems.append(f"two steps are named '{s.name}'")
            by_name[s.name] = s
        for s in steps:
            problems.extend(_check_signature(s, by_name))
        if problems:
            raise PipelineInvalid(problems)
        return cls(tuple(_toposort(steps)), root)

    @property
    def names(self) -> list[str]:
        return [s.name for s in self.steps]

    def step(self, name: str) -> Step:
        for s in self.steps:
            if s.name == name:
                return s
        raise UnknownStep(
            [
                f"there is no step '{name}'{_suggest(name, self.names)}; steps: {', '.join(self.names)}"
            ]
        )

    def ancestors(self, name: str) -> set[str]:
        seen: set[str] = set()
        todo = [name]
        while todo:
            for up in self.step(todo.pop()).upstream:
                if up not in seen:
                    seen.add(up)
                    todo.append(up)
        return seen

    def descendants(self, name: str) -> set[str]:
        self.step(name)
        seen: set[str] = set()
        frontier = {name}
        for s in self.steps:  # topological order: one pass suffices
            if any(up in frontier for up in s.upstream):
                frontier.add(s.name)
                seen.add(s.name)
        return seen

    def until(self, name: str) -> Pipeline:
        """The steps needed to produce ``name`` (and ``name`` itself)."""
        keep = self.ancestors(name) | {name}
        return self.only(keep)

    def only(self, names: Iterable[str]) -> Pipeline:
        """The steps named (in this pipeline's order), with this pipeline's root."""
        keep = set(names)
        return Pipeline(tuple(s for s in self.steps if s.name in keep), self.root)


def _check_signature(s: Step, by_name: dict[str, Step]) -> list[str]:
    problems = []
    for param, up in s.inputs.items():
        if up not in by_name:
            problems.append(
                f"step '{s.name}' takes '{param}' from step '{up}', which does not exist"
                f"{_suggest(up, by_name)}"
            )
    try:
        sig = inspect.signature(s.func)
    except (TypeError, ValueError):
        return problems
    accepts_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in sig.parameters.values())
    bound = set(s.inputs) | set(s.params) | set(s.resources)
    for both in sorted(set(s.inputs) & set(s.params)):
        problems.append(f"step '{s.name}': '{both}' is bound both to an input and to a parameter")
    for name in sorted(bound):
        if name not in sig.parameters and not accepts_any:
            problems.append(
                f"step '{s.name}': function {s.func.__name__}() has no parameter '{name}'"
                f"{_suggest(name, sig.parameters)}"
            )
    for name, p in sig.parameters.items():
        if p.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
            continue
        if name == PROGRESS_PARAMETER:
            continue
        if name not in bound and p.default is inspect.Parameter.empty:
            problems.append(
                f"step '{s.name}': parameter '{name}' of {s.func.__name__}() is not bound to an input or a value"
            )
    for name, value in s.params.items():
        try:
            canonical(value)
        except TypeError as exc:
            problems.append(f"step '{s.name}': parameter '{name}': {exc}")
    return problems


def _toposort(steps: list[Step]) -> list[Step]:
    order: list[Step] = []
    state: dict[str, int] = {}  # 1 = visiting, 2 = done
    by_name = {s.name: s for s in steps}
    stack: list[str] = []

    def visit(name: str) -> None:
        if state.get(name) == 2:
            return
        if state.get(name) == 1:
            cycle = [*stack[stack.index(name) :], name]
            raise PipelineInvalid([f"the steps form a cycle: {' -> '.join(cycle)}"])
        state[name] = 1
        stack.append(name)
        for up in by_name[name].upstream:
            visit(up)
        stack.pop()
        state[name] = 2
        order.append(by_name[name])

    for s in steps:  # keep declaration order among independent steps
        visit(s.name)
    return order
