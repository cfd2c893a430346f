"""Gradient-boosted trees: LightGBM, XGBoost, CatBoost (an extra) and scikit-learn's
HistGradientBoosting.

LightGBM, XGBoost and CatBoost grow up to :data:`MAX_ROUNDS` rounds and stop early on the
validation fold (their library's default loss: log loss, or squared error), so the number of
rounds is chosen by the data, not by a fixed ``n_estimators``. The final refit on every
training row uses the rounds the folds chose.
"""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin

from modelyard.data.contract import Task
from modelyard.modeling.zoo import Family, is_classification
from modelyard.modeling.zoo.space import Choice, Float, Int, Space

MAX_ROUNDS = 5000
"""The most rounds a boosted fit may grow before early stopping ends it."""
MIN_LOG_LOSS_GAIN = 1e-4
"""Classification: a round must lower the validation log loss by this much to count as an
improvement. On separable data (kddcup99, penguins) the loss creeps towards 0 for thousands
of rounds that change no prediction; this ends them."""


def _known_labels(y_train: Any, eval_set: tuple[Any, Any], classifier: bool) -> tuple[Any, Any]:
    """The validation rows whose label the training rows have (a rare class can be missing
    from a fold's training part; a booster cannot score a label it never saw)."""
    X_val, y_val = eval_set
    if not classifier:
        return X_val, y_val
    keep = np.isin(np.asarray(y_val), np.unique(np.asarray(y_train)))
    if keep.all():
        return X_val, y_val
    return X_val[keep], np.asarray(y_val)[keep]


class _Boosted(Family):
    boosted = True

    def _validation(self, estimator: Any, y: Any, eval_set: tuple[Any, Any] | None) -> Any:
        """The early-stopping rows, or None (no eval set, or no row with a known label)."""
        if eval_set is None:
            return None
        classifier = hasattr(estimator, "predict_proba")  # the libraries' regressors have none
        X_val, y_val = _known_labels(y, eval_set, classifier)
        return None if len(y_val) == 0 else (X_val, y_val)


class LightGBM(_Boosted):
    name = "lightgbm"

    def fixed(self, task: Task) -> dict[str, Any]:
        # Multiclass: start every class from 0, not from its log prior. From the prior a class
        # of a few rows starts so low that early stopping (on the loss of the common classes)
        # ends before it is ever predicted: kddcup99 macro F1 0.53 with it, 0.84 without;
        # wine quality unchanged.
        return {
            "n_estimators": MAX_ROUNDS, "subsample_freq": 1, "n_jobs": 1,
            "boost_from_average": task != "multiclass",
        }  # fmt: skip

    def portfolio(self, task: Task) -> list[dict[str, Any]]:
        base = {
            "learning_rate": 0.05,
            "num_leaves": 31,
            "min_child_samples": 20,
            "colsample_bytree": 0.9,
            "subsample": 1.0,
            "reg_lambda": 0.0,
            "extra_trees": False,
        }
        return [
            base,
            {**base, "extra_trees": True},
            {**base, "learning_rate": 0.03, "num_leaves": 15, "colsample_bytree": 0.3,
             "subsample": 0.8},
            {**base, "learning_rate": 0.03, "num_leaves": 128, "min_child_samples": 5},
        ]  # fmt: skip

    def space(self, task: Task) -> Space:
        return {
            "learning_rate": Float(0.005, 0.2, log=True),
            "num_leaves": Int(4, 256, log=True),
            "min_child_samples": Int(2, 100, log=True),
            "colsample_bytree": Float(0.2, 1.0),
            "subsample": Float(0.5, 1.0),
            "reg_lambda": Float(0.0, 10.0),
            "extra_trees": Choice((False, True)),
        }

    def estimator(self, task: Task, seed: int) -> Any:
        import lightgbm as lgb

        # keyword-only LightGBM parameters must be set here to be settable later
        extra: dict[str, Any] = {
            "deterministic": True, "verbose": -1, "extra_trees": False, "boost_from_average": True,
        }  # fmt: skip
        if is_classification(task):
            return lgb.LGBMClassifier(random_state=seed, **extra)
        return lgb.LGBMRegressor(random_state=seed, **extra)

    def fit(
        self,
        estimator: Any,
        X: Any,
        y: Any,
        sample_weight: Any = None,
        eval_set: tuple[Any, Any] | None = None,
    ) -> int | None:
        import lightgbm as lgb

        valid = self._validation(estimator, y, eval_set)
        if valid is None:
            estimator.fit(X, y, sample_weight=sample_weight)
            return None
        gain = MIN_LOG_LOSS_GAIN if hasattr(estimator, "predict_proba") else 0.0
        stop = [
            lgb.early_stopping(self.patience, first_metric_only=True, verbose=False, min_delta=gain)
        ]
        kwargs: dict[str, Any]
        if "eval_X" in inspect.signature(estimator.fit).parameters:  # LightGBM >= 4.7
            kwargs = {"eval_X": (valid[0],), "eval_y": (valid[1],)}
        else:
            kwargs = {"eval_set": [valid]}
        estimator.fit(X, y, sample_weight=sample_weight, callbacks=stop, **kwargs)
        return int(estimator.best_iteration_) or int(estimator.n_estimators)


class XGBoostClassifier(ClassifierMixin, BaseEstimator):  # type: ignore[misc]
    """XGBoost's ``XGBClassifier`` for any labels: it label-encodes on ``fit`` (XGBoost wants
    0..n-1, and a fold may lack a class) and keeps the original labels in ``classes_``.
    ``early_stopping_rounds`` with an ``eval_set`` stops early; the booster is ``model_``."""

    predict_is_argmax = True
    """``predict`` is ``classes_[argmax(predict_proba)]`` (see the ensemble's flag)."""

    def __init__(
        self,
        *,
        n_estimators: int = 100,
        learning_rate: float = 0.3,
        max_depth: int = 6,
        min_child_weight: float = 1.0,
        subsample: float = 1.0,
        colsample_bytree: float = 1.0,
        reg_lambda: float = 1.0,
        reg_alpha: float = 0.0,
        gamma: float = 0.0,
        max_bin: int = 256,
        early_stopping_rounds: int | None = None,
        n_jobs: int = 1,
        random_state: int = 0,
    ) -> None:
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.max_depth = max_depth
        self.min_child_weight = min_child_weight
        self.subsample = subsample
        self.colsample_bytree = colsample_bytree
        self.reg_lambda = reg_lambda
        self.reg_alpha = reg_alpha
        self.gamma = gamma
        self.max_bin = max_bin
        self.early_stopping_rounds = early_stopping_rounds
        self.n_jobs = n_jobs
        self.random_state = random_state

    def fit(
        self, X: Any, y: Any, sample_weight: Any = None, eval_set: Any = None
    ) -> XGBoostClassifier:
        import xgboost as xgb
        from sklearn.preprocessing import LabelEncoder
        from sklearn.utils.multiclass import check_classification_targets
        from sklearn.utils.validation import validate_data

        X, y = validate_data(
            self, X, y, accept_sparse=("csr", "csc"), ensure_all_finite="allow-nan"
        )
        check_classification_targets(y)
        encoder = LabelEncoder().fit(y)
        params = self.get_params()
        rounds = params.pop("early_stopping_rounds")
        stop = None
        if eval_set is not None and rounds:
            stop = [xgb.callback.EarlyStopping(rounds=rounds, min_delta=MIN_LOG_LOSS_GAIN)]
        model = xgb.XGBClassifier(tree_method="hist", verbosity=0, callbacks=stop, **params)
        fit_kw: dict[str, Any] = {}
        if eval_set is not None:
            X_val, y_val = eval_set
            fit_kw = {"eval_set": [(X_val, encoder.transform(y_val))], "verbose": False}
        model.fit(X, encoder.transform(y), sample_weight=sample_weight, **fit_kw)
        self.classes_ = encoder.classes_
        self.model_ = model
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        from sklearn.utils.validation import check_is_fitted, validate_data

        check_is_fitted(self)
        X = validate_data(
            self, X, accept_sparse=("csr", "csc"), ensure_all_finite="allow-nan", reset=False
        )
        proba = np.asarray(self.model_.predict_proba(X), dtype=np.float64)
        if proba.ndim == 1:  # only one class was seen in fit
            proba = proba.reshape(-1, 1)
        return proba

    def predict(self, X: Any) -> np.ndarray:
        proba = self.predict_proba(X)  # checks first that the model is fitted
        result: np.ndarray = self.classes_[np.argmax(proba, axis=1)]
        return result

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True  # XGBoost routes missing values itself
        tags.input_tags.sparse = True
        return tags


class XGBoost(_Boosted):
    name = "xgboost"

    def fixed(self, task: Task) -> dict[str, Any]:
        return {"n_estimators": MAX_ROUNDS, "n_jobs": 1}

    def portfolio(self, task: Task) -> list[dict[str, Any]]:
        return [
            {
                "learning_rate": 0.05,
                "max_depth": 6,
                "min_child_weight": 1.0,
                "subsample": 0.8,
                "colsample_bytree": 0.8,
                "reg_lambda": 1.0,
            }
        ]

    def space(self, task: Task) -> Space:
        return {
            "learning_rate": Float(0.005, 0.2, log=True),
            "max_depth": Int(2, 10),
            "min_child_weight": Float(0.5, 20.0, log=True),
            "subsample": Float(0.5, 1.0),
            "colsample_bytree": Float(0.2, 1.0),
            "reg_lambda": Float(1e-2, 10.0, log=True),
        }

    def estimator(self, task: Task, seed: int) -> Any:
        if is_classification(task):
            return XGBoostClassifier(random_state=seed)
        import xgboost as xgb

        return xgb.XGBRegressor(tree_method="hist", random_state=seed, verbosity=0)

    def fit(
        self,
        estimator: Any,
        X: Any,
        y: Any,
        sample_weight: Any = None,
        eval_set: tuple[Any, Any] | None = None,
    ) -> int | None:
        valid = self._validation(estimator, y, eval_set)
        estimator.set_params(early_stopping_rounds=self.patience if valid is not None else None)
        if valid is None:
            estimator.fit(X, y, sample_weight=sample_weight)
            return None
        if isinstance(estimator, XGBoostClassifier):
            estimator.fit(X, y, sample_weight=sample_weight, eval_set=valid)
            booster = estimator.model_
        else:
            estimator.fit(X, y, sample_weight=sample_weight, eval_set=[valid], verbose=False)
            booster = estimator
        estimator.set_params(early_stopping_rounds=None)
        return int(booster.best_iteration) + 1


class CatBoost(_Boosted):
    name = "catboost"
    module = "catboost"
    extra = "catboost"
    rounds_param = "iterations"

    def fixed(self, task: Task) -> dict[str, Any]:
        return {
            "iterations": MAX_ROUNDS,
            "thread_count": 1,
            "verbose": False,
            "allow_writing_files": False,
        }

    def portfolio(self, task: Task) -> list[dict[str, Any]]:
        return [{"learning_rate": 0.08, "depth": 6, "l2_leaf_reg": 3.0}]

    def space(self, task: Task) -> Space:
        return {
            "learning_rate": Float(0.01, 0.3, log=True),
            "depth": Int(3, 9),
            "l2_leaf_reg": Float(0.5, 30.0, log=True),
        }

    def estimator(self, task: Task, seed: int) -> Any:
        import catboost

        if is_classification(task):
            return catboost.CatBoostClassifier(random_seed=seed)
        return catboost.CatBoostRegressor(random_seed=seed)

    def fit(
        self,
        estimator: Any,
        X: Any,
        y: Any,
        sample_weight: Any = None,
        eval_set: tuple[Any, Any] | None = None,
    ) -> int | None:
        valid = self._validation(estimator, y, eval_set)
        if valid is None:
            estimator.fit(X, y, sample_weight=sample_weight)
            return None
        estimator.fit(
            X,
            y,
            sample_weight=sample_weight,
            eval_set=valid,
            early_stopping_rounds=self.patience,
            use_best_model=True,
        )
        return int(estimator.get_best_iteration()) + 1


class HistGradientBoosting(Family):
    """scikit-learn's histogram boosting with its defaults: a fixed number of rounds (its own
    early stopping needs a stratified split, which fails on a class with a single row)."""

    name = "hist_gradient_boosting"

    def fixed(self, task: Task) -> dict[str, Any]:
        return {"early_stopping": False}

    def portfolio(self, task: Task) -> list[dict[str, Any]]:
        return [
            {
                "learning_rate": 0.1,
                "max_iter": 100,
                "max_leaf_nodes": 31,
                "min_samples_leaf": 20,
                "l2_regularization": 0.0,
                "max_features": 1.0,
            }
        ]

    def space(self, task: Task) -> Space:
        return {
            "learning_rate": Float(0.02, 0.3, log=True),
            "max_iter": Int(50, 500),
            "max_leaf_nodes": Int(8, 64, log=True),
            "min_samples_leaf": Int(5, 100, log=True),
            "l2_regularization": Float(0.0, 10.0),
            "max_features": Float(0.3, 1.0),
        }

    def estimator(self, task: Task, seed: int) -> Any:
        from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

        if is_classification(task):
            return HistGradientBoostingClassifier(random_state=seed)
        return HistGradientBoostingRegressor(random_state=seed)
