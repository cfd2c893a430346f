"""Plan and run a pipeline: each step cached, or run, and why; outputs saved atomically."""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from modelyard.engine.cache import cache_key, digest
from modelyard.engine.dag import Pipeline
from modelyard.engine.events import (
    Listener,
    Progress,
    StepFailedEvent,
    StepFinished,
    StepStarted,
    ignore,
)
from modelyard.engine.step import PROGRESS_PARAMETER, Step
from modelyard.engine.store import ArtifactStore
from modelyard.errors import StepFailed

Action = Literal["cached", "run"]


@dataclass(frozen=True)
class PlannedStep:
    name: str
    key: str
    action: Action
    reason: str
    description: str = ""


@dataclass(frozen=True)
class Plan:
    """What a run will do. ``str(plan)`` is the ``--dry-run`` table."""

    steps: tuple[PlannedStep, ...]

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self.steps)

    @property
    def to_run(self) -> list[str]:
        return [s.name for s in self.steps if s.action == "run"]

    def __str__(self) -> str:
        width = max((len(s.name) for s in self.steps), default=4)
        rows = [f"{s.name:<{width}}  {s.action:<7} {s.reason}" for s in self.steps]
        return "\n".join(rows)


@dataclass
class StepRecord:
    name: str
    key: str
    status: Literal["ran", "cached", "failed", "not run"]
    seconds: float = 0.0
    reason: str = ""


@dataclass
class RunOutcome:
    """Per-step records and access to every output of the run."""

    records: list[StepRecord]
    _load: Callable[[str], Any] = field(repr=False)

    def output(self, step: str) -> Any:
        return self._load(step)

    @property
    def ran(self) -> list[str]:
        return [r.name for r in self.records if r.status == "ran"]

    @property
    def cached(self) -> list[str]:
        return [r.name for r in self.records if r.status == "cached"]


def _record_of(step: Step, inputs: Mapping[str, str], external: str | None) -> dict[str, Any]:
    return {
        "code": step.code_version,
        "inputs": dict(inputs),
        "params": {name: digest(value) for name, value in step.params.items()},
        "external": external,
    }


def _why(step: Step, now: dict[str, Any], before: dict[str, Any] | None, cleaned: bool) -> str:
    if before is None:
        return "never run"
    reasons = []
    if before.get("code") != now["code"]:
        reasons.append("its code changed")
    changed = sorted(
        n
        for n in set(now["params"]) | set(before.get("params", {}))
        if now["params"].get(n) != before.get("params", {}).get(n)
    )
    if changed:
        reasons.append(f"parameter{'s' if len(changed) > 1 else ''} {', '.join(changed)} changed")
    ups = sorted(
        {
            step.inputs[p]
            for p in now["inputs"]
            if now["inputs"][p] != before.get("inputs", {}).get(p)
        }
    )
    if ups:
        reasons.append(f"input{'s' if len(ups) > 1 else ''} from {', '.join(ups)} changed")
    if before.get("external") != now["external"]:
        reasons.append("its source data changed")
    if not reasons:
        return "its cached result was removed" if cleaned else "no cached result"
    return "; ".join(reasons)


def plan(
    pipeline: Pipeline,
    store: ArtifactStore,
    *,
    from_step: str | None = None,
    until: str | None = None,
) -> Plan:
    """Decide for every step whether it is cached or will run, and why. Moves no data."""
    if until is not None:
        pipeline = pipeline.until(until)
    forced = ({from_step} | pipeline.descendants(from_step)) if from_step else set()
    keys: dict[str, str] = {}
    planned: list[PlannedStep] = []
    for step in pipeline.steps:
        input_keys = {param: keys[up] for param, up in step.inputs.items()}
        external = step.external() if step.external else None
        key = cache_key(
            step=step.name, code_version=step.code_version, inputs=input_keys,
            params=step.params, external=external,
        )  # fmt: skip
        keys[step.name] = key
        upstream_runs = any(p.action == "run" and p.name in step.upstream for p in planned)
        if step.name in forced:
            action: Action = "run"
            reason = f"--from {from_step}"
        elif store.has(step.name, key):
            action, reason = "cached", "unchanged"
        else:
            action = "run"
            before = store.recall(step.name)
            reason = _why(
                step, _record_of(step, input_keys, external), before, cleaned=not upstream_runs
            )
        planned.append(PlannedStep(step.name, key, action, reason, step.description))
    return Plan(tuple(planned))


def run(
    pipeline: Pipeline,
    store: ArtifactStore,
    the_plan: Plan,
    *,
    listener: Listener = ignore,
    resume_command: Callable[[str], str] | None = None,
) -> RunOutcome:
    """Execute ``the_plan``: load cached outputs lazily, run the rest in order, save each."""
    by_name = {s.name: s for s in pipeline.steps}
    keys = {p.name: p.key for p in the_plan}
    memory: dict[str, Any] = {}

    def load(name: str) -> Any:
        if name not in memory:
            step = by_name[name]
            memory[name] = store.load(name, keys[name], step.codec)
        return memory[name]

    store.clear_tmp()
    records = [StepRecord(p.name, p.key, "not run", reason=p.reason) for p in the_plan]
    total = len(records)
    for index, (planned, record) in enumerate(zip(the_plan, records, strict=True)):
        step = by_name[planned.name]
        if planned.action == "cached":
            record.status = "cached"
            listener(StepFinished(step.name, "cached", 0.0))
            continue
        listener(StepStarted(step.name, step.description, index, total))
        started = time.perf_counter()
        kwargs = {param: load(up) for param, up in step.inputs.items()}
        kwargs.update(step.params)
        if PROGRESS_PARAMETER in inspect.signature(step.func).parameters:
            kwargs[PROGRESS_PARAMETER] = Progress(step.name, listener)
        try:
            value = step.func(**kwargs)
        except (Exception, KeyboardInterrupt) as exc:
            record.status = "failed"
            record.seconds = time.perf_counter() - started
            listener(StepFailedEvent(step.name, str(exc), record.seconds))
            if isinstance(exc, KeyboardInterrupt):
                raise
            hint = resume_command(step.name) if resume_command else None
            raise StepFailed(step.name, exc, hint) from exc
        seconds = time.perf_counter() - started
        store.save(step.name, planned.key, value, step.codec, info={"seconds": round(seconds, 4)})
        input_keys = {param: keys[up] for param, up in step.inputs.items()}
        external = None
        if step.external is not None:
            external = step.external()
        store.remember(step.name, _record_of(step, input_keys, external))
        memory[step.name] = value
        record.status = "ran"
        record.seconds = seconds
        listener(StepFinished(step.name, "ran", seconds))
    return RunOutcome(records, load)
