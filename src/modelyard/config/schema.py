"""The typed schema of ``modelyard.yaml``.

Every field has a docstring: it is the source of the generated configuration reference
(``docs/configuration.md``) and of the JSON Schema editors use (``modelyard schema``).
Unknown keys are errors. Relative paths resolve from the folder of the yaml file.
"""

from __future__ import annotations

import re
import typing
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    SecretStr,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)

FORMAT_VERSION = 1
"""The version of the modelyard.yaml format this release reads and writes."""

#: Sections of the pipeline that later releases will open. Present in a file, they are
#: rejected with "not yet supported" instead of being silently ignored.
NOT_YET_SUPPORTED: dict[str, str] = {}

#: Keys of earlier drafts, and what replaced them: named in the error instead of "unknown".
MOVED: dict[str, str] = {
    "engine": "compute (executor: serial | local | dask)",
    "tuning.timeout": "models.budget (one wall-clock budget for exploration, tuning and the "
    "final fit)",
}


def _resolve_path(value: Path, info: ValidationInfo) -> Path:
    base = (info.context or {}).get("base_dir")
    if base is not None and not value.is_absolute() and "://" not in str(value):
        return (Path(base) / value).resolve()
    return value


ProjectPath = Annotated[Path, AfterValidator(_resolve_path)]
"""A path; relative paths resolve from the folder of modelyard.yaml."""

_URL_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def is_url(value: object) -> bool:
    """Whether ``value`` is a URL (``s3://bucket/key``, ``kafka://host:9092/topic``), not a path.

    >>> is_url("s3://bucket/data.csv"), is_url("data/train.csv")
    (True, False)
    """
    return isinstance(value, str) and bool(_URL_RE.match(value))


def _path_or_url(value: Any, info: ValidationInfo) -> Path | str:
    if is_url(value):
        return str(value)
    if not isinstance(value, str | Path):
        raise ValueError("expected a path or a URL such as s3://bucket/key")
    return _resolve_path(Path(value), info)


PathOrURL = Annotated[Path | str, PlainValidator(_path_or_url), WithJsonSchema({"type": "string"})]
"""A local path (resolved from the folder of modelyard.yaml) or a URL kept as written
(``s3://``, ``gs://``, any fsspec protocol): ``Path("s3://b/k")`` would collapse the ``//``."""

_SECRET_KEY = re.compile(r"secret|passw|token|key|credential", re.IGNORECASE)

StorageOptions = dict[str, str | SecretStr | bool | int | float]
"""fsspec storage options; values of keys that look secret are :class:`~pydantic.SecretStr`."""


def _hide_secrets(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            k: SecretStr(v) if isinstance(v, str) and _SECRET_KEY.search(str(k)) else v
            for k, v in value.items()
        }
    return value


def plain_options(options: StorageOptions) -> dict[str, Any]:
    """The options with secrets revealed, to hand to fsspec (never to a log)."""
    return {k: v.get_secret_value() if isinstance(v, SecretStr) else v for k, v in options.items()}


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
        missing: dict[str, Any] = {}
        for name, field in cls.model_fields.items():
            ann = field.annotation
            if field.is_required() or not (isinstance(ann, type) and issubclass(ann, BaseModel)):
                continue
            if (field.alias or name) not in data and name not in data:
                missing[field.alias or name] = {}
        return {**data, **missing} if missing else data


# --------------------------------------------------------------------------- data


_STRFTIME = set("aAbBcCdDeFgGhHIjklmMnpPrRsStTuUVwWxXyYzZf+%")
"""The directive letters of a strftime format (chrono's, which polars uses)."""


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
    """Text encoding of the file. A file that starts with a UTF-16 byte-order mark (Excel's
    "Unicode Text") is read as UTF-16, whatever this says."""
    strip_whitespace: bool = False
    """Strip spaces around every string value (for files separated by ``", "``)."""
    sheet: int | str | None = None
    """Excel workbooks (``.xlsx``, ``.xls``, ``.ods``; the ``excel`` extra): the sheet to read, by
    name or by position counting from 1 (default: the first)."""
    decimal_comma: bool = False
    """Numbers are written with a decimal comma, as European spreadsheets export them (with
    ``separator: ";"``): a value that is such a number (``54,93``, ``-0,5``, ``1.234,5`` with
    points between thousands) is read as that number; other values are left as they are."""
    parse_dates: list[str] = Field(default_factory=list)
    """Columns to parse as dates or datetimes (ISO 8601 or a format in ``date_format``)."""
    date_format: str | None = None
    """A strftime format (``"%d/%m/%Y"``, ``"%m/%d/%Y %H:%M"``) of the ``parse_dates`` columns
    and the date and datetime ``dtypes``: their values in it are read as dates (datetimes when
    it has a time); other values are judged by validation. Without it, ISO 8601."""
    dtypes: dict[str, Literal["int", "float", "str", "bool", "date", "datetime"]] = Field(
        default_factory=dict
    )
    """Force the type of some columns instead of inferring it."""
    comment_prefix: str | None = None
    """Lines starting with this prefix are skipped."""

    @field_validator("sheet")
    @classmethod
    def _sheet_position(cls, value: int | str | None) -> int | str | None:
        if isinstance(value, int) and value < 1:
            raise ValueError("a sheet's position counts from 1 (or give its name)")
        return value

    @field_validator("date_format")
    @classmethod
    def _valid_date_format(cls, value: str | None) -> str | None:
        if value is None:
            return value
        found = re.findall(r"%[-_0^#]?[:.]?[0-9]?(.)", value)
        bad = [f"%{c}" for c in found if c not in _STRFTIME]
        if bad or not found:
            raise ValueError(
                f"not a strftime format ({'unknown ' + ', '.join(bad) if bad else 'no %'}): "
                'e.g. "%d/%m/%Y" or "%m/%d/%Y %H:%M"'
            )
        return value


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


class SqlSource(Section):
    """A table or a query of a SQL database (any SQLAlchemy URL), read in chunks; values are
    typed through the data contract like any other source."""

    url: SecretStr
    """A SQLAlchemy URL: ``sqlite:///data/app.db`` (relative to modelyard.yaml) or
    ``postgresql://user:${PGPASSWORD}@host:5432/db``. Secret: redacted when shown."""
    table: str | None = None
    """A table (``schema.table`` allowed) to read whole."""
    query: str | None = None
    """A SELECT query to read instead of a table."""
    chunk_size: int = Field(default=50_000, ge=1)
    """Rows fetched per round trip."""

    @field_validator("url")
    @classmethod
    def _sqlite_relative(cls, value: SecretStr, info: ValidationInfo) -> SecretStr:
        url = value.get_secret_value()
        head, sep, rest = url.partition("://")
        if not sep or not re.fullmatch(r"[A-Za-z][A-Za-z0-9+]*", head):
            raise ValueError("expected a SQLAlchemy URL such as sqlite:///file.db")
        base = (info.context or {}).get("base_dir")
        path = rest[1:] if rest.startswith("/") else None
        if (
            base is not None
            and head.startswith("sqlite")
            and path
            and path[0] != "/"
            and path != ":memory:"
        ):
            return SecretStr(f"{head}:///{(Path(base) / path).resolve()}")
        return value

    @model_validator(mode="after")
    def _table_or_query(self) -> SqlSource:
        if (self.table is None) == (self.query is None):
            raise ValueError("give exactly one of 'table' or 'query'")
        return self


class Source(Section):
    """Where a table comes from: a file, a glob of files (local or in an object store), a SQL
    table or query, a dataset written by continuous ingestion, or a dataset bundled with a
    library."""

    path: PathOrURL | None = None
    """A file or a glob (``data/*.csv``), relative to modelyard.yaml; or a URL of any fsspec
    protocol (``s3://bucket/raw/*.parquet``; ``s3`` needs the ``s3`` extra)."""
    storage_options: StorageOptions = Field(default_factory=dict)
    """Options of the object store, e.g. ``{endpoint_url: ..., key: ${AWS_ACCESS_KEY_ID},
    secret: ${AWS_SECRET_ACCESS_KEY}}``; values of keys naming a secret, key, token or
    password are redacted when shown."""
    sql: SqlSource | None = None
    """A SQL table or query."""
    dataset: ProjectPath | None = None
    """A partitioned Parquet dataset written by ``ingest`` (its ``ingest.dataset`` folder):
    the parts committed in its manifest, so a retrain sees the newly ingested rows."""
    builtin: Literal["breast_cancer", "iris", "wine", "diabetes"] | None = None
    """A real dataset bundled with scikit-learn (no download), for trying modelyard out."""
    format: Literal["auto", "csv", "parquet", "json", "ndjson", "excel"] = "auto"
    """File format; ``auto`` decides from the extension (``.data``/``.test``/``.txt`` read as CSV)."""
    read: ReadOptions = Field(default_factory=ReadOptions)
    """Parsing options."""

    @field_validator("storage_options", mode="before")
    @classmethod
    def _secret_options(cls, value: Any) -> Any:
        return _hide_secrets(value)

    @model_validator(mode="after")
    def _one_kind(self) -> Source:
        kinds = [self.path, self.sql, self.dataset, self.builtin]
        if sum(k is not None for k in kinds) != 1:
            raise ValueError("give exactly one of 'path', 'sql', 'dataset' or 'builtin'")
        return self


class TestSource(Section):
    """An explicit hold-out file; read options not given are taken from ``data.source.read``."""

    path: PathOrURL
    """A file or glob with the hold-out rows (or a URL, read with the source's
    ``storage_options``)."""
    format: Literal["auto", "csv", "parquet", "json", "ndjson", "excel"] = "auto"
    """File format, as for the source."""
    read: dict[str, Any] = Field(default_factory=dict)
    """Read options that differ from the source's (e.g. ``skip_rows: 1``)."""

    @field_validator("read")
    @classmethod
    def _known_read_keys(cls, value: dict[str, Any]) -> dict[str, Any]:
        ReadOptions.model_validate(value)  # same keys and types as ReadOptions
        return value


class ColumnRoles(Section):
    """What some columns are. Columns not listed are features (or what the contract infers
    and explains with a ``reason``: an identifier, free text). The contract must agree."""

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
    batch_rows: int = Field(default=500_000, ge=1)
    """Rows per batch of the data stages: tables between steps are Parquet datasets written
    and read one batch at a time, so memory stays flat whatever the table's size. A table of
    fewer rows is one batch, processed whole."""


# --------------------------------------------------------------------------- contract


class ContractSection(Section):
    """The data contract: inferred from the training data, then a file you edit and commit."""

    path: ProjectPath = Path("contract.yaml")
    """Where the contract lives. If the file exists it is used as written (its roles must
    agree with ``data.target`` and ``data.columns``: a difference is an error naming both
    files); if not, it is inferred from the training data and written there after the run."""
    max_categories: int = Field(default=50, ge=1)
    """A string column with at most this many distinct values gets an allowed-values list."""
    range_margin: float = Field(default=0.1, ge=0)
    """Widen inferred numeric ranges by this fraction of their span on each side, so a new
    batch is not quarantined for a value just past the training extremes (drift monitoring
    watches distributions); 0 keeps the exact observed range."""
    min_parsed_share: float = Field(default=0.95, gt=0.5, le=1)
    """A text column (CSV) takes a number, boolean or date type when at least this share of
    its non-missing values read as that type. The rest is junk: the contract says so
    (``unreadable``, ``reason``) and validation quarantines those rows with the reason."""
    near_unique_share: float = Field(default=0.5, gt=0, le=1)
    """A text column whose distinct values are more than ``max_categories`` and at least this
    share of its values is no category: free text (most values of several words) becomes a
    TF-IDF text feature, anything else an identifier (role ``id``, not a feature). The
    contract says which, and why (``reason``)."""


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
    """More invalid rows than this fraction makes the run fail, whatever ``on_error`` says.
    The validation report and the quarantine are written first, so you can inspect them."""
    missing_target: Literal["exclude", "invalid"] = "exclude"
    """Rows whose target is missing: ``exclude`` leaves them out of training (they go to the
    quarantine with the reason ``missing target value`` and are counted apart, not as invalid
    rows); ``invalid`` counts them as invalid rows, like any other missing required value."""
    contract: bool = True
    """Check the data contract (types, nullability, ranges, categories, uniqueness). When
    scoring (``modelyard predict``, ``modelyard serve``) a value outside the training range or
    an unseen category is drift, not an error: the row is scored and flagged."""
    checks: list[Check] = Field(default_factory=list)
    """Declared checks, on top of the contract; enforced on training data, on batch scoring
    and on every request to the prediction server alike (checks that read the target are
    skipped where there is no target)."""


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
    allow_leaky: list[str] = Field(default_factory=list)
    """Columns kept as features although the data profile raises a *critical* leakage alert on
    them (they (almost) determine the target). By default such a column is left out of the
    model and the run report says so; list it here only when it is really known at prediction
    time. The promotion gate still refuses an implausibly perfect model that uses it (see
    ``gate.allow_perfect_score``)."""

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
    "dummy",
    "linear",
    "random_forest",
    "extra_trees",
    "hist_gradient_boosting",
    "xgboost",
    "lightgbm",
    "catboost",
    "mlp",
]


def _all_models() -> list[ModelName]:
    return list(typing.get_args(ModelName))


_DURATION = re.compile(
    r"^\s*(?:(\d+(?:\.\d+)?)\s*h)?\s*(?:(\d+(?:\.\d+)?)\s*m(?:in)?)?"
    r"\s*(?:(\d+(?:\.\d+)?)\s*s)?\s*$"
)


def parse_duration(value: Any) -> float | Literal["auto"]:
    """``auto``, a number of seconds, or a duration such as ``90s``, ``5m``, ``1h30m``.

    >>> parse_duration("5m"), parse_duration("1h30m"), parse_duration(45), parse_duration("auto")
    (300.0, 5400.0, 45.0, 'auto')
    """
    if value == "auto":
        return "auto"
    if isinstance(value, bool):
        raise ValueError("expected auto, seconds, or a duration such as 90s, 5m, 1h30m")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        match = _DURATION.match(str(value)) if isinstance(value, str) else None
        if not match or not any(match.groups()):
            raise ValueError("expected auto, seconds, or a duration such as 90s, 5m, 1h30m")
        h, m, sec = (float(g) if g else 0.0 for g in match.groups())
        seconds = h * 3600 + m * 60 + sec
    if not seconds > 0:
        raise ValueError("a budget must be more than 0 seconds")
    return seconds


Duration = Annotated[
    float | Literal["auto"],
    PlainValidator(parse_duration),
    WithJsonSchema({"anyOf": [{"type": "number"}, {"type": "string"}]}),
]


class ModelsSection(Section):
    """Model search: a portfolio of strong configurations per family, cross-validated into a
    leaderboard, tuned, and blended into a weighted ensemble, within one wall-clock budget."""

    candidates: list[ModelName] = Field(default_factory=_all_models)
    """Model families to try; ``dummy`` is the baseline every model must beat. ``catboost``
    needs the ``modelyard[catboost]`` extra: without it, it is left out (and the report says
    so)."""
    metric: str = "auto"
    """Metric to optimise: ``auto`` = roc_auc (binary), f1_macro (multiclass), rmse (regression);
    or any of the task's metrics (e.g. ``pr_auc``, ``log_loss``, ``mae``, ``r2``)."""
    budget: Duration = "auto"
    """Wall-clock time for exploration, tuning and the final fit together: seconds, or ``90s``,
    ``5m``, ``1h``. ``auto`` sizes it from the table: 30 s up to 40,000 cells (rows x columns),
    growing with the cube root of the cells (2.5 M cells: 2 min). The run report says why the
    search stopped. With ``tuning.n_trials`` set, the search is bounded by trials instead (and
    by this budget only when it is given explicitly)."""
    cv_sample: int | None = Field(default=20000, gt=0)
    """Cross-validate the search on a seeded (stratified) sample of at most this many training
    rows; the final model is fitted on all of them."""
    search_rows: int | Literal["auto"] = "auto"
    """A table of several parts (more rows than ``data.batch_rows``): the search, the gate and
    the families that cannot train out of core use a seeded (stratified) sample of this many
    training rows, drawn part by part; XGBoost and LightGBM are then refitted on every
    training row out of core. ``auto`` sizes it from the budget (1,000 rows per budget second, at least
    ``cv_sample``, at most 250,000 rows and 5 million cells). A table of one part is used
    whole."""
    class_weight: Literal["none", "balanced"] = "none"
    """Weight classes inversely to their frequency (imbalanced data)."""
    sample_weight_column: str | None = None
    """A column of per-row training weights (never a feature)."""
    ensemble: bool = True
    """Blend the best configurations into a weighted ensemble chosen greedily on out-of-fold
    predictions (it is kept only where it beats the best single model)."""

    @field_validator("search_rows")
    @classmethod
    def _enough_rows(cls, value: int | str) -> int | str:
        if isinstance(value, int) and value < 2:
            raise ValueError("search_rows must be at least 2, or auto")
        return value


class TuningSection(Section):
    """Hyper-parameter optimisation (Optuna's TPE, asked and told from the driver, trials
    fitted in parallel) of the best families, starting from their portfolio results."""

    top_k: int = Field(default=2, ge=0)
    """How many of the best families to tune (0 = no tuning)."""
    n_trials: int | None = Field(default=None, ge=1)
    """Trials per tuned family. Set it for an exactly reproducible search (same leaderboard,
    parameters and model on every executor and number of workers); unset, tuning runs until
    the budget's share is spent."""
    pruning: bool = True
    """Successive halving across folds: a trial whose first fold scores below the median of
    earlier trials' first folds stops there."""


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
    beat_baseline: bool = True
    """Refuse a model that is no better, on the test data, than the baseline: the ``dummy``
    model, which predicts the training class shares (or the mean) for every row. Such a model
    has learnt nothing from its features, whatever else it passes."""
    require_valid_data: bool = True
    """Refuse promotion if validation of the training or test data failed its limits."""
    champion_not_comparable: Literal["refuse", "skip"] = "refuse"
    """What to do when the champion cannot be scored on the new test data (it takes a column
    the data no longer has, its inputs no longer parse, or it uses a column now excluded as
    leakage): ``refuse`` keeps the champion and registers the candidate as the challenger
    (promote it by hand with ``modelyard models promote VERSION --force``); ``skip`` drops the
    champion check and lets the other checks decide."""
    perfect_score: float = Field(default=0.999, gt=0, le=1)
    """A test ``roc_auc``, ``pr_auc``, ``accuracy``, ``f1``, ``f1_macro`` or ``r2`` at or above
    this is implausibly perfect: while a leakage alert of the data profile stands on one of the
    model's inputs, the gate refuses such a model (unless ``allow_perfect_score``)."""
    allow_perfect_score: bool = False
    """Let an implausibly perfect model be promoted although a leakage alert stands on one of
    its inputs (a target that really is that easy to predict)."""
    max_p99_ms: float | None = Field(default=None, gt=0)
    """Latency ceiling: the 99th percentile, in milliseconds, of single-row predictions through
    the serving path (record check + features + model, no HTTP), measured at register time on
    ``latency_rows`` rows of the test set. ``null``: measured and recorded, not enforced."""
    latency_rows: int = Field(default=200, ge=0)
    """Test rows predicted one at a time to measure the latency (after a short warm-up);
    ``0`` skips the measurement (``max_p99_ms`` must then be unset)."""

    @model_validator(mode="after")
    def _latency_needs_rows(self) -> GateSection:
        if self.max_p99_ms is not None and self.latency_rows == 0:
            raise ValueError(
                "gate.max_p99_ms needs a latency measurement: set gate.latency_rows above 0"
            )
        return self


class PredictionLogSection(Section):
    """The prediction log of the server: every request, served or rejected (monitoring input).
    Records lost (queue full, a failed write) are counted in
    ``modelyard_prediction_log_dropped_total``; ``/ready`` answers 503 while writes fail."""

    path: ProjectPath = Path("modelyard-out/prediction-log")
    """Folder of the log's segment files (SQLite, WAL mode), one writer per server process."""
    format: Literal["sqlite"] = "sqlite"
    """Storage format of a segment (SQLite in WAL mode: each commit is durable)."""
    rotate_bytes: int = Field(default=256 * 1024 * 1024, ge=4096)
    """Start a new segment when the current one reaches this many bytes."""
    rotate_rows: int = Field(default=1_000_000, ge=1)
    """Start a new segment after this many logged rows."""
    queue_size: int = Field(default=10_000, ge=1)
    """Records waiting for the background writer; when it is full a request waits at most
    ``max_wait_ms``, then its record is dropped and counted
    (``modelyard_prediction_log_dropped_total``)."""
    max_wait_ms: float = Field(default=50.0, ge=0)
    """Longest a request waits for room in the writer's queue."""
    enabled: bool = True
    """Write the log at all."""


class ReloadSection(Section):
    """Switching to a new version when the served alias moves."""

    poll_seconds: float = Field(default=30.0, ge=0)
    """How often each server process asks the registry where the alias points (0: never;
    ``POST /reload`` always works)."""


class ServingSection(Section):
    """The prediction server (``modelyard serve``) and its build context (``modelyard package``)."""

    model: str | None = None
    """What to serve: ``NAME@ALIAS`` or ``NAME/VERSION`` (default: the project's champion)."""
    host: str = "127.0.0.1"
    """Interface to listen on (``0.0.0.0`` in a container)."""
    port: int = Field(default=8080, ge=1, le=65535)
    """TCP port."""
    workers: int = Field(default=1, ge=1)
    """Server processes (each loads the model once; metrics are aggregated across them)."""
    server: Literal["uvicorn", "granian"] = "uvicorn"
    """The ASGI server (``granian`` must be installed separately)."""
    lenient: bool = False
    """Predict what can be predicted and flag contract violations, instead of answering 422."""
    auth_token: SecretStr | None = None
    """Bearer token required on /predict, /invocations, /feedback, /model and /reload; give it
    through the environment (``auth_token: ${MODELYARD_SERVING_TOKEN}``). Never logged."""
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    """Largest request body accepted (413 beyond)."""
    max_batch_rows: int = Field(default=10_000, ge=1)
    """Most records in one request (413 beyond)."""
    max_concurrency: int = Field(default=256, ge=1)
    """Requests in flight per process; beyond, the server answers 503 at once (load shedding)."""
    prediction_log: PredictionLogSection = Field(default_factory=PredictionLogSection)
    """The prediction log."""
    reload: ReloadSection = Field(default_factory=ReloadSection)
    """Following the alias to new versions."""


# --------------------------------------------------------------------------- ingest


class KafkaSecurity(Section):
    """How the consumer authenticates to the brokers (librdkafka's security settings)."""

    protocol: Literal["plaintext", "ssl", "sasl_plaintext", "sasl_ssl"] = "plaintext"
    """``security.protocol``."""
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    """``sasl.mechanism`` (with a ``sasl_*`` protocol)."""
    username: str | None = None
    """``sasl.username``."""
    password: SecretStr | None = None
    """``sasl.password``; write ``${KAFKA_PASSWORD}``. Redacted when shown."""
    ssl_ca: ProjectPath | None = None
    """``ssl.ca.location``: the CA certificate file."""
    ssl_certificate: ProjectPath | None = None
    """``ssl.certificate.location``: the client certificate (mutual TLS)."""
    ssl_key: ProjectPath | None = None
    """``ssl.key.location``: the client key (mutual TLS)."""
    ssl_key_password: SecretStr | None = None
    """``ssl.key.password``. Redacted when shown."""


class KafkaOptions(Section):
    """The Kafka consumer."""

    group_id: str | None = None
    """Consumer group (default ``modelyard-<name>``). Offsets committed to the group are only a
    convenience for monitoring: the dataset's manifest is the source of truth."""
    start: Literal["earliest", "latest"] = "earliest"
    """Where to start in a partition the dataset has never read."""
    security: KafkaSecurity = Field(default_factory=KafkaSecurity)
    """Authentication and encryption."""
    settings: dict[str, str | int | float | bool] = Field(default_factory=dict)
    """Further librdkafka consumer settings (``fetch.max.bytes``, ...)."""


class IngestSection(Section):
    """Continuous ingestion (``modelyard ingest --follow``): micro-batches from a Kafka topic
    or a watched folder, validated against the contract, appended exactly once to a partitioned
    Parquet dataset; invalid records go to the quarantine with their raw payload."""

    from_: PathOrURL = Field(alias="from")
    """``kafka://host:port/topic`` (brokers comma-separated), or a folder / glob / object-store
    prefix (``s3://bucket/incoming/``) whose new files are ingested once each."""
    kafka: KafkaOptions = Field(default_factory=KafkaOptions)
    """Consumer options (Kafka only)."""
    decoder: str = "json"
    """How a Kafka message becomes a record: ``json`` (one JSON object), or
    ``package.module:function`` taking the value's bytes and returning a mapping."""
    format: Literal["auto", "csv", "parquet", "json", "ndjson", "excel"] = "auto"
    """Format of the files of a watched folder (``auto``: from the extension)."""
    read: ReadOptions = Field(default_factory=ReadOptions)
    """Parsing options of the files of a watched folder."""
    storage_options: StorageOptions = Field(default_factory=dict)
    """Object-store options of a watched prefix (as ``data.source.storage_options``)."""
    max_rows: int = Field(default=10_000, ge=1)
    """A micro-batch is committed when it holds this many records ..."""
    max_seconds: float = Field(default=5.0, gt=0)
    """... or when its first record is this old."""
    max_message_bytes: int = Field(default=1_048_576, ge=1)
    """Larger messages go to the quarantine (whole) instead of being parsed."""
    poll_seconds: float = Field(default=1.0, gt=0)
    """How often a watched folder is listed."""
    settle_seconds: float = Field(default=2.0, ge=0)
    """A local file modified more recently than this is left for a later listing (it may still
    be being written)."""
    dataset: ProjectPath = Path("data/ingested")
    """The output dataset: Parquet parts under ``partition=value/`` folders and the manifest
    ``_manifest.json``, the commit point. Use it as ``data.source.dataset`` to train on it."""
    partition_by: str = "ingestion_date"
    """``ingestion_date`` (UTC date of the batch) or a column of the data."""
    quarantine: ProjectPath | None = None
    """Where invalid records go (Parquet parts, committed with the same manifest); default
    ``<dataset>/_quarantine``."""

    @field_validator("storage_options", mode="before")
    @classmethod
    def _secret_options(cls, value: Any) -> Any:
        return _hide_secrets(value)

    @field_validator("from_")
    @classmethod
    def _kafka_url(cls, value: Path | str) -> Path | str:
        if isinstance(value, str) and value.startswith("kafka://"):
            brokers, _, topic = value[len("kafka://") :].partition("/")
            if not brokers or not topic.strip("/"):
                raise ValueError("expected kafka://host:port/topic")
        return value

    @field_validator("decoder")
    @classmethod
    def _decoder_ref(cls, value: str) -> str:
        if value != "json" and not re.fullmatch(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*", value):
            raise ValueError(
                f"'{value}' is neither 'json' nor of the form 'package.module:function'"
            )
        return value


# --------------------------------------------------------------------------- monitoring


class DriftThresholds(Section):
    """When a feature (or the target, or the predictions) has drifted.

    A signal counts when its effect size is material **and** beyond sampling noise. Material:
    the effect size crosses its threshold below (a p-value alone would flag negligible shifts at
    a million rows). Beyond noise: the test beside it (Kolmogorov-Smirnov for numbers,
    chi-squared for categories, a two-proportion z-test for the missing share) has a p-value
    under ``p_value`` (an effect size alone flags chance differences in small windows: two
    samples of 100 rows of one population score Wasserstein 0.19 and PSI 0.2 on average). The
    thresholds of the three distances match on a common yardstick, a location shift of ``d``
    standard deviations of a normal variable: Wasserstein 0.2 is ``d = 0.2``, Jensen-Shannon
    0.1 is ``d = 0.24``, PSI 0.2 is ``d = 0.45`` (PSI is the coarser, shape-change signal).
    """

    psi: float = Field(default=0.2, gt=0)
    """Population stability index over reference-quantile bins (numbers) or categories; the
    usual reading is < 0.1 stable, 0.1-0.2 moderate, > 0.2 a real shift. Two samples of one
    population score about ``(bins - 1) * (1/n + 1/m)`` by chance (0.18 for 10 bins at 100
    rows each); ``p_value`` keeps such chance scores from counting."""
    wasserstein: float = Field(default=0.2, gt=0)
    """Wasserstein (earth mover's) distance divided by the reference standard deviation (by 1
    when it is 0): the mass moved this many standard deviations on average. For a shifted normal
    variable it equals Cohen's ``d``; 0.2 is Cohen's "small" effect, the least conventionally
    called an effect (0.1 flagged negligible changes, such as an ordinal target whose mean moved
    by 0.01 with PSI 0.025; bench/README.md compares the verdicts with Evidently's)."""
    jensen_shannon: float = Field(default=0.1, gt=0, le=1)
    """Jensen-Shannon distance (base 2, 0..1) between category shares (0.1 is ``d = 0.24`` on
    ten equal bins of a normal). Evidently's distance uses the natural logarithm: its 0.1 is
    0.12 here. Sparse categories score high by chance (about 0.16 for 200 categories at 3,000
    rows a side); ``p_value`` keeps such chance scores from counting."""
    missing_rate: float = Field(default=0.1, gt=0, le=1)
    """Absolute change of the share of missing values (its own signal)."""
    new_category_rate: float = Field(default=0.05, gt=0, le=1)
    """Share of a window's values that are categories never seen in the reference."""
    p_value: float = Field(default=0.01, gt=0, le=1)
    """A material effect counts only when its test's p-value is below this (the chance of a
    false alarm per signal when nothing changed); 1 judges on effect size alone. With more than
    a few thousand rows a side every material effect passes, so the effect size decides."""
    share: float = Field(default=0.5, gt=0, le=1)
    """The dataset has drifted when at least this share of its features has (the target is
    reported apart, as label drift, and does not count)."""


class WindowSection(Section):
    """How the prediction log is cut into windows."""

    by: Literal["auto", "event_time", "arrival_time", "rows"] = "auto"
    """``auto``: event time when the contract has a time column, else arrival time."""
    size: str = "1d"
    """Window length for time windows (polars duration: ``1h``, ``1d``, ``1w``, ``1mo``), or a
    number of rows (``by: rows``)."""


class RetrainSection(Section):
    """The closed loop: retrain on reference + newly labelled rows when monitoring says so."""

    on: Literal["never", "drift", "performance", "either"] = "either"
    """Which signal triggers a retrain (``modelyard monitor --retrain``)."""
    min_labelled_rows: int = Field(default=100, ge=1)
    """Labelled rows (feedback) needed before a retrain is attempted."""


class LabelsSection(Section):
    """The label loop: the annotation queue, labels in and out of annotation tools, and the
    label set the pipeline trains on (see docs/labels.md)."""

    path: ProjectPath = Path("labels")
    """Folder of the label set: append-only, versioned JSON-lines files of every accepted
    label (with annotator and time), the saved queues, and the quarantine of rejected labels.
    Once it holds labels, the pipeline trains on the source data plus them, and a new version
    re-runs the pipeline from the data step."""
    key: list[str] = Field(default_factory=list)
    """Columns that identify a row: what an imported label is matched back on. Empty:
    ``data.columns.id`` if set, else a digest of the row's feature values."""
    conflict: Literal["majority", "latest", "hold"] = "majority"
    """When annotators give one row different labels (each annotator's latest label counts):
    ``majority`` takes the most frequent (the median for a regressor; a tie is held),
    ``latest`` the most recent, ``hold`` keeps the row out of training for review."""
    uncertainty: Literal["entropy", "margin"] = "entropy"
    """How the queue measures a classifier's uncertainty of a row: normalised entropy of its
    probabilities, or one minus the margin between its two most likely classes."""
    pool: int = Field(default=10, ge=1)
    """The queue's diversity step (k-center over the model's features) looks at the
    ``pool`` x budget most uncertain rows."""


class MonitoringSection(Section):
    """Drift and performance from the prediction log (``modelyard monitor``)."""

    reference: PathOrURL | None = None
    """The reference data (default: the training data, ``data.source``)."""
    windows: WindowSection = Field(default_factory=WindowSection)
    """How the log is cut into windows."""
    thresholds: DriftThresholds = Field(default_factory=DriftThresholds)
    """Thresholds of the drift verdicts (effect sizes, and the p-value that rules out noise)."""
    min_rows: int = Field(default=100, ge=1)
    """A window with fewer rows gets "insufficient data", no verdict."""
    performance_drop: float = Field(default=0.05, ge=0)
    """Alert (and retrain) when the windowed primary metric (``models.metric``) is worse than
    the model's test score by more than this, in the metric's units (0.05 = five points of
    accuracy or ROC-AUC; for rmse or mae use a value in the target's units). Classifiers: the
    metric estimated before labels (from calibrated probabilities) alerts on the same threshold
    (the alert only; retraining waits for labels)."""
    retrain: RetrainSection = Field(default_factory=RetrainSection)
    """The retraining trigger."""
    port: int = Field(default=9108, ge=1, le=65535)
    """Port of the ``modelyard monitor --serve`` exporter (on ``serving.host``)."""
    interval_seconds: float = Field(default=60.0, gt=0)
    """How often ``monitor --serve`` re-reads the log."""


# --------------------------------------------------------------------------- root


class ComputeSection(Section):
    """Where model fits run. Every fit (a model configuration on one fold) is a task; tasks run
    side by side, each on one thread. Results do not depend on the executor."""

    executor: Literal["serial", "local", "dask"] = "local"
    """``local``: a process pool on this machine's cores; ``serial``: one fit after another in
    this process; ``dask``: a Dask cluster (the ``modelyard[dask]`` extra)."""
    workers: int | Literal["auto"] = "auto"
    """``local``: worker processes (``auto``: one per available core); ``dask`` without an
    address: processes of the LocalCluster started for the run. Ignored with an address."""
    address: str | None = None
    """``dask``: the scheduler's address (``tcp://host:8786``); unset, a LocalCluster is
    started on 127.0.0.1 for the run and stopped after. The scheduler and every worker need
    modelyard (and any module of ``features.custom``) installed, at the driver's version."""

    @field_validator("workers")
    @classmethod
    def _positive(cls, value: int | str) -> int | str:
        if isinstance(value, int) and value < 1:
            raise ValueError("workers must be at least 1, or auto")
        return value

    @model_validator(mode="after")
    def _address_needs_dask(self) -> ComputeSection:
        if self.address is not None and self.executor != "dask":
            raise ValueError("'address' is the Dask scheduler's: set executor: dask with it")
        return self


class ProjectConfig(Section):
    """The root of modelyard.yaml."""

    version: Literal[1]
    """Format version of this file (this release reads version 1)."""
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    """Project name; names the registered model and the tracking experiment."""
    seed: int = 42
    """Seed of every random choice (sampling, splits, models, tuning)."""
    workdir: ProjectPath = Path(".modelyard")
    """This machine's working folder: the artifact store (unless ``store`` is set, then its
    local cache), the fit cache, the lock, the default MLflow store."""
    store: PathOrURL | None = None
    """Where step outputs (artifacts), the record of each step's last key and the lock live:
    a folder, or a URL of any fsspec protocol (``s3://bucket/prefix``; ``s3`` needs the ``s3``
    extra) that several machines share, e.g. the steps of a Kubeflow pipeline. Default: the
    workdir. Overridden by ``modelyard run --store`` and the ``MODELYARD_STORE`` environment
    variable (the flag first). See docs/store.md."""
    store_options: StorageOptions = Field(default_factory=dict)
    """Options of the store's object store (as ``data.source.storage_options``), e.g.
    ``{endpoint_url: ${S3_ENDPOINT}}``; unset ones come from the usual environment variables
    of the protocol's package (``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``,
    ``AWS_ENDPOINT_URL`` for s3fs)."""
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
    features: FeaturesSection = Field(default_factory=FeaturesSection)
    """Feature engineering and selection."""
    split: SplitSection = Field(default_factory=SplitSection)
    """The hold-out split and cross-validation folds."""
    models: ModelsSection = Field(default_factory=ModelsSection)
    """Model exploration and selection."""
    tuning: TuningSection = Field(default_factory=TuningSection)
    """Hyper-parameter tuning."""
    compute: ComputeSection = Field(default_factory=ComputeSection)
    """Where model fits run: this machine's cores, or a Dask cluster."""
    evaluation: EvaluationSection = Field(default_factory=EvaluationSection)
    """Evaluation on the hold-out test set."""
    tracking: TrackingSection = Field(default_factory=TrackingSection)
    """MLflow tracking and the model registry."""
    gate: GateSection = Field(default_factory=GateSection)
    """The promotion gate."""
    ingest: IngestSection | None = None
    """Continuous ingestion from Kafka or a watched folder."""
    serving: ServingSection = Field(default_factory=ServingSection)
    """The prediction server and its build context."""
    monitoring: MonitoringSection = Field(default_factory=MonitoringSection)
    """Drift and performance monitoring, alerts and retraining."""
    labels: LabelsSection = Field(default_factory=LabelsSection)
    """The label loop: annotation queue, label import and export, the label set."""

    @field_validator("store_options", mode="before")
    @classmethod
    def _secret_options(cls, value: Any) -> Any:
        return _hide_secrets(value)
