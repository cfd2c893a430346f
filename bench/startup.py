"""`modelyard --help` and `import modelyard` wall time: median of 10 runs (goal <= 0.3 s).

uv run python bench/startup.py
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path


def median_seconds(cmd: list[str], runs: int = 10) -> float:
    subprocess.run(cmd, capture_output=True, check=True)  # warm the file cache
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(cmd, capture_output=True, check=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    exe = shutil.which("modelyard") or str(Path(sys.executable).with_name("modelyard"))
    rows = [
        ("python -c pass (floor)", [sys.executable, "-c", "pass"]),
        ("python -c 'import modelyard'", [sys.executable, "-c", "import modelyard"]),
        ("modelyard --help", [exe, "--help"]),
        ("modelyard --version", [exe, "--version"]),
    ]
    print(f"{'command':<32} {'median of 10':>12}")
    for label, cmd in rows:
        print(f"{label:<32} {median_seconds(cmd):>11.3f}s")


if __name__ == "__main__":
    main()
