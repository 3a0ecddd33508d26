"""Splits shaped like the real ``Antreas/TALI``, built from the ground-truth sample rows.

The sample dataset is small in every way (24-row shards, 3-row row groups, sub-MB
clips, short names). Code that holds only at that shape does not hold on TALI, so
tests and benchmarks also run on this: the real names
(``data/train-00000-of-00600-e9123a82b71a4590.parquet``), ``metadata/*.yaml``,
``README.md`` with a ``configs:`` card, ``.gitattributes``, the converter's second
copy (``default/{split}/NNNN.parquet``), ~100-row row groups and ~1.7 MB rows.

Rows are the sample's rows again (duplicated media is fine): each clip is padded
to the row size with an mp4 ``free`` box of random bytes (skipped by every demuxer,
incompressible like real video), so every frame code, tone and subtitle of the
sample's truth still holds; :attr:`RealShape.source_of` maps each new ``item_idx``
to the sample row it copies.

``writer`` picks the parquet layout, since the loader's random access depends on it:

- ``"datasets"``: what ``datasets`` >= 4 writes (page index, content-defined
  chunking): one clip per page, so a row is read from its own pages;
- ``"pyarrow"``: pyarrow's defaults, as older ``datasets`` wrote: each large
  column chunk is one dictionary page, so a row costs its row group;
- ``"plain"``: no dictionary and no page index: page headers are scanned.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

__all__ = ["WRITERS", "RealShape", "shard_name", "write_real_shaped"]

Writer = Literal["datasets", "pyarrow", "plain"]
WRITERS: dict[str, dict[str, Any]] = {
    "datasets": {"write_page_index": True, "use_content_defined_chunking": True},
    "pyarrow": {},
    "plain": {"use_dictionary": False, "data_page_size": 64 * 1024},
}
#: TALI's split sizes: (shards, rows per shard).
TALI_SPLITS = {"train": (600, 1750), "val": (10, 5800), "test": (10, 6140)}


def shard_name(split: str, i: int, n: int, seed: int = 0) -> str:
    """``{split}-{i:05d}-of-{n:05d}-{16 hex}.parquet``, the name ``push_to_hub`` writes."""
    digest = hashlib.sha1(f"{split}/{n}/{seed}".encode()).hexdigest()[:16]
    return f"{split}-{i:05d}-of-{n:05d}-{digest}.parquet"


@dataclass
class RealShape:
    root: Path
    convert_root: Path  # the refs/convert/parquet revision's tree
    files: dict[str, list[Path]] = field(default_factory=dict)
    source_of: dict[int, int] = field(default_factory=dict)  # new item_idx -> sample item_idx


def _padded(clip: bytes | None, size: int | None, rng: np.random.Generator) -> bytes | None:
    if clip is None or size is None or len(clip) + 8 >= size:
        return clip
    pad = size - len(clip)
    return clip + struct.pack(">I", pad) + b"free" + rng.bytes(pad - 8)


def _sample_rows(sample_root: Path) -> list[dict[str, Any]]:
    from tali.data.sources import resolve_local_files

    rows: list[dict[str, Any]] = []
    for split in ("train", "val", "test"):
        for f in resolve_local_files(sample_root, split):
            rows.extend(pq.read_table(f).to_pylist())
    return rows


def write_real_shaped(
    out: str | os.PathLike[str],
    *,
    splits: Mapping[str, tuple[int, int]] | None = None,
    row_group_rows: int = 100,
    row_bytes: int | None = 1_700_000,
    writer: Writer = "datasets",
    sample_root: str | os.PathLike[str] | None = None,
    duplicate_shards: bool = False,
    seed: int = 0,
) -> RealShape:
    """Write real-shaped splits under ``out``; ``splits``: ``{split: (shards, rows per shard)}``.

    ``duplicate_shards``: write each split's first shard once and hard-link the others to it
    (hundreds of real-named shards for start-up tests at no disk cost; their ``item_idx``
    repeat)."""
    from tali.sample_data.build import build

    if writer not in WRITERS:
        raise ValueError(f"writer={writer!r}; choose one of {sorted(WRITERS)}")
    splits = dict(splits or {"train": (2, 200), "val": (1, 100)})
    root = Path(out)
    (root / "data").mkdir(parents=True, exist_ok=True)
    convert = root.parent / f"{root.name}-convert"
    rows = _sample_rows(Path(sample_root) if sample_root else build())
    schema = pq.read_schema(next(Path(sample_root or build()).glob("data/train-*.parquet")))
    rng = np.random.default_rng(seed)
    shape = RealShape(root, convert)
    next_id = 0
    for split, (n_shards, per_shard) in splits.items():
        names = []
        for i in range(n_shards):
            path = root / "data" / shard_name(split, i, n_shards, seed)
            names.append(path)
            if duplicate_shards and i > 0:
                if not path.exists():
                    os.link(names[0], path)
                continue
            batch = []
            for _ in range(per_shard):
                src = rows[next_id % len(rows)]
                row = dict(src)
                row["item_idx"] = next_id
                row["youtube_video_content"] = _padded(src["youtube_video_content"], row_bytes, rng)
                if row["youtube_video_content"] is not None:
                    row["youtube_video_size"] = len(row["youtube_video_content"])
                shape.source_of[next_id] = int(src["item_idx"])
                batch.append(row)
                next_id += 1
            table = pa.Table.from_pylist(batch, schema=schema)
            tmp = path.with_name(f".{path.name}.tmp")
            pq.write_table(table, tmp, row_group_size=row_group_rows, **WRITERS[writer])
            os.replace(tmp, path)
        shape.files[split] = names
        meta = root / "metadata" / f"Antreas_TALI-big-2.0-{split}-none-none-{n_shards}.yaml"
        meta.parent.mkdir(exist_ok=True)
        meta.write_text(f"split: {split}\nnum_shards: {n_shards}\nrows_per_shard: {per_shard}\n")
        for k, p in enumerate(names):  # the converter's copy: default/{split}/NNNN.parquet
            target = convert / "default" / split / f"{k:04d}.parquet"
            target.parent.mkdir(parents=True, exist_ok=True)
            if not target.exists():
                os.link(p, target)
    data_files = "\n".join(f"  - split: {s}\n    path: data/{s}-*" for s in splits)
    (root / "README.md").write_text(
        f"---\nlicense: cc-by-4.0\nconfigs:\n- config_name: default\n  data_files:\n{data_files}\n---\n# TALI\n"
    )
    (root / ".gitattributes").write_text("*.parquet filter=lfs diff=lfs merge=lfs -text\n")
    (root / "realshape.json").write_text(json.dumps({str(k): v for k, v in shape.source_of.items()}))
    return shape
