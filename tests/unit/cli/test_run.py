"""``modelyard run``'s output: results on stdout, progress on stderr; progress that tells the
time elapsed and what is left; a line per finished unit of work without a terminal."""

from __future__ import annotations

import io
import json
import math
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st
from rich.console import Console

from modelyard.cli import main
from modelyard.cli.run import _Console, progress_text
from modelyard.engine.events import StepFinished, StepProgress, StepStarted

IRIS = "version: 1\nname: iris\ndata:\n  source: {path: iris.csv}\n  target: species\n"


def _iris(folder: Path) -> Path:
    rows = [f"{i % 7 + 4.5},{i % 5 + 2.0},{['setosa', 'versicolor', 'virginica'][i % 3]}"
            for i in range(150)]  # fmt: skip
    (folder / "iris.csv").write_text("sepal,petal,species\n" + "\n".join(rows) + "\n")
    (folder / "modelyard.yaml").write_text(IRIS)
    return folder / "modelyard.yaml"


def test_progress_shows_elapsed_time_and_an_estimate_of_what_is_left() -> None:
    assert progress_text(30, 1, 4, "refitting") == "30s elapsed, ~1m30s left · refitting"
    assert progress_text(5, 3, 10, "") == "5s elapsed, ~12s left · 3/10"
    # the model search says itself what is left of its budget: no second estimate
    search = "40s of 60s left · best lightgbm 0.9312"
    assert progress_text(20, 20, 60, search) == f"20s elapsed · {search}"
    assert progress_text(3725, 0, None, "") == "1h02m elapsed"


@given(
    elapsed=st.floats(0, 1e5),
    done=st.floats(0, 1e4),
    total=st.one_of(st.none(), st.floats(0, 1e4)),
)
def test_an_estimate_only_while_work_is_under_way(
    elapsed: float, done: float, total: float | None
) -> None:
    text = progress_text(elapsed, done, total, "")
    assert text.startswith(("0s", "1", "2", "3", "4", "5", "6", "7", "8", "9"))
    under_way = bool(total) and 0 < done < (total or 0)
    if "left" in text:
        assert under_way
    elif under_way:  # a share so small that the estimate overflows
        assert not math.isfinite(elapsed * ((total or 0) - done) / done)
    times = text.split(" · ")[0]  # "12s elapsed" or "12s elapsed, ~30s left"
    assert "-" not in times  # never a negative time


def test_without_a_terminal_a_log_gets_a_line_per_finished_unit_of_work() -> None:
    buffer = io.StringIO()
    now = [100.0]
    console = _Console(
        heartbeat=10,
        clock=lambda: now[0],
        stderr=Console(file=buffer, force_terminal=False, width=200),
    )
    assert not console.live
    console(StepStarted("explore", "cross-validate the portfolio of models", 6, 11))
    now[0] = 103
    console(StepProgress("explore", 3, 60, "57s of 60s left", note="linear: 0.9100 over 5 folds"))
    now[0] = 105  # less than a heartbeat since the last line: the status is not repeated
    console(StepProgress("explore", 5, 60, "55s of 60s left · best linear 0.9100"))
    now[0] = 112
    console(StepProgress("explore", 12, 60, "48s of 60s left · best linear 0.9100"))
    console(StepFinished("explore", "ran", 12.5))
    console(StepFinished("tune", "cached", 0.0))
    assert buffer.getvalue().splitlines() == [
        "  running explore: cross-validate the portfolio of models (7/11)",
        "  explore: linear: 0.9100 over 5 folds",
        "  explore (12s elapsed · 48s of 60s left · best linear 0.9100)",
        "  ran     explore (12.50s)",
        "  cached  tune",
    ]


def test_on_a_terminal_a_live_status_line_and_no_heartbeat_lines() -> None:
    buffer = io.StringIO()
    now = [0.0]
    console = _Console(
        heartbeat=0, clock=lambda: now[0], stderr=Console(file=buffer, force_terminal=True)
    )
    assert console.live
    console(StepStarted("train", "blend and refit the final model", 8, 11))
    now[0] = 20
    console(StepProgress("train", 1, 4, "refitting"))
    assert console._status is not None
    assert "20s elapsed, ~1m00s left · refitting" in str(console._status.renderable.text)
    console(StepFinished("train", "ran", 20.0))
    assert console._status is None
    assert "running" not in buffer.getvalue() and "train (" not in buffer.getvalue()


def test_run_puts_results_on_stdout_and_progress_on_stderr(tmp_path: Path) -> None:
    config = str(_iris(tmp_path))
    done = CliRunner().invoke(main, ["run", "-c", config, "--until", "validate"])
    assert done.exit_code == 0, done.output
    out, err = done.stdout, done.stderr
    assert out.startswith("iris: 3 steps ran, 0 cached")
    assert "train: 150 valid, 0 invalid" in out
    assert "validation_train" in out and "report_html" in out  # the paths of the outputs
    assert "running validate: validate the training data (3/3)" in err  # no terminal here
    assert "ran     ingest" in err and "ran     validate" in err
    assert "steps ran" not in err and "validation_train" not in err

    again = CliRunner().invoke(main, ["run", "-c", config, "--until", "validate", "--json"])
    assert again.exit_code == 0, again.output
    result = json.loads(again.stdout)  # nothing but the JSON on stdout
    assert [s["status"] for s in result["steps"]] == ["cached"] * 3
    assert "cached  validate" in again.stderr


def test_a_user_error_goes_to_stderr_only(tmp_path: Path) -> None:
    done = CliRunner().invoke(main, ["run", "-c", str(tmp_path / "nope.yaml")])
    assert done.exit_code == 2
    assert done.stdout == "" and "error:" in done.stderr


def test_a_ctrl_c_that_a_library_wraps_into_its_own_error_is_still_an_interruption(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """CI saw it: Ctrl-C landed while pydantic built a schema, and pydantic raised a
    SchemaError naming the KeyboardInterrupt; the run exited 1 as a failed step instead of 130
    as an interruption. The signal itself is what counts."""
    import os
    import signal

    from modelyard import recipe

    def interrupted_profile(
        validated: object, contract: object, config: object, executor: object
    ) -> None:
        try:
            os.kill(os.getpid(), signal.SIGINT)
        except KeyboardInterrupt:  # what pydantic does with it
            raise RuntimeError("SchemaError: KeyboardInterrupt") from None

    monkeypatch.setattr(recipe, "profile", interrupted_profile)
    before = signal.getsignal(signal.SIGINT)
    config = _iris(tmp_path)
    result = CliRunner().invoke(main, ["run", "-c", str(config), "--until", "profile"])
    assert result.exit_code == 130, result.output
    assert "interrupted: finished steps are cached" in result.output
    assert signal.getsignal(signal.SIGINT) is before  # the caller's handler is given back
