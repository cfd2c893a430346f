"""Annotation tools' file formats, one module per tool.

Each module ``modelyard.labels.formats.<name>`` provides the same two functions:

- ``export(items: Sequence[QueueItem], spec: LabelSpec, out: Path) -> list[Path]``: write the
  tasks (with the champion's pre-annotations) and whatever else the tool needs (a labelling
  config), into the folder ``out``; returns the files written.
- ``load(path: Path, spec: LabelSpec) -> tuple[list[LabelRecord], list[Rejected]]``: read
  the tool's export of completed tasks into label records, and the items that could not be
  read, each with its reason (never dropped silently).

Validation against the contract (unknown class, wrong type, unknown key) happens after
``load``, in one place for every format.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from modelyard.errors import ModelyardError

FORMATS = {"label-studio": "labelstudio", "labelbox": "labelbox"}
"""Format name (as the CLI takes it) -> module under ``modelyard.labels.formats``."""


@dataclass(frozen=True)
class Rejected:
    """An item of a tool's export that gave no label record, and why."""

    where: str
    reason: str
    item: Any = None


def format_module(name: str) -> ModuleType:
    """The module of format ``name``; a clear error naming the known formats otherwise."""
    if name not in FORMATS:
        raise ModelyardError(
            f"unknown label format {name!r}", expected="one of: " + ", ".join(FORMATS)
        )
    return importlib.import_module(f"{__name__}.{FORMATS[name]}")
