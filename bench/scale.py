"""Benchmark (issue 13, data beyond memory): the whole pipeline on a synthetic table of N rows,
step by step through the CLI, with the wall time and the peak RSS of the whole process tree.

    uv run --all-extras python bench/scale.py                       # 10M rows, local executor
    uv run --all-extras python bench/scale.py --rows 1000000 --budget 1m
    uv run --all-extras python bench/scale.py --rows 10000000,30000000      # two sizes + ratio
    uv run --all-extras python bench/scale.py --executor dask       # a real 2-worker cluster
    uv run --all-extras python bench/scale.py --compare a.json b.json       # time ratio of two runs

1. A seeded generator writes ``train.csv`` (``--rows``; 20 features: 13 numeric of several
   distributions, low- and high-cardinality categories, a boolean, a datetime, a few nulls; a
   binary target ``y`` that is a nonlinear function of several features plus noise) and
   ``predict.csv`` (``--predict-rows``, the same columns without ``y``), chunk by chunk, never
   the whole table in memory. A share ``--malformed`` (0.1%) of the data lines, at seeded
   positions and always including the last line, has too few or too many fields.
2. It writes a ``modelyard.yaml`` for them (``models.budget: --budget``,
   ``validation.max_invalid_fraction`` above the malformed share).
3. It runs ``modelyard run --until STEP`` for each step of ``modelyard run --dry-run``, in order
   (each invocation runs exactly one new step; the others come from the cache), then
   ``modelyard predict``. For each: the wall time of the command, the step's own seconds (from
   ``--json``), and the peak RSS of the process tree (the CLI and all its descendants, plus the
   Dask workers with ``--executor dask``), sampled from /proc every 50 ms and summed over the
   tree ("peak RSS"; a lower bound: a peak shorter than 50 ms can be missed). "HWM sum" adds up
   each process's own high-water mark (``VmHWM``): an upper bound, exact for one process.
   The floor: polars' eager ``pl.read_csv`` of the same file in a subprocess.
4. ``--executor dask`` starts ``dask scheduler`` and 2 ``dask worker`` (``--nworkers 1
   --nthreads 1 --memory-limit 2GB``) on 127.0.0.1, points ``compute.address`` at it, counts
   the workers (nannies and worker processes) in every step's RSS, reports whether a worker was
   restarted or killed (worker logs, worker pids before and after), and always stops the cluster.

Output: a table per run, the goals of issue 13 beside the figures, and ``--out`` (JSON). A step
that fails is reported with its error, and the steps after it are not run (exit status 1).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

MB = 1024 * 1024
CHUNK_ROWS = 250_000
"""Rows generated and written at a time (about 100 MB of memory)."""

GOALS: dict[str, float] = {
    "peak_rss_mb_10m": 2500,
    "peak_rss_mb_30m": 3000,
    "predict_rss_mb_10m": 1000,
    "data_steps_over_floor": 3.0,
    "time_ratio_30m_over_10m": 3.3,
}
"""Issue 13's goals on this 2-core, 24 GB machine."""

DATA_STEPS = ("ingest", "contract", "validate", "profile")
"""The steps timed against the floor (ingest+validate+profile, and the contract between them)."""
ISSUE_STEPS = ("ingest", "validate", "profile")
"""The issue's sum: the contract is inferred by a project's first run only (its
``contract.yaml`` is loaded after), so it is reported beside it, not in it."""

# ----------------------------------------------------------------------------- the data

LOW3 = ["a", "b", "c"]
LOW8 = [f"k{i}" for i in range(8)]
LOW8_P = np.array([0.3, 0.2, 0.15, 0.1, 0.1, 0.07, 0.05, 0.03])
MID = [f"m{i:02d}" for i in range(40)]
HIGH_LEVELS = 5000
COLORS = ["red", "green", "blue", "grey"]
START_EPOCH = 1_704_067_200
"""2024-01-01 00:00:00 UTC."""
YEAR_SECONDS = 366 * 24 * 3600

NUMERIC = [
    "n_normal", "n_lognormal", "n_uniform", "n_exponential", "n_poisson", "n_bimodal",
    "n_student", "n_beta", "n_int_wide", "n_correlated", "n_noise", "n_nulls", "n_price",
]  # fmt: skip
CATEGORICAL = ["c_low3", "c_low8", "c_mid", "c_high", "c_nulls", "flag"]
DATETIME = ["ts"]
FEATURES = [*NUMERIC, *CATEGORICAL, *DATETIME]
TARGET = "y"


def column_names(*, target: bool = True) -> list[str]:
    """The columns of the generated file, in file order."""
    return [*FEATURES, TARGET] if target else list(FEATURES)


def malformed_count(rows: int, share: float) -> int:
    """How many of ``rows`` data lines are malformed: ``round(rows * share)``."""
    return round(rows * share)


def malformed_positions(rows: int, share: float, seed: int) -> np.ndarray:
    """The 0-based data-line numbers of the malformed lines, sorted: seeded, and always the last
    line (a malformed line at row 9,999,999 must be quarantined, not fatal)."""
    k = malformed_count(rows, share)
    if k == 0:
        return np.zeros(0, dtype=np.int64)
    rng = np.random.default_rng([seed, 1])
    others = rng.choice(rows - 1, size=k - 1, replace=False) if k > 1 else np.zeros(0)
    return np.sort(np.concatenate([others.astype(np.int64), [rows - 1]]))


def _chunk(rng: np.random.Generator, n: int, mid_effect: np.ndarray, *, target: bool) -> Any:
    """``n`` rows as a polars DataFrame (vectorised)."""
    import polars as pl

    normal = rng.standard_normal(n)
    lognormal = rng.lognormal(0.0, 0.8, n)
    uniform = rng.uniform(0.0, 100.0, n)
    exponential = rng.exponential(3.0, n)
    poisson = rng.poisson(4.0, n)
    mode = rng.random(n) < 0.5
    bimodal = np.where(mode, rng.normal(-2.0, 0.5, n), rng.normal(2.0, 0.7, n))
    student = rng.standard_t(3, n)
    beta = rng.beta(2.0, 5.0, n)
    int_wide = rng.integers(0, 1_000_000, n)
    correlated = 0.8 * normal + 0.6 * rng.standard_normal(n)
    noise = rng.normal(10.0, 3.0, n)
    with_nulls = rng.normal(50.0, 10.0, n)
    with_nulls[rng.random(n) < 0.03] = np.nan
    price = np.round(rng.lognormal(3.0, 1.0, n), 2)
    low3 = rng.integers(0, 3, n)
    low8 = rng.choice(8, n, p=LOW8_P)
    mid = rng.integers(0, len(MID), n)
    high = np.minimum((rng.pareto(1.1, n) * 40).astype(np.int64), HIGH_LEVELS - 1)
    colors = rng.integers(0, len(COLORS), n)
    color_null = rng.random(n) < 0.01
    flag = rng.random(n) < 0.4
    seconds = rng.integers(0, YEAR_SECONDS, n)
    hour = (seconds // 3600) % 24

    columns: dict[str, Any] = {
        "n_normal": normal,
        "n_lognormal": lognormal,
        "n_uniform": uniform,
        "n_exponential": exponential,
        "n_poisson": poisson,
        "n_bimodal": bimodal,
        "n_student": student,
        "n_beta": beta,
        "n_int_wide": int_wide,
        "n_correlated": correlated,
        "n_noise": noise,
        "n_nulls": pl.Series(with_nulls).fill_nan(None),
        "n_price": price,
        "c_low3": pl.Series(LOW3).gather(low3),
        "c_low8": pl.Series(LOW8).gather(low8),
        "c_mid": pl.Series(MID).gather(mid),
        "c_high": pl.Series([f"u{i:04d}" for i in range(HIGH_LEVELS)]).gather(high),
        "c_nulls": pl.Series(COLORS)
        .gather(colors)
        .zip_with(pl.Series(~color_null), pl.Series([None], dtype=pl.String)),
        "flag": flag,
        "ts": pl.from_epoch(pl.Series(START_EPOCH + seconds), time_unit="s"),
    }
    if target:
        logit = (
            1.4 * np.sin(1.5 * normal)
            + 1.0 * ((bimodal > 0) & (low3 == 1))
            - 0.8 * (low3 == 2)
            + 0.7 * np.log(lognormal)
            + 0.04 * (uniform - 50.0) ** 2 / 25.0
            + mid_effect[mid]
            + 0.6 * np.cos(2 * np.pi * hour / 24)
            + 0.5 * (poisson > 5)
            + 1.2 * beta * flag
            - 0.9 * np.tanh(student)
            - 2.5
        )
        columns[TARGET] = (rng.random(n) < 1.0 / (1.0 + np.exp(-logit))).astype(np.int8)
    return pl.DataFrame(columns)


def _break_lines(
    body: bytes, local: np.ndarray, kinds: np.ndarray, keep: np.ndarray, n_fields: int
) -> bytes:
    """``body`` (CSV lines, each ending in a newline, no quoting) with the lines at ``local``
    given too few fields (kind 0: the first ``keep`` fields) or too many (kind 1)."""
    if len(local) == 0:
        return body
    ends = np.flatnonzero(np.frombuffer(body, dtype=np.uint8) == ord("\n"))
    pieces: list[bytes] = []
    at = 0
    for line, kind, k in zip(local.tolist(), kinds.tolist(), keep.tolist(), strict=True):
        start = int(ends[line - 1]) + 1 if line > 0 else 0
        end = int(ends[line])  # the newline
        pieces.append(body[at:start])
        text = body[start:end]
        if kind == 0:
            text = b",".join(text.split(b",")[: max(1, min(k, n_fields - 1))])
        else:
            text = text + b",extra" * max(1, k % 3 + 1)
        pieces.append(text + b"\n")
        at = end + 1
    pieces.append(body[at:])
    return b"".join(pieces)


@dataclass
class Generated:
    path: str
    rows: int
    columns: int
    malformed: int
    bytes: int
    seconds: float


def generate(
    path: Path,
    rows: int,
    *,
    seed: int = 0,
    target: bool = True,
    malformed: float = 0.001,
    chunk_rows: int = CHUNK_ROWS,
) -> Generated:
    """Write ``rows`` data lines (plus a header) to ``path``, ``chunk_rows`` at a time.

    Deterministic given (rows, seed, target, malformed, chunk_rows). The target's signal uses
    the same level effects whatever the seed of the file (``predict.csv`` comes from the same
    population as ``train.csv``).
    """
    t0 = time.perf_counter()
    names = column_names(target=target)
    mid_effect = np.random.default_rng(12345).normal(0.0, 0.5, len(MID))
    bad = malformed_positions(rows, malformed, seed)
    bad_rng = np.random.default_rng([seed, 2])
    kinds = bad_rng.integers(0, 2, len(bad))
    keep = bad_rng.integers(1, len(names), len(bad))
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("wb") as out:
        out.write((",".join(names) + "\n").encode())
        for index, start in enumerate(range(0, rows, chunk_rows)):
            n = min(chunk_rows, rows - start)
            rng = np.random.default_rng([seed, 0, index])
            frame = _chunk(rng, n, mid_effect, target=target)
            body = frame.write_csv(
                include_header=False, float_precision=4, datetime_format="%Y-%m-%d %H:%M:%S"
            ).encode()
            lo, hi = np.searchsorted(bad, [start, start + n])
            out.write(_break_lines(body, bad[lo:hi] - start, kinds[lo:hi], keep[lo:hi], len(names)))
    tmp.replace(path)
    return Generated(
        str(path), rows, len(names), len(bad), path.stat().st_size, time.perf_counter() - t0
    )


# ----------------------------------------------------------------------------- the project


def project_yaml(
    train: Path,
    *,
    budget: str,
    executor: str,
    address: str | None = None,
    batch_rows: int | None = None,
    malformed: float = 0.001,
    candidates: Sequence[str] | None = None,
    overrides: Sequence[str] = (),
    seed: int = 42,
) -> str:
    """The project's modelyard.yaml (YAML is a superset of JSON: values are dumped as JSON)."""
    data: dict[str, Any] = {
        "source": {"path": str(train), "read": {"parse_dates": ["ts"]}},
        "target": TARGET,
    }
    if batch_rows is not None:
        data["batch_rows"] = batch_rows
    compute: dict[str, Any] = {"executor": executor}
    if address is not None:
        compute["address"] = address
    sections = {
        "version": 1,
        "name": "scale",
        "seed": seed,
        "data": data,
        # the malformed lines, with room to spare (plus a few rows of every small sample)
        "validation": {"max_invalid_fraction": max(0.01, 10 * malformed)},
        "models": {"budget": budget} | ({"candidates": list(candidates)} if candidates else {}),
        "compute": compute,
    }
    for item in overrides:
        apply_override(sections, item)
    return "".join(f"{key}: {json.dumps(value)}\n" for key, value in sections.items())


def apply_override(sections: dict[str, Any], item: str) -> None:
    """``KEY.SUB=VALUE`` (VALUE read as YAML) set in ``sections``."""
    import yaml

    key, sep, value = item.partition("=")
    if not sep or not key:
        raise SystemExit(f"--set {item!r}: expected KEY=VALUE, e.g. gate.latency_rows=0")
    *parents, last = key.strip().split(".")
    node = sections
    for part in parents:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise SystemExit(f"--set {item!r}: {part} is not a section")
    node[last] = yaml.safe_load(value)


# ----------------------------------------------------------------------------- memory


def _ppid(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii")
        return int(stat.rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def _tree(roots: Sequence[int]) -> set[int]:
    """``roots`` and all their descendants that are alive now."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            parent = _ppid(int(entry.name))
            if parent is not None:
                children.setdefault(parent, []).append(int(entry.name))
    found: set[int] = set()
    todo = [r for r in roots if Path(f"/proc/{r}").exists()]
    while todo:
        pid = todo.pop()
        if pid not in found:
            found.add(pid)
            todo.extend(children.get(pid, ()))
    return found


def _rss_hwm(pid: int) -> tuple[int, int] | None:
    """(VmRSS, VmHWM) in bytes, or None for a process gone (or a zombie)."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    values = dict(re.findall(r"^(VmRSS|VmHWM):\s+(\d+) kB", text, re.MULTILINE))
    if "VmRSS" not in values:
        return None
    return int(values["VmRSS"]) * 1024, int(values["VmHWM"]) * 1024


class TreeSampler:
    """Samples the RSS of process trees every ``interval`` seconds in a thread: the peak of the
    sum over the trees, and each process's last seen high-water mark."""

    def __init__(self, roots: Callable[[], Sequence[int]], interval: float = 0.05) -> None:
        self._roots = roots
        self.interval = interval
        self.peak = 0
        self.hwm: dict[int, int] = {}
        self.max_processes = 0
        self.samples = 0
        self.rescan_every = max(1, round(0.25 / interval))
        """Descendants are looked for every 0.25 s (a process younger than that is missed)."""
        self._pids: set[int] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> TreeSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.samples = 0
        self.sample()  # a last look, the tree walked again

    def sample(self) -> None:
        if self.samples % self.rescan_every == 0:  # /proc walk: a few ms, not every time
            self._pids = _tree(self._roots())
        total, alive = 0, 0
        for pid in self._pids:
            got = _rss_hwm(pid)
            if got is not None:
                total += got[0]
                alive += 1
                self.hwm[pid] = max(self.hwm.get(pid, 0), got[1])
        self.peak = max(self.peak, total)
        self.max_processes = max(self.max_processes, alive)
        self.samples += 1

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)

    @property
    def hwm_sum(self) -> int:
        return sum(self.hwm.values())


# ----------------------------------------------------------------------------- dask


@dataclass
class Cluster:
    """A ``dask scheduler`` and its ``dask worker`` processes, each in its own process group."""

    address: str
    root: Path
    scheduler: subprocess.Popen[bytes]
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def worker_roots(self) -> list[int]:
        return [w.pid for w in self.workers]

    def worker_pids(self) -> list[int]:
        """The processes that run tasks (each nanny's spawned child), sorted."""
        return sorted(pid for pid in _tree(self.worker_roots()) if "spawn_main" in _cmdline(pid))

    def incidents(self) -> list[str]:
        return scan_logs(self.root)

    def stop(self) -> None:
        for proc in [*self.workers, self.scheduler]:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in [*self.workers, self.scheduler]:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=15)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=15)


INCIDENT = re.compile(
    r"exceed|restart|killed|memory limit|terminat|paus|unmanaged memory|"
    r"nanny.*(died|lost)|worker.*(died|lost)",
    re.IGNORECASE,
)
"""Log lines of a worker or the scheduler worth reporting (memory, pauses, restarts, kills)."""
LOST = re.compile(r"exceeded .*memory budget|restarting|was killed|worker.*(died|lost)", re.I)
"""The incidents that mean a worker process was lost (a pause is not)."""


def scan_logs(root: Path) -> list[str]:
    """The incident lines of every ``*.log`` under ``root`` (the cluster's logs)."""
    found = []
    for log in sorted(root.glob("**/*.log")):
        for line in log.read_text(errors="replace").splitlines():
            if INCIDENT.search(line):
                found.append(f"{log.parent.name}/{log.name}: {line.strip()}")
    return found


def worker_lost(before: Sequence[int], after: Sequence[int], incidents: Sequence[str]) -> bool:
    """Whether a worker process was killed or restarted: other pids, or a log line saying so."""
    return sorted(before) != sorted(after) or any(LOST.search(line) for line in incidents)


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def dask_cluster(root: Path, workers: int = 2, timeout: float = 120.0) -> Iterator[Cluster]:
    """``dask scheduler`` + ``workers`` x ``dask worker --nworkers 1 --nthreads 1 --memory-limit
    2GB`` on 127.0.0.1 (as tests/integration/dask_cluster.py), stopped on the way out."""
    root.mkdir(parents=True, exist_ok=True)
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    with (root / "scheduler.log").open("wb") as log:
        scheduler = subprocess.Popen(
            [
                sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
                "--port", str(port), "--dashboard-address", "127.0.0.1:0",
            ],
            cwd=root, env=_env(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    cluster = Cluster(address, root, scheduler)
    worker_env = {**_env(), **_worker_env(root)}
    try:
        for i in range(workers):
            folder = root / f"worker-{i}"
            shutil.rmtree(folder, ignore_errors=True)  # a run before left its log: not ours
            folder.mkdir()
            argv = [
                sys.executable, "-m", "distributed.cli.dask_worker", address,
                "--nworkers", "1", "--nthreads", "1", "--memory-limit", "2GB",
                "--host", "127.0.0.1", "--no-dashboard", "--local-directory", str(folder),
                "--death-timeout", "60",  # gone with the scheduler, whatever happens
            ]  # fmt: skip
            with (folder / "worker.log").open("wb") as log:
                worker = subprocess.Popen(
                    argv, cwd=folder, env=worker_env, stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,  # its own group: stopped with its worker process
                )  # fmt: skip
            cluster.workers.append(worker)
        import distributed

        with distributed.Client(address, timeout=timeout) as client:
            client.wait_for_workers(workers, timeout=timeout)
        yield cluster
    finally:
        cluster.stop()


# ----------------------------------------------------------------------------- running


@dataclass
class Measure:
    """One command: its wall time, the step's own seconds, the peak RSS of its process tree."""

    step: str
    wall_s: float
    peak_rss_mb: float
    hwm_sum_mb: float
    processes: int
    status: str = "ok"
    step_s: float | None = None
    ran: list[str] = field(default_factory=list)
    error: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


PYCACHE = Path(tempfile.gettempdir()) / "modelyard-scale-pycache"
"""Bytecode of the commands' imports (``PYTHONPYCACHEPREFIX``): this machine sets
``PYTHONDONTWRITEBYTECODE=1``, so every command would compile all its imports again (seconds);
an installed tool has its bytecode. The first command to import a module compiles it."""


DASK_WORKER_CONFIG = """\
distributed:
  nanny:
    pre-spawn-environ:
      MALLOC_TRIM_THRESHOLD_: null
"""
"""The Dask configuration docs/big-data.md gives for the workers of a cluster of one's own."""


def _worker_env(root: Path) -> dict[str, str]:
    """The variables a ``dask worker`` of one thread starts with, as docs/big-data.md
    advises: its libraries' pools at one thread (the variables modelyard's own workers get),
    and a Dask configuration file, written under ``root``, that tells its nanny not to pin
    glibc's mmap threshold (what a ``LocalCluster`` modelyard starts does,
    ``compute.cluster.TRIM_VARIABLE``)."""
    from modelyard.compute import THREAD_VARIABLES

    config = root / "dask-config"
    config.mkdir(parents=True, exist_ok=True)
    (config / "modelyard.yaml").write_text(DASK_WORKER_CONFIG)
    return {**dict.fromkeys(THREAD_VARIABLES, "1"), "DASK_CONFIG": str(config)}


def _env() -> dict[str, str]:
    env = {
        **os.environ,
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "DO_NOT_TRACK": "true",
        "PYTHONUNBUFFERED": "1",
        "PYTHONPYCACHEPREFIX": str(PYCACHE),
    }
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def measure(
    name: str,
    argv: Sequence[str],
    log: Path,
    *,
    cwd: Path,
    extra_roots: Callable[[], Sequence[int]] = list,
    timeout: float = 4 * 3600,
) -> tuple[Measure, str]:
    """Run ``argv`` and sample its process tree (plus ``extra_roots``); stdout is returned,
    stderr goes to ``log``."""
    t0 = time.perf_counter()
    with log.open("wb") as err:
        proc = subprocess.Popen(
            list(argv),
            cwd=cwd,
            env=_env(),
            stdout=subprocess.PIPE,
            stderr=err,
            start_new_session=True,
        )
        with TreeSampler(lambda: [proc.pid, *extra_roots()]) as sampler:
            try:
                out, _ = proc.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                out, _ = proc.communicate()
    wall = time.perf_counter() - t0
    result = Measure(
        name,
        round(wall, 2),
        round(sampler.peak / MB, 1),
        round(sampler.hwm_sum / MB, 1),
        sampler.max_processes,
    )
    if proc.returncode != 0:
        result.status = "failed"
        text = log.read_text(errors="replace").strip().splitlines()
        errors = [line for line in text if line.startswith("error")] or text[-3:] or ["?"]
        result.error = f"exit {proc.returncode}: " + " | ".join(errors)[:500]
    return result, out.decode(errors="replace")


def modelyard_exe() -> str:
    exe = Path(sys.executable).with_name("modelyard")
    return str(exe) if exe.exists() else "modelyard"


FLOOR = """
import json, sys, time
import polars as pl
t0 = time.perf_counter()
df = pl.read_csv(sys.argv[1], truncate_ragged_lines=True, try_parse_dates=True)
print(json.dumps({"seconds": time.perf_counter() - t0, "rows": df.height, "columns": df.width}))
"""


def plan(exe: str, project: Path) -> list[str]:
    """The pipeline's steps in order, from ``modelyard run --dry-run --json``."""
    out = subprocess.run(
        [exe, "run", "-c", str(project), "--dry-run", "--json"],
        capture_output=True, text=True, env=_env(), check=False,
    )  # fmt: skip
    if out.returncode != 0:
        raise SystemExit(f"modelyard run --dry-run failed:\n{out.stderr}")
    return [s["name"] for s in json.loads(out.stdout)]


def run_pipeline(
    folder: Path,
    train: Path,
    predict: Path,
    *,
    budget: str,
    executor: str,
    batch_rows: int | None,
    malformed: float,
    candidates: Sequence[str] | None = None,
    overrides: Sequence[str] = (),
    cluster: Cluster | None = None,
    until: str | None = None,
    echo: Callable[[str], None] = print,
) -> dict[str, Any]:
    """The project in ``folder`` (made afresh), its steps one by one, then predict (``until``:
    the steps up to that one only, and no predict)."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    logs = folder / "logs"
    logs.mkdir()
    (folder / "modelyard.yaml").write_text(
        project_yaml(
            train,
            budget=budget,
            executor=executor,
            address=cluster.address if cluster else None,
            batch_rows=batch_rows,
            malformed=malformed,
            candidates=candidates,
            overrides=overrides,
        )
    )
    exe = modelyard_exe()
    roots = cluster.worker_roots if cluster else list
    steps = plan(exe, folder)
    if until is not None:
        if until not in steps:
            raise SystemExit(f"--until {until}: not a step of the pipeline ({', '.join(steps)})")
        steps = steps[: steps.index(until) + 1]
    echo(f"steps: {', '.join(steps)}")
    measures: list[Measure] = []
    failed = False
    for step in steps:
        if failed:
            measures.append(Measure(step, 0.0, 0.0, 0.0, 0, status="not run"))
            continue
        argv = [exe, "run", "-c", str(folder), "--until", step, "--json"]
        m, out = measure(step, argv, logs / f"{step}.log", cwd=folder, extra_roots=roots)
        with contextlib.suppress(ValueError):
            result = json.loads(out)
            records = {s["name"]: s for s in result.get("steps", [])}
            m.ran = [s["name"] for s in result.get("steps", []) if s["status"] == "ran"]
            if step in records:
                m.step_s = records[step]["seconds"]
            if step.startswith("validate"):
                m.extra["validation"] = {
                    name: {k: v for k, v in report.items() if isinstance(v, int | float | str)}
                    for name, report in result.get("validation", {}).items()
                }
            if result.get("error") and not m.error:
                m.error = str(result["error"])[:500]
        if m.status == "ok" and m.ran not in ([step], []):
            m.extra["note"] = f"this invocation ran {m.ran}, not only {step}"
        failed = m.status != "ok"
        measures.append(m)
        echo(_row(m))
    if failed:
        measures.append(Measure("predict", 0.0, 0.0, 0.0, 0, status="not run"))
    elif until is None:
        argv = [exe, "predict", "-c", str(folder), str(predict),
                "-o", str(folder / "predictions.parquet"), "--json"]  # fmt: skip
        m, out = measure("predict", argv, logs / "predict.log", cwd=folder, extra_roots=roots)
        with contextlib.suppress(ValueError):
            m.extra = {k: v for k, v in json.loads(out).items() if isinstance(v, int | float | str)}
        measures.append(m)
        echo(_row(m))
        failed = m.status != "ok"
    return {"steps": [asdict(m) for m in measures], "failed": failed}


def floor(train: Path, folder: Path) -> Measure:
    """polars' eager read of the same file, in a subprocess."""
    m, out = measure(
        "floor: pl.read_csv",
        [sys.executable, "-c", FLOOR, str(train)],
        folder / "floor.log",
        cwd=folder,
    )
    with contextlib.suppress(ValueError):
        read = json.loads(out)
        m.step_s = round(read["seconds"], 2)
        m.extra = {"rows": read["rows"], "columns": read["columns"]}
    return m


# ----------------------------------------------------------------------------- report

HEADER = f"{'step':<20} {'status':<8} {'wall s':>8} {'step s':>8} {'peak RSS MB':>12} {'HWM sum MB':>11} {'procs':>5}"


def _row(m: Measure) -> str:
    step_s = f"{m.step_s:.2f}" if m.step_s is not None else "-"
    line = (
        f"{m.step:<20} {m.status:<8} {m.wall_s:>8.2f} {step_s:>8} {m.peak_rss_mb:>12.1f} "
        f"{m.hwm_sum_mb:>11.1f} {m.processes:>5}"
    )
    if m.error:
        line += f"\n    {m.error}"
    if m.extra.get("note"):
        line += f"\n    note: {m.extra['note']}"
    return line


def rss_goal_mb(rows: int) -> int:
    """The whole run's peak RSS goal: 2.5 GB up to 10M rows, 3 GB at 30M (linear between)."""
    low, high = GOALS["peak_rss_mb_10m"], GOALS["peak_rss_mb_30m"]
    return round(low + (high - low) * min(1.0, max(0.0, (rows - 10_000_000) / 20_000_000)))


def summary(result: dict[str, Any]) -> dict[str, Any]:
    """The figures compared with the goals (for rows at or below 10M, the 10M goals)."""
    steps = [s for s in result["steps"] if s["step"] != "predict"]
    predict = next((s for s in result["steps"] if s["step"] == "predict"), None)
    ran = [s for s in steps if s["status"] != "not run"]
    data = [s for s in ran if s["step"] in DATA_STEPS]
    fl = result["floor"]
    rows = result["rows"]
    peak = max((s["peak_rss_mb"] for s in ran), default=0.0)
    complete = all(s["status"] == "ok" for s in steps)
    out: dict[str, Any] = {
        "run_wall_s": round(sum(s["wall_s"] for s in ran), 2),
        "run_step_s": round(sum(s["step_s"] or 0.0 for s in ran), 2),
        "run_peak_rss_mb": peak,
        "run_peak_rss_goal_mb": rss_goal_mb(rows),
        "run_complete": complete,
        "run_peak_rss_ok": peak <= rss_goal_mb(rows) and complete,
        "data_steps": [s["step"] for s in data],
        "data_steps_complete": {s["step"] for s in data if s["status"] == "ok"} >= set(DATA_STEPS),
    }
    if data and fl.get("step_s"):
        step_s = sum(s["step_s"] or 0.0 for s in data)
        wall_s = sum(s["wall_s"] for s in data)
        issue = [s for s in data if s["step"] in ISSUE_STEPS]
        issue_s = sum(s["step_s"] or 0.0 for s in issue)
        out |= {
            "data_steps_s": round(step_s, 2),
            "data_steps_wall_s": round(wall_s, 2),
            "floor_s": fl["step_s"],
            "floor_wall_s": fl["wall_s"],
            "data_over_floor": round(step_s / fl["step_s"], 2),
            "data_over_floor_wall": round(wall_s / fl["wall_s"], 2),
            "issue_steps": [s["step"] for s in issue],
            "issue_steps_s": round(issue_s, 2),
            "issue_over_floor": round(issue_s / fl["step_s"], 2),
            "issue_steps_complete": {s["step"] for s in issue if s["status"] == "ok"}
            >= set(ISSUE_STEPS),
        }
    if predict is not None and predict["status"] == "ok":
        goal = GOALS["predict_rss_mb_10m"] * max(1.0, result["predict_rows"] / 10_000_000)
        out |= {
            "predict_wall_s": predict["wall_s"],
            "predict_peak_rss_mb": predict["peak_rss_mb"],
            "predict_rss_goal_mb": round(goal),
            "predict_rss_ok": predict["peak_rss_mb"] <= goal,
        }
    return out


def print_summary(result: dict[str, Any]) -> None:
    s = result["summary"]
    rows = result["rows"]
    verdict = {True: "met", False: "NOT met"}
    print(f"\n== {rows:,} rows, executor {result['executor']}: goals (issue 13)")
    until = result.get("until")
    which = f"steps up to {until} only" if until else "all steps"
    print(
        f"whole run ({which}): {s['run_wall_s']:.1f} s wall ({s['run_step_s']:.1f} s in the "
        f"steps themselves); peak RSS {s['run_peak_rss_mb']:.0f} MB, goal <= "
        f"{s['run_peak_rss_goal_mb']} MB at {max(rows, 10_000_000):,} rows: "
        + (verdict[s["run_peak_rss_ok"]] if s["run_complete"] else "n/a (a step failed)")
    )
    if "data_over_floor" in s:

        def goal(ratio: float, complete: bool) -> str:
            limit = GOALS["data_steps_over_floor"]
            met = verdict[ratio <= limit] if complete else "n/a (a data step failed)"
            return f"goal <= {limit:.0f}x: {met}"

        print(
            f"{' + '.join(s['data_steps'])}: {s['data_steps_s']:.1f} s in the steps "
            f"({s['data_steps_wall_s']:.1f} s wall) vs polars read_csv {s['floor_s']:.1f} s "
            f"({s['floor_wall_s']:.1f} s wall): {s['data_over_floor']:.2f}x "
            f"({s['data_over_floor_wall']:.2f}x wall), "
            + goal(s["data_over_floor"], s["data_steps_complete"])
        )
        print(
            f"{' + '.join(s['issue_steps'])} (the issue's sum; the contract is inferred by a "
            f"project's first run only): {s['issue_steps_s']:.1f} s: "
            f"{s['issue_over_floor']:.2f}x the floor, "
            + goal(s["issue_over_floor"], s["issue_steps_complete"])
        )
    for m in result["steps"]:
        for name, report in m["extra"].get("validation", {}).items():
            counts = ", ".join(f"{k} {v:,}" for k, v in report.items() if isinstance(v, int))
            print(f"{m['step']} ({name}): {counts}")
    predict: dict[str, Any] = next((m for m in result["steps"] if m["step"] == "predict"), {})
    if "predict_peak_rss_mb" in s:
        print(
            f"predict {result['predict_rows']:,} rows: {s['predict_wall_s']:.1f} s, peak RSS "
            f"{s['predict_peak_rss_mb']:.0f} MB, goal <= {s['predict_rss_goal_mb']} MB: "
            f"{verdict[s['predict_rss_ok']]}"
        )
        print("predict output: " + ", ".join(f"{k} {v}" for k, v in predict["extra"].items()))
    else:
        print(f"predict: {predict.get('status', 'not run')} {predict.get('error', '')}".rstrip())
    if "dask" in result:
        d = result["dask"]
        print(f"dask scheduler: peak RSS {d['scheduler_peak_rss_mb']:.0f} MB (not in the sums)")
        print(
            f"dask workers: pids before {d['worker_pids_before']}, after "
            f"{d['worker_pids_after']}; restarted or killed: "
            f"{'YES' if d['worker_lost'] else 'no'}; memory/restart log lines: "
            f"{len(d['incidents'])}"
        )
        for line in d["incidents"][:10]:
            print(f"    {line}")


def compare(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """Time ratio of run ``b`` over run ``a`` (total and per step)."""
    small, big = sorted([a, b], key=lambda r: r["rows"])
    rows_ratio = big["rows"] / small["rows"]
    goal = GOALS["time_ratio_30m_over_10m"] / 3.0 * rows_ratio
    per_step = {}
    small_steps = {s["step"]: s for s in small["steps"]}
    for s in big["steps"]:
        base = small_steps.get(s["step"])
        if base and base["wall_s"] > 0 and s["status"] == "ok":
            per_step[s["step"]] = round(s["wall_s"] / base["wall_s"], 2)
    ratio = big["summary"]["run_wall_s"] / max(small["summary"]["run_wall_s"], 1e-9)
    differ = [
        key
        for key in ("executor", "budget", "candidates", "batch_rows", "set")
        if small.get(key) != big.get(key)
    ]
    return {
        "settings_differ": differ,
        "rows": [small["rows"], big["rows"]],
        "rows_ratio": round(rows_ratio, 2),
        "time_ratio": round(ratio, 2),
        "time_ratio_goal": round(goal, 2),
        "ok": ratio <= goal and not small["failed"] and not big["failed"],
        "per_step": per_step,
    }


def print_compare(c: dict[str, Any]) -> None:
    print(
        f"\n== time ratio {c['rows'][1]:,} / {c['rows'][0]:,} rows ({c['rows_ratio']}x rows): "
        f"{c['time_ratio']}x, goal <= {c['time_ratio_goal']}x (30M <= 3.3x 10M): "
        f"{'met' if c['ok'] else 'NOT met'}"
    )
    print("per step: " + ", ".join(f"{k} {v}x" for k, v in c["per_step"].items()))
    if c["settings_differ"]:
        print(f"warning: the two runs differ in {', '.join(c['settings_differ'])}")


# ----------------------------------------------------------------------------- main


def _data(
    workdir: Path, rows: int, predict_rows: int, malformed: float, seed: int
) -> tuple[Path, Path, dict[str, Any]]:
    """The two CSV files, generated or reused (``data.json`` records what they hold)."""
    folder = workdir / f"data-{rows}"
    folder.mkdir(parents=True, exist_ok=True)
    want = {"rows": rows, "predict_rows": predict_rows, "malformed": malformed, "seed": seed,
            "chunk_rows": CHUNK_ROWS, "generator": 1}  # fmt: skip
    meta = folder / "data.json"
    train, predict = folder / "train.csv", folder / "predict.csv"
    if meta.exists() and train.exists() and predict.exists():
        saved = json.loads(meta.read_text())
        if saved["params"] == want:
            print(f"reusing {train} and {predict}")
            return train, predict, saved
    meta.unlink(missing_ok=True)
    made = {
        "params": want,
        "train": asdict(generate(train, rows, seed=seed, malformed=malformed)),
        "predict": asdict(
            generate(predict, predict_rows, seed=seed + 1, target=False, malformed=malformed)
        ),
    }
    meta.write_text(json.dumps(made, indent=1))
    for key in ("train", "predict"):
        g = made[key]
        print(
            f"wrote {g['path']}: {g['rows']:,} rows x {g['columns']} columns, "
            f"{g['malformed']:,} malformed lines, {g['bytes'] / MB:,.0f} MB, {g['seconds']:.1f} s"
        )
    return train, predict, made


def default_budget(rows: int) -> str:
    """The search's budget unless ``--budget``: 2 minutes at scale, 20 s for a quick run."""
    return "2m" if rows >= 1_000_000 else "20s"


def bench_one(args: argparse.Namespace, workdir: Path, rows: int) -> dict[str, Any]:
    predict_rows = args.predict_rows or rows
    budget = args.budget or default_budget(rows)
    train, predict, made = _data(workdir, rows, predict_rows, args.malformed, args.seed)
    result: dict[str, Any] = {
        "rows": rows,
        "predict_rows": predict_rows,
        "executor": args.executor,
        "budget": budget,
        "candidates": args.candidates,
        "set": args.set,
        "batch_rows": args.batch_rows,
        "until": args.until,
        "data": made,
        "memory": "sum of VmRSS over the process tree, sampled from /proc every 50 ms "
        "(peak_rss_mb); sum of each process's VmHWM (hwm_sum_mb, an upper bound)",
        "python": sys.version.split()[0],
        "cpus": os.cpu_count(),
        "loadavg_before": os.getloadavg(),
    }
    folder = workdir / f"project-{rows}-{args.executor}"
    print(f"\n== {rows:,} rows, executor {args.executor}, budget {budget} ({folder})")
    print(HEADER)
    fl = floor(train, workdir / f"data-{rows}")
    print(_row(fl))
    result["floor"] = asdict(fl)
    if args.executor == "dask":
        with dask_cluster(workdir / f"dask-{rows}") as cluster:
            before = cluster.worker_pids()
            scheduler = TreeSampler(lambda: [cluster.scheduler.pid], interval=0.25)
            with scheduler:
                result |= run_pipeline(
                    folder, train, predict, budget=budget, executor="dask",
                    batch_rows=args.batch_rows, malformed=args.malformed, candidates=args.candidates,
                    overrides=args.set, cluster=cluster, until=args.until,
                )  # fmt: skip
            after = cluster.worker_pids()
            incidents = cluster.incidents()
        result["dask"] = {
            "address": cluster.address,
            "scheduler_peak_rss_mb": round(scheduler.peak / MB, 1),  # not in the steps' sums
            "worker_pids_before": before,
            "worker_pids_after": after,
            "worker_lost": worker_lost(before, after, incidents),
            "incidents": incidents,
        }
    else:
        result |= run_pipeline(
            folder, train, predict, budget=budget, executor=args.executor,
            batch_rows=args.batch_rows, malformed=args.malformed, candidates=args.candidates,
            overrides=args.set, until=args.until,
        )  # fmt: skip
    result["loadavg_after"] = os.getloadavg()
    result["summary"] = summary(result)
    print_summary(result)
    return result


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--rows", default="10000000",
        help="data rows of train.csv; several sizes comma-separated (10000000,30000000)",
    )  # fmt: skip
    parser.add_argument("--predict-rows", type=int, default=None, help="default: --rows")
    parser.add_argument("--malformed", type=float, default=0.001, help="share of malformed lines")
    parser.add_argument("--seed", type=int, default=0, help="the generator's seed")
    parser.add_argument(
        "--budget", default=None,
        help="models.budget (e.g. 30s, 2m); default 2m from 1M rows on, 20s below (a quick run)",
    )  # fmt: skip
    parser.add_argument(
        "--candidates", type=lambda text: text.split(","), default=None,
        help="models.candidates, comma-separated (default: modelyard's portfolio)",
    )  # fmt: skip
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE",
        help="any other modelyard.yaml setting (repeatable): --set gate.latency_rows=0",
    )  # fmt: skip
    parser.add_argument("--executor", choices=["serial", "local", "dask"], default="local")
    parser.add_argument(
        "--until", default=None, metavar="STEP",
        help="run the steps up to STEP only, and no predict (--until profile: the data steps)",
    )  # fmt: skip
    parser.add_argument("--batch-rows", type=int, default=None, help="data.batch_rows")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="kept, and its data files reused; default: a temporary folder")  # fmt: skip
    parser.add_argument("--out", type=Path, default=Path("scale-results.json"))
    parser.add_argument("--compare", nargs=2, type=Path, metavar=("A", "B"),
                        help="print the time ratio of two earlier --out files and stop")  # fmt: skip
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.compare:
        a, b = (json.loads(p.read_text()) for p in args.compare)
        a, b = (r["runs"][-1] if "runs" in r else r for r in (a, b))
        print_compare(compare(a, b))
        return 0
    sizes = [int(r.replace("_", "")) for r in str(args.rows).split(",")]
    if any(r < 100 for r in sizes) or not 0 <= args.malformed < 0.5:
        raise SystemExit("--rows must be at least 100 and --malformed in [0, 0.5)")
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="modelyard-scale-"))
    workdir.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {"goals": GOALS, "runs": []}
    try:
        for rows in sizes:
            report["runs"].append(bench_one(args, workdir, rows))
            args.out.write_text(json.dumps(report, indent=1, default=str))
        if len(report["runs"]) >= 2:
            report["compare"] = compare(report["runs"][0], report["runs"][-1])
            print_compare(report["compare"])
            args.out.write_text(json.dumps(report, indent=1, default=str))
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    print(f"\nwrote {args.out}")
    return 1 if any(r["failed"] for r in report["runs"]) else 0


if __name__ == "__main__":
    sys.exit(main())
