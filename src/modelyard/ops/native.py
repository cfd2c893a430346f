"""modelyard's native model flavour: the fitted pipeline, loadable without MLflow.

Every model modelyard logs is an MLflow ``python_function`` model (:mod:`modelyard.ops.pyfunc`),
so any MLflow consumer can load it. Loading it that way imports most of MLflow (seconds) and the
pickle of the pyfunc wrapper itself refers to MLflow. So the model folder also carries the
fitted scikit-learn pipeline on its own, as the ``modelyard`` flavour of its ``MLmodel``::

    flavors:
      modelyard:
        pipeline: modelyard/pipeline.pkl   # cloudpickle, modelyard code by value
        features: [...]
        task: binary
        classes: [benign, malignant]
        format: 1

:func:`load_native` reads it with yaml + cloudpickle (+ the model's own libraries) and returns a
:class:`NativeModel` whose ``predict`` gives exactly what the pyfunc wrapper gives. A model
logged before the flavour existed has no such entry: :func:`load_native` returns ``None`` and
the caller falls back to ``mlflow.pyfunc``.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

FLAVOR = "modelyard"
PIPELINE_FILE = "modelyard/pipeline.pkl"
FORMAT = 1
PREDICTION = "prediction"
PROBA_PREFIX = "proba_"


def flavor_conf(wrapper: Any) -> dict[str, Any]:
    """The ``modelyard`` flavour entry of a :class:`~modelyard.ops.pyfunc.ModelyardPyfunc`."""
    import cloudpickle  # type: ignore[import-untyped,unused-ignore]

    return {
        "pipeline": PIPELINE_FILE,
        "features": list(wrapper.features),
        "task": str(wrapper.task),
        "classes": None if wrapper.classes is None else list(wrapper.classes),
        "pickle": "cloudpickle",
        "cloudpickle_version": cloudpickle.__version__,
        "format": FORMAT,
    }


def write_pipeline(model_dir: Path, pipeline: Any) -> None:
    """Write the pipeline file of the flavour into ``model_dir`` (atomically).

    Call it inside the same ``by value`` block as the pyfunc's own pickle, so that modelyard's
    code (and the user's local modules) travel inside the file.
    """
    import cloudpickle  # type: ignore[import-untyped,unused-ignore]

    target = Path(model_dir) / PIPELINE_FILE
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=".pipeline-", dir=target.parent)
    tmp = Path(name)
    try:
        with os.fdopen(fd, "wb") as fh:
            cloudpickle.dump(pipeline, fh)
        tmp.replace(target)
    finally:
        tmp.unlink(missing_ok=True)


class NativeModel:
    """A fitted pipeline with the model's feature list, task and classes.

    ``predict`` mirrors :meth:`modelyard.ops.pyfunc.ModelyardPyfunc.predict` line for line (a
    test checks the two agree on every model the tests log).
    """

    def __init__(
        self, pipeline: Any, features: list[str], task: str, classes: list[str] | None
    ) -> None:
        self.pipeline = pipeline
        self.features = list(features)
        self.task = task
        self.classes = None if classes is None else [str(c) for c in classes]

    @property
    def output_columns(self) -> list[str]:
        return [PREDICTION, *(PROBA_PREFIX + c for c in self.classes or [])]

    def predict(self, model_input: Any) -> Any:
        """Predict a pandas frame of raw feature columns (extra columns are ignored)."""
        import numpy as np
        import pandas as pd  # type: ignore[import-untyped,unused-ignore]

        if not isinstance(model_input, pd.DataFrame):
            model_input = pd.DataFrame(model_input)
        missing = [c for c in self.features if c not in model_input.columns]
        if missing:
            raise ValueError(
                f"the input lacks the feature column(s) {missing}; "
                f"expected the columns {self.features}"
            )
        frame = model_input[self.features]
        out = pd.DataFrame(index=model_input.index)
        if self.classes is None:
            out[PREDICTION] = np.asarray(self.pipeline.predict(frame))
            return out
        proba = np.asarray(self.pipeline.predict_proba(frame), dtype="float64")
        final = self.pipeline.steps[-1][1] if hasattr(self.pipeline, "steps") else self.pipeline
        if getattr(final, "predict_is_argmax", False):  # one pass through the model, not two
            out[PREDICTION] = np.asarray(self.pipeline.classes_)[np.argmax(proba, axis=1)]
        else:
            out[PREDICTION] = np.asarray(self.pipeline.predict(frame))
        for i, name in enumerate(self.classes):
            out[PROBA_PREFIX + name] = proba[:, i]
        return out


def native_conf(model_dir: Path) -> dict[str, Any] | None:
    """The ``modelyard`` flavour of the ``MLmodel`` in ``model_dir``, or ``None``."""
    import yaml

    mlmodel = Path(model_dir) / "MLmodel"
    if not mlmodel.is_file():
        return None
    meta = yaml.safe_load(mlmodel.read_text(encoding="utf-8")) or {}
    conf = (meta.get("flavors") or {}).get(FLAVOR)
    if not isinstance(conf, dict) or conf.get("format") != FORMAT:
        return None
    if not (Path(model_dir) / str(conf.get("pipeline", PIPELINE_FILE))).is_file():
        return None
    return conf


def load_native(model_dir: Path) -> NativeModel | None:
    """The model of ``model_dir`` through its native flavour (``None`` when it has none)."""
    import cloudpickle  # type: ignore[import-untyped,unused-ignore]

    conf = native_conf(model_dir)
    if conf is None:
        return None
    with (Path(model_dir) / str(conf["pipeline"])).open("rb") as fh:
        pipeline = cloudpickle.load(fh)
    return NativeModel(pipeline, conf["features"], str(conf["task"]), conf.get("classes"))


def input_example_records(model_dir: Path) -> list[dict[str, Any]] | None:
    """The logged input example (pandas ``split`` JSON) as records, without pandas or MLflow."""
    import json

    file = Path(model_dir) / "input_example.json"
    if not file.is_file():
        return None
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
        columns = list(data["columns"])
        return [dict(zip(columns, row, strict=True)) for row in data["data"]]
    except (ValueError, KeyError, TypeError):
        return None
