"""The model zoo: every model family modelyard searches, as one small class each.

A :class:`Family` knows four things about its estimators:

- ``fixed``: settings never searched (one thread, quiet, the most boosting rounds);
- ``portfolio``: strong configurations, tried first and in order (the first is the family's
  default), in the spirit of zero-shot portfolios (FLAML's zero-shot configurations, TabRepo):
  a few configurations that do well across many tables beat a random search at equal time;
- ``space``: the ranges Optuna searches when the family is tuned; every portfolio
  configuration lies inside it;
- ``fit``: how to fit, and for **boosted** families how to stop early on a validation fold. The
  number of rounds that fold chose is returned and reused for the final refit.

Estimators follow the scikit-learn contract (``__init__`` stores keyword arguments), predict
with one thread and are deterministic for a seed. Class balancing and row weights arrive as
``sample_weight``. Families whose library is an optional extra (CatBoost) say how to get it.

>>> import numpy as np
>>> model = make_model("xgboost", "binary", seed=0, params={"n_estimators": 5})
>>> list(model.fit(np.arange(8.0).reshape(-1, 1), np.array([0, 0, 0, 0, 1, 1, 1, 1])).classes_)
[0, 1]
"""

from __future__ import annotations

import importlib.util
import inspect
import typing
from typing import Any, ClassVar

from modelyard.config.schema import ModelName
from modelyard.data.contract import Task, did_you_mean
from modelyard.errors import MissingExtraError, ModelyardError
from modelyard.modeling.zoo.space import Space, contains

__all__ = [
    "FAMILIES",
    "MODEL_NAMES",
    "Family",
    "default_params",
    "family",
    "fit_model",
    "make_model",
]

MODEL_NAMES: tuple[str, ...] = typing.get_args(ModelName)
"""Every model family, in the schema's order."""

CLASSIFICATION = ("binary", "multiclass")


def is_classification(task: str) -> bool:
    return task in CLASSIFICATION


class Family:
    """One model family. Subclasses set the class attributes and override what differs."""

    name: ClassVar[str]
    boosted: ClassVar[bool] = False
    """Grows rounds until a validation fold stops improving (early stopping)."""
    rounds_param: ClassVar[str] = "n_estimators"
    """The parameter that sets a boosted family's number of rounds."""
    module: ClassVar[str | None] = None
    """The library the family needs when it is an optional extra."""
    extra: ClassVar[str | None] = None
    """The ``modelyard[...]`` extra that installs :attr:`module`."""
    patience: ClassVar[int] = 50
    """Rounds without improvement before a boosted fit stops."""

    # -- what the family is

    def fixed(self, task: Task) -> dict[str, Any]:
        """Settings never searched."""
        return {}

    def portfolio(self, task: Task) -> list[dict[str, Any]]:
        """Strong configurations, best bet first; the first is the default."""
        raise NotImplementedError

    def space(self, task: Task) -> Space:
        """The search space of the tuned parameters."""
        return {}

    def estimator(self, task: Task, seed: int) -> Any:
        """The unfitted estimator with the family's own settings (no parameters yet)."""
        raise NotImplementedError

    # -- what it does

    def available(self) -> bool:
        return self.module is None or importlib.util.find_spec(self.module) is not None

    def require(self) -> None:
        if not self.available():
            assert self.module is not None and self.extra is not None
            raise MissingExtraError(self.module, self.extra, f"the model family '{self.name}'")

    def build(self, task: Task, params: dict[str, Any], seed: int) -> Any:
        """The estimator with ``fixed`` and ``params`` (unknown names are a clear error)."""
        self.require()
        estimator = self.estimator(task, seed)
        merged = {**self.fixed(task), **params}
        valid = set(estimator.get_params(deep=False)) | _init_parameters(type(estimator))
        unknown = [key for key in merged if key not in valid]
        if unknown:
            key = unknown[0]
            raise ModelyardError(
                f"unknown parameter '{key}' for model '{self.name}'{did_you_mean(key, valid)}",
                where=f"models.params.{self.name}",
                expected=f"one of {sorted(valid)}",
                found=repr(key),
            )
        estimator.set_params(**merged)
        return estimator

    def fit(
        self,
        estimator: Any,
        X: Any,
        y: Any,
        sample_weight: Any = None,
        eval_set: tuple[Any, Any] | None = None,
    ) -> int | None:
        """Fit; a boosted family with ``eval_set`` stops early and returns its best round count."""
        estimator.fit(X, y, sample_weight=sample_weight)
        return None

    def with_rounds(self, params: dict[str, Any], rounds: int) -> dict[str, Any]:
        """``params`` with the number of rounds set (the refit of a boosted family)."""
        return {**params, self.rounds_param: int(rounds)}


def _init_parameters(cls: type) -> set[str]:
    """Named parameters of ``cls.__init__`` (CatBoost's ``get_params`` lists only those set)."""
    kinds = (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    params = inspect.signature(cls.__init__).parameters.values()  # type: ignore[misc]
    return {p.name for p in params if p.kind in kinds and p.name != "self"}


def _registry() -> dict[str, Family]:
    from modelyard.modeling.zoo.basic import MLP, Dummy, Linear
    from modelyard.modeling.zoo.boosting import CatBoost, HistGradientBoosting, LightGBM, XGBoost
    from modelyard.modeling.zoo.trees import ExtraTrees, RandomForest

    families: list[Family] = [
        Dummy(), Linear(), RandomForest(), ExtraTrees(), HistGradientBoosting(), XGBoost(),
        LightGBM(), CatBoost(), MLP(),
    ]  # fmt: skip
    by_name = {f.name: f for f in families}
    assert set(by_name) == set(MODEL_NAMES), "the zoo and the schema's ModelName must agree"
    return by_name


FAMILIES: dict[str, Family] = _registry()


def _check_task(task: str) -> None:
    if task not in ("binary", "multiclass", "regression"):
        raise ModelyardError(
            f"unknown task '{task}'",
            expected="one of ['binary', 'multiclass', 'regression']",
            found=repr(task),
        )


def family(name: str) -> Family:
    """The family called ``name`` (a clear error, with a suggestion, for an unknown name)."""
    if name not in FAMILIES:
        raise ModelyardError(
            f"unknown model '{name}'{did_you_mean(name, MODEL_NAMES)}",
            where="models.candidates",
            expected=f"one of {list(MODEL_NAMES)}",
            found=repr(name),
        )
    return FAMILIES[name]


def default_params(name: str, task: Task) -> dict[str, Any]:
    """The searched parameters of the family's default configuration (a fresh copy).

    >>> default_params("linear", "regression")
    {'alpha': 1.0}
    """
    _check_task(task)
    return dict(family(name).portfolio(task)[0])


def make_model(name: str, task: Task, *, params: dict[str, Any] | None = None, seed: int) -> Any:
    """An unfitted estimator of family ``name``: the defaults, overridden by ``params``."""
    _check_task(task)
    fam = family(name)
    merged = default_params(name, task)
    merged.update(params or {})
    return fam.build(task, merged, seed)


def fit_model(
    name: str,
    estimator: Any,
    X: Any,
    y: Any,
    *,
    sample_weight: Any = None,
    eval_set: tuple[Any, Any] | None = None,
) -> int | None:
    """Fit ``estimator`` of family ``name``; see :meth:`Family.fit`."""
    return family(name).fit(estimator, X, y, sample_weight, eval_set)


def check_portfolio(name: str, task: Task) -> None:
    """Every portfolio configuration lies in the space (a tuned family starts from them)."""
    fam = family(name)
    space = fam.space(task)
    for params in fam.portfolio(task):
        if space and not contains(space, params):
            raise AssertionError(f"{name} ({task}): {params} is outside its search space")
