"""The MLflow pyfunc wrapper of a fitted modelyard model.

A fitted model is one scikit-learn ``Pipeline([("features", ...), ("model", ...)])`` taking a
DataFrame of the contract's raw feature columns. :class:`ModelyardPyfunc` wraps it so that any
MLflow consumer (``mlflow.pyfunc.load_model``, ``mlflow models serve``, the MLflow UI) gets one
tidy output frame::

    prediction   proba_<class 1>   proba_<class 2> ...

This module must stay loadable **without modelyard installed**: :func:`modelyard.ops.tracking.
log_training_run` pickles this class *by value* (cloudpickle), so the logged model needs only
mlflow, cloudpickle, pandas, numpy, scikit-learn (and the model's own libraries) to load. Hence
the rules for this file: import nothing from ``modelyard``, and keep
``from __future__ import annotations`` out (MLflow reads the ``predict`` type hints at load time,
and postponed string hints would not resolve in a class rebuilt by value).
"""

import os
from typing import Any

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "true")

import numpy as np
import pandas as pd  # type: ignore[import-untyped,unused-ignore]
from mlflow.pyfunc.model import PythonModel

PREDICTION = "prediction"
"""Name of the output column holding the predicted label (or value, for regression)."""
PROBA_PREFIX = "proba_"
"""Prefix of the per-class probability columns: ``proba_<class>``."""


class ModelyardPyfunc(PythonModel):
    """A fitted scikit-learn pipeline with the contract's feature list, task and classes.

    >>> from sklearn.dummy import DummyClassifier
    >>> from sklearn.pipeline import Pipeline
    >>> from sklearn.preprocessing import FunctionTransformer
    >>> X = pd.DataFrame({"a": [1.0, 2.0, 3.0, 4.0]})
    >>> pipe = Pipeline([("features", FunctionTransformer()), ("model", DummyClassifier())])
    >>> _ = pipe.fit(X, ["no", "yes", "yes", "yes"])
    >>> wrapper = ModelyardPyfunc.from_pipeline(pipe, features=["a"], task="binary")
    >>> wrapper.predict(None, X.head(1)).round(2).to_dict("records")
    [{'prediction': 'yes', 'proba_no': 0.25, 'proba_yes': 0.75}]
    """

    def __init__(
        self,
        pipeline: Any,
        features: list[str],
        task: str,
        classes: list[str] | None = None,
    ) -> None:
        self.pipeline = pipeline
        self.features = list(features)
        self.task = task
        self.classes = None if classes is None else [str(c) for c in classes]

    @classmethod
    def from_pipeline(cls, pipeline: Any, *, features: list[str], task: str) -> "ModelyardPyfunc":
        """Wrap a fitted pipeline; the classes of a classifier come from its ``classes_``."""
        classes = None
        if task != "regression":
            fitted = getattr(pipeline, "classes_", None)
            if fitted is None:
                raise ValueError(
                    f"a {task} model must have 'classes_' (is the pipeline fitted?), "
                    f"found a {type(pipeline).__name__} without it"
                )
            classes = [str(c) for c in fitted]
        return cls(pipeline, features, task, classes)

    @property
    def output_columns(self) -> list[str]:
        """The columns of :meth:`predict`'s output, in order."""
        return [PREDICTION, *(PROBA_PREFIX + c for c in self.classes or [])]

    def predict(
        self,
        context: Any,
        model_input: pd.DataFrame,
        params: dict[str, Any] | None = None,
    ) -> pd.DataFrame:
        """Predict a frame of raw feature columns (extra columns are ignored)."""
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
