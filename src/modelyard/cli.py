"""The ``modelyard`` command: a thin layer over the Python API (:class:`modelyard.recipe.Project`).

Heavy libraries are imported inside the commands, so ``modelyard --help`` stays fast.
User errors print one paragraph (no traceback) and exit with status 2; a failed step exits 1.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

from modelyard.__about__ import __version__
from modelyard.config.options import config_option, json_option
from modelyard.errors import shown_path
from modelyard.label_commands import label as label_group
from modelyard.monitor_commands import drift, monitor
from modelyard.ops.serving.commands import package, serve

if TYPE_CHECKING:
    from modelyard.engine.events import Event
    from modelyard.recipe import Project, RunResult

CONFIG_OPTION = config_option()
JSON_OPTION = json_option


def _fail(exc: Exception) -> NoReturn:
    from modelyard.errors import StepFailed

    click.secho(f"error: {exc}", fg="red", err=True)
    sys.exit(1 if isinstance(exc, StepFailed) else 2)


def _project(config_path: Path) -> Project:
    from modelyard.recipe import Project

    return Project.from_yaml(config_path)


class _Guard(click.Group):
    """Turn ModelyardError (and Ctrl-C) into a clean message; anything else keeps its traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        from modelyard.errors import ModelyardError

        try:
            return super().invoke(ctx)
        except ModelyardError as exc:
            _fail(exc)
        except KeyboardInterrupt:
            click.secho(
                "interrupted: finished steps are cached; run the same command again to resume.",
                fg="yellow",
                err=True,
            )
            sys.exit(130)


@click.group(cls=_Guard, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="modelyard")
def main() -> None:
    """modelyard: from a table of raw data to a tested, versioned, served and monitored model.

    Start with `modelyard init DATA_FILE --target COLUMN`, then `modelyard run`.
    """


# ----------------------------------------------------------------------------- run


class _Console:
    """Progress on stderr while steps run; a summary at the end.

    On a terminal, a live status line per step: what it is doing, for how long, and for the
    model search the budget left and the best score so far. Every finished unit of work worth
    keeping (a model's cross-validated score) is also printed as a line, so a log file without
    a terminal shows progress too.
    """

    def __init__(self, quiet: bool) -> None:
        from rich.console import Console

        self.console = Console(stderr=True, quiet=quiet)
        self._status: Any = None
        self._started = 0.0

    def __call__(self, event: Event) -> None:
        import time

        from modelyard.engine.events import StepFailedEvent, StepFinished, StepProgress, StepStarted

        if isinstance(event, StepStarted):
            self._stop()
            self._started = time.monotonic()
            label = f"[bold]{event.step}[/] {event.description}"
            self._status = self.console.status(label)
            self._status.start()
        elif isinstance(event, StepProgress):
            if event.note:
                self.console.print(f"  [dim]{event.step}:[/] {event.note}", highlight=False)
            if self._status is not None:
                elapsed = time.monotonic() - self._started
                what = event.message
                if not what and event.total:
                    what = f"{event.done:g}/{event.total:g}"
                self._status.update(f"[bold]{event.step}[/] [dim]{elapsed:.0f}s[/] {what}")
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
        self.console.print(
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
            self.console.print(
                f"  {label}: [{colour}]{report.valid_rows:,} valid, {report.invalid_rows:,} "
                f"invalid{unlabelled}[/]"
            )
        for name, reason in result.excluded_features.items():
            self.console.print(
                f"  [yellow]left out of the model[/]: '{name}' leaks the target "
                "(keep it with features.allow_leaky)"
            )
            self.console.print(f"    [dim]- {markup(reason)}[/]")
        reg = result.registration
        if reg is not None:
            d = reg.decision
            verdict = (
                "[green]promoted to champion[/]" if d.promote else "[yellow]kept as challenger[/]"
            )
            self.console.print(
                f"  model: {reg.model_name} version {reg.version}, {d.metric} {d.candidate:.4f}: {verdict}"
            )
            for reason in d.reasons:
                self.console.print(f"    [dim]- {markup(reason)}[/]")
        for name, path in result.outputs.items():
            self.console.print(f"  [dim]{name:<18}[/] {shown_path(path)}", soft_wrap=True)


_DATA_STEPS = ("ingest", "ingest_test", "contract", "validate", "validate_test", "profile", "split")
_SEARCH = ("explore", "tune", "train")


def _terminate_like_ctrl_c() -> None:
    """SIGTERM (``kill``, ``timeout``, a container stopping) stops a run as Ctrl-C does: the
    workers are stopped, finished steps and fits stay cached."""
    import signal

    def stop(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)


@main.command()
@CONFIG_OPTION
@click.option("--from", "from_step", metavar="STEP", help="Re-run STEP and every step after it.")
@click.option("--until", metavar="STEP", help="Stop after STEP (runs only what it needs).")
@click.option(
    "--dry-run",
    is_flag=True,
    help="Print the plan (each step cached or to run, and why); run nothing.",
)
@JSON_OPTION
def run(
    config_path: Path, from_step: str | None, until: str | None, dry_run: bool, as_json: bool
) -> None:
    """Run the pipeline; unchanged steps come from the cache."""
    project = _project(config_path)
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
    from modelyard.errors import ValidationFailed

    console = _Console(quiet=as_json)
    _terminate_like_ctrl_c()
    try:
        result = project.run(from_step=from_step, until=until, listener=console)
    except ValidationFailed as exc:  # what was written before it stopped, then the error
        if exc.run is not None:
            if as_json:
                click.echo(json.dumps(exc.run.to_dict(), indent=2))
            else:
                console.summary(exc.run)
        raise
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2))
    else:
        console.summary(result)


def _stage_command(name: str, step: str, help_text: str) -> None:
    @main.command(name=name, help=help_text)
    @CONFIG_OPTION
    @JSON_OPTION
    def command(config_path: Path, as_json: bool) -> None:
        ctx = click.get_current_context()
        ctx.invoke(
            run, config_path=config_path, from_step=None, until=step, dry_run=False, as_json=as_json
        )


@main.command()
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
    from modelyard.data.streaming import follow as follow_stream
    from modelyard.errors import ModelyardError

    project = _project(config_path)
    if project.config.ingest is None:
        raise ModelyardError(
            "there is no `ingest` section in the configuration",
            where=str(config_path),
            fix="Add one (see docs/configuration.md, IngestSection) to ingest from Kafka or a folder.",
        )
    contract = project.declared_contract()
    if contract is None:
        raise ModelyardError(
            "continuous ingestion validates every batch against the data contract, and there is none yet",
            where=str(project.config.contract.path),
            fix="Run `modelyard validate` once on reference data to infer and write it.",
        )
    console = _Console(quiet=as_json)

    def on_batch(b: BatchReport) -> None:
        console.console.print(
            f"  batch {b.batch}: {b.records:,} records ({b.valid:,} valid, {b.quarantined:,} quarantined)"
            f" in {b.seconds:.2f}s; {b.total_records:,} in all, {b.records_per_second:,.0f}/s"
        )

    stats = follow_stream(
        project.config, contract=contract, on_batch=on_batch, until_idle=until_idle
    )
    summary = {
        "batches": stats.batches, "records": stats.records, "valid": stats.valid,
        "quarantined": stats.quarantined, "duplicates": stats.duplicates,
        "seconds": round(stats.seconds, 3), "stopped_by": stats.stopped_by,
    }  # fmt: skip
    if as_json:
        click.echo(json.dumps(summary, indent=2))
    else:
        console.console.print(
            f"stopped ({stats.stopped_by}): {stats.records:,} records in {stats.batches} batches, "
            f"{stats.valid:,} valid, {stats.quarantined:,} quarantined, {stats.duplicates:,} replays skipped"
        )


_stage_command(
    "validate", "validate", "Validate the data against the contract (`run --until validate`)."
)
_stage_command(
    "profile", "profile", "Profile the data and write the HTML report (`run --until profile`)."
)


# ----------------------------------------------------------------------------- models


@main.group()
def models() -> None:
    """The registered model: versions, the champion, promotion and rollback (audited)."""


def _version_row(v: Any) -> dict[str, Any]:
    return {
        "version": v.version,
        "aliases": v.aliases,
        "created": v.created.isoformat(timespec="seconds"),
        "gate": v.tags.get("modelyard.gate", ""),
        "p99_ms": _float_tag(v.tags.get("modelyard.latency.p99_ms")),
        "metrics": {
            k: round(val, 6) for k, val in sorted(v.metrics.items()) if k.startswith("test_")
        },
        "run_id": v.run_id,
    }


def _float_tag(text: str | None) -> float | None:
    try:
        return None if text is None else float(text)
    except ValueError:
        return None


@models.command(name="list")
@CONFIG_OPTION
@click.option("--model", "model_name", help="Registered model name (default: the project's).")
@JSON_OPTION
def models_list(config_path: Path, model_name: str | None, as_json: bool) -> None:
    """List the versions with their aliases, gate result and test metrics."""
    registry = _project(config_path).registry(model_name)
    rows = [_version_row(v) for v in registry.versions()]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo(f"model '{registry.model_name}' has no versions yet; run: modelyard run")
        return
    from rich.console import Console
    from rich.table import Table

    from modelyard.errors import mask_url

    table = Table(title=f"{registry.model_name} ({mask_url(registry.tracking_uri)})")
    for col in ("version", "aliases", "created", "gate", "p99 ms", "test metrics"):
        table.add_column(col)
    for r in rows:
        metrics = ", ".join(
            f"{k.removeprefix('test_')}={v:.4g}" for k, v in list(r["metrics"].items())[:4]
        )
        p99 = "" if r["p99_ms"] is None else f"{r['p99_ms']:.3g}"
        table.add_row(r["version"], ", ".join(r["aliases"]), r["created"], r["gate"], p99, metrics)
    Console().print(table)


@models.command(name="show")
@CONFIG_OPTION
@click.argument("version")
@click.option("--model", "model_name", help="Registered model name (default: the project's).")
@JSON_OPTION
def models_show(config_path: Path, version: str, model_name: str | None, as_json: bool) -> None:
    """Show one version: aliases, metrics, lineage tags and the gate's reasons."""
    info = _project(config_path).registry(model_name).show(version)
    data = info.model_dump(mode="json")
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    import yaml

    click.echo(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))


@models.command(name="promote")
@CONFIG_OPTION
@click.argument("version")
@click.option("--reason", required=True, help="Why (recorded in the audit log).")
@click.option("--model", "model_name", help="Registered model name (default: the project's).")
@click.option(
    "--force",
    is_flag=True,
    help="Promote a version the promotion gate refused (the audit log records it as forced).",
)
def models_promote(
    config_path: Path, version: str, reason: str, model_name: str | None, force: bool
) -> None:
    """Make VERSION the champion by hand (audited).

    A version the promotion gate refused needs --force.
    """
    registry = _project(config_path).registry(model_name)
    info = registry.promote(
        version, reason=reason, command=" ".join(["modelyard", *sys.argv[1:]]), force=force
    )
    forced = info.tags.get("modelyard.gate") in ("rejected", "interrupted")
    note = " (forced past the promotion gate)" if forced else ""
    click.echo(f"{registry.model_name} version {info.version} is now the champion{note}")


@models.command(name="rollback")
@CONFIG_OPTION
@click.option(
    "--reason", default="rollback", show_default=True, help="Why (recorded in the audit log)."
)
@click.option("--model", "model_name", help="Registered model name (default: the project's).")
def models_rollback(config_path: Path, reason: str, model_name: str | None) -> None:
    """Give the champion alias back to the previous champion (audited)."""
    registry = _project(config_path).registry(model_name)
    info = registry.rollback(command=" ".join(["modelyard", *sys.argv[1:]]), reason=reason)
    click.echo(f"{registry.model_name} version {info.version} is the champion again")


@models.command(name="history")
@CONFIG_OPTION
@click.option("--model", "model_name", help="Registered model name (default: the project's).")
def models_history(config_path: Path, model_name: str | None) -> None:
    """The audit log: every alias move, when, why, from and to which version, by which command."""
    for entry in _project(config_path).registry(model_name).history():
        action = f"{entry.action} (forced)" if entry.forced else entry.action
        click.echo(
            f"{entry.time}  {entry.alias:<10} {entry.from_version or '-':>4} -> {entry.to_version or '-':<4}"
            f"  {action:<8} {entry.user}: {entry.reason}  [{entry.command}]"
        )


@main.command()
@CONFIG_OPTION
@click.argument("data", type=click.Path(path_type=Path))
@click.option("--model", help="NAME@ALIAS or NAME/VERSION (default: the project's champion).")
@click.option(
    "--out", "-o", type=click.Path(path_type=Path), required=True, help="A .parquet or .csv file."
)
@JSON_OPTION
def predict(config_path: Path, data: Path, model: str | None, out: Path, as_json: bool) -> None:
    """Score DATA with a registered model.

    Rows that break a type, a required value or a declared check are quarantined; rows with
    values outside the training data are scored and flagged in the _drift column.
    """
    result = _project(config_path).predict(data, out=out, model=model)
    summary = {
        "model": result.model, "version": result.version, "rows": result.rows, "scored": result.scored,
        "quarantined": result.quarantined, "output": str(result.output),
        "quarantine": str(result.quarantine) if result.quarantine else None,
        "drifted": result.drifted,
        "drift": [{"column": v.column, "check": v.check, "rows": v.rows, "examples": v.examples}
                  for v in result.drift],
    }  # fmt: skip
    if as_json:
        click.echo(json.dumps(summary, indent=2))
    else:
        click.echo(
            f"scored {result.scored:,} of {result.rows:,} rows with {result.model}/{result.version} -> {out}"
            + (
                f"; {result.quarantined:,} quarantined -> {result.quarantine}"
                if result.quarantine
                else ""
            )
        )
        if result.drifted:
            where = ", ".join(
                f"{v.column} ({'unseen categories' if v.check == 'category' else 'outside the training range'}: {v.rows:,})"
                for v in result.drift[:5]
            )
            rows = f"{result.drifted:,} scored row{'s' if result.drifted != 1 else ''}"
            click.echo(
                f"drift: {rows} with values unlike the training data (see the _drift column): "
                f"{where}"
            )


# ----------------------------------------------------------------------------- project files


@main.command()
@click.argument("data_file", type=click.Path(path_type=Path))
@click.option("--target", "-t", help="The column to predict.")
@click.option("--name", help="Project name (default: the data file's name).")
@click.option(
    "--out", "-o", type=click.Path(path_type=Path), default="modelyard.yaml", show_default=True
)
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
def init(data_file: Path, target: str | None, name: str | None, out: Path, force: bool) -> None:
    """Write a commented modelyard.yaml for DATA_FILE, with the task inferred from --target."""
    from modelyard.scaffold import scaffold

    if out.exists() and not force:
        from modelyard.errors import ModelyardError

        raise ModelyardError(
            f"{out} already exists",
            fix="Pass --force to overwrite it, or --out to write elsewhere.",
        )
    text, task = scaffold(data_file, target=target, name=name, out=out)
    out.write_text(text, encoding="utf-8")
    click.echo(f"wrote {out} (task: {task}); next: modelyard run -c {out}")


@main.command()
@CONFIG_OPTION
@click.option(
    "--all", "everything", is_flag=True, help="Remove every cached artifact, not just stale ones."
)
def clean(config_path: Path, everything: bool) -> None:
    """Prune the cache: remove artifacts the current configuration no longer uses."""
    removed, freed = _project(config_path).clean(everything=everything)
    click.echo(f"removed {removed} artifact{'s' if removed != 1 else ''} ({freed / 1e6:.1f} MB)")


@main.command(name="config")
@CONFIG_OPTION
def show_config(config_path: Path) -> None:
    """Print the resolved configuration (defaults filled in, secrets redacted)."""
    import yaml

    project = _project(config_path)
    click.echo(
        yaml.safe_dump(project.config.model_dump(mode="json", by_alias=True), sort_keys=False)
    )


@main.command()
def schema() -> None:
    """Print the JSON Schema of modelyard.yaml (for editors)."""
    from modelyard.config.reference import json_schema

    click.echo(json.dumps(json_schema(), indent=2))


main.add_command(serve)
main.add_command(package)
main.add_command(monitor)
main.add_command(drift)
main.add_command(label_group)


if __name__ == "__main__":  # pragma: no cover
    main()
