"""Command-line options shared by the commands (one definition each), and the project they name."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

INTERRUPTED = threading.Event()
"""Set when Ctrl-C or SIGTERM reached a run: a step whose library wrapped the interrupt into an
error of its own (pydantic turns it into a SchemaError) is then an interruption, not a failure."""

if TYPE_CHECKING:
    from modelyard.recipe import Project

Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]


def config_option(help: str = "The project file (or its folder).") -> Decorator:
    """``-c/--config PATH`` (default ``modelyard.yaml``), passed as ``config_path``."""
    return click.option(
        "-c",
        "--config",
        "config_path",
        default="modelyard.yaml",
        show_default=True,
        type=click.Path(path_type=Path),
        help=help,
    )


json_option: Decorator = click.option(
    "--json", "as_json", is_flag=True, help="Print machine-readable JSON on stdout."
)
"""``--json``, passed as ``as_json``."""


def load_project(config_path: Path, *, store: str | None = None) -> Project:
    """The project of ``-c/--config`` (a file, or a folder holding modelyard.yaml);
    ``store``: ``--store``, instead of the config's."""
    import os

    from modelyard.recipe import Project

    return Project.from_yaml(config_path, store=store or os.environ.get("MODELYARD_STORE") or None)
