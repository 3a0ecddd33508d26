"""A fuzz corpus of >= 1,000 mutated sample-dataset rows through the map-style loader.

With ``on_error="raise"`` every failing row raises a ``TaliDataError`` naming its
row (item_idx, shard, row) and field, and every row whose mutation certainly breaks
it does fail. With ``"skip"`` nothing crashes or hangs, batch sizes hold and the
report's books balance; ``"substitute"`` yields one masked placeholder per bad row.
Rows are grouped by what they break (clip, image, text) so each group is decoded
with a config that reads only its columns: the corpus runs in about a minute.
"""

from __future__ import annotations

import os
import time
from collections import Counter

import pyarrow.parquet as pq
import pytest
import torch

from tali import AudioConfig, ImageConfig, TaliConfig, TaliDataset, TextConfig, VideoConfig, WindowConfig
from tali.data.policy import ErrorReport
from tali.errors import TaliDataError
from tali.quality.mutate import make_mutants, mutants_to_table
from tali.sample_data import ClipSpec, encode_clip

COUNTS = {"clip": 300, "image": 200, "text": 560}
#: The corpus's own limits (smaller than the defaults, so each class is cheap to build).
FUZZ_CLIP_BYTES = 2_000_000
TEXT_LIMITS = {
    "max_subtitle_bytes": 50_000,
    "max_text_chars": 10_000,
    "max_subtitle_nodes": 10_000,
    "max_subtitle_aliases": 1000,
}
#: A hang guard, not a speed claim: the loader's own limit is 5 s per row.
ROW_SECONDS_LIMIT = 15.0

CONFIGS = {
    "clip": TaliConfig(
        modalities=("youtube_content_video", "youtube_content_audio"),
        window=WindowConfig(seconds=1.0, start="random"),
        video=VideoConfig(num_frames=2, size=32, max_decode_seconds=5.0, max_clip_bytes=FUZZ_CLIP_BYTES),
        audio=AudioConfig(sample_rate=8000, on_missing="error"),  # clip.no_audio must fail here
    ),
    "image": TaliConfig(modalities=("wikipedia_caption_image",), image=ImageConfig(size=32)),
    "text": TaliConfig(modalities=("text",), text=TextConfig(**TEXT_LIMITS)),
}


@pytest.fixture(scope="module")
def corpus(sample_root, tmp_path_factory):
    """family -> (parquet path, mutants). Most clip mutants start from a tiny clip
    (cheap to decode); one base in five keeps its real sample-dataset clip."""
    base = pq.read_table(sample_root / "data" / "test-00000-of-00001.parquet").to_pylist()
    tiny = encode_clip(
        ClipSpec(
            width=64,
            height=48,
            duration_seconds=3.0,
            fps=10,
            gop_seconds=1.0,
            sample_rate=16_000,
            audio_layout="mono",
        )
    )
    cheap = [dict(row, youtube_video_content=tiny, youtube_video_size=len(tiny)) for row in base]
    out_dir = tmp_path_factory.mktemp("fuzz")
    corpus = {}
    for position, (family, count) in enumerate(COUNTS.items()):
        bases = cheap + base[:1] if family == "clip" else cheap
        mutants = make_mutants(
            bases,
            counts={family: count},
            seed=7,
            first_item_idx=1_000_000 * (1 + position),
        )
        path = out_dir / f"{family}.parquet"
        pq.write_table(mutants_to_table(mutants), path, row_group_size=20)
        corpus[family] = (path, mutants)
    return corpus


def test_corpus_is_big_and_covers_every_operator(corpus):
    total = sum(len(m) for _, m in corpus.values())
    assert total >= 1000
    kinds = Counter(m.kind for _, mutants in corpus.values() for m in mutants)
    assert min(kinds.values()) >= 5, kinds


@pytest.fixture(scope="module")
def raise_outcomes(corpus):
    """family -> {item_idx: error or None}, one decode of every row under on_error='raise'."""
    outcomes = {}
    for family, (path, mutants) in corpus.items():
        ds = TaliDataset(files=[str(path)], config=CONFIGS[family], on_error="raise")
        assert len(ds) == len(mutants)
        results = {}
        for i, mutant in enumerate(mutants):
            started = time.monotonic()
            try:
                ds[i]
                results[mutant.row["item_idx"]] = None
            except TaliDataError as exc:  # anything else is a crash and fails the test
                results[mutant.row["item_idx"]] = exc
            elapsed = time.monotonic() - started
            assert elapsed < ROW_SECONDS_LIMIT, f"{mutant.kind} took {elapsed:.1f} s"
        outcomes[family] = results
    return outcomes


@pytest.mark.parametrize("family", list(COUNTS))
def test_raise_names_row_and_field(corpus, raise_outcomes, family):
    path, mutants = corpus[family]
    results = raise_outcomes[family]
    failed = 0
    for row_number, mutant in enumerate(mutants):
        exc = results[mutant.row["item_idx"]]
        if mutant.must_fail:
            assert exc is not None, f"{mutant.kind} decoded without error"
            assert exc.field and exc.field.startswith(mutant.must_fail), (mutant.kind, exc.field, str(exc))
        if exc is None:
            continue
        failed += 1
        assert exc.item_idx == mutant.row["item_idx"], (mutant.kind, str(exc))
        assert exc.field, (mutant.kind, str(exc))
        assert exc.shard == path.name and exc.row == row_number
        assert f"item_idx={mutant.row['item_idx']}" in str(exc) and f"field={exc.field}" in str(exc)
    assert failed >= sum(1 for m in mutants if m.must_fail) > 0


@pytest.mark.parametrize("family", list(COUNTS))
def test_skip_keeps_batches_full_and_books_balanced(corpus, raise_outcomes, family):
    path, _ = corpus[family]
    bad = {item for item, exc in raise_outcomes[family].items() if exc is not None}
    ds = TaliDataset(files=[str(path)], config=CONFIGS[family], on_error="skip")
    report = ErrorReport()
    batch_size = 16
    yielded_ids = []
    loader = torch.utils.data.DataLoader(ds, batch_size=batch_size, collate_fn=_collate)
    for batches, batch in enumerate(loader, start=1):
        report.update(batch)
        yielded_ids.extend(batch["item_idx"].tolist())
        if batches < -(-len(ds) // batch_size):
            assert len(batch["item_idx"]) == batch_size  # a skipped row is replaced, never dropped
    assert report.yielded == len(ds)
    assert report.yielded + len(report.skipped) == report.read
    assert {r.item_idx for r in report.skipped} == bad
    assert not bad & set(yielded_ids)  # no bad row ever reaches a batch
    for record in report.skipped:
        assert record.field and record.error and record.shard == path.name and record.row is not None


def test_substitute_masks_each_bad_row(corpus, raise_outcomes):
    path, mutants = corpus["image"]
    bad = {item for item, exc in raise_outcomes["image"].items() if exc is not None}
    ds = TaliDataset(files=[str(path)], config=CONFIGS["image"], on_error="substitute")
    report = ErrorReport()
    for batch in torch.utils.data.DataLoader(ds, batch_size=25, collate_fn=_collate):
        report.update(batch)
        invalid = ~batch["valid"]
        assert (batch["wikipedia_caption_image"]["pixels"][invalid] == 0).all()
    assert report.substituted == len(bad)
    assert (
        report.yielded == len(mutants)
        and report.yielded + len(report.skipped) - report.substituted == report.read
    )


def _collate(samples):
    from tali.collation import collate

    return collate(samples)


def test_validate_reports_every_broken_mutant_and_never_dies(corpus):
    from tali.limits import ClipLimits
    from tali.quality import CheckLimits, validate

    files = [str(path) for path, _ in corpus.values()]
    report = validate(files, limits=CheckLimits(**TEXT_LIMITS, clip=ClipLimits(max_bytes=FUZZ_CLIP_BYTES)))
    mutants = [m for _, family in corpus.values() for m in family]
    assert report.rows == len(mutants)
    failed = {f.item_idx for f in report.failures}
    for m in mutants:
        # A clip without audio is valid TALI data; only a loader that asks for audio rejects it.
        if m.must_fail and m.kind != "clip.no_audio":
            assert m.row["item_idx"] in failed, m.kind
    assert all(f.error.startswith("Tali") for f in report.failures), Counter(f.error for f in report.failures)
    assert all(f.item_idx is not None and f.row is not None and f.field for f in report.failures)


# --- files beside the data: cache entries and duration indexes (issue 24.4, 24.5) ---------

_TITLES = TaliConfig(modalities=("youtube_title_text",))


@pytest.mark.parametrize("seed", range(2))
def test_no_hostile_cache_entry_is_ever_served(sample_root, tmp_path, seed):
    """Every cache operator on every entry of the val split (planted between two epochs): the
    second epoch yields exactly the first one's rows, each hostile entry a counted miss."""
    import numpy as np

    import tali
    from tali.data.cache import SampleCache
    from tali.quality.mutate import CACHE_ENTRY_OPS

    def epoch(cache):
        stream = tali.load(sample_root, split="val", config=_TITLES, cache=cache, shuffle=False)
        return {s["key"]: (s["item_idx"], s["youtube_title_text"]) for s in stream}

    rng = np.random.default_rng(seed)
    for n, (kind, op) in enumerate(CACHE_ENTRY_OPS.items()):
        cache = SampleCache(tmp_path / f"cache-{n}", _TITLES)
        first = epoch(cache)
        key = int(rng.integers(0, len(first)))
        other = cache.path((key + 1) % len(first), 0).read_bytes()
        op(cache.path(key, 0), rng, other)
        started = time.monotonic()
        assert epoch(cache) == first, kind
        assert time.monotonic() - started < ROW_SECONDS_LIMIT, kind
        assert cache.hits == len(first) - 1, (kind, cache)
        again = cache.get(key, 0)  # recomputed and cached again (or, under a planted directory, not)
        assert again is None or again["item_idx"] == first[key][0], kind


def test_no_hostile_durations_file_moves_a_window(sample_root, tmp_path):
    """Every durations operator: a text-only config's windows are the true-length ones or the
    nominal-length ones, never drawn from a planted length, with a warning; bounded time."""
    import shutil
    import warnings

    import numpy as np

    from tali.data.durations import FILE_NAME, DurationsIndexWarning
    from tali.quality.durations import write_durations
    from tali.quality.mutate import DURATIONS_OPS

    def dataset_copy(name, rows=None):
        root = tmp_path / name
        (root / "data").mkdir(parents=True)
        shard = sample_root / "data" / "realworld-00000-of-00001.parquet"
        table = pq.read_table(shard)
        pq.write_table(table if rows is None else table.slice(0, rows), root / "data" / shard.name)
        write_durations(root)
        return root

    def lengths(root):
        config = TaliConfig(modalities=("youtube_subtitle_text",), seed=3)
        ds = TaliDataset(root, split="realworld", config=config)
        return {ds[i]["item_idx"]: ds[i]["window"]["clip_seconds"] for i in range(len(ds))}

    other = (dataset_copy("other", rows=5) / "data" / FILE_NAME).read_bytes()  # an index of other shards
    root = dataset_copy("root")
    index = (root / "data" / FILE_NAME).read_bytes()
    true = lengths(root)
    nominal = TaliConfig().window.nominal_clip_seconds
    rng = np.random.default_rng(0)
    for kind, op in DURATIONS_OPS.items():
        path = root / "data" / FILE_NAME
        op(path, rng, other)
        started = time.monotonic()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            got = lengths(root)
        assert time.monotonic() - started < ROW_SECONDS_LIMIT, kind
        assert all(got[k] in (true[k], nominal) for k in true), (kind, got)
        assert any(issubclass(w.category, DurationsIndexWarning) for w in caught), kind
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
        path.write_bytes(index)


def test_no_hostile_pipeline_file_escapes_a_config_error(tmp_path):
    """Every config operator, in a child process capped at 2 GiB of address space and 60 s:
    a valid pipeline, or a TaliConfigError naming where; never another error, a hang or a crash."""
    import json
    import subprocess
    import sys
    import textwrap

    from tali.quality.mutate import CONFIG_OPS

    paths = {}
    for kind, (name, text) in CONFIG_OPS.items():
        path = tmp_path / kind / name
        path.parent.mkdir()
        path.write_bytes(text if isinstance(text, bytes) else text.encode())
        paths[kind] = str(path)
    script = textwrap.dedent(
        """
        import json, resource, sys
        resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))
        from tali.errors import TaliConfigError
        from tali.pipeline.spec import pipeline_from_file
        out = {}
        for kind, path in json.loads(sys.argv[1]).items():
            try:
                pipeline_from_file(path)
                out[kind] = "ok"
            except TaliConfigError as exc:
                out[kind] = "config: " + str(exc)[:200]
            except BaseException as exc:  # what the test refuses
                out[kind] = f"other: {type(exc).__name__}: {str(exc)[:200]}"
        print(json.dumps(out))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script, json.dumps(paths)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    results = json.loads(done.stdout.strip().splitlines()[-1])
    assert results["config.valid"] == "ok"
    others = {k: v for k, v in results.items() if v.startswith("other")}
    assert not others, others
    refused = {k for k, v in results.items() if v.startswith("config")}
    assert refused >= set(CONFIG_OPS) - {"config.valid"}, sorted(set(CONFIG_OPS) - refused)
