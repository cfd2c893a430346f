"""Starting the prediction server: settings from modelyard.yaml and flags, then uvicorn/granian.

Worker processes get their settings through ``MODELYARD_SERVE_SETTINGS`` (JSON) and the token
through ``MODELYARD_SERVING_TOKEN``, and build the app with
:func:`modelyard.ops.serving.app.create_app_from_env` (a factory). With several workers,
``PROMETHEUS_MULTIPROC_DIR`` is set to a fresh folder first, so ``/metrics`` adds up every
worker. ``SIGTERM``/``SIGINT`` stop accepting connections, finish the requests in flight (up to
``graceful_seconds``), then drain the prediction log.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from modelyard.errors import MissingExtraError, ModelyardError

if TYPE_CHECKING:
    from modelyard.config.schema import ProjectConfig
    from modelyard.ops.serving.app import ServeSettings

APP_FACTORY = "modelyard.ops.serving.app:create_app_from_env"


@dataclass
class Launch:
    """Where and how to run the server processes."""

    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = 1
    server: str = "uvicorn"
    graceful_seconds: float = 30.0
    log_level: str = "info"


def settings_from_config(
    config: ProjectConfig | None,
    *,
    model: str | None = None,
    tracking_uri: str | None = None,
    lenient: bool | None = None,
) -> tuple[ServeSettings, Launch, str | None]:
    """Server settings, launch options and token from ``serving`` of modelyard.yaml and flags.

    Without a config, ``model`` is required (a local model folder, or a registered reference
    with ``tracking_uri``).
    """
    from modelyard.config.schema import ServingSection
    from modelyard.ops.serving.app import TOKEN_ENV, ServeSettings

    section = config.serving if config is not None else ServingSection()
    uri = tracking_uri
    name = None
    if config is not None:
        from modelyard.config.schema import TrackingSection
        from modelyard.ops.tracking import resolve_model_name, resolve_tracking_uri

        tracking = getattr(config, "tracking", None) or TrackingSection()
        uri = uri or resolve_tracking_uri(tracking, config.workdir)
        name = resolve_model_name(tracking, config.name)
    ref = model or section.model or (f"{name}@champion" if name else None)
    if ref is None:
        raise ModelyardError(
            "no model to serve",
            where="modelyard serve",
            expected="--model NAME@ALIAS | NAME/VERSION | FOLDER, or a modelyard.yaml",
            fix="Run from the project folder, or pass --model.",
        )
    plog = section.prediction_log
    settings = ServeSettings(
        model=ref,
        tracking_uri=uri,
        lenient=section.lenient if lenient is None else lenient,
        max_body_bytes=section.max_body_bytes,
        max_batch_rows=section.max_batch_rows,
        max_concurrency=section.max_concurrency,
        log_path=str(plog.path) if plog.enabled else None,
        log_rotate_bytes=plog.rotate_bytes,
        log_rotate_rows=plog.rotate_rows,
        log_queue_size=plog.queue_size,
        log_max_wait_ms=plog.max_wait_ms,
        poll_seconds=section.reload.poll_seconds,
        checks=serving_checks(config),
    )
    launch = Launch(
        host=section.host, port=section.port, workers=section.workers, server=section.server
    )
    token = section.auth_token.get_secret_value() if section.auth_token else None
    token = token or os.environ.get(TOKEN_ENV) or None
    return settings, launch, token


def serving_checks(config: ProjectConfig | None) -> list[dict[str, Any]]:
    """``validation.checks`` as JSON for the server (requests pass the same checks as rows of
    batch scoring)."""
    if config is None:
        return []
    return [
        c.model_dump(mode="json", by_alias=True, exclude_defaults=True)
        for c in config.validation.checks
    ]


def run_server(settings: ServeSettings, launch: Launch, token: str | None) -> None:
    """Run the server in the foreground until it is stopped."""
    from modelyard.ops.serving.app import SETTINGS_ENV, TOKEN_ENV

    os.environ[SETTINGS_ENV] = settings.to_json()
    if token:
        os.environ[TOKEN_ENV] = token
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    own_metrics_dir = None
    if launch.workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        own_metrics_dir = tempfile.mkdtemp(prefix="modelyard-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = own_metrics_dir
    try:
        if launch.server == "granian":
            _granian(launch)
        else:
            _uvicorn(launch)
    finally:
        if own_metrics_dir is not None:
            shutil.rmtree(own_metrics_dir, ignore_errors=True)


def _uvicorn(launch: Launch) -> None:
    try:
        import uvicorn
    except ImportError:
        raise MissingExtraError("uvicorn", extra="serve", purpose="modelyard serve") from None
    uvicorn.run(
        APP_FACTORY,
        factory=True,
        host=launch.host,
        port=launch.port,
        workers=launch.workers,
        log_level=launch.log_level,
        access_log=False,
        timeout_graceful_shutdown=int(launch.graceful_seconds),
        backlog=2048,
    )


def _granian(launch: Launch) -> None:
    try:
        from granian import Granian  # type: ignore[import-not-found,unused-ignore]
        from granian.constants import Interfaces  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        raise ModelyardError(
            "the granian server is not installed",
            where="serving.server",
            fix="pip install granian, or use server: uvicorn.",
        ) from None
    Granian(
        APP_FACTORY,
        factory=True,
        address=launch.host,
        port=launch.port,
        workers=launch.workers,
        interface=Interfaces.ASGI,
    ).serve()
