"""Real processes: a run killed mid-step leaves no half artifact and resumes cleanly; the lock."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from modelyard.engine.lock import ProjectLock, ProjectLocked
from modelyard.errors import LockedError

SCRIPT = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    sys.path.insert(0, {tests!r})
    from unit.engine import pipeline_fixtures as fx
    from modelyard.engine.dag import Pipeline
    from modelyard.engine.lock import ProjectLock
    from modelyard.engine.runner import plan, run
    from modelyard.engine.step import Step
    from modelyard.engine.store import ArtifactStore

    root, marker, slow = Path(sys.argv[1]), sys.argv[2], sys.argv[3] == "slow"
    func = fx.slow_total if slow else (lambda values, marker: {{"total": sum(values)}})
    steps = [
        Step("numbers", fx.numbers, params={{"n": 5}}),
        Step("summary", func, inputs={{"values": "numbers"}}, params={{"marker": marker}}, version="x"),
    ]
    p = Pipeline.of(steps)
    store = ArtifactStore(root)
    with ProjectLock(root / "lock"):
        outcome = run(p, store)
    print("ran:", ",".join(outcome.ran))
    """
)


def _script(tmp_path: Path) -> Path:
    tests = str(Path(__file__).resolve().parents[2])
    script = tmp_path / "pipeline.py"
    script.write_text(SCRIPT.format(tests=tests))
    return script


def _wait_for(path: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            raise AssertionError(f"{path} never appeared")
        time.sleep(0.05)


def test_sigkill_mid_step_leaves_no_half_artifact_and_the_next_run_resumes(tmp_path: Path) -> None:
    root = tmp_path / ".modelyard"
    marker = tmp_path / "started"
    script = _script(tmp_path)
    proc = subprocess.Popen([sys.executable, str(script), str(root), str(marker), "slow"])
    try:
        _wait_for(marker)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    # the finished step is stored whole; the killed one left nothing under artifacts/
    assert len(list((root / "artifacts" / "numbers").iterdir())) == 1
    assert not (root / "artifacts" / "summary").exists()
    # the lock died with the process: the next run takes it and only redoes the killed step
    # ("fast" swaps the function, as a user would after fixing a slow step; same step version)
    done = subprocess.run(
        [sys.executable, str(script), str(root), str(marker), "fast"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ran: summary"
    assert list((root / "tmp").iterdir()) == []  # leftovers of the killed run are gone
    metas = list((root / "artifacts" / "summary").glob("*/meta.json"))
    assert len(metas) == 1


def test_a_second_run_on_the_same_project_is_refused_while_the_first_holds_the_lock(
    tmp_path: Path,
) -> None:
    root = tmp_path / ".modelyard"
    marker = tmp_path / "started"
    proc = subprocess.Popen(
        [sys.executable, str(_script(tmp_path)), str(root), str(marker), "slow"]
    )
    try:
        _wait_for(marker)
        with pytest.raises(ProjectLocked) as err, ProjectLock(root / "lock", command="second"):
            pass
        assert isinstance(err.value, LockedError)
        assert f"process {proc.pid}" in str(err.value)
        assert "Wait for it to finish" in str(err.value)
    finally:
        proc.kill()
        proc.wait(timeout=10)
    with ProjectLock(root / "lock", command="third"):  # released by the kernel on death
        pass
