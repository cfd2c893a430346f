"""The typed schema of ``modelyard.yaml``.

Every field has a docstring: it is the source of the generated configuration reference
(``docs/configuration.md``) and of the JSON Schema editors use (``modelyard schema``).
Unknown keys are errors. Relative paths resolve from the folder of the yaml file.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

FORMAT_VERSION = 1
"""The version of the modelyard.yaml format this release reads and writes."""

#: Sections of the pipeline that later releases will open. Present in a file, they are
#: rejected with "not yet supported" instead of being silently ignored.
NOT_YET_SUPPORTED: dict[str, str] = {
    "features": "feature engineering and selection",
    "split": "train/test splits",
    "models": "model exploration",
    "tuning": "hyper-parameter tuning",
    "evaluation": "evaluation",
    "tracking": "MLflow tracking",
    "registry": "the model registry",
    "gate": "the promotion gate",
    "serving": "serving",
    "monitoring": "monitoring",
    "ingest": "continuous ingestion",
    "engine": "other execution engines (dask)",
}


def _resolve_path(value: Path, info: ValidationInfo) -> Path:
    base = (info.context or {}).get("base_dir")
    if base is not None and not value.is_absolute() and "://" not in str(value):
        return (Path(base) / value).resolve()
    return value


ProjectPath = Annotated[Path, AfterValidator(_resolve_path)]
"""A path; relative paths resolve from the folder of modelyard.yaml."""


class Section(BaseModel):
    """Base of every section: unknown keys are errors, values are checked on assignment."""

    model_config = ConfigDict(
        extra="forbid",
        validate_assignment=True,
        validate_default=True,
        use_attribute_docstrings=True,
    )

    @model_validator(mode="before")
    @classmethod
    def _sections_from_context(cls, data: Any) -> Any:
        """Build omitted sub-sections through validation too, so that their defaults see the
        validation context (relative paths resolve from the yaml's folder)."""
        if not isinstance(data, dict):
            return data
        missing = {}
        for name, field in cls.model_fields.items():
            ann = field.annotation
            if field.is_required() or not (isinstance(ann, type) and issubclass(ann, BaseModel)):
                continue
            if (field.alias or name) not in data and name not in data:
                missing[field.alias or name] = {}
        return {**data, **missing} if missing else data


# --------------------------------------------------------------------------- data


class ReadOptions(Section):
    """How to parse a file. Every option has the default of a well-formed CSV file."""

    separator: str = ","
    """Field separator of CSV files. Use ``", "`` style files with ``strip_whitespace``."""
    has_header: bool = True
    """Whether the first (non-skipped) line holds the column names."""
    columns: list[str] | None = None
    """Column names, in file order; required when ``has_header`` is false, renames otherwise."""
    null_values: list[str] = Field(default_factory=list)
    """Strings that mean "missing", e.g. ``["?", "NA"]`` (the empty field is always missing)."""
    skip_rows: int = Field(default=0, ge=0)
    """Lines to skip at the top of the file, before the header (e.g. a junk first line)."""
    encoding: Literal["utf8", "utf8-lossy", "latin1", "cp1252"] = "utf8"
    """Text encoding of the file."""
    strip_whitespace: bool = False
    """Strip spaces around every string value (for files separated by ``", "``)."""
    parse_dates: list[str] = Field(default_factory=list)
    """Columns to parse as dates or datetimes (ISO 8601 or a format in ``date_format``)."""
    date_format: str | None = None
    """A strftime format for ``parse_dates`` columns; ISO 8601 is detected without it."""
    dtypes: dict[str, Literal["int", "float", "str", "bool", "date", "datetime"]] = Field(
        default_factory=dict
    )
    """Force the type of some columns instead of inferring it."""
    comment_prefix: str | None = None
    """Lines starting with this prefix are skipped."""


class ValueMap(Section):
    """Normalisation of the values of one column, applied right after reading."""

    strip_suffix: str | None = None
    """Remove this suffix from every value (``"."`` turns ``">50K."`` into ``">50K"``)."""
    strip_prefix: str | None = None
    """Remove this prefix from every value."""
    lowercase: bool = False
    """Lowercase every value."""
    map: dict[str, str] = Field(default_factory=dict)
    """Replace whole values: ``{"yes": "1", "no": "0"}``."""


class Source(Section):
    """Where a table comes from: a file, a glob of files, or a dataset bundled with a library."""

    path: ProjectPath | None = None
    """A file or a glob (``data/*.csv``); relative to modelyard.yaml."""
    builtin: Literal["breast_cancer", "iris", "wine", "diabetes"] | None = None
    """A real dataset bundled with scikit-learn (no download), for trying modelyard out."""
    format: Literal["auto", "csv", "parquet", "json", "ndjson"] = "auto"
    """File format; ``auto`` decides from the extension (``.data``/``.test``/``.txt`` read as CSV)."""
    read: ReadOptions = Field(default_factory=ReadOptions)
    """Parsing options."""

    @model_validator(mode="after")
    def _one_kind(self) -> Source:
        if (self.path is None) == (self.builtin is None):
            raise ValueError("give exactly one of 'path' or 'builtin'")
        return self


class TestSource(Section):
    """An explicit hold-out file; read options not given are taken from ``data.source.read``."""

    path: ProjectPath
    """A file or glob with the hold-out rows."""
    format: Literal["auto", "csv", "parquet", "json", "ndjson"] = "auto"
    """File format, as for the source."""
    read: dict[str, Any] = Field(default_factory=dict)
    """Read options that differ from the source's (e.g. ``skip_rows: 1``)."""

    @field_validator("read")
    @classmethod
    def _known_read_keys(cls, value: dict[str, Any]) -> dict[str, Any]:
        ReadOptions.model_validate(value)  # same keys and types as ReadOptions
        return value


class ColumnRoles(Section):
    """What some columns are. Columns not listed are features."""

    id: list[str] = Field(default_factory=list)
    """Row identifiers: kept for tracing, never a feature."""
    drop: list[str] = Field(default_factory=list)
    """Columns removed right after reading."""
    leakage: list[str] = Field(default_factory=list)
    """Columns known to leak the target: profiled, never a feature."""
    time: str | None = None
    """The event-time column (for time splits and windows)."""


class DataSection(Section):
    """The data: where it is, how to read it, what the target is."""

    source: Source
    """The training (reference) data."""
    test: TestSource | None = None
    """An explicit hold-out file (e.g. ``adult.test``)."""
    target: str | None = None
    """The column to predict."""
    task: Literal["auto", "binary", "multiclass", "regression"] = "auto"
    """The learning task; ``auto`` infers it from the target."""
    normalize: dict[str, ValueMap] = Field(default_factory=dict)
    """Per-column value normalisation applied to every file after reading."""
    columns: ColumnRoles = Field(default_factory=ColumnRoles)
    """Roles of some columns."""
    sample: int | None = Field(default=None, gt=0)
    """Use a seeded random sample of this many rows (for quick iterations)."""


# --------------------------------------------------------------------------- contract


class ContractSection(Section):
    """The data contract: inferred from the training data, then a file you edit and commit."""

    path: ProjectPath = Path("contract.yaml")
    """Where the contract lives. If the file exists it is used as written; if not, it is
    inferred from the training data and written there after the run."""
    max_categories: int = Field(default=50, ge=1)
    """A string column with at most this many distinct values gets an allowed-values list."""
    range_margin: float = Field(default=0.0, ge=0)
    """Widen inferred numeric ranges by this fraction of their span."""


# --------------------------------------------------------------------------- validation


class Check(Section):
    """A declared check: on one ``column`` (range / in / regex / unique / not_null) or a
    row-level ``expression`` (SQL, e.g. ``"x > 0 AND y > 0"``)."""

    name: str | None = None
    """A name for reports; generated when omitted."""
    column: str | None = None
    """The column the check applies to."""
    min: float | None = None
    """Smallest allowed value (inclusive)."""
    max: float | None = None
    """Largest allowed value (inclusive)."""
    values: list[Any] | None = Field(default=None, alias="in")
    """Allowed values (key ``in``)."""
    regex: str | None = None
    """A regular expression every (non-missing) value must match in full."""
    unique: bool = False
    """Values must be unique (missing values excepted)."""
    not_null: bool = False
    """Values must not be missing."""
    expression: str | None = None
    """A row-level SQL expression that must be true (rows where it is null fail)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, use_attribute_docstrings=True)

    @model_validator(mode="after")
    def _shape(self) -> Check:
        column_rules = [
            self.min is not None,
            self.max is not None,
            self.values is not None,
            self.regex is not None,
            self.unique,
            self.not_null,
        ]
        if self.expression is not None:
            if self.column is not None or any(column_rules):
                raise ValueError("an 'expression' check takes no 'column' or column rules")
        elif self.column is None:
            raise ValueError("give a 'column' (with a rule) or an 'expression'")
        elif not any(column_rules):
            raise ValueError(
                f"the check on column '{self.column}' has no rule; "
                "add one of min, max, in, regex, unique, not_null"
            )
        if self.regex is not None:
            import re

            try:
                re.compile(self.regex)
            except re.error as exc:
                raise ValueError(f"'regex' is not a valid regular expression: {exc}") from None
        return self


class ValidationSection(Section):
    """Validation of every batch against the contract and the declared checks."""

    on_error: Literal["quarantine", "warn", "fail"] = "quarantine"
    """``quarantine``: invalid rows go to the quarantine, valid rows continue; ``warn``: all
    rows continue and the report lists the invalid ones; ``fail``: stop the run."""
    max_invalid_fraction: float = Field(default=0.05, ge=0, le=1)
    """More invalid rows than this fraction makes the run fail, whatever ``on_error`` says."""
    contract: bool = True
    """Check the data contract (types, nullability, ranges, categories, uniqueness)."""
    checks: list[Check] = Field(default_factory=list)
    """Declared checks, on top of the contract."""


# --------------------------------------------------------------------------- profile


class ProfileSection(Section):
    """The exploration and quality report."""

    bins: int = Field(default=30, ge=2, le=500)
    """Histogram bins for numeric columns."""
    top_values: int = Field(default=10, ge=1, le=100)
    """How many of the most frequent values to show per column."""
    sample: int | None = Field(default=None, gt=0)
    """Profile a seeded sample of this many rows (statistics on all rows otherwise)."""
    correlation_columns: int = Field(default=30, ge=2)
    """Correlations are computed among at most this many numeric columns."""


# --------------------------------------------------------------------------- features


class NumericFeatures(Section):
    """Numeric columns."""

    impute: Literal["median", "mean", "zero"] = "median"
    """How missing numbers are filled (a missing-indicator column is added when any are missing)."""
    scale: Literal["standard", "robust", "none"] = "standard"
    """Scaling (tree models are unaffected; linear models and MLPs need it)."""


class CategoricalFeatures(Section):
    """String, boolean and low-cardinality columns."""

    one_hot_max_levels: int = Field(default=15, ge=2)
    """Columns with at most this many levels are one-hot encoded; more use ``high_cardinality``."""
    high_cardinality: Literal["target", "ordinal"] = "target"
    """Encoding of columns with many levels: cross-fitted target encoding, or ordinal codes."""
    rare_min_frequency: float = Field(default=0.01, ge=0, lt=1)
    """Levels rarer than this share are grouped into one "rare" level."""


DatetimePart = Literal["year", "month", "day", "dayofweek", "hour", "dayofyear"]


def _default_parts() -> list[DatetimePart]:
    return ["year", "month", "dayofweek", "hour"]


class DatetimeFeatures(Section):
    """Date and datetime columns become parts."""

    parts: list[DatetimePart] = Field(default_factory=_default_parts)
    """Parts to extract (``hour`` only for datetimes)."""
    cyclical: bool = True
    """Add sine/cosine encodings of month, day of week and hour."""


class TextFeatures(Section):
    """Free-text columns (TF-IDF)."""

    columns: list[str] = Field(default_factory=list)
    """Columns to treat as text."""
    max_features: int = Field(default=2000, ge=1)
    """Vocabulary size per text column."""


class FeatureSelection(Section):
    """Keep the most useful features."""

    method: Literal["none", "variance", "mutual_info", "model"] = "none"
    """``variance`` drops (near-)constant features; ``mutual_info`` and ``model`` keep the top ``k``."""
    k: int = Field(default=50, ge=1)
    """How many features to keep (``mutual_info``, ``model``)."""


class FeaturesSection(Section):
    """Feature engineering: a scikit-learn ColumnTransformer built from the data contract."""

    numeric: NumericFeatures = Field(default_factory=NumericFeatures)
    """Numeric columns."""
    categorical: CategoricalFeatures = Field(default_factory=CategoricalFeatures)
    """Categorical columns."""
    datetime: DatetimeFeatures = Field(default_factory=DatetimeFeatures)
    """Datetime columns."""
    text: TextFeatures = Field(default_factory=TextFeatures)
    """Text columns."""
    custom: list[str] = Field(default_factory=list)
    """User feature functions ``"module:function"`` taking and returning a pandas DataFrame;
    applied first, at training and at prediction time alike."""
    selection: FeatureSelection = Field(default_factory=FeatureSelection)
    """Feature selection."""

    @field_validator("custom")
    @classmethod
    def _module_function(cls, value: list[str]) -> list[str]:
        for ref in value:
            if not re.fullmatch(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*", ref):
                raise ValueError(f"'{ref}' is not of the form 'package.module:function'")
        return value


# --------------------------------------------------------------------------- split


class SplitSection(Section):
    """How the hold-out test set is made (never seen by model selection or tuning)."""

    method: Literal["auto", "random", "stratified", "time", "group", "test_file"] = "auto"
    """``auto``: ``test_file`` when ``data.test`` is set, else ``stratified`` for classification
    and ``random`` for regression; ``time`` trains on the past and tests on the future."""
    test_size: float = Field(default=0.2, gt=0, lt=1)
    """Share of rows held out (random, stratified, group, and time without ``cutoff``)."""
    time_column: str | None = None
    """Column ordering rows in time (defaults to ``data.columns.time``)."""
    cutoff: str | None = None
    """Time split: rows before this date/time train, rows from it on test (e.g. ``2012-01-01``)."""
    group_column: str | None = None
    """Group split: rows of one group never straddle train and test."""
    cv_folds: int = Field(default=5, ge=2, le=20)
    """Folds of the cross-validation on the training set."""


# --------------------------------------------------------------------------- models


ModelName = Literal[
    "dummy", "linear", "random_forest", "hist_gradient_boosting", "xgboost", "lightgbm", "mlp"
]


def _all_models() -> list[ModelName]:
    return [
        "dummy",
        "linear",
        "random_forest",
        "hist_gradient_boosting",
        "xgboost",
        "lightgbm",
        "mlp",
    ]


class ModelsSection(Section):
    """Model exploration: candidates scored by cross-validation into a leaderboard."""

    candidates: list[ModelName] = Field(default_factory=_all_models)
    """Model families to try; ``dummy`` is the baseline every model must beat."""
    metric: str = "auto"
    """Metric to optimise: ``auto`` = roc_auc (binary), f1_macro (multiclass), rmse (regression);
    or any of the task's metrics (e.g. ``pr_auc``, ``log_loss``, ``mae``, ``r2``)."""
    cv_sample: int | None = Field(default=20000, gt=0)
    """Cross-validate exploration on a seeded sample of at most this many training rows."""
    class_weight: Literal["none", "balanced"] = "none"
    """Weight classes inversely to their frequency (imbalanced data)."""
    sample_weight_column: str | None = None
    """A column of per-row training weights (never a feature)."""
    ensemble: bool = True
    """Also try a soft-voting / averaging ensemble of the best tuned candidates."""


class TuningSection(Section):
    """Hyper-parameter optimisation (Optuna) of the best candidates."""

    top_k: int = Field(default=2, ge=0)
    """How many leaderboard leaders to tune (0 = no tuning)."""
    n_trials: int = Field(default=20, ge=1)
    """Trials per candidate: the budget (reproducible with the seed)."""
    timeout: float | None = Field(default=None, gt=0)
    """Optional wall-clock cap per candidate in seconds (honoured and recorded)."""
    pruning: bool = True
    """Stop unpromising trials early (median pruner over CV folds)."""


class EvaluationSection(Section):
    """Evaluation on the hold-out test set."""

    slices: list[str] = Field(default_factory=list)
    """Columns whose values get per-slice metrics (e.g. ``[sex, race]``)."""
    threshold: Literal["default", "f1", "cost"] = "f1"
    """Binary decision threshold: 0.5, the one maximising F1, or minimising cost."""
    cost_ratio: float = Field(default=1.0, gt=0)
    """Cost of a false negative relative to a false positive (``threshold: cost``)."""
    permutation_importance: bool = True
    """Compute permutation importance on (a sample of) the test set."""


class TrackingSection(Section):
    """MLflow tracking and the model registry."""

    uri: str | None = None
    """An MLflow tracking URI (``http://host:5000``); default: SQLite under the workdir."""
    experiment: str | None = None
    """Experiment name (default: the project name)."""
    model_name: str | None = None
    """Registered model name (default: the project name)."""


class GateSection(Section):
    """The promotion gate: what a new model must do to become the champion."""

    min_metric: float | None = None
    """Absolute floor on the test metric (for error metrics such as rmse: a ceiling)."""
    min_improvement: float = 0.0
    """Margin by which it must beat the current champion on the same test data."""
    require_valid_data: bool = True
    """Refuse promotion if validation of the training or test data failed its limits."""


# --------------------------------------------------------------------------- root


class ProjectConfig(Section):
    """The root of modelyard.yaml."""

    version: Literal[1]
    """Format version of this file (this release reads version 1)."""
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    """Project name; names the registered model and the tracking experiment."""
    seed: int = 42
    """Seed of every random choice (sampling, splits, models, tuning)."""
    workdir: ProjectPath = Path(".modelyard")
    """Where artifacts, the cache and the lock live."""
    output_dir: ProjectPath = Path("modelyard-out")
    """Where reports, the quarantine and other user-facing outputs are written."""
    data: DataSection
    """The data."""
    contract: ContractSection = Field(default_factory=ContractSection)
    """The data contract."""
    validation: ValidationSection = Field(default_factory=ValidationSection)
    """Validation with quarantine."""
    profile: ProfileSection = Field(default_factory=ProfileSection)
    """Profile and quality report."""
