"""Optional dependencies some tests need, in one place.

`make setup-dev` installs every one of them and `make test` (what CI runs) sets
``TALI_TESTS_NEED_EXTRAS=1``: there a missing one fails the run. A contributor running
pytest in a partial install (the core only, say) gets a skip that names what to install.
"""

from __future__ import annotations

import os

import pytest


def need(ok: bool, why: str) -> None:
    """Fail (under `make test` or CI) or skip with ``why`` unless ``ok``."""
    if ok:
        return
    if os.environ.get("TALI_TESTS_NEED_EXTRAS") or os.environ.get("CI"):
        pytest.fail(why, pytrace=False)
    pytest.skip(why, allow_module_level=True)
