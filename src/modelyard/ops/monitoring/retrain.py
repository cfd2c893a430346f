"""The closed loop: retrain on the reference data plus the newly labelled records, through the
same promotion gate, when monitoring says so.

:func:`should_retrain` reads the policy (``monitoring.retrain``) against a
:class:`~.monitor.MonitorReport`; :func:`retrain` writes the reference rows and the labelled
log records to one Parquet file under the project's workdir, runs the pipeline on it through
an injected ``run`` function (``modelyard monitor --retrain`` passes ``Project(config).run``:
this layer does not import the recipe), and appends every decision - skipped, promoted, or
kept as challenger - to the monitoring audit log ``<workdir>/monitoring-audit.jsonl``. A
challenger that fails the gate is kept (registered, alias ``challenger``) and reported, never
promoted: the gate of the pipeline decides, exactly as in ``modelyard run``.
"""

from __future__ import annotations

import datetime as dt
import getpass
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import polars as pl

from modelyard.config.schema import ProjectConfig, Source
from modelyard.data.contract import DataContract
from modelyard.errors import ModelyardError
from modelyard.ops.monitoring.monitor import MonitorReport

AUDIT_FILE = "monitoring-audit.jsonl"
"""The monitoring audit log, beside the registry's ``audit.jsonl`` in the workdir."""

Outcome = Literal["skipped", "promoted", "kept"]


@dataclass
class Trigger:
    """Whether the policy asks for a retrain, and why."""

    retrain: bool
    reasons: list[str] = field(default_factory=list)


@dataclass
class RetrainResult:
    """What the closed loop did."""

    outcome: Outcome
    trigger: Trigger
    labelled_rows: int = 0
    training_rows: int = 0
    data_file: str | None = None
    model_name: str | None = None
    version: str | None = None
    previous_champion: str | None = None
    gate_reasons: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome,
            "trigger": {"retrain": self.trigger.retrain, "reasons": self.trigger.reasons},
            "labelled_rows": self.labelled_rows,
            "training_rows": self.training_rows,
            "data_file": self.data_file,
            "model_name": self.model_name,
            "version": self.version,
            "previous_champion": self.previous_champion,
            "gate_reasons": self.gate_reasons,
        }


def should_retrain(report: MonitorReport, config: ProjectConfig, labelled_rows: int) -> Trigger:
    """The policy's verdict: drift in the latest judged window and/or a performance drop."""
    policy = config.monitoring.retrain
    reasons: list[str] = []
    latest = report.latest()
    drifted = latest is not None and bool(latest.drift.drifted)
    perf = report.latest_performance()
    dropped = (
        perf is not None
        and perf.performance_drop is not None
        and perf.performance_drop > config.monitoring.performance_drop
    )
    if policy.on in ("drift", "either") and drifted:
        assert latest is not None
        reasons.append(
            f"data drift in window {latest.label}: {', '.join(latest.drift.drifted_features)}"
        )
    if policy.on in ("performance", "either") and dropped:
        assert perf is not None and perf.performance_drop is not None
        reasons.append(
            f"{report.metric} dropped by {perf.performance_drop:.4g} in window {perf.label}"
        )
    if policy.on == "never":
        return Trigger(False, ["the retrain policy is 'never'"])
    if not reasons:
        return Trigger(False, ["no threshold crossed"])
    if labelled_rows < policy.min_labelled_rows:
        return Trigger(
            False,
            [
                *reasons,
                f"only {labelled_rows} labelled rows (< min_labelled_rows={policy.min_labelled_rows})",
            ],
        )
    return Trigger(True, reasons)


def labelled_training_rows(log: pl.DataFrame, contract: DataContract) -> pl.DataFrame:
    """The served log records with a label, as training rows (features + target)."""
    if contract.target is None:
        raise ModelyardError("the contract has no target: nothing to retrain on", where="contract")
    served = log.filter((pl.col("status") != "rejected") & pl.col("label").is_not_null())
    names = [
        c.name for c in contract.columns if c.name in served.columns and c.name != contract.target
    ]
    return served.select(*names, pl.col("label").alias(contract.target))


def training_frame(
    reference: pl.DataFrame, labelled: pl.DataFrame, contract: DataContract
) -> pl.DataFrame:
    """Reference rows and labelled rows in the contract's types, one frame."""
    from modelyard.data.validation import cast_to_contract

    ref = cast_to_contract(reference, contract)[0]
    new = cast_to_contract(
        labelled.with_columns(pl.col(contract.target or "").cast(pl.String)), contract
    )[0]
    return pl.concat(
        [ref, new.select([c for c in new.columns if c in ref.columns])], how="diagonal_relaxed"
    )


def retrain_config(config: ProjectConfig, data_file: Path) -> ProjectConfig:
    """The project's config with ``data.source`` pointing at ``data_file`` (already normalised,
    columns already dropped); everything else, the gate included, unchanged."""
    data = config.data.model_copy(
        update={
            "source": Source(path=data_file),
            "normalize": {},
            "columns": config.data.columns.model_copy(update={"drop": []}),
        }
    )
    return config.model_copy(update={"data": data})


def retrain(
    config: ProjectConfig,
    *,
    report: MonitorReport,
    reference: pl.DataFrame,
    log: pl.DataFrame,
    contract: DataContract,
    run: Callable[[ProjectConfig], Any],
    force: bool = False,
    command: str = "modelyard monitor --retrain",
) -> RetrainResult:
    """Retrain when the policy says so (or ``force``); ``run(config)`` runs the pipeline and
    returns its result (with ``.registration``). Every decision goes to the audit log."""
    labelled = labelled_training_rows(log, contract)
    trigger = should_retrain(report, config, labelled.height)
    if force and not trigger.retrain:
        trigger = Trigger(True, [*trigger.reasons, "forced"])
    result = RetrainResult("skipped", trigger, labelled_rows=labelled.height)
    if not trigger.retrain:
        audit(config.workdir, result, command=command)
        return result
    frame = training_frame(reference, labelled, contract)
    folder = config.workdir / "retrain"
    folder.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
    data_file = folder / f"train-{stamp}-{uuid.uuid4().hex[:6]}.parquet"
    tmp = data_file.with_name(f".{data_file.name}.tmp")
    frame.write_parquet(tmp)
    tmp.replace(data_file)
    result.training_rows = frame.height
    result.data_file = str(data_file)
    outcome = run(retrain_config(config, data_file))
    registration = getattr(outcome, "registration", None)
    if registration is None:
        raise ModelyardError(
            "the retraining run registered no model",
            where=str(data_file),
            expected="a run through the register step",
            fix="Check the run's steps (modelyard run --dry-run).",
        )
    result.model_name = registration.model_name
    result.version = registration.version
    result.previous_champion = registration.previous_champion
    result.gate_reasons = list(registration.decision.reasons)
    result.outcome = "promoted" if registration.decision.promote else "kept"
    audit(config.workdir, result, command=command)
    return result


def audit(workdir: Path, result: RetrainResult, *, command: str) -> None:
    """Append one JSON line to ``<workdir>/monitoring-audit.jsonl``."""
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        user = getpass.getuser()
    except (OSError, KeyError):
        user = "unknown"
    entry = {
        "time": dt.datetime.now(dt.UTC).isoformat(),
        "action": f"retrain_{result.outcome}",
        **result.to_dict(),
        "command": command,
        "user": user,
    }
    with (workdir / AUDIT_FILE).open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(entry) + "\n")


def read_audit(workdir: Path) -> list[dict[str, Any]]:
    path = workdir / AUDIT_FILE
    if not path.exists():
        return []
    return [
        json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()
    ]
