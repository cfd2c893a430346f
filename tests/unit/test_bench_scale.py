"""bench/scale.py: its generator (seeded, the columns issue 13 asks for, exactly the requested
share of malformed lines), the project it writes, its memory sampler, and one small run of the
whole script through the CLI.

The bench itself (10M rows) runs outside CI; these checks keep its harness honest.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelyard.config.loader import load_config
from tests.unit._bench import ROOT, load_bench

scale = load_bench("scale")


def _fields(path: Path) -> list[int]:
    """The number of fields of every data line (no quoting in the generated files)."""
    lines = path.read_text().splitlines()
    return [line.count(",") + 1 for line in lines[1:]]


# --------------------------------------------------------------------------- the generator


def test_generator_is_seeded_and_deterministic(tmp_path: Path) -> None:
    a, b, c = (tmp_path / "a.csv", tmp_path / "b.csv", tmp_path / "c.csv")
    scale.generate(a, 2_000, seed=7, chunk_rows=700)
    scale.generate(b, 2_000, seed=7, chunk_rows=700)
    scale.generate(c, 2_000, seed=8, chunk_rows=700)
    assert a.read_bytes() == b.read_bytes()
    assert a.read_bytes() != c.read_bytes()
    assert not list(tmp_path.glob("*.tmp"))  # written whole, then renamed


def test_columns_of_every_kind_and_a_learnable_target(tmp_path: Path) -> None:
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import roc_auc_score
    from threadpoolctl import threadpool_limits

    path = tmp_path / "train.csv"
    made = scale.generate(path, 20_000, seed=0, chunk_rows=6_000)
    df = pl.read_csv(path, truncate_ragged_lines=True, try_parse_dates=True)
    assert df.columns == scale.column_names()
    assert made.columns == len(df.columns) == 21
    features = df.drop(scale.TARGET)
    assert features.width >= 20

    numeric = [c for c, t in features.schema.items() if t.is_numeric()]
    assert len(numeric) >= 10
    # several distributions: symmetric, right-skewed, heavy-tailed, bounded, integer counts
    skew = {c: features[c].drop_nulls().skew() for c in numeric}
    assert abs(skew["n_normal"]) < 0.2 and skew["n_lognormal"] > 1.5 and skew["n_exponential"] > 1
    assert features["n_student"].drop_nulls().kurtosis() > 3  # heavy tails
    assert features["n_beta"].min() >= 0 and features["n_beta"].max() <= 1  # type: ignore[operator]
    assert features["n_poisson"].dtype == pl.Int64

    strings = [c for c, t in features.schema.items() if t == pl.String]
    distinct = {c: features[c].n_unique() for c in strings}
    assert min(distinct.values()) <= 5  # low cardinality
    assert max(distinct.values()) > 1_000  # high cardinality
    assert features["flag"].dtype == pl.Boolean
    assert features["ts"].dtype == pl.Datetime("us")

    nulls = df.null_count().row(0, named=True)
    rows = df.height
    assert 0.02 < nulls["n_nulls"] / rows < 0.05 and 0.005 < nulls["c_nulls"] / rows < 0.02
    # a few nulls only: elsewhere nothing but the fields missing from short malformed lines
    assert all(n <= made.malformed for c, n in nulls.items() if c not in ("n_nulls", "c_nulls"))

    # the target is binary, with real signal: a model reaches a meaningful AUC on held-out rows
    clean = df.filter(pl.col(scale.TARGET).is_not_null())
    assert set(clean[scale.TARGET].unique()) == {0, 1}
    assert 0.2 < clean[scale.TARGET].mean() < 0.5  # type: ignore[operator]
    x = clean.drop(scale.TARGET, "c_high").with_columns(
        pl.col("ts").dt.hour(), pl.col(pl.String).cast(pl.Categorical).to_physical()
    )
    y = clean[scale.TARGET].to_numpy()
    model = HistGradientBoostingClassifier(max_iter=60, random_state=0)
    with threadpool_limits(1):  # OpenMP's spinning threads crawl on a busy 2-core machine
        model.fit(x[:15_000].to_numpy(), y[:15_000])
    auc = roc_auc_score(y[15_000:], model.predict_proba(x[15_000:].to_numpy())[:, 1])
    assert auc > 0.75


def test_predict_file_has_the_features_and_no_target(tmp_path: Path) -> None:
    path = tmp_path / "predict.csv"
    made = scale.generate(path, 1_000, seed=1, target=False)
    assert path.read_text().splitlines()[0].split(",") == scale.FEATURES
    assert made.columns == 20 and made.malformed == 1


@settings(max_examples=25, deadline=None)
@given(
    rows=st.integers(100, 4_000),
    share=st.sampled_from([0.0, 0.001, 0.003, 0.01, 0.05]),
    seed=st.integers(0, 2**16),
    chunk_rows=st.integers(50, 1_500),
)
def test_exactly_the_requested_share_of_malformed_lines(
    tmp_path_factory: pytest.TempPathFactory, rows: int, share: float, seed: int, chunk_rows: int
) -> None:
    path = tmp_path_factory.mktemp("gen") / "t.csv"
    made = scale.generate(path, rows, seed=seed, malformed=share, chunk_rows=chunk_rows)
    fields = _fields(path)
    assert len(fields) == rows  # one line per row, the malformed ones included
    bad = [i for i, n in enumerate(fields) if n != 21]
    assert len(bad) == made.malformed == round(rows * share)
    assert bad == scale.malformed_positions(rows, share, seed).tolist()
    if bad:
        assert bad[-1] == rows - 1  # near the end: the very last line
        assert {fields[i] < 21 for i in bad} <= {True, False}
    # the positions do not depend on the chunking (chunk boundaries are crossed freely)
    assert bad == scale.malformed_positions(rows, share, seed).tolist()


def test_malformed_lines_are_too_short_and_too_long(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    scale.generate(path, 50_000, seed=3, malformed=0.001, chunk_rows=9_000)
    fields = _fields(path)
    bad = [n for n in fields if n != 21]
    assert len(bad) == 50
    assert any(n < 21 for n in bad) and any(n > 21 for n in bad)


# --------------------------------------------------------------------------- the project


def test_the_project_file_is_a_valid_configuration(tmp_path: Path) -> None:
    train = tmp_path / "train.csv"
    scale.generate(train, 200, seed=0)
    text = scale.project_yaml(
        train, budget="45s", executor="dask", address="tcp://127.0.0.1:8786", batch_rows=5_000,
        malformed=0.001, candidates=["dummy", "linear"],
        overrides=["gate.latency_rows=0", "evaluation.permutation_importance=false"],
    )  # fmt: skip
    (tmp_path / "modelyard.yaml").write_text(text)
    config = load_config(tmp_path / "modelyard.yaml")
    assert config.data.target == "y" and config.data.batch_rows == 5_000
    assert config.data.source.read.parse_dates == ["ts"]
    assert config.validation.max_invalid_fraction >= 0.001  # the malformed lines pass
    assert config.models.budget == 45.0
    assert config.models.candidates == ["dummy", "linear"]
    assert config.compute.executor == "dask"
    assert config.compute.address == "tcp://127.0.0.1:8786"
    assert config.gate.latency_rows == 0
    assert config.evaluation.permutation_importance is False


def test_a_bad_override_is_refused() -> None:
    with pytest.raises(SystemExit, match="KEY=VALUE"):
        scale.apply_override({}, "gate.latency_rows")


# --------------------------------------------------------------------------- the sampler

TREE = textwrap.dedent(
    """
    import subprocess, sys, time
    held = bytearray(150 * 1024 * 1024)  # touched: resident
    if sys.argv[1] == "parent":
        child = subprocess.Popen([sys.executable, __file__, "child"])
        child.wait()
    else:
        time.sleep(1.5)
    """
)


def test_the_sampler_sums_rss_over_the_process_tree(tmp_path: Path) -> None:
    script = tmp_path / "tree.py"
    script.write_text(TREE)
    measure, _ = scale.measure(
        "tree", [sys.executable, str(script), "parent"], tmp_path / "log", cwd=tmp_path
    )
    assert measure.status == "ok"
    assert measure.processes == 2
    assert measure.peak_rss_mb > 300  # parent and child, 150 MB each, at the same time
    assert measure.hwm_sum_mb >= measure.peak_rss_mb - 1


def test_a_failed_command_is_reported_with_its_error(tmp_path: Path) -> None:
    measure, _ = scale.measure(
        "boom",
        [sys.executable, "-c", "import sys; sys.exit('error: nothing to read')"],
        tmp_path / "log",
        cwd=tmp_path,
    )
    assert measure.status == "failed"
    assert "nothing to read" in measure.error


def test_compare_gives_the_time_ratio_and_its_goal() -> None:
    def run(rows: int, wall: float) -> dict[str, object]:
        return {
            "rows": rows,
            "failed": False,
            "summary": {"run_wall_s": wall},
            "steps": [{"step": "ingest", "wall_s": wall / 2, "status": "ok"}],
        }

    c = scale.compare(run(30_000_000, 300.0), run(10_000_000, 100.0))
    assert c["rows_ratio"] == 3.0 and c["time_ratio"] == 3.0 and c["time_ratio_goal"] == 3.3
    assert c["ok"] and c["per_step"] == {"ingest": 3.0}
    assert not scale.compare(run(10_000_000, 100.0), run(30_000_000, 340.0))["ok"]


WORKER_LOG = """\
2026-12-05 15:52:05,334 - distributed.nanny - INFO -         Start Nanny at: 'tcp://127.0.0.1:41277'
2026-12-05 15:52:08,452 - distributed.worker - INFO -                Memory:                   1.86 GiB
2026-12-05 15:52:56,668 - distributed.core - INFO - Event loop was unresponsive in Worker for 3.85s.
"""
PAUSED = "2026-12-05 15:53:01,000 - distributed.worker.memory - WARNING - Worker is at 81% memory usage. Pausing worker.  Process memory: 1.51 GiB -- Worker memory limit: 1.86 GiB\n"
RESTARTED = (
    "2026-12-05 15:53:02,000 - distributed.nanny.memory - WARNING - Worker tcp://127.0.0.1:46629 "
    "(pid=18534) exceeded 95% memory budget. Restarting...\n"
    "2026-12-05 15:53:02,100 - distributed.nanny - INFO - Worker process 18534 was killed by "
    "signal 15\n"
)


def test_worker_incidents_from_the_logs(tmp_path: Path) -> None:
    """dask's own messages (distributed/worker_memory.py, nanny.py): a pause is reported, a
    memory restart is a lost worker; a normal log is neither."""
    log = tmp_path / "worker-0" / "worker.log"
    log.parent.mkdir()
    log.write_text(WORKER_LOG)
    assert scale.scan_logs(tmp_path) == []
    assert not scale.worker_lost([11, 12], [12, 11], [])

    log.write_text(WORKER_LOG + PAUSED)
    (paused,) = scale.scan_logs(tmp_path)
    assert paused.startswith("worker-0/worker.log:") and "Pausing worker" in paused
    assert not scale.worker_lost([11, 12], [11, 12], [paused])

    log.write_text(WORKER_LOG + PAUSED + RESTARTED)
    incidents = scale.scan_logs(tmp_path)
    assert len(incidents) == 3
    assert scale.worker_lost([11, 12], [11, 12], incidents)
    assert scale.worker_lost([11, 12], [11, 13], [])  # a new worker process, whatever the logs


# --------------------------------------------------------------------------- end to end


@pytest.mark.e2e
@pytest.mark.slow
@pytest.mark.timeout(900)
def test_a_small_run_completes_and_prints_every_step(tmp_path: Path) -> None:
    """The script as the lead runs it, on 3,000 rows (3 of them malformed lines, the last one
    included: they must be quarantined, not fatal), serial, with the model search cut short."""
    out = tmp_path / "scale.json"
    proc = subprocess.run(
        [
            sys.executable, str(ROOT / "bench" / "scale.py"), "--rows", "3000",
            "--executor", "serial", "--budget", "5s", "--candidates", "dummy,linear",
            "--set", "gate.latency_rows=0", "--set", "evaluation.permutation_importance=false",
            "--workdir", str(tmp_path / "work"), "--out", str(out),
        ],
        capture_output=True, text=True, cwd=tmp_path, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads(out.read_text())
    (run,) = report["runs"]
    steps = [s["step"] for s in run["steps"]]
    assert steps[0] == "ingest" and steps[-2:] == ["register", "predict"]
    for expected in ("contract", "validate", "profile", "split", "evaluate"):
        assert expected in steps
    for step in run["steps"]:
        assert step["status"] == "ok", step
        assert step["peak_rss_mb"] > 50 and step["wall_s"] > 0
        if step["step"] != "predict":
            assert step["ran"] == [step["step"]]  # one new step per invocation
        line = next(line for line in proc.stdout.splitlines() if line.startswith(step["step"]))
        assert f"{step['peak_rss_mb']:.1f}" in line
    assert run["floor"]["status"] == "ok" and run["floor"]["extra"]["rows"] == 3000
    summary = run["summary"]
    assert summary["data_steps_complete"] and summary["data_over_floor"] > 0
    assert summary["issue_steps"] == ["ingest", "validate", "profile"]
    assert 0 < summary["issue_over_floor"] < summary["data_over_floor"]
    assert summary["run_peak_rss_ok"] and "predict_peak_rss_mb" in summary
    assert "goal <=" in proc.stdout and "the issue's sum" in proc.stdout
    assert np.isfinite(summary["run_wall_s"])


@pytest.mark.e2e
@pytest.mark.timeout(600)
def test_until_runs_the_data_steps_alone(tmp_path: Path) -> None:
    out = tmp_path / "scale.json"
    proc = subprocess.run(
        [
            sys.executable, str(ROOT / "bench" / "scale.py"), "--rows", "2000",
            "--executor", "serial", "--until", "profile",
            "--workdir", str(tmp_path / "work"), "--out", str(out),
        ],
        capture_output=True, text=True, cwd=tmp_path, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (run,) = json.loads(out.read_text())["runs"]
    assert [s["step"] for s in run["steps"]] == ["ingest", "contract", "validate", "profile"]
    assert all(s["status"] == "ok" for s in run["steps"])
    assert run["summary"]["issue_steps_complete"]
    assert "steps up to profile only" in proc.stdout
