"""Moved to :mod:`tali.collate` (the pipeline and processors batch with it: it lives below them)."""

from tali.collate import *
from tali.collate import __all__  # noqa: F401
