"""Loading the served model: the native flavour (no MLflow import), the pyfunc fallback for a
model logged before it, and the same predictions either way."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import yaml

from modelyard.ops.native import FLAVOR, NativeModel
from modelyard.ops.registry import Registry, parse_model_ref
from modelyard.ops.serving.model import load_served_model, resolve_version
from tests.unit.ops._penguins import FEATURES
from tests.unit.ops.serving._world import NAME, World


def _rows(world: World) -> list[dict[str, object]]:
    served = load_served_model(parse_model_ref(f"{NAME}/1"), tracking_uri=world.tracking_uri)
    records = world.data.test[FEATURES].to_dict("records")
    return [served.checker.check(r).values for r in records]


def test_the_champion_is_served_through_the_native_flavour(world: World) -> None:
    served = load_served_model(parse_model_ref(f"{NAME}@champion"), tracking_uri=world.tracking_uri)
    assert isinstance(served.wrapper, NativeModel)
    assert served.version == "1"
    assert served.compiled is not None, served.fast_reason
    assert resolve_version(parse_model_ref(f"{NAME}@champion"), world.tracking_uri) == "1"
    assert resolve_version(parse_model_ref(f"{NAME}@nobody"), world.tracking_uri) is None


def test_a_model_without_the_native_flavour_loads_through_pyfunc_and_predicts_the_same(
    world: World, tmp_path: Path
) -> None:
    registry = Registry(world.tracking_uri, NAME, tmp_path / "audit.jsonl")
    old = tmp_path / "old-model"
    with registry.local_copy("1") as local:
        shutil.copytree(local, old)
    meta = yaml.safe_load((old / "MLmodel").read_text())
    del meta["flavors"][FLAVOR]  # as logged before the flavour existed
    (old / "MLmodel").write_text(yaml.safe_dump(meta))
    shutil.rmtree(old / "modelyard")

    legacy = load_served_model(parse_model_ref(str(old)))
    native = load_served_model(parse_model_ref(f"{NAME}/1"), tracking_uri=world.tracking_uri)
    assert not isinstance(legacy.wrapper, NativeModel)
    assert legacy.compiled is not None, legacy.fast_reason
    rows = _rows(world)
    a, b = legacy.predict(rows), native.predict(rows)
    assert a.predictions == b.predictions
    assert a.probabilities == b.probabilities
    slow = native.predict_slow(rows)
    assert slow.predictions == b.predictions
    got = np.array([[p[c] for c in native.classes or []] for p in b.probabilities or []])
    want = world.models[0].predict_proba(world.data.test[FEATURES])
    assert np.array_equal(got, want)


def test_loading_the_served_model_imports_no_mlflow(world: World) -> None:
    script = f"""
import sys
from modelyard.ops.registry import parse_model_ref
from modelyard.ops.serving.model import load_served_model
served = load_served_model(parse_model_ref("{NAME}@champion"), tracking_uri={world.tracking_uri!r})
assert served.compiled is not None, served.fast_reason
print("MLFLOW", sorted(m for m in sys.modules if m.split(".")[0] in ("mlflow", "sqlalchemy")))
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=180
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-1] == "MLFLOW []"
