"""Ctrl-C in a terminal: the driver stops its local pool at once and nothing is left behind.

A real script in its own process group plays the user's program; SIGINT goes to that whole
group, as a terminal sends it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.unit.compute.test_executors import RESULT_TIMEOUT, alive, announced_pid

ROOT = Path(__file__).resolve().parents[3]

SCRIPT = textwrap.dedent(
    """
    import signal
    import sys
    from concurrent.futures import wait

    # A program in a terminal gets Ctrl-C as KeyboardInterrupt. A child inherits its parent's
    # ignored signals and signal mask: a test run started in the background (SIGINT ignored),
    # or a library that blocked SIGINT in the test process, would leave this driver deaf to it.
    # Restore the terminal's behaviour, whatever ran the tests.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {{signal.SIGINT}})
    signal.signal(signal.SIGINT, signal.default_int_handler)
    sys.path.insert(0, {root!r})
    from modelyard.compute import open_executor
    from tests.unit.compute import tasks

    folder = sys.argv[1]
    with open_executor("local", workers=2) as ex:
        print("pool folder:", ex.share(0).ref.rsplit("/", 1)[0], flush=True)
        futures = [
            ex.submit(tasks.announce_and_wait, f"{{folder}}/w{{i}}", f"{{folder}}/never", i, 600)
            for i in range(4)
        ]
        wait(futures)
    print("the tasks ended: they should not have", flush=True)
    """
)


@pytest.mark.skipif(sys.platform != "linux", reason="process groups and /proc")
def test_ctrl_c_stops_the_pool_at_once_and_leaves_no_worker(tmp_path: Path) -> None:
    script = tmp_path / "driver.py"
    script.write_text(SCRIPT.format(root=str(ROOT)))
    proc = subprocess.Popen(
        [sys.executable, str(script), str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, like a job in a terminal
    )
    try:
        workers = [announced_pid(tmp_path / f"w{i}") for i in range(2)]
        assert proc.poll() is None
        for pid in workers:  # in sessions of their own: the terminal's SIGINT cannot reach them
            assert os.getsid(pid) == pid
            assert os.getsid(pid) != os.getsid(proc.pid)
            assert os.getpgid(pid) != proc.pid

        os.killpg(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=RESULT_TIMEOUT)  # guards a hang only
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode in (-signal.SIGINT, 1), (proc.returncode, err)
    assert "KeyboardInterrupt" in err
    assert "should not have" not in out
    assert not [pid for pid in workers if alive(pid)]
    folder = Path(out.split("pool folder:", 1)[1].split()[0])
    assert folder.name.startswith("modelyard-pool-")
    assert not folder.exists()
    assert not (tmp_path / "w2").exists()  # the queued tasks never started


KILLED_DRIVER = textwrap.dedent(
    """
    import sys

    sys.path.insert(0, {root!r})
    from modelyard.compute.pool import ProcessPool
    from tests.unit.compute import tasks

    folder = sys.argv[1]
    pool = ProcessPool(2)
    print("pool folder:", pool.share(list(range(1000))).ref.rsplit("/", 1)[0], flush=True)
    futures = [
        pool.submit(tasks.announce_and_wait, f"{{folder}}/w{{i}}", f"{{folder}}/never", i, 600)
        for i in range(2)
    ]
    futures[0].result()
    """
)


@pytest.mark.skipif(sys.platform != "linux", reason="process groups and /proc")
def test_a_killed_driver_leaves_no_worker_running_and_its_folder_is_swept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SIGKILL (or a crash) gives the driver no chance to stop its pool: the workers notice
    that their parent is gone and stop at once, not after their task; the pool's folder (a
    copy of the training data) is removed by the next pool."""
    from modelyard.compute.pool import ProcessPool
    from tests.unit.compute.test_executors import wait_until

    temp = tmp_path / "tmp"
    temp.mkdir()
    script = tmp_path / "driver.py"
    script.write_text(KILLED_DRIVER.format(root=str(ROOT)))
    proc = subprocess.Popen(
        [sys.executable, str(script), str(tmp_path)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "TMPDIR": str(temp)},
        start_new_session=True,
    )
    try:
        workers = [announced_pid(tmp_path / f"w{i}") for i in range(2)]
        assert proc.stdout is not None
        folder = Path(proc.stdout.readline().split("pool folder:", 1)[1].strip())
        assert folder.parent == temp and folder.is_dir()
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=RESULT_TIMEOUT)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    wait_until(lambda: not any(alive(pid) for pid in workers), "the orphaned workers stop")

    unrelated = temp / "modelyard-pool-not-ours"
    unrelated.mkdir()
    monkeypatch.setattr("tempfile.tempdir", str(temp))
    monkeypatch.setattr("modelyard.compute.pool.STALE_SECONDS", 0.0)
    live = ProcessPool(1)
    try:
        assert not folder.exists()  # the dead driver's: swept
        assert unrelated.is_dir()  # no lock file: not a pool of this version, left alone
        other = ProcessPool(1)  # a live pool's folder is never swept
        other.close()
        assert Path(live.share(1).ref).parent.is_dir()
    finally:
        live.close()
