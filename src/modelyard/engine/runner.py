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
from modelyard.engine.store import Artifact, Store
from modelyard.errors import PipelineError, StepFailed

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


def _why(step: Step, now: dict[str, Any], before: dict[str, Any] | None) -> str:
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
        return "its cached result was removed"
    return "; ".join(reasons)


def _decide(
    step: Step,
    store: Store,
    digests: Mapping[str, str | None],
    forced: set[str],
    from_step: str | None,
    stale: Mapping[str, str],
    root: str | None = None,
) -> tuple[PlannedStep, dict[str, Any]]:
    """Key, action and reason of one step, given the content digests of its inputs.

    An input whose digest is unknown (its step has yet to run) makes this step "run" for now;
    once the input exists, :func:`run` decides again, so an input that comes out the same as
    before still finds this step's result in the cache (early cut-off).
    """
    external = step.external() if step.external else None
    fingerprints = {param: digests.get(up) for param, up in step.inputs.items()}
    pending = sorted({step.inputs[p] for p, fp in fingerprints.items() if fp is None})
    known = {p: fp or "" for p, fp in fingerprints.items()}
    record = _record_of(step, known, external)
    if pending:
        reason = f"input from {', '.join(pending)} will be recomputed"
        if step.name in forced:
            reason = f"--from {from_step}"
        return PlannedStep(step.name, "", "run", reason, step.description), record
    key = cache_key(
        step=step.name, code_version=step.code_version, inputs=known,
        params=step.params, external=external, root=root,
    )  # fmt: skip
    if step.name in forced:
        return PlannedStep(step.name, key, "run", f"--from {from_step}", step.description), record
    if step.name in stale and store.has(step.name, key):
        return PlannedStep(step.name, key, "run", stale[step.name], step.description), record
    if store.has(step.name, key):
        return PlannedStep(step.name, key, "cached", "unchanged", step.description), record
    reason = _why(step, record, store.recall(step.name))
    return PlannedStep(step.name, key, "run", reason, step.description), record


def _select(
    pipeline: Pipeline, from_step: str | None, until: str | None
) -> tuple[Pipeline, set[str]]:
    if until is not None:
        pipeline = pipeline.until(until)
    if from_step is not None:
        pipeline.step(from_step)  # a clear error for an unknown name
    forced = ({from_step} | pipeline.descendants(from_step)) if from_step else set()
    return pipeline, forced


def plan(
    pipeline: Pipeline,
    store: Store,
    *,
    from_step: str | None = None,
    until: str | None = None,
    stale: Mapping[str, str] | None = None,
) -> Plan:
    """Decide for every step whether it is cached or will run, and why. Moves no data.

    ``stale``: step -> why its cached result no longer stands for what the step did (its side
    effects outside the store were lost): such a step runs although its key is unchanged.
    """
    pipeline, forced = _select(pipeline, from_step, until)
    digests: dict[str, str | None] = {}
    planned: list[PlannedStep] = []
    for step in pipeline.steps:
        decision, _ = _decide(step, store, digests, forced, from_step, stale or {}, pipeline.root)
        cached = decision.action == "cached"
        digests[step.name] = store.meta(step.name, decision.key)["digest"] if cached else None
        planned.append(decision)
    return Plan(tuple(planned))


def run(
    pipeline: Pipeline,
    store: Store,
    *,
    from_step: str | None = None,
    until: str | None = None,
    listener: Listener = ignore,
    resume_command: Callable[[str], str] | None = None,
    resources: Mapping[str, Any] | None = None,
    stale: Mapping[str, str] | None = None,
) -> RunOutcome:
    """Run the pipeline: cached results are loaded lazily, the rest run in order and are saved.

    Each step's key uses the content digests of its inputs, so a step whose input was
    recomputed but came out identical is still a cache hit. ``resources`` are runtime services
    (an executor, a cache of partial work) a step receives by parameter name; they change how
    a step runs, never what it returns, so they are not part of any key. ``stale``: as in
    :func:`plan`; the new result of such a step replaces the cached one under the same key.
    """
    pipeline, forced = _select(pipeline, from_step, until)
    by_name = {s.name: s for s in pipeline.steps}
    keys: dict[str, str] = {}
    digests: dict[str, str | None] = {}
    memory: dict[str, Any] = {}

    def load(name: str) -> Any:
        if name not in memory:
            memory[name] = store.load(name, keys[name], by_name[name].codec)
        return memory[name]

    store.clear_tmp()
    records: list[StepRecord] = []
    total = len(pipeline.steps)
    for index, step in enumerate(pipeline.steps):
        decision, record_state = _decide(
            step, store, digests, forced, from_step, stale or {}, pipeline.root
        )
        keys[step.name] = decision.key
        record = StepRecord(step.name, decision.key, "not run", reason=decision.reason)
        records.append(record)
        if decision.action == "cached":
            record.status = "cached"
            digests[step.name] = store.meta(step.name, decision.key)["digest"]
            listener(StepFinished(step.name, "cached", 0.0))
            continue
        listener(StepStarted(step.name, step.description, index, total))
        value, artifact = _execute(
            step, decision, record, record_state, store, load, listener, resume_command,
            resources, replace=step.name in (stale or {}) or step.name in forced,
        )  # fmt: skip
        digests[step.name] = artifact.meta["digest"]
        memory[step.name] = value
    return RunOutcome(records, load)


def _execute(
    step: Step,
    decision: PlannedStep,
    record: StepRecord,
    record_state: dict[str, Any],
    store: Store,
    load: Callable[[str], Any],
    listener: Listener,
    resume_command: Callable[[str], str] | None,
    resources: Mapping[str, Any] | None,
    *,
    replace: bool,
) -> tuple[Any, Artifact]:
    """Call one step with its inputs, parameters and resources; save its output."""
    started = time.perf_counter()
    kwargs = {param: load(up) for param, up in step.inputs.items()}
    kwargs.update(step.params)
    if PROGRESS_PARAMETER in inspect.signature(step.func).parameters:
        kwargs[PROGRESS_PARAMETER] = Progress(step.name, listener)
    for name in step.resources:
        if name not in (resources or {}):
            raise PipelineError(
                f"step '{step.name}' needs the runtime resource '{name}', which the run "
                "was not given",
                fix="Pass it in run(..., resources={...}).",
            )
        kwargs[name] = (resources or {})[name]
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
    artifact = store.save(
        step.name, decision.key, value, step.codec, info={"seconds": round(seconds, 4)},
        replace=replace, identity=step.identity,
    )  # fmt: skip
    store.remember(step.name, record_state)
    record.status = "ran"
    record.seconds = seconds
    listener(StepFinished(step.name, "ran", seconds))
    return value, artifact


class MissingInput(PipelineError):
    """A single step's upstream output is not in the store under the key it would have."""

    def __init__(self, step: str, missing: list[str], runnable: list[str], store: str,
                 command: Callable[[str], str] | None = None,
                 until: Callable[[str], str] | None = None) -> None:  # fmt: skip
        self.step = step
        self.missing = missing
        self.runnable = runnable
        first = [f"`{command(name)}`" if command else f"'{name}'" for name in runnable]
        how = f"Run {first[0]} first" if len(first) == 1 else f"Run {', '.join(first)} first"
        if not first:
            how = "Run the steps upstream first"
        whole = f"`{until(step)}`" if until else "`modelyard run --until` it"
        super().__init__(
            f"step '{step}' needs the output of {_names(missing)}, which "
            f"{'is' if len(missing) == 1 else 'are'} not in the store under the current key",
            where=store,
            fix=f"{how} (then the steps after {'it' if len(first) == 1 else 'them'}, in "
            f"the DAG's order), or everything up to '{step}' at once: {whole}.",
        )


def _names(names: list[str]) -> str:
    quoted = [f"'{n}'" for n in names]
    return quoted[0] if len(quoted) == 1 else f"steps {', '.join(quoted)}"


def run_step(
    pipeline: Pipeline,
    store: Store,
    name: str,
    *,
    listener: Listener = ignore,
    resume_command: Callable[[str], str] | None = None,
    step_command: Callable[[str], str] | None = None,
    until_command: Callable[[str], str] | None = None,
    resources: Mapping[str, Any] | None = None,
    stale: Mapping[str, str] | None = None,
) -> StepRecord:
    """Run exactly one step, its inputs read from the store by key; what a cluster runs.

    The keys are those :func:`run` gives (the same plan over the step's ancestors, from the
    digests the store holds). When the step's output is already in the store under its key,
    nothing runs (status ``cached``). An input missing from the store raises
    :class:`MissingInput`, naming the missing upstream steps and the ones runnable now
    (``step_command(name)`` spells the command that runs one, ``until_command(name)`` the one
    that runs everything up to it). ``stale``: as in :func:`plan`.
    """
    step = pipeline.step(name)  # a clear error for an unknown name, listing the steps
    ancestry = pipeline.until(name)
    digests: dict[str, str | None] = {}
    decisions: dict[str, PlannedStep] = {}
    record_state: dict[str, Any] = {}
    for s in ancestry.steps:
        decision, state = _decide(s, store, digests, set(), None, stale or {}, pipeline.root)
        decisions[s.name] = decision
        if s.name == name:
            record_state = state
        cached = decision.action == "cached" and s.name != name
        digests[s.name] = store.meta(s.name, decision.key)["digest"] if cached else None
    decision = decisions[name]
    missing = sorted({up for up in step.inputs.values() if digests.get(up) is None})
    if missing:
        order = {n: i for i, n in enumerate(ancestry.names)}
        runnable = sorted(
            (n for n, d in decisions.items() if n != name and d.action == "run" and d.key),
            key=order.__getitem__,
        )
        raise MissingInput(name, missing, runnable, store.location, step_command, until_command)
    record = StepRecord(name, decision.key, "not run", reason=decision.reason)
    if decision.action == "cached":
        record.status = "cached"
        listener(StepFinished(name, "cached", 0.0))
        return record
    by_name = {s.name: s for s in ancestry.steps}

    def load(up: str) -> Any:
        return store.load(up, decisions[up].key, by_name[up].codec)

    listener(StepStarted(name, step.description, 0, 1))
    _execute(
        step, decision, record, record_state, store, load, listener, resume_command,
        resources, replace=name in (stale or {}),
    )  # fmt: skip
    return record
