from __future__ import annotations

import pytest

from modelyard.engine.dag import Pipeline, PipelineInvalid, UnknownStep
from modelyard.engine.step import Step
from modelyard.errors import PipelineError

from .pipeline_fixtures import numbers, scaled, total


def test_steps_are_ordered_topologically_whatever_the_declaration_order() -> None:
    p = Pipeline.of(
        [
            Step("total", total, inputs={"values": "scaled"}),
            Step("scaled", scaled, inputs={"values": "numbers"}, params={"factor": 2}),
            Step("numbers", numbers, params={"n": 3}),
        ]
    )
    assert p.names == ["numbers", "scaled", "total"]
    assert p.ancestors("total") == {"numbers", "scaled"}
    assert p.descendants("numbers") == {"scaled", "total"}
    assert p.until("scaled").names == ["numbers", "scaled"]


def test_missing_input_is_reported_with_a_suggestion() -> None:
    with pytest.raises(PipelineInvalid) as err:
        Pipeline.of(
            [
                Step("numbers", numbers, params={"n": 3}),
                Step("total", total, inputs={"values": "number"}),
            ]
        )
    assert "does not exist (did you mean 'numbers'?)" in str(err.value)
    assert isinstance(err.value, PipelineError)


def test_cycles_are_reported_with_the_path() -> None:
    with pytest.raises(PipelineInvalid, match=r"cycle: (a -> b -> a|b -> a -> b)"):
        Pipeline.of(
            [Step("a", total, inputs={"values": "b"}), Step("b", total, inputs={"values": "a"})]
        )


def test_bad_parameters_are_all_reported_before_anything_runs() -> None:
    with pytest.raises(PipelineInvalid) as err:
        Pipeline.of(
            [
                Step("numbers", numbers, params={"m": 3}),  # typo, and n unbound
                Step("scaled", scaled, inputs={"values": "numbers"}, params={"factor": object()}),
                Step("numbers", numbers, params={"n": 1}),
            ]
        )
    problems = err.value.problems
    assert any("two steps are named 'numbers'" in p for p in problems)
    assert any("has no parameter 'm'" in p for p in problems)
    assert any("'n' of numbers() is not bound" in p for p in problems)
    assert any("cannot be part of a cache key" in p for p in problems)


def test_unknown_step_name_suggests_the_closest() -> None:
    p = Pipeline.of([Step("numbers", numbers, params={"n": 3})])
    with pytest.raises(UnknownStep, match="did you mean 'numbers'"):
        p.until("numbres")
