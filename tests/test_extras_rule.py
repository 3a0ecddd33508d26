"""The rule for optional test dependencies: a failure under `make test` or CI, a skip naming the install elsewhere."""

from __future__ import annotations

import pytest
from tests.extras import need


def test_missing_extras_fail_under_make_test_and_skip_with_the_install_command_elsewhere(monkeypatch):
    why = "needs the ray extra: pip install 'tali-dataset[ray]'"
    need(True, why)  # present: nothing happens
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.setenv("TALI_TESTS_NEED_EXTRAS", "1")
    with pytest.raises(pytest.fail.Exception, match=r"tali-dataset\[ray\]"):
        need(False, why)
    monkeypatch.delenv("TALI_TESTS_NEED_EXTRAS")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception):
        need(False, why)
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception, match=r"tali-dataset\[ray\]"):
        need(False, why)
