"""What every ``tali`` command shares: the help layout, value types that refuse
nonsense at parse time, and the one-line error convention (see ``tali.cli.main``)."""

from __future__ import annotations

import argparse

from tali.errors import TaliConfigError

__all__ = ["CliError", "HelpFormatter", "non_negative_int", "positive_float", "positive_int"]


class HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """Descriptions keep their line breaks (so examples stay one per line) and every
    option with a default shows it."""

    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=32, width=100)

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default in (None, False, argparse.SUPPRESS) or "%(default)" in (action.help or ""):
            return action.help  # "(default: None)" says nothing
        return super()._get_help_string(action)


class CliError(TaliConfigError):
    """A command-line value that cannot work; printed as one ``tali CMD: error: ...`` line."""


def positive_int(text: str) -> int:
    """An int >= 1 (``--batch-size``, ``--epochs``, ``--samples``)."""
    value = _int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {text}")
    return value


def non_negative_int(text: str) -> int:
    """An int >= 0 (``--workers``: 0 means in this process)."""
    value = _int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be an integer >= 0, got {text}")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer, got {text!r}") from None
