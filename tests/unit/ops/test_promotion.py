"""The register step on the embedded store: each model scored on its own inputs, a champion the
new data cannot feed is "not comparable", latency measured and recorded, leakage checked, and a
register killed by SIGKILL cleaned up by the next one.

One module-scoped project; the tests run in file order on its state (MLflow costs seconds).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from modelyard.data.profile import Alert
from modelyard.errors import ModelyardError
from modelyard.ops.registry import Registry
from modelyard.ops.tracking import default_tracking_uri
from tests.conftest import ROOT
from tests.unit.ops._penguins import FEATURES, TARGET, load_penguins
from tests.unit.ops._register import NAME, fit, register, rows_of

NO_ISLAND = [f for f in FEATURES if f != "island"]
NO_SEX = [f for f in FEATURES if f != "sex"]


@dataclass
class Project:
    workdir: Path
    registry: Registry
    champion_model: Any


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    workdir = tmp_path_factory.mktemp("promotion") / ".modelyard"
    registry = Registry(default_tracking_uri(workdir), NAME, workdir / "audit.jsonl")
    return Project(workdir, registry, fit(FEATURES))


def test_first_version_is_promoted_and_its_latency_recorded(project: Project) -> None:
    reg = register(project.workdir, project.champion_model, FEATURES, rows_of())
    assert reg.decision.promote and reg.version == "1"
    lat = reg.latency
    assert lat is not None
    assert lat.rows == len(load_penguins().test)  # 86 rows, below gate.latency_rows (200)
    assert 0 < lat.p50_ms <= lat.p99_ms <= lat.max_ms
    assert lat.fast_path, lat.note  # the real preprocessor compiles
    assert reg.decision.p99_ms == lat.p99_ms
    assert any(r.startswith("p99 latency") and "no limit set" in r for r in reg.decision.reasons)
    info = project.registry.show("1")
    assert float(info.tags["modelyard.latency.p99_ms"]) == pytest.approx(lat.p99_ms, abs=1e-4)
    assert info.tags["modelyard.latency.rows"] == str(lat.rows)
    assert info.tags["modelyard.latency.path"] == "fast path"
    assert info.metrics["latency_p99_ms"] == pytest.approx(lat.p99_ms)


def test_the_champion_is_scored_on_its_own_inputs(project: Project) -> None:
    """The candidate does not take 'island'; the champion does, and is scored with it."""
    from modelyard.modeling.features import to_pandas
    from tests.unit.ops._register import contract_of

    rows = rows_of()
    reg = register(project.workdir, fit(NO_ISLAND), NO_ISLAND, rows)
    expected = float(
        project.champion_model.score(
            to_pandas(rows, contract_of(FEATURES)), rows[TARGET].to_numpy()
        )
    )
    assert reg.champion is not None and reg.champion.comparable
    assert reg.champion.inputs == FEATURES
    assert reg.decision.champion == pytest.approx(expected)
    assert reg.decision.champion_comparable


def test_a_champion_the_new_data_cannot_feed_is_not_comparable(project: Project) -> None:
    """'sex' is gone from the data: the champion takes it, so it cannot be scored."""
    rows = rows_of(drop=("sex",))
    refused = register(project.workdir, fit(NO_SEX), NO_SEX, rows)
    assert not refused.decision.promote
    assert refused.champion is not None and not refused.champion.comparable
    note = "version 1 takes 'sex', which the new test data lacks"
    assert refused.champion.note == note
    assert refused.decision.champion is None and not refused.decision.champion_comparable
    assert refused.decision.failed == [
        f"the champion is not comparable: {note} "
        "(gate.champion_not_comparable is refuse: promote by hand with --force)"
    ]
    assert project.registry.show(refused.version).aliases == ["challenger"]

    skipped = register(project.workdir, fit(NO_SEX), NO_SEX, rows, champion_not_comparable="skip")
    assert skipped.decision.promote, skipped.decision.reasons
    assert f"the champion is not comparable: {note}; check skipped" in skipped.decision.reasons[1]
    champion = project.registry.champion()
    assert champion is not None and champion.version == skipped.version


def test_a_perfect_score_is_refused_while_a_leakage_alert_names_an_input(
    project: Project,
) -> None:
    alert = Alert(
        kind="leakage", columns=["bill_length_mm"], severity="critical", message="'b' leaks"
    )
    perfect = {"accuracy": 1.0, "f1_macro": 1.0}
    numeric = [f for f in NO_SEX if f != "island"]
    rows = rows_of(drop=("sex", "island"))  # the champion takes 'island': check skipped
    model = fit(numeric)
    refused = register(
        project.workdir, model, numeric, rows, test_metrics=perfect, leakage_alerts=[alert],
        champion_not_comparable="skip",
    )  # fmt: skip
    assert not refused.decision.promote
    assert refused.decision.leakage == ["'b' leaks"]
    assert refused.decision.perfect == perfect
    assert "implausibly perfect" in refused.decision.failed[0]

    elsewhere = alert.model_copy(update={"columns": ["island"]})  # not an input of this model
    passed = register(
        project.workdir, model, numeric, rows, test_metrics=perfect, leakage_alerts=[elsewhere],
        champion_not_comparable="skip",
    )  # fmt: skip
    assert passed.decision.promote, passed.decision.reasons
    assert passed.decision.leakage == []


def test_a_refused_version_is_promoted_by_hand_only_with_force(project: Project) -> None:
    reg = project.registry
    refused = next(
        v for v in reg.versions() if "not comparable" in v.tags.get("modelyard.gate.failed", "")
    )
    assert refused.tags["modelyard.gate"] == "rejected"
    with pytest.raises(ModelyardError) as err:
        reg.promote(refused.version, reason="I know better", command="modelyard models promote")
    message = str(err.value)
    assert "was refused by the promotion gate" in message
    assert "found gate rejected: the champion is not comparable" in message
    assert "data validation passed" not in message  # only the failed checks
    assert "--force" in message
    champion = reg.champion()
    assert champion is not None and champion.version != refused.version

    forced = reg.promote(
        refused.version, reason="I know better", command="modelyard models promote --force",
        force=True,
    )  # fmt: skip
    assert "champion" in forced.aliases
    last = [json.loads(line) for line in reg.audit_log.read_text().splitlines()]
    move = next(e for e in reversed(last) if e["alias"] == "champion")
    assert (move["to_version"], move["forced"], move["action"]) == (
        refused.version,
        True,
        "promote",
    )
    assert not any(e.forced for e in reg.history() if e.action == "gate")


# --------------------------------------------------------------------------- killed register


def test_which_running_runs_count_as_interrupted() -> None:
    import socket
    from types import SimpleNamespace

    from modelyard.ops.tracking import STALE_AFTER_SECONDS, _stale

    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    now = int(time.time() * 1000)
    old = now - (STALE_AFTER_SECONDS + 60) * 1000

    def run(tags: dict[str, str], started: int = now) -> Any:
        return SimpleNamespace(
            data=SimpleNamespace(tags=tags), info=SimpleNamespace(start_time=started)
        )

    here = socket.gethostname()
    dead = _stale(run({"modelyard.host": here, "modelyard.pid": str(gone.pid)}), now)
    assert dead is not None and f"process {gone.pid} on {here} is gone" in dead
    assert _stale(run({"modelyard.host": here, "modelyard.pid": str(os.getppid())}), now) is None
    assert _stale(run({"modelyard.host": here, "modelyard.pid": str(os.getpid())}), now) is None
    # another host, or no owner recorded (an older modelyard): only once it is old
    assert _stale(run({"modelyard.host": "elsewhere", "modelyard.pid": "1"}), now) is None
    assert "on elsewhere" in (_stale(run({"modelyard.host": "elsewhere"}, old), now) or "")
    assert _stale(run({}), now) is None
    assert "no owner recorded" in (_stale(run({}, old), now) or "")


def _killed_register(workdir: Path, where: str, tmp: Path) -> int:
    """Run a register in a child process, SIGKILL it at ``where``; returns its pid."""
    marker = tmp / f"paused-{where}"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MLFLOW_DISABLE_TELEMETRY": "true"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.unit.ops._register", str(workdir), str(marker), where],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 300
        while not marker.exists():
            if proc.poll() is not None:
                pytest.fail(f"the register ended before its pause: {proc.stderr.read()[-3000:]}")  # type: ignore[union-attr]
            assert time.monotonic() < deadline, "the register never reached its pause"
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)  # reaped: the pid is gone, as after a real kill
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL
    return proc.pid


def _runs(registry: Registry) -> list[Any]:
    exp = registry.client.get_experiment_by_name(NAME)
    assert exp is not None
    return list(registry.client.search_runs([exp.experiment_id]))


def test_a_register_killed_mid_upload_is_failed_and_cleaned_by_the_next(tmp_path: Path) -> None:
    workdir = tmp_path / ".modelyard"
    registry = Registry(default_tracking_uri(workdir), NAME, workdir / "audit.jsonl")
    pid = _killed_register(workdir, "upload", tmp_path)

    (killed,) = _runs(registry)
    assert killed.info.status == "RUNNING"
    assert killed.data.tags["modelyard.pid"] == str(pid)
    exp_id = killed.info.experiment_id
    (logged,) = registry.client.search_logged_models([exp_id])
    assert str(logged.status).endswith("PENDING")
    model_files = Path(logged.artifact_location.removeprefix("file://"))
    assert (model_files / "MLmodel").is_file()  # uploaded, never finalised
    assert [p.name for p in (workdir / "staging").iterdir() if p.name.startswith(f"{pid}-")]

    reg = register(workdir, fit(FEATURES), FEATURES, rows_of())  # the next run

    assert reg.recovered_runs == [killed.info.run_id]
    again = registry.client.get_run(killed.info.run_id)
    assert again.info.status == "FAILED"
    assert f"process {pid}" in again.data.tags["modelyard.interrupted"]
    assert str(registry.client.get_logged_model(logged.model_id).status).endswith("FAILED")
    assert not model_files.exists() or not any(model_files.iterdir())
    assert not [p for p in (workdir / "staging").iterdir() if p.name.startswith(f"{pid}-")]
    assert reg.decision.promote and reg.version == "1"  # the killed run registered nothing
    statuses = sorted(r.info.status for r in _runs(registry))
    assert statuses == ["FAILED", "FINISHED"]


def test_a_register_killed_before_the_gate_leaves_a_version_that_needs_force(
    tmp_path: Path,
) -> None:
    workdir = tmp_path / ".modelyard"
    registry = Registry(default_tracking_uri(workdir), NAME, workdir / "audit.jsonl")
    _killed_register(workdir, "gate", tmp_path)
    (orphan,) = registry.versions()
    assert "modelyard.gate" not in orphan.tags and orphan.aliases == []

    reg = register(workdir, fit(FEATURES), FEATURES, rows_of())

    assert len(reg.recovered_runs) == 1
    info = registry.show(orphan.version)
    assert info.tags["modelyard.gate"] == "interrupted"
    assert "interrupted before the promotion gate decided" in info.tags["modelyard.gate.failed"]
    with pytest.raises(ModelyardError, match="never judged by the promotion gate"):
        registry.promote(orphan.version, reason="x", command="x")
    assert reg.decision.promote and reg.version == "2"


def test_the_inputs_of_a_native_flavour_model_are_its_features() -> None:
    """Registry.load_version returns the native flavour (no MLflow metadata) for new models."""
    from modelyard.ops.native import NativeModel
    from modelyard.ops.promotion import pyfunc_inputs

    model = NativeModel(None, ["age", "dteday"], "binary", ["no", "yes"])
    assert pyfunc_inputs(model) == ["age", "dteday"]


NOISE_CONFIG = """\
version: 1
name: noise
seed: 0
data: {{source: {{path: train.csv}}, target: y}}
compute: {{executor: serial}}
models: {{candidates: [dummy], ensemble: false, metric: {metric}}}
tuning: {{top_k: 0}}
evaluation: {{permutation_importance: false, threshold: default}}
"""


@pytest.mark.parametrize(
    ("target", "metric", "baseline"),
    [("label", "auto", "0.5"), ("amount", "rmse", "the training mean, predicted for every row")],
)
def test_a_run_whose_model_does_not_beat_the_baseline_promotes_nothing(
    tmp_path: Path, target: str, metric: str, baseline: str
) -> None:
    """The first model of a project was promoted whatever it scored: a model no better than
    predicting the training class shares (a test roc_auc of 0.42 on noise) became the
    champion, served and monitored. Here the search may only pick the baseline itself."""
    import numpy as np
    import polars as pl

    from modelyard import Project as ModelyardProject

    rng = np.random.default_rng(0)
    n = 240
    targets = {"label": rng.choice(["no", "yes"], n), "amount": rng.normal(10, 2, n)}
    pl.DataFrame({"x": rng.normal(size=n), "y": targets[target]}).write_csv(tmp_path / "train.csv")
    yaml = tmp_path / "modelyard.yaml"
    yaml.write_text(NOISE_CONFIG.format(metric=metric))

    result = ModelyardProject.from_yaml(yaml).run()

    reg = result.registration
    assert reg is not None and reg.version == "1"
    assert not reg.decision.promote
    assert reg.decision.baseline == pytest.approx(reg.decision.candidate)
    assert any("only equals the baseline's" in r and baseline in r for r in reg.decision.failed)
    assert Registry(reg.tracking_uri, "noise", tmp_path / "audit.jsonl").champion() is None
