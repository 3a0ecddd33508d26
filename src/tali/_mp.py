"""Process pools that are safe to start from a plain script (no ``__main__`` guard)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["main_not_rerun"]


@contextmanager
def main_not_rerun(job: Any = None) -> Iterator[None]:
    """Start spawned workers without re-running the parent's ``__main__``.

    ``spawn`` normally imports the parent's main script (or ``-m`` module) in
    every child so that functions defined there can be unpickled; an unguarded
    script would then call ``validate`` again in each child, which
    ``multiprocessing`` refuses ("An attempt has been made to start a new process
    before the current process has finished its bootstrapping phase"). tali's
    jobs live in tali's own modules, so the children never need ``__main__``:
    while workers start, the main module does not say where it came from. A job
    defined in ``__main__`` itself keeps the default (and needs the guard).
    """
    main = sys.modules.get("__main__")
    if (
        main is None
        or getattr(type(job), "__module__", None) == "__main__"
        or (getattr(job, "__module__", None) == "__main__")
    ):
        yield
        return
    saved: dict[str, Any] = {n: main.__dict__[n] for n in ("__spec__", "__file__") if n in main.__dict__}
    main.__spec__ = None
    main.__dict__.pop("__file__", None)
    try:
        yield
    finally:
        main.__dict__.update(saved)
        if "__spec__" not in saved:
            main.__dict__.pop("__spec__", None)
