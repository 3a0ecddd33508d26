"""Pipelines: the default loader is one, user stages see the window, config files are
checked, fingerprints are stable, workers/resume/bad-sample policy all hold."""

from __future__ import annotations

import pickle
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from tali import (
    SampleCache,
    TaliConfig,
    TaliDataset,
    TaliStream,
    VideoConfig,
    WindowConfig,
    make_loader,
    sample_data,
)
from tali.augment import Augment, TimeAugment
from tali.data.policy import ErrorReport
from tali.data.sources import resolve_local_files
from tali.errors import TaliConfigError, TaliStageError
from tali.pipeline import AugmentStage, Pipeline, UserStage
from tali.transform import TaliTransform

HERE = Path(__file__).parent
ROOT = HERE.parent.parent


@pytest.fixture(autouse=True)
def importable_stages(monkeypatch):
    """User stages are named by module path, as a user's config file would (workers fork with it)."""
    monkeypatch.syspath_prepend(str(ROOT))


def U(name: str, **args) -> UserStage:
    return UserStage(f"tests.pipeline.user_stages:{name}", **args)


CONFIG = TaliConfig(
    modalities=("youtube_content_video", "youtube_subtitle_text", "youtube_title_text"),
    window=WindowConfig(seconds=2.0),
    video=VideoConfig(num_frames=3, size=96),  # small: these tests are about the stages
    seed=3,
)


def equal(a, b) -> bool:
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(equal(a[k], b[k]) for k in a)
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    return a == b


@pytest.fixture(scope="module")
def files(sample_root):
    return resolve_local_files(sample_root, "train")


def test_default_loader_is_the_default_pipeline_bit_for_bit(files):
    ds = TaliDataset(files=files, config=CONFIG)
    assert isinstance(ds.pipeline, Pipeline) and ds.pipeline.names == ["decode"]
    plain = TaliTransform(CONFIG, durations=ds.pipeline.durations)
    ds.set_epoch(1)
    for i in range(0, len(ds), 3):
        assert equal(ds[i], plain(ds.read_row(i), key=i, epoch=1))
    explicit = TaliDataset(files=files, pipeline=Pipeline.default(CONFIG))
    explicit.set_epoch(1)
    assert equal(explicit[4], ds[4])


def test_user_stage_sees_the_window_and_insert_drop_replace(files):
    pipe = Pipeline(CONFIG, ["decode", U("tag_window", label="a")])
    ds = TaliDataset(files=files, pipeline=pipe)
    sample = ds[2]
    assert sample["tag"]["start_seconds"] == sample["window"]["start_seconds"]
    assert sample["tag"]["item_idx"] == sample["item_idx"]
    pipe2 = pipe.insert(("upper", U("upper_title")), before="tag_window")
    assert pipe2.names == ["decode", "upper", "tag_window"]
    s2 = TaliDataset(files=files, pipeline=pipe2)[2]
    assert s2["youtube_title_text"]["text"] == sample["youtube_title_text"]["text"].upper()
    assert pipe2.drop("upper").names == ["decode", "tag_window"]
    swapped = pipe2.replace("tag_window", U("tag_window", label="b"))
    assert TaliDataset(files=files, pipeline=swapped)[2]["tag"]["label"] == "b"
    with pytest.raises(TaliConfigError, match="no stage 'nope'"):
        pipe.drop("nope")
    with pytest.raises(TaliConfigError, match="'decode' cannot be dropped"):
        pipe.drop("decode")
    with pytest.raises(TaliConfigError, match="lambda"):
        Pipeline(CONFIG, ["decode", lambda s, c: s])
    with pytest.raises(TaliConfigError, match=r"argument 'colour' is not allowed; allowed: label"):
        U("tag_window", colour="red")


def test_fingerprint_is_stable_across_processes_and_keys_the_cache(files, tmp_path):
    pipe = Pipeline(CONFIG, ["decode", AugmentStage(Augment.default()), U("tag_window", label="a")])
    code = textwrap.dedent(
        f"""
        import sys; sys.path.insert(0, {str(ROOT)!r})
        from tali import TaliConfig, VideoConfig, WindowConfig
        from tali.augment import Augment
        from tali.pipeline import AugmentStage, Pipeline, UserStage
        config = TaliConfig(modalities={[m.value for m in CONFIG.modalities]!r}, window=WindowConfig(seconds=2.0),
                            video=VideoConfig(num_frames=3, size=96), seed=3)
        print(Pipeline(config, ["decode", AugmentStage(Augment.default()), UserStage("tests.pipeline.user_stages:tag_window", label="a")]).fingerprint())
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == pipe.fingerprint()
    assert pipe.replace("tag_window", U("tag_window", label="b")).fingerprint() != out
    assert pickle.loads(pickle.dumps(pipe)).fingerprint() == out
    from tali.pipeline import Process
    from tali.processors import ClipPixels, ProcessorSet

    def with_pixels(size: int) -> str:
        return pipe.insert(
            Process(ProcessorSet({"youtube_content_video": ClipPixels(size=size)}))
        ).fingerprint()

    assert with_pixels(96) == with_pixels(96) != with_pixels(64)
    # The cache: plain decode keys on the config (old entries stay valid); a
    # perturbed window keys on the pipeline and never spans epochs.
    cache = SampleCache(tmp_path / "c", cache_config())
    TaliStream(files, config=cache_config(), cache=cache)
    assert cache.fingerprint == cache_config().fingerprint() and cache.deterministic
    timed = Pipeline(cache_config(), ["decode", AugmentStage(Augment(time=TimeAugment(speed=(0.9, 1.1))))])
    cache2 = SampleCache(tmp_path / "c", cache_config())

    def stream():
        return TaliStream(files, pipeline=timed, cache=cache2, shuffle=False)

    stream()
    assert cache2.fingerprint == timed.cache_fingerprint() != cache_config().fingerprint()
    assert not cache2.deterministic
    first = [s["augment"]["time"]["speed"] for s in stream()]
    again = [s["augment"]["time"]["speed"] for s in stream()]  # served from the cache
    assert first == again and cache2.hits == len(first) and len(set(first)) > 1
    later = stream()
    later.set_epoch(1)
    assert [s["augment"]["time"]["speed"] for s in later] != first  # another epoch, other draws


def cache_config() -> TaliConfig:
    return TaliConfig(
        modalities=("youtube_content_video",), window=WindowConfig(seconds=2.0, start="start"), seed=3
    )


@pytest.mark.parametrize("workers", [0, 2])
def test_streaming_with_workers_and_resume(files, workers):
    pipe = Pipeline(CONFIG.replace(modalities=("youtube_subtitle_text",)), ["decode", U("tag_window")])

    def run(loader, stop=None):
        out = []
        for i, batch in enumerate(loader):
            out.append(
                (batch["key"].tolist(), batch["tag"]["draw"].tolist(), batch["tag"]["start_seconds"].tolist())
            )
            if stop is not None and i + 1 == stop:
                break
        return out

    def new():
        return TaliStream(files, pipeline=pipe, buffer_size=4).loader(
            batch_size=2, num_workers=workers, collate_fn=pipe.collate
        )

    full = run(new())
    loader = new()
    head = run(loader, stop=3)
    resumed = new()
    resumed.load_state_dict(loader.state_dict())
    assert head + run(resumed) == full
    for keys, _, starts in full:
        assert all(s >= 0 for s in starts)


@pytest.mark.parametrize("workers", [0, 2])
def test_map_style_workers_match_in_process(files, workers):
    pipe = Pipeline(CONFIG, ["decode", AugmentStage(Augment.default()), U("tag_window")])
    ds = TaliDataset(files=files, pipeline=pipe)
    ds.set_epoch(2)
    batches = list(make_loader(ds, batch_size=4, num_workers=workers, collate_fn=pipe.collate))
    here = [ds[i] for i in range(len(ds))]
    frames = torch.cat([b["youtube_content_video"]["frames"] for b in batches])
    assert torch.equal(frames, torch.stack([s["youtube_content_video"]["frames"] for s in here]))
    speeds = torch.cat([b["augment"]["time"]["speed"] for b in batches]).tolist()
    assert speeds == [s["augment"]["time"]["speed"] for s in here]


def test_user_stage_errors_follow_the_bad_sample_policy(files):
    pipe = Pipeline(CONFIG, ["decode", U("fail_on", item_idx=3)])
    with pytest.raises(
        TaliStageError, match=r"stage 'fail_on' raised RuntimeError.*item_idx=3, field=stage:fail_on"
    ):
        TaliDataset(files=files, pipeline=pipe)[3]
    report = ErrorReport()
    ds = TaliDataset(files=files, pipeline=pipe, on_error="skip")
    for batch in make_loader(ds, batch_size=4, num_workers=0):
        report.update(batch)
    assert [r.field for r in report.skipped] == ["stage:fail_on"]
    assert report.skipped[0].item_idx == 3 and report.skipped[0].row is not None
    stream_report = ErrorReport()
    for batch in TaliStream(files, pipeline=pipe, on_error="skip").loader(batch_size=4, num_workers=0):
        stream_report.update(batch)
    assert [(r.item_idx, r.field) for r in stream_report.skipped] == [(3, "stage:fail_on")]


def test_yaml_and_toml_files_build_the_same_pipeline(tmp_path):
    yaml_file = tmp_path / "p.yaml"
    yaml_file.write_text(
        textwrap.dedent(
            """
            config:
              modalities: [youtube_content_video, youtube_subtitle_text]
              window: {seconds: 2.0}
              seed: 3
            stages:
              - decode
              - augment: {time: {speed: [0.9, 1.1]}, spatial: {flip_p: 1.0}, audio: false}
              - stage: tests.pipeline.user_stages:tag_window
                args: {label: x}
            """
        )
    )
    toml_file = tmp_path / "p.toml"
    toml_file.write_text(
        textwrap.dedent(
            """
            stages = ["decode", {augment = {time = {speed = [0.9, 1.1]}, spatial = {flip_p = 1.0}, audio = false}},
                      {stage = "tests.pipeline.user_stages:tag_window", args = {label = "x"}}]
            [config]
            modalities = ["youtube_content_video", "youtube_subtitle_text"]
            seed = 3
            [config.window]
            seconds = 2.0
            """
        )
    )
    a, b = Pipeline.from_file(yaml_file), Pipeline.from_file(toml_file)
    assert a.names == ["decode", "augment", "tag_window"] and a.fingerprint() == b.fingerprint()
    assert a.augment is not None and a.augment.audio is None and a.augment.spatial.flip_p == 1.0


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"stages": ["decode", "agument"]}, r"stage 'agument' is not built in; choose from decode, augment"),
        (
            {"stages": ["decode", {"augment": {"spatial": {"flipp": 1}}}]},
            r"stage 'augment' \(stages\[1\]\).spatial: argument 'flipp' is not allowed; choose from crop_scale",
        ),
        ({"stages": ["decode", {"augment": {"time": {"speed": [0.1, 3]}}}]}, r"TimeAugment.speed must be"),
        (
            {"stages": ["decode", {"process": {"youtube_content_audio": "mfcc"}}]},
            r"processor 'mfcc' is not built in",
        ),
        ({"stages": ["decode", "nosuch.module:fn"]}, r"cannot import module 'nosuch.module'"),
        (
            {"stages": ["decode", {"stage": "tests.pipeline.user_stages:tag_window", "args": {"colour": 1}}]},
            r"stage 'tag_window'.*argument 'colour' is not allowed; allowed: label",
        ),
        ({"stages": ["augment"]}, r"exactly one 'decode' stage"),
        ({"config": {"windw": {}}, "stages": ["decode"]}, r"config: argument 'windw' is not allowed"),
        ({"config": {"window": {"start": "middle"}}}, r"WindowConfig.start='middle' is not allowed"),
    ],
)
def test_config_errors_name_stage_argument_and_choices(spec, message):
    with pytest.raises(TaliConfigError, match=message):
        Pipeline.from_dict(spec)


def test_swap_the_frame_sampler(files):
    from tests.pipeline.user_stages import first_frames

    config = CONFIG.replace(modalities=("youtube_content_video",))
    default = TaliDataset(files=files, pipeline=Pipeline(config))[0]["youtube_content_video"]
    mine = Pipeline(config, plan=first_frames)
    sample = TaliDataset(files=files, pipeline=mine)[0]
    video = sample["youtube_content_video"]
    codes = [sample_data.read_frame_index(f) for f in video["frames"]]
    assert codes == list(range(codes[0], codes[0] + len(codes)))  # consecutive frames
    assert not torch.equal(default["pts_seconds"], video["pts_seconds"])
    assert mine.fingerprint() != Pipeline(config).fingerprint() and not mine.default_decode
