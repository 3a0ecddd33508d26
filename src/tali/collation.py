"""Batch samples: stack what has one shape, list what does not.

Unlike ``torch.utils.data.default_collate``, lists inside a sample (texts in
every language, PIL frames) stay per-sample lists instead of being transposed,
and tensors whose shapes differ across samples (``size=None``) are kept as a
list rather than failing the batch.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

__all__ = ["collate"]


def collate(samples: Sequence[Any]) -> Any:
    """Collate a list of samples (nested dicts) into a batch of the same structure.

    Tensors ``[...]`` become ``[B, ...]``; ints and bools become ``int64``/``bool``
    tensors ``[B]``; floats ``float64 [B]``; anything else a list of length B.
    """
    if not samples:
        raise ValueError("cannot collate an empty list of samples")
    first = samples[0]
    if isinstance(first, Mapping):
        keys = first.keys()
        for s in samples[1:]:
            if s.keys() != keys:
                raise ValueError(f"samples disagree on keys: {sorted(keys)} vs {sorted(s.keys())}")
        return {k: collate([s[k] for s in samples]) for k in keys}
    if isinstance(first, torch.Tensor):
        if all(
            isinstance(s, torch.Tensor) and s.shape == first.shape and s.dtype == first.dtype for s in samples
        ):
            return torch.stack(list(samples))
        return list(samples)
    if isinstance(first, bool) and all(isinstance(s, bool) for s in samples):
        return torch.tensor(samples, dtype=torch.bool)
    if isinstance(first, int) and all(isinstance(s, int) and not isinstance(s, bool) for s in samples):
        return torch.tensor(samples, dtype=torch.int64)
    if isinstance(first, float) and all(isinstance(s, float) for s in samples):
        return torch.tensor(samples, dtype=torch.float64)
    return list(samples)
