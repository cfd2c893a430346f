"""The project's files: ``modelyard init`` (scaffold modelyard.yaml), ``clean`` (prune the
cache), ``config`` (the resolved configuration) and ``schema`` (its JSON Schema)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from modelyard.cli.options import config_option, load_project

CONFIG_OPTION = config_option()


@click.command()
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


@click.command()
@CONFIG_OPTION
@click.option(
    "--all", "everything", is_flag=True, help="Remove every cached artifact, not just stale ones."
)
def clean(config_path: Path, everything: bool) -> None:
    """Prune the cache: remove artifacts the current configuration no longer uses."""
    removed, freed = load_project(config_path).clean(everything=everything)
    click.echo(f"removed {removed} artifact{'s' if removed != 1 else ''} ({freed / 1e6:.1f} MB)")


@click.command(name="config")
@CONFIG_OPTION
def show_config(config_path: Path) -> None:
    """Print the resolved configuration (defaults filled in, secrets redacted)."""
    import yaml

    project = load_project(config_path)
    click.echo(
        yaml.safe_dump(project.config.model_dump(mode="json", by_alias=True), sort_keys=False)
    )


@click.command()
def schema() -> None:
    """Print the JSON Schema of modelyard.yaml (for editors)."""
    from modelyard.config.reference import json_schema

    click.echo(json.dumps(json_schema(), indent=2))
