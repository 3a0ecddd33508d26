"""The docs convention, as code: find the ```python blocks of a markdown file and run them.

Every fenced ``python`` block of README.md and docs/**/*.md runs, in order, in one
namespace per file, with the working directory a fresh temporary directory. A block
that must not run is immediately preceded by ``<!-- not-run: <reason> -->``.
Run as a script (``python snippets.py FILE.md``), which is how the test starts it:
one fresh interpreter per file, so a file's imports, workers and threads are its own.
"""

from __future__ import annotations

import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path

NOT_RUN = re.compile(r"^<!--\s*not-run:\s*(?P<reason>.*?)\s*-->\s*$")
FENCE = re.compile(r"^(?P<indent>\s*)(?P<fence>```+|~~~+)\s*(?P<lang>[\w+-]*)")


@dataclass(frozen=True)
class Block:
    path: str
    line: int  # 1-based line of the first code line
    code: str
    skip_reason: str | None


def blocks(path: Path) -> list[Block]:
    """Every fenced python block of ``path``, with the reason it is not run, if any."""
    lines = path.read_text(encoding="utf-8").splitlines()
    out: list[Block] = []
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        fence, lang, start = m["fence"], m["lang"].lower(), i
        j = i + 1
        while j < len(lines) and not lines[j].strip().startswith(fence):
            j += 1
        if lang in ("python", "py"):
            k = start - 1
            while k >= 0 and not lines[k].strip():
                k -= 1
            marker = NOT_RUN.match(lines[k].strip()) if k >= 0 else None
            indent = len(m["indent"])
            code = "\n".join(line[indent:] for line in lines[start + 1 : j])
            out.append(Block(str(path), start + 2, code, marker["reason"] if marker else None))
        i = j + 1
    return out


def stray_markers(path: Path) -> list[int]:
    """Lines of ``not-run`` markers that do not sit right above a python block (stale ones)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    bad = []
    for i, line in enumerate(lines):
        if NOT_RUN.match(line.strip()):
            k = i + 1
            while k < len(lines) and not lines[k].strip():
                k += 1
            m = FENCE.match(lines[k]) if k < len(lines) else None
            if m is None or m["lang"].lower() not in ("python", "py"):
                bad.append(i + 1)
    return bad


def run(path: Path) -> int:
    namespace: dict[str, object] = {"__name__": "__main__"}
    ran = 0
    for block in blocks(path):
        if block.skip_reason is not None:
            continue
        # Compiled with the doc's own name and line numbers: a traceback points into the doc.
        code = compile("\n" * (block.line - 1) + block.code, block.path, "exec")
        print(f"--- {block.path}:{block.line}", flush=True)
        start = time.perf_counter()
        exec(code, namespace)  # noqa: S102 - running the docs is the point
        print(f"--- {block.path}:{block.line} took {time.perf_counter() - start:.1f} s", flush=True)
        ran += 1
    print(f"ran {ran} blocks", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(run(Path(sys.argv[1])))
