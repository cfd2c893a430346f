"""Everyday commands' wall time, beside MLflow-native equivalents (issue 12).

Sets up its own copy of the quickstart project in a temporary folder, trains it once (`modelyard
run`, minutes), then times each command as a user runs it: the project venv's `modelyard` entry
point, a fresh process each time, the median of `--repeat` runs after one warm-up run.

    uv run python bench/startup.py                    # --repeat 5, --project DIR to reuse one
    uv run python bench/startup.py --project /tmp/qs  # a folder trained by an earlier run

Goals (issue 12, idle 2-core machine): `models list` <= 1 s, `predict` of 100 rows <= 2.5 s,
`serve` until GET /health answers <= 4 s, a cached `run` <= 1 s, `run --dry-run` <= 0.3 s.
The peers are what an MLflow user would run for the same answer (MlflowClient reads,
`mlflow.pyfunc.load_model(...).predict`, `mlflow models serve --env-manager local`).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
MODELYARD = str(BIN / "modelyard")
MLFLOW = BIN / "mlflow"
ENV = {
    **os.environ,
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "true",
    # `mlflow models serve` execs `uvicorn` from PATH: the venv's, as an activated venv would
    "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
}


CPU: list[float] = []
"""CPU seconds (user + system) of each timed child, in order: less sensitive to a shared machine
than wall time."""


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(cmd: list[str], cwd: Path) -> float:
    cpu = children_cpu()
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=cwd, env=ENV, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    CPU.append(children_cpu() - cpu)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return elapsed


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def until_ready(cmd: Callable[[int], list[str]], path: str, cwd: Path, timeout: float) -> float:
    """Start a server, time until GET ``path`` answers 200, stop it."""
    port = free_port()
    start = time.perf_counter()
    proc = subprocess.Popen(
        cmd(port), cwd=cwd, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        start_new_session=True,
    )  # fmt: skip
    try:
        while time.perf_counter() - start < timeout:
            if proc.poll() is not None:
                err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
                raise RuntimeError(f"server exited with {proc.returncode}:\n{err[-2000:]}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=1) as r:
                    if r.status == 200:
                        return time.perf_counter() - start
            except OSError:
                time.sleep(0.02)
        raise RuntimeError(f"not ready after {timeout:.0f}s")
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, 15)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, 9)
            proc.wait()


def median(fn: Callable[[], float], repeat: int) -> tuple[float, float | None]:
    """Median wall time and median CPU time (``None`` for a server) after a warm-up run."""
    fn()  # warm the file cache (and fail early)
    CPU.clear()
    wall = statistics.median(fn() for _ in range(repeat))
    return wall, (statistics.median(CPU) if len(CPU) == repeat else None)


def setup(project: Path | None) -> Path:
    if project is not None:
        return project.resolve()
    folder = Path(tempfile.mkdtemp(prefix="modelyard-bench-startup-")) / "quickstart"
    folder.mkdir()
    shutil.copy(ROOT / "examples" / "quickstart" / "modelyard.yaml", folder)
    print(f"training the quickstart once in {folder} ...", file=sys.stderr, flush=True)
    start = time.perf_counter()
    subprocess.run([MODELYARD, "run"], cwd=folder, env=ENV, check=True, capture_output=True)
    print(f"  first run: {time.perf_counter() - start:.1f}s", file=sys.stderr, flush=True)
    return folder


def rows_csv(folder: Path, n: int = 100) -> Path:
    from sklearn.datasets import load_breast_cancer

    frame = load_breast_cancer(as_frame=True).frame.drop(columns=["target"]).head(n)
    path = folder / f"rows{n}.csv"
    frame.to_csv(path, index=False)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--project", type=Path, help="an already trained quickstart folder")
    parser.add_argument("--skip-peers", action="store_true")
    parser.add_argument("--only", help="time only the rows whose label contains this text")
    parser.add_argument(
        "--compile-bytecode",
        action="store_true",
        help="compile the venv's packages to .pyc first (as pip and `uv sync --compile-bytecode`"
        " do); without .pyc files every command compiles its imports from source",
    )
    args = parser.parse_args()
    purelib = Path(sysconfig.get_paths()["purelib"])
    if args.compile_bytecode:
        print("compiling the venv's packages to bytecode ...", file=sys.stderr, flush=True)
        subprocess.run(
            [sys.executable, "-m", "compileall", "-q", "-j", "0", str(purelib), str(ROOT / "src")],
            check=False,
            capture_output=True,
        )
    cached = (purelib / "sklearn" / "__pycache__").is_dir()
    if not cached:
        print(
            "note: no .pyc files in the venv (PYTHONDONTWRITEBYTECODE="
            f"{os.environ.get('PYTHONDONTWRITEBYTECODE', '')!r}): every import compiles from "
            "source, seconds per command; --compile-bytecode measures an installed tool"
        )
    project = setup(args.project)
    before = os.getloadavg()
    uri = f"sqlite:///{project / '.modelyard' / 'mlflow.db'}"
    rows = rows_csv(project)
    out = project / "bench-predictions.parquet"
    py = sys.executable
    client = f"import os; from mlflow import MlflowClient; c = MlflowClient({uri!r}); "
    peer_predict = (
        "import mlflow.pyfunc, pandas as pd; "
        f"m = mlflow.pyfunc.load_model('models:/quickstart@champion'); "
        f"m.predict(pd.read_csv({str(rows)!r})).to_parquet({str(project / 'peer.parquet')!r})"
    )
    env_uri = {"MLFLOW_TRACKING_URI": uri}
    ENV.update(env_uri)

    def cmd(*argv: str) -> Callable[[], float]:
        return lambda: timed(list(argv), project)

    table: list[tuple[str, Callable[[], float], str, Callable[[], float] | None, str]] = [
        ("python -c pass (floor)", cmd(py, "-c", "pass"), "", None, ""),
        ("import modelyard", cmd(py, "-c", "import modelyard"),
         "import mlflow", cmd(py, "-c", "import mlflow"), ""),
        ("modelyard --help", cmd(MODELYARD, "--help"),
         "mlflow --help", cmd(str(MLFLOW), "--help") if MLFLOW.exists() else None, ""),
        ("modelyard run (all cached)", cmd(MODELYARD, "run"), "", None, "<= 1 s"),
        ("modelyard run --dry-run", cmd(MODELYARD, "run", "--dry-run"), "", None, "<= 0.3 s"),
        ("modelyard models list", cmd(MODELYARD, "models", "list"),
         "MlflowClient search_model_versions",
         cmd(py, "-c", client + "c.search_model_versions(\"name = 'quickstart'\")"), "<= 1 s"),
        ("modelyard models show 1", cmd(MODELYARD, "models", "show", "1"),
         "MlflowClient get_model_version + get_run",
         cmd(py, "-c", client + "v = c.get_model_version('quickstart', '1'); c.get_run(v.run_id)"),
         ""),
        ("modelyard predict (100 rows)",
         cmd(MODELYARD, "predict", str(rows), "-o", str(out)),
         "mlflow.pyfunc.load_model().predict", cmd(py, "-c", peer_predict), "<= 2.5 s"),
        ("modelyard serve -> /health",
         lambda: until_ready(lambda p: [MODELYARD, "serve", "--port", str(p)], "/health",
                             project, 300),
         "mlflow models serve -> /health",
         (lambda: until_ready(
             lambda p: [str(MLFLOW), "models", "serve", "-m", "models:/quickstart@champion",
                        "--env-manager", "local", "-h", "127.0.0.1", "-p", str(p)],
             "/health", project, 300)) if MLFLOW.exists() else None,
         "<= 4 s"),
    ]  # fmt: skip
    results = []
    print(f"median of {args.repeat} (after one warm-up), project {project}")
    print(
        "wall: median wall time; cpu: median user+system CPU time of the process (not for servers)"
    )
    print(
        f"{'modelyard':<30} {'wall':>8} {'cpu':>7}  {'goal':<8}  {'MLflow-native peer':<42} "
        f"{'wall':>8} {'cpu':>7}"
    )
    for label, fn, peer_label, peer, goal in table:
        if args.only and args.only not in label:
            continue
        mine, mine_cpu = median(fn, args.repeat)
        cpu_text = "" if mine_cpu is None else f"{mine_cpu:.2f}s"
        peer_text = ""
        peer_time: float | None = None
        if peer is not None and not args.skip_peers:
            try:
                peer_time, peer_cpu = median(peer, args.repeat)
                peer_text = f"{peer_time:>7.2f}s " + (
                    "" if peer_cpu is None else f"{peer_cpu:>6.2f}s"
                )
            except RuntimeError as exc:
                peer_text = "failed: " + str(exc).splitlines()[0][:60]
        elif peer_label:
            peer_text = "not run" if args.skip_peers else "not installed"
        print(
            f"{label:<30} {mine:>7.2f}s {cpu_text:>7}  {goal:<8}  {peer_label:<42} {peer_text}",
            flush=True,
        )
        results.append({"command": label, "seconds": mine, "cpu_seconds": mine_cpu, "goal": goal,
                        "peer": peer_label, "peer_seconds": peer_time})  # fmt: skip
    uv = shutil.which("uv")
    if uv and not args.only:
        direct, _ = median(cmd(MODELYARD, "--help"), args.repeat)
        via_uv, _ = median(
            cmd(uv, "run", "--project", str(ROOT), "modelyard", "--help"), args.repeat
        )
        print(f"{'uv run modelyard --help':<30} {via_uv:>7.2f}s  (uv run overhead "
              f"{via_uv - direct:+.2f}s over the venv entry point)")  # fmt: skip
        results.append({"command": "uv run modelyard --help", "seconds": via_uv})
    after = os.getloadavg()
    print(
        f"load average before {before[0]:.2f}, after {after[0]:.2f} {after[1]:.2f} {after[2]:.2f}"
        f" on {os.cpu_count()} cores"
    )
    (project / "bench-startup.json").write_text(json.dumps(results, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
