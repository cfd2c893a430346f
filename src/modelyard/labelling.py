"""The label loop for a project: the same functions the ``modelyard label`` commands call.

::

    from modelyard import Project
    from modelyard import labelling

    project = Project.from_yaml("modelyard.yaml")
    queue = labelling.build_queue(project, data="unlabelled.csv", budget=200)
    labelling.export_queue(project, "labelbox", out="to-label/")
    result = labelling.import_labels(project, "labelbox", "export.ndjson")
    print(labelling.status(project).to_dict())
    project.run()        # trains on the source data plus the accepted labels

It sits just above :mod:`modelyard.recipe` (it takes a :class:`~modelyard.recipe.Project`):
it loads the champion (ops), reads rows (data) and calls the pure pieces of
:mod:`modelyard.labels`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelyard.errors import DataError, ModelyardError
from modelyard.labels.keys import KEY, row_keys
from modelyard.labels.records import LabelSpec, QueueItem

if TYPE_CHECKING:
    import numpy as np
    import polars as pl

    from modelyard.data.contract import DataContract
    from modelyard.labels.validate import Quarantined
    from modelyard.recipe import Project

QUEUES = "queues"
QUARANTINE = "quarantine"
SPEC = "spec.json"
LABELLED_ANCHORS = 2000
"""At most this many already-labelled rows count as chosen centres in the queue's k-center."""


# ----------------------------------------------------------------------------- the champion


@dataclass
class Champion:
    """The champion's pipeline, version and contract, as the queue uses them."""

    pipeline: Any
    features: list[str]
    task: str
    classes: list[str] | None
    version: str
    model: str


def load_champion(project: Project) -> Champion:
    """The project's champion, unwrapped to its scikit-learn pipeline."""
    registry = project.registry()
    info = registry.champion()
    if info is None:
        raise ModelyardError(
            f"model '{registry.model_name}' has no champion: the queue ranks rows by its uncertainty",
            where=registry.tracking_uri,
            fix="Train a model first (modelyard run), or promote one (modelyard models promote).",
        )
    loaded = registry.load_version(info.version)
    # the native flavour is the pipeline with its features; an older model is a pyfunc wrapper
    unwrap = getattr(loaded, "unwrap_python_model", None)
    wrapper = unwrap() if unwrap is not None else loaded
    return Champion(
        wrapper.pipeline, list(wrapper.features), wrapper.task, wrapper.classes,
        str(info.version), registry.model_name,
    )  # fmt: skip


def label_spec(project: Project, champion: Champion | None = None) -> LabelSpec:
    """What a label must be: the contract's target and type, the champion's classes.

    Saved in the label set's folder by :func:`build_queue`, so import and export need no
    model; computed from the contract and the champion when it is not there yet.
    """
    saved = _labels_dir(project) / SPEC
    if champion is None and saved.is_file():
        return _read_spec(saved)
    contract = _contract(project)
    if contract.target is None or contract.task is None:
        raise ModelyardError(
            "the data contract has no target: there is nothing to label",
            where=str(project.config.contract.path), fix="Set data.target in modelyard.yaml.",
        )  # fmt: skip
    champion = champion or load_champion(project)
    classes: tuple[Any, ...] | None = None
    if contract.task != "regression":
        target_type = contract.column(contract.target).type
        names = champion.classes or contract.column(contract.target).categories or []
        classes = tuple(_typed(c, target_type) for c in names)
    config = project.config
    return LabelSpec(
        target=contract.target, task=contract.task, classes=classes,
        key_columns=tuple(config.labels.key or config.data.columns.id),
        features=tuple(c.name for c in contract.features),
    )  # fmt: skip


def _typed(value: str, column_type: str) -> Any:
    if column_type == "int":
        try:
            return int(value)
        except ValueError:
            return value
    if column_type == "bool":
        return {"true": True, "false": False}.get(str(value).lower(), value)
    return value


# ----------------------------------------------------------------------------- the queue


@dataclass
class QueueResult:
    """A queue: its items, best first, and what was left out."""

    items: list[QueueItem]
    file: Path
    rows: int
    """unlabelled rows considered"""
    skipped: dict[str, int] = field(default_factory=dict)
    """reason -> rows left out of the ranking (already labelled, invalid, duplicate key)"""
    method: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": str(self.file), "rows": self.rows, "queued": len(self.items),
            "skipped": self.skipped, "method": self.method,
            "items": [_item_json(i) for i in self.items],
        }  # fmt: skip


def build_queue(
    project: Project,
    *,
    data: str | Path | None = None,
    dataset: bool = False,
    log: str | Path | None = None,
    budget: int = 100,
) -> QueueResult:
    """Rank unlabelled rows by how much a label would help, and save the queue.

    Exactly one input: ``data`` (a file read like the training data), ``dataset`` (the
    project's own data source, its rows without a target) or ``log`` (the serving
    prediction log folder). Rows already in the label set or labelled in the training data,
    rows whose key is null, and rows the contract rejects are left out (counted in
    ``skipped``). ``budget``: the top N (the greedy k-center costs rows x budget distances).
    """
    import numpy as np

    from modelyard.labels.queue import select

    chosen = [x for x in (data is not None, dataset, log is not None) if x]
    if len(chosen) != 1:
        raise ModelyardError(
            "the queue takes exactly one input",
            expected="one of --data FILE, --dataset or --log [FOLDER]",
            found=f"{len(chosen)}",
        )
    if budget < 1:
        raise ModelyardError("the budget must be at least 1", where="--budget", found=str(budget))
    champion = load_champion(project)
    spec = label_spec(project, champion)
    frame, skipped = _unlabelled_rows(project, spec, data=data, dataset=dataset, log=log)
    if frame.height == 0:
        raise ModelyardError(
            "there are no unlabelled rows to queue",
            found=", ".join(f"{n} {why}" for why, n in skipped.items()) or "no rows",
            fix="Give rows without a label (--data FILE, --dataset or --log).",
        )
    signals = score(champion, frame, spec, project.config.labels.uncertainty)
    anchors = _labelled_features(project, champion, spec)
    keys = frame[KEY].to_list()
    n = min(budget, frame.height)
    picks = select(
        signals.features, signals.scores, n, keys=keys, labelled=anchors,
        pool=project.config.labels.pool * n,
    )  # fmt: skip
    rows = frame.drop(KEY).to_dicts()
    items = []
    for rank, pick in enumerate(picks, 1):
        i = pick.index
        proba = None
        if signals.probabilities is not None and champion.classes is not None:
            proba = {
                c: float(p) for c, p in zip(champion.classes, signals.probabilities[i], strict=True)
            }
        prediction = signals.predictions[i]
        items.append(
            QueueItem(
                key=keys[i], row=rows[i], score=round(pick.priority, 6),
                reason=_reason(rank, pick, signals.method, signals.scores[i]),
                model_version=f"{champion.model}/{champion.version}",
                prediction=prediction.item() if isinstance(prediction, np.generic) else prediction,
                probabilities=proba,
            )
        )  # fmt: skip
    if len(picks) < n:  # every candidate left was at distance 0 of a chosen or labelled row
        considered = min(frame.height, project.config.labels.pool * n)
        skipped["near-duplicates of a chosen or labelled row"] = considered - len(picks)
    file = _save_queue(project, items, spec)
    return QueueResult(items, file, frame.height, skipped, signals.method)


def _reason(rank: int, pick: Any, method: str, raw: float) -> str:
    near = (
        "first pick"
        if pick.distance == float("inf")
        else f"distance {pick.distance:.3g} to the nearest chosen or labelled row"
    )
    return f"#{rank}: {method} {raw:.3g}; {near}; priority {pick.priority:.3g}"


@dataclass
class Signals:
    """What the champion says about rows: how unsure it is, and where they lie for it."""

    scores: np.ndarray
    features: np.ndarray
    predictions: np.ndarray
    probabilities: np.ndarray | None
    method: str


def score(champion: Champion, frame: pl.DataFrame, spec: LabelSpec, measure: str) -> Signals:
    """The champion's uncertainty of each row and the rows in its preprocessed feature space.

    A classifier: ``measure`` (entropy or margin) of its probabilities. A regressor: the
    spread (standard deviation) of its ensemble members' predictions, or of a random
    forest's trees'; a model with neither gives every row the same score and says so, and
    the queue is ordered by diversity alone.
    """
    import numpy as np

    from modelyard.labels.queue import spread, uncertainty

    X = frame.select(champion.features).to_pandas()
    pipeline = champion.pipeline
    steps = getattr(pipeline, "steps", None)
    prep = pipeline[:-1] if steps and len(steps) > 1 else None
    final = pipeline[-1] if steps else pipeline
    try:
        Xt = prep.transform(X) if prep is not None else X.to_numpy()
        Xt = Xt.toarray() if hasattr(Xt, "toarray") else np.asarray(Xt)
        features = np.asarray(Xt, dtype=np.float64)
        if champion.classes is not None:
            proba = np.asarray(final.predict_proba(Xt), dtype=np.float64)
            classes = np.asarray(champion.classes, dtype=object)
            return Signals(uncertainty(proba, measure), features,  # type: ignore[arg-type]
                           classes[np.argmax(proba, axis=1)], proba, measure)  # fmt: skip
        predictions = np.asarray(final.predict(Xt), dtype=np.float64)
        members = _members(final)
        if members:
            per = np.stack([np.asarray(m.predict(Xt), dtype=np.float64) for m in members])
            what = f"spread of {len(members)} {'ensemble members' if hasattr(final, 'members_') and len(getattr(final, 'members_', [])) > 1 else 'trees'}"
            return Signals(spread(per), features, predictions, None, what)
    except (ValueError, TypeError) as exc:
        raise DataError(
            f"the champion cannot score these rows ({exc})",
            expected=f"rows with the champion's features {champion.features[:10]}",
        ) from None  # fmt: skip
    return Signals(np.ones(len(predictions)), features, predictions, None,
                   "no spread (the champion is one model without trees): diversity alone")  # fmt: skip


def _members(final: Any) -> list[Any]:
    """The models whose predictions spread: an ensemble's members, or a forest's trees."""
    members = getattr(final, "members_", None)
    if members and len(members) >= 2:
        return [m for _, m in members]
    single = members[0][1] if members else final
    trees = getattr(single, "estimators_", None)
    if isinstance(trees, list) and len(trees) >= 2 and all(hasattr(t, "predict") for t in trees):
        return trees
    return []


def _unlabelled_rows(
    project: Project, spec: LabelSpec, *, data: str | Path | None, dataset: bool,
    log: str | Path | None,
) -> tuple[pl.DataFrame, dict[str, int]]:  # fmt: skip
    """The rows to rank, with their keys; and how many were left out, by reason."""
    import polars as pl

    from modelyard.labels.store import LabelSet

    config = project.config
    skipped: dict[str, int] = {}
    if log is not None:
        from modelyard.ops.monitoring.log import read_prediction_log

        folder = Path(log) if str(log) else config.serving.prediction_log.path
        rows = read_prediction_log(folder, contract=_contract(project)).rows
        served = rows["status"] == "served"
        if not served.all():  # a rejected request's values did not pass the contract
            skipped["rejected requests"] = int((~served).sum())
            rows = rows.filter(served)
        present = [c for c in spec.features if c in rows.columns]
        keys = list(spec.key_columns) if all(c in rows.columns for c in spec.key_columns) else []
        frame = rows.select(*present, *[c for c in keys if c not in present])
        if spec.key_columns and not keys:  # the log has no id columns: a digest of the features
            frame = frame.with_columns(row_keys(frame, [], spec.features))
        else:
            frame = frame.with_columns(row_keys(frame, keys, spec.features))
    else:
        frame = _read_rows(project, Path(data) if data is not None else None)
        if spec.target in frame.columns:
            has = frame[spec.target].is_not_null() & (frame[spec.target].cast(pl.String) != "")
            if dataset or data is not None:
                skipped["already labelled in the data"] = int(has.sum())
                frame = frame.filter(~has)
        _check_features(frame, spec, str(data) if data is not None else "data.source")
        frame = frame.with_columns(row_keys(frame, spec.key_columns, spec.features))
    frame, invalid = _valid_rows(project, frame, spec)
    if invalid:
        skipped["rejected by the data contract"] = invalid
    nulls = frame[KEY].is_null()
    if nulls.any():
        skipped["no key (a key column is null)"] = int(nulls.sum())
        frame = frame.filter(~nulls)
    labelled = {r.key for r in LabelSet(_labels_dir(project)).read()}
    done = frame[KEY].is_in(list(labelled))
    if done.any():
        skipped["already in the label set"] = int(done.sum())
        frame = frame.filter(~done)
    if not dataset:
        trained = frame[KEY].is_in(list(_source_labelled_keys(project, spec)))
        if trained.any():
            skipped["already labelled in the training data"] = int(trained.sum())
            frame = frame.filter(~trained)
    before = frame.height
    frame = frame.unique(KEY, keep="first", maintain_order=True)
    if frame.height < before:
        skipped["repeated key"] = before - frame.height
    return frame, skipped


def _check_features(frame: pl.DataFrame, spec: LabelSpec, where: str) -> None:
    from modelyard.errors import name_list

    missing = [c for c in spec.features if c not in frame.columns]
    if missing:
        raise DataError(
            f"the rows lack the model's feature column(s) {name_list(missing)}", where=where,
            expected=f"the columns {name_list(spec.features)}",
            found=f"the columns {name_list(frame.columns)}",
        )  # fmt: skip


def _source_labelled_keys(project: Project, spec: LabelSpec) -> set[str]:
    """The keys of the training data's rows that have a label."""
    try:
        source = _read_rows(project, None)
    except ModelyardError:
        return set()
    if spec.target in source.columns:
        source = source.filter(source[spec.target].is_not_null())
    if not all(c in source.columns for c in (*spec.key_columns, *spec.features)):
        return set()
    return set(row_keys(source, spec.key_columns, spec.features).drop_nulls().to_list())


def _read_rows(project: Project, path: Path | None) -> pl.DataFrame:
    from modelyard.data.sources import read_source_rows

    data = project.config.data
    source = data.source
    if path is not None:
        if not path.exists():
            raise DataError("the file of rows to queue does not exist", where=str(path))
        source = source.model_copy(
            update={"path": path.resolve(), "builtin": None, "sql": None, "dataset": None}
        )
    # the lines ingest quarantines are not rows to label either
    return read_source_rows(source, normalize=data.normalize, drop=data.columns.drop).rows


def _valid_rows(project: Project, frame: pl.DataFrame, spec: LabelSpec) -> tuple[pl.DataFrame, int]:
    """The rows the contract accepts for scoring, typed (as batch scoring does)."""
    from modelyard.data.validation import scoring_checks
    from modelyard.data.validation import validate as run_validation

    contract = _contract(project)
    _check_features(frame, spec, "the rows to queue")
    keep = {*spec.features, *spec.key_columns}
    contract = contract.model_copy(
        update={"columns": [c for c in contract.columns if c.name in keep and c.name in frame.columns],
                "target": None, "allow_extra_columns": True}
    )  # fmt: skip
    checks, _ = scoring_checks(list(project.config.validation.checks), [spec.target])
    options = project.config.validation.model_copy(
        update={"on_error": "quarantine", "max_invalid_fraction": 1.0, "checks": checks}
    )
    checked = run_validation(frame.drop(spec.target, strict=False), contract, options, mode="score")
    return checked.valid, checked.quarantine.height


def _labelled_features(project: Project, champion: Champion, spec: LabelSpec) -> np.ndarray | None:
    """A sample of already-labelled training rows in the champion's feature space (the
    centres already chosen); ``None`` when they cannot be read."""
    try:
        frame = _read_rows(project, None)
        if spec.target in frame.columns:
            frame = frame.filter(frame[spec.target].is_not_null())
        frame = frame.sample(min(LABELLED_ANCHORS, frame.height), seed=project.config.seed)
        frame, _ = _valid_rows(project, frame, spec)
        if frame.height == 0:
            return None
        return score(champion, frame, spec, "entropy").features
    except ModelyardError:
        return None


def _save_queue(project: Project, items: list[QueueItem], spec: LabelSpec) -> Path:
    from modelyard.labels.io import write_atomic

    folder = _labels_dir(project)
    write_atomic(folder / SPEC, json.dumps(_spec_json(spec), indent=2) + "\n")
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    file = folder / QUEUES / f"queue-{stamp}.jsonl"
    write_atomic(file, "".join(json.dumps(_item_json(i), default=str) + "\n" for i in items))
    return file


def read_queue(file: Path) -> list[QueueItem]:
    """The items of a saved queue file."""
    items = []
    try:
        lines = Path(file).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read the queue ({exc})", where=str(file)) from None
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
            items.append(QueueItem(**raw))
        except (json.JSONDecodeError, TypeError) as exc:
            raise DataError(f"the queue file is damaged ({exc})", where=f"{file}:{n}",
                            fix="Build a new queue (modelyard label queue).") from None  # fmt: skip
    return items


def latest_queue(project: Project) -> Path:
    files = sorted((_labels_dir(project) / QUEUES).glob("queue-*.jsonl"))
    if not files:
        raise ModelyardError(
            "there is no queue to export yet", where=str(_labels_dir(project) / QUEUES),
            fix="Build one first: modelyard label queue --data FILE --budget N.",
        )  # fmt: skip
    return files[-1]


# ----------------------------------------------------------------------------- export/import


def export_queue(
    project: Project, fmt: str, *, out: str | Path, queue: str | Path | None = None
) -> list[Path]:
    """Write the latest queue (or ``queue``) in the format of annotation tool ``fmt``."""
    module = _format(fmt)
    items = read_queue(Path(queue) if queue is not None else latest_queue(project))
    if not items:
        raise ModelyardError("the queue is empty: there is nothing to export")
    return list(module.export(items, label_spec(project), Path(out)))


@dataclass
class ImportResult:
    """What an import added to the label set, and what it quarantined."""

    read: int
    accepted: int
    quarantined: int
    version: int
    quarantine: Path | None
    reasons: dict[str, int]

    def to_dict(self) -> dict[str, Any]:
        return {
            "read": self.read, "accepted": self.accepted, "quarantined": self.quarantined,
            "version": self.version, "quarantine": str(self.quarantine) if self.quarantine else None,
            "reasons": self.reasons,
        }  # fmt: skip


def import_labels(project: Project, fmt: str, path: str | Path) -> ImportResult:
    """Read a tool's export, validate every label, append the accepted ones to the label set
    and write the others, with their reasons, to a quarantine file."""
    from modelyard.labels.store import LabelSet
    from modelyard.labels.validate import check

    module = _format(fmt)
    file = Path(path)
    if not file.is_file():
        raise DataError(f"the {fmt} export to import does not exist", where=str(file))
    spec = label_spec(project)
    records, rejected = module.load(file, spec)
    if not records and not rejected:
        raise DataError(f"the {fmt} export holds no labels", where=str(file),
                        expected=f"{fmt}'s export of annotated tasks", found="an empty file")  # fmt: skip
    if not records:
        from modelyard.labels.validate import Quarantined

        written = _write_quarantine(
            project, fmt, [Quarantined(r.where, r.reason, item=r.item) for r in rejected]
        )
        raise DataError(
            f"no label could be read from the {fmt} export", where=str(file),
            expected=f"{fmt}'s export of annotated tasks",
            found=f"{len(rejected)} unreadable item(s), the first: {rejected[0].where}: {rejected[0].reason}",
            fix=f"Check the file and --format; every item and its reason are in {written}.",
        )  # fmt: skip
    known, rows = _known_rows(project, spec)
    records = [
        replace(r, extra={**r.extra, "row": rows[r.key]}) if r.key in rows else r for r in records
    ]
    store = LabelSet(_labels_dir(project))
    checked = check(records, spec, known_keys=known, existing=store.read(), rejected=rejected)
    quarantine: Path | None = None
    if checked.quarantined:
        quarantine = _write_quarantine(project, fmt, checked.quarantined)
    version = store.append(checked.accepted)
    reasons: dict[str, int] = {}
    for q in checked.quarantined:
        head = q.reason.split(":")[0].split(" (")[0]
        reasons[head] = reasons.get(head, 0) + 1
    return ImportResult(len(records) + len(rejected), len(checked.accepted),
                        len(checked.quarantined), version, quarantine, reasons)  # fmt: skip


def _known_rows(project: Project, spec: LabelSpec) -> tuple[set[str], dict[str, dict[str, Any]]]:
    """Every key a label may name (queued rows and source rows); and the values of queued
    rows the source lacks (a label for one of them brings its row into training)."""
    queued: dict[str, dict[str, Any]] = {}
    for file in sorted((_labels_dir(project) / QUEUES).glob("queue-*.jsonl")):
        for item in read_queue(file):
            queued[item.key] = item.row
    try:
        source = _read_rows(project, None)
        source_keys = set(row_keys(source, spec.key_columns, spec.features).drop_nulls().to_list())
    except ModelyardError:
        source_keys = set()
    known = source_keys | set(queued)
    return known, {k: v for k, v in queued.items() if k not in source_keys}


def _write_quarantine(project: Project, fmt: str, items: list[Quarantined]) -> Path:
    from modelyard.labels.io import write_atomic

    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    file = _labels_dir(project) / QUARANTINE / f"{stamp}-{fmt}.jsonl"
    lines = []
    for q in items:
        entry: dict[str, Any] = {"where": q.where, "reason": q.reason}
        if q.record is not None:
            entry["label"] = {"key": q.record.key, "label": q.record.label,
                              "annotator": q.record.annotator, "at": q.record.at.isoformat(),
                              "source": q.record.source, "task": q.record.task}  # fmt: skip
        if q.item is not None:
            item = json.dumps(q.item, default=str)
            entry["item"] = q.item if len(item) <= 10_000 else item[:10_000] + "... (cut)"
        lines.append(json.dumps(entry, default=str))
    write_atomic(file, "\n".join(lines) + "\n")
    return file


# ----------------------------------------------------------------------------- status


@dataclass
class Status:
    """The label set: versions, labels, rows, agreement, rows held for review."""

    path: Path
    version: int
    labels: int
    rows: int
    resolved: int
    held: dict[str, dict[str, Any]]
    agreement: dict[str, Any]
    by_source: dict[str, int]
    by_annotator: dict[str, int]
    conflict: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path), "version": self.version, "labels": self.labels,
            "rows": self.rows, "resolved": self.resolved, "held": self.held,
            "conflict_rule": self.conflict, "agreement": self.agreement,
            "by_source": self.by_source, "by_annotator": self.by_annotator,
        }  # fmt: skip


def status(project: Project) -> Status:
    """Where the label set stands (no model needed)."""
    from collections import Counter

    from modelyard.labels.store import LabelSet
    from modelyard.labels.validate import resolve

    folder = _labels_dir(project)
    store = LabelSet(folder)
    records = store.read()
    spec = _read_spec(folder / SPEC) if (folder / SPEC).is_file() else None
    task = spec.task if spec is not None else ""
    target = spec.target if spec is not None else str(project.config.data.target)
    resolution = resolve(records, LabelSpec(target, task, None), project.config.labels.conflict)
    return Status(
        path=folder, version=store.version, labels=len(records),
        rows=len({r.key for r in records}), resolved=len(resolution.labels),
        held=resolution.held, agreement=resolution.agreement.to_dict(),
        by_source=dict(Counter(r.source for r in records)),
        by_annotator=dict(Counter(r.annotator for r in records)),
        conflict=project.config.labels.conflict,
    )  # fmt: skip


# ----------------------------------------------------------------------------- helpers


def _format(fmt: str) -> Any:
    """The format module, or a clear error when this build lacks it."""
    from modelyard.labels.formats import format_module

    try:
        return format_module(fmt)
    except ImportError as exc:
        raise ModelyardError(
            f"the {fmt} format is not available in this installation ({exc})",
            fix="Use another --format, or update modelyard.",
        ) from None


def _labels_dir(project: Project) -> Path:
    return Path(project.config.labels.path)


def _contract(project: Project) -> DataContract:
    contract = project.declared_contract()
    if contract is None:
        raise ModelyardError(
            "there is no data contract yet", where=str(project.config.contract.path),
            fix="Run the pipeline first (modelyard run) to infer and write it.",
        )  # fmt: skip
    return contract


def _spec_json(spec: LabelSpec) -> dict[str, Any]:
    return {
        "target": spec.target, "task": spec.task,
        "classes": list(spec.classes) if spec.classes is not None else None,
        "key_columns": list(spec.key_columns), "features": list(spec.features),
    }  # fmt: skip


def _read_spec(file: Path) -> LabelSpec:
    try:
        raw = json.loads(file.read_text(encoding="utf-8"))
        return LabelSpec(
            target=str(raw["target"]), task=str(raw["task"]),
            classes=tuple(raw["classes"]) if raw.get("classes") is not None else None,
            key_columns=tuple(raw.get("key_columns") or ()), features=tuple(raw.get("features") or ()),
        )  # fmt: skip
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DataError(f"the label spec is damaged ({exc})", where=str(file),
                        fix="Delete it; the next modelyard label queue writes it again.") from None  # fmt: skip


def _item_json(item: QueueItem) -> dict[str, Any]:
    return {
        "key": item.key, "row": item.row, "score": item.score, "reason": item.reason,
        "model_version": item.model_version, "prediction": item.prediction,
        "probabilities": item.probabilities,
    }  # fmt: skip
