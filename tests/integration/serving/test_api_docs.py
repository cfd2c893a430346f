"""The prediction server's API docs on a small project trained by the real pipeline.

- ``/docs`` renders in headless Chromium with no network at all: Swagger UI's script and
  style come from the server itself, not a CDN (a screenshot is saved in the test's folder);
- the OpenAPI example record is a typical training row: the median of each number column
  and the most frequent value of each text or bool column of the training file; sent as is,
  it validates and is predicted.
"""

from __future__ import annotations

import csv
import os
import random
import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.browser import chromium, console_errors, run_chromium
from tests.integration.conftest import free_port, stop, wait_http

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

CONFIG = """\
version: 1
name: docs
seed: 3
data:
  source:
    path: train.csv
  test:
    path: test.csv
  target: churned
models:
  candidates: [linear]
tuning:
  top_k: 0
split:
  cv_folds: 3
evaluation:
  permutation_importance: false
compute:
  executor: serial
"""
FEATURES = ("age", "income", "city", "member")
OFFLINE = "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1"
"""Every host name but 127.0.0.1 fails to resolve: a CDN cannot be reached."""


def _rows(n: int, seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        income = round(rng.uniform(1000, 9000), 1)
        rows.append(
            {
                "age": rng.randint(18, 80),
                "income": income,
                "city": rng.choices(["lyon", "nantes", "paris"], weights=[2, 1, 5])[0],
                "member": rng.random() < 0.3,
                "churned": "yes" if income + rng.gauss(0, 2500) < 4000 else "no",
            }
        )
    return rows


def _write(path: Path, rows: list[dict[str, Any]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        for row in rows:
            writer.writerow(
                {k: str(v).lower() if isinstance(v, bool) else v for k, v in row.items()}
            )


def typical_row(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians (the lower middle value) of the numbers, modes (the smallest among ties) of
    the rest, computed here from the training file's rows."""
    out: dict[str, Any] = {}
    for name in FEATURES:
        values = [row[name] for row in rows]
        if isinstance(values[0], int | float) and not isinstance(values[0], bool):
            out[name] = sorted(values)[(len(values) - 1) // 2]
        else:
            counts = Counter(values)
            out[name] = min(v for v, k in counts.items() if k == max(counts.values()))
    return out


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """A trained, registered and promoted project; the typical row of its training file."""
    from modelyard import Project

    root = tmp_path_factory.mktemp("docs-project")
    train = _rows(160, seed=1)
    _write(root / "train.csv", train)
    _write(root / "test.csv", _rows(60, seed=2))
    (root / "modelyard.yaml").write_text(CONFIG, encoding="utf-8")
    result = Project.from_yaml(root / "modelyard.yaml").run()
    assert result.registration is not None
    assert result.registration.decision.promote, result.registration.decision
    return root, typical_row(train)


@pytest.fixture(scope="module")
def server(project: tuple[Path, dict[str, Any]]) -> Iterator[str]:
    """``modelyard serve`` as a real process on 127.0.0.1; its base URL."""
    root, _ = project
    exe = shutil.which("modelyard", path=str(Path(sys.executable).parent))
    assert exe is not None
    port = free_port()
    log = root / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [exe, "serve", "-c", str(root / "modelyard.yaml"), "--port", str(port)],
            cwd=root,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{url}/ready", timeout=120, proc=proc, log=log)
        yield url
    finally:
        stop(proc)


def test_the_openapi_example_is_a_typical_training_row_and_predicts(
    project: tuple[Path, dict[str, Any]], server: str
) -> None:
    import json
    import urllib.request

    _, typical = project
    with urllib.request.urlopen(f"{server}/openapi.json", timeout=30) as resp:
        schemas = json.load(resp)["components"]["schemas"]
    example = schemas["PredictRequest"]["example"]
    assert example == typical
    assert {n: p["examples"] for n, p in schemas["Record"]["properties"].items()} == {
        n: [v] for n, v in typical.items()
    }
    sent = urllib.request.Request(
        f"{server}/predict",
        data=json.dumps(example).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(sent, timeout=30) as resp:
        assert resp.status == 200
        (prediction,) = json.load(resp)["predictions"]
    assert prediction["prediction"] in ("yes", "no")
    assert not prediction.get("violations") and not prediction.get("drift"), prediction


def test_docs_render_offline_in_a_browser(server: str, tmp_path: Path) -> None:
    chrome = chromium()
    page = f"{server}/docs"
    dumped = run_chromium(chrome, tmp_path, OFFLINE, "--dump-dom", page)
    assert dumped.returncode == 0, dumped.stderr[-2000:]
    dom = dumped.stdout
    assert 'id="operations-default-predict_predict_post"' in dom, dom[-3000:]
    assert "opblock-summary-path" in dom and "/invocations" in dom
    assert "Failed to load API definition" not in dom
    assert not console_errors(dumped.stderr), console_errors(dumped.stderr)

    shot = tmp_path / "docs.png"
    taken = run_chromium(chrome, tmp_path, OFFLINE, f"--screenshot={shot}", page)
    assert taken.returncode == 0, taken.stderr[-2000:]
    assert shot.stat().st_size > 20_000  # a blank page is a few kB
    keep = os.environ.get("MODELYARD_SCREENSHOT")
    if keep:
        shutil.copy(shot, keep)
