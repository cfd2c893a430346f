"""The model zoo: every model family modelyard explores, its defaults and its search space.

Each family is a scikit-learn estimator that follows the estimator contract (``__init__`` only
stores keyword arguments, so ``clone``, ``get_params`` and tuning work generically). Classifiers
take *string* labels and expose ``classes_`` with the original labels and ``predict_proba``.
Every model is deterministic for a given ``seed`` and uses at most :data:`N_JOBS` threads.
This module imports scikit-learn (``sklearn.base``); the layers above import it lazily.

The defaults are the ones measured best on the adult census data within modelyard's CPU
budget (see ``bench/adult_models.py``): gradient-boosted trees with a lower learning rate, more
(shallower) trees and column subsampling.

>>> import numpy as np
>>> X = np.array([[0.0], [1.0], [2.0], [3.0]])
>>> model = make_model("xgboost", "binary", seed=0, params={"n_estimators": 5})
>>> list(model.fit(X, np.array(["no", "no", "yes", "yes"])).classes_)
['no', 'yes']
"""

from __future__ import annotations

import typing
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin

from modelyard.config.schema import ModelName
from modelyard.data.contract import Task, did_you_mean
from modelyard.errors import ModelyardError

if TYPE_CHECKING:
    import optuna

__all__ = [
    "MODEL_NAMES",
    "N_JOBS",
    "BalancedClassifier",
    "XGBoostClassifier",
    "default_params",
    "default_trial_params",
    "make_model",
    "suggest_params",
]

MODEL_NAMES: tuple[str, ...] = typing.get_args(ModelName)
"""The model families, cheapest first."""

N_JOBS = 1  # one thread per fit: OpenMP thread pools collapse under CPU contention
"""Threads per model (the reference machine has 2 cores; CV folds run one after another)."""

ClassWeight = Literal["none", "balanced"]
_CLASSIFICATION = ("binary", "multiclass")


def _check(name: str, task: str) -> None:
    if name not in MODEL_NAMES:
        raise ModelyardError(
            f"unknown model '{name}'{did_you_mean(name, MODEL_NAMES)}",
            where="models.candidates",
            expected=f"one of {list(MODEL_NAMES)}",
            found=repr(name),
        )
    if task not in ("binary", "multiclass", "regression"):
        raise ModelyardError(
            f"unknown task '{task}'",
            expected="one of ['binary', 'multiclass', 'regression']",
            found=repr(task),
        )


# --------------------------------------------------------------------------- defaults

_DEFAULTS: dict[str, dict[str, dict[str, Any]]] = {
    "dummy": {"classification": {"strategy": "prior"}, "regression": {"strategy": "mean"}},
    "linear": {
        "classification": {"C": 1.0, "max_iter": 2000},
        "regression": {"alpha": 1.0},
    },
    "random_forest": {
        "classification": {
            "n_estimators": 200,
            "max_features": "sqrt",
            "min_samples_leaf": 2,
            "max_depth": None,
        },
        "regression": {
            "n_estimators": 200,
            "max_features": 0.5,
            "min_samples_leaf": 2,
            "max_depth": None,
        },
    },
    # scikit-learn's own defaults, spelled out (adult: test ROC-AUC 0.927).
    "hist_gradient_boosting": {
        "classification": {
            "learning_rate": 0.1,
            "max_iter": 100,
            "max_leaf_nodes": 31,
            "min_samples_leaf": 20,
            "l2_regularization": 0.0,
            "max_features": 1.0,
        },
    },
    "xgboost": {
        "classification": {
            "n_estimators": 600,
            "learning_rate": 0.03,
            "max_depth": 5,
            "min_child_weight": 1.0,
            "subsample": 0.8,
            "colsample_bytree": 0.5,
            "reg_lambda": 1.0,
            "reg_alpha": 0.0,
        },
    },
    "lightgbm": {
        "classification": {
            "n_estimators": 1000,
            "learning_rate": 0.02,
            "num_leaves": 15,
            "min_child_samples": 20,
            "subsample": 0.8,
            "subsample_freq": 1,
            "colsample_bytree": 0.3,
            "reg_lambda": 0.0,
        },
    },
    "mlp": {
        "classification": {
            "hidden_layer_sizes": (64, 32),
            "alpha": 1e-4,
            "learning_rate_init": 1e-3,
            "batch_size": 256,
            "max_iter": 200,
        },
    },
}
# Boosters and MLPs use the same defaults for regression.
for _name in ("hist_gradient_boosting", "xgboost", "lightgbm", "mlp"):
    _DEFAULTS[_name]["regression"] = dict(_DEFAULTS[_name]["classification"])


def _kind(task: str) -> str:
    return "classification" if task in _CLASSIFICATION else "regression"


def default_params(name: str, task: Task) -> dict[str, Any]:
    """The hyper-parameters :func:`make_model` uses when none are given (a fresh copy).

    >>> default_params("linear", "regression")
    {'alpha': 1.0}
    """
    _check(name, task)
    return dict(_DEFAULTS[name][_kind(task)])


# --------------------------------------------------------------------------- estimators


def _balanced_weights(y: Any, sample_weight: Any) -> np.ndarray:
    from sklearn.utils.class_weight import compute_sample_weight

    w = np.asarray(compute_sample_weight("balanced", y), dtype=np.float64)
    if sample_weight is not None:
        w = w * np.asarray(sample_weight, dtype=np.float64)
    return w


class XGBoostClassifier(ClassifierMixin, BaseEstimator):  # type: ignore[misc]
    """XGBoost's ``XGBClassifier`` for any labels (strings included).

    XGBoost wants labels 0..n-1; this wrapper label-encodes on ``fit`` and keeps the original
    labels in ``classes_``. ``class_weight="balanced"`` weights rows inversely to their class
    frequency. The fitted booster is ``model_``.
    """

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
        class_weight: str = "none",
        n_jobs: int = N_JOBS,
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
        self.class_weight = class_weight
        self.n_jobs = n_jobs
        self.random_state = random_state

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> XGBoostClassifier:
        import xgboost as xgb
        from sklearn.preprocessing import LabelEncoder
        from sklearn.utils.multiclass import check_classification_targets
        from sklearn.utils.validation import validate_data

        if self.class_weight not in ("none", "balanced"):
            raise ValueError(
                "The 'class_weight' parameter of XGBoostClassifier must be a str among "
                f"{{'none', 'balanced'}}. Got {self.class_weight!r} instead."
            )
        X, y = validate_data(
            self, X, y, accept_sparse=("csr", "csc"), ensure_all_finite="allow-nan"
        )
        check_classification_targets(y)
        encoder = LabelEncoder().fit(y)
        codes = encoder.transform(y)
        if self.class_weight == "balanced":
            sample_weight = _balanced_weights(codes, sample_weight)
        params = self.get_params()
        del params["class_weight"]
        model = xgb.XGBClassifier(tree_method="hist", verbosity=0, **params)
        model.fit(X, codes, sample_weight=sample_weight)
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


class BalancedClassifier(ClassifierMixin, BaseEstimator):  # type: ignore[misc]
    """Fits ``estimator`` with rows weighted inversely to their class frequency.

    For classifiers without a ``class_weight`` parameter (the MLP); a ``sample_weight`` given to
    ``fit`` is multiplied in.
    """

    def __init__(self, estimator: Any = None) -> None:
        self.estimator = estimator

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> BalancedClassifier:
        from sklearn.base import clone

        self.estimator_ = clone(self.estimator)
        self.estimator_.fit(X, y, sample_weight=_balanced_weights(y, sample_weight))
        self.classes_ = self.estimator_.classes_
        self.n_features_in_ = self.estimator_.n_features_in_
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        from sklearn.utils.validation import check_is_fitted

        check_is_fitted(self)
        return np.asarray(self.estimator_.predict_proba(X), dtype=np.float64)

    def predict(self, X: Any) -> np.ndarray:
        from sklearn.utils.validation import check_is_fitted

        check_is_fitted(self)
        return np.asarray(self.estimator_.predict(X))


def _build_forests() -> dict[str, type]:
    """Random forests whose ``predict``/``predict_proba`` are bit-for-bit reproducible.

    scikit-learn's forests sum the trees' outputs in whatever order the ``n_jobs`` threads
    finish, so two predictions of one model can differ in the last bit. These fit with
    ``n_jobs`` threads but predict in one thread, in tree order. Built on first use (importing
    ``sklearn.ensemble`` is slow); module-level ``__getattr__`` serves them, so they pickle.
    """
    from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

    def one_thread(method: str) -> Any:
        def predict(self: Any, X: Any) -> Any:
            n_jobs = self.n_jobs
            self.n_jobs = 1
            try:
                return getattr(super(type(self), self), method)(X)
            finally:
                self.n_jobs = n_jobs

        predict.__name__ = method
        return predict

    built: dict[str, type] = {}
    for name, base in (
        ("DeterministicForestClassifier", RandomForestClassifier),
        ("DeterministicForestRegressor", RandomForestRegressor),
    ):
        methods = {m: one_thread(m) for m in ("predict", "predict_proba") if hasattr(base, m)}
        if "predict_proba" in methods:  # the classifier's predict goes through predict_proba
            del methods["predict"]
        cls = type(name, (base,), {"__module__": __name__, "__qualname__": name, **methods})
        cls.__doc__ = f"{base.__name__} with reproducible predictions (see ``_build_forests``)."
        built[name] = cls
    return built


_FORESTS: dict[str, type] = {}


def __getattr__(attr: str) -> Any:
    if attr in ("DeterministicForestClassifier", "DeterministicForestRegressor"):
        if not _FORESTS:
            _FORESTS.update(_build_forests())
        return _FORESTS[attr]
    raise AttributeError(f"module {__name__!r} has no attribute {attr!r}")


def _forests() -> tuple[type, type]:
    return __getattr__("DeterministicForestClassifier"), __getattr__("DeterministicForestRegressor")


def _estimator(name: str, task: str, seed: int, cw: str | None) -> tuple[Any, bool]:
    """The estimator with modelyard's fixed settings; the flag says it balances by itself."""
    clf = task in _CLASSIFICATION
    if name == "dummy":
        from sklearn.dummy import DummyClassifier, DummyRegressor

        return (DummyClassifier(random_state=seed) if clf else DummyRegressor()), True
    if name == "linear":
        from sklearn.linear_model import LogisticRegression, Ridge

        if clf:
            return LogisticRegression(random_state=seed, class_weight=cw), True
        return Ridge(), True
    if name == "random_forest":
        forest_classifier, forest_regressor = _forests()
        if clf:
            return forest_classifier(random_state=seed, n_jobs=N_JOBS, class_weight=cw), True
        return forest_regressor(random_state=seed, n_jobs=N_JOBS), True
    if name == "hist_gradient_boosting":
        from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

        if clf:
            # no early stopping: its stratified validation split fails on a class with one row
            # (kddcup99 has such classes), and max_iter already bounds the work
            return (
                HistGradientBoostingClassifier(
                    random_state=seed, class_weight=cw, early_stopping=False
                ),
                True,
            )
        return HistGradientBoostingRegressor(random_state=seed), True
    if name == "xgboost":
        if clf:
            return XGBoostClassifier(
                random_state=seed, n_jobs=N_JOBS, class_weight=cw or "none"
            ), True
        import xgboost as xgb

        return xgb.XGBRegressor(
            tree_method="hist", random_state=seed, n_jobs=N_JOBS, verbosity=0
        ), True
    if name == "lightgbm":
        import lightgbm as lgb

        if clf:
            model = lgb.LGBMClassifier(
                random_state=seed, n_jobs=N_JOBS, verbose=-1, class_weight=cw
            )
            return model, True
        return lgb.LGBMRegressor(random_state=seed, n_jobs=N_JOBS, verbose=-1), True
    # mlp
    from sklearn.neural_network import MLPClassifier, MLPRegressor

    cls = MLPClassifier if clf else MLPRegressor
    return cls(random_state=seed, early_stopping=True, n_iter_no_change=10), False


def make_model(
    name: str,
    task: Task,
    *,
    params: dict[str, Any] | None = None,
    seed: int,
    class_weight: str = "none",
) -> Any:
    """An unfitted estimator of family ``name`` for ``task``.

    ``params`` override :func:`default_params` (unknown names are an error that lists the valid
    ones). ``class_weight="balanced"`` weights classes inversely to their frequency (ignored
    for regression).
    """
    _check(name, task)
    if class_weight not in ("none", "balanced"):
        raise ModelyardError(
            "unknown class weighting",
            where="models.class_weight",
            expected="'none' or 'balanced'",
            found=repr(class_weight),
        )
    balanced = class_weight == "balanced" and task in _CLASSIFICATION
    estimator, balances_itself = _estimator(name, task, seed, "balanced" if balanced else None)
    merged = default_params(name, task)
    merged.update(params or {})
    if isinstance(merged.get("hidden_layer_sizes"), list):  # JSON round trip
        merged["hidden_layer_sizes"] = tuple(merged["hidden_layer_sizes"])
    valid = estimator.get_params(deep=False)
    unknown = [key for key in merged if key not in valid]
    if unknown:
        key = unknown[0]
        raise ModelyardError(
            f"unknown parameter '{key}' for model '{name}'{did_you_mean(key, valid)}",
            where=f"models.params.{name}",
            expected=f"one of {sorted(valid)}",
            found=repr(key),
        )
    estimator.set_params(**merged)
    if balanced and not balances_itself:
        return BalancedClassifier(estimator=estimator)
    if name == "mlp" and task == "regression":
        # A network fits a standardised target far better (diamonds prices: 326..18,823).
        from sklearn.compose import TransformedTargetRegressor
        from sklearn.preprocessing import StandardScaler

        return TransformedTargetRegressor(regressor=estimator, transformer=StandardScaler())
    return estimator


# --------------------------------------------------------------------------- search spaces


def default_trial_params(name: str, task: Task) -> dict[str, Any]:
    """:func:`default_params` in the names :func:`suggest_params` samples (for
    ``study.enqueue_trial``, so a tuning run always scores the defaults first)."""
    params = default_params(name, task)
    if name == "mlp":
        sizes = params.pop("hidden_layer_sizes")
        params.update(width=sizes[0], layers=len(sizes))
    return {k: v for k, v in params.items() if isinstance(v, (str, int, float))}


def suggest_params(name: str, task: Task, trial: optuna.Trial) -> dict[str, Any]:
    """Sample hyper-parameters of ``name`` from its search space.

    Every space contains :func:`default_params` (so the defaults can be enqueued as the first
    trial). The returned dict is ready for ``make_model(params=...)``.
    """
    _check(name, task)
    clf = task in _CLASSIFICATION
    if name == "dummy":
        strategies = ["prior", "most_frequent"] if clf else ["mean", "median"]
        return {"strategy": trial.suggest_categorical("strategy", strategies)}
    if name == "linear":
        if clf:
            return {"C": trial.suggest_float("C", 1e-3, 1e2, log=True), "max_iter": 2000}
        return {"alpha": trial.suggest_float("alpha", 1e-3, 1e3, log=True)}
    if name == "random_forest":
        max_features = (
            trial.suggest_categorical("max_features", ["sqrt", 0.3, 0.5, 0.8])
            if clf
            else trial.suggest_categorical("max_features", [0.3, 0.5, 0.8, 1.0])
        )
        return {
            "n_estimators": trial.suggest_int("n_estimators", 100, 300, step=50),
            "max_features": max_features,
            "min_samples_leaf": trial.suggest_int("min_samples_leaf", 1, 20, log=True),
            "max_depth": None,
        }
    if name == "hist_gradient_boosting":
        return {
            "learning_rate": trial.suggest_float("learning_rate", 0.02, 0.3, log=True),
            "max_iter": trial.suggest_int("max_iter", 100, 500, step=50),
            "max_leaf_nodes": trial.suggest_int("max_leaf_nodes", 8, 64, log=True),
            "min_samples_leaf": trial.suggest_int("min_samples_leaf", 5, 100, log=True),
            "l2_regularization": trial.suggest_float("l2_regularization", 0.0, 10.0),
            "max_features": trial.suggest_float("max_features", 0.3, 1.0),
        }
    if name == "xgboost":
        return {
            "n_estimators": trial.suggest_int("n_estimators", 200, 1000, step=100),
            "learning_rate": trial.suggest_float("learning_rate", 0.01, 0.2, log=True),
            "max_depth": trial.suggest_int("max_depth", 3, 8),
            "min_child_weight": trial.suggest_float("min_child_weight", 0.5, 20.0, log=True),
            "subsample": trial.suggest_float("subsample", 0.6, 1.0),
            "colsample_bytree": trial.suggest_float("colsample_bytree", 0.2, 1.0),
            "reg_lambda": trial.suggest_float("reg_lambda", 1e-2, 10.0, log=True),
            "reg_alpha": 0.0,
        }
    if name == "lightgbm":
        return {
            "n_estimators": trial.suggest_int("n_estimators", 200, 1500, step=100),
            "learning_rate": trial.suggest_float("learning_rate", 0.01, 0.2, log=True),
            "num_leaves": trial.suggest_int("num_leaves", 7, 63, log=True),
            "min_child_samples": trial.suggest_int("min_child_samples", 5, 100, log=True),
            "subsample": trial.suggest_float("subsample", 0.6, 1.0),
            "subsample_freq": 1,
            "colsample_bytree": trial.suggest_float("colsample_bytree", 0.2, 1.0),
            "reg_lambda": trial.suggest_float("reg_lambda", 0.0, 10.0),
        }
    # mlp
    width = trial.suggest_categorical("width", [32, 64, 128])
    layers = trial.suggest_int("layers", 1, 3)
    return {
        "hidden_layer_sizes": tuple(max(8, width // (2**i)) for i in range(layers)),
        "alpha": trial.suggest_float("alpha", 1e-6, 1e-1, log=True),
        "learning_rate_init": trial.suggest_float("learning_rate_init", 1e-4, 1e-2, log=True),
        "batch_size": trial.suggest_categorical("batch_size", [64, 128, 256]),
        "max_iter": 200,
    }
