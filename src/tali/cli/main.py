"""``tali`` entry point: dispatches to one module per command, imported lazily.

Conventions every command follows (so a new one is three lines in ``COMMANDS``):

- A command module under ``tali.cli`` defines ``HELP`` (one line for ``tali --help``),
  a module docstring (its ``--help`` description; examples one per line, indented:
  the formatter keeps line breaks), ``register(parser)`` and ``run(args) -> int``.
- ``register`` imports nothing heavy: ``tali --help`` must not import torch
  (``python -X importtime -m tali.cli.main --help``). ``run`` imports the library.
- Every option has ``help=``; defaults are shown by :class:`~tali.cli._common.HelpFormatter`.
  Numbers that must be positive use the types in :mod:`tali.cli._common`
  (``positive_int``, ``non_negative_int``), so argparse refuses them in one line.
- Failures are one line on stderr, ``tali CMD: error: MESSAGE``, and a non-zero exit:
  1 for a :class:`~tali.errors.TaliError` (raise it, or :class:`~tali.cli._common.CliError`
  for a flag that cannot work) or an ``OSError`` (a path that cannot be written),
  2 for a bad command line (argparse), 130 for Ctrl-C. Library messages that name a
  keyword (``overwrite=True``) are reworded to the flag (``--overwrite``) via ``FLAGS``.
  Set ``TALI_DEBUG=1`` to get the traceback instead.
"""

from __future__ import annotations

import argparse
import importlib
import os
import re
import sys
from collections.abc import Sequence

from tali.cli._common import HelpFormatter
from tali.errors import TaliError

#: command name -> module under tali.cli that defines ``register(parser)`` and ``run(args) -> int``.
COMMANDS = {
    "demo": "demo",
    "sample-data": "sample_data",
    "download": "download",
    "validate": "validate",
    "metrics": "metrics",
    "filter": "filter",
    "prepare": "prepare",
    "profile": "profile",
    "bench": "bench",
    "durations": "durations",
    "live": "live",
    "view": "view",
    "stats": "stats",
    "show": "show",
}

#: Library keyword -> command-line flag, for messages shown by the CLI.
FLAGS = {"overwrite=True": "--overwrite"}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tali",
        description="Aligned quadra-modal batches from TALI.\n\n  tali demo\n  tali COMMAND --help",
        formatter_class=HelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, module_name in COMMANDS.items():
        module = importlib.import_module(f"tali.cli.{module_name}")
        command = sub.add_parser(
            name, help=module.HELP, description=module.__doc__, formatter_class=HelpFormatter
        )
        module.register(command)
        command.set_defaults(_run=module.run)
    return parser


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    for keyword, flag in FLAGS.items():
        text = re.sub(rf"(?<![\w-]){re.escape(keyword)}", flag, text)
    return text


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code = int(args._run(args) or 0)
    except (TaliError, OSError) as exc:
        if os.environ.get("TALI_DEBUG"):
            raise
        message = _one_line(exc)
        if isinstance(exc, OSError) and not isinstance(exc, TaliError) and exc.filename:
            message = f"{exc.strerror or type(exc).__name__}: {exc.filename}"
        print(f"tali {args.command}: error: {message}", file=sys.stderr)
        code = 1
    except KeyboardInterrupt:
        code = 130
    return code


if __name__ == "__main__":
    sys.exit(main())
