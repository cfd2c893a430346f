"""``modelyard monitor`` (the prediction log, window by window) and ``modelyard drift`` (any two
tables).

They wire the recipe (``--retrain`` runs the project) and the reports (``--html``) around
:mod:`modelyard.ops.monitoring`. Only click is imported here; everything else loads when a
command runs.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from modelyard.cli.options import config_option, json_option

if TYPE_CHECKING:
    import polars as pl

    from modelyard.data.contract import DataContract
    from modelyard.ops.monitoring.monitor import MonitorReport
    from modelyard.recipe import Project

_CONFIG = config_option()
_JSON = json_option


@dataclass
class _Context:
    project: Project
    contract: DataContract
    reference: pl.DataFrame
    log_dir: Path
    reference_metric: float | None


def _context(config_path: Path, log_dir: Path | None, reference: Path | None) -> _Context:
    from modelyard.data.sources import read_file, read_source
    from modelyard.errors import ModelyardError
    from modelyard.recipe import Project

    project = Project.from_yaml(config_path)
    config = project.config
    contract = project.declared_contract()
    if contract is None:
        raise ModelyardError(
            "there is no data contract yet: monitoring compares the log with it",
            where=str(config.contract.path),
            fix="Run the pipeline first (modelyard run) to infer and write it.",
        )
    data = config.data
    ref_path = reference or config.monitoring.reference
    if ref_path is not None:
        frame = read_file(ref_path)
    else:
        frame = read_source(data.source, normalize=data.normalize, drop=data.columns.drop)
    metric = None
    try:
        champion = project.registry().champion()
    except Exception:  # no registry yet: no performance baseline
        champion = None
    if champion is not None and contract.task is not None:
        from modelyard.modeling.tasks import default_metric, resolve_metric

        name = config.models.metric
        name = (
            default_metric(contract.task) if name == "auto" else resolve_metric(contract.task, name)
        )
        metric = champion.metrics.get(f"test_{name}", champion.metrics.get(name))
    return _Context(
        project,
        contract,
        frame,
        log_dir or config.serving.prediction_log.path,
        metric,
    )


def _report(ctx: _Context) -> tuple[MonitorReport, pl.DataFrame]:
    from modelyard.ops.monitoring.log import read_prediction_log
    from modelyard.ops.monitoring.monitor import monitor as run_monitor

    log = read_prediction_log(ctx.log_dir, contract=ctx.contract)
    report = run_monitor(
        log.rows,
        ctx.reference,
        ctx.contract,
        settings=ctx.project.config.monitoring,
        metric=ctx.project.config.models.metric,
        reference_metric=ctx.reference_metric,
    )
    return report, log.rows


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
    from modelyard.config.loader import load_config

    if emit_dir is not None:
        from modelyard.ops.monitoring.prometheus import emit_config

        file = config_path / "modelyard.yaml" if config_path.is_dir() else config_path
        config = load_config(file)
        written = emit_config(
            emit_dir, config.monitoring, for_=alert_for,
            targets=[f"{config.serving.host}:{config.serving.port}",
                     f"{config.serving.host}:{config.monitoring.port}"],
        )  # fmt: skip
        if not serve:
            _print(
                {"written": [str(p) for p in written]},
                as_json,
                "\n".join(f"wrote {p}" for p in written),
            )
            return
    ctx = _context(config_path, log_dir, reference)
    if serve:
        _serve(ctx, host, port, interval)
        return
    report, rows = _report(ctx)
    from modelyard.reports.drift import monitor_json, render_monitor_html

    config = ctx.project.config
    out = html_out or config.output_dir / "monitoring.html"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render_monitor_html(report), encoding="utf-8")
    out.with_suffix(".json").write_text(monitor_json(report), encoding="utf-8")
    payload: dict[str, Any] = {
        "report": str(out),
        "windows": len(report.windows),
        "alerts": report.alerts,
    }
    if retrain:
        from modelyard.ops.monitoring.retrain import retrain as run_retrain
        from modelyard.recipe import Project

        result = run_retrain(
            config, report=report, reference=ctx.reference, log=rows, contract=ctx.contract,
            run=lambda cfg: Project(cfg, config_path=ctx.project.config_path).run(), force=force,
        )  # fmt: skip
        payload["retrain"] = result.to_dict()
    if as_json:
        payload["monitor"] = json.loads(monitor_json(report))
    lines = [f"{len(report.windows)} windows; report: {out}"]
    lines += [f"ALERT: {a}" for a in report.alerts] or ["no alert"]
    if "retrain" in payload:
        r = payload["retrain"]
        lines.append(f"retrain: {r['outcome']} ({'; '.join(r['trigger']['reasons'])})")
        if r["version"]:
            lines.append(f"  version {r['version']}: " + "; ".join(r["gate_reasons"]))
    _print(payload, as_json, "\n".join(lines))


def _serve(ctx: _Context, host: str | None, port: int | None, interval: float | None) -> None:
    import logging
    import signal

    from modelyard.ops.monitoring.prometheus import serve_exporter

    config = ctx.project.config
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    log = logging.getLogger("modelyard.monitor")
    bind = host or config.serving.host
    at = port or config.monitoring.port
    click.echo(f"serving monitoring metrics on http://{bind}:{at}/metrics", err=True)
    serve_exporter(
        lambda: _report(ctx)[0], host=bind, port=at,
        interval=interval or config.monitoring.interval_seconds, stop=stop,
        on_error=lambda exc: log.warning("monitoring refresh failed: %s", exc),
    )  # fmt: skip


def _guess_read(path: Path, separator: str | None, header: bool | None) -> Any:
    """Read options of a plain file: the CSV separator and header guessed (unless given); a
    file without a header gets the names column_1, column_2, ..."""
    from modelyard.config.schema import ReadOptions
    from modelyard.data.sources import sniff_read_options

    local = Path(path)
    suffixes = "".join(local.suffixes).lower()
    if local.is_file() and not any(s in suffixes for s in (".parquet", ".pq", ".json")):
        return sniff_read_options(local, separator=separator, has_header=header, name_columns=True)
    return ReadOptions(separator=separator or ",", has_header=True if header is None else header)


def _read_plain(path: Path, separator: str | None, header: bool | None) -> pl.DataFrame:
    """Read one file of ``modelyard drift`` without a project; an error names this command's
    options (not modelyard.yaml's ``read`` keys)."""
    from modelyard.data.sources import read_file
    from modelyard.errors import DataError

    read = _guess_read(path, separator, header)
    try:
        return read_file(path, read=read)
    except DataError as exc:
        guess = f"separator {read.separator!r}, " + (
            "a header line" if read.has_header else "no header (columns column_1, ...)"
        )
        raise DataError(
            exc.what, where=exc.where, expected=exc.expected, found=exc.found,
            fix=f"modelyard drift read it with {guess}: set them with --separator and "
            "--header / --no-header, or describe the files in a project (data.source.read) "
            "and pass -c.",
        ) from None  # fmt: skip


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
    from modelyard.config.schema import ColumnRoles, ContractSection, DriftThresholds
    from modelyard.data.contract import infer_contract
    from modelyard.data.sources import read_file
    from modelyard.ops.monitoring.drift import drift as run_drift
    from modelyard.reports.drift import drift_json, drift_text, render_drift_html

    thresholds = DriftThresholds()
    contract = None
    declared: tuple[str | None, Any] = (None, None)  # the project's target and task
    if config_path is not None:  # read both as the project reads its data
        from modelyard.recipe import Project

        project = Project.from_yaml(config_path)
        options = project.config.data.source.read
        if separator is not None or header is not None:
            update: dict[str, Any] = {"separator": separator or options.separator}
            if header is not None:
                update["has_header"] = header
            options = options.model_copy(update=update)
        ref, cur = (read_file(p, read=options) for p in (reference, current))
        contract = project.declared_contract()
        data = project.config.data
        declared = (data.target, None if data.task == "auto" else data.task)
        thresholds = project.config.monitoring.thresholds
        min_rows = project.config.monitoring.min_rows
    else:  # plain files: guess each CSV's separator and header
        ref, cur = (_read_plain(p, separator, header) for p in (reference, current))
    if target is not None and target not in ref.columns:
        import difflib

        from modelyard.errors import ModelyardError

        guess = difflib.get_close_matches(target, ref.columns, n=1)
        raise ModelyardError(
            f"the target column '{target}' is not in {reference}",
            expected=f"one of {', '.join(ref.columns)}",
            fix="Pass --target with a column of REFERENCE."
            + (f" Did you mean '{guess[0]}'?" if guess else ""),
        )
    if contract is None:
        label = target or declared[0]
        contract = infer_contract(
            ref, target=label if label in ref.columns else None,
            task=declared[1] if label == declared[0] else None,
            roles=ColumnRoles(), options=ContractSection(),
        )  # fmt: skip
    wanted = [c.strip() for c in columns.split(",")] if columns else None
    label = target or contract.target
    if label not in ref.columns:  # a project's target the files do not have: no label drift
        label = None
    # every column the contract knows is compared, not only its features; the target apart
    contract = contract.model_copy(
        update={
            "target": label,
            "task": contract.task if label == contract.target else None,
            "columns": [
                c.model_copy(update={"role": "target" if c.name == label else "feature"})
                if c.role in ("target", "leakage") or c.name == label
                else c
                for c in contract.columns
            ],
        }
    )
    report = run_drift(
        ref, cur, contract=contract, columns=wanted, target=label, thresholds=thresholds,
        min_rows=min_rows,
    )  # fmt: skip
    if html_out is not None:
        html_out.parent.mkdir(parents=True, exist_ok=True)
        html_out.write_text(
            render_drift_html(report, title=f"Drift: {reference.name} → {current.name}"),
            encoding="utf-8",
        )
    if as_json:
        click.echo(drift_json(report))
        return
    text = drift_text(report, reference=str(reference), current=str(current))
    if html_out is not None:
        text += f"\nreport: {html_out}"
    click.echo(text)


def _print(payload: dict[str, Any], as_json: bool, text: str) -> None:
    click.echo(json.dumps(payload, indent=2, default=str) if as_json else text)
