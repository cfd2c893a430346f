"""One step on its own (``run_step``, what ``modelyard run --step`` and a Kubeflow component
run): the keys of a whole run, inputs from the store, nothing to do when the output is there,
a clear error when an input is not; the shared lock that lets single steps run side by side."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from modelyard.engine.dag import Pipeline, UnknownStep
from modelyard.engine.lock import ProjectLock, ProjectLocked
from modelyard.engine.runner import MissingInput, plan, run, run_step
from modelyard.engine.step import Step
from modelyard.engine.store import ArtifactStore, auto_codec

from . import pipeline_fixtures as fx


def diamond() -> Pipeline:
    """numbers -> (scaled, total) -> both: two independent branches."""
    return Pipeline.of(
        [
            Step("numbers", fx.numbers, params={"n": 4}),
            Step("scaled", fx.scaled, inputs={"values": "numbers"}, params={"factor": 3}),
            Step("total", fx.total, inputs={"values": "numbers"}),
            Step("both", pair, inputs={"scaled": "scaled", "total": "total"}),
        ]
    )


def pair(scaled: list[int], total: int) -> list[int]:
    return [*scaled, total]


@pytest.fixture
def store(tmp_path: Path) -> ArtifactStore:
    fx.CALLS.clear()
    return ArtifactStore(tmp_path / "steps")


def test_steps_run_one_by_one_give_the_keys_and_outputs_of_a_whole_run(
    store: ArtifactStore, tmp_path: Path
) -> None:
    records = [run_step(diamond(), store, name) for name in diamond().names]
    assert [r.status for r in records] == ["ran"] * 4
    whole = run(diamond(), ArtifactStore(tmp_path / "whole"))
    assert [(r.name, r.key) for r in records] == [(r.name, r.key) for r in whole.records]
    assert store.load("both", records[-1].key, auto_codec()) == whole.output("both")
    assert plan(diamond(), store).to_run == []
    # a second pass: nothing to do, nothing called
    fx.CALLS.clear()
    again = [run_step(diamond(), store, name) for name in diamond().names]
    assert [r.status for r in again] == ["cached"] * 4
    assert fx.CALLS == []


def test_a_step_whose_input_is_not_in_the_store_names_it_and_what_to_run_first(
    store: ArtifactStore,
) -> None:
    with pytest.raises(MissingInput) as err:
        run_step(
            diamond(), store, "both",
            step_command=lambda s: f"modelyard run --step {s}",
            until_command=lambda s: f"modelyard run --until {s}",
        )  # fmt: skip
    message = str(err.value)
    assert "step 'both' needs the output of steps 'scaled', 'total'" in message
    assert "Run `modelyard run --step numbers` first" in message  # the one runnable now
    assert "`modelyard run --until both`" in message
    assert fx.CALLS == []
    run_step(diamond(), store, "numbers")
    run_step(diamond(), store, "total")
    with pytest.raises(MissingInput) as err:
        run_step(diamond(), store, "both")
    assert err.value.missing == ["scaled"]
    assert err.value.runnable == ["scaled"]


def test_a_name_that_is_not_a_step_lists_the_steps(store: ArtifactStore) -> None:
    with pytest.raises(UnknownStep) as err:
        run_step(diamond(), store, "totl")
    assert "did you mean 'total'" in str(err.value)
    assert "steps: numbers, scaled, total, both" in str(err.value)


def test_a_stale_step_runs_again_on_its_own(store: ArtifactStore) -> None:
    for name in ("numbers", "total"):
        run_step(diamond(), store, name)
    assert run_step(diamond(), store, "total").status == "cached"
    assert run_step(diamond(), store, "total", stale={"total": "lost"}).status == "ran"


def test_a_result_already_under_the_key_is_what_save_reports(tmp_path: Path) -> None:
    """Two writers of one key (a step that is not bit-for-bit reproducible): the second keeps
    the first's artifact, and reports its digest, which the next steps are keyed on."""
    store = ArtifactStore(tmp_path / "s")
    first = store.save("step", "k1", {"v": 1}, auto_codec(), info={})
    second = store.save("step", "k1", {"v": 2}, auto_codec(), info={})
    assert second.meta["digest"] == first.meta["digest"] == store.meta("step", "k1")["digest"]


# ---------------------------------------------------------------------------- the lock


def test_single_steps_share_the_lock_and_a_whole_run_excludes_them(tmp_path: Path) -> None:
    path = tmp_path / "lock"
    with ProjectLock(path, shared=True), ProjectLock(path, shared=True):
        with pytest.raises(ProjectLocked) as err, ProjectLock(path, command="modelyard run"):
            pass
        assert "run --step" in str(err.value)
    with ProjectLock(path, command="modelyard run"):
        with pytest.raises(ProjectLocked) as err, ProjectLock(path, shared=True):
            pass
        assert "`modelyard run`" in str(err.value)  # the whole run says who it is
    path.write_text('{"pid": 1, "command": "a run killed long ago"}')  # left by SIGKILL
    with ProjectLock(path, shared=True):
        with pytest.raises(ProjectLocked) as err, ProjectLock(path):
            pass
        assert "killed long ago" not in str(err.value)  # not named as the holder


SCRIPT = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    sys.path.insert(0, {tests!r})
    from unit.engine import test_step as t
    from unit.engine import pipeline_fixtures as fx
    from modelyard.engine.dag import Pipeline
    from modelyard.engine.runner import run_step
    from modelyard.engine.step import Step
    from modelyard.engine.store import ArtifactStore

    root, name, marker = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
    steps = list(t.diamond().steps)
    if name == "scaled":  # slow: writes the marker, then sleeps
        steps[1] = Step("scaled", fx.slow_total, inputs={{"values": "numbers"}},
                        params={{"marker": marker}})
    store = ArtifactStore(root)
    with store.lock(command=f"run --step {{name}}", shared=True):
        print(run_step(Pipeline.of(steps), store, name).status)
    """
)


def test_single_steps_of_independent_branches_run_at_once(tmp_path: Path) -> None:
    """While one branch's step runs (holding the lock), the other branch's step runs too."""
    tests = str(Path(__file__).resolve().parents[2])
    script = tmp_path / "step.py"
    script.write_text(SCRIPT.format(tests=tests))
    root, marker = tmp_path / "store", tmp_path / "started"
    run_step(diamond(), ArtifactStore(root), "numbers")
    slow = subprocess.Popen([sys.executable, str(script), str(root), "scaled", str(marker)])
    try:
        while not marker.exists():
            assert slow.poll() is None, "the slow step ended early"
            time.sleep(0.05)
        other = subprocess.run(
            [sys.executable, str(script), str(root), "total", str(marker)],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert other.returncode == 0, other.stderr
        assert other.stdout.strip() == "ran"
        assert slow.poll() is None  # the two held the lock at once
        with pytest.raises(ProjectLocked):  # a whole run waits for them
            ArtifactStore(root).lock(command="modelyard run").__enter__()
    finally:
        slow.kill()
        slow.wait(timeout=10)


def test_a_writer_that_loses_the_race_for_a_key_keeps_the_winners_artifact(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two single steps of one key in one store: the other lands between this writer's check
    and its rename (the rename then fails: the folder is not empty)."""
    store = ArtifactStore(tmp_path / "s")
    final = store.folder("step", "k1")
    exists = Path.exists

    checks: list[str] = []

    def other_lands_after_the_check(path: Path) -> bool:
        if path != final or "other writing" in checks or len(checks) >= 2:
            return exists(path)
        checks.append("mine")  # this writer checks twice, then renames
        if len(checks) == 1:
            checks.append("other writing")
            ArtifactStore(tmp_path / "s").save("step", "k1", {"v": "other"}, auto_codec(), info={})
            checks.remove("other writing")
        return False

    monkeypatch.setattr(Path, "exists", other_lands_after_the_check)
    saved = store.save("step", "k1", {"v": "mine"}, auto_codec(), info={})
    monkeypatch.undo()
    assert store.load("step", "k1", auto_codec()) == {"v": "other"}
    assert saved.meta["digest"] == store.meta("step", "k1")["digest"]
    assert [p for p in store.tmp.iterdir() if "scratch" not in p.name] == []
