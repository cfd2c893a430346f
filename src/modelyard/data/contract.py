"""The data contract: what a valid table looks like.

Inferred once from the reference (training) data, written as a readable YAML file that the
user edits and commits, and then the single definition used everywhere: validation of every
batch, the request schema of the prediction server, and the baseline of drift monitoring.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

CONTRACT_VERSION = 1

ColumnType = Literal["int", "float", "str", "bool", "date", "datetime"]
ColumnRole = Literal["feature", "target", "id", "time", "leakage"]
Task = Literal["binary", "multiclass", "regression"]


class ColumnContract(BaseModel):
    """What one column may hold."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    name: str
    """Column name, as in the data."""
    type: ColumnType
    """Logical type; values that cannot be read as this type are violations."""
    role: ColumnRole = "feature"
    """What the column is for."""
    nullable: bool = True
    """Whether missing values are allowed."""
    min: float | str | None = None
    """Smallest allowed value (numbers; ISO strings for dates), inclusive."""
    max: float | str | None = None
    """Largest allowed value, inclusive."""
    categories: list[str] | None = None
    """Allowed values of a categorical column; ``None`` allows any value."""
    unique: bool = False
    """Whether values must be unique."""
    null_rate: float | None = Field(default=None, ge=0, le=1)
    """Share of missing values in the reference data (informational; drift baseline)."""
    distinct: int | None = None
    """Distinct non-missing values in the reference data (informational)."""


class DataContract(BaseModel):
    """The contract of a whole table."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    version: int = CONTRACT_VERSION
    """Format version of the contract file."""
    target: str | None = None
    """The target column, if any."""
    task: Task | None = None
    """The learning task inferred from (or declared for) the target."""
    rows: int | None = None
    """Rows of the reference data the contract was inferred from (informational)."""
    allow_extra_columns: bool = False
    """Whether columns not listed here are accepted (and ignored) or are an error."""
    columns: list[ColumnContract]
    """One entry per column, in order."""

    def column(self, name: str) -> ColumnContract:
        for col in self.columns:
            if col.name == name:
                return col
        raise KeyError(name)

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def features(self) -> list[ColumnContract]:
        return [c for c in self.columns if c.role == "feature"]
