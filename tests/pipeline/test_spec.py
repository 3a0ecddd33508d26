"""Pipeline and config files are untrusted text: non-finite numbers, alias bombs and deep
nesting end as a TaliConfigError naming the key, in bounded time and memory; the CLI, the
viewer and pipeline files build a TaliConfig through one parser (issue 24 item 8, issue 22)."""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import pytest

import tali
from tali.config import TaliConfig
from tali.errors import TaliConfigError
from tali.pipeline import Pipeline

NON_FINITE = [
    ("window", "seconds"),
    ("window", "start"),
    ("window", "max_clip_seconds"),
    ("video", "max_decode_seconds"),
    ("image", "max_decode_seconds"),
]


@pytest.mark.parametrize(("part", "key"), NON_FINITE)
@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_non_finite_numbers_are_refused_naming_the_key(part, key, value):
    with pytest.raises(TaliConfigError, match=rf"{part}.*{key}.*finite"):
        TaliConfig.from_dict({part: {key: value}})
    with pytest.raises(TaliConfigError, match=rf"{key}.*finite"):
        Pipeline.from_dict({"config": {part: {key: value}}, "stages": ["decode"]})


@pytest.mark.parametrize("literal", ["nan", "inf", "-inf"])
def test_non_finite_numbers_in_yaml_and_toml_files(tmp_path, literal):
    yaml_file = tmp_path / "p.yaml"
    yaml_file.write_text(f"config:\n  window: {{start: .{literal.lstrip('-')}}}\nstages: [decode]\n")
    with pytest.raises(TaliConfigError, match=r"config.window.start=.*not a finite number"):
        Pipeline.from_file(yaml_file)
    toml_file = tmp_path / "p.toml"
    toml_file.write_text(f'stages = ["decode"]\n[config.video]\nmax_decode_seconds = {literal}\n')
    with pytest.raises(TaliConfigError, match=r"config.video.max_decode_seconds=.*not a finite number"):
        Pipeline.from_file(toml_file)
    # augment arguments too (a NaN speed would reach the time map)
    yaml_file.write_text("stages: [decode, {augment: {time: {speed: [.nan, 1.1]}}}]\n")
    with pytest.raises(TaliConfigError, match=r"augment.time.speed\[0\]=nan is not a finite number"):
        Pipeline.from_file(yaml_file)


def _laughs(levels: int = 9, width: int = 9) -> str:
    """The billion laughs: ``width ** levels`` strings from a few hundred bytes."""
    lines = ['a0: &a0 ["lol"' + ', "lol"' * (width - 1) + "]"]
    for i in range(1, levels + 1):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * width) + "]")
    return "\n".join(lines)


BOMBS = {
    "stage arguments": "stages:\n  - decode\n  - stage: tests.pipeline.user_stages:tag_window\n"
    "    args:\n      label: &top {{bomb}}\n",
    "augment": "stages:\n  - decode\n  - augment: {time: {speed: {bomb}}}\n",
}

# The file is built and loaded in a child whose address space is capped, so even the old
# reader (yaml.safe_load grew to 6 GB on these) cannot eat the shared machine: it fails
# the test by a crash or a time-out instead.
_CHILD = """
import json, resource, sys, time
resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))
from tali.pipeline import Pipeline
t0 = time.monotonic()
try:
    Pipeline.from_file(sys.argv[1])
    out = {"error": None}
except Exception as exc:
    out = {"error": type(exc).__name__, "message": str(exc)[:500]}
out["seconds"] = time.monotonic() - t0
# VmHWM, not RUSAGE_SELF: after exec, ru_maxrss still holds the forking parent's peak (pytest's).
out["peak_rss_bytes"] = int(next(l for l in open("/proc/self/status") if l.startswith("VmHWM")).split()[1]) * 1024
print(json.dumps(out))
"""


def _load_in_child(path: Path) -> dict:
    root = Path(tali.__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), str(Path(__file__).parents[2])])}
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("where", sorted(BOMBS))
def test_yaml_alias_bombs_end_fast_with_a_typed_error(tmp_path, where):
    body = _laughs()
    text = body + "\n" + BOMBS[where].replace("{bomb}", "*a9")
    path = tmp_path / "bomb.yaml"
    path.write_text(text)
    got = _load_in_child(path)
    assert got["error"] == "TaliConfigError", got
    assert "node limit" in got["message"] and str(path) in got["message"]
    assert got["seconds"] < 10 and got["peak_rss_bytes"] < 500 << 20, got


@pytest.mark.parametrize("suffix", [".yaml", ".toml"])
def test_deep_nesting_is_a_typed_error(tmp_path, suffix):
    depth = 5000
    path = tmp_path / f"deep{suffix}"
    if suffix == ".yaml":
        path.write_text("stages: [decode]\nconfig: {window: " + "[" * depth + "1" + "]" * depth + "}\n")
    else:
        path.write_text('stages = ["decode"]\n[config]\nwindow = ' + "[" * depth + "1" + "]" * depth + "\n")
    with pytest.raises(TaliConfigError, match=r"nest|depth") as err:
        Pipeline.from_file(path)
    assert str(path) in str(err.value)
    # a modest nesting past the limit names where it happened
    path.write_text(
        "stages: [decode]\nconfig: {window: " + "[" * 40 + "1" + "]" * 40 + "}\n"
        if suffix == ".yaml"
        else 'stages = ["decode"]\n[config]\nwindow = ' + "[" * 40 + "1" + "]" * 40 + "\n"
    )
    with pytest.raises(TaliConfigError, match=r"depth limit.*config.window"):
        Pipeline.from_file(path)


def test_a_file_over_the_byte_limit_is_refused_unread(tmp_path):
    path = tmp_path / "big.yaml"
    path.write_text("stages: [decode]\n#" + "x" * 2_000_000 + "\n")
    with pytest.raises(TaliConfigError, match="bytes"):
        Pipeline.from_file(path)


def test_cli_viewer_and_pipeline_file_build_one_config(tmp_path):
    """The same knobs through the three entry points give equal configs (one parser)."""
    from tali.cli._config_args import add_config_arguments, config_from_args
    from tali.view.sample import SampleParams

    parser = argparse.ArgumentParser()
    add_config_arguments(parser)
    args = parser.parse_args(["--seconds", "2", "--num-frames", "4", "--size", "64", "--seed", "7"])
    from_cli = config_from_args(args)
    spec = tmp_path / "p.yaml"
    spec.write_text(
        textwrap.dedent(
            """
            config:
              window: {seconds: 2.0}
              video: {num_frames: 4, size: 64, selection: uniform, interpolation: bicubic, keyframes_only: false}
              audio: {sample_rate: 16000, on_missing: zeros}
              image: {size: 64}
              seed: 7
            stages: [decode]
            """
        )
    )
    assert Pipeline.from_file(spec).config == from_cli
    view = SampleParams(seconds=2.0, start=1.5, num_frames=4, size=64, seed=7).config()
    assert view.window.start == 1.5 and view.video.num_frames == 4 and view.seed == 7
    assert view == TaliConfig.from_dict(
        {
            "modalities": [m.value for m in view.modalities],
            "window": {"seconds": 2.0, "start": 1.5},
            "video": {"num_frames": 4, "size": 64},
            "audio": {"on_missing": "zeros"},
            "image": {"size": 64},
            "seed": 7,
        }
    )
    with pytest.raises(TaliConfigError, match=r"flags: .*modalities|not a sub-modality|unknown"):
        config_from_args(parser.parse_args(["--modalities", "vidoe"]))


def test_per_row_limits_have_one_name_per_meaning():
    """Every per-row limit field is named from tali.limits.LIMIT_NAMES; the old names that meant
    something else are accepted with a DeprecationWarning and land on the new field."""
    import dataclasses

    from tali.config import AudioConfig, ImageConfig, TextConfig, VideoConfig, WindowConfig
    from tali.limits import LIMIT_NAMES
    from tali.prepare.settings import PrepareSettings
    from tali.quality import CheckLimits, MetricsOptions

    for cls in (
        WindowConfig,
        VideoConfig,
        AudioConfig,
        ImageConfig,
        TextConfig,
        CheckLimits,
        MetricsOptions,
        PrepareSettings,
    ):
        for f in dataclasses.fields(cls):
            if f.name.startswith("max_") and f.name not in ("max_fps",):
                assert f.name in LIMIT_NAMES, f"{cls.__name__}.{f.name}"
    with pytest.warns(DeprecationWarning, match="max_decode_seconds"):
        assert MetricsOptions(max_clip_seconds=5.0).max_decode_seconds == 5.0
    with pytest.warns(DeprecationWarning, match="max_decode_seconds"):
        assert PrepareSettings(max_clip_seconds=7.0).max_decode_seconds == 7.0
    with pytest.warns(DeprecationWarning, match="max_clip_seconds"):
        assert CheckLimits(max_clip_length_seconds=99.0).max_clip_seconds == 99.0
    with pytest.warns(DeprecationWarning, match="max_image_decode_seconds"):
        assert CheckLimits(max_image_seconds=3.0).max_image_decode_seconds == 3.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        limits = CheckLimits()
    assert limits.max_decode_seconds == 60.0 and limits.max_clip_seconds == 600.0
