"""The contract the model is trained on: the data contract minus the columns that leak the target.

The data profile raises a *critical* leakage alert on a feature column that (almost) determines
the target (``alive`` in titanic is ``survived`` spelled yes/no), and on a pair of numeric
columns the target is a linear combination of (``casual + registered = cnt``). A model
trained on such a column scores perfectly on the test set and is useless in production, where
the column is not known yet. :func:`modeling_contract` therefore gives every feature column of a
critical leakage alert the role ``leakage``: the model does not see it (``to_pandas`` and the
registered model's signature leave it out), and :class:`ModelingContract` says which columns
were excluded and why, for the run report. ``features.allow_leaky`` keeps a column.

The user's data contract is not changed: validation, the profile and the contract file still
see every column.

>>> from modelyard.data.contract import ColumnContract, DataContract
>>> from modelyard.data.profile import Alert
>>> contract = DataContract(target="survived", task="binary", columns=[
...     ColumnContract(name="survived", type="int", role="target"),
...     ColumnContract(name="age", type="float"),
...     ColumnContract(name="alive", type="str")])
>>> alert = Alert(kind="leakage", columns=["alive"], severity="critical",
...               message="'alive' (almost) determines the target 'survived'")
>>> m = modeling_contract(contract, [alert], allow_leaky=[])
>>> [c.name for c in m.contract.features], [x.name for x in m.excluded]
(['age'], ['alive'])
>>> modeling_contract(contract, [alert], allow_leaky=["alive"]).allowed[0].name
'alive'
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from pydantic import BaseModel, ConfigDict, Field

from modelyard.data.contract import DataContract, did_you_mean
from modelyard.data.profile import Alert
from modelyard.errors import ModelyardError

__all__ = ["LeakyColumn", "ModelingContract", "modeling_contract", "standing_alerts"]


class LeakyColumn(BaseModel):
    """A column named by a critical leakage alert of the profile."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    name: str
    """The column."""
    reason: str
    """The profile's alert, as it reads in the profile."""


class ModelingContract(BaseModel):
    """The contract of the modeling steps, and what it left out of the data contract."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    contract: DataContract
    """The data contract with the excluded columns' role set to ``leakage``."""
    excluded: list[LeakyColumn] = Field(default_factory=list)
    """Feature columns left out of the model: a critical leakage alert names them."""
    allowed: list[LeakyColumn] = Field(default_factory=list)
    """Columns a critical leakage alert names, kept as features by ``features.allow_leaky``."""
    leakage_alerts: list[Alert] = Field(default_factory=list)
    """Every leakage alert of the profile (any severity), for the promotion gate."""


def modeling_contract(
    contract: DataContract, alerts: Iterable[Alert], *, allow_leaky: Sequence[str] = ()
) -> ModelingContract:
    """The contract the model is trained on: feature columns of critical leakage alerts become
    ``leakage`` unless listed in ``allow_leaky`` (see the module docstring).

    A name in ``allow_leaky`` that is not a column of the contract is an error (a typo would
    otherwise silently keep nothing).
    """
    unknown = [name for name in allow_leaky if name not in contract.names]
    if unknown:
        hint = did_you_mean(unknown[0], contract.names)
        raise ModelyardError(
            f"features.allow_leaky names {'a column' if len(unknown) == 1 else 'columns'} "
            f"the data does not have{hint}",
            where="features.allow_leaky",
            expected="columns of the data contract",
            found=", ".join(repr(u) for u in unknown),
            fix="Fix the names in modelyard.yaml, or remove them.",
        )
    leakage = [a for a in alerts if a.kind == "leakage"]
    roles = {c.name: c.role for c in contract.columns}
    reasons: dict[str, str] = {}
    for alert in leakage:
        if alert.severity != "critical":
            continue
        for name in alert.columns:
            if roles.get(name) == "feature" and name not in reasons:
                reasons[name] = alert.message
    allowed = set(allow_leaky)
    excluded = [LeakyColumn(name=n, reason=r) for n, r in reasons.items() if n not in allowed]
    kept = [LeakyColumn(name=n, reason=r) for n, r in reasons.items() if n in allowed]
    drop = {x.name for x in excluded}
    columns = [
        c.model_copy(update={"role": "leakage"}) if c.name in drop else c for c in contract.columns
    ]
    return ModelingContract(
        contract=contract.model_copy(update={"columns": columns}),
        excluded=excluded,
        allowed=kept,
        leakage_alerts=leakage,
    )


def standing_alerts(alerts: Iterable[Alert], inputs: Iterable[str]) -> list[Alert]:
    """The leakage alerts that name a column among a model's ``inputs``: they still stand.

    >>> a = Alert(kind="leakage", columns=["alive"], severity="critical", message="m")
    >>> [x.columns for x in standing_alerts([a], ["age", "alive"])], standing_alerts([a], ["age"])
    ([['alive']], [])
    """
    used = set(inputs)
    return [a for a in alerts if a.kind == "leakage" and used.intersection(a.columns)]
