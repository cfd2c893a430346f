"""The model registry: versions, the champion / challenger aliases, and their audit log.

Writes go through an explicit :class:`mlflow.tracking.MlflowClient` (no global tracking URI);
reads through :mod:`modelyard.ops.registry_store`, which skips importing MLflow where the store
allows (SQL on the embedded SQLite store, REST on a server), so ``models list`` and the champion
lookup of ``predict`` and ``serve`` take a fraction of a second.
Every alias move is appended to an audit log, a JSON Lines file that is never rewritten::

    {"time": "2026-11-26T08:50:11.123456+00:00", "model": "penguins", "alias": "champion",
     "from_version": "1", "to_version": "2", "action": "promote", "reason": "...",
     "command": "modelyard models promote 2", "user": "ana"}

``rollback`` reads that history: the champions form a stack (a gate promotion or a manual
promote pushes, a rollback pops), so rolling back twice goes two champions back.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import getpass
import json
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel

from modelyard.errors import ModelyardError
from modelyard.ops.gate import GateDecision
from modelyard.ops.registry_store import RegistryReader, VersionRecord, open_reader
from modelyard.ops.tracking import make_client

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

    from modelyard.data.contract import DataContract

AUDIT_LOG = "audit.jsonl"
"""The audit log's file name in the workdir."""
CHAMPION = "champion"
CHALLENGER = "challenger"
Action = Literal["gate", "promote", "rollback"]

GATE_TAG = "modelyard.gate"
"""Version tag: ``promoted``, ``rejected``, or ``interrupted`` (its register was killed before
the gate decided)."""
GATE_PASSED = "promoted"
NEEDS_FORCE = ("rejected", "interrupted")
"""Gate results a manual promote must override with ``force``."""
GATE_REASONS_TAG = "modelyard.gate.reasons"
"""Version tag: the gate's reasons, one per line."""
GATE_FAILED_TAG = "modelyard.gate.failed"
"""Version tag: the reasons of the checks that failed, one per line (empty when promoted)."""


class VersionInfo(BaseModel):
    """One version of the registered model, as ``modelyard models show`` prints it."""

    name: str
    version: str
    aliases: list[str]
    run_id: str | None
    model_id: str | None
    source: str
    created: dt.datetime
    """Creation time, UTC."""
    metrics: dict[str, float]
    """The metrics of the run that produced it."""
    tags: dict[str, str]
    """The version's tags: lineage (run id, data fingerprint, code version) and gate results."""

    @property
    def uri(self) -> str:
        return f"models:/{self.name}/{self.version}"


class AuditEntry(BaseModel):
    """One alias move."""

    time: str
    model: str
    alias: str
    from_version: str | None
    to_version: str | None
    action: Action
    reason: str
    command: str
    user: str
    forced: bool = False
    """A manual promote of a version the gate refused (``--force``)."""


@dataclass(frozen=True)
class ModelRef:
    """A parsed model reference."""

    name: str | None = None
    alias: str | None = None
    version: str | None = None
    path: Path | None = None

    @property
    def label(self) -> str:
        if self.path is not None:
            return str(self.path)
        return f"{self.name}@{self.alias}" if self.alias else f"{self.name}/{self.version}"


def parse_model_ref(text: str) -> ModelRef:
    """``NAME@ALIAS``, ``NAME/VERSION``, ``models:/...`` or a local model folder.

    >>> parse_model_ref("adult@champion")
    ModelRef(name='adult', alias='champion', version=None, path=None)
    >>> parse_model_ref("models:/adult/3")
    ModelRef(name='adult', alias=None, version='3', path=None)
    """
    raw = text.strip()
    if Path(raw).is_dir():
        return ModelRef(path=Path(raw).resolve())
    body = raw.removeprefix("models:/")
    if "@" in body:
        name, alias = body.split("@", 1)
        if name and alias and "/" not in alias:
            return ModelRef(name=name, alias=alias)
    elif "/" in body:
        name, version = body.rsplit("/", 1)
        if name and version.isdigit():
            return ModelRef(name=name, version=version)
    elif body and not any(ch in body for ch in " :\\"):
        return ModelRef(name=body, alias="champion")
    raise ModelyardError(
        f"'{text}' is not a model reference",
        where="--model",
        expected="NAME@ALIAS (adult@champion), NAME/VERSION (adult/3) or a local model folder",
        found=repr(text),
    )


class Registry:
    """Versions and aliases of one registered model, with an audit log of every alias move."""

    def __init__(
        self, tracking_uri: str, model_name: str, audit_log: Path, *, tmp_dir: Path | None = None
    ) -> None:
        self.tracking_uri = tracking_uri
        self.model_name = model_name
        self.audit_log = Path(audit_log)
        self.tmp_dir = tmp_dir
        """Where downloads are staged (default: the system's temporary folder)."""
        self._client: MlflowClient | None = None
        self._reader: RegistryReader | None = None

    @property
    def client(self) -> MlflowClient:
        """The MLflow client: every write, and reads of stores the light reader cannot read."""
        if self._client is None:
            self._client = make_client(self.tracking_uri)
        return self._client

    @property
    def reader(self) -> RegistryReader:
        """Reads without importing MLflow where the store allows it (see :mod:`.registry_store`)."""
        if self._reader is None:
            self._reader = open_reader(self.tracking_uri, lambda: self.client)
        return self._reader

    # ------------------------------------------------------------------ reading

    def versions(self) -> list[VersionInfo]:
        """All versions, oldest first (empty if the model is not registered yet)."""
        found = self.reader.versions(self.model_name)
        aliases = self._aliases()
        return sorted((self._info(mv, aliases) for mv in found), key=lambda v: int(v.version))

    def champion(self) -> VersionInfo | None:
        """The version holding the ``champion`` alias, if any."""
        return self._alias(CHAMPION)

    def challenger(self) -> VersionInfo | None:
        """The version holding the ``challenger`` alias, if any."""
        return self._alias(CHALLENGER)

    def show(self, version: str) -> VersionInfo:
        """One version; a :class:`ModelyardError` naming the known versions if it does not exist."""
        mv = self.reader.version(self.model_name, str(version))
        if mv is None:
            known = [v.version for v in self.versions()]
            raise ModelyardError(
                f"model '{self.model_name}' has no version '{version}'",
                where=self.tracking_uri,
                expected=f"one of {known}" if known else "a registered version",
                found=f"'{version}'",
                fix="List the versions with: modelyard models list",
            ) from None
        return self._info(mv, self._aliases())

    def history(self) -> list[AuditEntry]:
        """The audit log entries of this model, in order."""
        if not self.audit_log.exists():
            return []
        entries = []
        for n, line in enumerate(self.audit_log.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                entry = AuditEntry.model_validate_json(line)
            except ValueError as exc:
                raise ModelyardError(
                    "the audit log has an unreadable line",
                    where=f"{self.audit_log}:{n}",
                    expected="one JSON object per line",
                    found=line[:80],
                    fix="Restore the file from a backup; it is append-only and never rewritten.",
                ) from exc
            if entry.model == self.model_name:
                entries.append(entry)
        return entries

    # ------------------------------------------------------------------ moving aliases

    def apply(self, decision: GateDecision, version: str, *, command: str) -> None:
        """Act on the gate: ``champion`` if it promotes, else ``challenger``; tag the reasons."""
        version = str(version)
        self.show(version)  # exists?
        reason = "; ".join(decision.reasons)
        tags = {
            GATE_TAG: "promoted" if decision.promote else "rejected",
            GATE_REASONS_TAG: "\n".join(decision.reasons)[:5000],
            GATE_FAILED_TAG: "\n".join(decision.failed)[:5000],
            "modelyard.gate.metric": decision.metric,
            "modelyard.gate.candidate": repr(decision.candidate),
            "modelyard.gate.champion": repr(decision.champion),
            "modelyard.gate.margin": repr(decision.margin),
        }
        for key, value in tags.items():
            self.client.set_model_version_tag(self.model_name, version, key, value)
        if decision.promote:
            self._move(CHAMPION, version, action="gate", reason=reason, command=command)
            challenger = self.challenger()
            if challenger is not None and challenger.version == version:
                self._move(
                    CHALLENGER, None, action="gate", reason="promoted to champion", command=command
                )
        else:
            self._move(CHALLENGER, version, action="gate", reason=reason, command=command)

    def promote(
        self, version: str, *, reason: str, command: str, force: bool = False
    ) -> VersionInfo:
        """Make ``version`` the champion by hand (audited); a no-op if it already is.

        A version the promotion gate refused (or never judged, its register being killed) is
        promoted only with ``force``; the audit entry then says it was forced.
        """
        version = str(version)
        info = self.show(version)
        verdict = info.tags.get(GATE_TAG)
        forced = verdict in NEEDS_FORCE
        if forced and not force:
            reasons = (
                info.tags.get(GATE_FAILED_TAG) or info.tags.get(GATE_REASONS_TAG, "")
            ).splitlines()
            failed = "; ".join(reasons) if reasons else "no reasons recorded"
            what = (
                "was refused by the promotion gate"
                if verdict == "rejected"
                else "was never judged by the promotion gate (its register was interrupted)"
            )
            raise ModelyardError(
                f"version {version} of model '{self.model_name}' {what}",
                where=self.tracking_uri,
                expected="a version that passed the gate, or --force",
                found=f"gate {verdict}: {failed}",
                fix=f"Promote it anyway with: modelyard models promote {version} --force "
                "--reason '...' (the audit log records that it was forced).",
            )
        current = self.champion()
        if current is None or current.version != version:
            self._move(
                CHAMPION,
                version,
                action="promote",
                reason=reason,
                command=command,
                forced=forced,
            )
            challenger = self.challenger()
            if challenger is not None and challenger.version == version:
                self._move(
                    CHALLENGER,
                    None,
                    action="promote",
                    reason="promoted to champion",
                    command=command,
                )
        return self.show(version)

    def rollback(self, *, command: str, reason: str = "rollback") -> VersionInfo:
        """Move ``champion`` back to the champion before the current one (from the audit log)."""
        current = self.champion()
        stack = self._champion_stack()
        if current is None:
            raise ModelyardError(
                f"model '{self.model_name}' has no champion to roll back",
                where=self.tracking_uri,
                fix="Promote a version with: modelyard models promote VERSION",
            )
        if not stack or stack[-1] != current.version:
            raise ModelyardError(
                f"the audit log does not say how version {current.version} became the champion",
                where=str(self.audit_log),
                expected=f"version {current.version} as the last champion in the log",
                found=f"{stack[-1]!r}" if stack else "no champion moves",
                fix="The alias was moved outside modelyard; choose the version yourself with: "
                "modelyard models promote VERSION",
            )
        while stack and stack[-1] == current.version:
            stack.pop()
        if not stack:
            raise ModelyardError(
                f"model '{self.model_name}' has no earlier champion than version {current.version}",
                where=str(self.audit_log),
                fix="Choose a version with: modelyard models promote VERSION",
            )
        target = stack[-1]
        self.show(target)  # still registered?
        self._move(CHAMPION, target, action="rollback", reason=reason, command=command)
        return self.show(target)

    def load_champion(self) -> Any:
        """The champion, loaded as :meth:`load_version` loads a version."""
        champion = self.champion()
        if champion is None:
            raise ModelyardError(
                f"model '{self.model_name}' has no champion",
                where=self.tracking_uri,
                fix="Train (modelyard train) or promote a version (modelyard models promote).",
            )
        return self.load_version(champion.version)

    def load_version(self, version: str) -> Any:
        """One version, ready to ``predict`` a pandas frame into ``prediction`` + ``proba_*``.

        A model logged with modelyard's native flavour loads through it (scikit-learn and
        cloudpickle, no MLflow import); an older one through ``mlflow.pyfunc``.
        """
        from modelyard.ops.native import load_native

        with self.local_copy(version) as local:
            native = load_native(local)
            if native is not None:
                return native
            import mlflow.pyfunc

            return mlflow.pyfunc.load_model(str(local))

    def load_with_contract(self, version: str) -> tuple[Any, DataContract | None]:
        """One version as an ``mlflow.pyfunc`` model, with the data contract it was trained on
        (``None`` for a model logged without one)."""
        import mlflow.pyfunc

        from modelyard.data.contract import contract_from_yaml

        with self.local_copy(version) as local:
            contract = None
            file = local / "contract.yaml"
            if file.is_file():
                contract = contract_from_yaml(file.read_text(encoding="utf-8"), source=str(file))
            return mlflow.pyfunc.load_model(str(local)), contract

    def location(self, version: str) -> str:
        """Where the files of ``version`` are (an artifact URI)."""
        return self.reader.download_uri(self.model_name, str(version))

    @contextlib.contextmanager
    def local_copy(self, version: str) -> Iterator[Path]:
        """The folder of ``version`` for the duration of the block: the store's own folder when
        it is local (nothing copied), else a download to a temporary folder."""
        location = self.location(version)
        local = local_folder(location)
        if local is not None:
            yield local
            return
        import mlflow.artifacts

        prefix = f"{os.getpid()}-load-" if self.tmp_dir else "modelyard-load-"
        if self.tmp_dir is not None:
            self.tmp_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=prefix, dir=self.tmp_dir) as tmp:
            yield Path(
                mlflow.artifacts.download_artifacts(
                    artifact_uri=location, dst_path=tmp, tracking_uri=self.tracking_uri
                )
            )

    # ------------------------------------------------------------------ internals

    def _aliases(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for alias, version in self.reader.aliases(self.model_name).items():
            out.setdefault(str(version), []).append(alias)
        return out

    def _alias(self, alias: str) -> VersionInfo | None:
        aliases = self._aliases()
        version = next((v for v, held in aliases.items() if alias in held), None)
        found = None if version is None else self.reader.version(self.model_name, version)
        return None if found is None else self._info(found, aliases)

    def resolve(self, ref: ModelRef) -> str:
        """The version a reference names (``NAME@ALIAS`` or ``NAME/VERSION``); clear errors."""
        if ref.version is not None:
            return self.show(ref.version).version
        return self.alias(ref.alias or CHAMPION).version

    def alias(self, alias: str) -> VersionInfo:
        """The version holding ``alias``; a clear error when no version holds it."""
        found = self._alias(alias)
        if found is None:
            held = sorted({a for v in self.versions() for a in v.aliases})
            raise ModelyardError(
                f"no version of model '{self.model_name}' has the alias '{alias}'",
                where=self.tracking_uri,
                expected=f"one of the aliases {held}" if held else "a registered, promoted model",
                fix="Run the pipeline (modelyard run), or list versions with: modelyard models list",
            )
        return found

    def _info(self, mv: VersionRecord, aliases: dict[str, list[str]]) -> VersionInfo:
        metrics = self.reader.run_metrics(mv.run_id) if mv.run_id else {}
        created = dt.datetime.fromtimestamp(mv.creation_timestamp / 1000, tz=dt.UTC)
        return VersionInfo(
            name=self.model_name,
            version=str(mv.version),
            aliases=sorted(aliases.get(str(mv.version), [])),
            run_id=mv.run_id or None,
            model_id=mv.model_id,
            source=str(mv.source),
            created=created,
            metrics=metrics,
            tags=dict(mv.tags),
        )

    def _champion_stack(self) -> list[str]:
        stack: list[str] = []
        for entry in self.history():
            if entry.alias != CHAMPION:
                continue
            if entry.action == "rollback":
                while stack and stack[-1] == entry.from_version:
                    stack.pop()
                if entry.to_version is not None and (not stack or stack[-1] != entry.to_version):
                    stack.append(entry.to_version)
            elif entry.to_version is not None:
                stack.append(entry.to_version)
        return stack

    def _move(
        self,
        alias: str,
        version: str | None,
        *,
        action: Action,
        reason: str,
        command: str,
        forced: bool = False,
    ) -> None:
        current = self._alias(alias)
        previous = current.version if current is not None else None
        if version is None:
            if previous is None:
                return
            self.client.delete_registered_model_alias(self.model_name, alias)
        else:
            self.client.set_registered_model_alias(self.model_name, alias, version)
        entry = AuditEntry(
            time=dt.datetime.now(dt.UTC).isoformat(),
            model=self.model_name,
            alias=alias,
            from_version=previous,
            to_version=version,
            action=action,
            reason=reason,
            command=command,
            user=_user(),
            forced=forced,
        )
        self._append(entry)

    def _append(self, entry: AuditEntry) -> None:
        self.audit_log.parent.mkdir(parents=True, exist_ok=True)
        line = json.dumps(entry.model_dump(), ensure_ascii=False) + "\n"
        with self.audit_log.open("a", encoding="utf-8") as fh:
            fh.write(line)
            fh.flush()
            os.fsync(fh.fileno())


def local_folder(location: str) -> Path | None:
    """The local folder an artifact URI names (``file://`` or a plain path), if it exists.

    >>> local_folder("s3://bucket/models/m-1/artifacts") is None
    True
    """
    from urllib.parse import unquote, urlparse

    parsed = urlparse(location)
    if parsed.scheme == "file" and parsed.netloc in ("", "localhost"):
        path = Path(unquote(parsed.path))
    elif parsed.scheme == "" or (len(parsed.scheme) == 1 and Path(location).is_absolute()):
        path = Path(location)
    else:
        return None
    return path if path.is_dir() else None


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (some containers)
        return "unknown"
