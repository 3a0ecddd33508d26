"""TaliStream: every row once per epoch, deterministic shuffling, rank/worker
splits, exact and elastic resume, the bad-sample policy, filters and hooks."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
import torch

from tali import TaliConfig, TaliStream
from tali.data.policy import ErrorReport
from tali.data.sources import resolve_local_files
from tali.data.streaming import merge_states
from tali.errors import TaliConfigError, TaliSourceError, TaliSubtitleError

from .conftest import TEXT


def stream(files, **kwargs) -> TaliStream:
    kwargs.setdefault("config", TEXT)
    kwargs.setdefault("buffer_size", 4)
    return TaliStream(files, **kwargs)


def run(loader, stop_after: int | None = None):
    """Keys and subtitle-window starts of each delivered batch (stops after ``stop_after`` batches)."""
    out = []
    for i, batch in enumerate(loader):
        out.append(
            (
                batch["key"].tolist(),
                batch["window"]["start_seconds"].tolist(),
                batch["wikipedia_caption_text"]["language"],
            )
        )
        if stop_after is not None and i + 1 == stop_after:
            break
    return out


def keys_of(batches):
    return [k for b in batches for k in b[0]]


def test_one_epoch_yields_every_row_once_with_its_truth(train_files, truth):
    samples = list(stream(train_files))
    assert sorted(s["key"] for s in samples) == list(range(16))
    assert sorted(s["item_idx"] for s in samples) == sorted(
        i for i, t in truth.items() if t["split"] == "train"
    )
    for s in samples:  # the chosen language is one the row really has
        assert s["wikipedia_caption_text"]["language"] in truth[s["item_idx"]]["languages"]
        row = truth[s["item_idx"]]
        if row["subtitle_kind"] in ("lines", "list_values"):  # the lines said inside the chosen window
            lo = row["start_second"] + s["window"]["start_seconds"]
            said = [int(w) for w in s["youtube_subtitle_text"]["text"].split()[1::2]]
            assert said and all(lo <= n + 0.5 <= lo + 3.0 for n in said)


def test_shuffle_is_deterministic_per_seed_and_epoch(train_files):
    a = [s["key"] for s in stream(train_files)]
    assert a == [s["key"] for s in stream(train_files)]
    ds = stream(train_files)
    ds.set_epoch(1)
    b = [s["key"] for s in ds]
    assert sorted(b) == list(range(16)) and b != a
    other_seed = [s["key"] for s in stream(train_files, config=TEXT.replace(seed=7))]
    assert other_seed != a
    assert [s["key"] for s in stream(train_files, shuffle=False)] == list(range(16))


@pytest.mark.parametrize("workers", [0, 2])
def test_loader_workers_cover_the_split(train_files, workers):
    batches = run(stream(train_files).loader(batch_size=3, num_workers=workers))
    assert sorted(keys_of(batches)) == list(range(16))


@pytest.mark.parametrize("world", [2, 3, 5])
def test_ranks_partition_the_split_even_when_uneven(train_files, world):
    per_rank = [[s["key"] for s in stream(train_files, rank=r, world_size=world)] for r in range(world)]
    flat = [k for keys in per_rank for k in keys]
    assert sorted(flat) == list(range(16))
    sizes = [len(k) for k in per_rank]
    assert max(sizes) - min(sizes) <= 1
    assert [len(stream(train_files, rank=r, world_size=world)) for r in range(world)] == sizes


def test_equal_per_rank_drop_and_pad(train_files):
    dropped = [
        [s["key"] for s in stream(train_files, rank=r, world_size=3, equal_per_rank="drop")] for r in range(3)
    ]
    assert [len(k) for k in dropped] == [5, 5, 5]
    assert len(set().union(*map(set, dropped))) == 15
    padded = [
        [s["key"] for s in stream(train_files, rank=r, world_size=3, equal_per_rank="pad")] for r in range(3)
    ]
    assert [len(k) for k in padded] == [6, 6, 6]
    assert set().union(*map(set, padded)) == set(range(16))
    assert sum(Counter(k for keys in padded for k in keys).values()) == 18


@pytest.mark.parametrize("workers", [0, 2])
@pytest.mark.parametrize("stop_after", [1, 3, 6, 7])
def test_exact_resume_matches_an_uninterrupted_run(train_files, workers, stop_after):
    full = run(stream(train_files).loader(batch_size=2, num_workers=workers))
    loader = stream(train_files).loader(batch_size=2, num_workers=workers)
    head = run(loader, stop_after=stop_after)
    state = loader.state_dict()
    resumed = stream(train_files).loader(batch_size=2, num_workers=workers)
    resumed.load_state_dict(state)
    tail = run(resumed)
    # Same batches, same order, same random choices (window start, language) per row.
    assert head + tail == full


def test_resume_at_the_start_and_at_the_end(train_files):
    ds = stream(train_files)
    state = ds.state_dict()
    full = [s["key"] for s in ds]
    again = stream(train_files)
    again.load_state_dict(state)
    assert [s["key"] for s in again] == full
    done = stream(train_files)
    done.load_state_dict(ds.state_dict())  # taken after the last sample: resumes into epoch 1
    nxt = list(done)
    assert sorted(s["key"] for s in nxt) == list(range(16)) and {s["epoch"] for s in nxt} == {1}


def test_resume_from_direct_iteration_into_workers(train_files):
    ds = stream(train_files)
    it = iter(ds)
    first = [next(it)["key"] for _ in range(5)]
    state = ds.state_dict()
    rest = stream(train_files).loader(batch_size=4, num_workers=2)
    rest.load_state_dict(state)
    tail = keys_of(run(rest))
    assert sorted(first + tail) == list(range(16))


def _rank_loaders(files, world, workers, state=None):
    loaders = [
        stream(files, rank=r, world_size=world).loader(batch_size=2, num_workers=workers)
        for r in range(world)
    ]
    if state is not None:
        for loader in loaders:
            loader.load_state_dict(state)
    return loaders


@pytest.mark.parametrize("old,new", [((2, 2), (1, 0)), ((1, 2), (2, 2)), ((2, 0), (3, 2))])
def test_elastic_resume_delivers_the_rest_exactly_once(train_files, old, new):
    (w_old, k_old), (w_new, k_new) = old, new
    loaders = _rank_loaders(train_files, w_old, k_old)
    seen = []
    for loader in loaders:
        seen += keys_of(run(loader, stop_after=2))
    state = merge_states([loader.state_dict() for loader in loaders])
    rest = []
    for loader in _rank_loaders(train_files, w_new, k_new, state):
        rest += keys_of(run(loader))
    assert sorted(seen + rest) == list(range(16))


def test_elastic_resume_twice_then_checkpoint_again(train_files):
    a = stream(train_files, rank=0, world_size=2)
    seen = [s["key"] for _, s in zip(range(3), a)]
    state = merge_states([a.state_dict(), stream(train_files, rank=1, world_size=2).state_dict()])
    b = stream(train_files).loader(batch_size=2, num_workers=2)
    b.load_state_dict(state)
    seen += keys_of(run(b, stop_after=2))
    state = b.state_dict()
    c = [stream(train_files, rank=r, world_size=2) for r in range(2)]
    for ds in c:
        ds.load_state_dict(state)
    rest = [s["key"] for ds in c for s in ds]
    assert sorted(seen + rest) == list(range(16))


def test_state_from_another_plan_is_refused(train_files):
    state = stream(train_files).state_dict()
    with pytest.raises(TaliConfigError, match="different data plan.*buffer_size"):
        stream(train_files, buffer_size=8).load_state_dict(state)
    with pytest.raises(TaliConfigError, match="state version"):
        stream(train_files).load_state_dict({**state, "version": 99})


def test_configuration_errors(train_files):
    with pytest.raises(TaliConfigError, match="both rank and world_size"):
        stream(train_files, rank=0)
    with pytest.raises(TaliConfigError, match=r"rank=2 must be in \[0, world_size=2\)"):
        stream(train_files, rank=2, world_size=2)
    with pytest.raises(TaliConfigError, match="equal_per_rank='even' is not allowed"):
        stream(train_files, equal_per_rank="even")
    with pytest.raises(TaliConfigError, match="buffer_size must be an int >= 0"):
        stream(train_files, buffer_size=-1)
    with pytest.raises(TaliConfigError, match="on_error='ignore' is not allowed"):
        stream(train_files, on_error="ignore")
    with pytest.raises(TaliConfigError, match="persistent_workers"):
        stream(train_files).loader(num_workers=1, persistent_workers=True)
    with pytest.raises(TaliSourceError, match="at least one parquet shard"):
        TaliStream([])


def test_bad_rows_raise_located(bad_root):
    files = resolve_local_files(bad_root, "train")
    with pytest.raises(
        TaliSubtitleError, match=r"field=youtube_subtitle_text.*shard=train-00000-of-00002.parquet"
    ):
        list(stream(files, shuffle=False))


@pytest.mark.parametrize("workers", [0, 2])
def test_skip_policy_reports_every_bad_row(bad_root, workers):
    files = resolve_local_files(bad_root, "train")
    report = ErrorReport()
    keys = []
    loader = stream(files, on_error="skip", shuffle=False).loader(batch_size=3, num_workers=workers)
    for batch in loader:
        report.update(batch)
        keys += [k for k, v in zip(batch["key"].tolist(), batch["valid"].tolist()) if v]
    assert sorted(keys) == sorted(set(range(16)) - {4, 15})
    assert report.read == 16 and len(report.skipped) == 2
    assert {r.row for r in report.skipped} == {4, 7}  # row 15 is row 7 of the second shard
    assert report.by_error == Counter({"TaliSubtitleError": 2})


def test_substitute_policy_keeps_positions(bad_root):
    files = resolve_local_files(bad_root, "train")
    samples = list(stream(files, on_error="substitute", shuffle=False))
    assert [s["key"] for s in samples] == list(range(16))
    assert [s["key"] for s in samples if not s["valid"]] == [4, 15]


def test_item_ids_filter_and_processors(train_files, truth):
    train_ids = sorted(i for i, t in truth.items() if t["split"] == "train")
    wanted = set(train_ids[::3])

    def tag(sample):
        sample["tagged"] = torch.tensor(sample["item_idx"] * 2)
        return sample

    ds = stream(train_files, item_ids=wanted, processors=tag)
    got = run_samples = list(ds)
    assert sorted(s["item_idx"] for s in got) == sorted(wanted)
    assert all(int(s["tagged"]) == 2 * s["item_idx"] for s in run_samples)
    assert len(ds) == len(wanted)
    batches = list(stream(train_files, item_ids=wanted, processors=tag).loader(batch_size=2, num_workers=2))
    assert sorted(i for b in batches for i in b["item_idx"].tolist()) == sorted(wanted)


def test_video_choices_survive_resume_with_workers(sample_root):
    """Real decoding: the resumed run cuts the same frames as the uninterrupted one."""
    files = resolve_local_files(sample_root, "val")
    config = TaliConfig(
        modalities=("youtube_content_video",),
        video=__import__("tali").VideoConfig(num_frames=2, size=32, selection="random"),
    )

    def frames(loader, stop=None):
        out = {}
        for i, batch in enumerate(loader):
            for k, pts in zip(batch["key"].tolist(), batch["youtube_content_video"]["pts_seconds"]):
                out[k] = pts.tolist()
            if stop is not None and i + 1 == stop:
                break
        return out

    full = frames(TaliStream(files, config=config).loader(batch_size=1, num_workers=2))
    first = TaliStream(files, config=config).loader(batch_size=1, num_workers=2)
    head = frames(first, stop=1)
    resumed = TaliStream(files, config=config).loader(batch_size=1, num_workers=2)
    resumed.load_state_dict(first.state_dict())
    tail = frames(resumed)
    assert sorted(head) + sorted(tail) != [] and {**head, **tail} == full
    assert set(head).isdisjoint(tail)


@pytest.mark.parametrize("workers", [0, 2])
def test_a_new_pass_after_a_finished_epoch_is_the_next_epoch(train_files, workers):
    loader = stream(train_files).loader(batch_size=3, num_workers=workers)
    first = [b for b in loader]
    second = [b for b in loader]
    assert sorted(k for b in second for k in b["key"].tolist()) == list(range(16))
    assert {e for b in second for e in b["epoch"].tolist()} == {1}
    assert [k for b in first for k in b["key"].tolist()] != [k for b in second for k in b["key"].tolist()]
    assert len(loader) == len(first) == len(second)
    # A pass that stops early continues, rather than restarting, on the next iter().
    partial = stream(train_files).loader(batch_size=3, num_workers=workers)
    head = [k for _, b in zip(range(2), partial) for k in b["key"].tolist()]
    tail = [k for b in partial for k in b["key"].tolist()]
    assert sorted(head + tail) == list(range(16))


def test_drop_last_passes_end_the_epoch(train_files):
    loader = stream(train_files).loader(batch_size=3, num_workers=2, drop_last=True)
    first = [k for b in loader for k in b["key"].tolist()]
    assert len(first) == 12 and len(loader) == 4  # 8 rows per worker: two full batches each
    second = list(loader)
    assert {e for b in second for e in b["epoch"].tolist()} == {1} and len(second) == 4


def test_a_shard_damaged_after_planning_fails_loudly(sample_root, tmp_path):
    src = resolve_local_files(sample_root, "val")[0]
    copy = tmp_path / "val-00000-of-00001.parquet"
    copy.write_bytes(Path(src).read_bytes())
    ds = stream([str(copy)], shuffle=False)
    data = copy.read_bytes()
    copy.write_bytes(data[: len(data) // 2])  # a partial copy: no footer any more
    with pytest.raises(TaliSourceError, match=r"row group 0 of .*val-00000-of-00001.parquet"):
        list(ds)


def test_stream_stats_and_invalid_utf8_follow_the_policy(train_files, tmp_path):
    """Streaming samples carry stage stats like map-style ones, and a row whose text is not
    UTF-8 is a bad row under the policy (skipped and reported), never a worker crash."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from tali.clock import STAGES

    table = pq.read_table(train_files[0])
    titles = table.column("youtube_title_text").cast(pa.binary()).to_pylist()
    titles[2] = b"\xff\xfe not utf-8"
    i = table.schema.get_field_index("youtube_title_text")
    broken = table.set_column(
        i, "youtube_title_text", pa.array(titles, pa.binary()).cast(pa.string(), safe=False)
    )
    path = tmp_path / "train-00000-of-00001.parquet"
    pq.write_table(broken, path, row_group_size=3)
    source = stream([str(path)], collect_stats=True, on_error="skip", shuffle=False)
    report = ErrorReport()
    seen = 0
    for batch in source.loader(batch_size=2, num_workers=0):
        report.update(batch)
        seen += len(batch["key"])
        calls = batch["stats"]["stage_calls"]
        assert calls.shape == (len(batch["key"]), len(STAGES)) and int(calls[:, 0].min()) == 1
    assert [r.item_idx for r in report.skipped] == [2] and report.skipped[0].field == "youtube_title_text"
    assert seen + len(report.skipped) == table.num_rows
