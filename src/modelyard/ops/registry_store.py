"""Reading the model registry without importing MLflow: SQL on the embedded store, REST on a server.

``import mlflow`` alone takes seconds (its tracking client pulls in SQLAlchemy, alembic, pandas,
protobuf and the model flavours), so ``modelyard models list / show`` and the champion lookup of
``predict`` and ``serve`` read the registry through the lightest path that gives the same data:

- ``sqlite:///path`` (the default, ``.modelyard/mlflow.db``): the store's own tables, read-only,
  with :mod:`sqlite3` from the standard library. The queries mirror MLflow's SQLAlchemy store
  (deleted versions hidden, the ``default`` workspace, latest metrics with NaN restored);
- ``http(s)://`` (an MLflow server): its REST API with :mod:`urllib` (``MLFLOW_TRACKING_TOKEN``
  or ``MLFLOW_TRACKING_USERNAME`` / ``_PASSWORD``, ``MLFLOW_TRACKING_INSECURE_TLS`` and
  ``MLFLOW_TRACKING_SERVER_CERT_PATH`` are honoured);
- anything else (PostgreSQL, MySQL, Databricks, workspaces, client certificates, a custom
  auth plugin), or a SQLite schema these queries do not know: an :class:`MlflowClient`.

Writes (alias moves, tags) always go through the MLflow client.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import quote, urlencode, urlparse

from modelyard.errors import ModelyardError, mask_url

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

DELETED_STAGE = "Deleted_Internal"
"""MLflow's stage of a soft-deleted version (hidden from every read)."""
DEFAULT_WORKSPACE = "default"
_PAGE = 1000
_CLIENT_ONLY_ENV = (
    "MLFLOW_ENABLE_WORKSPACES",
    "MLFLOW_WORKSPACE",
    "MLFLOW_TRACKING_AUTH",
    "MLFLOW_TRACKING_CLIENT_CERT_PATH",
)
"""Settings only MLflow's own client understands: with any of them set, use the client."""


@dataclass(frozen=True)
class VersionRecord:
    """One registered model version, as the registry stores it."""

    name: str
    version: str
    creation_timestamp: int
    """Milliseconds since the epoch."""
    source: str
    run_id: str | None
    model_id: str | None
    tags: dict[str, str] = field(default_factory=dict)


class RegistryReader(Protocol):
    """The read side of the registry that modelyard needs."""

    def versions(self, name: str) -> list[VersionRecord]:
        """Every (not deleted) version of ``name``; empty when the model is not registered."""
        ...

    def version(self, name: str, version: str) -> VersionRecord | None:
        """One version, or ``None`` when it does not exist."""
        ...

    def aliases(self, name: str) -> dict[str, str]:
        """Alias -> version of ``name`` (empty when the model is not registered)."""
        ...

    def run_metrics(self, run_id: str) -> dict[str, float]:
        """The latest value of every metric of a run (empty when the run does not exist)."""
        ...

    def download_uri(self, name: str, version: str) -> str:
        """Where the version's files are (a logged model's ``models:/m-...`` resolved)."""
        ...


class Unsupported(Exception):
    """The light reader cannot answer for this store: use the MLflow client."""


def open_reader(tracking_uri: str, client: Callable[[], MlflowClient]) -> RegistryReader:
    """The lightest reader for ``tracking_uri``; ``client`` builds the fallback MlflowClient."""
    fallback = ClientReader(client)
    if any(os.environ.get(var) for var in _CLIENT_ONLY_ENV):
        return fallback
    scheme = urlparse(tracking_uri).scheme
    if tracking_uri.startswith("sqlite:///"):
        return _Fallback(SqliteReader(Path(tracking_uri.removeprefix("sqlite:///"))), fallback)
    if scheme in ("http", "https"):
        return _Fallback(RestReader(tracking_uri), fallback)
    return fallback


# --------------------------------------------------------------------------- SQLite


class SqliteReader:
    """MLflow's SQLite store, read-only with the standard library."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._workspace: bool | None = None

    def _query(self, sql: str, args: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        import sqlite3

        if not self.path.is_file():
            return []  # no store yet: nothing registered (the client would create it)
        uri = f"{self.path.resolve().as_uri()}?mode=ro"
        try:
            con = sqlite3.connect(uri, uri=True, timeout=30)
        except sqlite3.Error as exc:
            raise Unsupported(str(exc)) from exc
        try:
            if self._workspace is None:
                cols = {row[1] for row in con.execute("PRAGMA table_info(model_versions)")}
                if not {"name", "version", "source", "storage_location"} <= cols:
                    raise Unsupported("an MLflow schema without model_versions.storage_location")
                self._workspace = "workspace" in cols
            if self._workspace:
                sql = sql.replace("/*ws*/", " AND workspace = ?")
                args = (*args, DEFAULT_WORKSPACE)
            return con.execute(sql.replace("/*ws*/", ""), args).fetchall()
        except sqlite3.Error as exc:  # a schema these queries do not know: let MLflow read it
            raise Unsupported(str(exc)) from exc
        finally:
            con.close()

    def _records(self, name: str, version: str | None) -> list[VersionRecord]:
        where = "name = ? AND current_stage != ?"
        args: tuple[Any, ...] = (name, DELETED_STAGE)
        if version is not None:
            where += " AND version = ?"
            args = (*args, int(version))
        rows = self._query(
            "SELECT version, creation_time, source, run_id FROM model_versions "
            f"WHERE {where} /*ws*/",
            args,
        )
        out = []
        for ver, created, source, run_id in rows:
            tags = self._query(
                "SELECT key, value FROM model_version_tags WHERE name = ? AND version = ? /*ws*/",
                (name, ver),
            )
            out.append(
                VersionRecord(
                    name=name,
                    version=str(ver),
                    creation_timestamp=int(created or 0),
                    source=str(source),
                    run_id=run_id or None,
                    model_id=None,  # MLflow's SQL store does not fill it in either
                    tags={str(k): str(v) for k, v in tags},
                )
            )
        return out

    def versions(self, name: str) -> list[VersionRecord]:
        return self._records(name, None)

    def version(self, name: str, version: str) -> VersionRecord | None:
        if not str(version).isdigit():
            return None
        found = self._records(name, str(version))
        return found[0] if found else None

    def aliases(self, name: str) -> dict[str, str]:
        rows = self._query(
            "SELECT alias, version FROM registered_model_aliases WHERE name = ? /*ws*/", (name,)
        )
        return {str(alias): str(version) for alias, version in rows}

    def run_metrics(self, run_id: str) -> dict[str, float]:
        # the runs table has no workspace filter in MLflow's tracking store
        import sqlite3

        if not self.path.is_file():
            return {}
        uri = f"{self.path.resolve().as_uri()}?mode=ro"
        try:
            con = sqlite3.connect(uri, uri=True, timeout=30)
            try:
                rows = con.execute(
                    "SELECT key, value, is_nan FROM latest_metrics WHERE run_uuid = ?", (run_id,)
                ).fetchall()
            finally:
                con.close()
        except sqlite3.Error as exc:
            raise Unsupported(str(exc)) from exc
        return {str(k): float("nan") if is_nan else float(v) for k, v, is_nan in rows}

    def download_uri(self, name: str, version: str) -> str:
        rows = self._query(
            "SELECT storage_location, source FROM model_versions "
            "WHERE name = ? AND version = ? AND current_stage != ? /*ws*/",
            (name, int(version), DELETED_STAGE),
        )
        if not rows:
            raise _missing(name, version, str(self.path))
        location = str(rows[0][0] or rows[0][1])
        if location.startswith("models:/"):
            model_id = location.removeprefix("models:/")
            found = self._query(
                "SELECT artifact_location FROM logged_models WHERE model_id = ?", (model_id,)
            )
            if not found:
                raise Unsupported(f"logged model {model_id} not found")
            location = str(found[0][0])
        return location


# --------------------------------------------------------------------------- REST


class RestReader:
    """An MLflow tracking server's REST API (``/api/2.0/mlflow/...``), with :mod:`urllib`."""

    def __init__(self, base_url: str, *, timeout: float = 30.0, attempts: int = 3) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.attempts = attempts

    def _get(self, endpoint: str, params: dict[str, Any]) -> dict[str, Any] | None:
        """The JSON answer, or ``None`` for RESOURCE_DOES_NOT_EXIST."""
        import urllib.error
        import urllib.request

        url = f"{self.base_url}/api/2.0/mlflow/{endpoint}?{urlencode(params, quote_via=quote)}"
        request = urllib.request.Request(url, headers=_auth_headers())
        last: Exception | None = None
        for attempt in range(self.attempts):
            try:
                with urllib.request.urlopen(
                    request, timeout=self.timeout, context=_ssl_context()
                ) as resp:
                    data: dict[str, Any] = json.loads(resp.read() or b"{}")
                    return data
            except urllib.error.HTTPError as exc:
                body = exc.read()
                code = _error_code(body)
                if code == "RESOURCE_DOES_NOT_EXIST" or exc.code == 404:
                    return None
                if exc.code in (429, 500, 502, 503, 504):
                    last = exc
                else:
                    raise ModelyardError(
                        f"the MLflow server refused a registry read ({exc.code} {code or ''})",
                        where=mask_url(self.base_url),
                        found=body[:300].decode("utf-8", "replace"),
                        fix="Check the tracking URI and the MLFLOW_TRACKING_* credentials.",
                    ) from None
            except (urllib.error.URLError, OSError) as exc:
                last = exc
            if attempt + 1 < self.attempts:
                time.sleep(0.5 * 2**attempt)
        raise ModelyardError(
            "cannot reach the MLflow server",
            where=mask_url(self.base_url),
            found=str(last),
            fix="Start the server, or check tracking.uri in modelyard.yaml.",
        )

    def _record(self, mv: dict[str, Any]) -> VersionRecord:
        return VersionRecord(
            name=str(mv["name"]),
            version=str(mv["version"]),
            creation_timestamp=int(mv.get("creation_timestamp") or 0),
            source=str(mv.get("source", "")),
            run_id=mv.get("run_id") or None,
            model_id=mv.get("model_id") or None,
            tags={str(t["key"]): str(t.get("value", "")) for t in mv.get("tags") or []},
        )

    def versions(self, name: str) -> list[VersionRecord]:
        out: list[VersionRecord] = []
        token: str | None = None
        while True:
            params: dict[str, Any] = {"filter": f"name = '{_quote(name)}'", "max_results": _PAGE}
            if token:
                params["page_token"] = token
            page = self._get("model-versions/search", params) or {}
            out.extend(
                self._record(mv)
                for mv in page.get("model_versions") or []
                if mv.get("current_stage") != DELETED_STAGE
            )
            token = page.get("next_page_token")
            if not token:
                return out

    def version(self, name: str, version: str) -> VersionRecord | None:
        if not str(version).isdigit():
            return None
        found = self._get("model-versions/get", {"name": name, "version": str(version)})
        return self._record(found["model_version"]) if found else None

    def aliases(self, name: str) -> dict[str, str]:
        found = self._get("registered-models/get", {"name": name})
        if not found:
            return {}
        model = found.get("registered_model") or {}
        return {str(a["alias"]): str(a["version"]) for a in model.get("aliases") or []}

    def run_metrics(self, run_id: str) -> dict[str, float]:
        found = self._get("runs/get", {"run_id": run_id})
        if not found:
            return {}
        metrics = (found.get("run") or {}).get("data", {}).get("metrics") or []
        return {str(m["key"]): float(m.get("value", 0.0)) for m in metrics}

    def download_uri(self, name: str, version: str) -> str:
        found = self._get(
            "model-versions/get-download-uri", {"name": name, "version": str(version)}
        )
        if not found:
            raise _missing(name, version, mask_url(self.base_url))
        location = str(found.get("artifact_uri", ""))
        if location.startswith("models:/"):
            model_id = location.removeprefix("models:/")
            logged = self._get(f"logged-models/{quote(model_id, safe='')}", {})
            if not logged:
                raise Unsupported(f"logged model {model_id} not found")
            location = str(logged["model"]["info"]["artifact_uri"])
        return location


def _auth_headers() -> dict[str, str]:
    headers = {"User-Agent": "modelyard"}
    token = os.environ.get("MLFLOW_TRACKING_TOKEN")
    user = os.environ.get("MLFLOW_TRACKING_USERNAME")
    password = os.environ.get("MLFLOW_TRACKING_PASSWORD")
    if token:
        headers["Authorization"] = f"Bearer {token}"
    elif user and password:
        import base64

        basic = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
        headers["Authorization"] = f"Basic {basic}"
    return headers


def _ssl_context() -> Any:
    insecure = os.environ.get("MLFLOW_TRACKING_INSECURE_TLS", "").lower() in ("1", "true")
    cafile = os.environ.get("MLFLOW_TRACKING_SERVER_CERT_PATH")
    if not insecure and not cafile:
        return None
    import ssl

    if insecure:
        return ssl._create_unverified_context()  # the user asked for it, as MLflow does
    return ssl.create_default_context(cafile=cafile)


def _error_code(body: bytes) -> str | None:
    try:
        code = json.loads(body).get("error_code")
    except (ValueError, AttributeError):
        return None
    return str(code) if code else None


# --------------------------------------------------------------------------- the MLflow client


class ClientReader:
    """The same reads through :class:`MlflowClient` (any store MLflow supports)."""

    def __init__(self, client: Callable[[], MlflowClient]) -> None:
        self._make = client

    @property
    def client(self) -> MlflowClient:
        return self._make()

    @staticmethod
    def _record(mv: Any) -> VersionRecord:
        return VersionRecord(
            name=str(mv.name),
            version=str(mv.version),
            creation_timestamp=int(mv.creation_timestamp or 0),
            source=str(mv.source),
            run_id=mv.run_id or None,
            model_id=getattr(mv, "model_id", None),
            tags=dict(mv.tags or {}),
        )

    def versions(self, name: str) -> list[VersionRecord]:
        out: list[VersionRecord] = []
        token = None
        while True:
            page = self.client.search_model_versions(
                f"name = '{_quote(name)}'", max_results=_PAGE, page_token=token
            )
            out.extend(self._record(mv) for mv in page)
            token = page.token
            if not token:
                return out

    def version(self, name: str, version: str) -> VersionRecord | None:
        from mlflow.exceptions import MlflowException

        try:
            return self._record(self.client.get_model_version(name, str(version)))
        except MlflowException:
            return None

    def aliases(self, name: str) -> dict[str, str]:
        from mlflow.exceptions import MlflowException

        try:
            model = self.client.get_registered_model(name)
        except MlflowException:
            return {}
        return {str(a): str(v) for a, v in (model.aliases or {}).items()}

    def run_metrics(self, run_id: str) -> dict[str, float]:
        from mlflow.exceptions import MlflowException

        try:
            return dict(self.client.get_run(run_id).data.metrics)
        except MlflowException:
            return {}

    def download_uri(self, name: str, version: str) -> str:
        location = str(self.client.get_model_version_download_uri(name, str(version)))
        if location.startswith("models:/"):  # a logged model id: resolve it with our client
            location = str(
                self.client.get_logged_model(location.removeprefix("models:/")).artifact_location
            )
        return location


class _Fallback:
    """A light reader that hands over to the MLflow client for good once it cannot answer."""

    def __init__(self, light: RegistryReader, fallback: ClientReader) -> None:
        self.light: RegistryReader = light
        self.fallback = fallback
        self.used_fallback = False

    def _call(self, method: str, *args: Any) -> Any:
        if not self.used_fallback:
            try:
                return getattr(self.light, method)(*args)
            except Unsupported:
                self.used_fallback = True
        return getattr(self.fallback, method)(*args)

    def versions(self, name: str) -> list[VersionRecord]:
        result: list[VersionRecord] = self._call("versions", name)
        return result

    def version(self, name: str, version: str) -> VersionRecord | None:
        result: VersionRecord | None = self._call("version", name, version)
        return result

    def aliases(self, name: str) -> dict[str, str]:
        result: dict[str, str] = self._call("aliases", name)
        return result

    def run_metrics(self, run_id: str) -> dict[str, float]:
        result: dict[str, float] = self._call("run_metrics", run_id)
        return result

    def download_uri(self, name: str, version: str) -> str:
        result: str = self._call("download_uri", name, version)
        return result


def _missing(name: str, version: str, where: str) -> ModelyardError:
    return ModelyardError(
        f"model '{name}' has no version '{version}'",
        where=where,
        fix="List the versions with: modelyard models list",
    )


def _quote(name: str) -> str:
    return name.replace("'", "\\'")
