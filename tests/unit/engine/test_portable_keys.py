"""Keys that do not depend on the machine: an output's measurements (``Step.identity``) and the
project's folder (``Pipeline.root``) leave the keys of the steps after them unchanged."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from modelyard.engine.cache import canonical
from modelyard.engine.dag import Pipeline
from modelyard.engine.runner import run
from modelyard.engine.step import Step
from modelyard.engine.store import ArtifactStore, content_digest

from . import pipeline_fixtures as fx


def _pipeline(*, identity: bool) -> Pipeline:
    return Pipeline.of(
        [
            Step(
                "measured", fx.measured, params={"n": 3},
                identity=fx.without_seconds if identity else None,
            ),
            Step("value", fx.value_of, inputs={"result": "measured"}),
        ]
    )  # fmt: skip


def _keys(store_dir: Path, pipeline: Pipeline) -> dict[str, str]:
    outcome = run(pipeline, ArtifactStore(store_dir))
    return {r.name: r.key for r in outcome.records}


@pytest.mark.parametrize("identity", [True, False])
def test_a_measurement_changes_no_later_key_when_the_step_declares_its_identity(
    tmp_path: Path, identity: bool
) -> None:
    one = _keys(tmp_path / "a", _pipeline(identity=identity))
    two = _keys(tmp_path / "b", _pipeline(identity=identity))
    assert one["measured"] == two["measured"]  # same code, same parameters
    assert (one["value"] == two["value"]) is identity


def test_the_files_keep_their_own_digest_beside_the_identity(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path / "s")
    outcome = run(_pipeline(identity=True), store)
    key = outcome.records[0].key
    meta = store.meta("measured", key)
    assert meta["content_digest"] == content_digest(store.folder("measured", key))
    assert meta["digest"] != meta["content_digest"]  # the seconds are in the file, not the digest
    stored = json.loads((store.folder("measured", key) / "value.json").read_text())
    assert stored["seconds"] > 0  # the output itself keeps its measurement


def test_keys_do_not_depend_on_where_the_project_is(tmp_path: Path) -> None:
    def pipeline(root: Path) -> Pipeline:
        return Pipeline.of(
            [Step("read", fx.read_path, params={"path": str(root / "data" / "x.csv")})],
            root=str(root),
        )

    here, there = tmp_path / "here" / "p", tmp_path / "elsewhere" / "deeper" / "p"
    key_here = _keys(tmp_path / "s1", pipeline(here))["read"]
    assert key_here == _keys(tmp_path / "s2", pipeline(there))["read"]
    sibling = str(tmp_path / "here" / "p2" / "x.csv")  # merely starts like the root
    assert canonical({"path": sibling}, root=str(here)) == {"path": sibling}
    assert (
        canonical(f"sqlite:///{here}/mlflow.db", root=str(here)) == "sqlite:///<project>/mlflow.db"
    )
