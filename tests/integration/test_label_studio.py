"""A real Label Studio (from PyPI, SQLite in a temporary folder, no browser) and a real
``modelyard serve``: the label loop through Label Studio's own API, with label-studio-sdk.

1. create a project with the labelling config modelyard generates;
2. import the exported tasks (with the champion's pre-annotations);
3. connect ``modelyard serve`` as the project's ML backend and ask for predictions: the
   champion's pre-annotations appear on every task;
4. submit annotations through the API (one annotator skips a task): Label Studio's webhooks
   append them to the served label set;
5. export the project (JSON) and load it with the Label Studio format: exactly the labels and
   row keys given.

Label Studio needs the ``labelstudio`` dependency group, in an environment of its own (it caps
numpy, pyarrow and pytz below the dev group's versions). The README's test command runs in the
dev environment, so there :func:`test_the_label_loop_runs_in_label_studios_own_environment`
creates that environment (``.venv-labelstudio``, with uv) and runs this file in it::

    UV_PROJECT_ENVIRONMENT=.venv-labelstudio uv run --no-default-groups --group labelstudio \\
        --all-extras pytest tests/integration/test_label_studio.py

Label Studio starts in ~1-2.5 minutes on a 2-core machine (database migrations on a fresh
SQLite file).
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from modelyard.labels.formats import labelstudio as fmt
from modelyard.labels.records import LabelSpec, QueueItem
from modelyard.labels.store import LabelSet
from tests.integration.conftest import free_port, missing, stop, wait_http

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TOKEN = "modelyard0test0token0000000000000000000"
SETUP = "UV_PROJECT_ENVIRONMENT=.venv-labelstudio uv sync --no-default-groups --group labelstudio --all-extras"  # fmt: skip
ROOT = Path(__file__).resolve().parents[2]
HERE = importlib.util.find_spec("label_studio_sdk") is not None
"""Whether this environment is Label Studio's (else the file runs itself in that one)."""


@pytest.mark.skipif(HERE, reason="this is Label Studio's environment: the test below runs here")
@pytest.mark.timeout(2400)
def test_the_label_loop_runs_in_label_studios_own_environment() -> None:
    uv = shutil.which("uv")
    if uv is None:
        missing("uv is not on PATH: it creates Label Studio's environment")
    assert uv is not None
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
    env["UV_PROJECT_ENVIRONMENT"] = str(ROOT / ".venv-labelstudio")
    command = [uv, "run", "--no-default-groups", "--group", "labelstudio", "--all-extras",
               "pytest", "-q", "-rs", "-p", "no:cacheprovider",
               f"{Path(__file__).relative_to(ROOT)}::test_label_loop_through_a_real_label_studio"]  # fmt: skip
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=2300)
    tail = (done.stdout + done.stderr)[-4000:]
    assert done.returncode == 0, tail
    assert "1 passed" in done.stdout and "skipped" not in done.stdout, tail


@dataclass
class Served:
    url: str
    labels: Path
    classes: list[str]
    rows: list[dict[str, Any]]
    truth: list[str]


@pytest.fixture(scope="module")
def label_studio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Label Studio on 127.0.0.1 with a known user and API token; yields its URL."""
    exe = Path(sys.executable).with_name("label-studio")
    try:
        import label_studio_sdk  # noqa: F401
    except ImportError:
        missing(f"label-studio-sdk is not installed: {SETUP}")
    if not exe.exists():
        missing(f"the label-studio executable is missing ({exe}): {SETUP}")
    root = tmp_path_factory.mktemp("label-studio")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "LABEL_STUDIO_BASE_DATA_DIR": str(root / "data"),
        "DJANGO_DB": "sqlite",
        "LABEL_STUDIO_USERNAME": "annotator@example.com",
        "LABEL_STUDIO_PASSWORD": "modelyard-test-password",
        "LABEL_STUDIO_USER_TOKEN": TOKEN,
        "LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN": "true",  # the token above is a legacy token
        "LABEL_STUDIO_DISABLE_SIGNUP_WITHOUT_LINK": "true",
        "LABEL_STUDIO_HOST": url,
        "LATEST_VERSION_CHECK": "false",  # no call to pypi.org at start
        "COLLECT_ANALYTICS": "false",
        "SENTRY_DSN": "",
        "FRONTEND_SENTRY_DSN": "",
        "ML_BLOCK_LOCAL_IP": "false",  # the ML backend and its webhook are on 127.0.0.1
        "SSRF_PROTECTION_ENABLED": "false",
    }
    log = root / "label-studio.log"
    started = time.monotonic()
    proc = subprocess.Popen(
        [str(exe), "start", "--host", "127.0.0.1", "--port", str(port), "--no-browser",
         "--internal-host", "127.0.0.1"],
        env=env, cwd=root, stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        wait_http(f"{url}/health", timeout=600, proc=proc, log=log)
        print(f"Label Studio answered after {time.monotonic() - started:.0f} s")
        yield url
    finally:
        stop(proc)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """``modelyard serve`` of a registered penguins classifier, keeping a label set."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    from tests.unit.ops._penguins import TARGET
    from tests.unit.ops.serving._world import NAME, build_world
    from tests.unit.ops.serving.test_app import _records

    root = tmp_path_factory.mktemp("served")
    world = build_world(root, [HistGradientBoostingClassifier(max_iter=20, random_state=0)])
    port = free_port()
    labels = root / "labels"
    log = root / "serve.log"
    code = "from modelyard.cli.serve import serve; serve()"
    proc = subprocess.Popen(
        [sys.executable, "-c", code, "--model", f"{NAME}@champion", "--tracking-uri",
         world.tracking_uri, "--host", "127.0.0.1", "--port", str(port), "--labels", str(labels)],
        cwd=root, stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True,
        env={**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"},
    )  # fmt: skip
    try:
        wait_http(f"http://127.0.0.1:{port}/ready", timeout=180, proc=proc, log=log)
        test = world.data.test.head(8)
        classes = sorted(world.data.train[TARGET].unique().tolist())
        yield Served(f"http://127.0.0.1:{port}", labels, classes, _records(test),
                     [str(v) for v in test[TARGET]])  # fmt: skip
    finally:
        stop(proc)


def post(url: str, body: Any) -> Any:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})  # fmt: skip
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read())


@pytest.mark.skipif(not HERE, reason="runs in Label Studio's own environment (the test above)")
def test_label_loop_through_a_real_label_studio(label_studio: str, served: Served, tmp_path: Path) -> None:  # fmt: skip
    from label_studio_sdk import LabelStudio

    spec = LabelSpec(target="species", task="multiclass", classes=tuple(served.classes))
    champion = post(served.url + "/predict", served.rows)["predictions"]
    items = [
        QueueItem(key=f"penguin-{i}", row=row, score=1.0 - i / 10, reason=f"rank {i}",
                  model_version="queue v1", prediction=p["prediction"], probabilities=p["probabilities"])
        for i, (row, p) in enumerate(zip(served.rows, champion, strict=True))
    ]  # fmt: skip
    tasks_file, config_file = fmt.export(items, spec, tmp_path / "export")
    ls = LabelStudio(base_url=label_studio, api_key=TOKEN)

    # 1. a project with the generated config; 2. the exported tasks
    project = ls.projects.create(title="modelyard penguins", label_config=config_file.read_text())
    assert project.id is not None
    imported = ls.projects.import_tasks(id=project.id, request=json.loads(tasks_file.read_text()),
                                        return_task_ids=True)  # fmt: skip
    assert imported.task_count == len(items) and imported.prediction_count == len(items)
    tasks = sorted(ls.tasks.list(project=project.id), key=lambda t: t.id)
    by_key = {t.data["key"]: t for t in tasks}
    assert sorted(by_key) == sorted(i.key for i in items)

    # 3. modelyard serve as the ML backend: setup answers, predictions appear on every task
    backend = ls.ml.create(project=project.id, url=served.url + "/label-studio", title="modelyard",
                           is_interactive=False)  # fmt: skip
    assert backend.state in ("CO", "CONNECTED"), backend
    ls.actions.create(id="retrieve_tasks_predictions", project=project.id,
                      selected_items={"all": True, "excluded": []})  # fmt: skip
    for item, want in zip(items, champion, strict=True):
        task = by_key[item.key]
        preds = {p.model_version: p for p in ls.predictions.list(task=task.id)}
        assert set(preds) == {"queue v1", "penguins v1"}, preds
        result = preds["penguins v1"].result[0]
        assert result["value"] == {"choices": [want["prediction"]]}
        assert result["from_name"] == "label" and result["to_name"] == "row"
        assert abs(preds["penguins v1"].score - want["probabilities"][want["prediction"]]) < 1e-9

    # 4. annotations through the API (the last task skipped); the webhooks append them
    given = {}
    for item, truth in zip(items[:-1], served.truth[:-1], strict=True):
        ls.annotations.create(id=by_key[item.key].id, result=[fmt.result_of("multiclass", truth)],
                              was_cancelled=False, lead_time=1.5)  # fmt: skip
        given[item.key] = truth
    ls.annotations.create(id=by_key[items[-1].key].id, result=[], was_cancelled=True)
    webhooked = LabelSet(served.labels).read()
    assert {r.key: r.label for r in webhooked} == given
    assert {r.annotator for r in webhooked} == {"user 1"}
    assert {r.source for r in webhooked} == {"label-studio-webhook"}

    # 5. export and load: exactly the labels and row keys given, the skip reported
    export = tmp_path / "label-studio-export.json"
    export.write_bytes(b"".join(ls.projects.exports.download_sync(
        id=project.id, export_type="JSON", download_all_tasks=True)))  # fmt: skip
    records, rejected = fmt.load(export, spec)
    assert {r.key: r.label for r in records} == given
    assert len(records) == len(given)
    assert {r.annotator for r in records} == {"user 1"} and all(r.at.tzinfo for r in records)
    assert [r.reason for r in rejected] == [f"row {items[-1].key!r} was skipped by the annotator (was_cancelled)"]  # fmt: skip
