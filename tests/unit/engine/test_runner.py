from __future__ import annotations

import json
from pathlib import Path

import pytest

from modelyard.engine.dag import Pipeline
from modelyard.engine.runner import plan, run
from modelyard.engine.step import Step
from modelyard.engine.store import ArtifactStore
from modelyard.errors import StepFailed

from . import pipeline_fixtures as fx


def build(n: int = 4, factor: int = 2) -> Pipeline:
    return Pipeline.of(
        [
            Step("numbers", fx.numbers, params={"n": n}),
            Step("scaled", fx.scaled, inputs={"values": "numbers"}, params={"factor": factor}),
            Step("total", fx.total, inputs={"values": "scaled"}),
        ]
    )


@pytest.fixture
def store(tmp_path: Path) -> ArtifactStore:
    fx.CALLS.clear()
    return ArtifactStore(tmp_path / ".modelyard", stamp={"modelyard": "test"})


def test_first_run_runs_everything_and_an_unchanged_rerun_runs_nothing(
    store: ArtifactStore,
) -> None:
    p = build()
    first = run(p, store)
    assert first.ran == ["numbers", "scaled", "total"]
    assert first.output("total") == 12
    fx.CALLS.clear()
    again = run(p, store)
    assert again.ran == []
    assert again.cached == ["numbers", "scaled", "total"]
    assert fx.CALLS == []
    assert again.output("total") == 12  # loaded from the store


def test_changing_one_parameter_reruns_that_step_and_its_dependents_only(
    store: ArtifactStore,
) -> None:
    run(build(), store)
    changed = build(factor=3)
    the_plan = plan(changed, store)
    assert [(s.name, s.action) for s in the_plan] == [
        ("numbers", "cached"),
        ("scaled", "run"),
        ("total", "run"),
    ]
    reasons = {s.name: s.reason for s in the_plan}
    assert reasons["scaled"] == "parameter factor changed"
    assert reasons["total"] == "input from scaled will be recomputed"
    fx.CALLS.clear()
    outcome = run(changed, store)
    assert fx.CALLS == ["scaled", "total"]
    assert outcome.output("total") == 18


def test_returning_to_an_earlier_configuration_is_a_cache_hit(store: ArtifactStore) -> None:
    run(build(), store)
    run(build(factor=3), store)
    assert plan(build(), store).to_run == []


def test_external_source_change_reruns_the_source_step(
    store: ArtifactStore, tmp_path: Path
) -> None:
    data = tmp_path / "data.txt"
    data.write_text("a")

    def pipeline() -> Pipeline:
        return Pipeline.of(
            [
                Step("numbers", fx.numbers, params={"n": 2}, external=data.read_text),
                Step("total", fx.total, inputs={"values": "numbers"}),
            ]
        )

    run(pipeline(), store)
    assert plan(pipeline(), store).to_run == []
    data.write_text("b")
    the_plan = plan(pipeline(), store)
    assert the_plan.to_run == ["numbers", "total"]
    assert the_plan.steps[0].reason == "its source data changed"


def test_code_version_change_invalidates(store: ArtifactStore) -> None:
    run(build(), store)
    bumped = Pipeline.of(
        [
            Step("numbers", fx.numbers, params={"n": 4}, version="2"),
            Step("scaled", fx.scaled, inputs={"values": "numbers"}, params={"factor": 2}),
            Step("total", fx.total, inputs={"values": "scaled"}),
        ]
    )
    the_plan = plan(bumped, store)
    assert the_plan.steps[0].reason == "its code changed"
    assert the_plan.to_run == ["numbers", "scaled", "total"]


def test_from_and_until(store: ArtifactStore) -> None:
    p = build()
    assert [s.name for s in plan(p, store, until="scaled")] == ["numbers", "scaled"]
    run(p, store)
    forced = plan(p, store, from_step="scaled")
    assert forced.to_run == ["scaled", "total"]
    assert forced.steps[1].reason == "--from scaled"


def test_artifacts_are_stamped_with_versions(store: ArtifactStore) -> None:
    p = build()
    outcome = run(p, store)
    key = outcome.records[-1].key
    meta = json.loads((store.folder("total", key) / "meta.json").read_text())
    assert meta["format"] == 1
    assert meta["versions"]["modelyard"] == "test"
    assert "python" in meta["versions"]
    assert meta["step"] == "total"


def test_a_failing_step_names_itself_and_the_resume_command(store: ArtifactStore) -> None:
    p = Pipeline.of(
        [
            Step("numbers", fx.numbers, params={"n": 2}),
            Step("broken", fx.broken, inputs={"values": "numbers"}),
        ]
    )
    with pytest.raises(StepFailed) as err:
        run(p, store, resume_command=lambda s: f"modelyard run --from {s}")
    message = str(err.value)
    assert "step 'broken' failed: ValueError: the data has no rows" in message
    assert "resume with: modelyard run --from broken" in message
    # the step before it is cached: resuming does not redo it
    assert plan(p, store).to_run == ["broken"]


def test_clean_keeps_the_current_artifacts_only(store: ArtifactStore) -> None:
    run(build(), store)
    run(build(factor=3), store)
    current = plan(build(factor=3), store)
    removed, _ = store.clean(keep={s.name: s.key for s in current})
    assert removed == 2  # the old scaled and total
    assert plan(build(factor=3), store).to_run == []
    store.clean()
    assert plan(build(factor=3), store).to_run == ["numbers", "scaled", "total"]


def test_an_input_recomputed_to_the_same_content_is_still_a_cache_hit(
    store: ArtifactStore, tmp_path: Path
) -> None:
    """Early cut-off: keys use the content of inputs, not the keys of the steps that made them."""
    data = tmp_path / "data.txt"
    data.write_text("a")

    def pipeline() -> Pipeline:
        return Pipeline.of(
            [
                Step(
                    "numbers", fx.numbers, params={"n": 2}, external=lambda: data.stat().st_mtime_ns
                ),
                Step("total", fx.total, inputs={"values": "numbers"}),
            ]
        )

    run(pipeline(), store)
    data.write_text("a")  # touched: the source step must re-run, but its output is the same
    fx.CALLS.clear()
    outcome = run(pipeline(), store)
    assert fx.CALLS == ["numbers"]
    assert outcome.cached == ["total"]


REGISTERED: list[int] = []


def register(values: list[int]) -> int:
    """A step with a side effect outside the store: each call registers a new version."""
    REGISTERED.append(sum(values))
    return len(REGISTERED)


def with_side_effect() -> Pipeline:
    return Pipeline.of(
        [
            Step("numbers", fx.numbers, params={"n": 3}),
            Step("register", register, inputs={"values": "numbers"}),
        ]
    )


def test_a_stale_step_runs_again_and_its_new_result_replaces_the_cached_one(
    store: ArtifactStore,
) -> None:
    """A cached result whose side effect was lost (a registry that lost the model) is done
    again: the plan says why, and from then on the new result is the one read."""
    REGISTERED.clear()
    p = with_side_effect()
    assert run(p, store).output("register") == 1
    stale = {"register": "the registry lost it"}
    planned = {s.name: (s.action, s.reason) for s in plan(p, store, stale=stale)}
    assert planned == {
        "numbers": ("cached", "unchanged"),
        "register": ("run", "the registry lost it"),
    }
    again = run(p, store, stale=stale)
    assert (again.ran, again.output("register")) == (["register"], 2)
    after = run(p, store)
    assert (after.cached, after.output("register")) == (["numbers", "register"], 2)
    assert plan(p, store, stale={"absent": "no such step: ignored"}).to_run == []


def test_a_step_run_again_with_from_keeps_its_new_result(store: ArtifactStore) -> None:
    """`run --from register` registered a new version, but the store kept the old result, so
    the run's summary and the next runs showed the version before."""
    REGISTERED.clear()
    p = with_side_effect()
    run(p, store)
    assert run(p, store, from_step="register").output("register") == 2
    assert run(p, store).output("register") == 2
    assert [a.step for a in store.entries()] == ["numbers", "register"]
    assert not list(store.tmp.iterdir())  # the replaced artifact is not left behind
