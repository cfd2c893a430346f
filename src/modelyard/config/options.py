"""Command-line options shared by every command that works on a project (one definition).

They live beside the config because they choose and shape it; the CLI, the serving commands
and the monitoring commands all import them from here.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

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
