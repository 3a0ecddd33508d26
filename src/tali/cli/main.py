"""``tali`` entry point: dispatches to one module per command, imported lazily."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tali", description="Aligned quadra-modal batches from TALI.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, module_name in COMMANDS.items():
        module = importlib.import_module(f"tali.cli.{module_name}")
        command = sub.add_parser(name, help=module.HELP, description=module.__doc__)
        module.register(command)
        command.set_defaults(_run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code = int(args._run(args) or 0)
    except TaliError as exc:
        print(f"tali {args.command}: error: {exc}", file=sys.stderr)
        code = 1
    except KeyboardInterrupt:
        code = 130
    return code


if __name__ == "__main__":
    sys.exit(main())
