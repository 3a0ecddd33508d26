"""Texts to ``input_ids`` + ``attention_mask`` with any tokenizer, padded per batch.

:class:`Tokenize` accepts three kinds of tokenizer, so each text
sub-modality can have its own (subtitles with one, Wikipedia captions with
another):

- a ``transformers`` tokenizer or processor (anything with ``.tokenizer`` or
  ``__call__`` returning ``input_ids``), including one loaded by name;
- a ``tiktoken.Encoding`` (with optional ``bos_id`` / ``eos_id`` added around
  the text, since tiktoken adds none);
- any callable ``str -> list[int]``.

Per sample, in the worker, a text becomes an unpadded int64 tensor of at
most ``max_length`` ids, cut on ``truncation_side`` (special tokens are kept).
Padding happens in :meth:`Tokenize.collate` to the longest in the batch
(``padding="longest"``) or always to ``max_length`` (``"max_length"``), on
``padding_side``. When every language is asked for (``TextConfig(language=None)``)
a sample has several texts: the batch is ``[B, K, L]`` with ``text_mask [B, K]``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch

from tali.config import _check_choice
from tali.errors import TaliConfigError, TaliProcessorError

__all__ = ["Padding", "Side", "Tokenize", "pad_sequences"]

Side = Literal["right", "left"]
Padding = Literal["longest", "max_length"]


def pad_sequences(
    seqs: Sequence[torch.Tensor], *, pad_id: int, length: int | None = None, side: Side = "right"
) -> tuple[torch.Tensor, torch.Tensor]:
    """1-D int64 tensors to ``input_ids [B, L]`` and ``attention_mask [B, L]`` (int64, 1 = token)."""
    longest = max((int(s.numel()) for s in seqs), default=0)
    width = max(longest, length or 0)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.int64)
    mask = torch.zeros((len(seqs), width), dtype=torch.int64)
    for i, seq in enumerate(seqs):
        n = int(seq.numel())
        if n == 0:
            continue
        sl = slice(0, n) if side == "right" else slice(width - n, width)
        ids[i, sl] = seq
        mask[i, sl] = 1
    return ids, mask


@dataclass(frozen=True, kw_only=True)
class _Special:
    bos: tuple[int, ...]
    eos: tuple[int, ...]


class Tokenize:
    """One text sub-modality's tokenizer with its length, truncation and padding rules."""

    consumes: ClassVar[tuple[str, ...]] = ("text",)
    produces: ClassVar[tuple[str, ...]] = ("input_ids", "attention_mask", "text_mask")

    def __init__(
        self,
        tokenizer: Any,
        *,
        max_length: int = 77,
        truncation_side: Side = "right",
        padding: Padding = "longest",
        padding_side: Side = "right",
        add_special_tokens: bool = True,
        pad_id: int | None = None,
        bos_id: int | None = None,
        eos_id: int | None = None,
    ) -> None:
        _check_choice("Tokenize", "truncation_side", truncation_side, Side)
        _check_choice("Tokenize", "padding", padding, Padding)
        _check_choice("Tokenize", "padding_side", padding_side, Side)
        if not isinstance(max_length, int) or max_length < 1:
            raise TaliConfigError(f"Tokenize.max_length must be an int >= 1, got {max_length!r}")
        self.max_length, self.truncation_side = max_length, truncation_side
        self.padding, self.padding_side = padding, padding_side
        self.kind, self.tokenizer = _kind_of(tokenizer)
        if self.kind == "hf":
            # Our own copy: truncation_side is tokenizer state, and the caller's
            # tokenizer may be shared with other sub-modalities using other rules.
            self.tokenizer = copy.deepcopy(self.tokenizer)
            self.tokenizer.truncation_side = truncation_side
            self._special = _Special(bos=(), eos=())
            self.add_special_tokens = add_special_tokens
            pad = pad_id if pad_id is not None else self.tokenizer.pad_token_id
        else:
            self._special = _Special(
                bos=(bos_id,) if bos_id is not None and add_special_tokens else (),
                eos=(eos_id,) if eos_id is not None and add_special_tokens else (),
            )
            self.add_special_tokens = add_special_tokens
            pad = pad_id if pad_id is not None else eos_id
        if pad is None:
            raise TaliConfigError(
                f"Tokenize: the {self.kind} tokenizer has no pad token; pass pad_id= (or eos_id=)"
            )
        self.pad_id = int(pad)
        if len(self._special.bos) + len(self._special.eos) >= max_length:
            raise TaliConfigError(f"Tokenize.max_length={max_length} leaves no room for text between bos/eos")

    def __repr__(self) -> str:
        return (
            f"Tokenize({self.kind}:{type(self.tokenizer).__name__}, max_length={self.max_length}, "
            f"truncation_side={self.truncation_side!r}, padding={self.padding!r})"
        )

    def encode(self, text: str) -> torch.Tensor:
        """One text to at most ``max_length`` ids (int64 ``[L]``), special tokens included."""
        if self.kind == "hf":
            ids = self.tokenizer(
                text, truncation=True, max_length=self.max_length, add_special_tokens=self.add_special_tokens
            )["input_ids"]
            return torch.tensor(ids, dtype=torch.int64)
        body = list(self.tokenizer.encode_ordinary(text) if self.kind == "tiktoken" else self.tokenizer(text))
        room = self.max_length - len(self._special.bos) - len(self._special.eos)
        if len(body) > room:
            body = body[:room] if self.truncation_side == "right" else body[len(body) - room :]
        return torch.tensor([*self._special.bos, *body, *self._special.eos], dtype=torch.int64)

    def process(self, value: dict[str, Any], *, item_idx: int | None, field: str) -> dict[str, Any]:
        text = value.get("text")
        texts: list[Any] = text if isinstance(text, list) else [text]
        for t in texts:
            if not isinstance(t, str):
                raise TaliProcessorError(
                    f"expected text (str), got {type(t).__name__}", item_idx=item_idx, field=field
                )
        try:
            ids = [self.encode(t) for t in texts]
        except (ValueError, TypeError) as exc:
            raise TaliProcessorError(
                f"tokenizer failed: {type(exc).__name__}: {exc}", item_idx=item_idx, field=field
            ) from exc
        return {"input_ids": ids if isinstance(text, list) else ids[0]}

    def collate(self, values: Sequence[dict[str, Any]]) -> dict[str, Any]:
        length = self.max_length if self.padding == "max_length" else None
        seqs = [v["input_ids"] for v in values]
        if not isinstance(seqs[0], list):
            ids, mask = pad_sequences(seqs, pad_id=self.pad_id, length=length, side=self.padding_side)
            return {"input_ids": ids, "attention_mask": mask}
        # Several texts per sample (one per language): [B, K, L] plus which of K are real.
        k = max(len(s) for s in seqs)
        flat = [s[j] if j < len(s) else torch.zeros(0, dtype=torch.int64) for s in seqs for j in range(k)]
        ids, mask = pad_sequences(flat, pad_id=self.pad_id, length=length, side=self.padding_side)
        text_mask = torch.tensor([[j < len(s) for j in range(k)] for s in seqs], dtype=torch.bool)
        return {
            "input_ids": ids.view(len(seqs), k, -1),
            "attention_mask": mask.view(len(seqs), k, -1),
            "text_mask": text_mask,
        }


def _kind_of(tokenizer: Any) -> tuple[str, Any]:
    try:
        import tiktoken
    except ImportError:  # pragma: no cover - tiktoken is in the models extra
        tiktoken = None  # type: ignore[assignment]
    if tiktoken is not None and isinstance(tokenizer, tiktoken.Encoding):
        return "tiktoken", tokenizer
    inner = getattr(tokenizer, "tokenizer", None)  # a transformers processor (CLIPProcessor...)
    if inner is not None and hasattr(inner, "pad_token_id"):
        return "hf", inner
    if hasattr(tokenizer, "pad_token_id") and hasattr(tokenizer, "truncation_side"):
        return "hf", tokenizer
    if callable(tokenizer):
        return "callable", tokenizer
    raise TaliConfigError(
        f"Tokenize needs a transformers tokenizer/processor, a tiktoken.Encoding or a callable "
        f"str -> list[int]; got {type(tokenizer).__name__}"
    )


TokenizerFn = Callable[[str], Sequence[int]]
