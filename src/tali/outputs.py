"""One guard for every tool that writes next to a dataset: an output must lie apart from
its sources, checked before any work.

``tali prepare SRC --out SRC/data`` once wrote ``SRC/data/data/*.parquet``, and the next
``tali validate SRC`` read 8 rows instead of 4: a directory source is every ``*.parquet``
under it, so anything written inside it becomes part of the dataset. Each command that
writes (``prepare``, ``filter --out/--index``, ``metrics --out``, ``validate --report``,
``stats --out/--json``, ``durations``, ``sample-data``) and its library entry point call
:func:`check_output_apart` with what it reads, and get an :class:`OutputOverlapError`
(a :class:`~tali.errors.TaliConfigError`) naming both paths when the output *is*,
*contains* or *lies inside* a source. Stdlib only, so every layer may use it.
"""

from __future__ import annotations

import functools
import inspect
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

from tali.errors import TaliConfigError

__all__ = ["OutputOverlapError", "check_output_apart", "check_replaceable", "one_writer", "source_places"]

PathLike = str | os.PathLike[str]
F = TypeVar("F", bound=Callable[..., Any])


class OutputOverlapError(TaliConfigError):
    """An output path is, contains or lies inside a source it is computed from."""

    def __init__(self, message: str, *, output: Path, source: Path, relation: str) -> None:
        super().__init__(message)
        self.output, self.source, self.relation = output, source, relation


def _places(sources: Iterable[PathLike]) -> list[Path]:
    """A source directory and every shard given; a remote URL is no local place."""
    out = []
    for source in sources:
        text = os.fspath(source)
        if "://" in text:
            continue
        out.append(Path(text).resolve())
    return out


def source_places(source: object, shards: Iterable[PathLike] = ()) -> list[PathLike]:
    """What a tool reads: ``source`` itself when it is a path, and every shard."""
    given = [source] if isinstance(source, str | os.PathLike) else []
    return [*given, *shards]


def check_output_apart(
    output: PathLike,
    sources: Iterable[PathLike],
    *,
    what: str = "the output",
    instead: str = "write it somewhere else",
) -> None:
    """Refuse ``output`` (a file or directory, existing or not) that is, contains or lies
    inside any of ``sources`` (dataset directories or shard files). ``what`` names the
    output in the message (``"--out"``, ``"--report"``), ``instead`` what to do."""
    out = Path(os.fspath(output)).resolve()  # follows symlinks: a link into the source is inside it
    for src in _places(sources):
        if out == src:
            relation = "is"
        elif out in src.parents:
            relation = "contains"
        elif src in out.parents and src.is_dir():
            relation = "lies inside"
        else:
            continue
        raise OutputOverlapError(
            f"{what} {out} {relation} the source {src}; {instead} "
            "(a directory source is every parquet file under it)",
            output=out,
            source=src,
            relation=relation,
        )


def check_replaceable(target: PathLike, *, marker: str, what: str = "target") -> None:
    """Refuse replacing ``target`` when it is a non-empty directory that lacks ``marker``
    (so not something this tool wrote: ``tali sample-data ~/TALI --force`` must not
    delete a downloaded dataset)."""
    path = Path(os.fspath(target))
    if path.is_dir() and any(path.iterdir()) and not (path / marker).exists():
        raise OutputOverlapError(
            f"{what} {path.resolve()} is a non-empty directory without {marker}: not one this "
            "command wrote; choose an empty or new directory",
            output=path.resolve(),
            source=path.resolve(),
            relation="is",
        )


def one_writer(argument: str, *, source: str | None = None) -> Callable[[F], F]:
    """Run the decorated writer under :func:`tali.atomic.exclusive` on its ``argument``
    (the output path): a second run into the same output waits for the first, then
    resumes from what it published, instead of deleting its files in progress. With
    ``source`` (the argument naming what it reads), :func:`check_output_apart` runs
    first, so a refused output leaves not even a lock file behind."""

    def decorate(function: F) -> F:
        signature = inspect.signature(function)

        @functools.wraps(function)
        def locked(*args: Any, **kwargs: Any) -> Any:
            from tali.atomic import exclusive

            bound = signature.bind(*args, **kwargs).arguments
            target = bound[argument]
            if source is not None:
                check_output_apart(target, source_places(bound.get(source)))
            with exclusive(Path(os.fspath(target)).resolve()):
                return function(*args, **kwargs)

        return locked  # type: ignore[return-value]

    return decorate
