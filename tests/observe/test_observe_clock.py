"""Stage clocks: no-op when off, exact call counts against the sample truth when on,
and the sample content is the same with and without them."""

from __future__ import annotations

import os
import time

import torch

from tali import TaliConfig, TaliDataset, make_loader
from tali.clock import TimedCollate, activate, active_clock
from tali.observe import STAGES, Stage, StageClock, timed


def test_timed_is_a_shared_noop_without_a_clock():
    assert active_clock() is None
    first, second = timed(Stage.VIDEO_DECODE), timed(Stage.READ)
    assert first is second  # one shared object: nothing allocated per call
    with first:
        pass


def test_nested_stage_is_charged_to_itself_only():
    clock = StageClock()
    with activate(clock), timed(Stage.OPEN), timed(Stage.VIDEO_DECODE):
        time.sleep(0.05)
    assert active_clock() is None
    assert clock.calls[Stage.OPEN] == clock.calls[Stage.VIDEO_DECODE] == 1
    assert clock.ns[Stage.VIDEO_DECODE] >= 50_000_000
    assert 0 <= clock.ns[Stage.OPEN] < clock.ns[Stage.VIDEO_DECODE]


def test_sample_stats_match_truth(root, truth, config):
    ds = TaliDataset(root, split="val", config=config, collect_stats=True)
    for i in range(len(ds)):
        sample = ds[i]
        t = truth[sample["item_idx"]]
        stats = sample["stats"]
        calls = dict(zip([s.label for s in STAGES], stats["stage_calls"].tolist(), strict=True))
        # one row read, one open, one scan of the window's packets (the real frame times),
        # one decode pass for frames + random frame and one for the thumbnail (mid-clip
        # frame: the sample data stores no thumbnails), audio only
        # when the clip has a stream, one image, subtitles + the WIT texts.
        assert calls == {
            "read": 1,
            "open": 1,
            "video_decode": 3,
            "audio_decode": int(t["has_audio"]),
            "image_decode": 1,
            "text": 2,
            "processors": 0,
            "collate": 0,
        }
        assert stats["stage_ns"].dtype == torch.int64 and stats["stage_ns"].shape == (len(STAGES),)
        assert (stats["stage_ns"][stats["stage_calls"] > 0] > 0).all()
        assert (stats["stage_ns"][stats["stage_calls"] == 0] == 0).all()
        assert stats["bytes_read"] > t["clip_bytes"]  # the projected row holds the whole mp4
        assert stats["pid"] == os.getpid() and stats["worker"] == -1 and stats["rank"] == 0


def test_stats_do_not_change_the_sample(root, config):
    plain = TaliDataset(root, split="val", config=config)[2]
    timed_sample = TaliDataset(root, split="val", config=config, collect_stats=True)[2]
    assert "stats" not in plain
    assert timed_sample.keys() - plain.keys() == {"stats"}
    assert torch.equal(
        plain["youtube_content_video"]["frames"], timed_sample["youtube_content_video"]["frames"]
    )
    assert torch.equal(
        plain["youtube_content_audio"]["waveform"], timed_sample["youtube_content_audio"]["waveform"]
    )
    assert plain["window"] == timed_sample["window"]


def test_text_only_config_reads_no_video(root, truth):
    config = TaliConfig(modalities=("wikipedia_caption_text", "youtube_subtitle_text"))
    sample = TaliDataset(root, split="val", config=config, collect_stats=True)[0]
    calls = sample["stats"]["stage_calls"]
    assert calls[Stage.OPEN] == calls[Stage.VIDEO_DECODE] == calls[Stage.AUDIO_DECODE] == 0
    assert calls[Stage.TEXT] == 2
    assert sample["stats"]["bytes_read"] < truth[sample["item_idx"]]["clip_bytes"] / 10


def test_processors_stage_counts_the_processor(root):
    config = TaliConfig(modalities=("youtube_content_video",), seed=1)

    def normalise(sample):
        frames = sample["youtube_content_video"]["frames"]
        sample["youtube_content_video"]["frames"] = frames.float().div(255.0)
        return sample

    sample = TaliDataset(root, split="val", config=config, processors=normalise, collect_stats=True)[1]
    assert sample["youtube_content_video"]["frames"].dtype == torch.float32
    assert sample["stats"]["stage_calls"][Stage.PROCESSORS] == 1
    assert sample["stats"]["stage_ns"][Stage.PROCESSORS] > 0


def test_collate_time_lands_on_the_first_sample(root):
    config = TaliConfig(modalities=("youtube_title_text", "wikipedia_caption_image"))
    ds = TaliDataset(root, split="val", config=config, collect_stats=True)
    loader = make_loader(ds, batch_size=2, num_workers=0)
    assert isinstance(loader.collate_fn, TimedCollate)
    batches = list(loader)
    for batch in batches:
        collate_calls = batch["stats"]["stage_calls"][:, Stage.COLLATE]
        assert collate_calls.tolist() == [1, 0]
        assert batch["stats"]["stage_ns"][0, Stage.COLLATE] > 0
    assert sorted(i for b in batches for i in b["item_idx"].tolist()) == [16, 17, 18, 19]


def test_clocks_are_per_thread():
    import threading

    mine, seen = StageClock(), []

    def other_thread():
        seen.append(active_clock())
        with timed(Stage.TEXT):  # no clock here: must not touch the main thread's clock
            pass

    with activate(mine):
        thread = threading.Thread(target=other_thread)
        thread.start()
        thread.join()
        with timed(Stage.READ):
            pass
    assert seen == [None]
    assert mine.calls[Stage.TEXT] == 0 and mine.calls[Stage.READ] == 1


def test_with_stats_makes_any_loader_observable(root, config):
    """What a streaming loader does per row: transform under with_stats."""
    from tali import TaliTransform
    from tali.clock import with_stats

    dataset = TaliDataset(root, split="val", config=config)
    row = dataset.read_row(0)
    sample = with_stats(lambda: TaliTransform(config)(row, key=0))
    calls = sample["stats"]["stage_calls"]
    assert calls[Stage.OPEN] == 1 and calls[Stage.VIDEO_DECODE] == 3 and calls[Stage.READ] == 0
    assert active_clock() is None
