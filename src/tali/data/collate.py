"""Moved to :mod:`tali.collation` (the pipeline and processors batch with it: it lives below them)."""

from tali.collation import *
from tali.collation import __all__  # noqa: F401
