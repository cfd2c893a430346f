"""``modelyard monitor`` (the prediction log, window by window) and ``modelyard drift`` (any two
tables).

Each is a thin call of the Python API: :meth:`~modelyard.recipe.Project.monitor` (and
``serve_metrics``, ``alert_config``), :meth:`~modelyard.recipe.Project.drift` (with ``-c``) or
:func:`modelyard.ops.monitoring.compare.drift_files` (two plain files). Only click is imported
here; everything else loads when a command runs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from modelyard.cli.options import config_option, json_option, load_project

_CONFIG = config_option()
_JSON = json_option


@click.command()
@_CONFIG
@click.option(
    "--log",
    "log_dir",
    type=click.Path(path_type=Path),
    help="Prediction log folder (default: serving.prediction_log.path).",
)
@click.option(
    "--reference",
    type=click.Path(path_type=Path),
    help="Reference data file (default: monitoring.reference, else data.source).",
)
@click.option(
    "--html",
    "html_out",
    type=click.Path(path_type=Path),
    help="Write the HTML report here (default: <output_dir>/monitoring.html).",
)
@_JSON
@click.option(
    "--serve",
    is_flag=True,
    help="Serve the drift metrics for Prometheus (/metrics) and re-read the log every monitoring.interval_seconds.",
)
@click.option("--host", help="Interface of --serve (default: serving.host).")
@click.option("--port", type=int, help="Port of --serve (default: monitoring.port, 9108).")
@click.option("--interval", type=float, help="Seconds between two reads of the log with --serve.")
@click.option(
    "--emit-config",
    "emit_dir",
    type=click.Path(path_type=Path),
    help="Write Prometheus alert rules, a Grafana dashboard and a prometheus.yml into this folder.",
)
@click.option(
    "--alert-for",
    default="5m",
    show_default=True,
    help="The 'for' duration of the emitted alert rules.",
)
@click.option(
    "--retrain",
    is_flag=True,
    help="Retrain (reference + labelled records) when the retrain policy says so.",
)
@click.option(
    "--force", is_flag=True, help="With --retrain: retrain even when no threshold is crossed."
)
def monitor(
    config_path: Path, log_dir: Path | None, reference: Path | None, html_out: Path | None,
    as_json: bool, serve: bool, host: str | None, port: int | None, interval: float | None,
    emit_dir: Path | None, alert_for: str, retrain: bool, force: bool,
) -> None:  # fmt: skip
    """Drift, data quality and performance of the prediction log, window by window."""
    project = load_project(config_path)
    if emit_dir is not None:
        written = project.alert_config(emit_dir, alert_for=alert_for)
        if not serve:
            _print(
                {"written": [str(p) for p in written]},
                as_json,
                "\n".join(f"wrote {p}" for p in written),
            )
            return
    if serve:
        project.serve_metrics(
            log=log_dir, reference=reference, host=host, port=port, interval=interval,
            announce=lambda line: click.echo(line, err=True),
        )  # fmt: skip
        return
    result = project.monitor(
        log=log_dir, reference=reference, html=html_out, retrain=retrain, force=force
    )
    report = result.report
    payload: dict[str, Any] = {
        "report": str(result.html),
        "windows": len(report.windows),
        "alerts": report.alerts,
    }
    if result.retrain is not None:
        payload["retrain"] = result.retrain.to_dict()
    if as_json:
        from modelyard.reports.drift import monitor_json

        payload["monitor"] = json.loads(monitor_json(report))
    lines = [f"{len(report.windows)} windows; report: {result.html}"]
    lines += [f"ALERT: {a}" for a in report.alerts] or ["no alert"]
    if "retrain" in payload:
        r = payload["retrain"]
        lines.append(f"retrain: {r['outcome']} ({'; '.join(r['trigger']['reasons'])})")
        if r["version"]:
            lines.append(f"  version {r['version']}: " + "; ".join(r["gate_reasons"]))
    _print(payload, as_json, "\n".join(lines))


@click.command(name="drift")
@click.argument("reference", type=click.Path(path_type=Path))
@click.argument("current", type=click.Path(path_type=Path))
@click.option(
    "-c",
    "--config",
    "config_path",
    type=click.Path(path_type=Path),
    help="A project whose data contract types and selects the columns, and names the target "
    "(default: inferred from REFERENCE).",
)
@click.option("--columns", help="Comma-separated columns to compare (default: all).")
@click.option(
    "--target",
    help="The label column: its shift is reported as label drift, apart from the features "
    "(default: the project's target with -c, else none).",
)
@click.option(
    "--separator",
    help="CSV field separator of both files (default: guessed from each file).",
)
@click.option(
    "--header/--no-header",
    "header",
    default=None,
    help="Whether the CSV files start with a line of column names (default: guessed); "
    "without one, columns are named column_1, column_2, ...",
)
@click.option(
    "--min-rows",
    type=click.IntRange(min=1),
    default=100,
    show_default=True,
    help="Fewer rows: insufficient data, no verdict.",
)
@click.option(
    "--html", "html_out", type=click.Path(path_type=Path), help="Write the HTML report here."
)
@_JSON
def drift(
    reference: Path, current: Path, config_path: Path | None, columns: str | None,
    target: str | None, separator: str | None, header: bool | None, min_rows: int,
    html_out: Path | None, as_json: bool,
) -> None:  # fmt: skip
    """Data drift between two tables (CSV, Parquet, JSON files or URLs), decided on effect size
    beyond sampling noise; the target's shift is reported apart, as label drift."""
    from modelyard.reports.drift import drift_json, drift_text

    wanted = [c.strip() for c in columns.split(",")] if columns else None
    if config_path is not None:  # read both as the project reads its data
        report = load_project(config_path).drift(
            reference, current, columns=wanted, target=target, separator=separator,
            header=header, html=html_out,
        )  # fmt: skip
    else:  # plain files: guess each CSV's separator and header
        from modelyard.ops.monitoring.compare import drift_files

        report = drift_files(
            reference, current, columns=wanted, target=target, separator=separator,
            header=header, min_rows=min_rows,
        )  # fmt: skip
        if html_out is not None:
            from modelyard.recipe import write_drift_html

            write_drift_html(report, html_out, reference=reference, current=current)
    if as_json:
        click.echo(drift_json(report))
        return
    text = drift_text(report, reference=str(reference), current=str(current))
    if html_out is not None:
        text += f"\nreport: {html_out}"
    click.echo(text)


def _print(payload: dict[str, Any], as_json: bool, text: str) -> None:
    click.echo(json.dumps(payload, indent=2, default=str) if as_json else text)
