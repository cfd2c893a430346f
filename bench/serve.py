"""Serving throughput and latency: ``modelyard serve`` against ``mlflow models serve``.

Run: ``uv run python bench/serve.py`` (needs Debian's ``wrk`` and the full ``mlflow``).

Both servers serve the same registered adult champion (modelyard's preprocessing + hist-GBM),
one worker each, ``OMP_NUM_THREADS=1``, in the same run. wrk measures single-row requests at
``-t1 -c8 -d10s`` (req/s, p50, p99) and ``-t1 -c1`` (p50, p99), and 100-row batches (rows/s).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.integration.serving._adult import build_adult  # noqa: E402

LUA = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local bodies = {}
local i = 0
init = function(args)
  for line in io.lines("%s") do bodies[#bodies + 1] = line end
end
request = function()
  i = i %% #bodies + 1
  return wrk.format(nil, nil, nil, bodies[i])
end
done = function(summary, latency, requests)
  io.write(string.format("RESULT %%d %%d %%d %%d %%d\\n", summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99), summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait(url: str, proc: subprocess.Popen[bytes], timeout: float = 120) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise SystemExit(f"server died: {url}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise SystemExit(f"timeout waiting for {url}")


def wrk(url: str, bodies: Path, conns: int, seconds: int) -> dict[str, float]:
    script = bodies.with_suffix(".lua")
    script.write_text(LUA % bodies)
    out = subprocess.run(
        ["wrk", "-t1", f"-c{conns}", f"-d{seconds}s", "-s", str(script), url],
        capture_output=True,
        text=True,
        check=True,
    )
    m = re.search(r"RESULT (\d+) (\d+) (\d+) (\d+) (\d+)", out.stdout)
    assert m, out.stdout + out.stderr
    n, dur_us, p50, p99, errors = (int(g) for g in m.groups())
    return {"rps": n / (dur_us / 1e6), "p50_ms": p50 / 1000, "p99_ms": p99 / 1000, "errors": errors}


def bodies_file(
    tmp: Path, name: str, records: list[dict[str, Any]], batch: int, mlflow: bool
) -> Path:
    path = tmp / f"{name}-{batch}.txt"
    lines = []
    for i in range(0, min(len(records), 2000 * batch), batch):
        chunk = records[i : i + batch]
        if len(chunk) < batch:
            break
        if mlflow:
            lines.append(json.dumps({"dataframe_records": chunk}))
        else:
            lines.append(json.dumps(chunk[0] if batch == 1 else chunk))
    path.write_text("\n".join(lines) + "\n")
    return path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=10)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install -y wrk")
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "DO_NOT_TRACK": "true",
    }
    tmp = Path(tempfile.mkdtemp(prefix="bench-serve-"))
    adult = build_adult(
        tmp, Path(os.environ.get("MODELYARD_DATA", ROOT.parent / "shared" / "data"))
    )
    procs = []
    try:
        my_port, ml_port = free_port(), free_port()
        serve_code = "from modelyard.cli.serve import serve; serve()"
        procs.append(subprocess.Popen(
            [sys.executable, "-c", serve_code, "--model", "adult@champion", "--tracking-uri",
             adult.tracking_uri, "--port", str(my_port), "--workers", "1"],
            env=env, cwd=tmp, stdout=subprocess.DEVNULL, stderr=(tmp / "serve.log").open("wb"),
        ))  # fmt: skip
        mlflow = shutil.which("mlflow") or str(Path(sys.executable).with_name("mlflow"))
        procs.append(subprocess.Popen(
            [mlflow, "models", "serve", "-m", "models:/adult@champion", "--env-manager", "local",
             "-h", "127.0.0.1", "-p", str(ml_port), "-w", "1"],
            env={**env, "MLFLOW_TRACKING_URI": adult.tracking_uri}, cwd=tmp,
            stdout=subprocess.DEVNULL, stderr=(tmp / "mlflow.log").open("wb"),
        ))  # fmt: skip
        wait(f"http://127.0.0.1:{my_port}/ready", procs[0])
        wait(f"http://127.0.0.1:{ml_port}/ping", procs[1], timeout=180)
        rows: dict[str, dict[str, Any]] = {}
        for label, url, is_ml in (
            ("modelyard", f"http://127.0.0.1:{my_port}/predict", False),
            ("mlflow", f"http://127.0.0.1:{ml_port}/invocations", True),
        ):
            one = bodies_file(tmp, label, adult.records, 1, is_ml)
            hundred = bodies_file(tmp, label, adult.records, 100, is_ml)
            wrk(url, one, 8, 2)  # warm-up
            c8 = wrk(url, one, 8, args.seconds)
            c1 = wrk(url, one, 1, args.seconds)
            b = wrk(url, hundred, 8, args.seconds)
            rows[label] = {"c8": c8, "c1": c1, "batch": b}
        print(
            f"adult champion (hist-GBM, {len(adult.records)} test rows), 1 worker, OMP_NUM_THREADS=1, wrk -t1 -d{args.seconds}s"
        )
        print(
            f"{'server':<10} {'c8 req/s':>9} {'c8 p50':>8} {'c8 p99':>8} {'c1 p50':>8} {'c1 p99':>8} {'batch100 rows/s':>16} {'errors':>7}"
        )
        for label, r in rows.items():
            errs = int(r["c8"]["errors"] + r["c1"]["errors"] + r["batch"]["errors"])
            print(
                f"{label:<10} {r['c8']['rps']:>9.0f} {r['c8']['p50_ms']:>6.2f}ms {r['c8']['p99_ms']:>6.2f}ms "
                f"{r['c1']['p50_ms']:>6.2f}ms {r['c1']['p99_ms']:>6.2f}ms {r['batch']['rps'] * 100:>16.0f} {errs:>7}"
            )
        ratio = rows["modelyard"]["c8"]["rps"] / rows["mlflow"]["c8"]["rps"]
        print(
            f"single-row throughput at -c8: {ratio:.1f}x MLflow (target >= 5x); "
            f"p99 at -c1: {rows['modelyard']['c1']['p99_ms']:.2f} ms (target <= 5 ms)"
        )
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
