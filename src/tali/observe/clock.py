"""Moved to :mod:`tali.clock` (the loaders and the transform use it: it lives below them)."""

from tali.clock import *
from tali.clock import __all__  # noqa: F401
