"""``modelyard serve`` (a registered model over HTTP) and ``modelyard package`` (its
Docker/Kubernetes build context).

Only click is imported here; everything else loads when a command runs, so ``modelyard --help``
stays fast.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import click

from modelyard.cli.options import config_option

if TYPE_CHECKING:
    from modelyard.config.schema import ProjectConfig

_CONFIG = config_option(
    "The project file (or its folder); optional when --model and --tracking-uri are given."
)
_MODEL = click.option(
    "--model",
    "model",
    metavar="NAME@ALIAS|NAME/VERSION|FOLDER",
    help="What to serve (default: serving.model, else the project's champion).",
)
_TRACKING = click.option(
    "--tracking-uri", help="MLflow tracking URI (default: the project's embedded store)."
)


def _config(config_path: Path, required: bool) -> ProjectConfig | None:
    from modelyard.config.loader import load_config

    path = config_path / "modelyard.yaml" if config_path.is_dir() else config_path
    if not path.exists() and not required:
        return None
    return load_config(path)


@click.command()
@_CONFIG
@_MODEL
@_TRACKING
@click.option("--host", help="Interface to listen on (default: serving.host, 127.0.0.1).")
@click.option("--port", type=int, help="TCP port (default: serving.port, 8080).")
@click.option("--workers", type=click.IntRange(min=1), help="Server processes (default 1).")
@click.option(
    "--server", "server_kind", type=click.Choice(["uvicorn", "granian"]), help="ASGI server."
)
@click.option("--lenient/--strict", default=None, help="Predict despite contract violations.")
def serve(
    config_path: Path,
    model: str | None,
    tracking_uri: str | None,
    host: str | None,
    port: int | None,
    workers: int | None,
    server_kind: str | None,
    lenient: bool | None,
) -> None:
    """Serve a registered model over HTTP (POST /predict, /health, /ready, /metrics, ...)."""
    from modelyard.ops.serving.server import run_server, settings_from_config

    config = _config(
        config_path, required=model is None or (tracking_uri is None and not _is_dir(model))
    )
    settings, launch, token = settings_from_config(
        config, model=model, tracking_uri=tracking_uri, lenient=lenient
    )
    if host:
        launch.host = host
    if port:
        launch.port = port
    if workers:
        launch.workers = workers
    if server_kind:
        launch.server = server_kind
    _check_model_exists(settings.model, settings.tracking_uri)
    click.echo(
        f"modelyard serve: {settings.model} on http://{launch.host}:{launch.port} "
        f"({launch.workers} worker{'s' if launch.workers > 1 else ''}, {launch.server})",
        err=True,
    )
    run_server(settings, launch, token)


def _check_model_exists(model: str, tracking_uri: str | None) -> None:
    """Fail before the server starts (one clear message) when the model cannot be found."""
    from modelyard.ops.registry import Registry, parse_model_ref

    ref = parse_model_ref(model)
    if ref.path is None and ref.name is not None and tracking_uri is not None:
        Registry(tracking_uri, ref.name, audit_log=Path(os.devnull)).resolve(ref)


def _is_dir(model: str | None) -> bool:
    return model is not None and Path(model).is_dir()


@click.command()
@_CONFIG
@_MODEL
@_TRACKING
@click.option(
    "--out", required=True, type=click.Path(path_type=Path), help="Folder of the build context."
)
@click.option("--image", help="Image name (default ghcr.io/OWNER/<name>-model:<version>).")
@click.option(
    "--service-monitor/--no-service-monitor", default=True, help="Write a ServiceMonitor."
)
def package(
    config_path: Path,
    model: str | None,
    tracking_uri: str | None,
    out: Path,
    image: str | None,
    service_monitor: bool,
) -> None:
    """Write a Docker/Kubernetes build context serving one model version."""
    import tempfile

    from modelyard.ops.packaging import package as build
    from modelyard.ops.registry import parse_model_ref
    from modelyard.ops.serving.model import fetch_model
    from modelyard.ops.serving.server import settings_from_config

    config = _config(
        config_path, required=model is None or (tracking_uri is None and not _is_dir(model))
    )
    settings, _, _ = settings_from_config(config, model=model, tracking_uri=tracking_uri)
    with tempfile.TemporaryDirectory(prefix="modelyard-package-") as tmp:
        local, facts = fetch_model(
            parse_model_ref(settings.model), settings.tracking_uri, Path(tmp)
        )
        result = build(
            local,
            out,
            name=str(facts.get("name") or "model"),
            version=str(facts.get("version") or "local"),
            facts={k: v for k, v in facts.items() if k not in ("name", "version")},
            image=image,
            service_monitor=service_monitor,
            lenient=settings.lenient,
            max_body_bytes=settings.max_body_bytes,
            max_batch_rows=settings.max_batch_rows,
            checks=settings.checks,
        )
    click.echo(f"wrote {len(result.files)} files to {result.out} (image {result.image})")
