"""``modelyard models ...`` (the registered model: versions, promotion, rollback, audit log)
and ``modelyard predict`` (batch scoring with a registered model)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from modelyard.cli.options import config_option, json_option, load_project

CONFIG_OPTION = config_option()
JSON_OPTION = json_option


@click.group()
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
    registry = load_project(config_path).registry(model_name)
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
    info = load_project(config_path).registry(model_name).show(version)
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
    registry = load_project(config_path).registry(model_name)
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
    registry = load_project(config_path).registry(model_name)
    info = registry.rollback(command=" ".join(["modelyard", *sys.argv[1:]]), reason=reason)
    click.echo(f"{registry.model_name} version {info.version} is the champion again")


@models.command(name="history")
@CONFIG_OPTION
@click.option("--model", "model_name", help="Registered model name (default: the project's).")
def models_history(config_path: Path, model_name: str | None) -> None:
    """The audit log: every alias move, when, why, from and to which version, by which command."""
    for entry in load_project(config_path).registry(model_name).history():
        action = f"{entry.action} (forced)" if entry.forced else entry.action
        click.echo(
            f"{entry.time}  {entry.alias:<10} {entry.from_version or '-':>4} -> {entry.to_version or '-':<4}"
            f"  {action:<8} {entry.user}: {entry.reason}  [{entry.command}]"
        )


@click.command()
@CONFIG_OPTION
@click.argument("data", type=click.Path(path_type=Path))
@click.option("--model", help="NAME@ALIAS or NAME/VERSION (default: the project's champion).")
@click.option(
    "--out", "-o", type=click.Path(path_type=Path), required=True, help="A .parquet or .csv file."
)
@click.option(
    "--batch-rows", type=click.IntRange(min=1), default=None,
    help="Rows scored at a time (default: data.batch_rows, at most 100,000): memory stays "
    "flat whatever the file's size.",
)  # fmt: skip
@JSON_OPTION
def predict(
    config_path: Path, data: Path, model: str | None, out: Path, batch_rows: int | None,
    as_json: bool,
) -> None:  # fmt: skip
    """Score DATA with a registered model.

    Rows that break a type, a required value or a declared check are quarantined, and so are
    lines that cannot be read as rows; rows with values outside the training data are scored
    and flagged in the _drift column. The file is scored in batches (on the project's
    executor when there are several); the output appears whole or not at all.
    """
    result = load_project(config_path).predict(data, out=out, model=model, batch_rows=batch_rows)
    summary = {
        "model": result.model, "version": result.version, "rows": result.rows, "scored": result.scored,
        "quarantined": result.quarantined, "rejected": result.rejected, "batches": result.batches,
        "output": str(result.output),
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
                + (f" ({result.rejected:,} unreadable lines)" if result.rejected else "")
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
