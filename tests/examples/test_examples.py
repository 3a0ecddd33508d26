"""Every script in examples/ runs as a user would run it, on the sample data, and does what it says."""

from __future__ import annotations

import ast
import json
import math
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import tali

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"


def _env() -> dict[str, str]:
    # The interpreter's own path first, so the tree under test (not an installed copy) is imported.
    return {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p), "OMP_NUM_THREADS": "1"}


def _run(args: list[str], timeout: int = 300) -> str:
    proc = subprocess.run(args, env=_env(), capture_output=True, text=True, timeout=timeout, check=False)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return proc.stdout


def test_contrastive_training_steps(sample_root):
    out = _run(
        [sys.executable, str(EXAMPLES / "train_contrastive.py"), "--root", str(sample_root), "--steps", "3"]
    )
    steps = re.findall(r"step (\d+) loss ([-\d.]+) items \[(\d+), (\d+)\]", out)
    assert [int(s) for s, *_ in steps] == [1, 2, 3]
    losses = [float(loss) for _, loss, *_ in steps]
    # Three symmetric InfoNCE terms over a batch of 2: each starts near ln 2 and moves as it trains.
    assert all(math.isfinite(v) and 0 < v < 6 for v in losses) and len(set(losses)) == 3
    items = {int(i) for *_, a, b in steps for i in (a, b)}
    assert items <= set(range(16)) and len(items) == 6  # distinct rows: one epoch, no repeats


def test_curation_pipeline_keeps_exactly_the_good_rows(sample_root, truth, tmp_path):
    out = _run(
        [sys.executable, str(EXAMPLES / "curation.py"), "--root", str(sample_root), "--out", str(tmp_path)]
    )
    expected = sorted(
        t["item_idx"]
        for t in truth.values()
        if t["split"] == "test"
        and t["has_audio"]
        and not t["silent"]
        and t["duration_seconds"] >= 20
        and not t["frozen_seconds"]
    )
    assert 0 < len(expected) < 4
    assert f"loaded back {len(expected)} rows: {expected}" in out
    curated = tali.TaliDataset(
        tmp_path / "curated", split="test", config=tali.TaliConfig(modalities=("youtube_title_text",))
    )
    assert sorted(curated[i]["item_idx"] for i in range(len(curated))) == expected
    assert (tmp_path / "metrics.parquet").is_file()


def _documented_commands() -> list[tuple[str, str]]:
    """(doc, command) for every line of a ```bash block in README.md and docs/ that runs an
    example, then the examples' own usage lines, each once, in that order."""
    found = []
    for doc in [ROOT / "README.md", *sorted((ROOT / "docs").glob("**/*.md"))]:
        for block in re.findall(r"```bash\n(.*?)```", doc.read_text(), flags=re.DOTALL):
            for line in block.splitlines():
                command = line.split("  #")[0].strip()
                if "examples/" in command and not command.startswith("#"):
                    found.append((doc.name, command))
    for script in sorted(EXAMPLES.glob("*.py")):  # the usage lines of each script's docstring
        for line in (ast.get_docstring(ast.parse(script.read_text())) or "").splitlines():
            command = line.split("  #")[0].strip()
            # Those on the sample data; "~/data/TALI" stands for a user's download.
            if command.startswith(("python ", "torchrun ")) and "~/" not in command:
                found.append((script.name, command))
    seen: set[str] = set()
    return [(doc, c) for doc, c in found if not (c in seen or seen.add(c))]


def _as_run_here(command: str) -> list[str]:
    """The documented words, with this interpreter for ``python`` and ``torchrun``."""
    words = shlex.split(command)
    if words[0] == "python":
        return [sys.executable, *words[1:]]
    if words[0] == "torchrun":
        return [sys.executable, "-m", "torch.distributed.run", *words[1:]]
    raise AssertionError(f"an example command that starts with {words[0]!r}: {command}")


@pytest.mark.slow
def test_every_documented_example_command_runs_as_shown_in_a_fresh_clone(sample_root, tmp_path):
    """The commands exactly as the docs show them, in order, in a fresh copy of examples/ where
    their output folders do not exist yet (`--out run/` once died after training for want of run/)."""
    commands = _documented_commands()
    assert {c for _, c in commands} >= {
        "torchrun --standalone --nproc_per_node=2 examples/train_ddp.py --stop-after 1 --out run/",
        "python examples/curation.py --out curated/",
    }
    clone = tmp_path / "clone"
    shutil.copytree(EXAMPLES, clone / "examples", ignore=shutil.ignore_patterns("__pycache__"))
    env = {**_env(), "TALI_CACHE_DIR": str(sample_root.parent)}  # the sample data, as built once
    for doc, command in commands:
        proc = subprocess.run(
            _as_run_here(command),
            cwd=clone,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        assert proc.returncode == 0, (doc, command, proc.stderr[-4000:])
    runs = {
        (r, phase): json.loads((clone / "run" / f"rank{r}-{phase}.json").read_text())
        for r in range(2)
        for phase in ("first", "resumed")
    }
    assert {v["world_size"] for v in runs.values()} == {2}
    first = [i for r in range(2) for i in runs[r, "first"]["items"]]
    rest = [i for r in range(2) for i in runs[r, "resumed"]["items"]]
    assert len(first) == 4  # one step of batch 2 on each rank before the stop
    assert sorted(first + rest) == list(range(16))  # the split exactly once across both runs
    # Resumed ranks continue the step count from the checkpoint and stay in lockstep.
    assert runs[0, "resumed"]["step"] == runs[1, "resumed"]["step"] == 4
    curated = tali.TaliDataset(
        clone / "curated" / "curated",
        split="test",
        config=tali.TaliConfig(modalities=("youtube_title_text",)),
    )
    assert 0 < len(curated) < 4
