"""A tiny four-tower contrastive model and the offline processors the examples share.

Each tower maps its sub-modality to a unit vector in R^dim; the loss is CLIP's
symmetric InfoNCE over the pairs (caption image, caption text), (video, audio) and
(video, subtitle text), so one step touches every modality of a TALI sample.
"""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

import tali
from tali.processors import ClipPixels, ProcessorSet, Tokenize, WhisperLogMel, clip_tokenizer_from_bpe

#: What the examples ask the loader for: a 1 s window, 2 frames of 64 px, 16 kHz audio.
CONFIG = tali.TaliConfig(
    modalities=(
        "wikipedia_caption_image",
        "wikipedia_caption_text",
        "youtube_content_video",
        "youtube_content_audio",
        "youtube_subtitle_text",
    ),
    window=tali.WindowConfig(seconds=1.0),
    video=tali.VideoConfig(num_frames=2, size=64),
    image=tali.ImageConfig(size=64),
    audio=tali.AudioConfig(on_missing="zeros"),
)


def clip_bpe_path() -> Path:
    """CLIP's BPE vocabulary as open_clip_torch ships it (the dev setup installs it, --no-deps)."""
    return Path(
        importlib.metadata.distribution("open_clip_torch").locate_file(
            "open_clip/bpe_simple_vocab_16e6.txt.gz"
        )
    )


def build_processors(bpe: Path | None = None) -> ProcessorSet:
    """CLIP pixels, Whisper log-mel (no padding to 30 s) and the real CLIP tokenizer, all offline."""
    tokenizer = clip_tokenizer_from_bpe(bpe or clip_bpe_path())
    text = Tokenize(tokenizer, max_length=32)
    pixels = ClipPixels(size=64)
    return ProcessorSet(
        {
            "wikipedia_caption_image": pixels,
            "youtube_content_video": pixels,
            "youtube_content_audio": WhisperLogMel(padding="window"),
            "wikipedia_caption_text": text,
            "youtube_subtitle_text": text,
        }
    )


class Towers(nn.Module):
    def __init__(self, dim: int = 32, vocab: int = 49_408) -> None:
        super().__init__()
        self.image = nn.Sequential(
            nn.Conv2d(3, 16, 5, stride=4),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(16, dim),
        )
        self.audio = nn.Sequential(
            nn.Conv1d(80, 32, 5, stride=2),
            nn.ReLU(),
            nn.AdaptiveAvgPool1d(1),
            nn.Flatten(),
            nn.Linear(32, dim),
        )
        self.text = nn.EmbeddingBag(vocab, dim, mode="sum")
        self.video = nn.Linear(dim, dim)  # on top of the image tower, averaged over frames
        self.log_temperature = nn.Parameter(torch.tensor(2.0))

    def embed_text(self, tokens: dict[str, torch.Tensor]) -> torch.Tensor:
        """Mean of the token embeddings under the attention mask (padding weighs 0)."""
        ids, mask = tokens["input_ids"], tokens["attention_mask"].float()
        return self.text(ids, per_sample_weights=mask / mask.sum(1, keepdim=True).clamp(min=1))

    def forward(self, batch: dict) -> torch.Tensor:
        image = self.image(batch["wikipedia_caption_image"]["pixel_values"])
        frames = batch["youtube_content_video"]["pixel_values"]  # [B, N, 3, S, S]
        b, n = frames.shape[:2]
        video = self.video(self.image(frames.flatten(0, 1)).view(b, n, -1).mean(1))
        audio = self.audio(batch["youtube_content_audio"]["input_features"])
        caption = self.embed_text(batch["wikipedia_caption_text"])
        subtitles = self.embed_text(batch["youtube_subtitle_text"])
        scale = self.log_temperature.exp()
        return sum(_clip_loss(a, c, scale) for a, c in ((image, caption), (video, audio), (video, subtitles)))


def _clip_loss(a: torch.Tensor, b: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    logits = scale * F.normalize(a, dim=-1) @ F.normalize(b, dim=-1).T
    target = torch.arange(len(a), device=a.device)
    return (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2
