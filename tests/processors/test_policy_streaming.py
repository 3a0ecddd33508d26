"""Streaming + real processors + skip/substitute: placeholders (a substituted row, the record
carrier at the end of a stream) go through the same processors, so every batch collates."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

import tali
from tali.data.policy import ErrorReport
from tali.processors import ClipPixels, ProcessorSet, Tokenize

CONFIG = tali.TaliConfig(modalities=("wikipedia_caption_image", "youtube_title_text"))


@pytest.fixture(scope="module")
def with_bad_images(sample_root, tmp_path_factory):
    """12 rows in 4 row groups; rows 4, 5 and 11 (the last of each worker's stream) have garbage images."""
    table = pq.read_table(sample_root / "data" / "train-00000-of-00002.parquet")
    rows = [{**table.slice(k % 8, 1).to_pylist()[0], "item_idx": k} for k in range(12)]
    for k in (4, 5, 11):
        rows[k]["image"] = {"bytes": b"not an image", "path": None}
    path = tmp_path_factory.mktemp("badimg") / "b.parquet"
    pq.write_table(pa.Table.from_pylist(rows, schema=table.schema), path, row_group_size=3)
    return path


@pytest.mark.parametrize("on_error", ["skip", "substitute"])
def test_streaming_placeholders_go_through_the_processors(with_bad_images, clip_tokenizer, on_error):
    procs = ProcessorSet(
        {"wikipedia_caption_image": ClipPixels(), "youtube_title_text": Tokenize(clip_tokenizer)}
    )
    stream = tali.TaliStream(
        [str(with_bad_images)], config=CONFIG, on_error=on_error, processors=procs, shuffle=False
    )
    report, keys = ErrorReport(), set()
    for batch in stream.loader(batch_size=4, num_workers=2, collate_fn=procs.collate):
        report.update(batch)
        pixels = batch["wikipedia_caption_image"]["pixel_values"]
        assert pixels.dtype == torch.float32 and pixels.shape[1:] == (3, 224, 224)
        assert batch["youtube_title_text"]["input_ids"].dtype == torch.int64
        keys.add(frozenset(batch))
        invalid = ~batch["valid"]
        if invalid.any():  # a placeholder: CLIP-normalised zeros, exactly like a black image would be
            black = procs["wikipedia_caption_image"].process(
                {"pixels": torch.zeros(3, 224, 224, dtype=torch.uint8)}, item_idx=None, field="image"
            )["pixel_values"]
            assert torch.allclose(pixels[invalid][0], black)
    assert len(keys) == 1
    assert {r.row for r in report.skipped} == {4, 5, 11} and report.read == 12
    if on_error == "substitute":
        assert report.substituted == 3 and report.yielded == 12
