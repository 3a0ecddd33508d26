"""Default processors (CLIP ViT-B/16 + Whisper base), loaded by name or from a directory.

``default_processors()`` asks ``transformers`` for ``openai/clip-vit-base-patch16``
and ``openai/whisper-base``: from the Hub when it is reachable, from the HF
cache or a local directory otherwise. Only small files are read (processor
configs and the tokenizer vocabulary), never weights. When they cannot be
found, :class:`~tali.errors.TaliModelAssetError` names the files and how to
provide them, instead of a long ``transformers`` traceback.

``clip_tokenizer_from_bpe`` builds the real CLIP tokenizer from the
``bpe_simple_vocab_16e6.txt.gz`` file that OpenAI's CLIP ships (and several
PyPI packages vendor, e.g. ``open_clip_torch``), so CLIP tokenisation works
without any download.
"""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

from tali.errors import TaliModelAssetError
from tali.processors.audio import AudioPadding, WhisperLogMel
from tali.processors.base import ProcessorSet
from tali.processors.image import ClipPixels, NormalizeOn
from tali.processors.text import Tokenize
from tali.schema import Modality, SubModality

__all__ = [
    "CLIP_FILES",
    "DEFAULT_CLIP",
    "DEFAULT_WHISPER",
    "WHISPER_FILES",
    "clip_tokenizer_from_bpe",
    "default_processors",
    "load_clip",
    "load_whisper",
]

DEFAULT_CLIP = "openai/clip-vit-base-patch16"
DEFAULT_WHISPER = "openai/whisper-base"
#: What a local CLIP directory needs (no weights): processor config and tokenizer.
CLIP_FILES = ("preprocessor_config.json", "tokenizer_config.json", "vocab.json", "merges.txt")
WHISPER_FILES = ("preprocessor_config.json",)


def _asset_error(
    name: str, files: tuple[str, ...], exc: BaseException, offline: str | None = None
) -> TaliModelAssetError:
    listed = " ".join(files)
    cause = f"the Hub was not asked: {offline}; no cached copy" if offline else type(exc).__name__
    first = (str(exc).splitlines() or [""])[0][:200]
    return TaliModelAssetError(
        f"cannot load the processor files of {name!r} ({cause}: {first}). "
        f"Needed: {', '.join(files)}. Provide them by either (1) running once where the Hub is reachable: "
        f"`hf download {name} {listed} --local-dir DIR` and passing DIR as the model name, or "
        f"(2) letting transformers cache them there (HF_HOME) and copying that cache here, or "
        f"(3) saving your own processor with .save_pretrained(DIR)."
    )


def _missing_local(name: str, files: tuple[str, ...]) -> list[str]:
    path = Path(name)
    if not path.is_dir():
        return []
    # A saved fast tokenizer may carry tokenizer.json instead of vocab/merges.
    have = {p.name for p in path.iterdir()}
    missing = [f for f in files if f not in have]
    if "tokenizer.json" in have:
        missing = [f for f in missing if f not in ("vocab.json", "merges.txt")]
    return missing


def _offline_kwargs(name: str, kwargs: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    """With no way to reach the Hub (``HF_HUB_OFFLINE``, or a failed one-second-scale
    probe), ask ``transformers`` for cached files only: otherwise it retries every file
    for most of a minute before the same error. Returns the kwargs and why."""
    if Path(name).is_dir() or kwargs.get("local_files_only"):
        return kwargs, None
    from tali.hub_access import offline, reachable

    why = "HF_HUB_OFFLINE is set" if offline() else reachable()
    if why is None:
        return kwargs, None
    return {**kwargs, "local_files_only": True}, why


def load_clip(name: str = DEFAULT_CLIP, **kwargs: Any) -> tuple[Any, Any]:
    """``(CLIPImageProcessor, CLIPTokenizer)`` for a model name or local directory."""
    missing = _missing_local(name, CLIP_FILES)
    if missing:
        raise TaliModelAssetError(
            f"{name} is a directory but lacks {', '.join(missing)}; needed: {', '.join(CLIP_FILES)} "
            f"(get them with `hf download {DEFAULT_CLIP} {' '.join(CLIP_FILES)} --local-dir {name}`)"
        )
    kwargs, why = _offline_kwargs(name, kwargs)
    try:
        from transformers import CLIPImageProcessor, CLIPTokenizer

        return (
            CLIPImageProcessor.from_pretrained(name, **kwargs),
            CLIPTokenizer.from_pretrained(name, **kwargs),
        )
    except ImportError:
        from tali._optional import require

        require("transformers", extra="models", feature="CLIP processors")
        raise
    except (OSError, ValueError) as exc:
        raise _asset_error(name, CLIP_FILES, exc, why) from exc


def load_whisper(name: str = DEFAULT_WHISPER, **kwargs: Any) -> Any:
    """``WhisperFeatureExtractor`` for a model name or local directory."""
    missing = _missing_local(name, WHISPER_FILES)
    if missing:
        raise TaliModelAssetError(
            f"{name} is a directory but lacks {', '.join(missing)} "
            f"(get it with `hf download {DEFAULT_WHISPER} preprocessor_config.json --local-dir {name}`)"
        )
    kwargs, why = _offline_kwargs(name, kwargs)
    try:
        from transformers import WhisperFeatureExtractor

        return WhisperFeatureExtractor.from_pretrained(name, **kwargs)
    except ImportError:
        from tali._optional import require

        require("transformers", extra="models", feature="Whisper processors")
        raise
    except (OSError, ValueError) as exc:
        raise _asset_error(name, WHISPER_FILES, exc, why) from exc


def default_processors(
    *,
    clip: str = DEFAULT_CLIP,
    whisper: str = DEFAULT_WHISPER,
    normalize: NormalizeOn = "host",
    audio_padding: AudioPadding = "30s",
    max_length: int | None = None,
    text_overrides: dict[str | SubModality, Tokenize] | None = None,
    keep_raw: bool = False,
    **from_pretrained: Any,
) -> ProcessorSet:
    """CLIP for every image, frame and text sub-modality; Whisper log-mel for audio.

    ``text_overrides`` replaces the tokenizer of single text sub-modalities
    (e.g. ``{"youtube_subtitle_text": Tokenize(bert, max_length=256)}``).
    ``from_pretrained`` kwargs (``local_files_only``, ``cache_dir``, ``revision``)
    go to ``transformers``.
    """
    image_proc, tokenizer = load_clip(clip, **from_pretrained)
    extractor = load_whisper(whisper, **from_pretrained)
    pixels = ClipPixels.from_hf(image_proc, normalize=normalize)
    text = Tokenize(tokenizer, max_length=max_length or int(min(tokenizer.model_max_length, 77)))
    procs: dict[str | SubModality, Any] = {}
    for sub in SubModality:
        if sub.modality in (Modality.IMAGE, Modality.VIDEO):
            procs[sub] = pixels
        elif sub.modality is Modality.TEXT:
            procs[sub] = text
        elif sub.modality is Modality.AUDIO:
            procs[sub] = WhisperLogMel.from_hf(extractor, padding=audio_padding)
    for name, override in (text_overrides or {}).items():
        procs[name.value if isinstance(name, SubModality) else name] = override
    return ProcessorSet(
        {(k.value if isinstance(k, SubModality) else k): v for k, v in procs.items()}, keep_raw=keep_raw
    )


def clip_tokenizer_from_bpe(path: str | Path, *, model_max_length: int = 77) -> Any:
    """The CLIP tokenizer (``transformers.CLIPTokenizer``) from CLIP's ``bpe_simple_vocab_16e6.txt.gz``.

    Reproduces OpenAI's ``SimpleTokenizer`` vocabulary: 256 byte symbols, the
    same with ``</w>``, the first 48,894 merges, then ``<|startoftext|>`` and
    ``<|endoftext|>`` (49,408 ids; "a photo of a cat" -> 49406 320 1125 539 320 2368 49407).
    """
    from transformers import CLIPTokenizer

    try:
        with gzip.open(path, "rt", encoding="utf-8") as fh:
            lines = fh.read().split("\n")
    except OSError as exc:
        raise TaliModelAssetError(f"cannot read CLIP BPE vocabulary {path}: {exc}") from exc
    merges = [tuple(line.split()) for line in lines[1 : 49152 - 256 - 2 + 1]]
    symbols = list(_bytes_to_unicode().values())
    vocab_list = symbols + [s + "</w>" for s in symbols] + ["".join(m) for m in merges]
    vocab_list += ["<|startoftext|>", "<|endoftext|>"]
    vocab = {token: i for i, token in enumerate(vocab_list)}
    return CLIPTokenizer(vocab=vocab, merges=merges, model_max_length=model_max_length)  # type: ignore[arg-type]


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2/CLIP's reversible byte -> printable character map (same order as CLIP's)."""
    bs = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs), strict=True))
