"""Model search against the AutoML peers (issue 10): modelyard, FLAML, AutoGluon and
scikit-learn's HistGradientBoosting floor, on the same splits and the same wall-clock budget.

    uv run python bench/automl.py                                  # all 7 datasets, all tools
    uv run python bench/automl.py --datasets penguins,titanic --budget 20 --out r.json
    uv run --all-extras python bench/automl.py --datasets adult --scaling 10   # executors

Each dataset is split once (seeded; the given adult.data/adult.test; a time split for bike
sharing) into ``train.csv`` and ``test.csv`` that every tool reads, so all see the same rows and
values. Then, one tool at a time (never two at once, threads at each tool's defaults):

- modelyard: ``modelyard init train.csv --target T`` in a fresh project folder; the written
  yaml is edited only to point ``data.test`` at test.csv, to pass the read options the CSV
  needs (bike's dates), to set the task if init inferred another one, and to set the budget
  when ``--budget`` is given (:func:`set_modelyard_budget`); then ``modelyard run``. Timings
  come from ``modelyard-out/run.json``, its own score from ``evaluation.json``; the bench's
  score from ``modelyard predict test.csv`` with the registered version.
- FLAML ``AutoML().fit(time_budget=S)`` and AutoGluon ``TabularPredictor.fit(time_limit=S,
  presets="medium_quality")`` in the peers' interpreter (``--peers-python``), HGB defaults in
  this one, all through ``bench/_peer_run.py``.

Every test metric is computed here, from each tool's test predictions, with the same
scikit-learn functions. Without ``--budget`` modelyard runs with its own default and the peers
get 120 s. Prints one aligned table and writes the results as JSON (``--out``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parents[1]
PEER_RUNNER = Path(__file__).with_name("_peer_run.py")
TOOLS = ("modelyard", "flaml", "autogluon", "hgb")
PEER_DEFAULT_BUDGET = 120.0
PEERS_INSTALL = (
    'python -m venv /work/peers && /work/peers/bin/pip install "autogluon.tabular[lightgbm,'
    'xgboost,catboost]" "flaml[automl]" "pandas<3"'
)
ADULT_COLUMNS = [
    "age", "workclass", "fnlwgt", "education", "education-num", "marital-status", "occupation",
    "relationship", "race", "sex", "capital-gain", "capital-loss", "hours-per-week",
    "native-country", "income",
]  # fmt: skip


def data_dir() -> Path:
    return Path(os.environ.get("MODELYARD_DATA", ROOT.parent / "shared" / "data"))


# --------------------------------------------------------------------------- datasets

Frames = tuple[pd.DataFrame, pd.DataFrame]


def random_split(frame: pd.DataFrame, target: str, seed: int, *, stratify: bool) -> Frames:
    """80/20, seeded; stratified on the target for classification."""
    from sklearn.model_selection import train_test_split

    train, test = train_test_split(
        frame, test_size=0.2, random_state=seed, stratify=frame[target] if stratify else None
    )
    return train, test


def load_adult(data: Path, seed: int) -> Frames:
    read = {"names": ADULT_COLUMNS, "skipinitialspace": True, "na_values": "?"}
    train = pd.read_csv(data / "adult" / "adult.data", **read)
    test = pd.read_csv(data / "adult" / "adult.test", skiprows=1, **read)
    test["income"] = test["income"].str.rstrip(".")
    return train, test


def load_diamonds(data: Path, seed: int) -> Frames:
    return random_split(pd.read_csv(data / "diamonds.csv"), "price", seed, stratify=False)


def load_penguins(data: Path, seed: int) -> Frames:
    return random_split(pd.read_csv(data / "penguins.csv"), "species", seed, stratify=True)


BIKE_CUTOFF = "2012-07-01"


def load_bike(data: Path, seed: int) -> Frames:
    hour = pd.read_csv(data / "bike_sharing" / "hour.csv")
    hour = hour.drop(columns=["instant", "casual", "registered"])
    past = hour["dteday"] < BIKE_CUTOFF  # ISO dates compare as text
    return hour[past], hour[~past]


def load_wine(data: Path, seed: int) -> Frames:
    folder = data / "wine_quality"
    red = pd.read_csv(folder / "winequality-red.csv", sep=";").assign(color="red")
    white = pd.read_csv(folder / "winequality-white.csv", sep=";").assign(color="white")
    wine = pd.concat([red, white], ignore_index=True)
    return random_split(wine, "quality", seed, stratify=True)


def load_titanic(data: Path, seed: int) -> Frames:
    titanic = pd.read_csv(data / "titanic.csv").drop(columns=["alive"])
    return random_split(titanic, "survived", seed, stratify=True)


def load_kddcup(data: Path, seed: int) -> Frames:
    folder = data / "kddcup99"
    lines = (folder / "kddcup.names").read_text().splitlines()[1:]
    names = [line.split(":")[0] for line in lines if ":" in line]
    kdd = pd.read_csv(folder / "kddcup.data_10_percent.gz", names=[*names, "label"])
    kdd["label"] = kdd["label"].str.rstrip(".")
    return random_split(kdd, "label", seed, stratify=True)


@dataclass(frozen=True)
class Dataset:
    name: str
    target: str
    task: str  # binary | multiclass | regression
    metrics: tuple[str, ...]  # the first is the headline, and the one the peers optimise
    load: Callable[[Path, int], Frames]
    split: str
    read: dict[str, Any] = field(default_factory=dict)  # modelyard read options the CSV needs
    dates: tuple[str, ...] = ()  # columns the peers parse as dates
    note: str = ""


DATASETS = {
    d.name: d
    for d in (
        Dataset("adult", "income", "binary", ("roc_auc",), load_adult,
                "given adult.data / adult.test",
                note="'?' as missing, the test labels' trailing '.' removed"),
        Dataset("diamonds", "price", "regression", ("r2", "rmse"), load_diamonds,
                "random 80/20"),
        Dataset("penguins", "species", "multiclass", ("accuracy", "f1_macro"), load_penguins,
                "stratified 80/20"),
        Dataset("bike_sharing", "cnt", "regression", ("r2", "rmse"), load_bike,
                f"time: dteday < {BIKE_CUTOFF} trains, the rest tests",
                read={"parse_dates": ["dteday"]}, dates=("dteday",),
                note="hour.csv; instant, casual, registered dropped"),
        Dataset("wine_quality", "quality", "multiclass", ("accuracy", "f1_macro"), load_wine,
                "stratified 80/20", note="red + white with a color column"),
        Dataset("titanic", "survived", "binary", ("roc_auc",), load_titanic,
                "stratified 80/20", note="alive (= survived) dropped for every tool"),
        Dataset("kddcup99", "label", "multiclass", ("accuracy", "f1_macro"), load_kddcup,
                "stratified 80/20", note="10% file, names from kddcup.names, labels' '.' removed"),
    )
}  # fmt: skip


@dataclass(frozen=True)
class Split:
    dataset: Dataset
    folder: Path
    train: Path
    test: Path
    info: dict[str, Any]


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def write_split(ds: Dataset, workdir: Path, seed: int) -> Split:
    """Write the dataset's train.csv and test.csv once; every tool reads these two files."""
    train, test = ds.load(data_dir(), seed)
    folder = workdir / ds.name
    folder.mkdir(parents=True, exist_ok=True)
    paths = folder / "train.csv", folder / "test.csv"
    for frame, path in zip((train, test), paths, strict=True):
        frame.to_csv(path, index=False)
    info = {
        "target": ds.target,
        "task": ds.task,
        "metrics": list(ds.metrics),
        "split": ds.split,
        "note": ds.note,
        "train_rows": len(train),
        "test_rows": len(test),
        "columns": len(train.columns) - 1,
        "md5": {p.name: md5(p) for p in paths},
    }
    return Split(ds, folder, *paths, info)


# --------------------------------------------------------------------------- metrics


def labels(values: Any) -> np.ndarray:
    """Class labels as text, the same for every tool: 1, 1.0, "1" and True/"True" agree."""
    series = pd.Series(values)
    if not pd.api.types.is_bool_dtype(series):
        numbers = pd.to_numeric(series, errors="coerce")
        whole = numbers.notna() == series.notna()
        if whole.all() and np.all(np.mod(numbers.dropna(), 1) == 0):
            series = numbers.astype("Int64")
    return series.astype(str).to_numpy()


def score(task: str, metrics: tuple[str, ...], y_true: Any, pred: pd.DataFrame) -> dict[str, float]:
    """The bench's own metrics from a frame of ``prediction`` (+ ``proba_<class>``) columns."""
    from sklearn import metrics as m

    out: dict[str, float] = {}
    if task == "regression":
        y, p = np.asarray(y_true, dtype=float), pred["prediction"].to_numpy(dtype=float)
        found = {"r2": lambda: m.r2_score(y, p), "rmse": lambda: m.root_mean_squared_error(y, p)}
    else:
        y, p = labels(y_true), labels(pred["prediction"])
        proba = {
            c[len("proba_") :]: pred[c].to_numpy(float) for c in pred if c.startswith("proba_")
        }

        def auc() -> float:
            positive = sorted(set(y))[-1]  # either class gives the same AUC
            column = next(v for k, v in proba.items() if labels([k])[0] == positive)
            return float(m.roc_auc_score(y == positive, column))

        found = {
            "roc_auc": auc,
            "accuracy": lambda: m.accuracy_score(y, p),
            "f1_macro": lambda: m.f1_score(y, p, average="macro"),
        }
    for name in metrics:
        out[name] = float(found[name]())
    return out


# --------------------------------------------------------------------------- running a tool


def run_logged(cmd: list[str], *, cwd: Path, log: Path, kill_after: float) -> tuple[int, float]:
    """Run ``cmd`` alone in its own process group, output to ``log``; (exit code, wall s).

    After ``kill_after`` seconds the whole group is killed and the code is -9.
    """
    start = time.perf_counter()
    with log.open("w") as out:
        proc = subprocess.Popen(
            cmd, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            code = proc.wait(timeout=kill_after)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            code = -9
        except BaseException:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise
    return code, time.perf_counter() - start


def tail(log: Path, lines: int = 15) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def failure(tool: str, code: int, wall: float, log: Path, kill_after: float) -> dict[str, Any]:
    why = f"killed after {kill_after:.0f} s" if code == -9 else f"exit {code}"
    return {
        "tool": tool,
        "status": "failed",
        "error": why,
        "wall_seconds": wall,
        "log": str(log),
        "log_tail": tail(log),
    }


def set_modelyard_budget(config: dict[str, Any], seconds: float) -> list[str]:
    """Give modelyard a wall-clock budget of ``seconds`` (``models.budget``: exploration,
    tuning and the final fit); return the edits, as yaml paths."""
    config.setdefault("models", {})["budget"] = f"{seconds:g}s"
    return [f"models.budget: {seconds:g}s"]


def edit_modelyard_yaml(path: Path, ds: Dataset, budget: float | None) -> list[str]:
    """Edit the yaml ``modelyard init`` wrote, only as far as the bench needs; return the edits.

    The test file, the read options the CSV needs, the task if init inferred another one, and
    the budget when one is given. The file sits beside train.csv and test.csv.
    """
    config = yaml.safe_load(path.read_text())
    edits = ["data.test.path: test.csv"]
    config["data"]["test"] = {"path": "test.csv"}
    for key, value in ds.read.items():
        config["data"]["source"].setdefault("read", {})[key] = value
        edits.append(f"data.source.read.{key}: {value}")
    inferred = config["data"].get("task")
    if inferred != ds.task:
        config["data"]["task"] = ds.task
        edits.append(f"data.task: {ds.task} (init inferred {inferred})")
    if budget is not None:
        edits += set_modelyard_budget(config, budget)
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return edits


def modelyard_command() -> list[str]:
    script = Path(sys.executable).with_name("modelyard")
    if script.exists():
        return [str(script)]
    found = shutil.which("modelyard")
    if found is None:
        sys.exit(
            "modelyard is not installed here: run the bench with `uv run python bench/automl.py`"
        )
    return [found]


def run_modelyard(split: Split, budget: float | None, kill_after: float) -> dict[str, Any]:
    ds = split.dataset
    project = split.folder / "modelyard"
    if project.exists():
        shutil.rmtree(project)
    project.mkdir()
    shutil.copyfile(split.train, project / "train.csv")
    shutil.copyfile(split.test, project / "test.csv")
    cli = modelyard_command()
    init = subprocess.run(
        [*cli, "init", "train.csv", "--target", ds.target],
        cwd=project,
        capture_output=True,
        text=True,
    )
    if init.returncode != 0:
        return {
            "tool": "modelyard",
            "status": "failed",
            "error": "modelyard init failed",
            "log_tail": (init.stdout + init.stderr)[-2000:],
        }

    edits = edit_modelyard_yaml(project / "modelyard.yaml", ds, budget)

    log = project / "run.log"
    code, wall = run_logged(
        [*cli, "run", "-c", "modelyard.yaml"], cwd=project, log=log, kill_after=kill_after
    )
    if code != 0:
        return failure("modelyard", code, wall, log, kill_after) | {"yaml_edits": edits}
    out = project / "modelyard-out"
    run = json.loads((out / "run.json").read_text())
    evaluation = json.loads((out / "evaluation.json").read_text())
    steps = {s["name"]: s["seconds"] for s in run["steps"] if s["status"] == "ran"}
    result: dict[str, Any] = {
        "tool": "modelyard",
        "status": "ok",
        "wall_seconds": wall,
        # run.json's own total: 0.0 today (written before the run's clock stops)
        "run_json_seconds": run["seconds"],
        "steps": steps,
        "steps_seconds": sum(steps.values()),
        # the search and the final fit, the counterpart of a peer's fit()
        "fit_seconds": sum(steps.get(k, 0.0) for k in ("explore", "tune", "train")),
        "own_metrics": evaluation["metrics"],
        "own_metric": evaluation["metric"],
        "evaluated_rows": evaluation["rows"],
        "yaml_edits": edits,
        "budget_seconds": budget,
        "log": str(log),
    }
    reg = run.get("registration") or {}
    result |= _modelyard_search(out)
    # The bench's own score: the registered version predicts test.csv.
    model = f"{reg['model_name']}/{reg['version']}" if reg else None
    preds = project / "predictions.csv"
    cmd = [*cli, "predict", "test.csv", "-c", "modelyard.yaml", "-o", str(preds)]
    if model:
        cmd += ["--model", model]
    code, seconds = run_logged(cmd, cwd=project, log=project / "predict.log", kill_after=kill_after)
    result["predict_seconds"] = seconds
    if code != 0:
        result |= {
            "status": "failed",
            "error": f"modelyard predict: exit {code}",
            "log_tail": tail(project / "predict.log"),
        }
        return result
    pred = pd.read_csv(preds, low_memory=False)
    # predict quarantines rows that break the contract: score the rows it scored, and say so.
    result["unscored_rows"] = split.info["test_rows"] - len(pred)
    result["metrics"] = score(ds.task, ds.metrics, pred[ds.target], pred)
    # The cross-check: modelyard's own evaluation against the bench's score of its predictions.
    result["own_minus_bench"] = {
        k: result["own_metrics"][k] - v
        for k, v in result["metrics"].items()
        if k in result["own_metrics"]
    }
    return result


def _modelyard_search(out: Path) -> dict[str, Any]:
    """What modelyard chose and how tuning stopped, from ``report.json``."""
    try:
        report = json.loads((out / "report.json").read_text())
    except (OSError, ValueError):
        return {}
    choice = report.get("choice") or {}
    tuning = [
        {k: t.get(k) for k in ("name", "n_trials_completed", "stopped_by", "seconds")}
        for t in report.get("tuning") or []
    ]
    search = (report.get("leaderboard") or {}).get("search") or {}
    return {
        "chosen": choice.get("name"),
        "reason": choice.get("reason"),
        "tuning": tuning,
        "search_budget": search.get("budget_seconds"),
        "search_mode": search.get("mode"),
        "fit_rows": choice.get("fit_rows"),
        "members": [(m["name"], m["weight"]) for m in choice.get("members") or []],
    }


SCALING_SETUPS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("serial", {"executor": "serial"}),
    ("local, 1 worker", {"executor": "local", "workers": 1}),
    ("local, 2 workers", {"executor": "local", "workers": 2}),
    ("dask, 2 worker processes", {"executor": "dask", "workers": 2}),
)
"""How the scaling table runs the same reproducible search (a LocalCluster of 2 processes,
one thread each, for Dask)."""


def run_scaling(split: Split, n_trials: int, kill_after: float) -> list[dict[str, Any]]:
    """The same search (``tuning.n_trials``, so exactly reproducible) on each executor of
    :data:`SCALING_SETUPS`: explore + tune seconds, and whether the leaderboard, the tuned
    parameters and the chosen model equal serial's."""
    ds = split.dataset
    rows: list[dict[str, Any]] = []
    reference: Any = None
    for label, compute in SCALING_SETUPS:
        project = split.folder / f"scaling-{compute['executor']}-{compute.get('workers', 1)}"
        shutil.rmtree(project, ignore_errors=True)
        project.mkdir()
        shutil.copyfile(split.train, project / "train.csv")
        shutil.copyfile(split.test, project / "test.csv")
        cli = modelyard_command()
        subprocess.run([*cli, "init", "train.csv", "--target", ds.target], cwd=project,
                       capture_output=True, text=True, check=True)  # fmt: skip
        edit_modelyard_yaml(project / "modelyard.yaml", ds, None)
        config = yaml.safe_load((project / "modelyard.yaml").read_text())
        config.setdefault("tuning", {})["n_trials"] = n_trials
        config["compute"] = compute
        (project / "modelyard.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
        log = project / "run.log"
        code, _ = run_logged([*cli, "run", "--until", "train"], cwd=project, log=log,
                                kill_after=kill_after)  # fmt: skip
        if code != 0:
            rows.append({"setup": label, "status": "failed", "log_tail": tail(log)})
            continue
        out = project / "modelyard-out"
        steps = {
            s["name"]: s["seconds"] for s in json.loads((out / "run.json").read_text())["steps"]
        }
        report = json.loads((out / "report.json").read_text())
        outcome = _search_outcome(report)
        if reference is None:
            reference = outcome
        rows.append({
            "setup": label, "status": "ok", "explore": steps.get("explore", 0.0),
            "tune": steps.get("tune", 0.0), "train": steps.get("train", 0.0),
            "identical_to_serial": outcome == reference, "chosen": report["choice"]["name"],
            "cv_score": report["choice"]["score"],
        })  # fmt: skip
    return rows


def _search_outcome(report: dict[str, Any]) -> Any:
    """What must not depend on the executor: every configuration's scores and parameters, the
    tuning histories, the chosen members and weights."""
    board = [
        (r["name"], r["state"], r["scores"], r["params"]) for r in report["leaderboard"]["rows"]
    ]
    tuning = [(t["name"], [(h["number"], h["value"], h["params"]) for h in t["history"]])
              for t in report["tuning"] or []]  # fmt: skip
    choice = report["choice"]
    return board, tuning, choice["name"], choice["score"], choice["members"]


def scaling_table(rows: list[dict[str, Any]]) -> str:
    ok = [r for r in rows if r["status"] == "ok"]
    one = next((r for r in ok if r["setup"] == "local, 1 worker"), None)
    local2 = next((r for r in ok if r["setup"] == "local, 2 workers"), None)
    lines = [f"{'setup':<26} {'explore s':>10} {'tune s':>8} {'train s':>8} {'explore+tune':>13} "
             f"{'speed-up':>9}  identical to serial"]  # fmt: skip
    for r in rows:
        if r["status"] != "ok":
            lines.append(f"{r['setup']:<26} FAILED {r.get('log_tail', '')[-200:]}")
            continue
        both = r["explore"] + r["tune"]
        base = (one["explore"] + one["tune"]) if one else None
        speed = f"x{base / both:.2f}" if base and both else "-"
        lines.append(f"{r['setup']:<26} {r['explore']:>10.1f} {r['tune']:>8.1f} {r['train']:>8.1f} "
                     f"{both:>13.1f} {speed:>9}  {'yes' if r['identical_to_serial'] else 'NO'}")  # fmt: skip
    if local2 is not None:
        dask = next((r for r in ok if r["setup"].startswith("dask")), None)
        if dask is not None:
            ratio = (dask["explore"] + dask["tune"]) / (local2["explore"] + local2["tune"])
            lines.append(f"dask / local (2 workers): {ratio:.2f}")
    return "\n".join(lines)


def run_peer(
    tool: str, split: Split, python: str, budget: float, seed: int, kill_after: float
) -> dict[str, Any]:
    ds = split.dataset
    folder = split.folder / tool
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir()
    preds, info_file, log = folder / "predictions.csv", folder / "info.json", folder / "run.log"
    cmd = [
        python,
        str(PEER_RUNNER),
        "--tool",
        tool,
        "--train",
        str(split.train),
        "--test",
        str(split.test),
        "--target",
        ds.target,
        "--task",
        ds.task,
        "--metric",
        ds.metrics[0],
        "--budget",
        str(budget),
        "--seed",
        str(seed),
        "--dates",
        ",".join(ds.dates),
        "--workdir",
        str(folder),
        "--out",
        str(preds),
        "--info",
        str(info_file),
    ]
    code, wall = run_logged(cmd, cwd=folder, log=log, kill_after=kill_after)
    if code != 0:
        return failure(tool, code, wall, log, kill_after)
    info = json.loads(info_file.read_text())
    truth = pd.read_csv(split.test, usecols=[ds.target], low_memory=False)[ds.target]
    pred = pd.read_csv(preds, low_memory=False)
    return {
        "tool": tool,
        "status": "ok",
        "wall_seconds": wall,
        "fit_seconds": info["fit_seconds"],
        "predict_seconds": info["predict_seconds"],
        "budget_seconds": budget if tool != "hgb" else None,
        "metrics": score(ds.task, ds.metrics, truth, pred),
        "chosen": info.get("chosen"),
        "models_trained": info.get("models_trained"),
        "version": info.get("version"),
        "unscored_rows": 0,
        "log": str(log),
    }


XGBOOST_FIX = (
    "/work/peers/bin/pip uninstall -y xgboost nvidia-nccl-cu12 && /work/peers/bin/pip install "
    '--force-reinstall --no-deps "xgboost-cpu>=3,<3.4"'
)
PROBES = {
    "flaml": "import flaml.automl",
    # flaml[automl] pins the `xgboost` distribution < 3, which overwrites AutoGluon's
    # xgboost-cpu; xgboost 2.1.4 cannot save a model under scikit-learn 1.9 ("`_estimator_type`
    # undefined"), so AutoGluon would skip XGBoost (a warning in its log). FLAML runs on 3.2.
    "autogluon": "import autogluon.tabular, xgboost.sklearn as x; x.XGBClassifier()._get_type()",
}


def check_peers(python: str, tools: list[str]) -> None:
    """Exit with the install command when the peers' interpreter or a peer is missing."""
    peers = [t for t in tools if t in PROBES]
    if not peers:
        return
    if not Path(python).exists():
        missing = f"the peers' Python interpreter ({python}) is missing"
    else:
        for tool in peers:
            check = subprocess.run([python, "-c", PROBES[tool]], capture_output=True, text=True)
            if check.returncode == 0:
                continue
            last = (check.stderr.strip().splitlines() or ["?"])[-1]
            if "_estimator_type" in last:
                sys.exit(
                    f"error: {python} has xgboost < 3 (pulled by flaml[automl]); AutoGluon "
                    f"cannot save XGBoost models with it. Fix:\n    {XGBOOST_FIX}"
                )
            missing = f"{tool} cannot be imported by {python} ({last})"
            break
        else:
            return
    sys.exit(
        f"error: {missing}.\n"
        f"  FLAML and AutoGluon are not modelyard dependencies; install them once in their own "
        f"venv (about 1 GB, no torch):\n    {PEERS_INSTALL}\n    {XGBOOST_FIX}\n"
        f"  then pass --peers-python /work/peers/bin/python or set MODELYARD_PEERS_PYTHON. "
        f"Or leave them out: --tools modelyard,hgb"
    )


# --------------------------------------------------------------------------- report


def table(results: list[dict[str, Any]]) -> str:
    rows = [
        ("dataset", "tool", "metrics (bench's own, on the test set)", "wall s", "fit s", "notes")
    ]
    for r in results:
        if r["status"] != "ok":
            metrics = f"FAILED: {r.get('error', '')}"
        else:
            metrics = "  ".join(f"{k} {v:.4f}" for k, v in r["metrics"].items())
        notes = []
        if r.get("unscored_rows"):
            notes.append(f"{r['unscored_rows']} test rows quarantined, not scored")
        if r["tool"] == "modelyard" and r["status"] == "ok":
            own = r["own_metrics"].get(r["headline"])
            rows_note = ""
            if r["evaluated_rows"] != r["test_rows"]:
                rows_note = f" on {r['evaluated_rows']} of {r['test_rows']} rows"
            if own is not None:
                notes.append(f"evaluation.json {r['headline']} {own:.4f}{rows_note}")
        budget = r.get("search_budget")
        if budget:
            over = (r.get("fit_seconds", 0.0) / budget - 1) * 100
            notes.append(f"budget {budget:.0f} s ({r.get('search_mode')}): search {over:+.0f}%")
        if r.get("chosen"):
            notes.append(str(r["chosen"])[:60])
        fit = r.get("fit_seconds")
        rows.append(
            (
                r["dataset"],
                r["tool"],
                metrics,
                f"{r['wall_seconds']:.1f}" if "wall_seconds" in r else "-",
                f"{fit:.1f}" if fit is not None else "-",
                "; ".join(notes),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    right = {3, 4}
    lines = []
    for row in rows:
        cells = [row[i].rjust(w) if i in right else row[i].ljust(w) for i, w in enumerate(widths)]
        lines.append("  ".join([*cells, row[5]]).rstrip())
    lines.insert(1, "-" * len(lines[0]))
    lines.append(
        "wall s: the tool's whole process (modelyard: `modelyard run`, every step; peers: start, "
        "read, fit, predict). fit s: the fit call (modelyard: explore + tune + train)."
    )
    steps = [r for r in results if r["tool"] == "modelyard" and r.get("steps")]
    for r in steps:
        ranked = sorted(r["steps"].items(), key=lambda kv: -kv[1])
        shown = ", ".join(f"{k} {v:.1f}" for k, v in ranked if v >= 0.05)
        lines.append(f"modelyard steps on {r['dataset']} (run.json, s): {shown}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--datasets", default=",".join(DATASETS), help="comma-separated")
    p.add_argument("--tools", default=",".join(TOOLS), help="comma-separated")
    p.add_argument(
        "--budget",
        type=float,
        default=None,
        help="seconds for every tool (default: modelyard's own default, "
        f"peers {PEER_DEFAULT_BUDGET:g} s)",
    )
    p.add_argument("--out", type=Path, default=Path("automl-results.json"))
    p.add_argument("--seed", type=int, default=42)
    p.add_argument(
        "--peers-python",
        default=os.environ.get("MODELYARD_PEERS_PYTHON", "/work/peers/bin/python"),
        help="the interpreter with FLAML and AutoGluon (env MODELYARD_PEERS_PYTHON)",
    )
    p.add_argument(
        "--workdir",
        type=Path,
        default=None,
        help="keep splits, projects, predictions and logs here "
        "(default: a temporary folder, removed at the end)",
    )
    p.add_argument(
        "--kill-after",
        type=float,
        default=3600.0,
        help="kill a tool's run after this many seconds (recorded as failed)",
    )
    p.add_argument(
        "--scaling",
        type=int,
        default=0,
        metavar="N_TRIALS",
        help="instead of the peers: the same reproducible search (N_TRIALS per tuned family) "
        "under serial, local 1 and 2 workers and dask, on the first dataset",
    )
    a = p.parse_args(argv)

    names = [n for n in a.datasets.split(",") if n]
    if a.scaling:
        workdir = a.workdir or Path(tempfile.mkdtemp(prefix="modelyard-scaling-"))
        workdir.mkdir(parents=True, exist_ok=True)
        split = write_split(DATASETS[names[0]], workdir, a.seed)
        rows = run_scaling(split, a.scaling, a.kill_after)
        a.out.write_text(json.dumps({"scaling": rows, "dataset": names[0]}, indent=2))
        print(f"{names[0]}: {split.info['train_rows']} train rows; {a.scaling} trials per tuned "
              f"family; {os.cpu_count()} CPUs")  # fmt: skip
        print(scaling_table(rows))
        if a.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
        return 0 if all(r["status"] == "ok" and r["identical_to_serial"] for r in rows) else 1
    tools = [t for t in a.tools.split(",") if t]
    unknown = [n for n in names if n not in DATASETS] + [t for t in tools if t not in TOOLS]
    if unknown:
        p.error(
            f"unknown {', '.join(unknown)}; datasets: {', '.join(DATASETS)}; "
            f"tools: {', '.join(TOOLS)}"
        )
    if not data_dir().is_dir():
        sys.exit(f"error: no data folder at {data_dir()}; set MODELYARD_DATA")
    check_peers(a.peers_python, tools)
    peer_budget = a.budget if a.budget is not None else PEER_DEFAULT_BUDGET

    workdir = a.workdir or Path(tempfile.mkdtemp(prefix="modelyard-automl-"))
    workdir.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {
        "budget_seconds": a.budget,
        "peer_budget_seconds": peer_budget,
        "modelyard_budget": "default" if a.budget is None else a.budget,
        "seed": a.seed,
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
        },
        "peers_python": a.peers_python,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "datasets": {},
        "results": [],
    }
    try:
        for name in names:
            ds = DATASETS[name]
            split = write_split(ds, workdir, a.seed)
            report["datasets"][name] = split.info
            print(
                f"{name}: {split.info['train_rows']} train / {split.info['test_rows']} test "
                f"rows ({ds.split})",
                flush=True,
            )
            for tool in tools:
                print(f"  {tool} ...", end=" ", flush=True)
                load_before = os.getloadavg()[0]
                if tool == "modelyard":
                    r = run_modelyard(split, a.budget, a.kill_after)
                else:
                    python = sys.executable if tool == "hgb" else a.peers_python
                    r = run_peer(tool, split, python, peer_budget, a.seed, a.kill_after)
                r |= {
                    "dataset": name,
                    "headline": ds.metrics[0],
                    "test_rows": split.info["test_rows"],
                    "load_average": [load_before, os.getloadavg()[0]],
                }
                report["results"].append(r)
                if r["status"] == "ok":
                    shown = "  ".join(f"{k} {v:.4f}" for k, v in r["metrics"].items())
                    print(f"{shown}  ({r['wall_seconds']:.1f} s)", flush=True)
                else:
                    print(f"FAILED ({r['error']})\n{r.get('log_tail', '')}", flush=True)
                a.out.write_text(json.dumps(report, indent=2, default=str))
    finally:
        if a.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    report["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    a.out.write_text(json.dumps(report, indent=2, default=str))
    print()
    budget = "modelyard default, peers 120 s" if a.budget is None else f"{a.budget:g} s each"
    print(f"budget: {budget}; seed {a.seed}; {os.cpu_count()} CPUs; one tool at a time")
    print(table(report["results"]))
    print(f"\nresults: {a.out}")
    return 0 if all(r["status"] == "ok" for r in report["results"]) else 1


if __name__ == "__main__":
    sys.exit(main())
