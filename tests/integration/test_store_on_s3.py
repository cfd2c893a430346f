"""The store on a real S3-compatible server (moto): the pipeline run step by step, each step a
``modelyard run --step`` process as a Kubeflow component runs it; and a step killed mid-upload.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import small_quickstart
from tests.integration.data_servers import S3_KEY, S3_SECRET

pytestmark = pytest.mark.integration

EXE = str(Path(sys.executable).with_name("modelyard"))


def modelyard(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [EXE, *args], cwd=cwd, capture_output=True, text=True, timeout=600,
        env={**os.environ, **env},
    )  # fmt: skip


def s3(endpoint: str) -> Any:
    import s3fs

    return s3fs.S3FileSystem(key=S3_KEY, secret=S3_SECRET, endpoint_url=endpoint)


def aws_env(endpoint: str) -> dict[str, str]:
    """What Kubernetes secrets give a component: the usual variables, nothing in the config."""
    return {
        "AWS_ACCESS_KEY_ID": S3_KEY, "AWS_SECRET_ACCESS_KEY": S3_SECRET,
        "AWS_ENDPOINT_URL": endpoint, "AWS_DEFAULT_REGION": "us-east-1",
    }  # fmt: skip


@pytest.fixture
def quickstart(tmp_path: Path) -> Path:
    """The quickstart with a small, reproducible model search."""
    return small_quickstart(tmp_path / "quickstart")


def forget_local_state(folder: Path, *, everything: bool = True) -> None:
    """Another machine: no local cache of the store, no published outputs, no contract file
    (``everything``: no workdir at all; else the embedded tracking's model files, which live
    in the workdir, stay: with a tracking server they would be on the server)."""
    workdir = folder / ".modelyard"
    for gone in (workdir,) if everything else (workdir / "artifacts", workdir / "state"):
        shutil.rmtree(gone, ignore_errors=True)
    shutil.rmtree(folder / "modelyard-out", ignore_errors=True)
    (folder / "contract.yaml").unlink(missing_ok=True)


def test_the_pipeline_run_step_by_step_on_s3_equals_a_local_run(
    quickstart: Path, s3_server: str, tmp_path: Path
) -> None:
    bucket = f"store-{uuid.uuid4().hex[:8]}"
    s3(s3_server).mkdir(bucket)
    url = f"s3://{bucket}/quickstart"
    env = aws_env(s3_server)
    plan = modelyard("run", "--dry-run", "--json", "--store", url, cwd=quickstart, env=env)
    assert plan.returncode == 0, plan.stderr
    steps = [s["name"] for s in json.loads(plan.stdout)]
    assert steps[0] == "ingest" and steps[-1] == "register"

    keys: dict[str, str] = {}
    for name in steps:  # the DAG's order, one process per step, as a Kubeflow executor would
        done = modelyard("run", "--step", name, "--store", url, "--json", cwd=quickstart, env=env)
        assert done.returncode == 0, f"{name}: {done.stderr}"
        result = json.loads(done.stdout)
        assert (result["step"], result["status"]) == (name, "ran")
        keys[name] = result["key"]
    committed = s3(s3_server).glob(f"{bucket}/quickstart/artifacts/*/*/meta.json")
    assert len(committed) == len(steps)

    # a second pass, without the local cache: every step has nothing to do
    forget_local_state(quickstart, everything=False)
    for name in steps:
        done = modelyard("run", "--step", name, "--store", url, cwd=quickstart, env=env)
        assert done.returncode == 0, f"{name}: {done.stderr}"
        assert done.stdout.startswith(f"{name}: nothing to do"), done.stdout
    # a whole run against the store: all cached, the outputs downloaded and published
    whole = modelyard("run", "--store", url, "--json", cwd=quickstart, env=env)
    assert whole.returncode == 0, whole.stderr
    on_s3 = json.loads(whole.stdout)
    assert {s["name"]: (s["status"], s["key"]) for s in on_s3["steps"]} == {
        name: ("cached", key) for name, key in keys.items()
    }

    # the same project run locally, from nothing: the same keys, the same champion metric (the
    # search steps' keys hash their results without how long each fit took)
    forget_local_state(quickstart)
    local = modelyard("run", "--json", cwd=quickstart, env={})
    assert local.returncode == 0, local.stderr
    here = json.loads(local.stdout)
    assert [s["status"] for s in here["steps"]] == ["ran"] * len(steps)
    assert {s["name"]: s["key"] for s in here["steps"]} == keys
    decision, local_decision = on_s3["registration"]["decision"], here["registration"]["decision"]
    assert decision["metric"] == local_decision["metric"] == "roc_auc"
    assert decision["candidate"] == local_decision["candidate"]


DATA_ONLY = """
version: 1
name: rows
data:
  source: {path: rows.csv}
store: s3://BUCKET/rows
store_options:
  endpoint_url: ${S3_ENDPOINT}
  key: ${S3_KEY}
  secret: ${S3_SECRET}
"""


def test_a_step_killed_mid_upload_commits_nothing_and_the_next_execution_completes_it(
    tmp_path: Path, s3_server: str
) -> None:
    bucket = f"store-{uuid.uuid4().hex[:8]}"
    fs = s3(s3_server)
    fs.mkdir(bucket)
    rows = [f"{i % 7 + 4.5},{i % 5},{'abc'[i % 3]}" for i in range(5000)]
    (tmp_path / "rows.csv").write_text("a,b,c\n" + "\n".join(rows) + "\n")
    (tmp_path / "modelyard.yaml").write_text(DATA_ONLY.replace("BUCKET", bucket))
    env = {"S3_ENDPOINT": s3_server, "S3_KEY": S3_KEY, "S3_SECRET": S3_SECRET}
    prefix = f"{bucket}/rows/artifacts/ingest"

    # every uploaded file is followed by a long pause (a testing hook): killed in the first
    writer = subprocess.Popen(
        [EXE, "run", "--step", "ingest"], cwd=tmp_path, env={
            **os.environ, **env, "MODELYARD_TEST_UPLOAD_PAUSE": "60",
        }, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while not fs.glob(f"{prefix}/*/upload-*/**"):
            assert writer.poll() is None, "the writer ended before it uploaded anything"
            assert time.monotonic() < deadline, "no upload appeared"
            fs.invalidate_cache()
            time.sleep(0.1)
        os.kill(writer.pid, signal.SIGKILL)
        writer.wait(timeout=30)
    finally:
        if writer.poll() is None:
            writer.kill()
    assert writer.returncode == -signal.SIGKILL
    fs.invalidate_cache()
    [key_dir] = fs.ls(prefix)
    assert not fs.exists(f"{key_dir}/meta.json")  # nothing committed: no reader trusts it
    [upload] = fs.ls(key_dir)
    assert "upload-" in upload and fs.find(upload)  # a part of the files, named by nothing

    # the next process (another machine: no local cache) finds nothing committed and runs it
    shutil.rmtree(tmp_path / ".modelyard")
    again = modelyard("run", "--step", "ingest", "--json", cwd=tmp_path, env=env)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["status"] == "ran"
    fs.invalidate_cache()
    manifest = json.loads(fs.cat_file(f"{key_dir}/meta.json"))
    assert manifest["upload"] != upload.rsplit("/", 1)[-1]
    assert sorted(fs.find(f"{key_dir}/{manifest['upload']}")) == sorted(
        f"{key_dir}/{manifest['upload']}/{name}" for name in manifest["files"]
    )
    nxt = modelyard("run", "--step", "contract", cwd=tmp_path, env=env)
    assert nxt.returncode == 0, nxt.stderr

    # the killed process's lease lives on until it expires: a clean (exclusive) waits
    refused = modelyard("clean", cwd=tmp_path, env=env)
    assert refused.returncode != 0
    message = " ".join(refused.stderr.split())
    assert f"process {writer.pid} on " in message and "--step ingest`" in message
    assert "holds the lock" in message and "keeps its lease until it expires" in message


def test_a_store_that_cannot_be_used_is_a_clear_error(tmp_path: Path, s3_server: str) -> None:
    rows = [f"{i},{i % 3}" for i in range(20)]
    (tmp_path / "rows.csv").write_text("a,b\n" + "\n".join(rows) + "\n")
    (tmp_path / "modelyard.yaml").write_text(
        "version: 1\nname: rows\ndata:\n  source: {path: rows.csv}\n"
    )
    url = f"s3://no-such-bucket-{uuid.uuid4().hex[:8]}/rows"
    for args in (["run", "--step", "ingest", "--store", url], ["run", "--store", url]):
        done = modelyard(*args, cwd=tmp_path, env=aws_env(s3_server))
        assert done.returncode == 2, done.stderr
        message = " ".join(done.stderr.split())
        assert f"{url}: cannot use the artifact store" in message
        assert "the bucket must exist" in message and "Traceback" not in message


def test_a_whole_run_on_s3_then_another_machine_finds_it_all_there(
    tmp_path: Path, s3_server: str
) -> None:
    """`modelyard run` with `store: s3://...`: every step committed, the contract file written
    and its key aliased in the bucket; from a fresh workdir, everything is cached."""
    bucket = f"store-{uuid.uuid4().hex[:8]}"
    s3(s3_server).mkdir(bucket)
    rows = [f"{i % 7 + 4.5},{i % 5},{'abc'[i % 3]}" for i in range(300)]
    (tmp_path / "rows.csv").write_text("a,b,c\n" + "\n".join(rows) + "\n")
    (tmp_path / "modelyard.yaml").write_text(DATA_ONLY.replace("BUCKET", bucket))
    env = {"S3_ENDPOINT": s3_server, "S3_KEY": S3_KEY, "S3_SECRET": S3_SECRET}
    first = modelyard("run", "--json", cwd=tmp_path, env=env)
    assert first.returncode == 0, first.stderr
    assert [s["status"] for s in json.loads(first.stdout)["steps"]] == ["ran"] * 4
    assert (tmp_path / "contract.yaml").is_file() and (tmp_path / "modelyard-out").is_dir()
    shutil.rmtree(tmp_path / ".modelyard")
    again = modelyard("run", "--json", cwd=tmp_path, env=env)
    assert again.returncode == 0, again.stderr
    assert [s["status"] for s in json.loads(again.stdout)["steps"]] == ["cached"] * 4
    step = modelyard("run", "--step", "profile", cwd=tmp_path, env=env)
    assert step.returncode == 0 and step.stdout.startswith("profile: nothing to do")
