"""Default processors by model name (loopback Hub), from directories, and offline without files."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tali.errors import TaliModelAssetError
from tali.processors import (
    ClipPixels,
    Tokenize,
    WhisperLogMel,
    clip_tokenizer_from_bpe,
    default_processors,
    load_clip,
    load_whisper,
)

SRC = str(Path(__file__).resolve().parents[2] / "src")
PROBE = """
import warnings; warnings.filterwarnings("ignore")
from tali.errors import TaliModelAssetError
from tali.processors import default_processors
try:
    procs = default_processors()
except TaliModelAssetError as exc:
    print("ERROR", exc)
else:
    tok = procs["youtube_title_text"]
    print("OK", procs["youtube_content_audio"].n_mels, procs["youtube_content_video"].size, tok.encode("a photo of a cat").tolist())
"""


def _probe(env_extra: dict[str, str]) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    env.update(PYTHONPATH=SRC, HF_HUB_DISABLE_TELEMETRY="1", **env_extra)
    done = subprocess.run(
        [sys.executable, "-c", PROBE], check=False, env=env, capture_output=True, text=True, timeout=240
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.strip().splitlines()[-1]


def test_defaults_by_name_through_a_hub_then_offline_from_cache(loopback_hub, tmp_path):
    """transformers fetches the default names from a (loopback) Hub; the cache then serves offline."""
    home = str(tmp_path / "hf-home")
    online = _probe({"HF_ENDPOINT": loopback_hub["endpoint"], "HF_HOME": home})
    assert online == "OK 80 224 [49406, 320, 1125, 539, 320, 2368, 49407]"
    gets = [r for r in loopback_hub["requests"] if r.startswith("GET ") and "/resolve/" in r]
    assert any(
        r.startswith("GET /openai/clip-vit-base-patch16/") and r.endswith("/preprocessor_config.json")
        for r in gets
    )
    assert any(
        r.startswith("GET /openai/whisper-base/") and r.endswith("/preprocessor_config.json") for r in gets
    )
    assert not any(
        "safetensors" in r or ".bin" in r for r in gets
    )  # configs and vocabulary only, never weights
    offline = _probe({"HF_HUB_OFFLINE": "1", "HF_HOME": home})
    assert offline == online


def test_offline_without_files_names_them(tmp_path):
    line = _probe({"HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "empty")})
    assert line.startswith("ERROR cannot load the processor files of 'openai/clip-vit-base-patch16'")
    assert "preprocessor_config.json, tokenizer_config.json, vocab.json, merges.txt" in line
    assert "hf download openai/clip-vit-base-patch16" in line


def test_offline_in_process_raises_typed_error(tmp_path):
    with pytest.raises(TaliModelAssetError, match=r"openai/whisper-base.*Needed: preprocessor_config.json"):
        load_whisper(local_files_only=True, cache_dir=str(tmp_path))
    with pytest.raises(TaliModelAssetError, match=r"openai/clip-vit-base-patch16.*--local-dir DIR"):
        load_clip(local_files_only=True, cache_dir=str(tmp_path))
    assert issubclass(TaliModelAssetError, OSError)


def test_from_local_directories(asset_dirs, bert_tokenizer):
    procs = default_processors(
        clip=str(asset_dirs["clip"]),
        whisper=str(asset_dirs["whisper128"]),
        normalize="device",
        audio_padding="window",
        text_overrides={"youtube_subtitle_text": Tokenize(bert_tokenizer, max_length=128)},
    )
    audio = procs["youtube_content_audio"]
    assert isinstance(audio, WhisperLogMel) and audio.n_mels == 128 and audio.padding == "window"
    video = procs["wikipedia_caption_image"]
    assert isinstance(video, ClipPixels) and video.normalize == "device"
    assert procs["youtube_subtitle_text"].max_length == 128
    assert procs["youtube_title_text"].max_length == 77
    assert procs["youtube_title_text"].encode("a cat").tolist() == [49406, 320, 2368, 49407]


def test_directory_missing_files(tmp_path, asset_dirs):
    (tmp_path / "preprocessor_config.json").write_bytes(
        (asset_dirs["clip"] / "preprocessor_config.json").read_bytes()
    )
    with pytest.raises(TaliModelAssetError, match=r"lacks tokenizer_config.json, vocab.json, merges.txt"):
        load_clip(str(tmp_path))
    empty = tmp_path / "w"
    empty.mkdir()
    with pytest.raises(TaliModelAssetError, match=r"lacks preprocessor_config.json"):
        load_whisper(str(empty))


def test_bad_bpe_file(tmp_path):
    bad = tmp_path / "vocab.txt.gz"
    bad.write_bytes(b"not gzip")
    with pytest.raises(TaliModelAssetError, match="cannot read CLIP BPE vocabulary"):
        clip_tokenizer_from_bpe(bad)
