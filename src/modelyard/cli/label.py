"""The ``label`` command group (attach with ``main.add_command(label)``).

Each command is a thin call of a function of :mod:`modelyard.labelling`, which a notebook
can call the same way. Only click is imported here; the rest loads when a command runs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from modelyard.cli.options import config_option, json_option

if TYPE_CHECKING:
    from modelyard.recipe import Project

_CONFIG = config_option()
_JSON = json_option
_FORMATS = ["label-studio", "labelbox"]


def _project(config_path: Path) -> Project:
    from modelyard.recipe import Project

    return Project.from_yaml(config_path)


def _print(payload: dict[str, Any], as_json: bool, text: str) -> None:
    click.echo(json.dumps(payload, indent=2, default=str) if as_json else text)


@click.group()
def label() -> None:
    """The label loop: which rows to label next, labels in and out of annotation tools."""


@label.command()
@_CONFIG
@click.option(
    "--data",
    "data",
    type=click.Path(path_type=Path),
    help="A file of unlabelled rows (read like the training data).",
)
@click.option(
    "--dataset", is_flag=True, help="The project's own data source: its rows without a target."
)
@click.option("--log", "log_dir", is_flag=False, flag_value="", default=None,
              help="The serving prediction log (a folder; default serving.prediction_log.path).")  # fmt: skip
@click.option(
    "--budget",
    type=int,
    default=100,
    show_default=True,
    help="Queue the N rows a label helps most.",
)
@_JSON
def queue(
    config_path: Path, data: Path | None, dataset: bool, log_dir: str | None, budget: int,
    as_json: bool,
) -> None:  # fmt: skip
    """Rank unlabelled rows by the champion's uncertainty and their diversity, and save the queue."""
    from modelyard.labelling import build_queue

    result = build_queue(
        _project(config_path), data=data, dataset=dataset, log=log_dir, budget=budget
    )
    lines = [f"{len(result.items)} of {result.rows:,} rows queued ({result.method}): {result.file}"]
    lines += [f"  left out: {n:,} {why}" for why, n in result.skipped.items()]
    for item in result.items[:10]:
        lines.append(f"  {item.score:>9.4g}  {item.key}  {item.reason}")
    if len(result.items) > 10:
        lines.append(f"  ... {len(result.items) - 10} more in the file")
    _print(result.to_dict(), as_json, "\n".join(lines))


@label.command()
@_CONFIG
@click.option(
    "--format", "fmt", required=True, type=click.Choice(_FORMATS), help="The annotation tool."
)
@click.option(
    "--out", type=click.Path(path_type=Path), required=True, help="Folder to write the files into."
)
@click.option(
    "--queue",
    "queue_file",
    type=click.Path(path_type=Path),
    help="A saved queue (default: the latest).",
)
@_JSON
def export(config_path: Path, fmt: str, out: Path, queue_file: Path | None, as_json: bool) -> None:
    """Write the queue as the tool's tasks, with the champion's pre-labels."""
    from modelyard.labelling import export_queue

    files = export_queue(_project(config_path), fmt, out=out, queue=queue_file)
    _print({"written": [str(f) for f in files]}, as_json, "\n".join(f"wrote {f}" for f in files))


@label.command(name="import")
@_CONFIG
@click.option(
    "--format", "fmt", required=True, type=click.Choice(_FORMATS), help="The annotation tool."
)
@click.argument("path", type=click.Path(path_type=Path))
@_JSON
def import_(config_path: Path, fmt: str, path: Path, as_json: bool) -> None:
    """Validate a tool's export of annotated tasks and add the accepted labels to the label set."""
    from modelyard.labelling import import_labels

    result = import_labels(_project(config_path), fmt, path)
    text = (
        f"{result.accepted} of {result.read} labels accepted (label set version {result.version})"
    )
    if result.quarantined:
        text += f"; {result.quarantined} quarantined: " + ", ".join(
            f"{n} {why}" for why, n in result.reasons.items()
        ) + f"; see {result.quarantine}"  # fmt: skip
    _print(result.to_dict(), as_json, text)


@label.command()
@_CONFIG
@_JSON
def status(config_path: Path, as_json: bool) -> None:
    """The label set: versions, labels, annotator agreement, rows held for review."""
    from modelyard.labelling import status as label_status

    s = label_status(_project(config_path))
    agreement = s.agreement
    lines = [
        f"label set {s.path}: version {s.version}, {s.labels} labels for {s.rows} rows",
        f"  training uses {s.resolved} rows (conflict rule: {s.conflict}); held for review: {len(s.held)}",
    ]
    if agreement["rows_with_several_annotators"]:
        kappa = agreement["fleiss_kappa"]
        lines.append(
            f"  agreement: {agreement['all_agree_share']:.0%} of {agreement['rows_with_several_annotators']} "
            f"rows with several annotators agree"
            + (f"; Fleiss' kappa {kappa:.3f}" if kappa is not None else "")
        )  # fmt: skip
    for key, labels in list(s.held.items())[:10]:
        lines.append(f"  held {key}: {labels}")
    _print(s.to_dict(), as_json, "\n".join(lines))
