"""Search spaces: each hyper-parameter's range, sampled by an Optuna trial.

A space is a ``dict`` of parameter name to :class:`Float`, :class:`Int` or :class:`Choice`.
The same object gives Optuna's distributions (to record portfolio configurations as finished
trials, so the sampler starts from them) and checks that a configuration lies inside it.

>>> space = {"learning_rate": Float(0.01, 0.3, log=True), "max_depth": Int(3, 10)}
>>> contains(space, {"learning_rate": 0.05, "max_depth": 6})
True
>>> contains(space, {"learning_rate": 0.5, "max_depth": 6})
False
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import optuna


@dataclass(frozen=True)
class Float:
    low: float
    high: float
    log: bool = False

    def holds(self, value: Any) -> bool:
        return isinstance(value, int | float) and self.low <= float(value) <= self.high


@dataclass(frozen=True)
class Int:
    low: int
    high: int
    log: bool = False

    def holds(self, value: Any) -> bool:
        return (
            isinstance(value, int)
            and not isinstance(value, bool)
            and self.low <= value <= self.high
        )


@dataclass(frozen=True)
class Choice:
    options: tuple[Any, ...]

    def holds(self, value: Any) -> bool:
        return value in self.options


Dimension = Float | Int | Choice
Space = dict[str, Dimension]


def sample(space: Space, trial: optuna.Trial) -> dict[str, Any]:
    """One configuration drawn by ``trial`` (in the space's order)."""
    params: dict[str, Any] = {}
    for name, dim in space.items():
        if isinstance(dim, Float):
            params[name] = trial.suggest_float(name, dim.low, dim.high, log=dim.log)
        elif isinstance(dim, Int):
            params[name] = trial.suggest_int(name, dim.low, dim.high, log=dim.log)
        else:
            params[name] = trial.suggest_categorical(name, list(dim.options))
    return params


def distributions(space: Space) -> dict[str, Any]:
    """Optuna's distributions for ``optuna.create_trial``."""
    from optuna.distributions import (
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )

    out: dict[str, Any] = {}
    for name, dim in space.items():
        if isinstance(dim, Float):
            out[name] = FloatDistribution(dim.low, dim.high, log=dim.log)
        elif isinstance(dim, Int):
            out[name] = IntDistribution(dim.low, dim.high, log=dim.log)
        else:
            out[name] = CategoricalDistribution(list(dim.options))
    return out


def contains(space: Space, params: dict[str, Any]) -> bool:
    """Whether ``params`` sets exactly the space's parameters, each inside its range."""
    return set(params) == set(space) and all(space[k].holds(v) for k, v in params.items())
