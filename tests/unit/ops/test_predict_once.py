"""The model wrappers (MLflow pyfunc and the native flavour) go through a classifier once when
its ``predict`` is the argmax of its probabilities: batch scoring of an ensemble cost twice
its models' time when they computed the probabilities for the label and again for the columns.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer

from modelyard.ops.native import NativeModel
from modelyard.ops.pyfunc import ModelyardPyfunc


class Counting(ClassifierMixin, BaseEstimator):  # type: ignore[misc]
    """Probabilities from the first column; counts its passes over the data."""

    def __init__(self, argmax: bool = True) -> None:
        self.argmax = argmax

    def fit(self, X: Any, y: Any) -> Counting:
        self.classes_ = np.asarray(sorted({str(v) for v in y}), dtype=object)
        self.passes_ = 0
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        self.passes_ += 1
        p = 1.0 / (1.0 + np.exp(-np.asarray(X, dtype=float)[:, 0]))
        return np.column_stack([1.0 - p, p])

    def predict(self, X: Any) -> np.ndarray:
        self.passes_ += 1
        p = 1.0 / (1.0 + np.exp(-np.asarray(X, dtype=float)[:, 0]))
        labels: np.ndarray = self.classes_[(p > 0.5).astype(int)]
        return labels

    @property
    def predict_is_argmax(self) -> bool:
        return self.argmax


def _wrappers(argmax: bool) -> list[tuple[Any, Any]]:
    X = pd.DataFrame({"a": [-2.0, -1.0, 1.0, 2.0], "b": [0.0, 1.0, 0.0, 1.0]})
    made = []
    for kind in ("pyfunc", "native"):
        pipe = Pipeline([("features", FunctionTransformer()), ("model", Counting(argmax))])
        pipe.fit(X, ["no", "no", "yes", "yes"])
        if kind == "pyfunc":
            made.append(
                (ModelyardPyfunc.from_pipeline(pipe, features=["a", "b"], task="binary"), pipe)
            )
        else:
            made.append((NativeModel(pipe, ["a", "b"], "binary", ["no", "yes"]), pipe))
    return made


def _predict(wrapper: Any, frame: pd.DataFrame) -> pd.DataFrame:
    if isinstance(wrapper, ModelyardPyfunc):
        return wrapper.predict(None, frame)
    out: pd.DataFrame = wrapper.predict(frame)
    return out


@pytest.mark.parametrize("argmax", [True, False])
def test_a_classifier_is_asked_once_when_its_label_is_the_argmax(argmax: bool) -> None:
    frame = pd.DataFrame({"a": np.linspace(-3, 3, 13), "b": np.zeros(13)})
    for wrapper, pipe in _wrappers(argmax):
        model = pipe.steps[-1][1]
        model.passes_ = 0
        out = _predict(wrapper, frame)
        assert model.passes_ == (1 if argmax else 2)
        assert list(out.columns) == ["prediction", "proba_no", "proba_yes"]
        assert out["prediction"].tolist() == pipe.predict(frame).tolist()
        np.testing.assert_allclose(out["proba_yes"], pipe.predict_proba(frame)[:, 1])
