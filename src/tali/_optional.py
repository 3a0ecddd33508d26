"""The one way ``tali`` imports an optional dependency: lazily, and when it is
missing, a :class:`~tali.errors.TaliMissingDependencyError` (an ``ImportError``)
whose message names the feature and the extra that installs it::

    duckdb = require("duckdb", extra="quality", feature="SQL filtering")
    # -> SQL filtering needs duckdb, which is not installed: pip install 'tali-dataset[quality]'

Extras (pyproject.toml): ``hf`` (datasets), ``models`` (transformers, tiktoken),
``quality`` (duckdb), ``embeddings`` (MiniLM sentence embeddings), ``observe``
(prometheus_client, psutil, pyinstrument), ``bench`` (torchcodec, matplotlib, datasets).
"""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType

from tali.errors import TaliMissingDependencyError

__all__ = ["available", "install_hint", "require"]


def install_hint(extra: str) -> str:
    return f"pip install 'tali-dataset[{extra}]'"


def require(module: str, *, extra: str, feature: str) -> ModuleType:
    """Import ``module`` or raise the typed error naming ``extra``."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        top = module.split(".")[0]
        missing = (getattr(exc, "name", None) or top).split(".")[0]  # the package pip installs
        raise TaliMissingDependencyError(
            f"{feature} needs {missing}, which is not installed: {install_hint(extra)}",
            extra=extra,
            module=missing,
        ) from exc


def available(module: str) -> bool:
    """Whether ``module`` can be imported, without importing it."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False
