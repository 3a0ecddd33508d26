"""The one rule every command uses for its SOURCE argument: a local path always wins;
the word ``sample`` (or no source, where a command allows that) otherwise names the
built-in sample dataset, built once into the cache. The command says on stderr which
one it read, so ``tali validate sample`` in a directory holding ``./sample`` is never
a surprise (stdout stays the command's own output: ``--json -`` keeps working)."""

from __future__ import annotations

import sys
from pathlib import Path

__all__ = ["SAMPLE", "resolve_source"]

#: The SOURCE word for the built-in sample dataset.
SAMPLE = "sample"


def resolve_source(source: str | None) -> str:
    """``source`` unchanged when it is a path that exists (or any word but ``sample``);
    ``sample`` or ``None`` without a local ``./sample``: the built-in sample dataset."""
    if source is not None and (source != SAMPLE or Path(source).exists()):
        if source == SAMPLE:
            print(
                f"tali: reading the local path {Path(source).resolve()} "
                "(not the built-in sample dataset: it is used when no ./sample exists)",
                file=sys.stderr,
            )
        return source
    from tali import sample_data

    path = str(sample_data.build())
    print(f"tali: reading the built-in sample dataset at {path}", file=sys.stderr)
    return path
