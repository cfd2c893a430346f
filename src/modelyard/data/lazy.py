"""polars (and numpy), imported on first use.

Planning a cached run reads the contract file back and fingerprints the sources, and its
summary reads the published validation reports: work that needs no DataFrame. Importing polars
for it would cost more than the rest of the plan, so the modules on that path bind ``pl`` to
this stand-in, which imports polars the first time one of its names is used (then costs
nothing more: the module's names are copied in)::

    if TYPE_CHECKING:
        import polars as pl
    else:
        from modelyard.data.lazy import polars as pl
"""

from __future__ import annotations

import importlib
import types
from typing import Any


class LazyModule(types.ModuleType):
    """A module imported when one of its attributes is first read."""

    def __getattr__(self, name: str) -> Any:
        module = importlib.import_module(self.__name__)
        self.__dict__.update(module.__dict__)
        return getattr(module, name)


polars = LazyModule("polars")
numpy = LazyModule("numpy")
