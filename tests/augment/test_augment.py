"""Augmentation against the sample data's ground truth: frame codes, tones and
subtitle seconds follow the recorded time map; spatial draws are one per clip."""

from __future__ import annotations

import dataclasses
import math
import multiprocessing
import pickle

import numpy as np
import pytest
import torch
from PIL import Image, ImageOps

from tali import TaliConfig, VideoConfig, WindowConfig, sample_data
from tali.augment import (
    AudioAugment,
    Augment,
    SpatialAugment,
    SpecAugment,
    TextAugment,
    TimeAugment,
    TimeMap,
    apply_spatial,
    draw_spatial,
)
from tali.errors import TaliConfigError, TaliProcessorError
from tali.transform import sample_rng_for
from tali.window import seed_key

SEED = 7


def run(augment: Augment, config: TaliConfig, row, *, key: int = 0, epoch: int = 0):
    sample = augment.decoder(config)(row, key=key, epoch=epoch)
    return augment.apply(
        sample,
        row=row,
        config=config,
        rng=lambda p: sample_rng_for(config.seed, epoch, seed_key(row, key), p),
    )


def clip_config(**window) -> TaliConfig:
    return TaliConfig(
        modalities=("youtube_content_video", "youtube_content_audio", "youtube_subtitle_text"),
        window=WindowConfig(**window),
        video=VideoConfig(num_frames=8, selection="uniform"),
        seed=SEED,
    )


@pytest.mark.parametrize("speed", [0.9, 1.1])
def test_speed_perturbation_moves_frames_tones_and_subtitles_together(rows, truth, speed):
    item = 0  # the standard clip: 30 fps, tones every second, subtitles every second
    config = clip_config(seconds=3.0, start=10.0)
    augment = Augment(time=TimeAugment(speed=(speed, speed)), spatial=None, audio=None)
    sample = run(augment, config, rows[item])
    tm = TimeMap(**sample["augment"]["time"])
    assert tm.speed == pytest.approx(speed) and tm.output_seconds == pytest.approx(3.0)
    assert sample["window"]["duration_seconds"] == pytest.approx(3.0 * speed)

    # Frames: each shows the frame the map says is on screen at its output time.
    video = sample["youtube_content_video"]
    out_t = video["output_seconds"].numpy()
    assert out_t.min() >= 0 and out_t.max() <= 3.0
    assert np.ptp(out_t) > 2.5  # the slots span the output window
    for frame, u in zip(video["frames"], out_t):
        expected = sample_data.frame_index_at(truth[item], tm.to_clip(u))
        assert sample_data.read_frame_index(frame) == expected

    # Audio: 3 s output, pitch scaled by the speed, second = floor(map(u)).
    audio = sample["youtube_content_audio"]
    sr = audio["sample_rate"]
    wave = audio["waveform"].numpy()
    assert wave.shape == (round(3.0 * sr),)
    chunk = round(0.2 * sr)
    checked = 0
    for begin in range(0, wave.size - chunk + 1, chunk):
        t0, t1 = tm.to_clip(begin / sr), tm.to_clip((begin + chunk) / sr)
        if math.floor(t0 + 0.03) != math.floor(t1 - 0.03):
            continue  # straddles a tone change
        hz = sample_data.dominant_hz(wave[begin : begin + chunk], sr)
        assert sample_data.second_of_tone(hz / speed) == math.floor(t0 + 0.03)
        assert hz == pytest.approx(speed * sample_data.tone_hz(math.floor(t0 + 0.03)), abs=8)
        checked += 1
    assert checked >= 8

    # Subtitles: every line of the source window, at its mapped output time.
    subs = sample["youtube_subtitle_text"]
    start = float(rows[item]["youtube_video_starting_time"])
    lo = start + tm.offset_seconds
    expected_lines = sample_data.expected_subtitle_lines(truth[item], lo, lo + 3.0 * speed)
    assert subs["line_texts"] == expected_lines and subs["num_lines"] == len(expected_lines) >= 3
    for text, u in zip(subs["line_texts"], subs["line_seconds"].tolist()):
        absolute = int(text.split()[1])
        assert start + tm.to_clip(u) == pytest.approx(absolute + 0.5, abs=1e-9)


def test_jitter_moves_every_modality(rows, truth):
    config = clip_config(seconds=2.0, start=12.0)
    augment = Augment(time=TimeAugment(jitter_seconds=1.5, speed=None), spatial=None, audio=None)
    offsets = set()
    for epoch in range(4):
        sample = run(augment, config, rows[0], epoch=epoch)
        tm = TimeMap(**sample["augment"]["time"])
        assert 10.5 <= tm.offset_seconds <= 13.5 and tm.speed == 1.0
        offsets.add(round(tm.offset_seconds, 3))
        frame = sample["youtube_content_video"]["frames"][0]
        u = float(sample["youtube_content_video"]["output_seconds"][0])
        assert sample_data.read_frame_index(frame) == sample_data.frame_index_at(truth[0], tm.to_clip(u))
    assert len(offsets) == 4


def _pil_reference(frame: torch.Tensor, params) -> np.ndarray:
    """Crop + antialiased bilinear resize + mirror in PIL: an independent implementation."""
    image = Image.fromarray(frame.permute(1, 2, 0).numpy())
    box = (params.left, params.top, params.left + params.width, params.top + params.height)
    image = image.resize((frame.shape[2], frame.shape[1]), Image.BILINEAR, box=box)
    if params.flip:
        image = ImageOps.mirror(image)
    return np.asarray(image).transpose(2, 0, 1).astype(np.int16)


def test_one_crop_and_flip_for_every_frame_of_a_clip(rows):
    config = clip_config(seconds=3.0, start=4.0).replace(modalities=("youtube_content_video",))
    spatial = SpatialAugment(crop_scale=(0.4, 0.7), flip_p=1.0, jitter_p=0.0, grayscale_p=0.0)
    plain = run(Augment(time=None, spatial=None, audio=None), config, rows[0])
    augmented = run(Augment(time=None, spatial=spatial, audio=None), config, rows[0])
    # The spatial draw comes from its own generator: the frames chosen are the same.
    assert torch.equal(
        plain["youtube_content_video"]["pts_seconds"], augmented["youtube_content_video"]["pts_seconds"]
    )
    params = augmented["augment"]["spatial.youtube_content_video"]
    assert params["flip"] and params["height"] < 224 * 0.9
    from tali.augment import SpatialParams

    p = SpatialParams(**params)
    raw, out = plain["youtube_content_video"]["frames"], augmented["youtube_content_video"]["frames"]
    assert out.shape == raw.shape and out.dtype == torch.uint8
    for i in range(raw.shape[0]):
        diff = np.abs(out[i].numpy().astype(np.int16) - _pil_reference(raw[i], p))
        assert diff.mean() < 1.0 and np.percentile(diff, 99) <= 6, i
    # A different crop for frame 0 alone would not match: the check can fail.
    moved = params["top"] + 9 if params["top"] + 9 + params["height"] <= 224 else params["top"] - 9
    other = SpatialParams(**{**params, "top": moved})
    assert np.abs(out[0].numpy().astype(np.int16) - _pil_reference(raw[0], other)).mean() > 3


def test_colour_and_grayscale_on_a_single_image():
    image = torch.randint(0, 256, (3, 64, 64), dtype=torch.uint8)
    rng = np.random.default_rng(0)
    params = draw_spatial(
        SpatialAugment(crop_scale=None, flip_p=0.0, jitter_p=1.0, grayscale_p=1.0), 64, 64, rng
    )
    out = apply_spatial(image, params)
    assert out.shape == image.shape and out.dtype == torch.uint8
    assert torch.equal(out[0], out[1]) and torch.equal(out[1], out[2])  # grayscale
    # Brightness alone is a plain scale of every channel.
    only_b = type(params)(0, 0, 64, 64, False, 1.2, 1.0, 1.0, False)
    expected = (image.float() * 1.2).clamp(0, 255).round().to(torch.uint8)
    assert (apply_spatial(image, only_b).int() - expected.int()).abs().max() <= 1
    with pytest.raises(TaliConfigError, match="tensors"):
        apply_spatial(np.zeros((3, 8, 8), np.uint8), params)  # type: ignore[arg-type]


def test_gain_and_noise_at_the_drawn_snr(rows):
    config = clip_config(seconds=3.0, start=5.0).replace(modalities=("youtube_content_audio",))
    plain = run(Augment(time=None, spatial=None, audio=None), config, rows[0])
    gain_only = run(
        Augment(time=None, spatial=None, audio=AudioAugment(gain_db=(-6.0, 6.0))), config, rows[0]
    )
    g = gain_only["augment"]["audio"]["gain_db"]
    assert -6 <= g <= 6 and g != 0
    x = plain["youtube_content_audio"]["waveform"]
    torch.testing.assert_close(gain_only["youtube_content_audio"]["waveform"], x * 10 ** (g / 20))
    noisy = run(
        Augment(
            time=None, spatial=None, audio=AudioAugment(gain_db=None, noise_snr_db=(15.0, 15.0), noise_p=1.0)
        ),
        config,
        rows[0],
    )
    assert noisy["augment"]["audio"]["snr_db"] == 15.0
    noise = noisy["youtube_content_audio"]["waveform"] - x
    snr = 10 * math.log10(float(x.square().mean()) / float(noise.square().mean()))
    assert snr == pytest.approx(15.0, abs=0.3)


def test_spec_augment_masks_inside_the_signal():
    features = torch.randn(80, 3000)
    value = {"input_features": features.clone(), "valid_samples": 48_000}
    bands = __import__("tali.augment", fromlist=["x"]).apply_spec_augment(
        value,
        SpecAugment(time_masks=2, time_width=40, freq_masks=2, freq_width=15),
        np.random.default_rng(3),
        valid_samples=48_000,
        field="youtube_content_audio",
    )
    out = value["input_features"]
    changed = out != features
    for start, width in bands["time"]:
        assert start + width <= 300  # 3 s of signal = 300 frames, never the padding
        if width:
            assert bool(changed[:, start : start + width].all())
    masked_cols = {c for s, w in bands["time"] for c in range(s, s + w)}
    masked_rows = {r for s, w in bands["freq"] for r in range(s, s + w)}
    keep = [c for c in range(3000) if c not in masked_cols]
    rows_keep = [r for r in range(80) if r not in masked_rows]
    assert torch.equal(out[rows_keep][:, keep], features[rows_keep][:, keep])
    with pytest.raises(TaliProcessorError, match="input_features"):
        __import__("tali.augment", fromlist=["x"]).apply_spec_augment(
            {"waveform": torch.zeros(10)},
            SpecAugment(),
            np.random.default_rng(0),
            valid_samples=None,
            field="a",
        )


def test_text_language_weights_caption_field_and_subtitle_dropout(rows, truth):
    item = next(
        i for i, t in truth.items() if t["languages"] == ["de", "en"] and t["subtitle_kind"] == "lines"
    )
    config = TaliConfig(
        modalities=("wikipedia_caption_text", "wikipedia_title_text", "youtube_subtitle_text"),
        window=WindowConfig(seconds=10.0, start=0.0),
        seed=SEED,
    )
    base = run(Augment(time=None, spatial=None, audio=None), config, rows[item])
    assert base["wikipedia_caption_text"]["language"] == "en"
    weighted = Augment(time=None, spatial=None, audio=None, text=TextAugment(language_weights={"de": 1.0}))
    out = run(weighted, config, rows[item])
    assert out["wikipedia_caption_text"]["language"] == "de" == out["wikipedia_title_text"]["language"]
    wit = rows[item]["wit_features"]
    k = wit["language"].index("de")
    field = "caption_alt_text_description"
    by_field = Augment(
        time=None,
        spatial=None,
        audio=None,
        text=TextAugment(language_weights={"de": 1.0}, caption_fields=[field]),
    )
    out = run(by_field, config, rows[item])
    if wit[field][k]:
        assert out["wikipedia_caption_text"]["text"] == wit[field][k]
    dropped = run(
        Augment(
            time=TimeAugment(speed=None), spatial=None, audio=None, text=TextAugment(subtitle_dropout=0.5)
        ),
        config,
        rows[item],
    )
    kept = run(Augment(time=TimeAugment(speed=None), spatial=None, audio=None), config, rows[item])
    assert kept["youtube_subtitle_text"]["num_lines"] == 10
    assert set(dropped["youtube_subtitle_text"]["line_texts"]) < set(
        kept["youtube_subtitle_text"]["line_texts"]
    )
    with pytest.raises(TaliConfigError, match="caption_fields.*not allowed"):
        TextAugment(caption_fields=["nope"])


def test_parts_draw_independently(rows):
    config = clip_config(seconds=3.0, start="random")
    a = run(dataclasses.replace(Augment.default(), audio=None), config, rows[0], key=3)["augment"]
    b = run(Augment.default(), config, rows[0], key=3)["augment"]
    assert a["time"] == b["time"]
    assert a["spatial.youtube_content_video"] == b["spatial.youtube_content_video"]
    c = run(Augment.default(), config, rows[0], key=3, epoch=1)["augment"]
    assert c["time"] != b["time"]


def _in_child(payload: bytes) -> bytes:
    augment, config, row = pickle.loads(payload)
    return pickle.dumps(run(augment, config, row, key=5, epoch=2))


def test_same_seed_same_augmentation_in_another_process(rows):
    config = clip_config(seconds=3.0, start="random")
    augment = Augment.default()
    here = run(augment, config, rows[0], key=5, epoch=2)
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        there = pickle.loads(pool.apply(_in_child, (pickle.dumps((augment, config, rows[0])),)))
    assert here["augment"] == there["augment"] or str(here["augment"]) == str(there["augment"])
    for key in ("frames", "pts_seconds", "output_seconds"):
        assert torch.equal(here["youtube_content_video"][key], there["youtube_content_video"][key])
    assert torch.equal(here["youtube_content_audio"]["waveform"], there["youtube_content_audio"]["waveform"])


def test_bad_settings_name_the_field():
    with pytest.raises(TaliConfigError, match=r"TimeAugment.speed .*0.5 <= low"):
        TimeAugment(speed=(0.2, 1.0))
    with pytest.raises(TaliConfigError, match="SpatialAugment.flip_p"):
        SpatialAugment(flip_p=2)
    with pytest.raises(TaliConfigError, match="AudioAugment.gain_db"):
        AudioAugment(gain_db=(6, -6))
    with pytest.raises(TaliConfigError, match="Augment.time must be a TimeAugment"):
        Augment(time=SpatialAugment())  # type: ignore[arg-type]
    with pytest.raises(TaliConfigError, match="output='pil'"):
        Augment(spatial=SpatialAugment()).check(TaliConfig(video=VideoConfig(output="pil")))


@pytest.mark.parametrize(
    "build, message",
    [
        (lambda: SpatialAugment(crop_scale=(0.9, 0.1)), r"SpatialAugment\.crop_scale must be \(low, high\)"),
        (lambda: SpatialAugment(crop_ratio=(0.05, 2.0)), r"SpatialAugment\.crop_ratio .* 0\.1 <= low"),
        (lambda: AudioAugment(gain_db=(5, 1)), r"AudioAugment\.gain_db must be \(low, high\)"),
        (lambda: AudioAugment(noise_snr_db=(True, 3)), r"AudioAugment\.noise_snr_db .* got \(True, 3\)"),
    ],
)
def test_ranges_are_checked_at_construction(build, message):
    with pytest.raises(TaliConfigError, match=message):
        build()
