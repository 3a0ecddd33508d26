"""The suite's own guards: a stuck test ends in a report, never in a CI run that hangs."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time


def test_a_test_stuck_past_its_timeout_ends_its_worker_with_a_stack_dump(pytestconfig, tmp_path):
    """pytest-timeout's signal cannot end a test whose cleanup blocks again (or one stuck in C
    code): faulthandler then dumps every thread's stack and ends the worker, xdist reports the
    crash, and the run finishes. Here with this suite's settings, scaled down to seconds."""
    timeout = float(pytestconfig.getini("timeout"))
    dump = float(pytestconfig.getini("faulthandler_timeout"))
    assert pytestconfig.getini("faulthandler_exit_on_timeout") is True
    assert 0 < timeout < dump, "the signal comes first; faulthandler is the backstop"
    (tmp_path / "test_stuck.py").write_text(
        textwrap.dedent(
            """
            import time

            def test_stuck():
                while True:  # a cleanup that blocks again whatever is raised into it
                    try:
                        time.sleep(60)
                    except BaseException:
                        pass

            def test_after():
                assert True
            """
        )
    )
    began = time.monotonic()
    done = subprocess.run(
        [
            sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-n", "1", "-q", "-rA",
            "-o", "timeout=1", "-o", f"faulthandler_timeout={3 * dump / timeout:g}",
            "-o", "faulthandler_exit_on_timeout=true", "test_stuck.py",
        ],
        cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)},
    )  # fmt: skip
    out = done.stdout + done.stderr
    assert time.monotonic() - began < 90, out[-3000:]
    assert done.returncode == 1, out[-3000:]
    assert "Timeout" in out and "test_stuck.py" in out, out[-3000:]  # the stack dump
    assert "crashed while running" in out and "test_stuck.py::test_stuck" in out, out[-3000:]
    assert "PASSED test_stuck.py::test_after" in out, out[-3000:]  # the run went on
