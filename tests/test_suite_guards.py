"""The suite's own guards: a stuck test ends in a report naming it, never in a CI run that hangs."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import textwrap
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _make_test_pytest_options() -> list[str]:
    """The xdist options of `make test` (what CI runs), read from the Makefile."""
    recipe = (REPO / "Makefile").read_text().split("\ntest:", 1)[1]
    line = next(x for x in recipe.splitlines() if " -m pytest " in x)
    options = shlex.split(line.split(" -m pytest ", 1)[1])
    return [o for o in options if o not in ("-q",) and not o.startswith("--durations")]


def test_a_test_stuck_past_its_timeout_ends_the_run_naming_it(pytestconfig, tmp_path):
    """pytest-timeout's signal cannot end a test whose cleanup blocks again (or one stuck in C
    code): faulthandler dumps every thread's stack and ends the worker; `make test`'s xdist
    options then report the crash and finish. With pytest-xdist 3.8's loadgroup and worker
    restarts, the crashed test ran again on each replacement or the run hung (CI timed out).
    Here with this suite's settings, timeouts scaled down to seconds."""
    timeout = float(pytestconfig.getini("timeout"))
    dump = float(pytestconfig.getini("faulthandler_timeout"))
    assert pytestconfig.getini("faulthandler_exit_on_timeout") is True
    assert 0 < timeout < dump, "the signal comes first; faulthandler is the backstop"
    (tmp_path / "test_stuck.py").write_text(
        textwrap.dedent(
            """
            import time

            def test_before():
                assert True

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
    options = _make_test_pytest_options()
    assert "loadgroup" in " ".join(options), options
    began = time.monotonic()
    done = subprocess.run(
        [
            sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *options, "-rA",
            "-o", "timeout=1", "-o", f"faulthandler_timeout={3 * dump / timeout:g}",
            "-o", "faulthandler_exit_on_timeout=true", "test_stuck.py",
        ],
        cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)},
    )  # fmt: skip
    out = done.stdout + done.stderr
    assert time.monotonic() - began < 60, out[-3000:]
    assert done.returncode == 1, out[-3000:]
    assert re.search(r"Timeout \(0:00:0\d(\.\d+)?\)!", out) and "test_stuck.py" in out, out[-3000:]
    assert "crashed while running 'test_stuck.py::test_stuck'" in out, out[-3000:]
    assert re.search(r"\b1 failed\b", out), out[-3000:]  # once: not re-run on a replacement worker
