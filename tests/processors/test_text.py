"""Tokenizers per sub-modality: HF (CLIP, BERT), tiktoken, callables; truncation and per-batch padding."""

from __future__ import annotations

import pickle

import pytest
import torch

import tali
from tali.errors import TaliConfigError, TaliProcessorError
from tali.processors import ProcessorSet, Tokenize, pad_sequences

SOT, EOT = 49406, 49407


def test_clip_tokenizer_from_vendored_bpe(clip_tokenizer):
    assert len(clip_tokenizer) == 49408
    assert clip_tokenizer("a photo of a cat")["input_ids"] == [SOT, 320, 1125, 539, 320, 2368, EOT]


def test_truncation_sides_keep_special_tokens(clip_tokenizer):
    text = "start " + "middle " * 100 + "finish"
    right = Tokenize(clip_tokenizer, max_length=10).encode(text)
    left = Tokenize(clip_tokenizer, max_length=10, truncation_side="left").encode(text)
    assert right.numel() == left.numel() == 10
    assert right[0] == left[0] == SOT and right[-1] == left[-1] == EOT
    assert clip_tokenizer.decode(right[1:-1]).startswith("start")
    assert clip_tokenizer.decode(left[1:-1]).rstrip().endswith("finish")
    # Our copy carries the side; the caller's tokenizer is left alone.
    assert clip_tokenizer.truncation_side == "right"


def test_padding_longest_max_length_and_left(clip_tokenizer):
    tok = Tokenize(clip_tokenizer)
    values = [
        tok.process({"text": t}, item_idx=i, field="x") for i, t in enumerate(["a cat", "a photo of a dog"])
    ]
    batch = tok.collate(values)
    assert batch["input_ids"].shape == (2, 7) and batch["input_ids"].dtype == torch.int64
    assert batch["attention_mask"].tolist() == [[1, 1, 1, 1, 0, 0, 0], [1] * 7]
    assert batch["input_ids"][0, 4:].tolist() == [EOT] * 3  # CLIP pads with <|endoftext|>
    fixed = Tokenize(clip_tokenizer, padding="max_length").collate(values)
    assert fixed["input_ids"].shape == (2, 77)
    left = Tokenize(clip_tokenizer, padding_side="left").collate(values)
    assert left["attention_mask"][0].tolist() == [0, 0, 0, 1, 1, 1, 1]
    assert left["input_ids"][0, 3].item() == SOT


def test_bert_tokenizer_from_installed_package(bert_tokenizer):
    tok = Tokenize(bert_tokenizer, max_length=16)
    ids = tok.encode("Second 12 of the video")
    assert ids[0] == bert_tokenizer.cls_token_id and ids[-1] == bert_tokenizer.sep_token_id
    assert bert_tokenizer.decode(ids[1:-1]) == "second 12 of the video"
    assert tok.pad_id == bert_tokenizer.pad_token_id == 0


def test_tiktoken_encoding(tiktoken_encoding):
    enc = tiktoken_encoding
    eot, sot = enc.encode_single_token("<|endoftext|>"), enc.encode_single_token("<|startoftext|>")
    tok = Tokenize(enc, max_length=12, bos_id=sot, eos_id=eot)
    text = "the quick brown fox jumps over the lazy dog again and again"
    ids = tok.encode(text)
    assert ids.numel() == 12 and ids[0] == sot and ids[-1] == eot
    body = enc.encode_ordinary(text)
    assert ids[1:-1].tolist() == body[:10]
    assert enc.decode(body) == text
    tail = Tokenize(enc, max_length=12, bos_id=sot, eos_id=eot, truncation_side="left").encode(text)
    assert tail[1:-1].tolist() == body[-10:]
    again = pickle.loads(pickle.dumps(tok))
    assert torch.equal(again.encode(text), ids)


def test_callable_tokenizer():
    tok = Tokenize(lambda s: [ord(c) for c in s], max_length=5, pad_id=0)
    assert tok.encode("hello world").tolist() == [104, 101, 108, 108, 111]
    batch = tok.collate([tok.process({"text": t}, item_idx=0, field="x") for t in ("hi", "hey")])
    assert batch["input_ids"].tolist() == [[104, 105, 0], [104, 101, 121]]


def test_every_language_gives_b_k_l(sample_root, clip_tokenizer):
    config = tali.TaliConfig(modalities=("wikipedia_caption_text",), text=tali.TextConfig(language=None))
    procs = ProcessorSet({"wikipedia_caption_text": Tokenize(clip_tokenizer)})
    ds = tali.TaliDataset(sample_root, split="train", config=config, processors=procs)
    samples = [ds[i] for i in range(4)]
    batch = procs.collate(samples)["wikipedia_caption_text"]
    counts = [len(s["wikipedia_caption_text"]["language"]) for s in samples]
    b, k, length = batch["input_ids"].shape
    assert (b, k) == (4, max(counts)) and len(set(counts)) > 1
    assert batch["text_mask"].sum(1).tolist() == counts
    assert batch["attention_mask"].shape == (b, k, length)
    assert batch["attention_mask"][~batch["text_mask"]].sum() == 0
    assert batch["language"] == [s["wikipedia_caption_text"]["language"] for s in samples]


def test_per_submodality_tokenizers_in_a_loader(sample_root, clip_tokenizer, bert_tokenizer):
    """Subtitles through BERT, captions through CLIP, in one loader; texts decode back to the truth."""
    config = tali.TaliConfig(
        modalities=("youtube_subtitle_text", "wikipedia_caption_text"),
        window=tali.WindowConfig(start="start"),
    )
    procs = ProcessorSet(
        {
            "youtube_subtitle_text": Tokenize(bert_tokenizer, max_length=64),
            "wikipedia_caption_text": Tokenize(clip_tokenizer, max_length=77),
        },
        keep_raw=True,
    )
    ds = tali.TaliDataset(sample_root, split="train", config=config, processors=procs)
    loader = tali.make_loader(ds, batch_size=4, num_workers=0, collate_fn=procs.collate)
    batch = next(iter(loader))
    subs, caps = batch["youtube_subtitle_text"], batch["wikipedia_caption_text"]
    for i in range(4):
        n = int(subs["attention_mask"][i].sum())
        assert bert_tokenizer.decode(subs["input_ids"][i, 1 : n - 1]) == subs["text"][i].lower()
        m = int(caps["attention_mask"][i].sum())
        assert caps["input_ids"][i, 0] == SOT and caps["input_ids"][i, m - 1] == EOT
        assert (
            clip_tokenizer.decode(caps["input_ids"][i, 1 : m - 1]).strip() == caps["text"][i].lower().strip()
        )
    assert any("second" in t for t in subs["text"])


def test_pad_sequences_empty_and_width():
    ids, mask = pad_sequences([torch.tensor([5, 6]), torch.zeros(0, dtype=torch.int64)], pad_id=9, length=4)
    assert ids.tolist() == [[5, 6, 9, 9], [9, 9, 9, 9]] and mask.sum().item() == 2


def test_errors(clip_tokenizer, tiktoken_encoding):
    with pytest.raises(
        TaliConfigError, match="needs a transformers tokenizer/processor, a tiktoken.Encoding"
    ):
        Tokenize(42)
    with pytest.raises(TaliConfigError, match="has no pad token; pass pad_id"):
        Tokenize(tiktoken_encoding)
    with pytest.raises(TaliConfigError, match=r"truncation_side='middle' is not allowed"):
        Tokenize(clip_tokenizer, truncation_side="middle")
    with pytest.raises(TaliConfigError, match=r"padding='none' is not allowed"):
        Tokenize(clip_tokenizer, padding="none")
    with pytest.raises(TaliConfigError, match="max_length must be an int"):
        Tokenize(clip_tokenizer, max_length=0)
    with pytest.raises(TaliConfigError, match="leaves no room"):
        Tokenize(lambda s: [], max_length=2, bos_id=1, eos_id=2)
    with pytest.raises(
        TaliProcessorError, match=r"expected text \(str\), got int.*item_idx=11, field=youtube_title_text"
    ):
        Tokenize(clip_tokenizer).process({"text": 5}, item_idx=11, field="youtube_title_text")

    def broken(text: str) -> list[int]:
        raise ValueError("unknown symbol")

    with pytest.raises(TaliProcessorError, match=r"tokenizer failed: ValueError: unknown symbol.*item_idx=2"):
        Tokenize(broken, pad_id=0).process({"text": "x"}, item_idx=2, field="youtube_title_text")


def test_a_transformers_processor_is_accepted(clip_tokenizer, clip_image_processor):
    from transformers import CLIPProcessor

    processor = CLIPProcessor(image_processor=clip_image_processor, tokenizer=clip_tokenizer)
    tok = Tokenize(processor, max_length=8)
    assert tok.kind == "hf"
    assert tok.encode("a photo of a cat").tolist() == [SOT, 320, 1125, 539, 320, 2368, EOT]
