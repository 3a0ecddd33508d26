"""Streaming access: an ``IterableDataset`` over the original parquet shards.

Reads row group by row group with column projection; memory per worker is one
row group plus at most ``buffer_size`` raw rows, whatever the number of shards
(see ``benchmarks/data/bench_loading.py``). Work is split by :mod:`tali.data.plan`
across ``torch.distributed`` ranks and DataLoader workers; every sample of a
stream carries ``stream`` and ``position`` (its place in that stream's order),
which is all a checkpoint needs.

Why not ``torchdata.stateful_dataloader.StatefulDataLoader``: it snapshots each
worker's ``state_dict`` every few batches and replays from the snapshot, so its
state is tied to the worker count and it cannot resume W ranks as W'. Here a
stream's order is a pure function of the plan, so "how many outputs each stream
delivered" (read off the batches the training loop actually received, never
off prefetched ones) is an exact, topology-free state, and resuming costs no
decoding: skipped outputs are never read.

Batch legend (B = batch size): everything :mod:`tali.transform` documents, plus
``stream [B] int64`` and ``position [B] int64``.
"""

from __future__ import annotations

import functools
import os
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import torch.utils.data

from tali.clock import Stage, timed, with_stats
from tali.config import TaliConfig
from tali.data.checkpoint import check_int, check_mapping, pack_mask, unpack_mask
from tali.data.durations import load_durations
from tali.data.footers import FileIdentity
from tali.data.plan import EpochPlan, EqualPerRank, Topology, check_equal_per_rank
from tali.data.policy import (
    OnError,
    SkipRecord,
    apply_policy,
    check_max_consecutive_bad,
    check_on_error,
    mark,
    placeholder_sample,
)
from tali.data.row_source import RowSource
from tali.data.rows import RowLimits, row_item_idx, row_to_python
from tali.data.shards import Opener, ShardIndex
from tali.data.stateful import StreamingLoader, merge_states
from tali.errors import TaliConfigError, TaliDataError, TaliSourceError
from tali.pipeline.pipeline import UNREAD_ROW, Pipeline, resolve_pipeline

__all__ = ["StreamingLoader", "TaliStream", "merge_states", "resolve_rank"]

STATE_VERSION = 1


def resolve_rank(rank: int | None, world_size: int | None) -> tuple[int, int]:
    """Explicit values win; else the initialised process group; else a single process."""
    if (rank is None) != (world_size is None):
        raise TaliConfigError(
            f"give both rank and world_size or neither, got rank={rank}, world_size={world_size}"
        )
    if rank is None:
        if dist.is_available() and dist.is_initialized():
            return dist.get_rank(), dist.get_world_size()
        return 0, 1
    assert world_size is not None
    if not 0 <= rank < world_size:
        raise TaliConfigError(f"rank={rank} must be in [0, world_size={world_size})")
    return int(rank), int(world_size)


class TaliStream(torch.utils.data.IterableDataset):
    """TALI rows of one split, streamed in a deterministic, resumable order.

    ``shuffle``: shuffle row-group order and pass rows through a shuffle buffer
    of ``buffer_size`` rows, both from ``(config.seed, epoch)``; call
    :meth:`set_epoch` before each epoch (a new pass over a finished epoch moves to
    the next one by itself). The buffer holds raw rows (projected columns): with
    video, ``buffer_size`` x clip size per worker. ``equal_per_rank`` (``"off"``,
    ``"drop"``, ``"pad"``): see :data:`tali.data.plan.EqualPerRank`.
    ``item_ids``: only rows whose ``item_idx`` is in this set (e.g. from
    ``tali filter``). ``on_error`` and ``processors`` behave as in
    :class:`~tali.data.dataset.TaliDataset`; under ``skip`` a bad row's record
    rides on the next sample of the same stream (or on a ``valid=False``
    placeholder when the stream ends); an unreadable row group is bad rows, and
    ``max_consecutive_bad`` is the same rule as in ``TaliDataset``. Placeholders
    go through ``processors`` like good samples. ``cache``: a
    :class:`~tali.data.cache.SampleCache` of decoded samples.
    """

    def __init__(
        self,
        files: Sequence[str],
        *,
        config: TaliConfig | None = None,
        split: str | None = None,
        opener: Opener | None = None,
        shuffle: bool = True,
        buffer_size: int = 64,
        rank: int | None = None,
        world_size: int | None = None,
        equal_per_rank: EqualPerRank = "off",
        item_ids: Sequence[int] | set[int] | None = None,
        on_error: OnError = "raise",
        max_consecutive_bad: int | None = None,
        processors: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
        cache: Any | None = None,
        index: ShardIndex | None = None,
        identities: Sequence[FileIdentity] | None = None,
        collect_stats: bool = False,
        pipeline: Pipeline | None = None,
    ) -> None:
        self.config = pipeline.config if pipeline is not None and config is None else (config or TaliConfig())
        self.split = split
        if isinstance(files, str | os.PathLike):
            raise TaliConfigError(
                f"TaliStream takes a list of parquet shards, not one path ({os.fspath(files)!r}); "
                "for a dataset folder or Hub id use tali.load(source, split=..., streaming=True)"
            )
        self.files = list(files)
        if not self.files:
            raise TaliSourceError("a stream needs at least one parquet shard")
        self.opener = opener
        #: The one row source (as in TaliDataset): footers once per machine, column check,
        #: item_ids, page reads where the layout allows, else row groups.
        self.source = RowSource(
            self.files,
            modalities=self.config.modalities,
            opener=opener,
            split=split,
            index=index,
            identities=identities,
        )
        self.split = split or self.source.split
        self.index = self.source.index
        self.columns = self.source.columns
        self.shuffle = bool(shuffle)
        if not isinstance(buffer_size, int) or buffer_size < 0:
            raise TaliConfigError(f"buffer_size must be an int >= 0, got {buffer_size!r}")
        self.buffer_size = buffer_size
        self.rank, self.world_size = resolve_rank(rank, world_size)
        self.equal_per_rank = check_equal_per_rank(equal_per_rank)
        self.on_error = check_on_error(on_error)
        self.max_consecutive_bad = check_max_consecutive_bad(max_consecutive_bad)
        self.processors = processors
        self.collect_stats = bool(collect_stats)  # per-sample stage times, as in TaliDataset
        #: Every sample is ``pipeline(row)``: decode (+ processors) unless given one.
        self.pipeline = resolve_pipeline(config, processors, pipeline, load_durations(self.files))
        self.transform = self.pipeline.transform
        self.cache = cache
        if cache is not None:
            cache.bind(self.pipeline, source=self.index)
        self.unit_rows = np.asarray([rg.num_rows for rg in self.index.row_groups], dtype=np.int64)
        self.allowed = self._allowed_rows(item_ids) if item_ids is not None else None
        self.epoch = 0
        self._base: np.ndarray | None = None  # rows consumed before this segment of the epoch
        self._segment: Topology | None = None  # topology the current counts refer to
        self._counts: dict[int, int] = {}
        # DataLoader hands out batches round-robin from worker 0; after a resume the
        # stream due next must sit on worker 0, so workers play streams rotated by this.
        self._rotation = 0
        self._last_stream: int | None = None
        self._loader_workers = 1  # set by StreamingLoader; 1 when iterated directly

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state.pop("_open_shard", None)  # file handles do not cross into workers
        return state

    # -- planning -----------------------------------------------------------------------------

    def _allowed_rows(self, item_ids: Sequence[int] | set[int]) -> np.ndarray:
        """Rows to keep, by the row source's one ``item_ids`` rule (a missing id raises)."""
        allowed = np.zeros(self.index.num_rows, dtype=bool)
        allowed[self.source.item_rows(item_ids)] = True
        return allowed

    def plan(self, topology: Topology | None = None, *, excluded: np.ndarray | None = None) -> EpochPlan:
        return EpochPlan(
            self.unit_rows,
            seed=self.config.seed,
            epoch=self.epoch,
            topology=topology or Topology(self.world_size, self._loader_workers),
            shuffle=self.shuffle,
            buffer_size=self.buffer_size,
            equal_per_rank=self.equal_per_rank,
            allowed=self.allowed,
            excluded=excluded,
        )

    def __len__(self) -> int:
        """Samples this rank yields in a whole epoch (what DDP step counts need)."""
        return self.plan(Topology(self.world_size, 1)).rank_size(self.rank)

    def set_epoch(self, epoch: int) -> None:
        """Start ``epoch`` afresh; a no-op for the epoch a checkpoint was loaded into."""
        if int(epoch) != self.epoch:
            self.epoch = int(epoch)
            self._base, self._segment, self._counts = None, None, {}
            self._rotation, self._last_stream = 0, None

    # -- state --------------------------------------------------------------------------------

    def observe(self, batch: dict[str, Any]) -> None:
        """Record what the training loop received (a sample or a collated batch)."""
        streams, positions = batch["stream"], batch["position"]
        if isinstance(streams, int):
            streams, positions = [streams], [positions]
        for s, p in zip(torch.as_tensor(streams).tolist(), torch.as_tensor(positions).tolist()):
            if self._counts.get(s, 0) < p + 1:
                self._counts[s] = p + 1
            self._last_stream = s

    def state_dict(self, *, gather: bool = True) -> dict[str, Any]:
        """Where this epoch stands. Under ``torch.distributed`` (``gather=True``) every
        rank's progress is merged, so any rank's state resumes the whole job."""
        counts = dict(self._counts)
        if gather and self.world_size > 1 and dist.is_available() and dist.is_initialized():
            every: list[dict[int, int]] = [{} for _ in range(self.world_size)]
            dist.all_gather_object(every, counts)
            for part in every:
                for s, c in part.items():
                    counts[s] = max(counts.get(s, 0), c)
        segment = self._segment or Topology(self.world_size, self._loader_workers)
        last = self._last_stream
        return {
            "version": STATE_VERSION,
            "epoch": self.epoch,
            "plan": self._plan_key(),
            "world_size": segment.world_size,
            "num_workers": segment.num_workers,
            "base": pack_mask(self._base),
            "counts": counts,
            "next_worker": self._rotation
            if last is None
            else (last % segment.num_workers + 1) % segment.num_workers,
        }

    def _plan_key(self) -> dict[str, Any]:
        allowed = 0 if self.allowed is None else zlib.crc32(np.packbits(self.allowed).tobytes())
        return {
            "seed": self.config.seed,
            "num_rows": int(self.unit_rows.sum()),
            "shuffle": self.shuffle,
            "buffer_size": self.buffer_size,
            "equal_per_rank": self.equal_per_rank,
            "unit_rows_crc": zlib.crc32(self.unit_rows.tobytes()),
            "allowed_crc": allowed,
            # Each shard's identity: a shard replaced or two swapped (same row-group layout)
            # would otherwise resume "ok" and silently lose and repeat rows.
            "shards": [f"{Path(s.path).name}:{s.num_rows}:{s.footer_crc:08x}" for s in self.index.shards],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Resume mid-epoch: the next iteration yields exactly the rows not yet delivered.

        Every field is checked first (:mod:`tali.data.checkpoint`); a state from
        another plan, corrupt or out of range raises ``TaliConfigError`` naming it."""
        fields = ("version", "epoch", "plan", "world_size", "num_workers", "base", "counts")
        checked = check_mapping(state, fields, what="stream")
        state = dict(checked)
        if state["version"] != STATE_VERSION:
            raise TaliConfigError(f"stream state version {state['version']!r:.40} is not {STATE_VERSION}")
        plan, now = state["plan"], self._plan_key()
        if not isinstance(plan, dict):
            raise TaliConfigError(f"stream state field 'plan' must be a dict, got {type(plan).__name__}")
        if plan.get("shards") != now["shards"] and isinstance(plan.get("shards"), list):
            saved, current = plan["shards"], now["shards"]
            first = next(
                (i for i in range(max(len(saved), len(current))) if saved[i : i + 1] != current[i : i + 1]), 0
            )
            was = saved[first] if first < len(saved) else "nothing"
            is_ = current[first] if first < len(current) else "nothing"
            raise TaliConfigError(
                f"checkpoint was taken over other shards: shard {first} was {was!r}, is {is_!r} "
                f"(name:rows:footer crc); resume with the shards it was taken on, or start the epoch afresh"
            )
        if plan != now:
            diff = {
                k: (plan.get(k), now.get(k))
                for k in sorted(set(plan) | set(now), key=str)
                if plan.get(k) != now.get(k)
            }
            raise TaliConfigError(f"checkpoint was taken with a different data plan (saved, now): {diff}")
        epoch = check_int(state["epoch"], "epoch")
        segment = Topology(
            check_int(state["world_size"], "world_size", low=1, high=1 << 20),
            check_int(state["num_workers"], "num_workers", low=1, high=1 << 16),
        )
        base = unpack_mask(state["base"], int(self.unit_rows.sum()))
        counts_in = state["counts"]
        if not isinstance(counts_in, Mapping):
            raise TaliConfigError(
                f"stream state field 'counts' must be a dict, got {type(counts_in).__name__}"
            )
        streams = segment.world_size * segment.num_workers
        saved_epoch, self.epoch = self.epoch, epoch
        try:
            saved_plan = self.plan(segment, excluded=base)
        finally:
            self.epoch = saved_epoch
        counts: dict[int, int] = {}
        for s, c in counts_in.items():
            sid = check_int(s, "counts (stream id)", high=streams - 1)
            rank, worker = divmod(sid, segment.num_workers)
            counts[sid] = check_int(c, f"counts[{sid}]", high=len(saved_plan.stream_inputs(rank, worker)))
        rotation = check_int(state.get("next_worker", 0), "next_worker", high=segment.num_workers - 1)
        self.epoch, self._base, self._segment, self._counts = epoch, base, segment, counts
        self._rotation, self._last_stream = rotation, None

    def _resolve(self, topology: Topology) -> tuple[EpochPlan, dict[int, int]]:
        """This epoch's plan for ``topology``: the saved segment's plan when the topology
        is unchanged (exact replay), else a new plan over the rows not yet consumed."""
        if self._segment is None or self._segment == topology:
            return self.plan(topology, excluded=self._base), self._counts
        old = self.plan(self._segment, excluded=self._base)
        consumed = old.consumed(self._counts)
        if self._base is not None:
            consumed |= self._base
        return self.plan(topology, excluded=consumed), {}

    def _begin_segment(self, topology: Topology) -> None:
        """Main-process bookkeeping when an iteration starts under ``topology``."""
        if self._segment is not None and self._segment != topology:
            old = self.plan(self._segment, excluded=self._base)
            consumed = old.consumed(self._counts)
            self._base = consumed | self._base if self._base is not None else consumed
            self._counts, self._rotation = {}, 0
        self._segment = topology

    def _advance_if_done(self) -> None:
        """A new pass after this rank delivered its whole epoch starts the next epoch
        (as ``set_epoch(epoch + 1)`` would); a pass that stopped early continues."""
        if self._segment is None or not self._counts:
            return
        seg = self._segment
        plan = self.plan(seg, excluded=self._base)
        # Same world size: this rank's streams; a checkpoint from another world size: all of them.
        ranks = [self.rank] if seg.world_size == self.world_size else range(seg.world_size)
        for rank in ranks:
            for w in range(seg.num_workers):
                if self._counts.get(seg.stream_id(rank, w), 0) < len(plan.stream_inputs(rank, w)):
                    return
        self.set_epoch(self.epoch + 1)

    # -- reading ------------------------------------------------------------------------------

    def __iter__(self) -> Iterator[dict[str, Any]]:
        info = torch.utils.data.get_worker_info()
        if info is None:
            self._advance_if_done()
        worker, workers = (0, 1) if info is None else (info.id, info.num_workers)
        topology = Topology(self.world_size, workers)
        same = self._segment is None or self._segment == topology
        plan, counts = self._resolve(topology)
        if info is None:
            self._begin_segment(topology)
        if same:
            worker = (worker + self._rotation) % workers
        sid = topology.stream_id(self.rank, worker)
        yield from self._stream(plan, sid, counts.get(sid, 0), track=info is None)
        if info is None:
            self._finish_pass()

    def _finish_pass(self) -> None:
        """A pass that ran to its end exhausted this rank's streams, even rows nobody
        received (``drop_last``'s partial batch): the epoch is over for this rank."""
        seg = self._segment
        if seg is None:
            return
        plan = self.plan(seg, excluded=self._base)
        for w in range(seg.num_workers):
            sid = seg.stream_id(self.rank, w)
            self._counts[sid] = max(self._counts.get(sid, 0), len(plan.stream_inputs(self.rank, w)))

    def _stream(self, plan: EpochPlan, sid: int, start: int, *, track: bool) -> Iterator[dict[str, Any]]:
        t = plan.topology
        rank, worker = divmod(sid, t.num_workers)
        inputs = plan.stream_inputs(rank, worker)
        order = plan.stream_order(rank, worker)
        needed = np.zeros(len(inputs), dtype=bool)
        needed[order[start:]] = True
        units = plan.unit_of(inputs)
        # input position -> (row group table, offset) of a row not yet produced (None: served by cache)
        rows: dict[int, tuple[Any, int] | None] = {}
        ingested = 0
        table_unit, table = -1, None
        pending: list[SkipRecord] = []
        horizon = max(plan.buffer_size, 1)
        for i in range(start, len(order)):
            # Output i is among inputs [0, i + buffer): read that far, keeping only needed rows.
            stop = min(i + horizon, len(inputs))
            while ingested < stop:
                p = ingested
                ingested += 1
                if not needed[p]:
                    continue
                key = int(inputs[p])
                if self.cache is not None and self.cache.contains(key, self.epoch):
                    rows[p] = None
                    continue
                unit = int(units[p])
                if not self._row_group_bound(unit):
                    # page mode: the row's own pages are read when it is produced, so the
                    # shuffle buffer holds row numbers, not row groups (RSS independent of them)
                    rows[p] = (_LAZY, key - int(plan.unit_starts[unit]))
                    continue
                if unit != table_unit:
                    table_unit, table = unit, self._read_unit_or_mark(unit)
                assert table is not None
                # Python conversion waits for the policy: invalid UTF-8 is a bad row, not a crash.
                rows[p] = (table, key - int(plan.unit_starts[table_unit]))
            p = int(order[i])
            if self.collect_stats:
                produce = functools.partial(self._produce, int(inputs[p]), rows.pop(p), int(units[p]))
                sample, record = _with_stats_pair(produce)
            else:
                sample, record = self._produce(int(inputs[p]), rows.pop(p), int(units[p]))
            if record is not None:
                pending.append(record)
                if self.max_consecutive_bad is not None and len(pending) > self.max_consecutive_bad:
                    raise TaliDataError(
                        f"{len(pending)} consecutive bad rows in stream {sid} "
                        f"(max_consecutive_bad={self.max_consecutive_bad}); last: {record.message}",
                        item_idx=record.item_idx,
                        field=record.field,
                        shard=record.shard,
                        row=record.row,
                    )
            if sample is None:
                continue
            sample = self._finish(sample, sid, i, record is None, pending)
            pending = []
            if track:
                self._counts[sid] = i + 1
            yield sample
        if pending:  # bad rows at the very end of a stream still reach ErrorReport
            key = int(inputs[order[-1]])
            sample = self._placeholder(key)
            if track:
                self._counts[sid] = len(order)
            yield self._finish(sample, sid, len(order) - 1, False, pending)

    def _finish(
        self, sample: dict[str, Any], sid: int, position: int, valid: bool, records: list[SkipRecord]
    ) -> dict[str, Any]:
        if self.on_error != "raise":
            mark(sample, valid=valid, records=records)
        sample["stream"] = sid
        sample["position"] = position
        return sample

    def _placeholder(self, key: int, item_idx: int | None = None) -> dict[str, Any]:
        """A placeholder that batches with good samples: through the processors, with stats."""

        def build() -> dict[str, Any]:
            sample = placeholder_sample(self.config, key=key, epoch=self.epoch, item_idx=item_idx)
            return self.pipeline.finish_placeholder(sample)

        return with_stats(build) if self.collect_stats else build()

    def _read_unit_or_mark(self, unit: int) -> Any:
        """A row group, or (under skip/substitute) a marker that makes each of its rows a bad row."""
        try:
            return self._read_unit(unit)
        except (TaliSourceError, TaliDataError) as exc:  # a data error: refused before reading
            if self.on_error == "raise":
                raise
            return _Unreadable(exc)

    def _row_group_bound(self, unit: int) -> bool:
        """Whether rows of this row group are read with the whole group (else page by page).
        A row group whose page table cannot be read is read whole, inside the policy."""
        try:
            return self.source.row_group_bound(self.index.row_groups[unit])
        except TaliSourceError:
            return True

    def _read_unit(self, unit: int):
        """One row group, projected, through the row source (footers come from its cache:
        over fsspec/HTTP nothing is re-read per row group)."""
        return self.source.read_row_group(
            self.index.row_groups[unit], limits=RowLimits.from_config(self.config)
        )

    def _produce(self, key: int, located: tuple[Any, int] | None, unit: int):
        ref = self.index.row_groups[unit]

        def attempt() -> dict[str, Any]:
            # located is None only when the cache said it holds the row
            sample = self.cache.get(key, self.epoch) if located is None and self.cache is not None else None
            raw: Mapping[str, Any] = UNREAD_ROW
            if sample is None:  # not cached, or evicted by another worker since contains()
                table, offset = (
                    located if located is not None else (self._read_unit(unit), key - ref.first_row)
                )
                if isinstance(table, _Unreadable):
                    raise table.error
                with timed(Stage.READ):
                    limits = RowLimits.from_config(self.config)
                    if table is _LAZY:
                        table, offset = self.source.read_row(key, limits=limits), 0
                    raw = row_to_python(table, offset, limits=limits)
                sample = self.pipeline.decode(raw, key=key, epoch=self.epoch)
                if self.cache is not None:
                    self.cache.put(key, self.epoch, sample)
            return self.pipeline.finish(sample, raw, key=key, epoch=self.epoch)

        readable = located is not None and not isinstance(located[0], _Unreadable) and located[0] is not _LAZY
        item_idx = row_item_idx(*located) if readable and located is not None else None
        mode: OnError = "raise" if self.on_error == "raise" else "skip"
        sample, record = apply_policy(
            mode,
            attempt,
            config=self.config,
            key=key,
            epoch=self.epoch,
            item_idx=item_idx,
            shard=self.index.shards[ref.shard].path,
            row=ref.shard_row + key - ref.first_row,
        )
        if record is not None and self.on_error == "substitute":
            sample = self._placeholder(key, record.item_idx)
        return sample, record

    def loader(self, *, batch_size: int = 8, num_workers: int = 2, **kwargs: Any) -> StreamingLoader:
        """A :class:`~tali.data.stateful.StreamingLoader` over this stream (checkpointable)."""
        return StreamingLoader(self, batch_size=batch_size, num_workers=num_workers, **kwargs)

    def __repr__(self) -> str:
        return (
            f"TaliStream(split={self.split!r}, rows={int(self.unit_rows.sum())}, shards={len(self.files)}, "
            f"row_groups={len(self.unit_rows)}, rank={self.rank}/{self.world_size}, shuffle={self.shuffle}, "
            f"buffer_size={self.buffer_size})"
        )


#: Stands for "read this row's own pages when it is produced" in the stream's buffer.
_LAZY: Any = object()


class _Unreadable:
    """Stands for a row group that could not be read; each of its rows is a bad row."""

    def __init__(self, error: TaliSourceError | TaliDataError) -> None:
        self.error = error


def _with_stats_pair(produce):
    """``with_stats`` for ``(sample, record)`` results: time charged to the sample yielded."""
    result: list[Any] = []

    def run() -> dict[str, Any]:
        result.append(produce())
        sample = result[0][0]
        return sample if sample is not None else {}

    sample = with_stats(run)
    return (sample if result[0][0] is not None else None), result[0][1]
