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

if TYPE_CHECKING:
    from modelyard.engine.events import Event
    from modelyard.recipe import Project, RunResult

CONFIG_OPTION = click.option(
    "-c",
    "--config",
    "config_path",
    default="modelyard.yaml",
    show_default=True,
    type=click.Path(path_type=Path),
    help="The project file (or its folder).",
)
JSON_OPTION = click.option(
    "--json", "as_json", is_flag=True, help="Print machine-readable JSON on stdout."
)


def _fail(exc: Exception) -> NoReturn:
    from modelyard.errors import StepFailed

    click.secho(f"error: {exc}", fg="red", err=True)
    sys.exit(1 if isinstance(exc, StepFailed) else 2)


def _project(config_path: Path) -> Project:
    from modelyard.recipe import Project

    return Project.from_yaml(config_path)


class _Guard(click.Group):
    """Turn ModelyardError into a clean message; anything else keeps its traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        from modelyard.errors import ModelyardError

        try:
            return super().invoke(ctx)
        except ModelyardError as exc:
            _fail(exc)


@click.group(cls=_Guard, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="modelyard")
def main() -> None:
    """modelyard: from a table of raw data to a tested, versioned, served and monitored model.

    Start with `modelyard init DATA_FILE --target COLUMN`, then `modelyard run`.
    """


# ----------------------------------------------------------------------------- run


class _Console:
    """Progress on stderr while steps run; a summary at the end."""

    def __init__(self, quiet: bool) -> None:
        from rich.console import Console

        self.console = Console(stderr=True, quiet=quiet)
        self._status: Any = None

    def __call__(self, event: Event) -> None:
        from modelyard.engine.events import StepFailedEvent, StepFinished, StepProgress, StepStarted

        if isinstance(event, StepStarted):
            self._stop()
            label = f"[bold]{event.step}[/] {event.description}"
            self._status = self.console.status(label)
            self._status.start()
        elif isinstance(event, StepProgress) and self._status is not None:
            total = f"/{event.total:g}" if event.total else ""
            self._status.update(f"[bold]{event.step}[/] {event.done:g}{total} {event.message}")
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
        ran, cached = len(result.ran), len(result.cached)
        self.console.print(
            f"[bold]{result.project}[/]: {ran} step{'s' if ran != 1 else ''} ran, "
            f"{cached} cached, in {result.seconds:.2f}s"
        )
        for label, report in result.validation.items():
            colour = "green" if report.invalid_rows == 0 else "yellow"
            self.console.print(
                f"  {label}: [{colour}]{report.valid_rows:,} valid, {report.invalid_rows:,} invalid[/]"
            )
        for name, path in result.outputs.items():
            self.console.print(f"  [dim]{name:<18}[/] {path}")


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
        if as_json:
            click.echo(json.dumps([s.__dict__ for s in the_plan.steps], indent=2))
        else:
            click.echo(str(the_plan))
        return
    console = _Console(quiet=as_json)
    result = project.run(from_step=from_step, until=until, listener=console)
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


_stage_command("ingest", "ingest", "Read the data (same as `run --until ingest`).")
_stage_command(
    "validate", "validate", "Validate the data against the contract (`run --until validate`)."
)
_stage_command(
    "profile", "profile", "Profile the data and write the HTML report (`run --until profile`)."
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


if __name__ == "__main__":  # pragma: no cover
    main()
