"""``modelyard run`` and the commands that run part of the pipeline: ``ingest``, ``validate``,
``profile``; the console that shows a run's progress."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from modelyard.cli.options import INTERRUPTED, config_option, json_option, load_project
from modelyard.errors import shown_path

if TYPE_CHECKING:
    from modelyard.engine.events import Event
    from modelyard.recipe import RunResult

CONFIG_OPTION = config_option()
JSON_OPTION = json_option


def _duration(seconds: float) -> str:
    """``42s``, ``3m05s``, ``1h02m``."""
    s = max(0, round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def progress_text(elapsed: float, done: float, total: float | None, message: str) -> str:
    """What a long step shows: the time elapsed, what it is doing, and an estimate of what is
    left from the share done so far (unless the step says itself what is left, as the model
    search does with its budget)."""
    what = message or (f"{done:g}/{total:g}" if total else "")
    parts = [f"{_duration(elapsed)} elapsed"]
    if total and 0 < done < total and " left" not in message:
        left = elapsed * (total - done) / done
        if math.isfinite(left):  # a share done too small to say
            parts.append(f"~{_duration(left)} left")
    return ", ".join(parts) + (f" · {what}" if what else "")


class _Console:
    """A run as a user sees it: progress on stderr while steps run, results on stdout.

    On a terminal, a live status line per step: what it does, the time elapsed and an estimate
    of what is left (for the model search: the budget left and the best score so far).
    Without a terminal (CI, a log file), a line when a step starts, a line per finished unit of
    work (a model's cross-validated score, a step) and, every ``heartbeat`` seconds of a long
    step, its status line: a log shows progress too. The summary and the paths of the outputs
    go to stdout (``--json``: the JSON only).
    """

    def __init__(
        self,
        *,
        heartbeat: float = 15.0,
        clock: Callable[[], float] = time.monotonic,
        stderr: Any = None,
    ) -> None:
        from rich.console import Console

        self.console = Console(stderr=True) if stderr is None else stderr
        self.out = Console(soft_wrap=True)
        self.live = self.console.is_terminal
        self.heartbeat = heartbeat
        self.clock = clock
        self._status: Any = None
        self._started = 0.0
        self._last_line = 0.0

    def __call__(self, event: Event) -> None:
        from modelyard.engine.events import StepFailedEvent, StepFinished, StepProgress, StepStarted

        if isinstance(event, StepStarted):
            self._stop()
            self._started = self._last_line = self.clock()
            if self.live:
                self._status = self.console.status(f"[bold]{event.step}[/] {event.description}")
                self._status.start()
            else:
                self.console.print(
                    f"  [dim]running[/] {event.step}: {event.description} "
                    f"[dim]({event.index + 1}/{event.total})[/]",
                    highlight=False,
                )
        elif isinstance(event, StepProgress):
            if event.note:
                self.console.print(f"  [dim]{event.step}:[/] {event.note}", highlight=False)
            now = self.clock()
            text = progress_text(now - self._started, event.done, event.total, event.message)
            if self._status is not None:
                self._status.update(f"[bold]{event.step}[/] [dim]{text}[/]")
            elif not self.live and now - self._last_line >= self.heartbeat:
                self._last_line = now
                self.console.print(f"  [dim]{event.step} ({text})[/]", highlight=False)
        elif isinstance(event, StepFinished):
            self._stop()
            if event.status == "cached":
                self.console.print(f"  [dim]cached[/]  {event.step}")
            else:
                self.console.print(
                    f"  [green]ran[/]     {event.step} [dim]({event.seconds:.2f}s)[/]"
                )
        elif isinstance(event, StepFailedEvent):
            self._stop()
            self.console.print(f"  [red]failed[/]  {event.step} [dim]({event.seconds:.2f}s)[/]")

    def _stop(self) -> None:
        if self._status is not None:
            self._status.stop()
            self._status = None

    def summary(self, result: RunResult) -> None:
        from rich.markup import escape as markup

        ran, cached = len(result.ran), len(result.cached)
        self.out.print(
            f"[bold]{result.project}[/]: {ran} step{'s' if ran != 1 else ''} ran, "
            f"{cached} cached, in {result.seconds:.2f}s"
        )
        for label, report in result.validation.items():
            colour = "green" if report.invalid_rows == 0 else "yellow"
            unlabelled = (
                f", {report.missing_target_rows:,} without a target"
                if report.missing_target_rows
                else ""
            )
            self.out.print(
                f"  {label}: [{colour}]{report.valid_rows:,} valid, {report.invalid_rows:,} "
                f"invalid{unlabelled}[/]"
            )
        for name, reason in result.excluded_features.items():
            self.out.print(
                f"  [yellow]left out of the model[/]: '{name}' leaks the target "
                "(keep it with features.allow_leaky)"
            )
            self.out.print(f"    [dim]- {markup(reason)}[/]")
        reg = result.registration
        if reg is not None:
            d = reg.decision
            verdict = (
                "[green]promoted to champion[/]" if d.promote else "[yellow]kept as challenger[/]"
            )
            self.out.print(
                f"  model: {reg.model_name} version {reg.version}, {d.metric} {d.candidate:.4f}: {verdict}"
            )
            for reason in d.reasons:
                self.out.print(f"    [dim]- {markup(reason)}[/]")
        for name, path in result.outputs.items():
            self.out.print(f"  [dim]{name:<18}[/] {shown_path(path)}", soft_wrap=True)


_DATA_STEPS = ("ingest", "ingest_test", "contract", "validate", "validate_test", "profile", "split")
_SEARCH = ("explore", "tune", "train")


def _interrupt_on_signals() -> dict[int, Any]:
    """SIGTERM (``kill``, ``timeout``, a container stopping) stops a run as Ctrl-C does: the
    workers are stopped, finished steps and fits stay cached. Both are remembered in
    :data:`~modelyard.cli.options.INTERRUPTED`. Returns the handlers they replace."""
    import signal

    def stop(signum: int, frame: Any) -> None:
        INTERRUPTED.set()
        raise KeyboardInterrupt

    return {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}


STORE_ENV = "MODELYARD_STORE"


@click.command()
@CONFIG_OPTION
@click.option("--from", "from_step", metavar="STEP", help="Re-run STEP and every step after it.")
@click.option("--until", metavar="STEP", help="Stop after STEP (runs only what it needs).")
@click.option(
    "--step",
    metavar="STEP",
    help="Run only STEP, its inputs read from the store by key; nothing to do when its "
    "output is there. What a Kubeflow component runs.",
)
@click.option(
    "--store",
    metavar="URL",
    envvar=STORE_ENV,
    help="The artifact store: a folder or an fsspec URL (s3://bucket/prefix), instead of the "
    f"config's `store` (default: the workdir). Also ${STORE_ENV}.",
)
@click.option(
    "--dry-run",
    is_flag=True,
    help="Print the plan (each step cached or to run, and why); run nothing.",
)
@JSON_OPTION
def run(
    config_path: Path,
    from_step: str | None,
    until: str | None,
    dry_run: bool,
    as_json: bool,
    step: str | None = None,
    store: str | None = None,
) -> None:
    """Run the pipeline; unchanged steps come from the cache."""
    if step is not None and (from_step is not None or until is not None):
        raise click.UsageError("--step runs one step: it cannot go with --from or --until.")
    if step is not None and dry_run:
        raise click.UsageError(
            "--step cannot go with --dry-run (see `run --dry-run --until STEP`)."
        )
    project = load_project(config_path, store=store)
    if step is not None:
        _run_one_step(project, step, as_json)
        return
    if dry_run:
        the_plan = project.plan(from_step=from_step, until=until)
        estimate = project.search_estimate() if until is None or until not in _DATA_STEPS else None
        if as_json:
            click.echo(json.dumps([s.__dict__ for s in the_plan.steps], indent=2))
        else:
            click.echo(str(the_plan))
            if estimate and any(s.action == "run" for s in the_plan.steps if s.name in _SEARCH):
                click.echo(estimate)
        return
    import signal

    from modelyard.errors import ValidationFailed

    console = _Console()
    previous = _interrupt_on_signals()
    try:
        result = project.run(from_step=from_step, until=until, listener=console)
    except ValidationFailed as exc:  # what was written before it stopped, then the error
        if exc.run is not None:
            if as_json:
                click.echo(json.dumps(exc.run.to_dict(), indent=2))
            else:
                console.summary(exc.run)
        raise
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2))
    else:
        console.summary(result)


def _run_one_step(project: Any, step: str, as_json: bool) -> None:
    """``run --step``: one step; SIGTERM stops it as Ctrl-C does (nothing is committed)."""
    import signal

    console = _Console()
    previous = _interrupt_on_signals()
    try:
        result = project.run_step(step, listener=console)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2))
    elif result.status == "cached":
        console.out.print(
            f"{result.step}: nothing to do, its output is in the store "
            f"(key {result.key}, {result.store})",
            highlight=False,
            soft_wrap=True,
        )
    else:
        console.out.print(
            f"{result.step}: ran in {result.seconds:.2f}s (key {result.key}, {result.store})",
            highlight=False,
            soft_wrap=True,
        )


def _stage_command(name: str, step: str, help_text: str) -> click.Command:
    @click.command(name=name, help=help_text)
    @CONFIG_OPTION
    @JSON_OPTION
    def command(config_path: Path, as_json: bool) -> None:
        ctx = click.get_current_context()
        ctx.invoke(
            run, config_path=config_path, from_step=None, until=step, dry_run=False, as_json=as_json
        )

    return command


@click.command()
@CONFIG_OPTION
@click.option(
    "--follow",
    is_flag=True,
    help="Ingest continuously from the `ingest` section (Kafka, watched folder).",
)
@click.option(
    "--until-idle",
    type=float,
    metavar="SECONDS",
    help="With --follow: stop after SECONDS without new records.",
)
@JSON_OPTION
def ingest(config_path: Path, follow: bool, until_idle: float | None, as_json: bool) -> None:
    """Read the data (`run --until ingest`), or with --follow ingest continuously, exactly once,
    into the partitioned Parquet dataset of the `ingest` section. Stop with Ctrl-C (SIGINT) or
    SIGTERM: the current batch is committed first."""
    ctx = click.get_current_context()
    if not follow:
        ctx.invoke(
            run,
            config_path=config_path,
            from_step=None,
            until="ingest",
            dry_run=False,
            as_json=as_json,
        )
        return
    from modelyard.data.streaming import BatchReport

    project = load_project(config_path)
    console = _Console()

    def on_batch(b: BatchReport) -> None:
        console.console.print(
            f"  batch {b.batch}: {b.records:,} records ({b.valid:,} valid, {b.quarantined:,} quarantined)"
            f" in {b.seconds:.2f}s; {b.total_records:,} in all, {b.records_per_second:,.0f}/s"
        )

    stats = project.ingest(on_batch=on_batch, until_idle=until_idle)
    summary = {
        "batches": stats.batches, "records": stats.records, "valid": stats.valid,
        "quarantined": stats.quarantined, "duplicates": stats.duplicates,
        "seconds": round(stats.seconds, 3), "stopped_by": stats.stopped_by,
    }  # fmt: skip
    if as_json:
        click.echo(json.dumps(summary, indent=2))
    else:
        console.out.print(
            f"stopped ({stats.stopped_by}): {stats.records:,} records in {stats.batches} batches, "
            f"{stats.valid:,} valid, {stats.quarantined:,} quarantined, {stats.duplicates:,} replays skipped"
        )


validate = _stage_command(
    "validate", "validate", "Validate the data against the contract (`run --until validate`)."
)
profile = _stage_command(
    "profile", "profile", "Profile the data and write the HTML report (`run --until profile`)."
)
