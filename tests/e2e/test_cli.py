"""The CLI as a user runs it: real processes, real files, exit codes and messages."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import EXAMPLES, copy_project

EXE = str(Path(sys.executable).with_name("modelyard"))


def modelyard(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [EXE, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **(env or {})},
    )


@pytest.fixture
def quickstart(tmp_path: Path) -> Path:
    return copy_project(EXAMPLES / "quickstart", tmp_path / "quickstart")


def test_the_quickstart_fixture_copies_the_project_not_a_users_run_of_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    """Issue 12: after the README's main job, the tests copied its cache, outputs and MLflow
    store along with the example, and then read them (steps "cached", model version 2)."""
    checkout = tmp_path / "checkout"
    example = checkout / "quickstart"
    example.mkdir(parents=True)
    shutil.copy(EXAMPLES / "quickstart" / "modelyard.yaml", example)
    for left in (".modelyard/artifacts/ingest/0123/meta.json", "modelyard-out/report.html",
                 ".modelyard/mlflow.db", "mlruns/0/meta.yaml", "mlartifacts/x"):  # fmt: skip
        (example / left).parent.mkdir(parents=True, exist_ok=True)
        (example / left).write_text("stale state of a user's run")
    (example / "contract.yaml").write_text("columns: [corrupt")
    (example / "mlflow.db").write_bytes(b"")
    monkeypatch.setattr(sys.modules[__name__], "EXAMPLES", checkout)
    copied: Path = request.getfixturevalue("quickstart")
    assert sorted(p.relative_to(copied).as_posix() for p in copied.rglob("*")) == ["modelyard.yaml"]


def test_quickstart_runs_end_to_end_then_comes_from_the_cache(quickstart: Path) -> None:
    first = modelyard("run", "--json", cwd=quickstart)
    assert first.returncode == 0, first.stderr
    result = json.loads(first.stdout)
    assert [s["status"] for s in result["steps"]] == ["ran"] * len(result["steps"])
    assert [s["name"] for s in result["steps"]] == [
        "ingest", "contract", "validate", "profile", "modeling_contract", "split", "explore", "tune",
        "train", "evaluate", "register",
    ]  # fmt: skip
    assert (quickstart / "contract.yaml").is_file()
    assert (quickstart / "modelyard-out" / "profile.html").is_file()
    assert result["validation"]["train"]["rows"] == 569
    registration = result["registration"]
    assert registration["model_name"] == "quickstart"
    assert registration["version"] == "1"
    assert registration["decision"]["promote"] is True
    assert registration["decision"]["candidate"] >= 0.95  # the gate's floor in the example

    second = modelyard("run", cwd=quickstart)
    assert second.returncode == 0, second.stderr
    assert "0 steps ran" in second.stdout  # the summary is a result: stdout
    assert "11 cached" in second.stdout
    assert "cached  register" in second.stderr  # progress: stderr
    assert "steps ran" not in second.stderr

    listed = json.loads(modelyard("models", "list", "--json", cwd=quickstart).stdout)
    assert [(v["version"], v["aliases"]) for v in listed] == [("1", ["champion"])]

    data = quickstart / "rows.csv"
    import polars as pl
    from sklearn.datasets import load_breast_cancer

    frame = load_breast_cancer(as_frame=True).frame.head(20).drop(columns="target")
    frame.loc[
        0, "mean radius"
    ] = -1.0  # breaks the check "mean radius >= 0": quarantined, not scored
    # issue 11 item 7: 18 % above the training maximum is drift: scored and flagged
    contract = yaml.safe_load((quickstart / "contract.yaml").read_text())
    top = next(c["max"] for c in contract["columns"] if c["name"] == "mean texture")
    frame.loc[1, "mean texture"] = round(top * 1.18, 2)
    frame.to_csv(data, index=False)
    scored = modelyard("predict", str(data), "--out", "scores.parquet", "--json", cwd=quickstart)
    assert scored.returncode == 0, scored.stderr
    summary = json.loads(scored.stdout)
    assert (summary["rows"], summary["scored"], summary["quarantined"]) == (20, 19, 1)
    assert summary["drifted"] == 1
    assert [(d["column"], d["check"], d["rows"]) for d in summary["drift"]] == [
        ("mean texture", "range", 1)
    ]
    out = pl.read_parquet(quickstart / "scores.parquet")
    assert out.height == 19
    assert set(out["prediction"].unique()) <= {"malignant", "benign"}
    assert {"proba_benign", "proba_malignant"} <= set(out.columns)
    flagged = out.filter(pl.col("_drift").is_not_null())
    assert flagged["mean texture"].to_list() == [round(top * 1.18, 2)]
    assert "outside" in flagged["_drift"][0] and out["_drift"].null_count() == 18
    human = modelyard("predict", str(data), "--out", "scores.csv", cwd=quickstart)
    assert human.returncode == 0, human.stderr
    assert "drift: 1 scored row with values unlike the training data" in human.stdout
    assert "mean texture (outside the training range: 1)" in human.stdout


def test_dry_run_explains_what_would_run_and_changing_a_check_reruns_validation_and_profile_only(
    quickstart: Path,
) -> None:
    assert modelyard("run", "--until", "profile", cwd=quickstart).returncode == 0
    plan = modelyard("run", "--until", "profile", "--dry-run", cwd=quickstart)
    assert plan.returncode == 0
    assert all(" cached " in line for line in plan.stdout.strip().splitlines())
    config = quickstart / "modelyard.yaml"
    original = config.read_text()
    config.write_text(
        original.replace("{column: mean radius, min: 0}", "{column: mean radius, min: 7}")
    )
    plan = modelyard("run", "--until", "profile", "--dry-run", "--json", cwd=quickstart)
    steps = {s["name"]: s for s in json.loads(plan.stdout)}
    assert steps["ingest"]["action"] == "cached"
    assert steps["contract"]["action"] == "cached"
    assert steps["validate"]["action"] == "run"
    assert steps["validate"]["reason"] == "parameter config changed"
    assert steps["profile"]["action"] == "run"
    assert steps["profile"]["reason"] == "input from validate will be recomputed"
    again = json.loads(modelyard("run", "--until", "profile", "--json", cwd=quickstart).stdout)
    assert [s["name"] for s in again["steps"] if s["status"] == "ran"] == ["validate", "profile"]
    assert again["validation"]["train"]["invalid_rows"] == 1  # the one tumour with radius 6.981


def test_a_check_that_changes_no_row_reruns_validation_but_not_profiling(quickstart: Path) -> None:
    assert modelyard("run", "--until", "profile", cwd=quickstart).returncode == 0
    config = quickstart / "modelyard.yaml"
    config.write_text(
        config.read_text().replace("{column: mean radius, min: 0}", "{column: mean radius, min: 1}")
    )
    again = json.loads(modelyard("run", "--until", "profile", "--json", cwd=quickstart).stdout)
    status = {s["name"]: s["status"] for s in again["steps"]}
    assert status["validate"] == "ran"
    assert status["profile"] == "cached"  # its input came out identical (early cut-off)


def test_until_and_from(quickstart: Path) -> None:
    until = json.loads(modelyard("run", "--until", "contract", "--json", cwd=quickstart).stdout)
    assert [s["name"] for s in until["steps"]] == ["ingest", "contract"]
    bad = modelyard("run", "--until", "profiel", cwd=quickstart)
    assert bad.returncode == 2
    assert "did you mean 'profile'" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_config_errors_are_one_paragraph_without_traceback(tmp_path: Path) -> None:
    (tmp_path / "modelyard.yaml").write_text(
        "version: 1\nname: x\ndata:\n  sorce: {builtin: iris}\n"
    )
    done = modelyard("run", cwd=tmp_path)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert "modelyard.yaml:4: data.sorce: unknown key; did you mean 'source'?" in done.stderr
    missing = modelyard("run", "-c", "nope.yaml", cwd=tmp_path)
    assert missing.returncode == 2
    assert "modelyard init" in missing.stderr


def test_init_writes_a_commented_config_that_runs(tmp_path: Path, shared_data: Path) -> None:
    shutil.copy(shared_data / "penguins.csv", tmp_path / "penguins.csv")
    done = modelyard("init", "penguins.csv", "--target", "species", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    text = (tmp_path / "modelyard.yaml").read_text()
    assert "task: multiclass" in text
    assert "# " in text  # commented
    again = modelyard("init", "penguins.csv", "--target", "species", cwd=tmp_path)
    assert again.returncode == 2 and "--force" in again.stderr
    typo = modelyard("init", "penguins.csv", "--target", "specis", "--force", cwd=tmp_path)
    assert typo.returncode == 2 and "Did you mean 'species'" in typo.stderr
    run = modelyard("run", "--until", "validate", cwd=tmp_path)
    assert run.returncode == 0, run.stderr


def test_clean_and_version_and_schema(quickstart: Path) -> None:
    assert modelyard("run", "--until", "profile", cwd=quickstart).returncode == 0
    cleaned = modelyard("clean", "--all", cwd=quickstart)
    assert cleaned.returncode == 0 and "removed" in cleaned.stdout
    plan = modelyard("run", "--until", "profile", "--dry-run", cwd=quickstart)
    assert " cached " not in plan.stdout
    assert modelyard("--version", cwd=quickstart).stdout.startswith("modelyard, version ")
    schema = json.loads(modelyard("schema", cwd=quickstart).stdout)
    assert schema["additionalProperties"] is False


def test_drift_between_two_plain_files_guesses_their_format(
    tmp_path: Path, shared_data: Path
) -> None:
    wine = shared_data / "wine_quality"
    done = modelyard(
        "drift",
        str(wine / "winequality-red.csv"),
        str(wine / "winequality-white.csv"),
        "--json",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert len(report["features"]) == 12  # the ";"-separated columns were split
    assert report["drifted"] is True and "residual sugar" in report["drifted_features"]
    same = modelyard(
        "drift",
        str(wine / "winequality-red.csv"),
        str(wine / "winequality-red.csv"),
        "--json",
        cwd=tmp_path,
    )
    assert same.returncode == 0, same.stderr
    assert json.loads(same.stdout)["drifted_features"] == []


def _reviews(path: Path, start: int, shift: float, header: bool = True) -> Path:
    # a long free-text column first, with quoted words in it: the old header sniffer said
    # "no header" and `modelyard drift` failed with "the file has no header"
    import csv
    import io

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    if header:
        writer.writerow(["review", "stars", "price"])
    for i in range(start, start + 400):
        text = f'A "great" product (really), would buy again {i}' + " and again" * (i % 60)
        writer.writerow([text, 1 + i % 5, f"{(i * 37 % 100) + shift:.2f}"])
    path.write_text(buffer.getvalue(), encoding="utf-8")
    return path


def test_drift_on_plain_csv_files_with_a_long_text_column(tmp_path: Path) -> None:
    ref = _reviews(tmp_path / "ref.csv", 0, 0.0)
    cur = _reviews(tmp_path / "cur.csv", 400, 60.0)
    done = modelyard("drift", str(ref), str(cur), "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert [f["column"] for f in report["features"]] == ["review", "stars", "price"]
    assert "price" in report["drifted_features"] and "stars" not in report["drifted_features"]
    # without a header: positional names, and --no-header / --header override the guess
    bare = _reviews(tmp_path / "bare.csv", 0, 0.0, header=False)
    done = modelyard("drift", str(bare), str(bare), "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    names = [f["column"] for f in json.loads(done.stdout)["features"]]
    assert names == ["column_1", "column_2", "column_3"]
    done = modelyard("drift", str(ref), str(ref), "--no-header", "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert next(f["column"] for f in json.loads(done.stdout)["features"]) == "column_1"
    # one line that is not a row: set aside and said, not fatal
    (tmp_path / "ragged.csv").write_text("a,b\n1,2\n3,4,5\n" + "6,7\n" * 150)
    done = modelyard(
        "drift", str(tmp_path / "ragged.csv"), str(tmp_path / "ragged.csv"), cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    assert "note: 1 line of the reference file is not a row, left out" in done.stdout
    # a file the guess cannot read (mostly lines that are not rows): the fix names this
    # command's options, not read.columns
    (tmp_path / "wrong.csv").write_text("a,b\n1,2\n" + "3,4,5\n" * 50)
    done = modelyard("drift", str(tmp_path / "wrong.csv"), str(ref), cwd=tmp_path)
    assert done.returncode == 2
    assert "50 of the 51 lines are not rows" in done.stderr
    assert "--separator" in done.stderr and "--header" in done.stderr
    assert "read.columns" not in done.stderr and "Traceback" not in done.stderr


def test_drift_between_two_years_reports_the_target_as_label_drift(
    tmp_path: Path, shared_data: Path
) -> None:
    import polars as pl

    hour = pl.read_csv(shared_data / "bike_sharing" / "hour.csv")
    hour.filter(pl.col("yr") == 0).write_csv(tmp_path / "2011.csv")
    hour.filter(pl.col("yr") == 1).write_csv(tmp_path / "2012.csv")
    args = ["drift", "2011.csv", "2012.csv", "--target", "cnt"]
    done = modelyard(*args, "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert "cnt" not in [f["column"] for f in report["features"]]
    assert report["target"]["column"] == "cnt" and report["target"]["status"] == "drift"
    # the yearly growth of rentals drifted; humidity moved 0.17 standard deviations (real,
    # below the small-effect threshold 0.2); temperature 0.08
    assert {"casual", "registered", "yr"} <= set(report["drifted_features"])
    assert not {"hum", "temp", "atemp", "season", "mnth", "hr"} & set(report["drifted_features"])
    text = modelyard(*args, cwd=tmp_path)
    assert text.returncode == 0, text.stderr
    assert "label drift (target 'cnt'" in text.stdout
    lines = text.stdout.splitlines()
    assert lines[-1].split()[:3] == ["!", "cnt", "drift"]


def test_drift_console_shows_the_signed_missing_change_of_the_html(tmp_path: Path) -> None:
    import polars as pl

    # 30% missing in the reference, about 10% in the current table: the change is negative
    ref = pl.DataFrame(
        {"id": range(1000), "x": [None if i % 10 < 3 else float(i % 7) for i in range(1000)]}
    )
    cur = pl.DataFrame(
        {"id": range(1000), "x": [None if i % 10 < 1 else float(i % 7) for i in range(1000)]}
    )
    ref.write_csv(tmp_path / "ref.csv")
    cur.write_csv(tmp_path / "cur.csv")
    html = tmp_path / "drift.html"
    done = modelyard("drift", "ref.csv", "cur.csv", "--html", str(html), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "missing_delta -0.2" in done.stdout  # it printed "missing_delta 0.2"
    page = html.read_text()
    assert 'data-stat="missing_delta" data-column="x" data-value="-0.2' in page


def test_ctrl_c_mid_run_exits_cleanly_and_the_next_run_resumes(quickstart: Path) -> None:
    import signal
    import time

    proc = subprocess.Popen(
        [EXE, "run"], cwd=quickstart, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 120
        while not (quickstart / ".modelyard" / "artifacts" / "split").exists():
            assert proc.poll() is None and time.monotonic() < deadline, (
                "the run ended before its split"
            )
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)  # explore (several seconds of cross-validation) is running
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err[-2000:]
    assert "interrupted: finished steps are cached" in err
    again = json.loads(modelyard("run", "--json", cwd=quickstart).stdout)
    status = {s["name"]: s["status"] for s in again["steps"]}
    assert status["split"] == "cached" and status["explore"] == "ran"
