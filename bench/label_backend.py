"""Label Studio pre-annotation of 10k tasks through ``modelyard serve``'s ML backend.

Run: ``uv run python bench/label_backend.py [--tasks 10000] [--repeat 3]``

Serves the registered adult champion (modelyard's preprocessing + hist-GBM, built by the
adult example with a small budget) with ``modelyard serve`` (uvicorn, one worker), then
sends what Label Studio sends when a user selects every task and asks for predictions: one
``POST /label-studio/predict`` holding all tasks (``{id, data: {key, row}}``, tasks as
``modelyard label export`` writes them) with the generated labelling config. Prints the wall
time of each request as Label Studio would see it (send, predict, answer), against Label
Studio's default ``ML_TIMEOUT_PREDICT`` of 100 s, and what ``/label-studio/predict/progress``
reported while a batch ran.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.serve import free_port, wait  # noqa: E402
from tests.integration.serving import _adult  # noqa: E402
from tests.integration.serving._adult import build_adult  # noqa: E402

# An explicit budget: "auto" can run out on a busy 2-core machine before one model is scored.
_adult.BUDGET = _adult.BUDGET.replace("models:\n", "models:\n  budget: 10m\n", 1)

LABEL_STUDIO_TIMEOUT = 100.0


def post(url: str, body: bytes) -> tuple[float, dict[str, Any]]:
    req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    start = time.perf_counter()
    with urllib.request.urlopen(req, timeout=LABEL_STUDIO_TIMEOUT) as resp:
        payload = json.loads(resp.read())
    return time.perf_counter() - start, payload


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    from modelyard.labels.formats import labelstudio as fmt
    from modelyard.labels.records import LabelSpec, QueueItem

    tmp = Path(tempfile.mkdtemp(prefix="bench-label-backend-"))
    data_dir = Path(os.environ.get("MODELYARD_DATA", ROOT.parent / "shared" / "data"))
    t0 = time.perf_counter()
    adult = build_adult(tmp / "project", data_dir)
    print(f"adult champion built in {time.perf_counter() - t0:.1f} s", flush=True)
    records = (adult.records * (args.tasks // len(adult.records) + 1))[: args.tasks]
    spec = LabelSpec(target="income", task="binary", classes=("<=50K", ">50K"))
    items = [QueueItem(key=f"row-{i}", row=r, score=0.0, reason="", model_version="")
             for i, r in enumerate(records)]  # fmt: skip
    fmt.export(items, spec, tmp / "export")
    tasks = json.loads((tmp / "export" / "tasks.json").read_text())
    body = json.dumps({
        "tasks": [{"id": i + 1, "data": t["data"], "meta": {}, "project": 1} for i, t in enumerate(tasks)],
        "project": "1.1733390000",
        "label_config": (tmp / "export" / "label-config.xml").read_text(),
        "params": {"login": None, "password": None, "context": None},
    }).encode()  # fmt: skip
    port = free_port()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MLFLOW_DISABLE_TELEMETRY": "true"}
    code = "from modelyard.cli.serve import serve; serve()"
    proc = subprocess.Popen(
        [sys.executable, "-c", code, "--model", "adult@champion", "--tracking-uri",
         adult.tracking_uri, "--port", str(port), "--workers", "1", "--labels", str(tmp / "labels")],
        env=env, cwd=tmp, stdout=subprocess.DEVNULL, stderr=(tmp / "serve.log").open("wb"),
    )  # fmt: skip
    try:
        base = f"http://127.0.0.1:{port}/label-studio"
        wait(base + "/health", proc)
        post(
            base + "/predict", json.dumps({"tasks": [{"id": 1, "data": tasks[0]["data"]}]}).encode()
        )
        seen: list[dict[str, Any]] = []
        stop = threading.Event()

        def watch() -> None:
            while not stop.wait(0.2):
                with urllib.request.urlopen(base + "/predict/progress", timeout=5) as resp:
                    running = json.loads(resp.read())["running"]
                if running:
                    seen.append(running[0])

        times = []
        for _ in range(args.repeat):
            stop.clear()
            watcher = threading.Thread(target=watch)
            watcher.start()
            seconds, payload = post(base + "/predict", body)
            stop.set()
            watcher.join()
            results = payload["results"]
            assert len(results) == args.tasks, len(results)
            failed = sum("result" not in r for r in results)
            times.append(seconds)
            print(f"{args.tasks} tasks ({len(body) / 1e6:.1f} MB) -> {len(results)} predictions "
                  f"({failed} without result) in {seconds:.2f} s", flush=True)  # fmt: skip
        best, median = min(times), statistics.median(times)
        print(f"\n/label-studio/predict, {args.tasks} tasks: median {median:.2f} s, best {best:.2f} s "
              f"({args.tasks / median:,.0f} tasks/s); Label Studio waits {LABEL_STUDIO_TIMEOUT:.0f} s "
              f"-> {median / LABEL_STUDIO_TIMEOUT:.1%} of its timeout")  # fmt: skip
        if seen:
            shown = ", ".join(f"{p['done']}/{p['tasks']}" for p in seen[:8])
            print(f"/label-studio/predict/progress while running: {shown}")
    finally:
        proc.terminate()
        proc.wait(timeout=30)


if __name__ == "__main__":
    main()
